package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

// TestPriorities: with jobs of every priority waiting, a worker takes all
// high ones, then all normal ones, then the low ones.
func TestPriorities(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	const per = 30
	var specs []queue.JobSpec
	for i := range per {
		for _, p := range []queue.Priority{queue.Low, queue.Normal, queue.High} {
			specs = append(specs, queue.JobSpec{Priority: p, Data: data(string(p))})
		}
		_ = i
	}
	if _, err := c.AddBatch(ctx, "prio", specs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	working(t, c, "prio", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		var p string
		json.Unmarshal(j.Data, &p)
		if p != string(j.Priority) {
			return nil, fmt.Errorf("priority %q, data %q", j.Priority, p)
		}
		mu.Lock()
		order = append(order, p)
		mu.Unlock()
		return nil, nil
	}})
	kintest.WaitFor(t, 10*time.Second, "all jobs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 3*per
	})
	want := slices.Concat(slices.Repeat([]string{"high"}, per), slices.Repeat([]string{"normal"}, per), slices.Repeat([]string{"low"}, per))
	if !slices.Equal(order, want) {
		t.Errorf("order %v", order)
	}
}

// TestDelay: a delayed job is reported delayed, and runs once its time has
// come, not before.
func TestDelay(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	ran := make(chan time.Time, 2)
	working(t, c, "delay", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		ran <- time.Now()
		return data("late"), nil
	}})
	if err := c.Declare(ctx, "delay", queue.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	added := time.Now()
	id, err := c.Add(ctx, "delay", queue.JobSpec{Delay: 1500 * time.Millisecond, Priority: queue.High, Data: data(1)})
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Get(ctx, "delay", id)
	if err != nil || j.State != queue.Delayed || j.Priority != queue.High || string(j.Data) != "1" {
		t.Fatalf("delayed job: %+v %v", j, err)
	}
	if d := j.RunAt.Sub(j.Added); d < 1500*time.Millisecond || d > 1502*time.Millisecond {
		t.Errorf("run at added+%v", d)
	}
	st, err := c.Stats(ctx, "delay")
	if err != nil || st.Delayed != 1 || st.Waiting != 0 {
		t.Errorf("stats %+v %v", st, err)
	}
	at := <-ran
	if d := at.Sub(j.Added); d < 1500*time.Millisecond || d > 3*time.Second {
		t.Errorf("ran %v after it was added, want 1.5 s", d)
	}
	j, err = c.Wait(ctx, "delay", id)
	if err != nil || string(j.Result) != `"late"` || j.Added.Sub(added).Abs() > 100*time.Millisecond {
		t.Fatalf("job %+v %v (added %v)", j, err, added)
	}
}

// TestIdempotencyKey: adding jobs with the same ID, at once or later, makes
// one job.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	var runs atomic.Int32
	gate := make(chan struct{})
	working(t, c, "idem", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		<-gate
		runs.Add(1)
		return j.Data, nil
	}})
	// Concurrent adds with one key.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := c.Add(ctx, "idem", queue.JobSpec{ID: "order-42", Data: data(i)})
			if err != nil || id != "order-42" {
				t.Errorf("add: %q %v", id, err)
			}
		}()
	}
	wg.Wait()
	if ids, err := c.AddBatch(ctx, "idem", []queue.JobSpec{{ID: "order-42"}, {ID: "order-43"}, {ID: "order-43"}}); err != nil || !slices.Equal(ids, []string{"order-42", "order-43", "order-43"}) {
		t.Fatalf("AddBatch: %v %v", ids, err)
	}
	close(gate)
	if _, err := c.Wait(ctx, "idem", "order-42"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, "idem", "order-43"); err != nil {
		t.Fatal(err)
	}
	// Once done, the key is still known (beyond the dedupe window: the
	// record is looked up).
	if id, err := c.Add(ctx, "idem", queue.JobSpec{ID: "order-42"}); err != nil || id != "order-42" {
		t.Fatal(id, err)
	}
	time.Sleep(200 * time.Millisecond) // a second run would have started by now
	if n := runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
	// IDs are KV keys and subject tokens.
	for _, id := range []string{"bad.id", "a:b", "a b", "a*", "a/b", strings.Repeat("x", 129)} {
		if _, err := c.Add(ctx, "idem", queue.JobSpec{ID: id}); err == nil || !strings.Contains(err.Error(), "A–Z a–z 0–9 - _ =") {
			t.Errorf("id %q: %v", id, err)
		}
	}
	if _, err := c.Add(ctx, "idem", queue.JobSpec{ID: "Az09-_=" + strings.Repeat("x", 121)}); err != nil {
		t.Errorf("a valid id of 128 characters: %v", err)
	}
}

