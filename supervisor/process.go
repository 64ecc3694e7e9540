package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

// process is one run of an instance: the child, its channel, its log
// copiers and its readiness watch. Its goroutines are owned by its wg; stop
// or the child's exit ends them, and release waits for them.
type process struct {
	cmd     *proc.Cmd
	pid     int
	started time.Time
	kind    ReadyKind
	preload bool // the Node preload is loaded: it drains on {"kin":"shutdown"}

	ready     chan struct{}
	readyOnce sync.Once
	ctx       context.Context // ends when the process is released
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	notify    *net.UnixConn    // NOTIFY_SOCKET, when Ready is notify
	logs      []io.WriteCloser // the log writers, closed once the copiers are done
	pipes     []*os.File       // our ends of stdout and stderr
	exitCause string           // set by the supervisor when it killed the process on purpose (memory, not ready…)
	mu        sync.Mutex

	memRestart atomic.Bool // a restart for max_memory has been ordered
	// cgroup enforces MemoryLimit in the kernel; nil when there is no limit
	// or no writable cgroup (then the limit is sampled, see Server.sampleOnce).
	cgroup   *proc.MemoryCgroup
	memLimit int64

	drained   chan struct{} // closed when the Node preload reports {"kin":"drained"}
	drainOnce sync.Once
	// listening is set when the Node preload reports a server listening on
	// a kin socket: from then on it drains on {"kin":"shutdown"}.
	listening atomic.Bool

	bus busLink // for the app's bus messages (bus.go)
	who string  // "app NAME instance ID", for log lines
}

// spawnSpec is what start needs besides the AppSpec.
type spawnSpec struct {
	spec     *AppSpec
	id       int
	env      []string
	outPath  string
	errPath  string
	preload  string // path of the Node preload, when the app is a clustered Node app
	openLog  func(path string) (io.WriteCloser, error)
	activate func(cmd *proc.Cmd) error // hands the listening sockets over (cluster.Activate)
	bus      busLink                   // the Server's bus, for the app's bus messages
	logf     func(format string, args ...any)
	// noCgroups: enforce MemoryLimit by sampling only (Config.NoCgroups).
	noCgroups bool
}

// cgroupSeq numbers the memory cgroups of this process's instances.
var (
	cgroupSeq  atomic.Int64
	cgroupWarn sync.Once
)

// startProcess starts one run of an instance. The returned process is
// running; its exit is seen on cmd.Done().
func startProcess(ss spawnSpec) (_ *process, err error) {
	spec := ss.spec
	cmd := &proc.Cmd{
		Path:       spec.Command[0],
		Args:       spec.Command,
		Env:        ss.env,
		Dir:        spec.Cwd,
		StderrTail: -1,
		IPC:        &ipc.Config{Codec: ipc.JSON},
		// Apps are the daemon's children; if the daemon is killed they go
		// too, so that a restarted daemon never runs two copies of an app.
		DieWithParent: true,
	}
	if sig, err := ParseSignal(spec.StopSignal); spec.StopSignal != "" && err == nil {
		cmd.StopSignal = sig
	}
	cmd.StopTimeout = spec.KillTimeout.D()
	if cmd.StopTimeout <= 0 {
		cmd.StopTimeout = proc.DefaultStopTimeout
	}
	p := &process{cmd: cmd, kind: effectiveReady(spec), ready: make(chan struct{}), drained: make(chan struct{}), preload: ss.preload != ""}
	p.bus, p.who = ss.bus, fmt.Sprintf("app %s instance %d", spec.Name, ss.id)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if spec.MemoryLimit > 0 && !ss.noCgroups {
		cg, err := proc.NewMemoryCgroup(fmt.Sprintf("%d-%d", ss.id, cgroupSeq.Add(1)), spec.MemoryLimit)
		if err != nil {
			if ss.logf != nil {
				cgroupWarn.Do(func() {
					ss.logf("memory_limit is enforced by sampling RSS every second, not by the kernel: %v", err)
				})
			}
		} else {
			cmd.Cgroup, p.cgroup, p.memLimit = cg, cg, spec.MemoryLimit
		}
	}
	defer func() {
		if err != nil {
			p.cancel()
			if p.cgroup != nil {
				p.cgroup.Kill()
				p.cgroup.Remove()
			}
			for _, f := range p.pipes {
				f.Close()
			}
			for _, c := range p.logs {
				c.Close()
			}
			if p.notify != nil {
				p.notify.Close()
			}
		}
	}()

	// Logs: our own pipes, so that the child writes straight into them and
	// a copier per stream frames lines into the log file.
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	for i, path := range []string{ss.outPath, ss.errPath} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("supervisor: pipe: %w", err)
		}
		childEnds = append(childEnds, w)
		p.pipes = append(p.pipes, r)
		lw, err := ss.openLog(path)
		if err != nil {
			return nil, err
		}
		p.logs = append(p.logs, lw)
		if i == 0 {
			cmd.Stdout = w
		} else {
			cmd.Stderr = w
		}
	}
	if p.kind == ReadyNotify {
		addr := &net.UnixAddr{Net: "unixgram", Name: fmt.Sprintf("@kin-%d-%d-%d", os.Getpid(), ss.id, time.Now().UnixNano())}
		conn, err := net.ListenUnixgram("unixgram", addr)
		if err != nil {
			return nil, fmt.Errorf("supervisor: notify socket: %w", err)
		}
		p.notify = conn
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+addr.Name)
	}
	if ss.activate != nil {
		if err := ss.activate(cmd); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.started = time.Now()
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil

	for i := range p.pipes {
		r, w := p.pipes[i], p.logs[i]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			io.Copy(w, r)
		}()
	}
	if cmd.Channel != nil {
		p.wg.Add(1)
		go p.readChannel()
	}
	if p.notify != nil {
		p.wg.Add(1)
		go p.readNotify()
	}
	switch p.kind {
	case ReadyAlive:
		p.wg.Add(1)
		go p.waitAlive(spec.Ready.Delay.D())
	case ReadyHTTP, ReadyTCP:
		p.wg.Add(1)
		go p.probe(spec.Ready)
	}
	return p, nil
}

