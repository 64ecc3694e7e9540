package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler runs one job in this process and returns its result (a JSON
// document, or nil). ctx ends at the job's timeout and when Work gives up
// draining; a handler must honour it. A panic fails the attempt with
// CauseCrash.
type Handler func(ctx context.Context, job *Job) (json.RawMessage, error)

// WorkConfig says how jobs run. Exactly one of Handler, Pool and Command is
// required; every other field's zero value is a sensible default.
type WorkConfig struct {
	// Handler runs jobs in this process.
	Handler Handler
	// Pool runs jobs on its worker processes, each job's data being a
	// task's data: any program speaking the task protocol
	// (docs/protocol.md). Work neither starts nor closes it.
	Pool *pool.Pool
	// Command is a worker program Work starts a pool of (Concurrency
	// workers) and closes at the end, e.g. {"node", "worker.js"}.
	Command []string
	// Env and Dir are the Command workers' environment (nil: this
	// process's) and working directory.
	Env []string
	Dir string

	// Concurrency is how many jobs run at once: handler goroutines, or
	// worker processes. Zero means 1 for a Handler, the pool's size for a
	// Pool, and the number of CPUs for a Command.
	Concurrency int
	// Prefetch is how many jobs this worker takes from the queue ahead of
	// those running, so that tiny jobs do not wait for a round trip to the
	// server (their acknowledgement deadlines are kept alive while they
	// wait). Zero adapts it to how long jobs take: up to 256 for jobs
	// under a millisecond, none for jobs over 20 ms; negative means none.
	Prefetch int
	// Timeout is the timeout of jobs that have none; zero means none.
	Timeout time.Duration
	// MaxMemory is the memory limit of jobs that have none (bytes); zero
	// means none.
	MaxMemory uint64
	// DrainTimeout bounds how long Work lets running jobs finish once ctx
	// has ended; then they are stopped (their worker processes killed) and
	// given back to the queue. Zero means 30 s.
	DrainTimeout time.Duration
	// Log receives what goes wrong in the background (a lost connection,
	// a record that could not be written); nil means nowhere.
	Log *slog.Logger
	// OnDone, when not nil, is called with each job's record once an
	// attempt's outcome is stored: completed, failed or dead. It is called
	// on one goroutine, in order: keep it quick.
	OnDone func(job *Job)
}

// WorkStats counts what a Work call did.
type WorkStats struct {
	Completed, Failed, Dead uint64
	// Duplicates counts deliveries of jobs already completed or dead
	// (their acknowledgement was lost), acknowledged without running.
	Duplicates uint64
	// Released counts jobs given back unfinished at shutdown.
	Released uint64
}

// Work runs jobs of queue until ctx ends, then stops taking jobs, lets the
// running ones finish (at most DrainTimeout), and returns nil. The queue is
// created if it does not exist.
//
// Each job is an attempt: the result is recorded and the job acknowledged;
// a failure is recorded with its cause and the job is retried after its
// backoff, or dead-lettered after its last attempt. Jobs are delivered at
// least once: a job whose worker was lost is run again, and a job whose
// acknowledgement was lost is recognised as done and not run again.
//
// It returns counts of what it did.
func (c *Client) Work(ctx context.Context, queue string, cfg WorkConfig) (WorkStats, error) {
	n := 0
	for _, set := range []bool{cfg.Handler != nil, cfg.Pool != nil, len(cfg.Command) > 0} {
		if set {
			n++
		}
	}
	if n != 1 {
		return WorkStats{}, errors.New("queue: WorkConfig needs exactly one of Handler, Pool and Command")
	}
	h, err := c.handle(ctx, queue)
	if err != nil {
		return WorkStats{}, err
	}
	w := &worker{c: c, h: h, q: queue, cfg: cfg, pool: cfg.Pool}
	switch {
	case cfg.Handler != nil:
		w.conc = max(cfg.Concurrency, 1)
	case cfg.Pool != nil:
		w.conc = cfg.Concurrency
		if w.conc <= 0 {
			w.conc = cfg.Pool.Stats().Workers
		}
	default:
		w.conc = cfg.Concurrency
		if w.conc <= 0 {
			w.conc = runtime.NumCPU()
		}
		p, err := pool.New(pool.Config{
			Command:        cfg.Command,
			Env:            cfg.Env,
			Dir:            cfg.Dir,
			Workers:        w.conc,
			QueueSize:      maxPrefetch + w.conc,
			SampleInterval: 250 * time.Millisecond,
		})
		if err != nil {
			return WorkStats{}, fmt.Errorf("queue: %w", err)
		}
		w.pool, w.ownPool = p, true
	}
	w.log = cfg.Log
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.cfg.DrainTimeout <= 0 {
		w.cfg.DrainTimeout = 30 * time.Second
	}
	w.run(ctx)
	return WorkStats{
		Completed:  w.completed.Load(),
		Failed:     w.failed.Load(),
		Dead:       w.dead.Load(),
		Duplicates: w.duplicates.Load(),
		Released:   w.released.Load(),
	}, nil
}

// ackTimeout bounds the wait for a publish's acknowledgement before it is
// published again.
const ackTimeout = 10 * time.Second

// maxPrefetch bounds WorkConfig.Prefetch's adaptive value.
const maxPrefetch = 256

// idlePoll is how long an idle worker's pull requests wait at the server
// for a job before they are renewed. It also bounds how long Work takes to
// return once idle.
const idlePoll = 500 * time.Millisecond

// worker is one Work call.
//
// Goroutines: the fetcher takes jobs from the server and dispatches them
// (to the handler goroutines, or to the pool); the committer writes each
// job's verdict (record, then acknowledgement) in order; the keeper renews
// the acknowledgement deadline of every held job. Lock order: run.mu may be
// taken while holding nothing, and worker.mu likewise; never both.
type worker struct {
	c       *Client
	h       *queueHandle
	q       string
	cfg     WorkConfig
	pool    *pool.Pool
	ownPool bool
	conc    int
	log     *slog.Logger

	stop       chan struct{} // closed when ctx ends: take no more jobs
	hardCtx    context.Context
	hardCancel context.CancelFunc // at the drain timeout: abandon running jobs
	wg         sync.WaitGroup

	mu    sync.Mutex
	held  map[*run]struct{} // taken from the server, not yet settled
	freed chan struct{}     // (cap 1) a held job was settled
	empty chan struct{}     // (cap 1) no job is held

	jobs     chan *run // to handler goroutines
	verdicts chan *verdict
	ackTimer *time.Timer // the committer's

	avg      atomic.Int64 // moving average of how long jobs take, ns
	finMu    sync.Mutex
	finishes [32]time.Time // when the last jobs finished (a ring)
	finN     int

	completed, failed, dead, duplicates, released atomic.Uint64
}

// run is one delivery of a job.
type run struct {
	msg     jetstream.Msg
	prio    Priority
	id      string
	touched time.Time // when its deadline was last renewed (worker.mu)

	// Set by prepare.
	opts jobOpts
	data json.RawMessage
	mu   sync.Mutex // guards rec and done (progress reports race the end)
	rec  Job
	done bool
}

type action int

const (
	actAck action = iota
	actNak
	actNone // leave it: the server redelivers after AckWait
)

// verdict is what to do with a settled job: store msgs (records, the dead
// letter), announce the events of the records among them, then
// acknowledge or not.
type verdict struct {
	r       *run
	rec     *Job // for OnDone; nil: not an outcome
	msgs    []*nats.Msg
	futures []jetstream.PubAckFuture
	// after are published once msgs are stored.
	after []*nats.Msg
	act   action
	delay time.Duration
}

// announce publishes the events of the verdict's records, once they are
// stored.
func (v *verdict) announce(c *Client, q string) {
	for _, ms := range [2][]*nats.Msg{v.msgs, v.after} {
		for _, m := range ms {
			if m.Header.Get(hdrEvent) != "" && strings.HasPrefix(m.Subject, "$KV.") {
				c.announce(q, m)
			}
		}
	}
}

func (w *worker) run(ctx context.Context) {
	w.stop = make(chan struct{})
	w.hardCtx, w.hardCancel = context.WithCancel(context.Background())
	defer w.hardCancel()
	w.held = map[*run]struct{}{}
	w.freed = make(chan struct{}, 1)
	w.empty = make(chan struct{}, 1)
	w.jobs = make(chan *run)
	w.verdicts = make(chan *verdict, 2*maxPrefetch+w.conc)
	fetchDone := make(chan struct{})
	keeperQuit := make(chan struct{})
	w.wg.Add(3)
	go func() {
		defer w.wg.Done()
		defer close(fetchDone)
		w.fetchLoop()
	}()
	go w.commitLoop()
	go w.keepAlive(keeperQuit)
	if w.cfg.Handler != nil {
		w.wg.Add(w.conc)
		for range w.conc {
			go w.handlerLoop()
		}
	}

	<-ctx.Done()
	close(w.stop)
	<-fetchDone
	if !w.waitHeld(w.cfg.DrainTimeout) {
		w.log.Warn("queue: drain timeout: stopping running jobs", "queue", w.q, "timeout", w.cfg.DrainTimeout)
		w.hardCancel()
		w.waitHeld(0)
	}
	close(w.jobs)
	close(w.verdicts)
	close(keeperQuit)
	w.wg.Wait()
	if w.ownPool {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w.pool.Shutdown(sctx)
		cancel()
	}
}

// waitHeld waits until no job is held, at most d (zero: no limit), and
// reports whether none is.
func (w *worker) waitHeld(d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	for {
		w.mu.Lock()
		n := len(w.held)
		w.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-w.empty:
		case <-timeout:
			return false
		}
	}
}

