package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/proc"
)

// Pool benchmarks, the values of Result.Bench.
const (
	// BenchPoolTiny: tiny tasks (x → x+1) through 2 workers, tasks/s in
	// MsgsPerS: what the pool itself costs.
	BenchPoolTiny = "pool-tiny"
	// BenchPoolHeavy: a batch of ~20 ms CPU-bound tasks (chained SHA-256),
	// total Ms: how well processes use the cores.
	BenchPoolHeavy = "pool-heavy"
	// BenchPoolTask: tiny tasks through one worker, mean RTTus per task:
	// the per-task overhead the cost model uses.
	BenchPoolTask = "pool-task"
)

// Pool implementations, the values of Result.Impl.
const (
	ImplNodePool   = "node-pool"    // a Node parent's plain child_process pool (the peer)
	ImplKinNode    = "kin-node"     // kin's pool with its defaults, the same unmodified Node worker
	ImplKinNodeSeq = "kin-node-p1"  // the same with pipelining off (Pipeline 1)
	ImplKinGo      = "kin-go"       // kin's pool with its defaults, Go workers (worker.Serve, frame codec)
	ImplKinGoSeq   = "kin-go-p1"    // the same with pipelining off
	ImplKinNode1   = "kin-node-1w"  // heavy tasks on one Node worker: the speed-up's baseline
	ImplNodePool1  = "node-pool-1w" // the peer's one-worker run
)

// PoolImpls are the implementations Pool compares, in order.
var PoolImpls = []string{ImplNodePool, ImplKinNode, ImplKinNodeSeq, ImplKinGo, ImplKinGoSeq}

// poolWorkers is the pool size of the comparisons, as in ANCHORS.md.
const poolWorkers = 2

// heavyTarget is the duration a heavy task is calibrated to.
const heavyTarget = 20 * time.Millisecond

// Pool compares kin's pool with a plain Node child_process pool of the same
// size: tiny tasks (throughput, the pool's own cost; kin with its defaults,
// which pipeline tiny tasks, and with pipelining off), CPU-heavy tasks (the
// speed-up over one worker), and tiny tasks through one worker (the
// per-task overhead).
// CostModel turns the results into the task duration from which N worker
// processes beat doing the work in one.
func Pool(ctx context.Context, o Options) (results []Result, err error) {
	impls, err := o.impls(PoolImpls)
	if err != nil {
		return nil, err
	}
	e, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	runs := make([][]Result, o.runs())
	for run := range runs {
		rs, err := e.poolRun(ctx, o, impls)
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		runs[run] = rs
	}
	return Median(runs), nil
}

func (e *env) poolRun(ctx context.Context, o Options, impls []string) ([]Result, error) {
	var rs []Result
	add := func(r Result) {
		o.progress("%s", progressLine(r))
		rs = append(rs, r)
	}
	skip := func(bench, impl string) bool {
		if (impl == ImplNodePool || strings.HasPrefix(impl, "kin-node")) && e.node == "" {
			rs = append(rs, Result{Bench: bench, Impl: impl, Skipped: e.noNode})
			return true
		}
		return false
	}

	// Tiny tasks.
	n := 20000
	if o.Quick {
		n = 1000
	}
	tiny := make([]json.RawMessage, n)
	for i := range tiny {
		tiny[i] = json.RawMessage(strconv.Itoa(i))
	}
	for _, impl := range impls {
		if skip(BenchPoolTiny, impl) {
			continue
		}
		d, err := e.poolBatch(ctx, impl, poolWorkers, tiny)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", BenchPoolTiny, impl, err)
		}
		add(Result{Bench: BenchPoolTiny, Impl: impl, Codec: poolCodec(impl), N: n, MsgsPerS: float64(n) / d.Seconds(), Ms: ms(d)})
	}

	// Tiny tasks through one worker: the per-task overhead.
	seqN := 2000
	if o.Quick {
		seqN = 200
	}
	for _, impl := range []string{ImplNodePool, ImplKinNode, ImplKinGo} {
		if !slices.Contains(impls, impl) || skip(BenchPoolTask, impl) {
			continue
		}
		d, err := e.poolBatch(ctx, impl, 1, tiny[:seqN])
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", BenchPoolTask, impl, err)
		}
		add(Result{Bench: BenchPoolTask, Impl: impl, Codec: poolCodec(impl), N: seqN, RTTus: float64(d.Microseconds()) / float64(seqN)})
	}

	// CPU-heavy tasks, in Node workers: the speed-up of 2 workers over 1.
	if e.node == "" || !slices.Contains(impls, ImplKinNode) {
		return rs, nil
	}
	rounds, err := e.calibrate(ctx)
	if err != nil {
		return nil, err
	}
	hn := 200
	if o.Quick {
		hn = 10
	}
	heavy := make([]json.RawMessage, hn)
	for i := range heavy {
		heavy[i] = json.RawMessage(fmt.Sprintf(`{"seed":"s%d","rounds":%d}`, i, rounds))
	}
	for _, c := range []struct {
		impl    string
		as      string
		workers int
	}{
		{ImplKinNode, ImplKinNode1, 1},
		{ImplKinNode, ImplKinNode, poolWorkers},
		{ImplNodePool, ImplNodePool1, 1},
		{ImplNodePool, ImplNodePool, poolWorkers},
	} {
		if !slices.Contains(impls, c.impl) {
			continue
		}
		d, err := e.poolBatch(ctx, c.impl, c.workers, heavy)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", BenchPoolHeavy, c.as, err)
		}
		add(Result{Bench: BenchPoolHeavy, Impl: c.as, Codec: poolCodec(c.impl), N: hn, Ms: ms(d), MsgsPerS: float64(hn) / d.Seconds()})
	}
	return rs, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func poolCodec(impl string) string {
	if strings.HasPrefix(impl, "kin-go") {
		return CodecFrame
	}
	return CodecJSON
}