// effectiveReady is the readiness kind an app's instances are waited for with.
func effectiveReady(s *AppSpec) ReadyKind {
	switch {
	case s.Ready.Kind != "":
		return s.Ready.Kind
	case s.WaitReady:
		return ReadyIPC
	case s.Port > 0 && isNode(s):
		return ReadyListening
	}
	return ReadyAlive
}

func isNode(s *AppSpec) bool {
	base := interpreterBase(s)
	return base == "node" || base == "nodejs"
}

func isPython(s *AppSpec) bool {
	base := interpreterBase(s)
	return base == "python" || strings.HasPrefix(base, "python3")
}

// interpreterBase is the base name of the app's interpreter, or of its
// program when it has none.
func interpreterBase(s *AppSpec) string {
	i := s.Interpreter
	if i == "" && len(s.Command) > 0 {
		i = s.Command[0]
	}
	return filepath.Base(i)
}

func (p *process) markReady() { p.readyOnce.Do(func() { close(p.ready) }) }

// exited returns a channel closed when the process has exited and been reaped.
func (p *process) exited() <-chan struct{} { return p.cmd.Done() }

// readChannel reads the instance's IPC messages: readiness, the preload's
// reports, and bus messages, which a bridge carries out (bus.go). When the
// channel ends (the process exited or is released), so do the bridge's
// subscriptions.
func (p *process) readChannel() {
	defer p.wg.Done()
	ch := p.cmd.Channel
	var br *bridge // made by the first bus message
	defer func() {
		if br != nil {
			br.close()
		}
	}()
	for {
		m, err := ch.Recv(p.ctx)
		if err != nil {
			return
		}
		for _, f := range m.Files {
			f.Close()
		}
		switch {
		case m.IsReady():
			if p.kind == ReadyIPC || p.kind == ReadyListening {
				p.markReady()
			}
		case m.Kind == ipc.Plain && bytes.HasPrefix(m.Data, []byte("{")):
			var v kinFrame
			if json.Unmarshal(m.Data, &v) != nil {
				continue // "kin" is not a string: not kin's
			}
			switch v.Kin {
			case "":
				// An app's own message: not kin's.
			case "listening":
				p.listening.Store(true)
				if p.kind == ReadyListening {
					p.markReady()
				}
			case "drained":
				// The preload finished draining an app that has its own
				// signal handlers: it is time for the stop signal.
				p.drainOnce.Do(func() { close(p.drained) })
			case "publish", "subscribe", "unsubscribe":
				if br == nil {
					br = newBridge(p)
				}
				br.handle(&v)
			default:
				if br == nil {
					br = newBridge(p)
				}
				br.unknown(v.Kin)
			}
		}
	}
}

// readNotify reads sd_notify datagrams until the socket is closed.
func (p *process) readNotify() {
	defer p.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := p.notify.Read(buf)
		if err != nil {
			return
		}
		for _, line := range bytes.Split(buf[:n], []byte("\n")) {
			if string(line) == "READY=1" {
				p.markReady()
			}
		}
	}
}

