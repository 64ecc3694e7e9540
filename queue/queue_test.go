package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

func TestInProcessJobsComplete(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	var runs atomic.Int64
	working(t, c, "q", queue.WorkConfig{Concurrency: 2, Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		runs.Add(1)
		var in struct{ N int }
		json.Unmarshal(j.Data, &in)
		return data(in.N * 2), nil
	}})
	var ids []string
	for i := range 100 {
		id, err := c.Add(ctx, "q", queue.JobSpec{Data: data(map[string]int{"n": i})})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		j, err := c.Wait(ctx, "q", id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != queue.Completed || string(j.Result) != strconv.Itoa(2*i) || j.Attempt != 1 {
			t.Fatalf("job %d: %+v", i, j)
		}
		if j.Started.Before(j.Added) || j.Finished.Before(j.Started) {
			t.Errorf("timings out of order: %+v", j)
		}
	}
	if n := runs.Load(); n != 100 {
		t.Errorf("handler ran %d times, want 100", n)
	}
	kintest.WaitFor(t, 5*time.Second, "stats", func() bool {
		st, err := c.Stats(ctx, "q")
		return err == nil && st.Completed == 100 && st.Waiting == 0 && st.Active == 0
	})
}

func TestHandlerFailureRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	var tries sync.Map
	working(t, c, "q", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		n, _ := tries.LoadOrStore(j.ID, new(atomic.Int32))
		k := n.(*atomic.Int32).Add(1)
		if j.Attempt != int(k) {
			return nil, fmt.Errorf("attempt %d on try %d", j.Attempt, k)
		}
		if string(j.Data) == `"ok-on-2"` && k == 2 {
			return data("fine"), nil
		}
		if string(j.Data) == `"panic"` {
			panic("deliberate")
		}
		return nil, errors.New("no luck")
	}})
	fast := queue.Backoff{Delay: 5 * time.Millisecond}
	id1, _ := c.Add(ctx, "q", queue.JobSpec{Data: data("ok-on-2"), Backoff: fast})
	id2, _ := c.Add(ctx, "q", queue.JobSpec{Data: data("never"), Attempts: 2, Backoff: fast})
	id3, _ := c.Add(ctx, "q", queue.JobSpec{Data: data("panic"), Attempts: 1})

	j, err := c.Wait(ctx, "q", id1)
	if err != nil || j.State != queue.Completed || j.Attempt != 2 || string(j.Result) != `"fine"` {
		t.Fatalf("id1: %+v %v", j, err)
	}
	j, err = c.Wait(ctx, "q", id2)
	var je *queue.JobError
	if !errors.As(err, &je) || j.State != queue.Dead || j.Attempt != 2 || je.Cause != queue.CauseError || je.Message != "no luck" {
		t.Fatalf("id2: %+v %v", j, err)
	}
	kintest.WaitFor(t, 5*time.Second, "the dead job's data", func() bool {
		j, err := c.Get(ctx, "q", id2)
		return err == nil && j.State == queue.Dead && string(j.Data) == `"never"`
	})
	j, err = c.Wait(ctx, "q", id3)
	if !errors.As(err, &je) || je.Cause != queue.CauseCrash || j.Attempt != 1 {
		t.Fatalf("id3: %+v %v", j, err)
	}
	kintest.WaitFor(t, 5*time.Second, "stats", func() bool {
		st, err := c.Stats(ctx, "q")
		return err == nil && st.Dead == 2 && st.Completed == 1 && st.Failed == 2
	})

	// Retry brings a dead job back with fresh attempts.
	tries.Delete(id2)
	if err := c.Retry(ctx, "q", id2); err != nil {
		t.Fatal(err)
	}
	if err := c.Retry(ctx, "q", id1); !errors.Is(err, queue.ErrNotDead) {
		t.Errorf("retry of a completed job: %v", err)
	}
	j, err = c.Wait(ctx, "q", id2)
	if !errors.As(err, &je) || j.State != queue.Dead || j.Attempt != 2 {
		t.Fatalf("id2 after retry: %+v %v", j, err)
	}
	tries.Delete(id2)
	tries.Delete(id3)
	n, err := c.RetryDead(ctx, "q")
	if err != nil || n != 2 {
		t.Fatalf("RetryDead = %d, %v", n, err)
	}
	kintest.WaitFor(t, 10*time.Second, "both dead again", func() bool {
		st, err := c.Stats(ctx, "q")
		return err == nil && st.Dead == 2 && st.Waiting == 0 && st.Active == 0
	})
}
