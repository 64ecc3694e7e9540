// Package pool runs tasks on N warm worker processes: the "child processes
// execute tasks" half of kin's model, the counterpart of piscina or a hand-
// rolled child_process pool in Node, for workers in any language.
//
// Workers are started from a command (any program speaking the task protocol
// of docs/protocol.md: a Node script, a Python script, a Go program built
// with package worker) or from a Go function registered in this very program
// (worker.Register; the pool re-executes the program). Submit sends a task
// to a free worker and returns its result.
//
// Every task runs in a separate process, so a task that crashes, hangs or
// leaks cannot hurt the caller: a crash fails only that task (a *WorkerError
// with the exit status and the last lines of stderr) and the worker is
// replaced; a task past its timeout, or whose context ends, has its worker's
// whole process group killed and replaced; a worker that writes garbage on
// its channel is killed and replaced with an error saying so. Workers can be
// recycled after a number of tasks or above a memory ceiling.
package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
	"github.com/kinproc/kin/worker"
)

// Errors returned by Submit and Do.
var (
	// ErrClosed is returned for tasks submitted to, or still waiting in, a
	// pool that is closed.
	ErrClosed = errors.New("pool: closed")
	// ErrTimeout is wrapped by the error of a task that ran longer than its
	// timeout; its worker was killed.
	ErrTimeout = errors.New("pool: task timed out")
	// ErrMemory is wrapped by the error of a task whose worker went above
	// the task's memory limit (Task.MaxRSS); the worker was killed.
	ErrMemory = errors.New("pool: task over its memory limit")
)

// WorkerError reports a task that failed because its worker did. Err is a
// *proc.ExitError when the worker exited or was killed during the task, or
// the channel's error when the worker broke the protocol (it was then killed).
// The pool replaced the worker either way.
type WorkerError struct {
	PID int
	// Reason says what happened, in words: "exited during the task",
	// "broke the channel protocol".
	Reason string
	Err    error
}

func (e *WorkerError) Error() string {
	return fmt.Sprintf("pool: worker %d %s (replaced): %v", e.PID, e.Reason, e.Err)
}

func (e *WorkerError) Unwrap() error { return e.Err }

// Config configures a Pool. Either Command or Func is required; every other
// field's zero value is a sensible default.
type Config struct {
	// Command is the worker program and its arguments, e.g.
	// {"node", "worker.js"}. A name without a slash is looked up in $PATH.
	Command []string
	// Func names a worker registered with worker.Register in this program:
	// the pool starts copies of this program that serve it (worker.Main
	// must be called at the top of main).
	Func string
	// Env is the workers' whole environment; nil means this process's.
	// KIN_WORKER_INDEX (the worker's slot, 0…Workers-1) is added.
	Env []string
	// Dir is the workers' working directory; empty means this process's.
	Dir string
	// Workers is the number of worker processes; zero means the number of
	// CPUs.
	Workers int
	// Codec is the channel codec; zero means Frame for Func workers (Go)
	// and JSON for Command workers (any language).
	Codec ipc.Codec
	// QueueSize is how many submitted tasks may wait for a worker before
	// Submit blocks; zero means 64 per worker.
	QueueSize int
	// Pipeline is the most tasks a worker is sent before it has answered
	// the first: more than one hides the round trip (and coalesces writes
	// and reads) for tiny tasks. The pool uses that depth only while a
	// worker's tasks take less than PipelineCutoff, and sends tasks one at
	// a time otherwise, so that a long task never waits behind another.
	// Workers run tasks one at a time, in order (docs/protocol.md), so when
	// a worker dies the oldest unanswered task is the one that was running:
	// it fails, and the others are run again by the replacement. Zero means
	// 32; 1 turns pipelining off.
	Pipeline int
	// PipelineCutoff is the task duration (a moving average per worker)
	// up to which tasks are pipelined; zero means 1 ms, negative means
	// always pipeline.
	PipelineCutoff time.Duration
	// TaskTimeout bounds each task's run time, counted from when its
	// worker starts it; zero means no limit. A task over it fails with
	// ErrTimeout and its worker's process group is killed.
	TaskTimeout time.Duration
	// MaxTasks recycles a worker after that many tasks; zero means never.
	MaxTasks int
	// MaxRSS recycles a worker whose memory (RSS of its whole process
	// tree, sampled every SampleInterval) is above this many bytes, after
	// its current task; zero means no limit.
	MaxRSS uint64
	// StartTimeout bounds how long a worker that announces readiness may
	// take to do so before it is killed and started again; zero means 30 s.
	StartTimeout time.Duration
	// StopTimeout is how long a worker may take to exit after it is asked
	// to shut down, before it is killed; zero means 5 s.
	StopTimeout time.Duration
	// SampleInterval is how often workers' CPU and memory are read from
	// /proc; zero means 1 s.
	SampleInterval time.Duration
	// Stdout and Stderr receive the workers' output; nil means this
	// process's. The last lines of stderr also go into WorkerError.
	Stdout, Stderr io.Writer
	// MaxMessageSize bounds a task's or result's size; zero means 64 MiB.
	MaxMessageSize int
	// OnWorkerExit, when not nil, is called (on a pool goroutine) each time
	// a worker process ends, with its pid and how it ended (nil for a clean
	// exit after shutdown). For logging; keep it quick.
	OnWorkerExit func(pid int, err error)
}