func (p *process) waitAlive(d time.Duration) {
	defer p.wg.Done()
	if d <= 0 {
		p.markReady()
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		select {
		case <-p.exited():
		default:
			p.markReady()
		}
	case <-p.exited():
	case <-p.ctx.Done():
	}
}

// probe polls an HTTP or TCP readiness endpoint until it answers.
func (p *process) probe(r Readiness) {
	defer p.wg.Done()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := false
		if r.Kind == ReadyHTTP {
			req, _ := http.NewRequestWithContext(p.ctx, http.MethodGet, r.URL, nil)
			if req != nil {
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
					resp.Body.Close()
					ok = resp.StatusCode < 400
				}
			}
		} else {
			d := net.Dialer{Timeout: time.Second}
			if c, err := d.DialContext(p.ctx, "tcp", r.Address); err == nil {
				c.Close()
				ok = true
			}
		}
		if ok {
			p.markReady()
			return
		}
		select {
		case <-tick.C:
		case <-p.exited():
			return
		case <-p.ctx.Done():
			return
		}
	}
}

// stop ends the process gracefully: a Node app under kin's preload gets
// {"kin":"shutdown"} and drains; everything else gets the stop signal. After
// the kill timeout the whole process group is SIGKILLed. It returns once
// the process is reaped.
func (p *process) stop(ctx context.Context, timeout time.Duration) {
	// Until a server of the app listens, the preload has nothing to drain
	// and ignores shutdown: the stop signal is all there is.
	if p.preload && p.listening.Load() && p.cmd.Channel != nil {
		began := time.Now()
		sctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := p.cmd.Channel.Send(sctx, ipc.Message{Kind: ipc.Shutdown})
		cancel()
		if err == nil {
			t := time.NewTimer(timeout)
			select {
			case <-p.exited():
			case <-p.drained:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			select {
			case <-p.exited():
				return
			default:
			}
			// Drained but still running: the app's own handlers decide
			// when it exits, and get what is left of the kill timeout
			// after the stop signal. Not drained in time: the stop
			// signal, then SIGKILL a second later.
			grace := time.Second
			select {
			case <-p.drained:
				grace = max(grace, timeout-time.Since(began))
			default:
			}
			kctx, cancel := context.WithTimeout(ctx, grace)
			defer cancel()
			p.cmd.Stop(kctx)
			return
		}
	}
	p.cmd.Stop(ctx)
}

// exitDescription says how the process ended, for `kin ls` and describe.
func (p *process) exitDescription() (desc string, code int, failed bool) {
	p.mu.Lock()
	cause := p.exitCause
	p.mu.Unlock()
	err := p.cmd.Wait()
	var ee *proc.ExitError
	switch {
	case err == nil:
		desc, code = "exit 0", 0
	case errors.As(err, &ee) && ee.Signal != 0:
		desc, code, failed = "signal "+signalName(ee.Signal), -1, true
	case errors.As(err, &ee):
		desc, code, failed = fmt.Sprintf("exit %d", ee.Code), ee.Code, true
	default:
		desc, code, failed = err.Error(), -1, true
	}
	if cause == "" && p.cgroup != nil && p.cgroup.OOMKills() > 0 {
		cause = "memory_limit: over " + formatBytes(p.memLimit) + ", killed by the kernel (cgroup)"
	}
	if cause != "" {
		desc, failed = cause+" ("+desc+")", true
	}
	return desc, code, failed
}

func (p *process) setCause(c string) {
	p.mu.Lock()
	if p.exitCause == "" {
		p.exitCause = c
	}
	p.mu.Unlock()
}

// release waits for the process's goroutines after it exited and closes
// what it held. It must be called once, after exited() is closed.
func (p *process) release() {
	p.cancel()
	if p.notify != nil {
		p.notify.Close()
	}
	// The copiers end at EOF, when every holder of the pipes has closed
	// them; a grandchild that escaped the group may hold them longer, so
	// bound the wait and then close our ends.
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	t := time.NewTimer(2 * time.Second)
	select {
	case <-done:
	case <-t.C:
		for _, f := range p.pipes {
			f.Close()
		}
		<-done
	}
	t.Stop()
	for _, f := range p.pipes {
		f.Close()
	}
	for _, c := range p.logs {
		c.Close()
	}
	if p.cmd.Channel != nil {
		p.cmd.Channel.Close()
	}
	if p.cgroup != nil {
		// Whatever is left in the instance's cgroup (a double-forked
		// daemon too) goes with it.
		p.cgroup.Kill()
		p.cgroup.Remove()
	}
}

func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(s))
}