func (w *worker) heldCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.held)
}

// hold records a job taken from the server.
func (w *worker) hold(m jetstream.Msg) *run {
	r := &run{msg: m}
	// kin.q.<queue>.<priority>.<id>
	rest := strings.TrimPrefix(m.Subject(), "kin.q."+w.q+".")
	p, id, _ := strings.Cut(rest, ".")
	r.prio, r.id = Priority(p), id
	if !r.prio.valid() {
		r.prio = Normal
	}
	w.mu.Lock()
	r.touched = time.Now()
	w.held[r] = struct{}{}
	w.mu.Unlock()
	return r
}

// let forgets a settled job.
func (w *worker) let(r *run) {
	w.mu.Lock()
	delete(w.held, r)
	n := len(w.held)
	w.mu.Unlock()
	select {
	case w.freed <- struct{}{}:
	default:
	}
	if n == 0 {
		select {
		case w.empty <- struct{}{}:
		default:
		}
	}
}

// capacity is how many jobs the worker may hold.
func (w *worker) capacity() int {
	switch {
	case w.cfg.Prefetch > 0:
		return w.conc + w.cfg.Prefetch
	case w.cfg.Prefetch < 0:
		return w.conc
	}
	avg := time.Duration(w.avg.Load())
	switch {
	case avg == 0:
		return 2 * w.conc
	case avg < time.Millisecond:
		return w.conc + maxPrefetch
	case avg < 20*time.Millisecond:
		return 2 * w.conc
	}
	return w.conc
}

