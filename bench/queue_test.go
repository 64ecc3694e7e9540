package bench_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/kinproc/kin/bench"
)

// BenchmarkQueue compares kin's queue with BullMQ 5 on Redis in the same run
// (see bench.Queue): 10 000 no-op jobs at concurrency 2 with in-process
// handlers and with child-process workers, in each one's default durability
// and with an fsync before every acknowledgement (targets: kin ≥ 3× BullMQ
// in the default durability), and the add → completed latency of one job
// at a time (target: p50 ≤ 1 ms, in-process and with a warm worker
// process). BullMQ comes from bench.PeerDir() and redis-server from $PATH;
// without them BullMQ's rows are skipped with the reason. With
// -benchtime=1x (CI) the throughput rows run 1 000 jobs and the latency
// rows 50; -benchtime=3x reports the median of 3 full runs.
func BenchmarkQueue(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	o := bench.Options{Quick: quick(), Runs: b.N}
	if testing.Verbose() {
		o.Progress = func(line string) { fmt.Fprintln(os.Stderr, "  "+line) }
	}
	rs, err := bench.Queue(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for _, r := range rs {
		if r.Skipped != "" {
			b.Logf("%s %s skipped: %s", r.Bench, r.Impl, r.Skipped)
			continue
		}
		if r.Value() <= 0 || r.N <= 0 {
			b.Errorf("implausible result %+v", r)
		}
		if r.MsgsPerS > 0 {
			b.ReportMetric(r.MsgsPerS, r.Bench+":"+r.Impl+"-jobs/s")
		} else {
			b.ReportMetric(r.Ms, r.Bench+":"+r.Impl+"-p50-ms")
		}
	}
	// Printed rather than logged: go test keeps 10 lines of a benchmark's log.
	fmt.Print(bench.QueueTable(rs))
}
