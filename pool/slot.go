package pool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

// slot is one worker position of a pool: a goroutine that owns one worker
// process at a time, feeds it tasks and replaces it when it ends.
type slot struct {
	p     *Pool
	index int
	first *workerProc // started by New

	cancelled chan struct{} // a task this slot sent was abandoned by its caller
	recycle   chan struct{} // the sampler found the worker above MaxRSS
	stopped   atomic.Bool
	everReady bool // touched only by the slot's goroutine (and New, before it starts)
	starts    int  // worker processes this slot started
	nextID    uint64

	mu        sync.Mutex // guards the fields below, read by Stats
	pid       int
	state     string
	tasks     int
	startedAt time.Time
	cpuPct    float64
	rss       uint64
	lastCPU   time.Duration
	lastAt    time.Time
}

type workerProc struct {
	cmd      *proc.Cmd
	ch       *ipc.Channel
	ready    bool // it announced readiness
	answered bool // it sent anything at all
	tasks    int
	retiring bool
	started  time.Time
}

// start starts a worker process for the slot.
func (s *slot) start() (*workerProc, error) {
	p := s.p
	c := proc.Command(p.path, p.args...)
	c.Env = append(append([]string(nil), p.env...), "KIN_WORKER_INDEX="+strconv.Itoa(s.index))
	c.Dir = p.cfg.Dir
	c.Stdout, c.Stderr = p.cfg.Stdout, p.cfg.Stderr
	c.IPC = &ipc.Config{Codec: p.codec, MaxMessageSize: p.cfg.MaxMessageSize}
	c.DieWithParent = true
	c.StopTimeout = p.cfg.StopTimeout
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("pool: start worker: %w", err)
	}
	w := &workerProc{cmd: c, ch: c.Channel, started: time.Now()}
	if s.starts > 0 {
		p.restarts.Add(1)
	}
	s.starts++
	s.mu.Lock()
	s.pid, s.state, s.tasks, s.startedAt = c.Process.Pid, "starting", 0, w.started
	s.cpuPct, s.rss, s.lastCPU, s.lastAt = 0, 0, 0, time.Time{}
	s.mu.Unlock()
	return w, nil
}

func (s *slot) setState(state string) {
	s.mu.Lock()
	s.state = state
	s.mu.Unlock()
}

func (s *slot) stats() WorkerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := WorkerStats{Index: s.index, PID: s.pid, State: s.state, Tasks: s.tasks, CPUPercent: s.cpuPct, RSS: s.rss}
	if s.state != "stopped" && !s.startedAt.IsZero() {
		ws.Uptime = time.Since(s.startedAt)
	}
	return ws
}

// sampled records the worker's CPU and memory from snap and asks for a
// recycle above MaxRSS.
func (s *slot) sampled(snap *proc.Snapshot) {
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	st, ok := snap.TreeStats(pid)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.pid == pid {
		if !s.lastAt.IsZero() {
			if dt := snap.Taken.Sub(s.lastAt); dt > 0 {
				s.cpuPct = 100 * float64(st.CPU-s.lastCPU) / float64(dt)
			}
		}
		s.lastCPU, s.lastAt, s.rss = st.CPU, snap.Taken, st.RSS
	}
	s.mu.Unlock()
	if s.p.cfg.MaxRSS > 0 && st.RSS > s.p.cfg.MaxRSS {
		select {
		case s.recycle <- struct{}{}:
		default:
		}
	}
}

// run is the slot's goroutine: start a worker, serve it until it ends,
// start the next, until the pool closes.
func (s *slot) run() {
	defer s.p.wg.Done()
	defer func() {
		s.stopped.Store(true)
		s.setState("stopped")
		if s.p.live.Add(-1) == 0 {
			close(s.p.slotsDone)
		}
	}()
	p := s.p
	var backlog []*task // tasks to send to the next worker first
	var backoff time.Duration
	w := s.first
	s.first = nil
	for {
		if w == nil {
			if p.aborted() || (p.draining() && len(backlog) == 0 && len(p.queue) == 0) {
				failAll(backlog, ErrClosed)
				return
			}
			var err error
			if w, err = s.start(); err != nil {
				if p.cfg.OnWorkerExit != nil {
					p.cfg.OnWorkerExit(0, err)
				}
				backoff = nextBackoff(backoff)
				if !s.sleep(backoff) {
					failAll(backlog, ErrClosed)
					return
				}
				continue
			}
		}
		var crashed bool
		backlog, crashed = s.serve(w, backlog)
		w = nil
		if crashed {
			// Quick consecutive failures back off, so that a worker that
			// cannot start does not spin the CPU.
			backoff = nextBackoff(backoff)
			if !s.sleep(backoff) {
				failAll(backlog, ErrClosed)
				return
			}
		} else {
			backoff = 0
		}
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 20 * time.Millisecond
	}
	return min(2*d, 5*time.Second)
}

// sleep waits d or until the pool is aborted; it reports false on abort.
func (s *slot) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.p.quit:
		return false
	}
}