// observe records how long a job took: the smaller of its own time from
// start to finish (which, for a job handed to a pool, includes its wait
// there behind others) and the time the last jobs took to finish, per job
// and per unit of concurrency (which is too long when the worker is idle
// now and then).
func (w *worker) observe(now time.Time, ran time.Duration) {
	d := ran
	w.finMu.Lock()
	oldest := w.finishes[w.finN%len(w.finishes)]
	w.finishes[w.finN%len(w.finishes)] = now
	w.finN++
	full := w.finN > len(w.finishes)
	w.finMu.Unlock()
	if full {
		if per := now.Sub(oldest) * time.Duration(w.conc) / time.Duration(len(w.finishes)); per < d {
			d = per
		}
	}
	if d <= 0 {
		d = 1
	}
	for {
		old := w.avg.Load()
		nv := int64(d)
		if old != 0 {
			nv = old + (int64(d)-old)/8
		}
		if w.avg.CompareAndSwap(old, nv) {
			return
		}
	}
}

// fetchLoop takes jobs from the server, highest priority first, as long as
// the worker has room, and dispatches them.
func (w *worker) fetchLoop() {
	var local [len(priorities)][]*run // taken, not dispatched
	var idle [len(priorities)]<-chan jetstream.Msg
	cons := w.h.cons
	pop := func() *run {
		for i := range local {
			if len(local[i]) > 0 {
				r := local[i][0]
				local[i] = local[i][1:]
				return r
			}
		}
		return nil
	}
	peek := func() *run {
		for i := range local {
			if len(local[i]) > 0 {
				return local[i][0]
			}
		}
		return nil
	}
	take := func(m jetstream.Msg) {
		r := w.hold(m)
		local[r.prio.index()] = append(local[r.prio.index()], r)
	}
	var errDelay time.Duration
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	failed := func(err error) {
		errDelay = min(max(2*errDelay, 50*time.Millisecond), 2*time.Second)
		w.log.Warn("queue: fetch", "queue", w.q, "err", err, "retry_in", errDelay)
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
			// The queue was deleted: make it again.
			w.c.forget(w.q)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if h, err := w.c.handle(ctx, w.q); err == nil {
				cons = h.cons
			}
			cancel()
		}
		retry = time.NewTimer(errDelay)
	}
