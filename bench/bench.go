package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"
)

// Benchmarks, the values of Result.Bench.
const (
	BenchRTT    = "rtt"    // ping-pong: mean round trip
	BenchOneWay = "oneway" // one-way throughput
	BenchSpawn  = "spawn"  // spawn to the first IPC message
)

// Implementations, the values of Result.Impl.
const (
	ImplRaw       = "raw"         // Go↔Go raw socketpair frames; for spawn, os/exec and one raw frame
	ImplKinFrame  = "kin-frame"   // Go↔Go ipc.Channel, frame codec
	ImplKinJSON   = "kin-json"    // Go↔Go ipc.Channel, JSON codec
	ImplNodeFork  = "node-fork"   // Node parent, Node child: child_process.fork (the peer)
	ImplKinToNode = "kin-to-node" // Go parent with kin (proc, ipc JSON), unmodified Node child
	ImplNodeToKin = "node-to-kin" // Node parent (fork, execPath = this program), Go child on ipc.FromEnv
	ImplKinWorker = "kin-worker"  // spawn: this program re-executed as a worker.Serve worker
)

// Codecs, the values of Result.Codec.
const (
	CodecRaw   = "raw"
	CodecFrame = "frame"
	CodecJSON  = "json"
)

// The payload sizes measured by default.
const (
	Size100B = 100
	Size4KiB = 4 << 10
	Size1MiB = 1 << 20
)

// IPCImpls and SpawnImpls are the implementations IPC and Spawn compare, in
// the order they run and are reported.
var (
	IPCImpls   = []string{ImplRaw, ImplKinFrame, ImplKinJSON, ImplNodeFork, ImplKinToNode, ImplNodeToKin}
	SpawnImpls = []string{ImplRaw, ImplKinWorker, ImplKinToNode, ImplNodeFork, ImplNodeToKin}
	Sizes      = []int{Size100B, Size4KiB, Size1MiB}
)

// Result is one measured figure of one implementation. Its JSON form is what
// `kin bench --json` prints.
type Result struct {
	Bench string `json:"bench"`           // BenchRTT, BenchOneWay or BenchSpawn
	Impl  string `json:"impl"`            // one of the Impl constants
	Codec string `json:"codec,omitempty"` // CodecRaw, CodecFrame or CodecJSON; for HTTP rows the load generator
	Size  int    `json:"size,omitempty"`  // payload bytes per message
	N     int    `json:"n"`               // round trips, messages or spawns timed (per run)
	// MsgsPerS and MBPerS are one-way throughput; MB is 10⁶ payload bytes.
	MsgsPerS float64 `json:"msgs_per_s,omitempty"`
	MBPerS   float64 `json:"mb_per_s,omitempty"`
	// RTTus is the mean round trip in microseconds.
	RTTus float64 `json:"rtt_us,omitempty"`
	// Ms is the median spawn-to-first-message time in milliseconds; for the
	// process-manager benchmarks, the median status command or restart;
	// for the queue's latency rows, the p50.
	Ms float64 `json:"ms,omitempty"`
	// P99Ms is the p99 of the queue's latency rows, in milliseconds.
	P99Ms float64 `json:"p99_ms,omitempty"`
	// ReqPerS is HTTP requests per second (BenchPMHTTP, BenchPMReload).
	ReqPerS float64 `json:"req_per_s,omitempty"`
	// Failed counts failed HTTP requests: socket errors and non-2xx/3xx
	// answers (BenchPMHTTP, BenchPMReload); absent means none.
	Failed float64 `json:"failed,omitempty"`
	// CPUus is the CPU time, in microseconds per request, of the processes
	// serving HTTP: the daemon and its instances, or the bare process
	// (BenchPMHTTP). The load generator's own CPU is not counted. For the
	// queue's throughput rows it is the CPU time per job of all of one
	// side's processes (kin: this process, with its embedded server, and
	// its worker processes; BullMQ: its Node process with the sandboxed
	// children, and redis-server), over the warm-up and the timed jobs.
	CPUus float64 `json:"cpu_us_per_req,omitempty"`
	// RSSMB is a process's resident memory, VmRSS/1024 (MiB, written MB as
	// ps and PM2 do).
	RSSMB float64 `json:"rss_mb,omitempty"`
	// VsPeer, when not zero, is the median over runs of the ratio of this
	// figure to its peer's in the same run (Queue sets it: on a noisy
	// machine the ratios within one run are steadier than the ratio of
	// medians); Ratio returns it.
	VsPeer float64 `json:"vs_peer,omitempty"`
	// Skipped, when not empty, says why the implementation was not measured
	// (node is not installed); the figures are then zero.
	Skipped string `json:"skipped,omitempty"`
}

