package proc

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Stats is what a process, or a process with all its descendants, uses.
type Stats struct {
	PID int
	// Procs is how many processes were counted: 1 for ReadStats, the
	// process and its descendants for TreeStats.
	Procs int
	// CPU is the user plus system CPU time consumed so far, summed.
	CPU time.Duration
	// RSS is the resident memory in bytes, summed.
	RSS uint64
	// Threads is the number of threads, summed.
	Threads int
}

// Process describes one process of a Snapshot.
type Process struct {
	PID, PPID, PGID int
	// State is the kernel's one-letter state: R running, S sleeping, Z zombie…
	State string
	// Comm is the kernel's short name of the process (at most 15 bytes).
	Comm       string
	CPU        time.Duration
	RSS        uint64
	NumThreads int
	// Start is when the process started.
	Start time.Time
}

// Snapshot is the process table read from /proc at one moment. Reading it
// costs one small file per process; take one snapshot and ask it many
// questions rather than one snapshot per question.
type Snapshot struct {
	Taken    time.Time
	procs    map[int]*Process
	children map[int][]int
}

var (
	pageSize = uint64(os.Getpagesize())
	// bootTime is read on first use: every kin command links this package,
	// and most never look at a process's start time.
	bootTime = sync.OnceValue(readBootTime)
)

const userHZ = 100 // USER_HZ, fixed at 100 on Linux for /proc

// TakeSnapshot reads every process in /proc.
func TakeSnapshot() (*Snapshot, error) {
	names, err := pidNames("/proc")
	if err != nil {
		return nil, fmt.Errorf("proc: list processes: %w", err)
	}
	s := &Snapshot{Taken: time.Now(), procs: make(map[int]*Process, len(names)), children: make(map[int][]int)}
	buf := make([]byte, statBufSize)
	path := make([]byte, 0, 32)
	for _, name := range names {
		st, ok := readStat(string(statPath(path, name)), buf)
		if !ok {
			continue // it exited meanwhile
		}
		pr := fromStat(st)
		s.procs[pr.PID] = pr
		s.children[pr.PPID] = append(s.children[pr.PPID], pr.PID)
	}
	for _, c := range s.children {
		sort.Ints(c)
	}
	return s, nil
}

func fromStat(st statLine) *Process {
	return &Process{
		PID: st.pid, PPID: st.ppid, PGID: st.pgrp,
		State:      string(st.state),
		Comm:       string(st.comm),
		CPU:        ticks(st.utime + st.stime),
		RSS:        uint64(max(st.rss, 0)) * pageSize,
		NumThreads: st.numThreads,
		Start:      bootTime().Add(ticks(st.starttime)),
	}
}

func ticks(t uint64) time.Duration { return time.Duration(t) * time.Second / userHZ }

// Process returns the process pid as it was when the snapshot was taken.
func (s *Snapshot) Process(pid int) (*Process, bool) {
	p, ok := s.procs[pid]
	return p, ok
}

// Children returns the pids of pid's children, in increasing order.
func (s *Snapshot) Children(pid int) []int { return s.children[pid] }

// Descendants returns pid's children, their children, and so on.
func (s *Snapshot) Descendants(pid int) []int {
	var out []int
	queue := append([]int(nil), s.children[pid]...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, s.children[p]...)
	}
	return out
}

// Stats returns what pid alone uses.
func (s *Snapshot) Stats(pid int) (Stats, bool) {
	p, ok := s.procs[pid]
	if !ok {
		return Stats{}, false
	}
	return Stats{PID: pid, Procs: 1, CPU: p.CPU, RSS: p.RSS, Threads: p.NumThreads}, true
}

// TreeStats returns what pid and all its descendants use together.
func (s *Snapshot) TreeStats(pid int) (Stats, bool) {
	st, ok := s.Stats(pid)
	if !ok {
		return st, false
	}
	for _, d := range s.Descendants(pid) {
		p := s.procs[d]
		st.Procs++
		st.CPU += p.CPU
		st.RSS += p.RSS
		st.Threads += p.NumThreads
	}
	return st, true
}

// GroupMembers returns the processes of process group pgid that are alive
// (zombies excluded: they run nothing).
func (s *Snapshot) GroupMembers(pgid int) []int {
	var out []int
	for pid, p := range s.procs {
		if p.PGID == pgid && p.State != "Z" && p.State != "X" {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// ReadStats returns what pid alone uses.
func ReadStats(pid int) (Stats, error) {
	st, ok := readPidStat(pid)
	if !ok {
		return Stats{}, fmt.Errorf("proc: no process %d", pid)
	}
	pr := fromStat(st)
	return Stats{PID: pid, Procs: 1, CPU: pr.CPU, RSS: pr.RSS, Threads: pr.NumThreads}, nil
}

// TreeStats returns what pid and all its descendants use together.
func TreeStats(pid int) (Stats, error) {
	s, err := TakeSnapshot()
	if err != nil {
		return Stats{}, err
	}
	st, ok := s.TreeStats(pid)
	if !ok {
		return st, fmt.Errorf("proc: no process %d", pid)
	}
	return st, nil
}

// GroupMembers returns the live processes of process group pgid.
func GroupMembers(pgid int) []int {
	// Cheap test first: kill(-pgid, 0) fails when the group is empty.
	if err := syscallKill(-pgid, 0); err != nil {
		return nil
	}
	return scanGroup(pgid)
}

// Stats returns what the child and all its descendants use now.
func (c *Cmd) Stats() (Stats, error) {
	if c.Process == nil {
		return Stats{}, ErrNotStarted
	}
	return TreeStats(c.Process.Pid)
}

// Thread is one thread of a process.
type Thread struct {
	TID int
	// Name is the thread's name (its comm), e.g. "node", "libuv-worker",
	// "V8 DefaultWorke".
	Name  string
	State string
	CPU   time.Duration
}

// Threads lists the threads of pid.
func Threads(pid int) ([]Thread, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tids, err := pidNames(dir)
	if err != nil {
		return nil, fmt.Errorf("proc: threads of %d: %w", pid, err)
	}
	out := make([]Thread, 0, len(tids))
	buf := make([]byte, statBufSize)
	for _, tid := range tids {
		st, ok := readStat(dir+"/"+tid+"/stat", buf)
		if !ok {
			continue // it exited meanwhile
		}
		out = append(out, Thread{TID: st.pid, Name: string(st.comm), State: string(st.state), CPU: ticks(st.utime + st.stime)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TID < out[j].TID })
	return out, nil
}

// CommandLine returns pid's command line, or "[comm]" for kernel threads and
// processes whose command line cannot be read.
func CommandLine(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err == nil && len(b) > 0 {
		return strings.TrimSpace(strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " "))
	}
	if st, ok := readPidStat(pid); ok {
		return "[" + string(st.comm) + "]"
	}
	return ""
}

func syscallKill(pid int, sig syscall.Signal) error { return syscall.Kill(pid, sig) }
