package queue_test

import (
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/queue"
)

// completions records the jobs Work reports done, by id.
type completions struct {
	mu   sync.Mutex
	done map[string]int // completed outcomes per id
	recs map[string]*queue.Job
	n    int
}

func newCompletions() *completions {
	return &completions{done: map[string]int{}, recs: map[string]*queue.Job{}}
}

func (c *completions) onDone(j *queue.Job) {
	if j.State != queue.Completed {
		return
	}
	c.mu.Lock()
	c.done[j.ID]++
	c.recs[j.ID] = j
	c.n++
	c.mu.Unlock()
}

func (c *completions) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.done)
}

// addN adds n jobs {"n": i, …extra} with AddBatch and returns their ids.
func addN(t testing.TB, c *queue.Client, q string, n int, spec func(i int) queue.JobSpec) []string {
	t.Helper()
	var ids []string
	for start := 0; start < n; start += 1000 {
		var specs []queue.JobSpec
		for i := start; i < min(n, start+1000); i++ {
			specs = append(specs, spec(i))
		}
		got, err := c.AddBatch(ctxT(t), q, specs)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return ids
}

// TestNodeWorkers10k runs 10 000 jobs through two unmodified-protocol Node
// workers: every job completes exactly once, with its own result.
func TestNodeWorkers10k(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	comp := newCompletions()
	const n = 10000
	ids := addN(t, c, "node", n, func(i int) queue.JobSpec { return queue.JobSpec{Data: data(map[string]int{"n": i})} })
	stop := working(t, c, "node", queue.WorkConfig{Command: nodeWorker(t), Concurrency: 2, OnDone: comp.onDone})
	kintest.WaitFor(t, 60*time.Second, "10 000 jobs to complete", func() bool { return comp.count() == n })
	st := stop()
	if st.Completed != n || st.Duplicates != 0 || st.Failed != 0 || st.Dead != 0 {
		t.Errorf("work stats %+v", st)
	}
	pids := map[string]bool{}
	for i, id := range ids {
		if comp.done[id] != 1 {
			t.Fatalf("job %d completed %d times", i, comp.done[id])
		}
		var res struct {
			N   int
			Pid int
		}
		if err := jsonUnmarshal(comp.recs[id].Result, &res); err != nil || res.N != i {
			t.Fatalf("job %d: result %s", i, comp.recs[id].Result)
		}
		pids[string(rune(res.Pid))] = true
	}
	if len(pids) != 2 {
		t.Errorf("jobs ran on %d worker processes, want 2", len(pids))
	}
	st2, err := c.Stats(ctxT(t), "node")
	if err != nil || st2.Completed != n || st2.Waiting+st2.Active+st2.Delayed+st2.Dead != 0 {
		t.Errorf("stats %+v %v", st2, err)
	}
}

// TestKilledWorkersEveryJobCompletes SIGKILLs Node workers at random while
// jobs run: every job still completes (at least once); the killed attempts
// are recorded as crashes and retried.
func TestKilledWorkersEveryJobCompletes(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	p, err := pool.New(pool.Config{Command: nodeWorker(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	comp := newCompletions()
	var crashes sync.Map
	onDone := func(j *queue.Job) {
		comp.onDone(j)
		if j.State == queue.Failed && j.Error.Cause == queue.CauseCrash {
			crashes.Store(j.ID, j)
		}
	}
	const n = 2000
	ids := addN(t, c, "kill", n, func(i int) queue.JobSpec {
		return queue.JobSpec{Data: data(map[string]any{"op": "sleep", "ms": 1, "n": i}), Attempts: 20, Backoff: queue.Backoff{Delay: time.Millisecond, Fixed: true}}
	})
	stop := working(t, c, "kill", queue.WorkConfig{Pool: p, OnDone: onDone})
	kills := 0
	for comp.count() < n && kills < 30 {
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
		ws := p.Stats().PerWorker
		w := ws[rand.IntN(len(ws))]
		if w.State == "busy" && syscall.Kill(w.PID, syscall.SIGKILL) == nil {
			kills++
		}
	}
	kintest.WaitFor(t, 60*time.Second, "every job to complete", func() bool { return comp.count() == n })
	st := stop()
	dups := 0
	for _, id := range ids {
		if k := comp.done[id]; k != 1 {
			dups += k - 1
		}
	}
	nCrashes := 0
	crashes.Range(func(_, v any) bool {
		j := v.(*queue.Job)
		if !strings.Contains(j.Error.Message, "signal: killed") && !strings.Contains(j.Error.Message, "killed") {
			t.Errorf("crash recorded as %q", j.Error.Message)
		}
		nCrashes++
		return true
	})
	t.Logf("%d kills, %d attempts recorded as crashes, %d jobs completed twice, work stats %+v", kills, nCrashes, dups, st)
	if kills == 0 || nCrashes == 0 {
		t.Errorf("no worker was killed during a job (kills %d, crashes %d)", kills, nCrashes)
	}
	if dups != 0 {
		// Worker crashes are judged by kin, so they are not a cause of
		// duplicates: only lost acknowledgements are.
		t.Errorf("%d duplicate completions", dups)
	}
}

// TestTimeoutKillsThenDeadLetters: a job that never answers is killed at
// its timeout, retried, then dead-lettered, each attempt on a new worker.
func TestTimeoutKillsThenDeadLetters(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	comp := newCompletions()
	var mu sync.Mutex
	var failures []*queue.Job
	working(t, c, "loop", queue.WorkConfig{Command: nodeWorker(t), Concurrency: 1, OnDone: func(j *queue.Job) {
		comp.onDone(j)
		if j.State != queue.Completed {
			mu.Lock()
			failures = append(failures, j)
			mu.Unlock()
		}
	}})
	id, err := c.Add(ctx, "loop", queue.JobSpec{Data: data(map[string]string{"op": "loop"}), Timeout: 300 * time.Millisecond, Attempts: 2, Backoff: queue.Backoff{Delay: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Add(ctx, "loop", queue.JobSpec{Data: data(map[string]int{"n": 7})})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	j, err := c.Wait(ctx, "loop", id)
	var je *queue.JobError
	if !errors.As(err, &je) || je.Cause != queue.CauseTimeout || j.State != queue.Dead || j.Attempt != 2 {
		t.Fatalf("looping job: %+v, %v", j, err)
	}
	if el := time.Since(start); el < 600*time.Millisecond || el > 10*time.Second {
		t.Errorf("two 300 ms attempts took %v", el)
	}
	if !strings.Contains(je.Message, "timed out") {
		t.Errorf("error %q", je.Message)
	}
	kintest.WaitFor(t, 5*time.Second, "two outcomes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(failures) == 2
	})
	if failures[0].State != queue.Failed || failures[1].State != queue.Dead || failures[0].Error.Cause != queue.CauseTimeout {
		t.Errorf("outcomes %+v, %+v", failures[0], failures[1])
	}
	// The queue went on: the other job ran.
	if j, err := c.Wait(ctx, "loop", ok); err != nil || j.State != queue.Completed {
		t.Fatalf("other job: %+v %v", j, err)
	}
}

// TestMemoryLimitKills: a job whose worker grows past the job's memory
// limit is killed during the job, with that cause.
func TestMemoryLimitKills(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	working(t, c, "mem", queue.WorkConfig{Command: nodeWorker(t), Concurrency: 1})
	id, err := c.Add(ctx, "mem", queue.JobSpec{Data: data(map[string]any{"op": "alloc", "mb": 300, "hold": 20000}), MaxMemory: 200 << 20, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	j, err := c.Wait(ctx, "mem", id)
	var je *queue.JobError
	if !errors.As(err, &je) || je.Cause != queue.CauseMemory || j.State != queue.Dead {
		t.Fatalf("job %+v, %v", j, err)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("killed after %v: not during the job", el)
	}
	t.Logf("error: %s", je.Message)
	// Under the limit, the same job completes.
	id, _ = c.Add(ctx, "mem", queue.JobSpec{Data: data(map[string]any{"op": "alloc", "mb": 10, "hold": 10}), MaxMemory: 200 << 20})
	if j, err := c.Wait(ctx, "mem", id); err != nil || j.State != queue.Completed {
		t.Fatalf("small job: %+v %v", j, err)
	}
}

// TestCrashAndProgress: a worker crash is recorded as such and retried; a
// Node worker's progress reports become progress events.
func TestCrashAndProgress(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	working(t, c, "crash", queue.WorkConfig{Command: nodeWorker(t), Concurrency: 2})
	marker := filepath.Join(t.TempDir(), "marker")
	once, _ := c.Add(ctx, "crash", queue.JobSpec{Data: data(map[string]string{"op": "crash-once", "marker": marker}), Backoff: queue.Backoff{Delay: time.Millisecond}})
	always, _ := c.Add(ctx, "crash", queue.JobSpec{Data: data(map[string]string{"op": "crash"}), Attempts: 1})
	fails, _ := c.Add(ctx, "crash", queue.JobSpec{Data: data(map[string]string{"op": "fail", "message": "nope"}), Attempts: 1})
	prog, _ := c.Add(ctx, "crash", queue.JobSpec{Data: data(map[string]string{"op": "progress"})})

	j, err := c.Wait(ctx, "crash", once)
	if err != nil || j.State != queue.Completed || j.Attempt != 2 || string(j.Result) != `"recovered"` {
		t.Fatalf("crash-once: %+v %v", j, err)
	}
	var je *queue.JobError
	j, err = c.Wait(ctx, "crash", always)
	if !errors.As(err, &je) || je.Cause != queue.CauseCrash || !strings.Contains(je.Message, "exited with status 3") {
		t.Fatalf("crash: %+v %v", j, err)
	}
	j, err = c.Wait(ctx, "crash", fails)
	if !errors.As(err, &je) || je.Cause != queue.CauseError || je.Message != "nope" || !strings.Contains(je.Stack, "worker.js") {
		t.Fatalf("fail: %+v %v", j, err)
	}
	j, err = c.Wait(ctx, "crash", prog)
	if err != nil || string(j.Progress) != "2" {
		t.Fatalf("progress: %+v %v", j, err)
	}
	var progress []string
	err = c.Events(ctx, "crash", queue.EventsOptions{StartSeq: 1, ID: prog}, func(ev queue.Event) error {
		if ev.Type == queue.EventProgress {
			progress = append(progress, string(ev.Job.Progress))
		}
		if ev.Type == queue.EventCompleted {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || strings.Join(progress, ",") != "1,2" {
		t.Fatalf("progress events %v, %v", progress, err)
	}
}

var errStop = errors.New("stop")