// Value returns the figure r is compared by: RTTus (round trips, per-task
// overhead), MsgsPerS (one-way messages, tiny tasks, queue throughput),
// ReqPerS (HTTP), Failed (reloads), RSSMB (memory) or Ms (spawns, heavy
// batches, status commands, restarts, queue latency p50).
func (r Result) Value() float64 {
	switch r.Bench {
	case BenchRTT, BenchPoolTask:
		return r.RTTus
	case BenchOneWay, BenchPoolTiny, BenchQueueInline, BenchQueueProcess, BenchQueueInlineAlways, BenchQueueProcessAlways:
		return r.MsgsPerS
	case BenchPMHTTP:
		return r.ReqPerS
	case BenchPMReload:
		return r.Failed
	case BenchPMRSS, BenchPMRSSApps, BenchPMAppRSS:
		return r.RSSMB
	}
	return r.Ms
}

// Options tunes IPC and Spawn. The zero value runs the full comparison.
type Options struct {
	// Quick runs about a twentieth of the iterations (and 5 spawns instead
	// of 30): enough to check that everything works, for CI and for
	// go test -benchtime=1x. Its figures are rough.
	Quick bool
	// Runs repeats the whole comparison, with the same children, and
	// reports the median of each figure; zero means 1.
	Runs int
	// Progress, when not nil, is called with a line per figure measured.
	Progress func(string)
	// Node is the node binary; empty means "node" from $PATH, and the Node
	// implementations are skipped when there is none.
	Node string
	// Sizes are the payload sizes IPC measures; nil means Sizes.
	Sizes []int
	// Benches selects BenchRTT and/or BenchOneWay for IPC, some of
	// PMBenches for PM; nil means all.
	Benches []string
	// Impls selects implementations; nil means all (IPCImpls, SpawnImpls,
	// PoolImpls, PMImpls).
	Impls []string
	// Kin is the kin binary PM runs; empty means this program, which must
	// then be kin.
	Kin string
	// PM2 is PM2's CLI (node_modules/.bin/pm2) for PM; empty means the one
	// in PeerDir, else pm2 from $PATH, and PM2's rows are skipped when
	// there is none.
	PM2 string
	// Jobs is the number of jobs of each of Queue's throughput rows; zero
	// means 10 000 (1 000 with Quick).
	Jobs int
	// Redis is the redis-server binary Queue runs BullMQ on; empty means
	// redis-server from $PATH, and BullMQ's rows are skipped when there is
	// none.
	Redis string
}

func (o Options) runs() int { return max(o.Runs, 1) }

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, args...))
	}
}

// impls returns the selected implementations of all, in all's order.
func (o Options) impls(all []string) ([]string, error) {
	if o.Impls == nil {
		return all, nil
	}
	for _, impl := range o.Impls {
		if !slices.Contains(all, impl) {
			return nil, fmt.Errorf("bench: unknown implementation %q (want one of %v)", impl, all)
		}
	}
	var out []string
	for _, impl := range all {
		if slices.Contains(o.Impls, impl) {
			out = append(out, impl)
		}
	}
	return out, nil
}

// needsNode reports whether impl runs node.
func needsNode(impl string) bool {
	return impl == ImplNodeFork || impl == ImplKinToNode || impl == ImplNodeToKin
}