loop:
	for {
		select {
		case <-w.stop:
			break loop
		default:
		}
		if w.pool != nil {
			for r := pop(); r != nil; r = pop() {
				w.submit(r)
			}
		}
		held := w.heldCount()
		free := w.capacity() - held
		if retry == nil && free > 0 && (free >= max(1, w.capacity()/4) || held == 0) {
			got := 0
			var ferr error
			for i := range cons {
				if free-got <= 0 {
					break
				}
				b, err := cons[i].FetchNoWait(free - got)
				if err != nil {
					ferr = err
					break
				}
				for m := range b.Messages() {
					take(m)
					got++
				}
				if err := b.Error(); err != nil {
					ferr = err
					break
				}
			}
			switch {
			case ferr != nil:
				failed(ferr)
			case got > 0:
				errDelay = 0
				continue
			default:
				errDelay = 0
				// Nothing waiting: wait at the server for the next job of
				// any priority.
				for i := range cons {
					if idle[i] == nil {
						b, err := cons[i].Fetch(1, jetstream.FetchMaxWait(idlePoll))
						if err != nil {
							failed(err)
							break
						}
						idle[i] = b.Messages()
					}
				}
			}
		}
		var jobsC chan *run
		next := peek()
		if w.pool == nil && next != nil {
			jobsC = w.jobs
		}
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		select {
		case jobsC <- next:
			pop()
		case m, ok := <-idle[0]:
			if !ok {
				idle[0] = nil
			} else {
				take(m)
			}
		case m, ok := <-idle[1]:
			if !ok {
				idle[1] = nil
			} else {
				take(m)
			}
		case m, ok := <-idle[2]:
			if !ok {
				idle[2] = nil
			} else {
				take(m)
			}
		case <-retryC:
			retry = nil
		case <-w.freed:
		case <-w.stop:
		}
	}
	// Give back what was not started, and what the outstanding pull
	// requests still deliver (they end within idlePoll). Wait for those to
	// end first: a job given back while one is pending would come straight
	// back to it.
	for i := range idle {
		if idle[i] == nil {
			continue
		}
		for m := range idle[i] {
			take(m)
		}
	}
	for r := pop(); r != nil; r = pop() {
		w.release(r)
	}
}

// handlerLoop runs jobs with the in-process handler.
func (w *worker) handlerLoop() {
	defer w.wg.Done()
	for r := range w.jobs {
		if !w.prepare(r) {
			continue
		}
		timeout := r.opts.timeout
		if timeout <= 0 {
			timeout = w.cfg.Timeout
		}
		ctx, cancel := w.hardCtx, context.CancelFunc(func() {})
		if timeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, timeout)
		}
		r.mu.Lock()
		job := r.rec
		r.mu.Unlock()
		job.Data = r.data
		job.progress = func(d json.RawMessage) error { return w.progress(r, d) }
		res, err := w.callHandler(ctx, &job)
		cancel()
		switch {
		case err == nil:
			w.finish(r, res, nil)
		case w.hardCtx.Err() != nil:
			w.release(r)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			w.finish(r, nil, &JobError{Message: fmt.Sprintf("timed out after %v: %v", timeout, err), Cause: CauseTimeout})
		default:
			je := &JobError{Message: err.Error(), Cause: CauseError}
			var pe *panicError
			if errors.As(err, &pe) {
				je.Cause, je.Stack = CauseCrash, pe.stack
			}
			w.finish(r, nil, je)
		}
	}
}

