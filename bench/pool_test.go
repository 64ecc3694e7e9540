package bench_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/bench"
)

// BenchmarkPool compares kin's pool with a plain Node child_process pool of
// the same size (2 workers): tiny tasks (tasks/s; kin's targets: ≥ 1.5× the
// Node pool with the same Node worker, ≥ 100 k tasks/s with Go workers),
// ~20 ms CPU-heavy tasks (the speed-up of 2 workers over 1, target ≥ 1.8),
// and tiny tasks through one worker (per-task overhead, the cost model's
// input).
func BenchmarkPool(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rs, err := bench.Pool(ctx, bench.Options{Quick: quick(), Runs: b.N, Impls: impls()})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	for _, r := range rs {
		if r.Skipped != "" {
			continue
		}
		switch r.Bench {
		case bench.BenchPoolTiny:
			b.ReportMetric(r.MsgsPerS, r.Impl+"-tiny-tasks/s")
		case bench.BenchPoolTask:
			b.ReportMetric(r.RTTus, r.Impl+"-us/task")
		case bench.BenchPoolHeavy:
			b.ReportMetric(r.Ms, r.Impl+"-heavy-ms")
		}
		if ratio, base, ok := bench.Ratio(rs, r); ok {
			b.ReportMetric(ratio, r.Bench+":"+r.Impl+"/"+base)
		}
	}
	b.Log("\n" + bench.Table(rs) + bench.CostModel(rs))
}

func TestPoolQuick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs, err := bench.Pool(ctx, bench.Options{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	// 5 tiny, 3 one-at-a-time, 4 heavy.
	checkSane(t, rs, 12)
	if cm := bench.CostModel(rs); !strings.Contains(cm, "kin-go") || !strings.Contains(cm, "N=2 >") {
		t.Errorf("cost model:\n%s", cm)
	}
	t.Log("\n" + bench.Table(rs) + bench.CostModel(rs))
}
