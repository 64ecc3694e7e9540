package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/queue"
)

func noop(ctx context.Context, j *queue.Job) (json.RawMessage, error) { return nil, nil }

// BenchmarkThroughput is 10 000 no-op jobs at concurrency 2, from the first
// add to the last completion, with in-process handlers and with Go and Node
// worker processes, in both durability settings. Compare with BullMQ:
// 6.9 k jobs/s inline, 3.1 k sandboxed (ANCHORS.md).
func BenchmarkThroughput(b *testing.B) {
	for _, sync := range []string{"", "always"} {
		name := "sync=100ms"
		if sync != "" {
			name = "sync=" + sync
		}
		b.Run(name, func(b *testing.B) {
			srv := startServer(b, queue.ServerConfig{Sync: sync})
			c := connect(b, srv)
			for _, kind := range []string{"inprocess", "go-workers", "node-workers"} {
				b.Run(kind, func(b *testing.B) {
					work := queue.WorkConfig{Concurrency: 2}
					switch kind {
					case "inprocess":
						work.Handler = noop
					case "go-workers":
						work.Pool = goPool(b, work.Concurrency)
					case "node-workers":
						work.Command = nodeWorker(b)
					}
					var best queue.BenchResult
					var all []string
					var cpu time.Duration
					for i := 0; i < b.N; i++ {
						cpu0 := cpuTime()
						r, err := queue.BenchThroughput(ctxT(b), c, queue.BenchConfig{Queue: kind, Work: work})
						if err != nil {
							b.Fatal(err)
						}
						cpu += cpuTime() - cpu0
						all = append(all, fmt.Sprintf("%.0f", r.PerSecond))
						if r.PerSecond > best.PerSecond {
							best = r
						}
					}
					// The machine is shared: the best run is the least
					// disturbed; CPU time per job (this process, with the
					// embedded server, not the worker processes) is steadier.
					b.ReportMetric(best.PerSecond, "jobs/s")
					b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*best.Jobs), "cpu-µs/job")
					b.Logf("%s %s: best %v (runs: %s jobs/s)", name, kind, best, strings.Join(all, " "))
				})
			}
		})
	}
}

// BenchmarkLatency is one job at a time, from Add to its completed event,
// with an in-process handler and with a warm Node or Go worker process.
// Compare with BullMQ: 2.9–3.1 ms.
func BenchmarkLatency(b *testing.B) {
	for _, sync := range []string{"", "always"} {
		name := "sync=100ms"
		if sync != "" {
			name = "sync=" + sync
		}
		b.Run(name, func(b *testing.B) {
			srv := startServer(b, queue.ServerConfig{Sync: sync})
			c := connect(b, srv)
			for _, kind := range []string{"inprocess", "go-worker", "node-worker"} {
				b.Run(kind, func(b *testing.B) {
					work := queue.WorkConfig{Concurrency: 1}
					switch kind {
					case "inprocess":
						work.Handler = noop
					case "go-worker":
						work.Pool = goPool(b, work.Concurrency)
					case "node-worker":
						work.Command = nodeWorker(b)
					}
					r, err := queue.BenchLatency(ctxT(b), c, "lat-"+kind, max(b.N, 200), work)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
					b.ReportMetric(float64(r.P90.Microseconds()), "p90-µs")
					b.Logf("%s %s: %v", name, kind, r)
				})
			}
		})
	}
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStats is Stats of a queue holding the records of 10 000
// completed jobs (20 000 records: Stats reads the headers of each).
func BenchmarkStats(b *testing.B) {
	srv := startServer(b, queue.ServerConfig{})
	c := connect(b, srv)
	ctx := ctxT(b)
	if _, err := queue.BenchThroughput(ctx, c, queue.BenchConfig{Queue: "stats", Work: queue.WorkConfig{Handler: noop}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		st, err := c.Stats(ctx, "stats")
		if err != nil || st.Completed != 10000 {
			b.Fatalf("%+v %v", st, err)
		}
	}
	// (This process's CPU time, the embedded server's included: steadier
	// than the time per call on a shared machine.)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
