package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/kinproc/kin/bench"
)

// BenchmarkSpawn times spawn to first IPC message for each implementation
// (median of 30 spawns, 5 with -benchtime=1x or -short) and reports them
// with their ratios to their baselines; kin's target is a Go worker ready
// within 5 ms (kin-worker-ms).
func BenchmarkSpawn(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rs, err := bench.Spawn(ctx, bench.Options{Quick: quick(), Runs: b.N, Impls: impls()})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	report(b, rs)
	b.Log("\n" + bench.Table(rs))
}

func TestSpawnQuick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := bench.Spawn(ctx, bench.Options{Quick: true})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, rs, len(bench.SpawnImpls))
	t.Log("\n" + bench.Table(rs))
}
