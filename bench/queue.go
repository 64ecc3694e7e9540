package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/proc"
	"github.com/kinproc/kin/queue"
	"github.com/nats-io/nats.go"
)

// Queue benchmarks, the values of Result.Bench. The throughput rows run
// 10 000 no-op jobs at concurrency 2 (MsgsPerS: jobs/s; Ms: the whole run);
// the latency rows add one job at a time (Ms: p50, P99Ms: p99).
const (
	// BenchQueueInline: in-process handlers (kin: a Go Handler; BullMQ: an
	// inline processor), kin's default durability (fsync every 100 ms)
	// against Redis without an append-only file.
	BenchQueueInline = "queue-inline"
	// BenchQueueProcess: handlers in child processes (kin: pool workers
	// speaking the task protocol; BullMQ: a sandboxed processor file), same
	// durability.
	BenchQueueProcess = "queue-process"
	// BenchQueueInlineAlways and BenchQueueProcessAlways: the same with an
	// fsync before every acknowledgement (kin: ServerConfig.Sync "always";
	// Redis: appendonly yes, appendfsync always).
	BenchQueueInlineAlways  = "queue-inline-always"
	BenchQueueProcessAlways = "queue-process-always"
	// BenchQueueLatencyInline and BenchQueueLatencyProcess: one job at a
	// time, from the add call to its completed event reaching a subscriber
	// (kin: a NATS subscription to the queue's completed events; BullMQ:
	// QueueEvents), with an in-process handler and with one warm worker
	// process.
	BenchQueueLatencyInline  = "queue-latency-inline"
	BenchQueueLatencyProcess = "queue-latency-process"
	// BenchQueueAdd: the add call alone (Ms: p50, P99Ms: p99), from the
	// in-process latency run.
	BenchQueueAdd = "queue-add"
)

// Queue implementations, the values of Result.Impl; kin's rows are ImplKin
// (Go handlers, Node worker processes) and ImplKinGo (Go worker processes).
const (
	ImplBullMQ       = "bullmq"        // BullMQ 5 on redis-server (the peer)
	ImplKinOnDone    = "kin-ondone"    // latency: to the worker's own callback (WorkConfig.OnDone)
	ImplBullMQWorker = "bullmq-worker" // latency: to the Worker's own 'completed' event
	ImplKinTask      = "kin-task"      // latency: the warm Node worker's bare task round trip (pool.Submit, no queue)
)

// Worker kinds, Result.Codec of the queue rows.
const (
	WorkerHandler   = "go-handler" // kin: a Go Handler in this process
	WorkerNode      = "node"       // kin: Node worker processes (bench/node/queue-worker.js)
	WorkerGo        = "go"         // kin: Go worker processes (worker.Serve)
	WorkerInline    = "inline"     // BullMQ: `async () => 1` in the Worker's process
	WorkerSandboxed = "sandboxed"  // BullMQ: the same function in a processor file, in child processes
)

// QueueBenches are Queue's benchmarks, in the order they are reported.
var QueueBenches = []string{BenchQueueInline, BenchQueueProcess, BenchQueueInlineAlways, BenchQueueProcessAlways,
	BenchQueueLatencyInline, BenchQueueLatencyProcess, BenchQueueAdd}

// queueConcurrency is the concurrency of the throughput runs, as in
// ANCHORS.md.
const queueConcurrency = 2

// queueParams are the sizes of one Queue run.
type queueParams struct {
	jobs, warm       int // throughput: timed and untimed jobs per row
	latency, latWarm int // latency: timed and untimed jobs per row
}

func queueParamsFor(o Options) queueParams {
	p := queueParams{jobs: 10000, warm: 200, latency: 500, latWarm: 20}
	if o.Quick {
		p = queueParams{jobs: 1000, warm: 50, latency: 50, latWarm: 5}
	}
	if o.Jobs > 0 {
		p.jobs = o.Jobs
	}
	return p
}

