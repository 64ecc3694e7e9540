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

	waitMu     sync.Mutex
	waitCancel context.CancelFunc // ends the current wait for the worker (see recv)
	recycle    chan struct{}      // the sampler found the worker above MaxRSS
	// head is the task the worker runs now (nil: none), published by the
	// slot for the sampler; over is set by the sampler to the head task
	// found above its Task.MaxRSS, and taken by the slot.
	head      atomic.Pointer[task]
	over      atomic.Pointer[task]
	overRSS   atomic.Uint64
	stopped   atomic.Bool
	everReady bool // touched only by the slot's goroutine (and New, before it starts)
	starts    int  // worker processes this slot started
	nextID    uint64
	// taskTime is a moving average of how long the worker's tasks take
	// (zero: none measured yet), for choosing the pipeline depth.
	taskTime time.Duration

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
	same := s.pid == pid
	if same {
		if !s.lastAt.IsZero() {
			if dt := snap.Taken.Sub(s.lastAt); dt > 0 {
				s.cpuPct = 100 * float64(st.CPU-s.lastCPU) / float64(dt)
			}
		}
		s.lastCPU, s.lastAt, s.rss = st.CPU, snap.Taken, st.RSS
	}
	s.mu.Unlock()
	if h := s.head.Load(); h != nil && h.maxRSS > 0 && st.RSS > h.maxRSS && same {
		// The task's limit: stop the worker now, not after the task.
		s.overRSS.Store(st.RSS)
		s.over.Store(h)
		s.interrupt()
	}
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
// and whether w ended abnormally before it said anything.
//
// While answers are due, the slot reads w's channel itself (Channel.Recv),
// with the running task's deadline in the read's context, rather than have
// a reader goroutine hand each answer over: a task then costs a round trip
// and no goroutine wakeups. Whatever else must end that wait — the task's
// caller giving up, Close — cancels the read's context (slot.interrupt).
func (s *slot) serve(w *workerProc, backlog []*task) (rest []*task, crashed bool) {
	p := s.p
	var inflight []*task // sent to w, unanswered, oldest first
	// headDeadline is when the task at the head of the FIFO — the one the
	// worker is running, as workers run tasks in order — times out.
	var headDeadline time.Time
	armHead := func() {
		headDeadline = time.Time{}
		if len(inflight) == 0 {
			s.head.Store(nil)
			return
		}
		h := inflight[0]
		s.head.Store(h)
		h.started = time.Now()
		if h.timeout > 0 {
			headDeadline = h.started.Add(h.timeout)
		}
		if h.abandoned.Load() {
			// Its caller gave up while it waited behind another task.
			select {
			case s.cancelled <- struct{}{}:
			default:
			}
		}
	}
	// startDeadline bounds the wait for a worker expected to announce
	// readiness (the pool has seen workers do so).
	var startDeadline time.Time
	if p.speaksReady.Load() {
		startDeadline = time.Now().Add(p.cfg.StartTimeout)
	}

	// finishTask completes the task answered by m.
	finishTask := func(i int, m ipc.Message) {
		tk := inflight[i]
		if i == 0 && w.tasks > 0 {
			// (A worker's first task may include its start-up.)
			s.observe(time.Since(tk.started))
		}
		inflight = append(inflight[:i], inflight[i+1:]...)
		// Account first: a caller reading Stats after its result must see it.
		p.lat.add(time.Since(tk.submitted))
		w.tasks++
		s.mu.Lock()
		s.tasks = w.tasks
		s.mu.Unlock()
		for _, f := range m.Files {
			f.Close()
		}
		if m.Kind == ipc.Error {
			p.failed.Add(1)
			tk.finish(nil, ipc.DecodeError(m.Data))
		} else {
			p.completed.Add(1)
			tk.finish(m.Data, nil)
		}
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
				startDeadline = time.Time{}
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
	// drain handles every message readable now; it returns the channel's
	// error once it has ended.
	drain := func() error {
		for {
			m, ok, err := w.ch.TryRecv()
			if !ok {
				return err
			}
			handle(m)
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
				p.failed.Add(1)
				tk.finish(nil, fmt.Errorf("pool: task not sent: %w", err))
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
		s.head.Store(nil)
		w.cmd.Kill()
		w.ch.Close()
		if len(inflight) > 0 {
			p.failed.Add(1)
			inflight[0].finish(nil, headErr)
			rest = append(rest, inflight[1:]...)
			p.requeued.Add(uint64(len(inflight) - 1))
		}
		rest = append(rest, backlog...)
		crashed = !w.answered
		if p.cfg.OnWorkerExit != nil {
			p.cfg.OnWorkerExit(w.cmd.Process.Pid, headErr)
		}
	}
	// died handles a worker whose channel ended or whose process exited.
	died := func(chErr error) {
		// Answers written just before the exit may still be in the socket:
		// read to the end of the channel (bounded), then judge.
		if chErr == nil {
			ctx, cancel := context.WithTimeout(p.quitCtx, time.Second)
			for {
				m, err := w.ch.Recv(ctx)
				if err != nil {
					chErr = err
					break
				}
				handle(m)
			}
			cancel()
		}
		if errors.Is(chErr, ipc.ErrMalformed) || isTooLarge(chErr) {
			end(&WorkerError{PID: w.cmd.Process.Pid, Reason: "broke the channel protocol", Err: chErr})
			return
		}
		// The channel ended cleanly (or mid-message, as a crash leaves it):
		// the process is exiting, and its status says why.
		t := time.NewTimer(p.cfg.StopTimeout)
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
			end(exitErr) // nothing was lost; still report the exit
			return
		}
		end(&WorkerError{PID: w.cmd.Process.Pid, Reason: "exited during the task", Err: exitErr})
	}
	// checkCancelled handles callers that gave up; it reports whether w
	// was ended for it.
	checkCancelled := func() bool {
		select {
		case <-s.cancelled:
		default:
			return false
		}
		if err := drain(); err != nil { // its result may be here already
			died(err)
			return true
		}
		if len(inflight) > 0 && inflight[0].abandoned.Load() {
			// The running task's caller gave up: stop the work.
			end(inflight[0].ctx.Err())
			return true
		}
		// A task queued behind the running one was abandoned: it will run,
		// and its result will be dropped.
		return false
	}

	var poll *time.Ticker
	s.setState("starting")
	for {
		// Send what this slot owes first, then take from the pool's queue.
		canSend := len(inflight) < s.depth() && !w.retiring && (w.ready || !p.speaksReady.Load())
		for canSend && len(backlog) > 0 {
			tk := backlog[0]
			backlog = backlog[1:]
			if !send(tk) {
				break
			}
			canSend = len(inflight) < s.depth()
		}
		for canSend && len(backlog) == 0 {
			var tk *task
			select {
			case tk = <-p.queue:
			default:
			}
			if tk == nil {
				break
			}
			if !send(tk) {
				died(nil)
				return rest, crashed
			}
			canSend = len(inflight) < s.depth()
		}
		switch {
		case len(inflight) > 0:
			s.setState("busy")
		case w.ready || w.answered:
			s.setState("idle")
		}
		if p.aborted() {
			end(ErrClosed)
			failAll(rest, ErrClosed)
			return nil, false
		}
		if checkCancelled() {
			return rest, crashed
		}
		if over := s.over.Swap(nil); over != nil && len(inflight) > 0 && inflight[0] == over {
			if err := drain(); err != nil { // its result may be here already
				died(err)
				return rest, crashed
			}
			if len(inflight) > 0 && inflight[0] == over {
				end(fmt.Errorf("%w: %d MiB > %d MiB: worker %d and its process group were killed", ErrMemory,
					s.overRSS.Load()>>20, over.maxRSS>>20, w.cmd.Process.Pid))
				return rest, crashed
			}
		}
		if len(inflight) == 0 && len(backlog) == 0 && (w.retiring || (p.draining() && len(p.queue) == 0)) {
			s.retire(w)
			return rest, false
		}

		if len(inflight) > 0 || !startDeadline.IsZero() {
			// Answers (or the announcement of readiness) are due: read.
			deadline := headDeadline
			if !startDeadline.IsZero() && (deadline.IsZero() || startDeadline.Before(deadline)) {
				deadline = startDeadline
			}
			m, err := s.recv(w, deadline)
			switch {
			case err == nil:
				handle(m)
				if err := drain(); err != nil {
					died(err)
					return rest, crashed
				}
			case errors.Is(err, context.DeadlineExceeded):
				// An answer may have arrived just as the deadline passed.
				if err := drain(); err != nil {
					died(err)
					return rest, crashed
				}
				now := time.Now()
				if !headDeadline.IsZero() && !now.Before(headDeadline) {
					h := inflight[0]
					end(fmt.Errorf("%w after %v: worker %d and its process group were killed", ErrTimeout, now.Sub(h.started).Round(time.Millisecond), w.cmd.Process.Pid))
					return rest, crashed
				}
				if !startDeadline.IsZero() && !now.Before(startDeadline) {
					end(fmt.Errorf("pool: worker %d did not announce readiness within %v (Config.StartTimeout); killed", w.cmd.Process.Pid, p.cfg.StartTimeout))
					return rest, true
				}
			case errors.Is(err, context.Canceled):
				// Close, or a caller giving up: the checks above decide.
			default:
				died(err)
				return rest, crashed
			}
			continue
		}

		// Idle: wait for work or for the worker to go. A worker that has
		// not said anything yet is polled now and then, so that its
		// announcement of readiness is seen without a task to wait for.
		var queueC chan *task
		if canSend {
			queueC = p.queue
		}
		var pollC <-chan time.Time
		if !w.answered {
			if poll == nil {
				poll = time.NewTicker(startPoll)
				defer poll.Stop()
			}
			pollC = poll.C
		}
		var closingC <-chan struct{}
		if len(backlog) == 0 && len(p.queue) == 0 {
			closingC = p.closing // wake an idle slot when Shutdown starts
		}
		select {
		case tk := <-queueC:
			if !send(tk) {
				died(nil)
				return rest, crashed
			}
		case <-w.cmd.Done():
			died(nil)
			return rest, crashed
		case <-s.cancelled:
			// Stale: nothing of this worker's is running.
		case <-s.recycle:
			w.retiring = true
		case <-pollC:
			if err := drain(); err != nil {
				died(err)
				return rest, crashed
			}
		case <-closingC:
		case <-p.quit:
		}
	}
}

// startPoll is how often an idle worker that has not said anything yet is
// checked for its announcement of readiness.
const startPoll = 2 * time.Millisecond

// recv reads w's next message, waiting until deadline (zero: no limit), or
// until interrupt or Close cancels the wait.
func (s *slot) recv(w *workerProc, deadline time.Time) (ipc.Message, error) {
	var ctx context.Context
	var cancel context.CancelFunc
	if deadline.IsZero() {
		ctx, cancel = context.WithCancel(s.p.quitCtx)
	} else {
		ctx, cancel = context.WithDeadline(s.p.quitCtx, deadline)
	}
	defer cancel()
	s.waitMu.Lock()
	s.waitCancel = cancel
	s.waitMu.Unlock()
	defer func() {
		s.waitMu.Lock()
		s.waitCancel = nil
		s.waitMu.Unlock()
	}()
	// A caller that gave up, or a task found above its memory limit,
	// before the wait was registered left its mark.
	if len(s.cancelled) > 0 || s.over.Load() != nil {
		cancel()
	}
	return w.ch.Recv(ctx)
}

// interrupt ends the slot's current wait for its worker, if any.
func (s *slot) interrupt() {
	s.waitMu.Lock()
	if s.waitCancel != nil {
		s.waitCancel()
	}
	s.waitMu.Unlock()
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

// depth returns how many tasks the worker may have in flight now. Above
// the cutoff, the round trip (tens of microseconds) no longer matters, and
// a task should not wait behind a long one.
func (s *slot) depth() int {
	cut := s.p.cfg.PipelineCutoff
	if cut > 0 && (s.taskTime == 0 || s.taskTime > cut) {
		return 1 // unknown or long tasks: one at a time
	}
	return s.p.cfg.Pipeline
}

// observe records how long a task took on the worker.
func (s *slot) observe(d time.Duration) {
	if d <= 0 {
		d = 1
	}
	if s.taskTime == 0 {
		s.taskTime = d
		return
	}
	s.taskTime += (d - s.taskTime) / 8
}