type panicError struct {
	v     any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.v) }

func (w *worker) callHandler(ctx context.Context, job *Job) (res json.RawMessage, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, &panicError{v: v, stack: string(debug.Stack())}
		}
	}()
	return w.cfg.Handler(ctx, job)
}

// submit runs a job on the pool.
func (w *worker) submit(r *run) {
	if !w.prepare(r) {
		return
	}
	timeout := r.opts.timeout
	if timeout <= 0 {
		timeout = w.cfg.Timeout
	}
	maxMem := r.opts.maxMemory
	if maxMem == 0 {
		maxMem = w.cfg.MaxMemory
	}
	t := pool.Task{
		Data:     r.data,
		Timeout:  timeout,
		MaxRSS:   maxMem,
		Progress: func(d []byte) { w.progress(r, d) },
	}
	err := w.pool.SubmitFunc(w.hardCtx, t, func(res []byte, err error) { w.poolDone(r, res, err) })
	if err != nil {
		w.release(r)
	}
}

// poolDone judges a pool task's outcome.
func (w *worker) poolDone(r *run, res []byte, err error) {
	if err == nil {
		w.finish(r, res, nil)
		return
	}
	var we *pool.WorkerError
	var re *ipc.RemoteError
	je := &JobError{Message: err.Error(), Cause: CauseError}
	switch {
	case w.hardCtx.Err() != nil || errors.Is(err, pool.ErrClosed) || errors.Is(err, context.Canceled):
		w.release(r)
		return
	case errors.Is(err, pool.ErrTimeout):
		je.Cause = CauseTimeout
	case errors.Is(err, pool.ErrMemory):
		je.Cause = CauseMemory
	case errors.As(err, &we):
		je.Cause = CauseCrash
	case errors.As(err, &re):
		je.Message, je.Stack = re.Message, re.Stack
	}
	w.finish(r, nil, je)
}

// attemptOf works out which attempt delivery r is, from the message's
// delivery count and, for a redelivery, the job's last record. done is
// true when the record says the job is already completed or dead.
func (w *worker) attemptOf(r *run, md *jetstream.MsgMetadata) (attempt int, lost *JobError, done bool) {
	attempt = int(md.NumDelivered)
	if md.NumDelivered <= 1 {
		return attempt, nil, false
	}
	ctx, cancel := context.WithTimeout(w.hardCtx, 5*time.Second)
	defer cancel()
	last, err := w.c.lastRecord(ctx, w.h, r.id)
	if err != nil || last == nil {
		return attempt, nil, false
	}
	switch last.State {
	case Completed, Dead:
		return 0, nil, true
	case Active:
		// The attempt that last started never ended: its worker went away.
		lost = &JobError{Message: fmt.Sprintf("attempt %d: the worker running the job (%s) went away", last.Attempt, last.Worker), Cause: CauseLost}
	}
	return last.Attempt + 1, lost, false
}

// prepare decodes a delivered job and records that it starts; it reports
// false when the job is not to run (a duplicate, or dead already).
func (w *worker) prepare(r *run) bool {
	md, err := r.msg.Metadata()
	if err != nil {
		w.log.Error("queue: not a JetStream message", "queue", w.q, "subject", r.msg.Subject(), "err", err)
		w.settle(&verdict{r: r, act: actNone})
		return false
	}
	o, herr := decodeHeaders(r.msg.Headers())
	if herr == nil && !validID(r.id) {
		// A foreign producer's: its record could not be a KV key.
		herr = fmt.Errorf("queue: bad job id %q: want 1 to 128 of A–Z a–z 0–9 - _ =", r.id)
	}
	r.opts, r.data = o, r.msg.Data()
	if len(r.data) == 0 {
		r.data = nil
	}
	rec := &r.rec
	*rec = Job{
		ID: r.id, Queue: w.q, State: Active, Priority: r.prio, Attempts: o.attempts,
		Added: o.added, Worker: w.c.worker, Timeout: o.timeout, MaxMemory: o.maxMemory,
	}
	if rec.Added.IsZero() {
		rec.Added = md.Timestamp
	}
	if herr != nil {
		rec.Attempt = int(md.NumDelivered)
		w.bury(r, &JobError{Message: herr.Error(), Cause: CauseInvalid})
		return false
	}
	attempt, lost, done := w.attemptOf(r, md)
	if done {
		w.duplicates.Add(1)
		w.settle(&verdict{r: r, act: actAck})
		return false
	}
	rec.Attempt = attempt
	if attempt > o.attempts {
		if lost == nil {
			lost = &JobError{Message: "no attempt left", Cause: CauseLost}
		}
		rec.Attempt = o.attempts
		w.bury(r, lost)
		return false
	}
	rec.Error = lost
	rec.Started = time.Now()
	// Not waited for: should it be lost, the next record replaces it.
	m := recordMsg(w.q, EventActive, rec)
	if err := w.c.nc.PublishMsg(m); err != nil {
		w.log.Warn("queue: record", "queue", w.q, "id", r.id, "err", err)
	} else {
		w.c.announce(w.q, m)
	}
	return true
}