// Queue compares kin's queue with BullMQ 5 on Redis, side by side in one
// run. kin runs on an embedded server (its default) in a temporary
// directory; BullMQ on a redis-server started on a free port of 127.0.0.1
// in another. Each row runs kin then BullMQ:
//
//	queue-inline          10 000 no-op jobs added with AddBatch / addBulk in
//	queue-process         chunks of 1 000 while the workers run them at
//	                      concurrency 2: from the first add to the 10 000th
//	                      completion, after 200 untimed jobs through the same
//	                      workers (so that their processes run). inline: a Go
//	                      Handler / `async () => 1`; process: two Node worker
//	                      processes speaking kin's task protocol (and two Go
//	                      ones) / BullMQ's sandboxed processor file. kin
//	                      fsyncs every 100 ms, Redis runs with --save ''
//	                      --appendonly no
//	queue-*-always        the same, fsync before every acknowledgement: kin
//	                      Sync "always", Redis --appendonly yes
//	                      --appendfsync always
//	queue-latency-inline  500 jobs added one at a time (after 20 untimed),
//	queue-latency-process each timed from the add call to its completed
//	                      event at a subscriber (kin: NATS subscription to
//	                      kin.qe.Q.completed.*; BullMQ: QueueEvents) and to
//	                      the worker's own callback (OnDone / the Worker's
//	                      'completed'); one in-process handler, or one warm
//	                      worker process (kin-task: the same worker's bare
//	                      task round trip through the pool, no queue)
//	queue-add             the add call alone
//
// Quick runs 1 000 jobs and 50 latency samples; Options.Jobs sets the
// throughput jobs. With Options.Runs, each figure is the median over the
// runs, and each ratio to BullMQ the median of the ratios within each run
// (Result.VsPeer). Each run starts fresh servers and workers and stops them,
// with every process it started, before the next. BullMQ comes from
// PeerDir (npm install --prefix PEERDIR bullmq@5) or Node's search path,
// redis-server from Options.Redis or $PATH; without them, or without node,
// their rows are skipped with the reason.
func Queue(ctx context.Context, o Options) ([]Result, error) {
	e, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	q := newQueueEnv(ctx, e, o)
	o.progress("%s", q.describe())
	p := queueParamsFor(o)
	runs := make([][]Result, o.runs())
	for i := range runs {
		rs, err := q.run(ctx, o, p)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		runs[i] = rs
	}
	return medianRatios(runs, Median(runs)), nil
}

// medianRatios sets VsPeer in merged, the median of runs, to the median of
// each figure's ratio to its peer's within each run.
func medianRatios(runs [][]Result, merged []Result) []Result {
	if len(runs) < 2 {
		return merged
	}
	for i, m := range merged {
		var ratios []float64
		for _, run := range runs {
			for _, r := range run {
				if r.Bench == m.Bench && r.Impl == m.Impl {
					if v, _, ok := Ratio(run, r); ok {
						ratios = append(ratios, v)
					}
				}
			}
		}
		if len(ratios) > 0 {
			merged[i].VsPeer = median(ratios, func(v float64) float64 { return v })
		}
	}
	return merged
}

// queueEnv is what every Queue run shares: the peers' programs.
type queueEnv struct {
	*env
	redis         string // redis-server; empty when missing
	redisVersion  string
	bullmqDir     string // where bullmq.js looks for bullmq (PeerDir), or ""
	bullmqVersion string
	noBullMQ      string // why BullMQ's rows are skipped, before trying
}