// counts returns how many round trips or messages to time, and how many to
// run untimed first, for a payload of size bytes. Round trips are warmed up
// with 5 % more; one-way runs with an untimed burst of the same size,
// because the peers reach their steady state only after one: in Node's
// first burst of 200 000 messages both processes still grow their heaps,
// and node-fork ran at 60 % of its later bursts (126 k against 212 k msg/s).
func counts(bench string, size int, quick bool) (n, warm int) {
	switch {
	case bench == BenchRTT && size < 64<<10:
		n = 20000
	case bench == BenchRTT:
		n = 100
	case size < 1<<10:
		n = 200000
	case size < 64<<10:
		n = 100000
	default:
		n = 200
	}
	if quick {
		n = max(n/20, 4)
	}
	if bench == BenchOneWay {
		return n, n
	}
	return n, max(n/20, 1)
}

// env is what one IPC or Spawn call shares: the programs to run and the
// Node scripts, written to a temporary directory.
type env struct {
	exe    string // this program, re-executed for Go children
	node   string // node's path; empty when missing
	noNode string // why the Node implementations are skipped
	dir    string // the Node scripts
}

func newEnv(o Options) (*env, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: cannot find this program to re-execute: %w", err)
	}
	e := &env{exe: exe}
	if o.Node != "" {
		if e.node, err = exec.LookPath(o.Node); err != nil {
			return nil, fmt.Errorf("bench: Options.Node: %w", err)
		}
	} else if e.node, err = exec.LookPath("node"); err != nil {
		e.node, e.noNode = "", "node not found in $PATH"
	}
	if e.node != "" {
		if e.dir, err = writeScripts(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *env) close() {
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// childEnv returns the environment of a Go child running mode.
func childEnv(mode string) []string {
	return append(os.Environ(), EnvChild+"="+mode)
}

// An ipcPeer is one implementation's parent side, with its child running.
type ipcPeer interface {
	// roundTrip times n round trips of a size-byte payload after warm
	// untimed ones.
	roundTrip(ctx context.Context, size, n, warm int) (time.Duration, error)
	// oneWay times sending n size-byte messages up to the child's answer
	// that it has them all, after an untimed burst of warm.
	oneWay(ctx context.Context, size, n, warm int) (time.Duration, error)
	// close stops the child and waits for it.
	close() error
}

func codecOf(impl string) string {
	switch impl {
	case ImplRaw:
		return CodecRaw
	case ImplKinFrame, ImplKinWorker:
		return CodecFrame
	}
	return CodecJSON
}

func (e *env) startPeer(ctx context.Context, impl string) (ipcPeer, error) {
	switch impl {
	case ImplRaw:
		return startRaw(ctx, e.exe)
	case ImplKinFrame:
		return startKin(ctx, CodecFrame, e.exe, nil, childEnv(childKin))
	case ImplKinJSON:
		return startKin(ctx, CodecJSON, e.exe, nil, childEnv(childKin))
	case ImplKinToNode:
		return startKin(ctx, CodecJSON, e.node, []string{e.script("child.js")}, nil)
	case ImplNodeFork:
		return startNodeParent(ctx, e, forkCmd{Script: e.script("child.js")})
	case ImplNodeToKin:
		return startNodeParent(ctx, e, forkCmd{ExecPath: e.exe, Env: map[string]string{EnvChild: childKin}})
	}
	return nil, fmt.Errorf("bench: unknown implementation %q", impl)
}

// IPC compares round trips and one-way throughput of the implementations
// (IPCImpls) at each payload size. All children are started first and kept
// for the whole call; the implementations then take turns for every
// benchmark and size, so that a burst of noise hits them alike. Results come
// in that order: per size, rtt then oneway, per implementation.
func IPC(ctx context.Context, o Options) (results []Result, err error) {
	impls, err := o.impls(IPCImpls)
	if err != nil {
		return nil, err
	}
	benches := o.Benches
	if benches == nil {
		benches = []string{BenchRTT, BenchOneWay}
	}
	for _, b := range benches {
		if b != BenchRTT && b != BenchOneWay {
			return nil, fmt.Errorf("bench: unknown IPC benchmark %q (want %q or %q)", b, BenchRTT, BenchOneWay)
		}
	}
	sizes := o.Sizes
	if sizes == nil {
		sizes = Sizes
	}
	for _, s := range sizes {
		if s <= 0 {
			return nil, fmt.Errorf("bench: payload size %d", s)
		}
	}
	e, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer e.close()

	peers := make(map[string]ipcPeer)
	defer func() {
		for _, impl := range impls {
			if p := peers[impl]; p != nil {
				if cerr := p.close(); cerr != nil && err == nil {
					results, err = nil, fmt.Errorf("bench: %s: %w", impl, cerr)
				}
			}
		}
	}()
	for _, impl := range impls {
		if needsNode(impl) && e.node == "" {
			continue
		}
		p, err := e.startPeer(ctx, impl)
		if err != nil {
			return nil, fmt.Errorf("bench: start %s: %w", impl, ctxErr(ctx, err))
		}
		peers[impl] = p
	}

	runs := make([][]Result, o.runs())
	for run := range runs {
		for _, size := range sizes {
			for _, b := range benches {
				n, warm := counts(b, size, o.Quick)
				for _, impl := range impls {
					r := Result{Bench: b, Impl: impl, Codec: codecOf(impl), Size: size, N: n}
					p := peers[impl]
					if p == nil {
						r.Skipped = e.noNode
						runs[run] = append(runs[run], r)
						continue
					}
					var d time.Duration
					if b == BenchRTT {
						d, err = p.roundTrip(ctx, size, n, warm)
					} else {
						d, err = p.oneWay(ctx, size, n, warm)
					}
					if err != nil {
						return nil, fmt.Errorf("bench: %s %s %s: %w", b, sizeName(size), impl, ctxErr(ctx, err))
					}
					if b == BenchRTT {
						r.RTTus = float64(d) / float64(n) / 1e3
					} else {
						r.MsgsPerS = float64(n) / d.Seconds()
						r.MBPerS = float64(n) * float64(size) / d.Seconds() / 1e6
					}
					o.progress("%s", progressLine(r))
					runs[run] = append(runs[run], r)
				}
			}
		}
	}
	return Median(runs), nil
}

// ctxErr prefers the context's error to the I/O errors its end caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func progressLine(r Result) string {
	head := fmt.Sprintf("%-6s %-6s %-11s", r.Bench, sizeName(r.Size), r.Impl)
	if r.Bench == BenchSpawn {
		head = fmt.Sprintf("%-6s %-11s", r.Bench, r.Impl)
	}
	return head + " " + figure(r)
}

// Median merges the results of several runs of the same comparison: each
// figure is the median of that figure over the runs. Results are matched by
// benchmark, implementation and size, in the first run's order.
func Median(runs [][]Result) []Result {
	if len(runs) == 0 {
		return nil
	}
	if len(runs) == 1 {
		return runs[0]
	}
	type key struct {
		bench, impl string
		size        int
	}
	all := make(map[key][]Result)
	for _, run := range runs {
		for _, r := range run {
			k := key{r.Bench, r.Impl, r.Size}
			all[k] = append(all[k], r)
		}
	}
	out := make([]Result, 0, len(runs[0]))
	for _, r := range runs[0] {
		rs := all[key{r.Bench, r.Impl, r.Size}]
		m := r
		m.MsgsPerS = median(rs, func(r Result) float64 { return r.MsgsPerS })
		m.MBPerS = median(rs, func(r Result) float64 { return r.MBPerS })
		m.RTTus = median(rs, func(r Result) float64 { return r.RTTus })
		m.Ms = median(rs, func(r Result) float64 { return r.Ms })
		m.P99Ms = median(rs, func(r Result) float64 { return r.P99Ms })
		m.ReqPerS = median(rs, func(r Result) float64 { return r.ReqPerS })
		m.Failed = median(rs, func(r Result) float64 { return r.Failed })
		m.RSSMB = median(rs, func(r Result) float64 { return r.RSSMB })
		m.CPUus = median(rs, func(r Result) float64 { return r.CPUus })
		out = append(out, m)
	}
	return out
}

func median[T any](xs []T, f func(T) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// sizeName returns "100 B", "4 KiB", "1 MiB".
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
