// Package proc starts and supervises one child process, the way Node's
// child_process does and with what supervision needs beyond os/exec:
//
//   - every child leads its own process group, and stopping it signals the
//     whole group, waits a grace period, then SIGKILLs the group, so that
//     grandchildren never outlive a stop;
//   - when a child exits, processes it left in its group are stopped too
//     (unless KeepOrphans), so nothing it started keeps running unseen;
//   - an optional IPC channel (Fork): an AF_UNIX socketpair whose child end is
//     announced with KIN_CHANNEL_FD/KIN_CHANNEL_CODEC, and NODE_CHANNEL_FD for
//     JSON channels so that a Node child's process.send just works;
//   - optional death with the parent (Pdeathsig);
//   - a typed *ExitError with the exit code, the signal and the last lines of
//     the child's stderr;
//   - CPU, memory (RSS summed over the process tree) and threads from /proc.
//
// Spawn is Command + Start with the child's output streamed to writers or
// pipes; Exec runs a command to completion and returns its output; Fork
// starts a child with a channel.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kinproc/kin/ipc"
	"golang.org/x/sys/unix"
)

// Defaults for the zero values of Cmd's fields.
const (
	DefaultStopTimeout = 5 * time.Second
	DefaultStderrTail  = 20
	DefaultMaxOutput   = 16 << 20
)

// Errors.
var (
	// ErrOutputTooLarge is returned by Exec when the child wrote more than
	// MaxOutput bytes to stdout or stderr; the child is stopped.
	ErrOutputTooLarge = errors.New("proc: output larger than Cmd.MaxOutput")
	// ErrNotStarted is returned by methods that need a started process.
	ErrNotStarted = errors.New("proc: process not started")
)

// Cmd is a child process to start, and, once started, the handle to it. Set
// the fields before Start; do not change them after.
type Cmd struct {
	// Path is the program to run. A name without a slash is looked up in
	// $PATH by Start.
	Path string
	// Args holds the command line, including the program name as Args[0].
	// Empty means []string{Path}.
	Args []string
	// Env is the child's whole environment; nil means this process's.
	// Channel variables inherited from this process (KIN_CHANNEL_*,
	// NODE_CHANNEL_*, NODE_UNIQUE_ID) are always removed, so a child never
	// believes it has a channel it was not given.
	Env []string
	// Dir is the working directory; empty means this process's.
	Dir string

	// Stdin, Stdout and Stderr are as in os/exec: nil means /dev/null (for
	// Stderr, the last StderrTail lines are still kept for ExitError).
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// ExtraFiles are inherited as fds 3, 4, …; the channel, if any, comes
	// after them.
	ExtraFiles []*os.File

	// IPC, when not nil, gives the child a message channel (see Fork).
	IPC *ipc.Config

	// StopSignal is what Stop sends to the process group first; zero means
	// SIGTERM.
	StopSignal syscall.Signal
	// StopTimeout is how long Stop waits after StopSignal before it
	// SIGKILLs the group; zero means 5 s.
	StopTimeout time.Duration
	// DieWithParent asks the kernel to SIGKILL the child when this process
	// dies (Linux's parent-death signal), so that a crashed parent leaves no
	// orphans. (The kernel ties it to the OS thread that forked; Go keeps
	// that thread unless a goroutine locked to it exits.)
	DieWithParent bool
	// Cgroup, when set, runs the child in that memory cgroup: the kernel
	// enforces its hard limit on the child and everything it starts. On
	// cgroup v2 the child is born in it (clone3 CLONE_INTO_CGROUP); on v1 it
	// runs through a /bin/sh trampoline that joins the cgroup and execs the
	// program under the same pid (its argv[0] becomes the program's path).
	// Nil means the child stays in this process's cgroup.
	Cgroup *MemoryCgroup
	// KeepOrphans leaves running the processes a child left in its process
	// group when it exited. By default they get StopSignal, then SIGKILL
	// after StopTimeout.
	KeepOrphans bool
	// StderrTail is how many of the last lines of stderr an ExitError
	// carries; zero means 20, negative none.
	StderrTail int
	// MaxOutput bounds what Exec collects from stdout and from stderr, in
	// bytes; zero means 16 MiB.
	MaxOutput int

	// Process is the started process; nil before Start.
	Process *os.Process
	// Channel is this side of the message channel, set by Start when IPC is
	// not nil. Closing it is the parent's way to say "disconnect".
	Channel *ipc.Channel

	cmd          *exec.Cmd
	pipesToClose []*os.File // the child's ends, closed after Start
	closeAfter   []*os.File // our ends, closed after Wait, as os/exec does
	tail         *tailBuffer
	done         chan struct{}
	mu           sync.Mutex
	state        *os.ProcessState
	waitErr      error
	stopping     bool
	reaped       bool // the leader has been waited for: its pgid may be reused
	started      time.Time
}