func newQueueEnv(ctx context.Context, e *env, o Options) *queueEnv {
	q := &queueEnv{env: e}
	if e.node == "" {
		q.noBullMQ = e.noNode
	}
	name := o.Redis
	if name == "" {
		name = "redis-server"
	}
	if path, err := exec.LookPath(name); err == nil {
		q.redis = path
		out, _ := exec.CommandContext(ctx, path, "--version").Output()
		q.redisVersion = firstLine(string(out))
	} else if q.noBullMQ == "" {
		q.noBullMQ = fmt.Sprintf("redis-server not found (%v): apt-get install redis-server (.ci/run does as root)", err)
	}
	if d := PeerDir(); d != "" {
		var pkg struct{ Version string }
		if b, err := os.ReadFile(filepath.Join(d, "node_modules", "bullmq", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
			q.bullmqDir, q.bullmqVersion = d, pkg.Version
		}
	}
	return q
}

func (q *queueEnv) describe() string {
	s := "kin: embedded server; "
	if q.noBullMQ != "" {
		return s + "bullmq: skipped: " + q.noBullMQ
	}
	bull := "bullmq from node's search path"
	if q.bullmqDir != "" {
		bull = fmt.Sprintf("bullmq %s (%s)", q.bullmqVersion, q.bullmqDir)
	}
	return fmt.Sprintf("%s%s; %s (%s); node: %s", s, bull, q.redisVersion, q.redis, q.node)
}

// queueRun is one run: kin's servers and worker pools, Redis servers and
// the BullMQ driver, and what they measured.
type queueRun struct {
	*queueEnv
	o   Options
	p   queueParams
	dir string // the run's temporary directory

	kin        map[string]*queue.Client // by durability: "" and "always"
	servers    []*queue.Server
	nodePool   *pool.Pool              // 2 Node workers; nil without node
	goPool     *pool.Pool              // 2 Go workers
	redisSrv   map[string]*redisServer // by durability
	bull       *bullmqDriver
	bullFailed string // why BullMQ's remaining rows are skipped
	rs         []Result
}

func (q *queueEnv) run(ctx context.Context, o Options, p queueParams) (rs []Result, err error) {
	dir, err := os.MkdirTemp("", "kin-bench-queue-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &queueRun{queueEnv: q, o: o, p: p, dir: dir, kin: map[string]*queue.Client{}, redisSrv: map[string]*redisServer{}}
	defer func() {
		if cerr := r.close(); cerr != nil && err == nil {
			rs, err = nil, cerr
		}
	}()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	rows := []struct {
		bench string
		run   func(context.Context, string) error
	}{
		{BenchQueueInline, r.throughput},
		{BenchQueueProcess, r.throughput},
		{BenchQueueLatencyInline, r.latency},
		{BenchQueueLatencyProcess, r.latency},
		{BenchQueueInlineAlways, r.throughput},
		{BenchQueueProcessAlways, r.throughput},
	}
	for _, row := range rows {
		if err := row.run(ctx, row.bench); err != nil {
			return nil, err
		}
	}
	// Report in QueueBenches order, whatever order they ran in.
	slices.SortStableFunc(r.rs, func(a, b Result) int {
		return slices.Index(QueueBenches, a.Bench) - slices.Index(QueueBenches, b.Bench)
	})
	return r.rs, nil
}

// start starts kin's two servers (fsync every 100 ms, always) and worker
// pools, and, when BullMQ can run, two Redis servers and the driver.
func (r *queueRun) start(ctx context.Context) error {
	for _, sync := range []string{"", "always"} {
		name := "kin-100ms"
		if sync != "" {
			name = "kin-" + sync
		}
		srv, err := queue.StartServer(queue.ServerConfig{Dir: filepath.Join(r.dir, name), Sync: sync})
		if err != nil {
			return fmt.Errorf("kin server (sync %q): %w", sync, err)
		}
		r.servers = append(r.servers, srv)
		c, err := queue.Connect(ctx, queue.ConnectConfig{Server: srv})
		if err != nil {
			return fmt.Errorf("kin client: %w", err)
		}
		r.kin[sync] = c
	}
	var err error
	if r.node != "" {
		r.nodePool, err = pool.New(pool.Config{Command: []string{r.node, r.script("queue-worker.js")}, Workers: queueConcurrency,
			Stdout: discard{}, Stderr: discard{}})
		if err != nil {
			return fmt.Errorf("kin Node workers: %w", err)
		}
	}
	r.goPool, err = pool.New(pool.Config{Command: []string{r.exe}, Env: childEnv(childWorker), Codec: ipc.Frame,
		Workers: queueConcurrency, Stdout: discard{}, Stderr: discard{}})
	if err != nil {
		return fmt.Errorf("kin Go workers: %w", err)
	}
	if r.noBullMQ != "" {
		return nil
	}
	for _, sync := range []string{"", "always"} {
		name := "redis-noaof"
		if sync != "" {
			name = "redis-" + sync
		}
		dir := filepath.Join(r.dir, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		rs, err := startRedis(ctx, r.redis, dir, sync == "always")
		if err != nil {
			r.bullFailed = err.Error()
			return nil
		}
		r.redisSrv[sync] = rs
	}
	if r.bull, err = startBullMQ(ctx, r.node, r.script("bullmq.js"), r.bullmqDir); err != nil {
		r.bullFailed = err.Error()
	}
	return nil
}

// close stops everything the run started and removes its directory. A
// process left running after its stop is an error.
func (r *queueRun) close() error {
	var errs []error
	if r.bull != nil {
		errs = append(errs, r.bull.close())
	}
	for _, rs := range r.redisSrv {
		errs = append(errs, rs.close())
	}
	for _, p := range []*pool.Pool{r.nodePool, r.goPool} {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	for _, c := range r.kin {
		c.Close()
	}
	for _, s := range r.servers {
		s.Shutdown()
	}
	errs = append(errs, os.RemoveAll(r.dir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: queue clean-up: %w", err)
	}
	return nil
}

// bullSkip is why BullMQ's rows are skipped now, or "".
func (r *queueRun) bullSkip() string {
	switch {
	case r.noBullMQ != "":
		return r.noBullMQ
	case r.bullFailed != "":
		return r.bullFailed
	}
	return ""
}

func (r *queueRun) add(res Result) {
	if res.Skipped == "" {
		r.o.progress("%s", queueProgress(res))
	}
	r.rs = append(r.rs, res)
}

// bullFailure records BullMQ's first failure: its later rows are skipped
// with it.
func (r *queueRun) bullFailure(err error) {
	if r.bullFailed == "" {
		r.bullFailed = "bullmq failed: " + firstLine(err.Error())
	}
}

// durability returns a throughput or latency benchmark's kin sync setting
// ("" or "always") and whether its workers are processes.
func durability(bench string) (sync string, process bool) {
	if strings.HasSuffix(bench, "-always") {
		sync = "always"
	}
	return sync, strings.Contains(bench, "process")
}

// throughput runs one throughput row: kin (with Go worker processes too,
// for the process rows), then BullMQ.
func (r *queueRun) throughput(ctx context.Context, bench string) error {
	sync, process := durability(bench)
	c := r.kin[sync]
	type kinCase struct {
		impl, worker string
		work         queue.WorkConfig
	}
	cases := []kinCase{{ImplKin, WorkerHandler, queue.WorkConfig{Handler: noopHandler}}}
	if process {
		cases = []kinCase{{ImplKin, WorkerNode, queue.WorkConfig{Pool: r.nodePool}}, {ImplKinGo, WorkerGo, queue.WorkConfig{Pool: r.goPool}}}
	}
	for _, k := range cases {
		res := Result{Bench: bench, Impl: k.impl, Codec: k.worker, N: r.p.jobs}
		if k.worker == WorkerNode && r.nodePool == nil {
			res.Skipped = r.noNode
			r.add(res)
			continue
		}
		k.work.Concurrency = queueConcurrency
		name := strings.ReplaceAll(bench, "queue-", "") + "-" + k.impl
		cpu0 := kinCPU(k.work.Pool)
		if _, err := queue.BenchThroughput(ctx, c, queue.BenchConfig{Queue: name, Jobs: r.p.warm, Work: k.work}); err != nil {
			return fmt.Errorf("%s %s warm-up: %w", bench, k.impl, err)
		}
		br, err := queue.BenchThroughput(ctx, c, queue.BenchConfig{Queue: name, Jobs: r.p.jobs, Work: k.work})
		if err != nil {
			return fmt.Errorf("%s %s: %w", bench, k.impl, err)
		}
		res.CPUus = perJob(kinCPU(k.work.Pool)-cpu0, r.p.warm+r.p.jobs)
		res.MsgsPerS, res.Ms = br.PerSecond, ms(br.Elapsed)
		r.add(res)
	}

	res := Result{Bench: bench, Impl: ImplBullMQ, Codec: WorkerInline, N: r.p.jobs}
	if process {
		res.Codec = WorkerSandboxed
	}
	if why := r.bullSkip(); why != "" {
		res.Skipped = why
		r.add(res)
		return nil
	}
	var answer struct{ NS float64 }
	redis := r.redisSrv[sync]
	bullCPU := func() time.Duration { return cpuTree(r.bull.cmd.Process.Pid) + cpuTree(redis.cmd.Process.Pid) }
	cpu0 := bullCPU()
	err := r.bull.call(ctx, map[string]any{"op": "throughput", "port": redis.port, "mode": res.Codec,
		"jobs": r.p.jobs, "warm": r.p.warm, "concurrency": queueConcurrency}, &answer)
	if err != nil {
		r.bullFailure(err)
		res.Skipped = r.bullFailed
		r.add(res)
		return nil
	}
	d := time.Duration(answer.NS)
	res.CPUus = perJob(bullCPU()-cpu0, r.p.warm+r.p.jobs)
	res.MsgsPerS, res.Ms = float64(r.p.jobs)/d.Seconds(), ms(d)
	r.add(res)
	return nil
}

// kinCPU returns the CPU time used so far by this process (kin's client,
// embedded server and in-process handlers) and by p's worker processes.
func kinCPU(p *pool.Pool) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if p != nil {
		for _, w := range p.Stats().PerWorker {
			d += cpuTree(w.PID)
		}
	}
	return d
}

// cpuTree returns the CPU time (user and system) that pid and its live
// descendants have used, with that of the children they have reaped, from
// /proc/PID/stat.
func cpuTree(pid int) time.Duration {
	var ticks int64
	for _, p := range append(descendants(pid), pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		for i := 11; i <= 14 && i < len(f); i++ { // utime stime cutime cstime
			v, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// perJob returns d per job in microseconds.
func perJob(d time.Duration, jobs int) float64 {
	return float64(d.Microseconds()) / float64(max(jobs, 1))
}

func noopHandler(context.Context, *queue.Job) (json.RawMessage, error) { return nil, nil }

// latency runs one latency row: kin, then BullMQ, one job at a time.
func (r *queueRun) latency(ctx context.Context, bench string) error {
	_, process := durability(bench)
	c := r.kin[""]
	kind := WorkerHandler
	work := queue.WorkConfig{Handler: noopHandler, Concurrency: 1}
	if process {
		kind, work = WorkerNode, queue.WorkConfig{Pool: r.nodePool, Concurrency: 1}
	}
	if process && r.nodePool == nil {
		r.add(Result{Bench: bench, Impl: ImplKin, Codec: kind, Skipped: r.noNode})
	} else {
		name := strings.ReplaceAll(bench, "queue-", "")
		lat, err := kinLatency(ctx, c, name, work, r.p.latency, r.p.latWarm)
		if err != nil {
			return fmt.Errorf("%s kin: %w", bench, err)
		}
		r.add(latencyResult(bench, ImplKin, kind, lat.events))
		r.add(latencyResult(bench, ImplKinOnDone, kind, lat.onDone))
		if !process {
			r.add(latencyResult(BenchQueueAdd, ImplKin, kind, lat.add))
		}
	}
	if process && r.nodePool != nil {
		// The same warm worker's round trip without the queue: what the
		// child itself and the channel take.
		ds, err := taskRoundTrips(ctx, r.nodePool, r.p.latency, r.p.latWarm)
		if err != nil {
			return fmt.Errorf("%s kin-task: %w", bench, err)
		}
		r.add(latencyResult(bench, ImplKinTask, kind, ds))
	}

	mode := WorkerInline
	if process {
		mode = WorkerSandboxed
	}
	skipped := func(why string) {
		r.add(Result{Bench: bench, Impl: ImplBullMQ, Codec: mode, Skipped: why})
		r.add(Result{Bench: bench, Impl: ImplBullMQWorker, Codec: mode, Skipped: why})
		if !process {
			r.add(Result{Bench: BenchQueueAdd, Impl: ImplBullMQ, Codec: mode, Skipped: why})
		}
	}
	if why := r.bullSkip(); why != "" {
		skipped(why)
		return nil
	}
	var answer struct{ Events, Worker, Add []float64 }
	err := r.bull.call(ctx, map[string]any{"op": "latency", "port": r.redisSrv[""].port, "mode": mode,
		"n": r.p.latency, "warm": r.p.latWarm}, &answer)
	if err == nil && (len(answer.Events) != r.p.latency || len(answer.Worker) != r.p.latency || len(answer.Add) != r.p.latency) {
		err = fmt.Errorf("latency: %d/%d/%d samples, want %d", len(answer.Events), len(answer.Worker), len(answer.Add), r.p.latency)
	}
	if err != nil {
		r.bullFailure(err)
		skipped(r.bullFailed)
		return nil
	}
	r.add(latencyResult(bench, ImplBullMQ, mode, nsDurations(answer.Events)))
	r.add(latencyResult(bench, ImplBullMQWorker, mode, nsDurations(answer.Worker)))
	if !process {
		r.add(latencyResult(BenchQueueAdd, ImplBullMQ, mode, nsDurations(answer.Add)))
	}
	return nil
}

// queueJob is each benchmark job's data, as BullMQ's {n: 1}.
var queueJob = json.RawMessage(`{"n":1}`)

// latencies are the times of one kin latency row, per job.
type latencies struct {
	events, onDone, add []time.Duration
}

// kinLatency adds n jobs one at a time to the fresh queue q served by
// work, after warm untimed ones, and times each from the Add call to its
// completed event at a subscriber of the queue's documented event subjects
// (kin.qe.Q.completed.ID, as BullMQ's QueueEvents), to the worker's OnDone
// callback, and to Add returning.
func kinLatency(ctx context.Context, c *queue.Client, q string, work queue.WorkConfig, n, warm int) (latencies, error) {
	var mu sync.Mutex
	events := map[string]time.Time{}
	onDone := map[string]time.Time{}
	signal := make(chan struct{}, 1)
	wake := func() {
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	prefix := "kin.qe." + q + ".completed."
	sub, err := c.Conn().Subscribe(prefix+"*", func(m *nats.Msg) {
		t := time.Now()
		id := strings.TrimPrefix(m.Subject, prefix)
		mu.Lock()
		if _, dup := events[id]; !dup { // the first arrival counts
			events[id] = t
		}
		mu.Unlock()
		wake()
	})
	if err != nil {
		return latencies{}, err
	}
	defer sub.Unsubscribe()
	if err := c.Conn().Flush(); err != nil {
		return latencies{}, err
	}
	work.OnDone = func(j *queue.Job) {
		if j.State == queue.Completed {
			t := time.Now()
			mu.Lock()
			onDone[j.ID] = t
			mu.Unlock()
			wake()
		}
	}
	wctx, stop := context.WithCancel(ctx)
	workErr := make(chan error, 1)
	go func() {
		_, err := c.Work(wctx, q, work)
		if err == nil {
			err = errors.New("Work returned")
		}
		workErr <- err
	}()
	defer func() {
		stop()
		<-workErr
	}()

	var out latencies
	for i := -warm; i < n; i++ {
		t0 := time.Now()
		id, err := c.Add(ctx, q, queue.JobSpec{Data: queueJob})
		if err != nil {
			return latencies{}, err
		}
		added := time.Now()
		limit := time.NewTimer(30 * time.Second)
		var te, td time.Time
		for {
			mu.Lock()
			te, td = events[id], onDone[id]
			if !te.IsZero() && !td.IsZero() {
				delete(events, id)
				delete(onDone, id)
			}
			mu.Unlock()
			if !te.IsZero() && !td.IsZero() {
				break
			}
			select {
			case <-signal:
			case err := <-workErr:
				limit.Stop()
				return latencies{}, fmt.Errorf("job %s: %w", id, err)
			case <-limit.C:
				return latencies{}, fmt.Errorf("job %s: no completed event (%v) or OnDone (%v) after 30 s", id, !te.IsZero(), !td.IsZero())
			case <-ctx.Done():
				limit.Stop()
				return latencies{}, ctx.Err()
			}
		}
		limit.Stop()
		if i >= 0 {
			out.events = append(out.events, te.Sub(t0))
			out.onDone = append(out.onDone, td.Sub(t0))
			out.add = append(out.add, added.Sub(t0))
		}
	}
	return out, nil
}

// taskRoundTrips times n tasks submitted one at a time to p, after warm
// untimed ones.
func taskRoundTrips(ctx context.Context, p *pool.Pool, n, warm int) ([]time.Duration, error) {
	var ds []time.Duration
	for i := -warm; i < n; i++ {
		t0 := time.Now()
		if _, err := p.Submit(ctx, queueJob); err != nil {
			return nil, err
		}
		if i >= 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	return ds, nil
}

// latencyResult summarises one latency row: Ms is the p50, P99Ms the p99.
func latencyResult(bench, impl, worker string, ds []time.Duration) Result {
	return Result{Bench: bench, Impl: impl, Codec: worker, N: len(ds), Ms: ms(percentile(ds, 0.50)), P99Ms: ms(percentile(ds, 0.99))}
}

// percentile returns the q-quantile of ds (nearest rank).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func nsDurations(ns []float64) []time.Duration {
	ds := make([]time.Duration, len(ns))
	for i, v := range ns {
		ds[i] = time.Duration(v)
	}
	return ds
}

// redisServer is a redis-server on a free port of 127.0.0.1, with its data
// in a directory of the run's.
type redisServer struct {
	cmd  *proc.Cmd
	port int
	out  *tailBuffer
}

// startRedis starts redis-server in dir: without persistence (--save ”
// --appendonly no, the BullMQ anchors' setting), or with an fsync before
// every write is acknowledged (--appendonly yes --appendfsync always). It
// returns once the server answers PING, or why it did not.
func startRedis(ctx context.Context, bin, dir string, always bool) (*redisServer, error) {
	var last error
	for range 3 { // the free port may be taken before redis binds it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			"--daemonize", "no", "--logfile", "", "--appendonly", "no"}
		if always {
			args = append(args[:len(args)-1], "yes", "--appendfsync", "always")
		}
		rs := &redisServer{cmd: proc.Command(bin, args...), port: port, out: &tailBuffer{max: 4096}}
		rs.cmd.Stdout, rs.cmd.Stderr = rs.out, rs.out
		rs.cmd.DieWithParent = true
		if err := rs.cmd.Start(); err != nil {
			return nil, fmt.Errorf("redis-server did not start: %w", err)
		}
		if last = rs.waitReady(ctx, 10*time.Second); last == nil {
			return rs, nil
		}
		rs.close()
		if !strings.Contains(last.Error(), "in use") {
			break
		}
	}
	return nil, last
}

// waitReady polls the server with PING until it answers +PONG.
func (rs *redisServer) waitReady(ctx context.Context, timeout time.Duration) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(rs.port))
	var last error
	ok := poll(timeout, func() bool {
		if ctx.Err() != nil || rs.cmd.Exited() {
			return true
		}
		last = redisPing(addr)
		return last == nil
	})
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case rs.cmd.Exited():
		return fmt.Errorf("redis-server exited at start (%v): %s", rs.cmd.Wait(), tail(rs.out.String(), 300))
	case !ok:
		return fmt.Errorf("redis-server not answering on %s after %v (%v): %s", addr, timeout, last, tail(rs.out.String(), 300))
	}
	return nil
}

func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// close stops the server (SIGTERM, SIGKILL after 10 s) and waits for it.
func (rs *redisServer) close() error {
	rs.cmd.StopTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rs.cmd.Stop(ctx); err != nil && !rs.cmd.Exited() {
		return fmt.Errorf("redis-server: %w", err)
	}
	return nil
}

// bullmqDriver is bench/node/bullmq.js, the BullMQ side of the
// comparison, driven over its stdin and stdout.
type bullmqDriver struct {
	cmd  *proc.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	stop func() bool
}

// startBullMQ starts the driver and waits for its ready line; it fails,
// saying why, when BullMQ cannot be loaded.
func startBullMQ(ctx context.Context, node, script, peers string) (*bullmqDriver, error) {
	cmd := proc.Command(node, script)
	cmd.Env = append(proc.WithoutVars(os.Environ(), "KIN_BENCH_PEERS"), "KIN_BENCH_PEERS="+peers)
	cmd.DieWithParent = true
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		in.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bullmq driver: %w", err)
	}
	d := &bullmqDriver{cmd: cmd, in: in, out: bufio.NewReader(out)}
	d.stop = context.AfterFunc(ctx, func() { cmd.Kill() })
	var ready struct{ Ready bool }
	if err := d.read(&ready); err != nil {
		d.close()
		if peers == "" {
			peers = PeerDir()
		}
		// Node's first error line says what is wrong ("Cannot find module
		// 'bullmq'"); the stack after it does not.
		for _, line := range strings.Split(cmd.RecentStderr(), "\n") {
			if strings.Contains(line, "Error") {
				err = errors.New(strings.TrimSpace(line))
				break
			}
		}
		return nil, fmt.Errorf("bullmq not usable (npm install --prefix %s bullmq@5; .ci/run does): %w", peers, err)
	}
	return d, nil
}

// call sends one command and decodes its answer into answer.
func (d *bullmqDriver) call(ctx context.Context, cmd, answer any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		return d.err(err)
	}
	return d.read(answer)
}

func (d *bullmqDriver) read(answer any) error {
	line, err := d.out.ReadBytes('\n')
	if err != nil {
		return d.err(err)
	}
	var e struct{ Error string }
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("bad answer %.100q: %v", line, err)
	}
	if e.Error != "" {
		return errors.New(e.Error)
	}
	return json.Unmarshal(line, answer)
}

// err adds how the driver ended, if it did, or its stderr to an I/O error.
func (d *bullmqDriver) err(err error) error {
	select {
	case <-d.cmd.Done():
	case <-time.After(time.Second):
	}
	if s := d.cmd.RecentStderr(); s != "" {
		return fmt.Errorf("%w: %s", err, tail(s, 400))
	}
	return err
}

// close closes the driver's stdin, upon which it exits once its command
// is done, and waits for it; BullMQ's child processes go with it (they are
// in its process group).
func (d *bullmqDriver) close() error {
	d.stop()
	d.in.Close()
	t := time.AfterFunc(30*time.Second, func() { d.cmd.Kill() })
	defer t.Stop()
	io.Copy(io.Discard, d.out)
	err := d.cmd.Wait()
	var exit *proc.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.Stopped) {
		return fmt.Errorf("bullmq driver: %w", err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = slices.Clone(t.b[len(t.b)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}

// queueRows are the lines of QueueTable, in groups (throughput, throughput
// with fsync always, latency): a kin figure, the peer figure it is compared
// with ("" for none), and what they measure.
var queueRows = []struct {
	group                   int
	bench, impl, peer, what string
}{
	{0, BenchQueueInline, ImplKin, ImplBullMQ, "jobs/s, in-process: Go handler / inline"},
	{0, BenchQueueProcess, ImplKin, ImplBullMQ, "jobs/s, child processes: Node / sandboxed"},
	{0, BenchQueueProcess, ImplKinGo, ImplBullMQ, "jobs/s, child processes: Go / sandboxed"},
	{1, BenchQueueInlineAlways, ImplKin, ImplBullMQ, "jobs/s, in-process, fsync always"},
	{1, BenchQueueProcessAlways, ImplKin, ImplBullMQ, "jobs/s, Node / sandboxed, fsync always"},
	{1, BenchQueueProcessAlways, ImplKinGo, ImplBullMQ, "jobs/s, Go / sandboxed, fsync always"},
	{2, BenchQueueLatencyInline, ImplKin, ImplBullMQ, "add → completed event, in-process"},
	{2, BenchQueueLatencyInline, ImplKinOnDone, ImplBullMQWorker, "add → worker's completed callback, in-process"},
	{2, BenchQueueLatencyProcess, ImplKin, ImplBullMQ, "add → completed event, warm process worker"},
	{2, BenchQueueLatencyProcess, ImplKinOnDone, ImplBullMQWorker, "add → worker's completed callback, warm process"},
	{2, BenchQueueLatencyProcess, ImplKinTask, "", "that worker's bare task round trip (no queue)"},
	{2, BenchQueueAdd, ImplKin, ImplBullMQ, "the add call alone"},
}

// queueBaseline returns the peer a queue row is compared with.
func queueBaseline(bench, impl string) (string, bool) {
	for _, row := range queueRows {
		if row.bench == bench && row.impl == impl {
			return row.peer, true
		}
	}
	return "", false
}

// queueLatencyGoal is the p50 target of add → completed event, in ms, for
// an in-process handler and beyond the job's own work for a warm worker
// process (the benchmark's job is a no-op: its own work is ~0).
const queueLatencyGoal = 1.0

// queueThroughputGoal is the throughput target: kin ≥ 3 × BullMQ, both in
// their default durability.
const queueThroughputGoal = 3.0

// queueChecks are the queue's targets: 3 × BullMQ's throughput with
// in-process handlers and with child-process workers (Node), both in their
// default durability, and a p50 add → completed event within 1 ms (plus the
// job's own work, nil here) with an in-process handler and a warm worker
// process.
func queueChecks(rs []Result) []Check {
	var out []Check
	for _, r := range rs {
		if r.Impl != ImplKin || r.Skipped != "" {
			continue
		}
		switch r.Bench {
		case BenchQueueInline, BenchQueueProcess:
			if ratio, base, ok := Ratio(rs, r); ok {
				out = append(out, Check{Name: fmt.Sprintf("%s %s/%s jobs/s", r.Bench, r.Impl, base), Value: ratio, Goal: queueThroughputGoal})
			}
		case BenchQueueLatencyInline, BenchQueueLatencyProcess:
			out = append(out, Check{Name: r.Bench + " kin p50 ms (the no-op job's own work ≈ 0)", Value: r.Ms, Goal: queueLatencyGoal, AtMost: true})
		}
	}
	return out
}

// queueFigure formats the measurement of a queue row.
func queueFigure(r Result) (string, bool) {
	if !strings.HasPrefix(r.Bench, "queue-") {
		return "", false
	}
	if r.Value() == r.MsgsPerS && r.MsgsPerS != 0 {
		if r.CPUus > 0 {
			return fmt.Sprintf("%s jobs/s, %.0f µs CPU/job", count(r.MsgsPerS), r.CPUus), true
		}
		return count(r.MsgsPerS) + " jobs/s", true
	}
	return fmt.Sprintf("%s ms (p99 %s)", msFigure(r.Ms), msFigure(r.P99Ms)), true
}

// cpuCell formats a throughput row's CPU time per job, "-" when unknown.
func cpuCell(r Result) string {
	if r.Skipped != "" || r.CPUus <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", r.CPUus)
}

// msFigure formats milliseconds with three significant digits.
func msFigure(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func queueProgress(r Result) string {
	return fmt.Sprintf("%-21s %-13s %-10s %s", r.Bench, r.Impl, r.Codec, figure(r))
}

// QueueTable formats Queue's results side by side: one line per kin
// figure, with BullMQ's beside it and their ratio (throughput: kin's jobs/s
// over BullMQ's, higher is better; latency: kin's time over BullMQ's, lower
// is better), then the targets and why rows were skipped.
func QueueTable(rs []Result) string {
	find := func(bench, impl string) (Result, bool) {
		for _, r := range rs {
			if r.Bench == bench && r.Impl == impl {
				return r, true
			}
		}
		return Result{}, false
	}
	cell := func(r Result, ok bool) string {
		switch {
		case !ok:
			return ""
		case r.Skipped != "":
			return "skipped"
		case r.MsgsPerS > 0:
			return count(r.MsgsPerS) + " jobs/s"
		}
		return figure(r)
	}
	var b strings.Builder
	b.WriteString("kin: embedded server, fsync every 100 ms (always: before every ack); " +
		"BullMQ: redis-server --save '' --appendonly no (always: --appendonly yes --appendfsync always)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tn\tkin\tBullMQ\tkin/BullMQ\tCPU µs/job: kin / BullMQ\t")
	var skips []string
	prev := -1
	for _, row := range queueRows {
		k, kok := find(row.bench, row.impl)
		p, pok := find(row.bench, row.peer)
		if !kok && !pok {
			continue
		}
		if prev >= 0 && row.group != prev {
			fmt.Fprintln(tw, "\t\t\t\t\t\t")
		}
		prev = row.group
		ratio := ""
		if kok {
			if v, _, ok := Ratio(rs, k); ok {
				ratio = fmt.Sprintf("%.2f×", v)
			}
		}
		n := k.N
		if n == 0 {
			n = p.N
		}
		cpu := ""
		if k.CPUus > 0 || p.CPUus > 0 {
			cpu = cpuCell(k) + " / " + cpuCell(p)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", row.what, n, cell(k, kok), cell(p, pok), ratio, cpu)
		for _, r := range []Result{k, p} {
			if r.Skipped != "" && !slices.Contains(skips, r.Impl+": "+r.Skipped) {
				skips = append(skips, r.Impl+": "+r.Skipped)
			}
		}
	}
	tw.Flush()
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	b.Reset()
	b.WriteString(strings.Join(lines, "\n"))
	for _, r := range rs {
		if r.VsPeer > 0 {
			b.WriteString("figures: medians over the runs; kin/BullMQ: the median of the ratios within each run\n")
			break
		}
	}
	if checks := queueChecks(rs); len(checks) > 0 {
		b.WriteString("targets:\n")
		for _, c := range checks {
			b.WriteString("  " + c.String() + "\n")
		}
	}
	for _, s := range skips {
		b.WriteString("skipped " + s + "\n")
	}
	return b.String()
}
