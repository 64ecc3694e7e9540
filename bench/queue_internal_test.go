package bench

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQueueLeavesNothing runs a small Queue comparison and checks that it
// leaves no process (redis-server, the BullMQ driver and its sandboxed
// children, kin's worker processes) and no temporary directory behind. It
// is not parallel: it sets $TMPDIR, and no other test may have children
// while it looks for leftovers.
func TestQueueLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs, err := Queue(ctx, Options{Quick: true, Jobs: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Skipped != "" {
			t.Logf("%s %s skipped: %s", r.Bench, r.Impl, r.Skipped)
			if r.Impl != ImplBullMQ && r.Impl != ImplBullMQWorker && !strings.Contains(r.Skipped, "node") {
				t.Errorf("kin row skipped: %+v", r)
			}
			continue
		}
		if r.Value() <= 0 || r.N <= 0 {
			t.Errorf("implausible result %+v", r)
		}
	}
	if left := descendants(os.Getpid()); len(left) > 0 {
		for _, p := range left {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
			t.Errorf("left running: %d %s", p, strings.ReplaceAll(string(b), "\x00", " "))
			killTree(p)
		}
	}
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		t.Errorf("left in $TMPDIR: %s", e.Name())
	}
}

func TestQueueTable(t *testing.T) {
	t.Parallel()
	rs := []Result{
		{Bench: BenchQueueInline, Impl: ImplKin, Codec: WorkerHandler, N: 10000, MsgsPerS: 30000},
		{Bench: BenchQueueInline, Impl: ImplBullMQ, Codec: WorkerInline, N: 10000, MsgsPerS: 7500},
		{Bench: BenchQueueProcess, Impl: ImplKin, Codec: WorkerNode, N: 10000, MsgsPerS: 6000},
		{Bench: BenchQueueProcess, Impl: ImplKinGo, Codec: WorkerGo, N: 10000, MsgsPerS: 12000},
		{Bench: BenchQueueProcess, Impl: ImplBullMQ, Codec: WorkerSandboxed, N: 10000, MsgsPerS: 3000},
		{Bench: BenchQueueInlineAlways, Impl: ImplKin, Codec: WorkerHandler, N: 10000, MsgsPerS: 1000},
		{Bench: BenchQueueInlineAlways, Impl: ImplBullMQ, Codec: WorkerInline, Skipped: "bullmq failed: boom"},
		{Bench: BenchQueueLatencyInline, Impl: ImplKin, Codec: WorkerHandler, N: 500, Ms: 0.4, P99Ms: 1.5},
		{Bench: BenchQueueLatencyInline, Impl: ImplBullMQ, Codec: WorkerInline, N: 500, Ms: 2.9, P99Ms: 4},
		{Bench: BenchQueueLatencyProcess, Impl: ImplKin, Codec: WorkerNode, N: 500, Ms: 1.2, P99Ms: 3},
		{Bench: BenchQueueLatencyProcess, Impl: ImplKinTask, Codec: WorkerNode, N: 500, Ms: 0.05, P99Ms: 0.1},
	}
	checks := Checks(rs)
	want := map[string]bool{
		"queue-inline kin/bullmq jobs/s":                                  true,  // 30000/7500 = 4 ≥ 3
		"queue-process kin/bullmq jobs/s":                                 false, // 2 < 3
		"queue-latency-inline kin p50 ms (the no-op job's own work ≈ 0)":  true,
		"queue-latency-process kin p50 ms (the no-op job's own work ≈ 0)": false,
	}
	if len(checks) != len(want) {
		t.Fatalf("checks %v, want %d", checks, len(want))
	}
	for _, c := range checks {
		met, ok := want[c.Name]
		if !ok || c.Met() != met {
			t.Errorf("check %v: want known and met=%v", c, met)
		}
	}
	table := QueueTable(rs)
	for _, s := range []string{
		"30.0 k jobs/s", "7.5 k jobs/s", "4.00×", "2.00×", "4.00×", // Go workers: 12000/3000
		"0.400 ms (p99 1.50)", "2.90 ms (p99 4.00)", "0.14×",
		"0.050 ms (p99 0.100)", "skipped bullmq: bullmq failed: boom",
		"queue-process kin/bullmq jobs/s: 2 (target ≥ 3) MISSED",
	} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	for _, line := range strings.Split(table, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing blank in %q", line)
		}
	}
}

func TestQueueMedianRatios(t *testing.T) {
	t.Parallel()
	run := func(kin, bull float64) []Result {
		return []Result{
			{Bench: BenchQueueInline, Impl: ImplKin, N: 10, MsgsPerS: kin},
			{Bench: BenchQueueInline, Impl: ImplBullMQ, N: 10, MsgsPerS: bull},
		}
	}
	// Ratios 2, 4 and 3 within the runs (median 3); the ratio of the
	// medians would be 9000/2000 = 4.5.
	runs := [][]Result{run(4000, 2000), run(20000, 5000), run(9000, 3000)}
	rs := medianRatios(runs, Median(runs))
	if rs[0].MsgsPerS != 9000 || rs[1].MsgsPerS != 3000 {
		t.Errorf("medians %v", rs)
	}
	if v, base, ok := Ratio(rs, rs[0]); !ok || base != ImplBullMQ || v != 3 {
		t.Errorf("Ratio = %v %q %v, want 3 bullmq", v, base, ok)
	}
	if rs[1].VsPeer != 0 {
		t.Errorf("the peer has a ratio: %+v", rs[1])
	}
}