// DefaultPipeline is Config.Pipeline's default.
const DefaultPipeline = 32

// Task is a task with options, for Do.
type Task struct {
	// Data is the task's payload: a JSON document for JSON workers, any
	// bytes for Frame workers.
	Data []byte
	// Timeout overrides Config.TaskTimeout when positive.
	Timeout time.Duration
	// Progress, when not nil, receives the task's progress reports. It is
	// called on a pool goroutine: keep it quick.
	Progress func(data []byte)
	// MaxRSS, when positive, is the task's memory limit in bytes: if the
	// RSS of its worker's whole process tree goes above it while the task
	// runs (sampled every Config.SampleInterval), the worker's process
	// group is killed and replaced, and the task fails with ErrMemory.
	// (Config.MaxRSS, by contrast, recycles a worker after its task.)
	MaxRSS uint64
}

// Pool is a set of warm worker processes. Its methods are safe for
// concurrent use.
type Pool struct {
	cfg   Config
	path  string
	args  []string
	env   []string
	codec ipc.Codec

	queue chan *task

	// closeMu makes "closed" and the last enqueue exclusive: Submit holds
	// it for reading while it enqueues.
	closeMu sync.RWMutex
	closed  bool
	closing chan struct{} // closed by Shutdown and Close: no new tasks
	quit    chan struct{} // closed by Close: abort everything
	// quitCtx is cancelled with quit, to end slots' waits for workers.
	quitCtx    context.Context
	quitCancel context.CancelFunc
	once       sync.Once
	qonce      sync.Once

	slots []*slot
	wg    sync.WaitGroup // slots, sampler, reapers

	// speaksReady is set once any worker has announced readiness: from then
	// on, replacement workers get tasks only after their Ready.
	speaksReady atomic.Bool

	submitted, completed, failed, restarts, requeued atomic.Uint64
	lat                                              latencies
	readyCh                                          chan struct{}
	readyN                                           atomic.Int32
	readyOnce                                        sync.Once
	live                                             atomic.Int32  // slots still running
	slotsDone                                        chan struct{} // closed when the last slot exits
}

type task struct {
	ctx       context.Context
	data      []byte
	timeout   time.Duration
	progress  func([]byte)
	maxRSS    uint64
	done      chan taskResult     // Do waits here…
	cb        func([]byte, error) // …or SubmitFunc's callback is called
	submitted time.Time
	abandoned atomic.Bool          // the caller gave up (its ctx ended)
	finished  atomic.Bool          // the result was delivered
	slot      atomic.Pointer[slot] // the slot that sent it to a worker
	stopCtx   atomic.Pointer[func() bool]
	// Owned by the slot that took the task:
	id      uint64
	started time.Time // when the worker began it (head of the FIFO)
}

type taskResult struct {
	data []byte
	err  error
}

// New validates cfg, starts the workers, and returns the pool. It does not
// wait for the workers to be ready (see Ready); tasks submitted meanwhile
// wait in the queue.
func New(cfg Config) (*Pool, error) {
	p := &Pool{cfg: cfg}
	if err := p.setup(); err != nil {
		return nil, err
	}
	// Start the first worker synchronously: a command that cannot start
	// (not found, not executable) is an error for New, not a crash loop.
	w, err := p.slots[0].start()
	if err != nil {
		return nil, err
	}
	p.slots[0].first = w
	p.live.Store(int32(len(p.slots)))
	p.wg.Add(len(p.slots) + 1)
	for _, s := range p.slots {
		go s.run()
	}
	go p.sample()
	return p, nil
}

