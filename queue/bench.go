package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchConfig is a throughput run: Jobs no-op jobs added to a fresh queue
// in batches while Work runs them, as BullMQ's benchmark does.
type BenchConfig struct {
	// Queue is the queue's name; it is purged first. Empty means "bench".
	Queue string
	// Jobs is the number of jobs; zero means 10 000.
	Jobs int
	// Batch is how many jobs each AddBatch adds; zero means 1 000.
	Batch int
	// Data is each job's data; nil means {"n":1}.
	Data []byte
	// Work runs the jobs (its OnDone is taken).
	Work WorkConfig
}

// BenchResult is what a run measured.
type BenchResult struct {
	Jobs int
	// Elapsed is from the first add to the last job's completion.
	Elapsed time.Duration
	// PerSecond is Jobs / Elapsed.
	PerSecond float64
}

func (r BenchResult) String() string {
	return fmt.Sprintf("%d jobs in %v: %.0f jobs/s", r.Jobs, r.Elapsed.Round(time.Millisecond), r.PerSecond)
}

// BenchThroughput runs cfg on c: it is the core of kin's queue benchmarks
// (queue/bench_test.go, bench/).
func BenchThroughput(ctx context.Context, c *Client, cfg BenchConfig) (BenchResult, error) {
	if cfg.Queue == "" {
		cfg.Queue = "bench"
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = 10000
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Data == nil {
		cfg.Data = []byte(`{"n":1}`)
	}
	if _, err := c.handle(ctx, cfg.Queue); err != nil {
		return BenchResult{}, err
	}
	if err := c.Purge(ctx, cfg.Queue); err != nil {
		return BenchResult{}, err
	}
	done := make(chan struct{})
	var n atomic.Int64
	cfg.Work.OnDone = func(j *Job) {
		if j.State == Completed {
			if n.Add(1) == int64(cfg.Jobs) {
				close(done)
			}
		}
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, werr = c.Work(wctx, cfg.Queue, cfg.Work)
	}()
	defer func() {
		stop()
		wg.Wait()
	}()
	specs := make([]JobSpec, cfg.Batch)
	start := time.Now()
	for added := 0; added < cfg.Jobs; {
		k := min(cfg.Batch, cfg.Jobs-added)
		for i := range k {
			specs[i] = JobSpec{Data: cfg.Data}
		}
		if _, err := c.AddBatch(ctx, cfg.Queue, specs[:k]); err != nil {
			return BenchResult{}, err
		}
		added += k
	}
	select {
	case <-done:
	case <-ctx.Done():
		return BenchResult{}, fmt.Errorf("queue: bench: %d of %d jobs done: %w", n.Load(), cfg.Jobs, ctx.Err())
	}
	el := time.Since(start)
	stop()
	wg.Wait()
	if werr != nil {
		return BenchResult{}, werr
	}
	return BenchResult{Jobs: cfg.Jobs, Elapsed: el, PerSecond: float64(cfg.Jobs) / el.Seconds()}, nil
}

// LatencyResult is the distribution of add → completed-event times.
type LatencyResult struct {
	N             int
	P50, P90, Max time.Duration
}

func (r LatencyResult) String() string {
	return fmt.Sprintf("add→completed over %d jobs: p50 %v, p90 %v, max %v", r.N, r.P50, r.P90, r.Max)
}

// BenchLatency adds n jobs one at a time to a fresh queue served by work,
// and measures from each Add call to the job's completed event reaching a
// subscriber (BullMQ's QueueEvents 'completed').
func BenchLatency(ctx context.Context, c *Client, queue string, n int, work WorkConfig) (LatencyResult, error) {
	if _, err := c.handle(ctx, queue); err != nil {
		return LatencyResult{}, err
	}
	if err := c.Purge(ctx, queue); err != nil {
		return LatencyResult{}, err
	}
	events := make(chan *nats.Msg, 16)
	sub, err := c.nc.ChanSubscribe(eventFilter(queue, EventCompleted), events)
	if err != nil {
		return LatencyResult{}, err
	}
	defer sub.Unsubscribe()
	if err := c.nc.Flush(); err != nil {
		return LatencyResult{}, err
	}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Work(wctx, queue, work)
	}()
	defer func() {
		stop()
		wg.Wait()
	}()
	// Warm up: the worker processes start, the first jobs pay for it.
	var lat []time.Duration
	for i := -10; i < n; i++ {
		t0 := time.Now()
		id, err := c.Add(ctx, queue, JobSpec{Data: []byte(`{"n":1}`)})
		if err != nil {
			return LatencyResult{}, err
		}
		for {
			select {
			case m := <-events:
				if m.Subject[len(m.Subject)-len(id):] != id {
					continue
				}
			case <-ctx.Done():
				return LatencyResult{}, ctx.Err()
			}
			break
		}
		if i >= 0 {
			lat = append(lat, time.Since(t0))
		}
	}
	slices.Sort(lat)
	return LatencyResult{N: n, P50: lat[n/2], P90: lat[n*9/10], Max: lat[n-1]}, nil
}