// progress publishes a progress report of a running job.
func (w *worker) progress(r *run, data json.RawMessage) error {
	data = asJSON(data)
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		return nil
	}
	r.rec.Progress = data
	m := recordMsg(w.q, EventProgress, &r.rec)
	r.mu.Unlock()
	if err := w.c.nc.PublishMsg(m); err != nil {
		return fmt.Errorf("queue: progress: %w", err)
	}
	w.c.announce(w.q, m)
	return nil
}

// asJSON returns b if it is a JSON document, else b as a JSON string (a
// frame-codec worker may answer any bytes).
func asJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// finish settles an attempt that ran: completed (jerr nil), failed and
// retried later, or dead.
func (w *worker) finish(r *run, result []byte, jerr *JobError) {
	now := time.Now()
	r.mu.Lock()
	r.done = true
	rec := r.rec
	r.mu.Unlock()
	w.observe(now, now.Sub(rec.Started))
	rec.Finished = now
	if jerr == nil {
		rec.State, rec.Result, rec.Error = Completed, asJSON(result), nil
		w.completed.Add(1)
		w.publish(&verdict{r: r, rec: &rec, msgs: []*nats.Msg{recordMsg(w.q, EventCompleted, &rec)}, act: actAck})
		return
	}
	if rec.Attempt >= rec.Attempts {
		r.rec = rec
		w.bury(r, jerr)
		return
	}
	w.failed.Add(1)
	delay := r.opts.backoff.Wait(rec.Attempt)
	rec.State, rec.Error, rec.RunAt = Failed, jerr, now.Add(delay)
	w.publish(&verdict{r: r, rec: &rec, msgs: []*nats.Msg{recordMsg(w.q, EventFailed, &rec)}, act: actNak, delay: delay})
}

// bury dead-letters the job: its message goes to the dead-letter stream
// and its record says dead.
func (w *worker) bury(r *run, jerr *JobError) {
	w.dead.Add(1)
	rec := r.rec
	rec.State, rec.Error = Dead, jerr
	if rec.Finished.IsZero() {
		rec.Finished = time.Now()
	}
	dm := &nats.Msg{Subject: deadSubject(w.q, r.id), Data: r.msg.Data(), Header: nats.Header{}}
	for k, v := range r.msg.Headers() {
		if strings.HasPrefix(k, "Kin-") {
			dm.Header[k] = v
		}
	}
	dm.Header[hdrPriority] = []string{string(r.prio)}
	if dm.Header.Get(hdrAdded) == "" {
		dm.Header[hdrAdded] = []string{strconv.FormatInt(rec.Added.UnixMilli(), 10)}
	}
	// The dead event follows the dead letter: whoever sees the event can
	// retry the job.
	w.publish(&verdict{r: r, rec: &rec, msgs: []*nats.Msg{dm}, after: []*nats.Msg{recordMsg(w.q, EventDead, &rec)}, act: actAck})
}