// TestEventsReplayAndFollow: Events replays the kept events, then follows
// new ones.
func TestEventsReplayAndFollow(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	working(t, c, "ev", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		if string(j.Data) == `"fail"` {
			return nil, errors.New("boom")
		}
		j.ReportProgress(data("half"))
		return data("ok"), nil
	}})
	a, _ := c.Add(ctx, "ev", queue.JobSpec{Data: data("a")})
	b, _ := c.Add(ctx, "ev", queue.JobSpec{Data: data("fail"), Attempts: 1})
	c.Wait(ctx, "ev", a)
	c.Wait(ctx, "ev", b)

	type seen struct {
		typ queue.EventType
		id  string
	}
	var got []seen
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	var later string
	err := c.Events(ectx, "ev", queue.EventsOptions{Since: time.Now().Add(-time.Hour)}, func(ev queue.Event) error {
		if ev.Seq == 0 || ev.Time.IsZero() || ev.Job == nil {
			t.Errorf("event %+v", ev)
		}
		got = append(got, seen{ev.Type, ev.Job.ID})
		if len(got) == 5 {
			// Caught up: add a job, whose events follow.
			later, _ = c.Add(ctx, "ev", queue.JobSpec{Data: data("later")})
		}
		if ev.Job.ID == later && ev.Type == queue.EventCompleted {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	want := []seen{
		{queue.EventActive, a}, {queue.EventProgress, a}, {queue.EventCompleted, a},
		{queue.EventActive, b}, {queue.EventDead, b},
	}
	// Jobs a and b may interleave; compare per job.
	for _, id := range []string{a, b, later} {
		var g, w []seen
		for _, s := range got {
			if s.id == id {
				g = append(g, s)
			}
		}
		for _, s := range want {
			if s.id == id {
				w = append(w, s)
			}
		}
		if id == later {
			w = []seen{{queue.EventActive, later}, {queue.EventProgress, later}, {queue.EventCompleted, later}}
		}
		if !slices.Equal(g, w) {
			t.Errorf("events of %s: %v, want %v", id, g, w)
		}
	}
	// Filter by type, from a sequence number.
	var completed []string
	ectx, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	c.Events(ectx, "ev", queue.EventsOptions{StartSeq: 1, Types: []queue.EventType{queue.EventCompleted}}, func(ev queue.Event) error {
		completed = append(completed, ev.Job.ID)
		return nil
	})
	if !slices.Equal(completed, []string{a, later}) {
		t.Errorf("completed events: %v", completed)
	}
}

// TestDrainAndRelease: when Work's context ends, the running job finishes
// and is recorded; jobs taken but not started go back to the queue without
// losing an attempt, and the next worker runs them.
func TestDrainAndRelease(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	started := make(chan string, 10)
	release := make(chan struct{})
	stop := working(t, c, "drain", queue.WorkConfig{Prefetch: 5, Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		started <- j.ID
		<-release
		return data("first"), nil
	}})
	ids := addN(t, c, "drain", 4, func(i int) queue.JobSpec { return queue.JobSpec{Attempts: 1} })
	first := <-started
	stopped := make(chan queue.WorkStats)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	close(release) // the running job ends after Work was asked to stop
	st := <-stopped
	if st.Completed != 1 || st.Released != 3 {
		t.Errorf("work stats %+v", st)
	}
	j, err := c.Get(ctx, "drain", first)
	if err != nil || j.State != queue.Completed {
		t.Fatalf("first job %+v %v", j, err)
	}
	for _, id := range ids {
		if id == first {
			continue
		}
		j, err := c.Get(ctx, "drain", id)
		if err != nil || j.State != queue.Waiting || j.Attempt != 0 {
			t.Errorf("released job %+v %v", j, err)
		}
	}
	// Attempts: 1, and yet the released jobs run: none was used up.
	working(t, c, "drain", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		return data(j.Attempt), nil
	}})
	for _, id := range ids {
		j, err := c.Wait(ctx, "drain", id)
		if err != nil || j.State != queue.Completed {
			t.Errorf("job %+v %v", j, err)
		}
		if id != first && string(j.Result) != "1" {
			t.Errorf("attempt %s", j.Result)
		}
	}
}