func (p *Pool) aborted() bool {
	select {
	case <-p.quit:
		return true
	default:
		return false
	}
}

func (p *Pool) draining() bool {
	select {
	case <-p.closing:
		return true
	default:
		return false
	}
}

func failAll(ts []*task, err error) {
	for _, t := range ts {
		t.finish(nil, err)
	}
}

// serve feeds worker w until it ends. It returns the tasks that must go to
// the next worker (sent to w but not started when it died, or never sent),
// and whether w ended abnormally without finishing any task.
func (s *slot) serve(w *workerProc, backlog []*task) (rest []*task, crashed bool) {
	p := s.p
	var inflight []*task // sent to w, unanswered, oldest first
	var timer *time.Timer
	var timerC <-chan time.Time
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	defer stopTimer()
	// armHead starts the timeout of the task at the head of the FIFO: it is
	// the one the worker is running (workers run tasks in order).
	armHead := func() {
		stopTimer()
		if len(inflight) == 0 {
			return
		}
		h := inflight[0]
		h.started = time.Now()
		if h.timeout > 0 {
			timer = time.NewTimer(h.timeout)
			timerC = timer.C
		}
		if h.abandoned.Load() {
			// Its caller gave up while it waited behind another task.
			select {
			case s.cancelled <- struct{}{}:
			default:
			}
		}
	}
	var startC <-chan time.Time // StartTimeout for a worker expected to announce readiness
	if p.speaksReady.Load() {
		st := time.NewTimer(p.cfg.StartTimeout)
		defer st.Stop()
		startC = st.C
	}

	// finishTask completes the task answered by m.
	finishTask := func(i int, m ipc.Message) {
		tk := inflight[i]
		inflight = append(inflight[:i], inflight[i+1:]...)
		if m.Kind == ipc.Error {
			tk.finish(nil, ipc.DecodeError(m.Data))
			p.failed.Add(1)
		} else {
			tk.finish(m.Data, nil)
			p.completed.Add(1)
		}
		for _, f := range m.Files {
			f.Close()
		}
		p.lat.add(time.Since(tk.submitted))
		w.tasks++
		s.mu.Lock()
		s.tasks = w.tasks
		s.mu.Unlock()
		if p.cfg.MaxTasks > 0 && w.tasks >= p.cfg.MaxTasks {
			w.retiring = true
		}
		if i == 0 {
			armHead()
		}
	}
	find := func(id uint64) int {
		for i, t := range inflight {
			if t.id == id {
				return i
			}
		}
		return -1
	}
	handle := func(m ipc.Message) {
		if !w.answered {
			w.answered = true
			p.markReady(s)
		}
		switch {
		case m.IsReady():
			if !w.ready {
				w.ready = true
				startC = nil
				p.speaksReady.Store(true)
				armHead() // time spent starting up is not the task's
			}
		case m.Kind == ipc.Result || m.Kind == ipc.Error:
			if i := find(m.ID); i >= 0 {
				finishTask(i, m)
				return
			}
		case m.Kind == ipc.Progress:
			if i := find(m.ID); i >= 0 && inflight[i].progress != nil && !inflight[i].abandoned.Load() {
				inflight[i].progress(m.Data)
			}
		}
		for _, f := range m.Files {
			f.Close()
		}
	}
	send := func(tk *task) bool {
		// Publish the owner before the last abandoned check, so that a
		// caller giving up from now on notifies this slot.
		tk.slot.Store(s)
		if tk.abandoned.Load() {
			tk.finish(nil, tk.ctx.Err())
			return true
		}
		s.nextID++
		tk.id = s.nextID
		err := w.ch.Send(context.Background(), ipc.Message{Kind: ipc.Task, ID: tk.id, Data: tk.data})
		if err != nil {
			var tl *ipc.TooLargeError
			if errors.Is(err, ipc.ErrBadMessage) || errors.As(err, &tl) {
				tk.finish(nil, fmt.Errorf("pool: task not sent: %w", err))
				p.failed.Add(1)
				return true
			}
			// The channel is broken: the worker is going away; the task
			// goes to the next one.
			backlog = append([]*task{tk}, backlog...)
			return false
		}
		inflight = append(inflight, tk)
		if len(inflight) == 1 {
			armHead()
		}
		return true
	}
	// end stops w for good and assigns the head task's failure.
	end := func(headErr error) {
		w.cmd.Kill()
		w.ch.Close()
		if len(inflight) > 0 {
			inflight[0].finish(nil, headErr)
			p.failed.Add(1)
			rest = append(rest, inflight[1:]...)
		}
		rest = append(rest, backlog...)
		crashed = !w.answered
		if p.cfg.OnWorkerExit != nil {
			p.cfg.OnWorkerExit(w.cmd.Process.Pid, headErr)
		}
	}
	died := func() {
		// Results written just before the exit may still be in the socket:
		// let the reader reach the end of the channel first.
		t := time.NewTimer(time.Second)
		select {
		case <-w.ch.Done():
		case <-t.C:
		}
		t.Stop()
		for {
			m, ok, _ := w.ch.TryRecv()
			if !ok {
				break
			}
			handle(m)
		}
		if err := w.ch.Err(); err != nil && errors.Is(err, ipc.ErrMalformed) || isTooLarge(err) {
			end(&WorkerError{PID: w.cmd.Process.Pid, Reason: "broke the channel protocol", Err: err})
			return
		}
		// The channel ended cleanly (or mid-message, as a crash leaves it):
		// the process is exiting, and its status says why.
		t = time.NewTimer(p.cfg.StopTimeout)
		select {
		case <-w.cmd.Done():
		case <-t.C:
		}
		t.Stop()
		w.cmd.Kill()
		exitErr := w.cmd.Wait()
		if exitErr == nil {
			exitErr = errors.New("exited with status 0")
		}
		if len(inflight) == 0 && len(backlog) == 0 {
			// Nothing was lost; still report the exit.
			end(exitErr)
			return
		}
		end(&WorkerError{PID: w.cmd.Process.Pid, Reason: "exited during the task", Err: exitErr})
	}

	// drain handles every message received so far; false means the
	// channel has ended.
	drain := func() bool {
		for {
			m, ok, err := w.ch.TryRecv()
			if !ok {
				return err == nil
			}
			handle(m)
		}
	}

	s.setState("starting")
	for {
		// Send what this slot owes first, then take from the pool's queue.
		canSend := len(inflight) < p.cfg.Pipeline && !w.retiring && (w.ready || !p.speaksReady.Load())
		for canSend && len(backlog) > 0 {
			tk := backlog[0]
			backlog = backlog[1:]
			if !send(tk) {
				break
			}
			canSend = len(inflight) < p.cfg.Pipeline
		}
		switch {
		case len(inflight) > 0:
			s.setState("busy")
		case w.ready || w.answered:
			s.setState("idle")
		}
		if len(inflight) == 0 && len(backlog) == 0 {
			if w.retiring {
				s.retire(w)
				return rest, false
			}
			if p.draining() && len(p.queue) == 0 {
				s.retire(w)
				return rest, false
			}
		}
		var queueC chan *task
		if canSend && len(backlog) == 0 {
			queueC = p.queue
		}
		var closingC <-chan struct{}
		if len(inflight) == 0 && len(backlog) == 0 && len(p.queue) == 0 {
			closingC = p.closing // wake an idle slot when Shutdown starts
		}
		select {
		case tk := <-queueC:
			if !send(tk) {
				died()
				return rest, crashed
			}
		case <-w.ch.Incoming():
			if !drain() {
				died()
				return rest, crashed
			}
		case <-w.ch.Done():
			died()
			return rest, crashed
		case <-w.cmd.Done():
			died()
			return rest, crashed
		case <-timerC:
			h := inflight[0]
			// Its answer may have arrived just before the timer fired.
			if !drain() {
				died()
				return rest, crashed
			}
			if len(inflight) == 0 || inflight[0] != h {
				continue
			}
			end(fmt.Errorf("%w after %v: worker %d and its process group were killed", ErrTimeout, time.Since(h.started).Round(time.Millisecond), w.cmd.Process.Pid))
			return rest, crashed
		case <-startC:
			end(fmt.Errorf("pool: worker %d did not announce readiness within %v (Config.StartTimeout); killed", w.cmd.Process.Pid, p.cfg.StartTimeout))
			return rest, true
		case <-s.cancelled:
			if !drain() { // its result may be here already
				died()
				return rest, crashed
			}
			if len(inflight) > 0 && inflight[0].abandoned.Load() {
				// The running task's caller gave up: stop the work.
				end(inflight[0].ctx.Err())
				return rest, false
			}
			// A task queued behind the running one was abandoned: it will
			// run, and its result will be dropped.
		case <-s.recycle:
			w.retiring = true
		case <-closingC:
			// Loop: the drain check at the top decides.
		case <-p.quit:
			end(ErrClosed)
			failAll(rest, ErrClosed)
			return nil, false
		}
	}
}

func isTooLarge(err error) bool {
	var tl *ipc.TooLargeError
	return errors.As(err, &tl)
}

// retire asks w to shut down and leaves its exit to a reaper goroutine.
// Closing the channel after the shutdown message lets workers that do not
// know the message (a plain Node worker) see the disconnect and exit too.
func (s *slot) retire(w *workerProc) {
	p := s.p
	w.ch.Send(context.Background(), ipc.Message{Kind: ipc.Shutdown})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		w.ch.Close()
		t := time.NewTimer(p.cfg.StopTimeout)
		select {
		case <-w.cmd.Done():
		case <-t.C:
		case <-p.quit:
		}
		t.Stop()
		w.cmd.Stop(context.Background())
		if p.cfg.OnWorkerExit != nil {
			p.cfg.OnWorkerExit(w.cmd.Process.Pid, w.cmd.Wait())
		}
	}()
}