// release gives an unfinished job back to the queue, without counting an
// attempt: it was not the job's fault.
func (w *worker) release(r *run) {
	w.released.Add(1)
	md, err := r.msg.Metadata()
	if err != nil {
		w.settle(&verdict{r: r, act: actNak})
		return
	}
	r.mu.Lock()
	r.done = true
	started := r.rec.ID != ""
	rec := r.rec
	r.mu.Unlock()
	attempt := rec.Attempt
	if !started {
		var done bool
		if attempt, _, done = w.attemptOf(r, md); done {
			w.settle(&verdict{r: r, act: actAck})
			return
		}
		o, _ := decodeHeaders(r.msg.Headers())
		rec = Job{ID: r.id, Queue: w.q, Priority: r.prio, Attempts: o.attempts, Added: o.added}
		if rec.Added.IsZero() {
			rec.Added = md.Timestamp
		}
	}
	rec.State, rec.Attempt, rec.Started, rec.Progress = Waiting, attempt-1, time.Time{}, nil
	w.publish(&verdict{r: r, msgs: []*nats.Msg{recordMsg(w.q, EventWaiting, &rec)}, act: actNak})
}

// publish starts the verdict's publishes and hands it to the committer.
func (w *worker) publish(v *verdict) {
	v.futures = make([]jetstream.PubAckFuture, len(v.msgs))
	for i, m := range v.msgs {
		f, err := w.c.js.PublishMsgAsync(m)
		if err == nil {
			v.futures[i] = f
		}
	}
	w.settle(v)
}

// settle hands v to the committer.
func (w *worker) settle(v *verdict) {
	w.verdicts <- v
}

// commitLoop waits, in order, for each verdict's publishes to be stored,
// then acknowledges the job: a job is never acknowledged before its record.
func (w *worker) commitLoop() {
	defer w.wg.Done()
	w.ackTimer = time.NewTimer(time.Hour)
	defer w.ackTimer.Stop()
	for v := range w.verdicts {
		ok := true
		for i, f := range v.futures {
			if !w.await(f, v.msgs[i]) {
				ok = false
			}
		}
		for _, m := range v.after {
			if ok {
				f, _ := w.c.js.PublishMsgAsync(m)
				ok = w.await(f, m)
			}
		}
		if ok {
			v.announce(w.c, w.q)
		}
		var err error
		switch {
		case !ok || v.act == actNone:
		case v.act == actAck:
			err = v.r.msg.Ack()
		case v.delay > 0:
			err = v.r.msg.NakWithDelay(v.delay)
		default:
			err = v.r.msg.Nak()
		}
		if err != nil {
			w.log.Warn("queue: acknowledge", "queue", w.q, "id", v.r.id, "err", err)
		}
		if ok && v.rec != nil && w.cfg.OnDone != nil {
			w.cfg.OnDone(v.rec)
		}
		w.let(v.r)
	}
}

// await waits for a publish to be stored, publishing again if it failed,
// until the drain timeout. It reports whether the message is stored.
func (w *worker) await(f jetstream.PubAckFuture, m *nats.Msg) bool {
	if f != nil {
		w.ackTimer.Reset(ackTimeout)
		select {
		case <-f.Ok():
			w.ackTimer.Stop()
			return true
		case err := <-f.Err():
			w.ackTimer.Stop()
			w.log.Warn("queue: publish", "queue", w.q, "subject", m.Subject, "err", err)
		case <-w.ackTimer.C:
			w.log.Warn("queue: publish not acknowledged", "queue", w.q, "subject", m.Subject, "timeout", ackTimeout)
		}
	}
	delay := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(w.hardCtx, 5*time.Second)
		_, err := w.c.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			return true
		}
		w.log.Warn("queue: publish", "queue", w.q, "subject", m.Subject, "err", err)
		if !sleepCtx(w.hardCtx, delay) {
			return false
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// keepAlive renews the acknowledgement deadline of held jobs, so that a job
// is never given to another worker while this one still has it.
func (w *worker) keepAlive(quit <-chan struct{}) {
	defer w.wg.Done()
	every := max(w.h.ackWait/3, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var due []*run
	for {
		select {
		case <-t.C:
		case <-quit:
			return
		}
		now := time.Now()
		due = due[:0]
		w.mu.Lock()
		for r := range w.held {
			if now.Sub(r.touched) >= every {
				r.touched = now
				due = append(due, r)
			}
		}
		w.mu.Unlock()
		for _, r := range due {
			r.msg.InProgress()
		}
	}
}