// Command returns the Cmd to run the program name with args. Nothing runs
// until Start.
func Command(name string, args ...string) *Cmd {
	return &Cmd{Path: name, Args: append([]string{name}, args...)}
}

// Shell returns the Cmd that runs line with /bin/sh -c. kin never uses a
// shell unless asked this way.
func Shell(line string) *Cmd {
	return Command("/bin/sh", "-c", line)
}

// Fork starts name with args and a JSON channel, like Node's
// child_process.fork: the child finds the channel through KIN_CHANNEL_FD or
// NODE_CHANNEL_FD. Its stdout and stderr are this process's.
func Fork(name string, args ...string) (*Cmd, error) {
	c := Command(name, args...)
	c.IPC = &ipc.Config{}
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// Exec runs name with args to completion, without a shell, and returns what
// it wrote to stdout and stderr. ctx bounds the run: when it ends the child
// is stopped (StopSignal, then SIGKILL) and the error wraps ctx.Err().
func Exec(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error) {
	return Command(name, args...).Exec(ctx)
}

// String returns the command line, for messages.
func (c *Cmd) String() string {
	args := c.Args
	if len(args) == 0 {
		args = []string{c.Path}
	}
	s := strings.Join(args, " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// channelEnv are the variables that describe a channel; they are never
// inherited.
var channelEnv = []string{ipc.EnvFD, ipc.EnvCodec, ipc.EnvNodeFD, ipc.EnvNodeMode, ipc.EnvNodeUnqID}

// Start starts the child (Node's spawn). It returns once the child runs;
// use Wait or Done to learn when it ends.
func (c *Cmd) Start() error {
	if c.done != nil {
		return errors.New("proc: Start called twice")
	}
	path := c.Path
	if path == "" {
		return errors.New("proc: Cmd.Path is empty")
	}
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return fmt.Errorf("proc: %w", err)
		}
		path = p
	}
	args := c.Args
	if len(args) == 0 {
		args = []string{c.Path}
	}
	if c.Cgroup != nil && !c.Cgroup.v2 {
		// cgroup v1 has no way to start a process in a cgroup: a /bin/sh
		// trampoline moves itself there, then execs the program under the
		// same pid, before the program can run or fork.
		args = append([]string{"/bin/sh", "-c", cgroupTrampoline, path, filepath.Join(c.Cgroup.dir, "cgroup.procs")}, args[1:]...)
		path = "/bin/sh"
	}
	cmd := &exec.Cmd{Path: path, Args: args, Dir: c.Dir, Stdin: c.Stdin, Stdout: c.Stdout}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = WithoutVars(env, channelEnv...)
	cmd.ExtraFiles = append([]*os.File(nil), c.ExtraFiles...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.DieWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	n := c.StderrTail
	if n == 0 {
		n = DefaultStderrTail
	}
	if c.cmd != nil && c.cmd.Stderr != nil {
		cmd.Stderr = c.cmd.Stderr // set by StderrPipe
	} else if n > 0 {
		c.tail = newTailBuffer(n, c.Stderr)
		cmd.Stderr = c.tail
	} else {
		cmd.Stderr = c.Stderr
	}
	if c.cmd != nil {
		// Pipes made by StdinPipe/StdoutPipe before Start.
		if c.cmd.Stdin != nil {
			cmd.Stdin = c.cmd.Stdin
		}
		if c.cmd.Stdout != nil {
			cmd.Stdout = c.cmd.Stdout
		}
	}
	// Bound how long Wait waits for stdio copies once the group is gone:
	// something that left the group may still hold the pipes.
	cmd.WaitDelay = time.Second

	var mine, theirs *os.File
	if c.IPC != nil {
		var err error
		if mine, theirs, err = ipc.Socketpair(); err != nil {
			return err
		}
		fd := 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
		codec := c.IPC.Codec
		if codec == "" {
			codec = ipc.JSON
		}
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", ipc.EnvFD, fd), ipc.EnvCodec+"="+string(codec))
		if codec == ipc.JSON {
			cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", ipc.EnvNodeFD, fd), ipc.EnvNodeMode+"=json")
		}
	}
	if c.Cgroup != nil && c.Cgroup.v2 {
		dir, err := os.Open(c.Cgroup.dir)
		if err != nil {
			if mine != nil {
				mine.Close()
				theirs.Close()
			}
			return fmt.Errorf("proc: start %s: %w", c, err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	if err := cmd.Start(); err != nil {
		for _, f := range append(c.pipesToClose, c.closeAfter...) {
			f.Close()
		}
		if mine != nil {
			mine.Close()
			theirs.Close()
		}
		return fmt.Errorf("proc: start %s: %w", c, err)
	}
	for _, f := range c.pipesToClose {
		f.Close() // the child's ends of StdinPipe/StdoutPipe/StderrPipe
	}
	c.pipesToClose = nil
	c.cmd = cmd
	c.Process = cmd.Process
	c.started = time.Now()
	c.done = make(chan struct{})
	if theirs != nil {
		// Close our copy of the child's end, or we would never see EOF.
		theirs.Close()
		ch, err := ipc.FromFile(mine, *c.IPC)
		if err != nil {
			c.Process.Kill()
			go c.wait()
			<-c.done
			return err
		}
		c.Channel = ch
	}
	go c.wait()
	return nil
}

// wait waits for the leader to exit, deals with what it left in its group,
// then reaps it. It runs once per Cmd and closes done.
func (c *Cmd) wait() {
	defer close(c.done)
	pid := c.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	// The leader is a zombie now: its pid, and so the group id, cannot be
	// reused until it is reaped, so signalling the group is safe.
	if !c.KeepOrphans {
		c.stopOrphans()
	}
	err := c.cmd.Wait()
	c.mu.Lock()
	c.reaped = true
	c.state = c.cmd.ProcessState
	c.waitErr = c.exitError(err)
	c.mu.Unlock()
}

// stopOrphans stops processes left in the child's group after it exited.
func (c *Cmd) stopOrphans() {
	pgid := c.Process.Pid
	if len(GroupMembers(pgid)) == 0 {
		return
	}
	c.mu.Lock()
	stopping := c.stopping
	c.mu.Unlock()
	if !stopping {
		syscall.Kill(-pgid, c.stopSignal())
	}
	if waitGroupEmpty(pgid, c.stopTimeout()) {
		return
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	// SIGKILL is delivered asynchronously; wait until it has landed so that
	// Wait's promise (nothing of the child's left running) holds.
	waitGroupEmpty(pgid, time.Second)
}

// waitGroupEmpty polls until group pgid has no live member or d passes.
func waitGroupEmpty(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	sleep := time.Millisecond
	for {
		if len(GroupMembers(pgid)) == 0 {
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

func (c *Cmd) stopSignal() syscall.Signal {
	if c.StopSignal == 0 {
		return syscall.SIGTERM
	}
	return c.StopSignal
}

func (c *Cmd) stopTimeout() time.Duration {
	if c.StopTimeout <= 0 {
		return DefaultStopTimeout
	}
	return c.StopTimeout
}

func (c *Cmd) exitError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("proc: wait for %s: %w", c, err)
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	e := &ExitError{PID: c.Process.Pid, Command: c.String(), Code: ws.ExitStatus(), Stopped: c.stopping}
	if ws.Signaled() {
		e.Signal = ws.Signal()
		e.Code = -1
	}
	if c.tail != nil {
		e.Stderr = c.tail.String()
	}
	return e
}

// Wait waits for the child to exit, and for the processes it left in its
// group to be stopped, and returns nil for exit status 0 or an *ExitError.
// It may be called more than once, from any goroutine.
func (c *Cmd) Wait() error {
	if c.done == nil {
		return ErrNotStarted
	}
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.closeAfter {
		f.Close()
	}
	c.closeAfter = nil
	return c.waitErr
}

// Done returns a channel closed when the child has exited and been reaped.
func (c *Cmd) Done() <-chan struct{} {
	if c.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.done
}

// Exited reports whether the child has exited and been reaped.
func (c *Cmd) Exited() bool {
	select {
	case <-c.Done():
		return c.done != nil
	default:
		return false
	}
}

// Run starts the child and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Signal sends sig to the child's whole process group. It is a no-op once
// the child has been reaped (its group id could belong to someone else).
func (c *Cmd) Signal(sig syscall.Signal) error {
	if c.done == nil {
		return ErrNotStarted
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reaped {
		return nil
	}
	if err := syscall.Kill(-c.Process.Pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("proc: signal %v to group %d: %w", sig, c.Process.Pid, err)
	}
	return nil
}

// Stop stops the child and everything in its process group — and its
// descendants that left the group (setsid), signalled by pid —: StopSignal,
// then SIGKILL after StopTimeout, or at once if ctx ends first. It returns
// when the child has been reaped; nil means it is gone, however it ended
// (Wait reports how). Stopping a child that already exited does nothing.
func (c *Cmd) Stop(ctx context.Context) error {
	if c.done == nil {
		return ErrNotStarted
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	if c.Exited() {
		return nil
	}
	// Descendants that left the group (setsid) are signalled by pid: they
	// must not outlive the stop either.
	deadline := time.Now().Add(c.stopTimeout())
	escaped := escapedDescendants(c.Process.Pid, c.Process.Pid)
	if err := c.Signal(c.stopSignal()); err != nil {
		return err
	}
	escaped = signalEscaped(escaped, c.stopSignal())
	t := time.NewTimer(c.stopTimeout())
	defer t.Stop()
	killed := false
	select {
	case <-c.done:
	case <-t.C:
		killed = true
	case <-ctx.Done():
		killed = true
	}
	if killed {
		c.Signal(syscall.SIGKILL)
	}
	if len(escaped) > 0 {
		if killed || !waitEscaped(escaped, deadline) {
			signalEscaped(escaped, syscall.SIGKILL)
		}
		waitEscaped(escaped, time.Now().Add(time.Second))
	}
	<-c.done
	return nil
}

// Kill SIGKILLs the child's process group at once and waits until the child
// is reaped.
func (c *Cmd) Kill() error {
	if c.done == nil {
		return ErrNotStarted
	}
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	var escaped []escapee
	if !c.Exited() {
		escaped = escapedDescendants(c.Process.Pid, c.Process.Pid)
	}
	c.Signal(syscall.SIGKILL)
	if len(escaped) > 0 {
		signalEscaped(escaped, syscall.SIGKILL)
		waitEscaped(escaped, time.Now().Add(time.Second))
	}
	<-c.done
	return nil
}

// ProcessState returns the exit state once the child has been reaped, else nil.
func (c *Cmd) ProcessState() *os.ProcessState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Uptime returns how long the child has been running (or ran).
func (c *Cmd) Uptime() time.Duration {
	if c.started.IsZero() {
		return 0
	}
	return time.Since(c.started)
}

// RecentStderr returns the last lines the child wrote to stderr so far.
func (c *Cmd) RecentStderr() string {
	if c.tail == nil {
		return ""
	}
	return c.tail.String()
}

// StdinPipe returns a pipe connected to the child's stdin; call before Start.
func (c *Cmd) StdinPipe() (io.WriteCloser, error) {
	if c.cmd == nil {
		c.cmd = &exec.Cmd{}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdin = r
	c.pipesToClose = append(c.pipesToClose, r)
	c.closeAfter = append(c.closeAfter, w)
	return w, nil
}

// StdoutPipe returns a pipe connected to the child's stdout; call before
// Start. As with os/exec, Wait closes the pipe: read to EOF first.
func (c *Cmd) StdoutPipe() (io.ReadCloser, error) {
	if c.cmd == nil {
		c.cmd = &exec.Cmd{}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout = w
	c.pipesToClose = append(c.pipesToClose, w)
	c.closeAfter = append(c.closeAfter, r)
	return r, nil
}

// StderrPipe returns a pipe connected to the child's stderr; call before
// Start. ExitError then carries no stderr lines.
func (c *Cmd) StderrPipe() (io.ReadCloser, error) {
	if c.cmd == nil {
		c.cmd = &exec.Cmd{}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stderr = w
	c.pipesToClose = append(c.pipesToClose, w)
	c.closeAfter = append(c.closeAfter, r)
	return r, nil
}

// Exec runs the child to completion (Node's exec/execFile) and returns its
// stdout and stderr, each up to MaxOutput bytes; more stops the child with
// ErrOutputTooLarge. When ctx ends the child is stopped and the error wraps
// ctx.Err(). A non-zero exit is an *ExitError, with the output still
// returned.
func (c *Cmd) Exec(ctx context.Context) (stdout, stderr []byte, err error) {
	max := c.MaxOutput
	if max <= 0 {
		max = DefaultMaxOutput
	}
	tooLarge := make(chan struct{})
	var once sync.Once
	over := func() { once.Do(func() { close(tooLarge) }) }
	var outBuf, errBuf limitBuffer
	outBuf.max, outBuf.over = max, over
	errBuf.max, errBuf.over = max, over
	c.Stdout, c.Stderr = &outBuf, &errBuf
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	select {
	case <-c.done:
	case <-tooLarge:
		c.Stop(context.Background())
		return outBuf.Bytes(), errBuf.Bytes(), fmt.Errorf("%w (%d bytes): %s", ErrOutputTooLarge, max, c)
	case <-ctx.Done():
		c.Stop(context.Background())
		return outBuf.Bytes(), errBuf.Bytes(), fmt.Errorf("proc: %s stopped: %w", c, ctx.Err())
	}
	err = c.Wait()
	return outBuf.Bytes(), errBuf.Bytes(), err
}

// limitBuffer collects up to max bytes and calls over once when more come.
type limitBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	max  int
	over func()
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - b.buf.Len()
	if len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.over()
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// ExitError reports a child that exited with a non-zero status or was
// killed by a signal.
type ExitError struct {
	PID     int
	Command string
	// Code is the exit status, or -1 when a signal killed the child.
	Code int
	// Signal is the signal that killed the child, or 0.
	Signal syscall.Signal
	// Stopped is true when the child ended after Stop or Kill asked it to.
	Stopped bool
	// Stderr holds the last lines the child wrote to stderr.
	Stderr string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proc: %s (pid %d) ", e.Command, e.PID)
	if e.Signal != 0 {
		fmt.Fprintf(&b, "killed by signal %d (%s)", int(e.Signal), unix.SignalName(e.Signal))
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Code)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		lines := strings.Split(s, "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		b.WriteString("; stderr: ")
		b.WriteString(strings.Join(lines, " | "))
	}
	return b.String()
}

// WithoutVars returns a copy of env (KEY=VALUE entries) without the
// variables named.
func WithoutVars(env []string, names ...string) []string {
	out := make([]string, 0, len(env)+4)
outer:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue outer
			}
		}
		out = append(out, kv)
	}
	return out
}
