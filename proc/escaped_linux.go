package proc

import (
	"syscall"
	"time"
)

// escapee is a descendant of a child that left the child's process group
// (setsid or setpgid, as a daemonizing program does): a signal to the group
// misses it, so Stop signals it by pid. start tells it from a later process
// that got the same pid.
type escapee struct {
	pid   int
	start uint64 // clock ticks since boot, from /proc/PID/stat
}

// escapedDescendants returns the live descendants of pid outside process
// group pgid.
func escapedDescendants(pid, pgid int) []escapee {
	snap, err := TakeSnapshot()
	if err != nil {
		return nil
	}
	var out []escapee
	for _, d := range snap.Descendants(pid) {
		p := snap.procs[d]
		if p.PGID == pgid || p.State == "Z" {
			continue
		}
		if st, ok := startTicks(d); ok {
			out = append(out, escapee{pid: d, start: st})
		}
	}
	return out
}

func startTicks(pid int) (uint64, bool) {
	st, ok := readPidStat(pid)
	if !ok || st.state == 'Z' {
		return 0, false
	}
	return st.starttime, true
}

// alive reports whether e is still the process it was.
func (e escapee) alive() bool {
	st, ok := startTicks(e.pid)
	return ok && st == e.start
}

// signalEscaped sends sig to those of es that are still running, and
// returns them.
func signalEscaped(es []escapee, sig syscall.Signal) []escapee {
	var live []escapee
	for _, e := range es {
		if e.alive() {
			syscall.Kill(e.pid, sig)
			live = append(live, e)
		}
	}
	return live
}

// waitEscaped polls until none of es runs or deadline passes, and reports
// whether they are all gone.
func waitEscaped(es []escapee, deadline time.Time) bool {
	sleep := time.Millisecond
	for {
		running := false
		for _, e := range es {
			if e.alive() {
				running = true
				break
			}
		}
		if !running {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(sleep)
		if sleep < 20*time.Millisecond {
			sleep *= 2
		}
	}
}