// TestLongJobKeepsItsDeadline: a job running longer than AckWait is not
// given to another worker while it runs.
func TestLongJobKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	if err := c.Declare(ctx, "long", queue.QueueConfig{AckWait: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	h := func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		runs.Add(1)
		time.Sleep(1500 * time.Millisecond)
		return nil, nil
	}
	// Two workers: a redelivery would go to the idle one.
	working(t, c, "long", queue.WorkConfig{Handler: h})
	working(t, c, "long", queue.WorkConfig{Handler: h})
	id, _ := c.Add(ctx, "long", queue.JobSpec{})
	if j, err := c.Wait(ctx, "long", id); err != nil || j.Attempt != 1 {
		t.Fatalf("%+v %v", j, err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("ran %d times", n)
	}
}

// TestHandlerTimeout: an in-process handler's context ends at the job's
// timeout, and the attempt is recorded as timed out.
func TestHandlerTimeout(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	working(t, c, "hto", queue.WorkConfig{Timeout: 100 * time.Millisecond, Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	id, _ := c.Add(ctx, "hto", queue.JobSpec{Attempts: 1})
	_, err := c.Wait(ctx, "hto", id)
	var je *queue.JobError
	if !errors.As(err, &je) || je.Cause != queue.CauseTimeout {
		t.Fatal(err)
	}
}

// TestAdminCalls: List, Stats, Purge, Delete, and errors for what does not
// exist.
func TestAdminCalls(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	ctx := ctxT(t)
	addN(t, c, "a", 5, func(int) queue.JobSpec { return queue.JobSpec{} })
	addN(t, c, "b", 2, func(int) queue.JobSpec { return queue.JobSpec{Delay: time.Hour} })
	qs, err := c.List(ctx)
	slices.Sort(qs)
	if err != nil || !slices.Equal(qs, []string{"a", "b"}) {
		t.Fatalf("List = %v %v", qs, err)
	}
	if st, err := c.Stats(ctx, "a"); err != nil || st.Waiting != 5 {
		t.Errorf("a: %+v %v", st, err)
	}
	if st, err := c.Stats(ctx, "b"); err != nil || st.Delayed != 2 || st.Waiting != 0 {
		t.Errorf("b: %+v %v", st, err)
	}
	if err := c.Purge(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Stats(ctx, "a"); err != nil || st != (queue.Stats{}) {
		t.Errorf("a after purge: %+v %v", st, err)
	}
	if err := c.Delete(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stats(ctx, "b"); !errors.Is(err, queue.ErrNoQueue) {
		t.Errorf("stats of a deleted queue: %v", err)
	}
	if err := c.Delete(ctx, "b"); !errors.Is(err, queue.ErrNoQueue) {
		t.Errorf("second delete: %v", err)
	}
	// A client that knew a queue someone else deleted makes it again.
	other := connect(t, srv)
	other.Add(ctx, "c", queue.JobSpec{})
	if err := c.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Add(ctx, "c", queue.JobSpec{}); err != nil {
		t.Errorf("add to a queue deleted by another client: %v", err)
	}
	if err := c.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.AddBatch(ctx, "c", []queue.JobSpec{{}}); err != nil {
		t.Errorf("batch add to a queue deleted by another client: %v", err)
	}
	if _, err := c.Get(ctx, "a", "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get: %v", err)
	}
	if _, err := c.Get(ctx, "zz", "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("get in no queue: %v", err)
	}
	if err := c.Retry(ctx, "a", "nope"); !errors.Is(err, queue.ErrNotDead) {
		t.Errorf("retry: %v", err)
	}
	if _, err := c.Add(ctx, "bad.name", queue.JobSpec{}); err == nil {
		t.Error("bad queue name accepted")
	}
	if _, err := c.Add(ctx, "a", queue.JobSpec{Data: json.RawMessage("{not json")}); err == nil {
		t.Error("bad data accepted")
	}
	if _, err := c.Add(ctx, "a", queue.JobSpec{Priority: "urgent"}); err == nil {
		t.Error("bad priority accepted")
	}
	if _, err := c.Work(ctx, "a", queue.WorkConfig{}); err == nil {
		t.Error("Work without a handler")
	}
}

// TestLongJobsAreShared: a worker does not take long jobs ahead of those it
// runs, so two workers share them.
func TestLongJobsAreShared(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	addN(t, c, "share", 40, func(int) queue.JobSpec { return queue.JobSpec{} })
	var a, b atomic.Int32
	handler := func(n *atomic.Int32) queue.Handler {
		return func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
			n.Add(1)
			time.Sleep(50 * time.Millisecond)
			return nil, nil
		}
	}
	working(t, c, "share", queue.WorkConfig{Concurrency: 4, Handler: handler(&a)})
	working(t, c, "share", queue.WorkConfig{Concurrency: 4, Handler: handler(&b)})
	kintest.WaitFor(t, 20*time.Second, "all jobs", func() bool { return a.Load()+b.Load() == 40 })
	if a.Load() < 10 || b.Load() < 10 {
		t.Errorf("shares %d and %d", a.Load(), b.Load())
	}
}

// TestStatsCountEveryState: with a job in each state, Stats counts each
// (completed and failed from the records' Kin-Event headers).
func TestStatsCountEveryState(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	gate := make(chan struct{})
	started := make(chan string, 1)
	// One job at a time, none taken ahead: the others stay waiting.
	working(t, c, "st", queue.WorkConfig{Prefetch: -1, Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		switch string(j.Data) {
		case `"fail"`:
			return nil, errors.New("no")
		case `"block"`:
			started <- j.ID
			select {
			case <-gate:
			case <-ctx.Done():
			}
		}
		return data("ok"), nil
	}})
	ok, _ := c.Add(ctx, "st", queue.JobSpec{Data: data("ok")})
	if _, err := c.Wait(ctx, "st", ok); err != nil {
		t.Fatal(err)
	}
	failing, _ := c.Add(ctx, "st", queue.JobSpec{Data: data("fail"), Attempts: 2, Backoff: queue.Backoff{Delay: time.Millisecond}})
	if _, err := c.Wait(ctx, "st", failing); err == nil {
		t.Fatal("the failing job completed")
	}
	c.Add(ctx, "st", queue.JobSpec{Data: data("block")})
	<-started
	addN(t, c, "st", 2, func(int) queue.JobSpec { return queue.JobSpec{Data: data("ok")} })
	c.Add(ctx, "st", queue.JobSpec{Delay: time.Hour})
	want := queue.Stats{Waiting: 2, Active: 1, Delayed: 1, Dead: 1, Completed: 1, Failed: 1}
	counts := func(what string) {
		t.Helper()
		var st queue.Stats
		var err error
		if !kintest.Poll(10*time.Second, func() bool {
			st, err = c.Stats(ctx, "st")
			return err == nil && st == want
		}) {
			t.Fatalf("%s: %+v %v, want %+v", what, st, err, want)
		}
	}
	counts("a job in each state")
	close(gate)
	want = queue.Stats{Delayed: 1, Dead: 1, Completed: 4, Failed: 1}
	counts("once the jobs ran")
}

// TestMaxRecords: the bucket keeps at most MaxRecords records, dropping
// the oldest (a KV bucket would refuse new ones), and stays a KV bucket.
func TestMaxRecords(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	for range 2 { // a second Declare updates the bucket as it is
		if err := c.Declare(ctx, "maxrec", queue.QueueConfig{MaxRecords: 5}); err != nil {
			t.Fatal(err)
		}
	}
	working(t, c, "maxrec", queue.WorkConfig{Handler: noop})
	ids := addN(t, c, "maxrec", 10, func(int) queue.JobSpec { return queue.JobSpec{} })
	for _, id := range ids {
		if _, err := c.Wait(ctx, "maxrec", id); err != nil && !errors.Is(err, queue.ErrNotFound) {
			t.Fatal(err)
		}
	}
	js, _ := jetstream.New(c.Conn())
	kv, err := js.KeyValue(ctx, "KIN_QR_maxrec")
	if err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 5*time.Second, "the last job's record", func() bool {
		j, err := c.Get(ctx, "maxrec", ids[9])
		return err == nil && j.State == queue.Completed
	})
	if st, err := kv.Status(ctx); err != nil || st.Values() != 5 {
		t.Errorf("%d records kept, want 5 (%v)", st.Values(), err)
	}
	if _, err := c.Get(ctx, "maxrec", ids[0]); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("the first job's record: %v", err)
	}
	// Without MaxRecords, the bucket is as the KV API makes it.
	if err := c.Declare(ctx, "maxrec", queue.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, "KV_KIN_QR_maxrec")
	if cfg := s.CachedInfo().Config; cfg.MaxMsgs != -1 || cfg.Discard != jetstream.DiscardNew || cfg.MaxMsgsPerSubject != 64 {
		t.Errorf("bucket stream %+v", cfg)
	}
}