func (p *Pool) setup() error {
	cfg := &p.cfg
	switch {
	case len(cfg.Command) > 0 && cfg.Func != "":
		return errors.New("pool: set Config.Command or Config.Func, not both")
	case len(cfg.Command) > 0:
		p.path, p.args = cfg.Command[0], cfg.Command[1:]
		p.codec = ipc.JSON
	case cfg.Func != "":
		exe, entry, err := worker.Command(cfg.Func)
		if err != nil {
			return err
		}
		p.path = exe
		p.env = append(p.env, entry)
		p.codec = ipc.Frame
	default:
		return errors.New("pool: Config.Command or Config.Func is required")
	}
	if cfg.Codec != "" {
		c, err := ipc.ParseCodec(string(cfg.Codec))
		if err != nil {
			return err
		}
		p.codec = c
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.NumCPU()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 64 * cfg.Workers
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = DefaultPipeline
	}
	if cfg.PipelineCutoff == 0 {
		cfg.PipelineCutoff = time.Millisecond
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = time.Second
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	base := cfg.Env
	if base == nil {
		base = os.Environ()
	}
	p.env = append(append([]string(nil), base...), p.env...)
	p.queue = make(chan *task, cfg.QueueSize)
	p.closing = make(chan struct{})
	p.quit = make(chan struct{})
	p.quitCtx, p.quitCancel = context.WithCancel(context.Background())
	p.readyCh = make(chan struct{})
	p.slotsDone = make(chan struct{})
	p.slots = make([]*slot, cfg.Workers)
	for i := range p.slots {
		p.slots[i] = &slot{p: p, index: i, cancelled: make(chan struct{}, 1), recycle: make(chan struct{}, 1)}
	}
	return nil
}

// Submit runs a task with data on a worker and returns its result's data.
// It blocks while the queue is full. When ctx ends before the task is done,
// Submit returns ctx.Err(); if the task was running, its worker is killed
// and replaced. A task that failed in its handler returns an *ipc.RemoteError.
func (p *Pool) Submit(ctx context.Context, data []byte) ([]byte, error) {
	return p.Do(ctx, Task{Data: data})
}

// Do is Submit with options.
func (p *Pool) Do(ctx context.Context, t Task) ([]byte, error) {
	tk := p.newTask(ctx, t)
	tk.done = make(chan taskResult, 1)
	if err := p.enqueue(ctx, tk); err != nil {
		return nil, err
	}
	r := <-tk.done
	return r.data, r.err
}

// SubmitFunc queues t and returns without waiting for it: done is called
// exactly once with the result, on a pool goroutine (keep it quick). It
// blocks while the queue is full; an error means t was not queued and done
// will not be called. It saves a goroutine per task when a caller has many
// tasks in flight.
func (p *Pool) SubmitFunc(ctx context.Context, t Task, done func(data []byte, err error)) error {
	tk := p.newTask(ctx, t)
	tk.cb = done
	return p.enqueue(ctx, tk)
}

func (p *Pool) newTask(ctx context.Context, t Task) *task {
	tk := &task{
		ctx:       ctx,
		data:      t.Data,
		timeout:   t.Timeout,
		progress:  t.Progress,
		maxRSS:    t.MaxRSS,
		submitted: time.Now(),
	}
	if tk.timeout <= 0 {
		tk.timeout = p.cfg.TaskTimeout
	}
	return tk
}

func (p *Pool) enqueue(ctx context.Context, tk *task) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() != nil {
		// When the caller gives up, answer at once; the slot running the
		// task, if any, kills its worker. Registered before the task is
		// queued: a slot may finish it at any moment after.
		stop := context.AfterFunc(ctx, func() {
			tk.abandoned.Store(true)
			tk.finish(nil, ctx.Err())
			if s := tk.slot.Load(); s != nil {
				select {
				case s.cancelled <- struct{}{}:
				default:
				}
				s.interrupt()
			}
		})
		tk.stopCtx.Store(&stop)
	}
	if err := p.push(ctx, tk); err != nil {
		if stop := tk.stopCtx.Load(); stop != nil && !(*stop)() {
			// The context ended meanwhile and its hook has answered (or is
			// answering) the task: say so rather than answer twice.
			if !tk.finished.CompareAndSwap(false, true) {
				return nil
			}
		}
		tk.finished.Store(true)
		return err
	}
	p.submitted.Add(1)
	return nil
}

// push puts tk on the queue, waiting while it is full.
func (p *Pool) push(ctx context.Context, tk *task) error {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	select {
	case p.queue <- tk:
		return nil
	default:
	}
	select {
	case p.queue <- tk:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.closing:
		return ErrClosed
	}
}

// Ready waits until every worker has started (and announced readiness, for
// workers that do), or ctx ends.
func (p *Pool) Ready(ctx context.Context) error {
	select {
	case <-p.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.quit:
		return ErrClosed
	}
}

func (p *Pool) markReady(s *slot) {
	if !s.everReady {
		s.everReady = true
		if int(p.readyN.Add(1)) == len(p.slots) {
			p.readyOnce.Do(func() { close(p.readyCh) })
		}
	}
}

