package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/kinproc/kin/bench"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "bench", summary: "measure IPC, spawn, pool, process-manager and queue costs beside Node.js, PM2 and BullMQ", run: runBench})
}

// benchChildMain runs a benchmark child when kin re-executed itself as one.
func benchChildMain() { bench.ChildMain() }

const benchAbout = `Measures on this machine, side by side with Node.js in the same run:

  ipc    the channel's round trip and one-way throughput per codec and message
         size (100 B, 4 KiB, 1 MiB): kin's frame and JSON codecs, a raw Go
         socketpair (the floor), Node's child_process.fork, and kin talking to
         an unmodified Node child and to a Node parent
  spawn  time from spawn to the first message on the channel
  pool   tasks per second through a pool of warm workers against a plain Node
         child_process pool of the same size, for tiny and CPU-heavy tasks,
         and the cost model: how long a task must take for N processes to
         beat one
  pm     the process manager beside PM2 7 (from ~/.cache/kin-bench or $PATH;
         its rows are skipped without it): HTTP req/s of a 2-instance Node
         cluster app under wrk -t2 -c50, failed requests over two reloads
         under that load, daemon memory with 0 and 4 idle apps, kin ls vs
         pm2 jlist, and exit → restarted for a Node app and a Go binary.
         Needs wrk (else a Go load generator drives both); takes ~3 minutes
         (--quick: ~1)
  queue  the job queue beside BullMQ 5 on Redis (bullmq from ~/.cache/kin-bench,
         redis-server from $PATH; their rows are skipped without them):
         --jobs no-op jobs (default 10 000) at concurrency 2 with in-process
         handlers and with child-process workers (kin: Node and Go workers;
         BullMQ: a sandboxed processor), from the first add to the last
         completion, in each one's default durability and with an fsync before
         every acknowledgement; and add → completed of one job at a time, with
         an in-process handler and a warm worker process. ~1 minute a run

Prints a table with each figure's ratio to its baseline and kin's targets;
with --json, one JSON object per figure (fields bench, impl, codec, size,
msgs_per_s, mb_per_s, rtt_us, ms…). Node figures are skipped when node is
not installed.`

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", "ipc|spawn|pool|pm|queue [--json] [--quick] [--runs N] [--jobs N]", benchAbout)
	asJSON := fs.Bool("json", false, "print one JSON object per figure")
	quick := fs.Bool("quick", false, "a twentieth of the iterations: a quick, rough look")
	runs := fs.Int("runs", 1, "repeat the comparison and report medians")
	sizes := fs.String("sizes", "", "ipc: payload sizes in bytes, comma-separated (default 100,4096,1048576)")
	impls := fs.String("impls", "", "only these implementations, comma-separated (see the table's impl column)")
	jobs := fs.Int("jobs", 0, "queue: jobs per throughput run (default 10000; 1000 with --quick)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageErrorf("bench: say what to measure: kin bench ipc|spawn|pool|pm|queue")
	}
	if *jobs < 0 || *runs < 1 {
		return usageErrorf("bench: --jobs and --runs must be positive")
	}
	o := bench.Options{Quick: *quick, Runs: *runs, Jobs: *jobs}
	if *impls != "" {
		o.Impls = strings.Split(*impls, ",")
	}
	if *sizes != "" {
		for _, s := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return usageErrorf("bench: --sizes: %q is not a size in bytes", s)
			}
			o.Sizes = append(o.Sizes, n)
		}
	}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.Progress = func(line string) { fmt.Fprintf(e.stderr, "  %s\n", line) }
	}
	var rs []bench.Result
	var err error
	switch what := fs.Arg(0); what {
	case "ipc":
		rs, err = bench.IPC(ctx, o)
	case "spawn":
		rs, err = bench.Spawn(ctx, o)
	case "pool":
		rs, err = bench.Pool(ctx, o)
	case "pm":
		rs, err = bench.PM(ctx, o)
	case "queue":
		if *impls != "" || *sizes != "" {
			return usageErrorf("bench: queue takes neither --impls nor --sizes")
		}
		rs, err = bench.Queue(ctx, o)
	default:
		return usageErrorf("bench: unknown benchmark %q (want ipc, spawn, pool, pm or queue)", what)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		for _, r := range rs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	if fs.Arg(0) == "queue" {
		_, err = fmt.Fprint(e.stdout, bench.QueueTable(rs))
		return err
	}
	out := bench.Table(rs)
	switch fs.Arg(0) {
	case "pool":
		out += bench.CostModel(rs)
	case "pm":
		out += bench.PMOverheads(rs)
	}
	_, err = fmt.Fprint(e.stdout, out)
	return err
}