// calibrate returns the SHA-256 rounds that take heavyTarget in a Node
// worker on this machine.
func (e *env) calibrate(ctx context.Context) (int, error) {
	p, err := e.startPool(ImplKinNode, 1)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	const probe = 5000
	task := []byte(fmt.Sprintf(`{"seed":"calibrate","rounds":%d}`, probe))
	if _, err := p.Submit(ctx, task); err != nil { // warm up the JIT
		return 0, err
	}
	var ds []time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, err := p.Submit(ctx, task); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return max(1, int(float64(probe)*float64(heavyTarget)/float64(ds[1]))), nil
}

// startPool starts a kin pool for impl with the given number of workers.
func (e *env) startPool(impl string, workers int) (*pool.Pool, error) {
	cfg := pool.Config{Workers: workers, Stdout: discard{}, Stderr: discard{}}
	switch impl {
	case ImplKinNode, ImplKinNodeSeq:
		cfg.Command = []string{e.node, e.script("pool-worker.js")}
	case ImplKinGo, ImplKinGoSeq:
		cfg.Command = []string{e.exe}
		cfg.Env = childEnv(childWorker)
		cfg.Codec = ipc.Frame
	default:
		return nil, fmt.Errorf("bench: %s is not a kin pool", impl)
	}
	if impl == ImplKinNodeSeq || impl == ImplKinGoSeq {
		cfg.Pipeline = 1
	}
	return pool.New(cfg)
}

// poolBatch runs tasks on impl with the given number of workers and
// returns the time from the first submission to the last result, after one
// untimed task per worker.
func (e *env) poolBatch(ctx context.Context, impl string, workers int, tasks []json.RawMessage) (time.Duration, error) {
	if impl == ImplNodePool {
		return e.nodePoolBatch(ctx, workers, tasks)
	}
	p, err := e.startPool(impl, workers)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	if err := runAll(ctx, p, tasks[:min(workers, len(tasks))]); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := runAll(ctx, p, tasks); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// runAll submits every task and waits for all results.
func runAll(ctx context.Context, p *pool.Pool, tasks []json.RawMessage) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	wg.Add(len(tasks))
	for _, t := range tasks {
		err := p.SubmitFunc(ctx, pool.Task{Data: t}, func(_ []byte, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
		if err != nil {
			return err
		}
	}
	wg.Wait()
	return first
}

// nodePoolBatch runs tasks on pool-parent.js, the Node peer, which times
// itself.
func (e *env) nodePoolBatch(ctx context.Context, workers int, tasks []json.RawMessage) (time.Duration, error) {
	arg, _ := json.Marshal(map[string]any{"workers": workers, "tasks": tasks})
	c := proc.Command(e.node, e.script("pool-parent.js"), string(arg))
	out, _, err := c.Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("node pool: %w", err)
	}
	var r struct{ Ms float64 }
	if err := json.Unmarshal(out, &r); err != nil || r.Ms <= 0 {
		return 0, fmt.Errorf("node pool printed %q", out)
	}
	return time.Duration(r.Ms * 1e6), nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// CostModel explains Pool's results: from the per-task overhead of one
// worker (BenchPoolTask), how long a task must take for N worker processes
// to finish a batch sooner than one process doing the work itself. With N
// workers on C cores a batch of n tasks of duration w takes about
// n·(w+o)/min(N,C) instead of n·w, so the pool wins from w > o/(min(N,C)−1).
func CostModel(rs []Result) string {
	cores := runtime.NumCPU()
	var b strings.Builder
	for _, r := range rs {
		if r.Bench != BenchPoolTask || r.Skipped != "" || r.RTTus == 0 {
			continue
		}
		if b.Len() == 0 {
			fmt.Fprintf(&b, "cost model (%d cores): a task must take longer than this for N worker processes to beat one process doing the work:\n", cores)
		}
		fmt.Fprintf(&b, "  %-10s overhead %6.1f µs/task:", r.Impl, r.RTTus)
		for _, n := range []int{2, 4, 8} {
			par := min(n, cores)
			if par < 2 {
				fmt.Fprintf(&b, "  N=%d never (1 core)", n)
				continue
			}
			fmt.Fprintf(&b, "  N=%d > %s", n, micros(r.RTTus/float64(par-1)))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func micros(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}