// Shutdown stops taking tasks, lets every queued and running task finish,
// asks the workers to exit, and returns once they have. If ctx ends first,
// it does what Close does and returns ctx.Err().
func (p *Pool) Shutdown(ctx context.Context) error {
	p.stopIntake()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.failQueued()
		return nil
	case <-ctx.Done():
		p.Close()
		return ctx.Err()
	}
}

// Close stops at once: running and queued tasks fail with ErrClosed, and the
// workers' process groups are killed. It returns after every worker is gone
// and every goroutine of the pool has exited. It is idempotent.
func (p *Pool) Close() error {
	p.stopIntake()
	p.qonce.Do(func() {
		close(p.quit)
		p.quitCancel()
	})
	p.wg.Wait()
	p.failQueued()
	return nil
}

func (p *Pool) stopIntake() {
	p.once.Do(func() {
		close(p.closing)
		p.closeMu.Lock()
		p.closed = true
		p.closeMu.Unlock()
	})
}

// failQueued fails tasks left in the queue after the slots have exited.
func (p *Pool) failQueued() {
	for {
		select {
		case tk := <-p.queue:
			tk.finish(nil, ErrClosed)
		default:
			return
		}
	}
}

// finish delivers the task's result, once; later calls do nothing.
func (t *task) finish(data []byte, err error) {
	if !t.finished.CompareAndSwap(false, true) {
		return
	}
	if stop := t.stopCtx.Load(); stop != nil {
		(*stop)()
	}
	if t.cb != nil {
		t.cb(data, err)
		return
	}
	t.done <- taskResult{data, err}
}

// Stats is a snapshot of a pool's state.
type Stats struct {
	Workers int `json:"workers"`
	// Busy is the number of workers running a task.
	Busy int `json:"busy"`
	// Queued is the number of tasks waiting for a worker.
	Queued    int    `json:"queued"`
	Submitted uint64 `json:"submitted"`
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
	// Restarts counts worker processes started to replace others.
	Restarts uint64 `json:"restarts"`
	// Requeued counts tasks sent ahead to a worker that died before
	// starting them, and run again on another.
	Requeued uint64 `json:"requeued"`
	// Latency percentiles, from Submit to result, over recent tasks.
	LatencyP50 time.Duration `json:"latency_p50_ns"`
	LatencyP90 time.Duration `json:"latency_p90_ns"`
	LatencyP99 time.Duration `json:"latency_p99_ns"`
	LatencyMax time.Duration `json:"latency_max_ns"`
	PerWorker  []WorkerStats `json:"per_worker"`
}

// WorkerStats describes one worker; CPU and RSS are as of the last sample.
type WorkerStats struct {
	Index int `json:"index"`
	PID   int `json:"pid"`
	// State is "starting", "idle", "busy" or "stopped".
	State string `json:"state"`
	// Tasks counts tasks this worker process finished.
	Tasks int `json:"tasks"`
	// CPUPercent is CPU use over the last sample interval, of one core.
	CPUPercent float64       `json:"cpu_percent"`
	RSS        uint64        `json:"rss"`
	Uptime     time.Duration `json:"uptime_ns"`
}

// Stats returns the pool's current state.
func (p *Pool) Stats() Stats {
	st := Stats{
		Workers:   len(p.slots),
		Queued:    len(p.queue),
		Submitted: p.submitted.Load(),
		Completed: p.completed.Load(),
		Failed:    p.failed.Load(),
		Restarts:  p.restarts.Load(),
		Requeued:  p.requeued.Load(),
	}
	st.LatencyP50, st.LatencyP90, st.LatencyP99, st.LatencyMax = p.lat.percentiles()
	for _, s := range p.slots {
		ws := s.stats()
		if ws.State == "busy" {
			st.Busy++
		}
		st.PerWorker = append(st.PerWorker, ws)
	}
	return st
}

// latencies keeps the most recent task latencies.
type latencies struct {
	mu   sync.Mutex
	ring [4096]time.Duration
	n    int
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ring[l.n%len(l.ring)] = d
	l.n++
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p90, p99, max time.Duration) {
	l.mu.Lock()
	n := min(l.n, len(l.ring))
	s := append([]time.Duration(nil), l.ring[:n]...)
	l.mu.Unlock()
	if n == 0 {
		return
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return s[min(n-1, int(q*float64(n)))] }
	return at(0.50), at(0.90), at(0.99), s[n-1]
}

// sample reads the workers' CPU and memory every SampleInterval and asks
// workers above MaxRSS to recycle.
func (p *Pool) sample() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.slotsDone:
			return
		}
		snap, err := proc.TakeSnapshot()
		if err != nil {
			continue
		}
		for _, s := range p.slots {
			s.sampled(snap)
		}
	}
}
