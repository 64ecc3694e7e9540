package supervisor

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/kinproc/kin/proc"
)

// InstanceInfo describes one instance, as `kin ls --json` prints it.
type InstanceInfo struct {
	// ID is the instance's number, unique in the supervisor and stable
	// across restarts and reloads (PM2's pm_id).
	ID int `json:"id"`
	// Name is the app's name; Instance the index within the app (0, 1, …).
	Name     string `json:"name"`
	Instance int    `json:"instance"`
	// PID is the running process, 0 when none.
	PID    int    `json:"pid"`
	Status Status `json:"status"`
	// Restarts counts restarts and reloads since the app was started.
	Restarts int `json:"restarts"`
	// UptimeMS is how long the current process has run, 0 when none.
	UptimeMS int64 `json:"uptime_ms"`
	// CPU is the percentage of one core used by the process tree over the
	// last sample interval; Memory its resident memory in bytes.
	CPU    float64 `json:"cpu"`
	Memory uint64  `json:"memory"`
	// Port is the app's cluster port, 0 when none.
	Port int `json:"port,omitempty"`
	// LastExit says how the previous process ended ("exit 1", "signal
	// SIGKILL", "max_memory …"); ExitCode is its status (-1 for a signal).
	LastExit string `json:"last_exit,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	// RestartInMS is the backoff left before the next start, when waiting.
	RestartInMS int64 `json:"restart_in_ms,omitempty"`
	// OutLog and ErrLog are the instance's log files.
	OutLog string `json:"out_log,omitempty"`
	ErrLog string `json:"err_log,omitempty"`
}

// AppInfo describes an app: its spec and its instances.
type AppInfo struct {
	Spec      AppSpec        `json:"spec"`
	Running   bool           `json:"running"` // the app is meant to run (not stopped)
	Instances []InstanceInfo `json:"instances"`
}

// List returns every instance, apps in the order they were added.
func (s *Server) List() []InstanceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []InstanceInfo
	for _, a := range s.sortedAppsLocked() {
		for _, sl := range a.slots {
			out = append(out, s.infoLocked(a, sl))
		}
	}
	return out
}

func (s *Server) listNames(names []string) []InstanceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []InstanceInfo
	for _, n := range names {
		if a := s.apps[n]; a != nil {
			for _, sl := range a.slots {
				out = append(out, s.infoLocked(a, sl))
			}
		}
	}
	return out
}

func (s *Server) infoLocked(a *app, sl *slot) InstanceInfo {
	in := InstanceInfo{
		ID: sl.id, Name: a.name, Instance: sl.index, PID: sl.pid, Status: sl.status,
		Restarts: sl.restarts, Port: a.spec.Port, LastExit: sl.lastExit, ExitCode: sl.lastCode,
		OutLog: s.logPath(a.spec, sl, "out"), ErrLog: s.logPath(a.spec, sl, "err"),
	}
	if sl.pid != 0 {
		in.UptimeMS = time.Since(sl.started).Milliseconds()
		if st, ok := s.stats[sl.pid]; ok {
			in.CPU, in.Memory = st.cpu, st.rss
		}
	}
	if !sl.nextStart.IsZero() {
		if d := time.Until(sl.nextStart); d > 0 {
			in.RestartInMS = d.Milliseconds()
		}
	}
	return in
}

// Describe returns the apps a target names (an app, an instance id — its
// app —, or "all").
func (s *Server) Describe(target string) ([]AppInfo, error) {
	apps, slots, err := s.resolve(target)
	if err != nil {
		return nil, err
	}
	for _, sl := range slots {
		apps = append(apps, sl.app)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AppInfo
	for _, a := range apps {
		ai := AppInfo{Spec: *a.spec, Running: a.want}
		for _, sl := range a.slots {
			ai.Instances = append(ai.Instances, s.infoLocked(a, sl))
		}
		out = append(out, ai)
	}
	return out, nil
}

// sample is one instance's CPU and memory, from the last two samples.
type sample struct {
	cpuTime time.Duration
	at      time.Time
	cpu     float64 // percent of one core
	rss     uint64
}

// sampleLoop reads every instance's process tree from /proc each
// SampleInterval, for List and for the memory limits.
func (s *Server) sampleLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.sampleOnce()
		}
	}
}

// sampleOnce reads the process table once and applies the memory limits.
func (s *Server) sampleOnce() {
	s.mu.Lock()
	type live struct {
		a  *app
		sl *slot
		p  *process
	}
	var procs []live
	for _, a := range s.apps {
		for _, sl := range a.slots {
			if sl.cur != nil {
				procs = append(procs, live{a, sl, sl.cur})
			}
		}
	}
	s.mu.Unlock()
	if len(procs) == 0 {
		s.mu.Lock()
		clear(s.stats)
		s.mu.Unlock()
		return
	}
	snap, err := proc.TakeSnapshot()
	if err != nil {
		return
	}
	s.mu.Lock()
	next := make(map[int]sample, len(procs))
	for _, l := range procs {
		st, ok := snap.TreeStats(l.p.pid)
		if !ok {
			continue
		}
		sm := sample{cpuTime: st.CPU, at: snap.Taken, rss: st.RSS}
		if prev, ok := s.stats[l.p.pid]; ok && snap.Taken.After(prev.at) {
			sm.cpu = 100 * float64(st.CPU-prev.cpuTime) / float64(snap.Taken.Sub(prev.at))
			if sm.cpu < 0 {
				sm.cpu = 0
			}
		}
		next[l.p.pid] = sm
	}
	s.stats = next
	s.mu.Unlock()
	for _, l := range procs {
		sm, ok := next[l.p.pid]
		if !ok {
			continue
		}
		spec := l.a.specSnapshot()
		switch {
		case spec.MemoryLimit > 0 && l.p.cgroup == nil && int64(sm.rss) > spec.MemoryLimit:
			// The hard limit: SIGKILL the whole group now, as the kernel's
			// OOM killer would; the exit is a crash with this cause.
			l.p.setCause(fmt.Sprintf("memory_limit: %s > %s", formatBytes(int64(sm.rss)), formatBytes(spec.MemoryLimit)))
			l.p.cmd.Signal(syscall.SIGKILL)
		case spec.MaxMemory > 0 && int64(sm.rss) > spec.MaxMemory && l.p.memRestart.CompareAndSwap(false, true):
			s.logf("app %s instance %d uses %s > max_memory %s: restarting", l.a.name, l.sl.index, formatBytes(int64(sm.rss)), formatBytes(spec.MaxMemory))
			s.restartFor(l.sl, fmt.Sprintf("max_memory: %s > %s", formatBytes(int64(sm.rss)), formatBytes(spec.MaxMemory)))
		}
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WaitOnline waits until every instance of the target is online; for tests
// and callers that started apps without StartOptions.Wait.
func (s *Server) WaitOnline(ctx context.Context, target string) error {
	apps, slots, err := s.resolve(target)
	if err != nil {
		return err
	}
	for _, a := range apps {
		s.mu.Lock()
		slots = append(slots, a.slots...)
		s.mu.Unlock()
	}
	for _, sl := range slots {
		if err := sl.waitSettled(ctx); err != nil {
			return err
		}
	}
	return nil
}
