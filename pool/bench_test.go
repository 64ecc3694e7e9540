package pool_test

import (
	"context"
	"sync"
	"testing"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
)

// BenchmarkSubmitSequential is one tiny task at a time through one Go
// worker: the pool's per-task overhead over a channel round trip.
func BenchmarkSubmitSequential(b *testing.B) {
	p, err := pool.New(pool.Config{Func: "echo", Workers: 1, Codec: ipc.Frame})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	p.Ready(ctx)
	data := []byte("1")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Submit(ctx, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitParallel keeps two Go workers busy with tiny tasks,
// pipelined: the pool's throughput.
func BenchmarkSubmitParallel(b *testing.B) {
	for _, pipeline := range []int{1, 64} {
		b.Run(map[int]string{1: "pipeline=1", 64: "pipeline=64"}[pipeline], func(b *testing.B) {
			p, err := pool.New(pool.Config{Func: "echo", Workers: 2, Codec: ipc.Frame, Pipeline: pipeline})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ctx := context.Background()
			p.Ready(ctx)
			data := []byte("1")
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			wg.Add(b.N)
			for i := 0; i < b.N; i++ {
				if err := p.SubmitFunc(ctx, pool.Task{Data: data}, func([]byte, error) { wg.Done() }); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
		})
	}
}
