package pool_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/proc"
	"github.com/kinproc/kin/worker"
)

func TestMain(m *testing.M) {
	worker.Register("echo", func(ctx context.Context, t *worker.Task) ([]byte, error) { return t.Data, nil })
	worker.Register("pid", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		return []byte(strconv.Itoa(os.Getpid())), nil
	})
	worker.Register("sleep", worker.JSON(func(ctx context.Context, ms int) (int, error) {
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return os.Getpid(), nil
	}))
	worker.Register("crash", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		if string(t.Data) == `"gate"` {
			t.Progress([]byte(`"gate"`))
			time.Sleep(5 * time.Millisecond)
			return t.Data, nil
		}
		if string(t.Data) == `"crash"` {
			t.Progress([]byte(strconv.Itoa(os.Getpid())))
			time.Sleep(100 * time.Millisecond)
			fmt.Fprintln(os.Stderr, "crashing on purpose")
			os.Exit(3)
		}
		return t.Data, nil
	})
	worker.Register("hang-with-grandchild", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		gc := exec.Command("/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
		gc.Start()
		t.Progress([]byte(fmt.Sprintf(`{"worker":%d,"grandchild":%d}`, os.Getpid(), gc.Process.Pid)))
		select {} // hang
	})
	worker.Register("fail", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		if string(t.Data) == `"panic"` {
			panic("deliberate panic")
		}
		return nil, errors.New("it failed: " + string(t.Data))
	})
	worker.Register("progress", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		for i := 1; i <= 3; i++ {
			t.Progress([]byte(strconv.Itoa(i)))
		}
		return []byte(`"done"`), nil
	})
	worker.Register("big-result", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		return []byte(`"` + strings.Repeat("x", 4096) + `"`), nil
	})
	var hog [][]byte
	worker.Register("alloc", worker.JSON(func(ctx context.Context, mb int) (int, error) {
		b := make([]byte, mb<<20)
		// One write per page makes it resident; a write per byte took tens
		// of seconds under -race on a loaded machine.
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		hog = append(hog, b)
		return os.Getpid(), nil
	}))
	worker.Register("alloc-hold", worker.JSON(func(ctx context.Context, in struct{ MB, HoldMS int }) (int, error) {
		b := make([]byte, in.MB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		time.Sleep(time.Duration(in.HoldMS) * time.Millisecond)
		return len(b) >> 20, nil
	}))
	kintest.Register("garbage", func(args []string) {
		// Answers the first task with bytes that are not JSON.
		fd, _ := strconv.Atoi(os.Getenv("KIN_CHANNEL_FD"))
		f := os.NewFile(uintptr(fd), "ch")
		r := bufio.NewReader(f)
		r.ReadString('\n')
		f.Write([]byte("this is not json\n"))
		time.Sleep(time.Hour)
	})
	kintest.Register("pool-parent", func(args []string) {
		// A parent with a pool, to be SIGKILLed by the test.
		p, err := pool.New(pool.Config{Func: "pid", Workers: 2})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		p.Ready(context.Background())
		for _, w := range p.Stats().PerWorker {
			fmt.Println(w.PID)
		}
		time.Sleep(time.Hour)
	})
	worker.Main()
	kintest.Main(m)
}

func newPool(t *testing.T, cfg pool.Config) *pool.Pool {
	t.Helper()
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	p, err := pool.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFuncWorkers(t *testing.T) {
	t.Parallel()
	for _, codec := range []ipc.Codec{ipc.Frame, ipc.JSON} {
		for _, pipeline := range []int{1, 8} {
			t.Run(fmt.Sprintf("%s/pipeline=%d", codec, pipeline), func(t *testing.T) {
				t.Parallel()
				ctx := ctxT(t)
				p := newPool(t, pool.Config{Func: "echo", Codec: codec, Pipeline: pipeline})
				var wg sync.WaitGroup
				for i := 0; i < 2000; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						in := []byte(fmt.Sprintf(`{"i":%d}`, i))
						out, err := p.Submit(ctx, in)
						if err != nil || string(out) != string(in) {
							t.Errorf("task %d: %q %v", i, out, err)
						}
					}(i)
				}
				wg.Wait()
				st := p.Stats()
				if st.Completed != 2000 || st.Failed != 0 || st.Restarts != 0 || st.LatencyP50 <= 0 {
					t.Fatalf("stats %+v", st)
				}
			})
		}
	}
}

func TestNodeWorkerUnmodified(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	node := kintest.Node(t)
	script := filepath.Join(t.TempDir(), "worker.js")
	// Speaks the task protocol with nothing but process.on/process.send,
	// and never announces readiness.
	os.WriteFile(script, []byte(`
process.on('message', (m) => {
  if (m.kin !== 'task') return;
  if (m.data === 'throw') process.send({kin: 'error', id: m.id, error: {message: 'nope', stack: 'Error: nope'}});
  else process.send({kin: 'result', id: m.id, data: {double: m.data * 2, pid: process.pid}});
});`), 0o644)
	p := newPool(t, pool.Config{Command: []string{node, script}})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out, err := p.Submit(ctx, []byte(strconv.Itoa(i)))
			var r struct{ Double, PID int }
			if err != nil || json.Unmarshal(out, &r) != nil || r.Double != 2*i {
				t.Errorf("task %d: %s %v", i, out, err)
			}
		}(i)
	}
	wg.Wait()
	_, err := p.Submit(ctx, []byte(`"throw"`))
	var re *ipc.RemoteError
	if !errors.As(err, &re) || re.Message != "nope" || re.Stack != "Error: nope" {
		t.Fatalf("error task: %v", err)
	}
}

func TestTaskErrors(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "fail", Workers: 1})
	_, err := p.Submit(ctx, []byte(`"x"`))
	var re *ipc.RemoteError
	if !errors.As(err, &re) || re.Message != `it failed: "x"` {
		t.Fatalf("handler error: %v", err)
	}
	_, err = p.Submit(ctx, []byte(`"panic"`))
	if !errors.As(err, &re) || re.Message != "panic: deliberate panic" || !strings.Contains(re.Stack, "pool_test.go") {
		t.Fatalf("panic: %v (stack %q)", err, re.Stack)
	}
	if st := p.Stats(); st.Restarts != 0 || st.Failed != 2 {
		t.Fatalf("a failing handler must not cost a worker: %+v", st)
	}
	jp := newPool(t, pool.Config{Func: "echo", Codec: ipc.JSON, Workers: 1})
	if _, err := jp.Submit(ctx, []byte(`not json`)); !errors.Is(err, ipc.ErrBadMessage) {
		t.Fatalf("invalid JSON task: %v", err)
	}
	if out, err := jp.Submit(ctx, []byte(`1`)); err != nil || string(out) != "1" {
		t.Fatalf("after a bad task: %q %v", out, err)
	}
}

func TestProgress(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "progress", Workers: 1})
	var got []string
	out, err := p.Do(ctx, pool.Task{Data: []byte(`1`), Progress: func(d []byte) { got = append(got, string(d)) }})
	if err != nil || string(out) != `"done"` || strings.Join(got, ",") != "1,2,3" {
		t.Fatalf("%q %v progress %v", out, err, got)
	}
}

func TestCrashFailsOnlyThatTask(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "crash", Workers: 2})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if out, err := p.Submit(ctx, []byte(strconv.Itoa(i))); err != nil || string(out) != strconv.Itoa(i) {
				t.Errorf("task %d beside the crash: %q %v", i, out, err)
			}
		}(i)
	}
	var crashedPID string
	_, err := p.Do(ctx, pool.Task{Data: []byte(`"crash"`), Progress: func(d []byte) { crashedPID = string(d) }})
	wg.Wait()
	var we *pool.WorkerError
	var ee *proc.ExitError
	if !errors.As(err, &we) || !errors.As(err, &ee) {
		t.Fatalf("crash: %v, want *WorkerError wrapping *proc.ExitError", err)
	}
	if ee.Code != 3 || !strings.Contains(ee.Stderr, "crashing on purpose") || strconv.Itoa(we.PID) != crashedPID {
		t.Fatalf("exit error %+v (pid %s)", ee, crashedPID)
	}
	if !strings.Contains(err.Error(), "exited during the task") || !strings.Contains(err.Error(), "status 3") {
		t.Fatalf("message: %v", err)
	}
	// The pool goes on with a replacement.
	if out, err := p.Submit(ctx, []byte(`"after"`)); err != nil || string(out) != `"after"` {
		t.Fatalf("after the crash: %q %v", out, err)
	}
	kintest.WaitFor(t, 5*time.Second, "a replacement worker", func() bool { return p.Stats().Restarts == 1 })
}

func TestTimeoutKillsWorkerAndGrandchild(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "hang-with-grandchild", Workers: 1, TaskTimeout: time.Second})
	var pids struct{ Worker, Grandchild int }
	start := time.Now()
	_, err := p.Do(ctx, pool.Task{Data: []byte(`1`), Progress: func(d []byte) { json.Unmarshal(d, &pids) }})
	if !errors.Is(err, pool.ErrTimeout) {
		t.Fatalf("hanging task: %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 10*time.Second {
		t.Fatalf("timed out after %v", d)
	}
	if pids.Worker == 0 || pids.Grandchild == 0 {
		t.Fatalf("no pids reported: %+v", pids)
	}
	kintest.WaitGone(t, 5*time.Second, pids.Worker, pids.Grandchild)
}

func TestContextCancelKillsRunningTask(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Func: "hang-with-grandchild", Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	var pids struct{ Worker, Grandchild int }
	reported := make(chan struct{})
	go func() {
		<-reported
		cancel()
	}()
	var once sync.Once
	_, err := p.Do(ctx, pool.Task{Data: []byte(`1`), Progress: func(d []byte) {
		json.Unmarshal(d, &pids)
		once.Do(func() { close(reported) })
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled task: %v", err)
	}
	kintest.WaitGone(t, 5*time.Second, pids.Worker, pids.Grandchild)
}

func TestGarbageWorkerIsReplaced(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	path, _, env := kintest.Command("garbage")
	var exits sync.Map
	p := newPool(t, pool.Config{Command: []string{path}, Env: env, Workers: 1,
		OnWorkerExit: func(pid int, err error) { exits.Store(pid, err) }})
	_, err := p.Submit(ctx, []byte(`1`))
	var we *pool.WorkerError
	if !errors.As(err, &we) || !errors.Is(err, ipc.ErrMalformed) || !strings.Contains(err.Error(), "broke the channel protocol") ||
		!strings.Contains(err.Error(), "this is not json") {
		t.Fatalf("garbage: %v", err)
	}
	kintest.WaitGone(t, 5*time.Second, we.PID)
	kintest.WaitFor(t, 5*time.Second, "a replacement", func() bool { return p.Stats().Restarts >= 1 })
	if _, ok := exits.Load(we.PID); !ok {
		t.Fatal("OnWorkerExit not called for the garbage worker")
	}
}

func TestOversizedResult(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "big-result", Workers: 1, MaxMessageSize: 1024})
	_, err := p.Submit(ctx, []byte(`1`))
	var tl *ipc.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "broke the channel protocol") {
		t.Fatalf("oversized result: %v", err)
	}
}

func TestPipelineCrashRunsQueuedTasksElsewhere(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	// Always pipeline, whatever the tasks' durations on a loaded machine.
	p := newPool(t, pool.Config{Func: "crash", Workers: 1, Pipeline: 4, PipelineCutoff: -1})
	// While the gate task runs, queue a task that kills the worker and
	// three more: when the gate answers, all four go to the worker at once.
	var wg sync.WaitGroup
	var crashErr error
	submit := func(data string, check func([]byte, error)) {
		wg.Add(1)
		if err := p.SubmitFunc(ctx, pool.Task{Data: []byte(data)}, func(out []byte, err error) {
			check(out, err)
			wg.Done()
		}); err != nil {
			t.Error(err)
			wg.Done()
		}
	}
	var once sync.Once
	gate := pool.Task{Data: []byte(`"gate"`), Progress: func([]byte) {
		once.Do(func() {
			submit(`"crash"`, func(_ []byte, err error) { crashErr = err })
			for i := 1; i <= 3; i++ {
				want := strconv.Itoa(i)
				submit(want, func(out []byte, err error) {
					if err != nil || string(out) != want {
						t.Errorf("task %s sent behind the crash: %q %v", want, out, err)
					}
				})
			}
		})
	}}
	if _, err := p.Do(ctx, gate); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.As(crashErr, new(*pool.WorkerError)) {
		t.Fatalf("crashing task: %v", crashErr)
	}
	if st := p.Stats(); st.Requeued != 3 || st.Restarts != 1 {
		t.Fatalf("want the 3 tasks sent ahead re-run on the replacement: %+v", st)
	}
}

func TestLongTasksAreNotPipelined(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	// Two workers, long tasks: each worker gets one at a time, so four
	// tasks run two on each (a pipelined pool could queue three behind one
	// worker while the other idles).
	p := newPool(t, pool.Config{Func: "sleep", Workers: 2, Pipeline: 8})
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	perWorker := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p.Submit(ctx, []byte(`100`))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			perWorker[string(out)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(perWorker) != 2 {
		t.Fatalf("tasks per worker %v: want 2 and 2", perWorker)
	}
	for pid, n := range perWorker {
		if n != 2 {
			t.Fatalf("worker %s ran %d of the 4 long tasks: %v", pid, n, perWorker)
		}
	}
}

func TestRecycleAfterMaxTasks(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "pid", Workers: 1, MaxTasks: 3})
	var pids []string
	for i := 0; i < 9; i++ {
		out, err := p.Submit(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, string(out))
	}
	for i := range pids {
		same := pids[i] == pids[i/3*3]
		if !same {
			t.Fatalf("pids %v: want a new worker every 3 tasks", pids)
		}
	}
	if pids[0] == pids[3] || pids[3] == pids[6] {
		t.Fatalf("pids %v: workers not recycled", pids)
	}
	old, _ := strconv.Atoi(pids[0])
	kintest.WaitGone(t, 5*time.Second, old)
}

func TestRecycleAboveMaxRSS(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "alloc", Workers: 1, MaxRSS: 150 << 20, SampleInterval: 20 * time.Millisecond})
	out, err := p.Submit(ctx, []byte(`200`))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := strconv.Atoi(string(out))
	kintest.WaitGone(t, 10*time.Second, first)
	out, err = p.Submit(ctx, []byte(`1`))
	if second, _ := strconv.Atoi(string(out)); err != nil || second == first {
		t.Fatalf("after recycling: %q %v", out, err)
	}
}

// TestTaskMemoryLimit: a task whose worker grows past the task's MaxRSS
// fails with ErrMemory while it runs (not after), its worker killed; the
// next task runs on a new worker, and a task under its limit is untouched.
func TestTaskMemoryLimit(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "alloc-hold", Workers: 1, SampleInterval: 20 * time.Millisecond})
	start := time.Now()
	_, err := p.Do(ctx, pool.Task{Data: []byte(`{"MB":200,"HoldMS":20000}`), MaxRSS: 100 << 20})
	if !errors.Is(err, pool.ErrMemory) || !strings.Contains(err.Error(), "process group were killed") {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("killed after %v", el)
	}
	out, err := p.Do(ctx, pool.Task{Data: []byte(`{"MB":1,"HoldMS":100}`), MaxRSS: 100 << 20})
	if err != nil || string(out) != "1" {
		t.Fatalf("small task: %q %v", out, err)
	}
	if st := p.Stats(); st.Restarts != 1 || st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestShutdownDrains(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "sleep", Workers: 2})
	var pids sync.Map
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p.Submit(ctx, []byte(`20`))
			if err != nil {
				t.Errorf("queued task failed during Shutdown: %v", err)
			}
			pids.Store(string(out), true)
		}()
	}
	kintest.WaitFor(t, 5*time.Second, "tasks queued", func() bool { return p.Stats().Submitted == 20 })
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := p.Submit(ctx, []byte(`1`)); !errors.Is(err, pool.ErrClosed) {
		t.Fatalf("Submit after Shutdown: %v", err)
	}
	pids.Range(func(k, _ any) bool {
		pid, _ := strconv.Atoi(k.(string))
		if kintest.Alive(pid) {
			t.Errorf("worker %d still running after Shutdown", pid)
		}
		return true
	})
}

func TestCloseAborts(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p, err := pool.New(pool.Config{Func: "sleep", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.Ready(ctx)
	var pids []int
	for _, w := range p.Stats().PerWorker {
		pids = append(pids, w.PID)
	}
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		go func() {
			_, err := p.Submit(ctx, []byte(`60000`))
			errs <- err
		}()
	}
	kintest.WaitFor(t, 5*time.Second, "workers busy", func() bool { return p.Stats().Busy == 2 })
	start := time.Now()
	p.Close()
	for i := 0; i < 10; i++ {
		if err := <-errs; !errors.Is(err, pool.ErrClosed) {
			t.Fatalf("task after Close: %v", err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for _, pid := range pids {
		if kintest.Alive(pid) {
			t.Fatalf("worker %d alive after Close", pid)
		}
	}
	p.Close() // idempotent
}

func TestBackpressure(t *testing.T) {
	t.Parallel()
	p := newPool(t, pool.Config{Func: "sleep", Workers: 1, QueueSize: 2})
	bg := ctxT(t)
	for i := 0; i < 3; i++ { // one running, two queued
		go p.Submit(bg, []byte(`500`))
	}
	kintest.WaitFor(t, 5*time.Second, "queue full", func() bool { return p.Stats().Queued == 2 })
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Submit(ctx, []byte(`1`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit to a full queue: %v", err)
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	if _, err := pool.New(pool.Config{Command: []string{"no-such-worker-kin"}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing command: %v", err)
	}
	if _, err := pool.New(pool.Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	// A worker that exits at once: tasks fail with its exit status, and the
	// pool backs off instead of spinning.
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Command: []string{"/bin/sh", "-c", "echo cannot start >&2; exit 7"}, Workers: 1, Stderr: io.Discard})
	_, err := p.Submit(ctx, []byte(`1`))
	var ee *proc.ExitError
	if !errors.As(err, &ee) || ee.Code != 7 || !strings.Contains(ee.Stderr, "cannot start") {
		t.Fatalf("worker exiting at start: %v", err)
	}
	time.Sleep(time.Second) // measure the restart rate over a second
	if r := p.Stats().Restarts; r > 12 {
		t.Fatalf("%d restarts in a second: no backoff", r)
	}
}

func TestStatsAndReady(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	p := newPool(t, pool.Config{Func: "alloc", Workers: 2, SampleInterval: 20 * time.Millisecond})
	if err := p.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range p.Stats().PerWorker {
		if w.PID == 0 || w.State != "idle" {
			t.Fatalf("after Ready: %+v", w)
		}
	}
	p.Submit(ctx, []byte(`20`))
	kintest.WaitFor(t, 5*time.Second, "memory sampled", func() bool {
		for _, w := range p.Stats().PerWorker {
			if w.RSS > 20<<20 && w.Tasks == 1 {
				return true
			}
		}
		return false
	})
}

func TestParentDeathTakesWorkers(t *testing.T) {
	t.Parallel()
	path, args, env := kintest.Command("pool-parent")
	c := exec.Command(path, args...)
	c.Env = env
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	var pids []int
	for i := 0; i < 2; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(line))
		pids = append(pids, pid)
	}
	c.Process.Signal(syscall.SIGKILL)
	c.Wait()
	kintest.WaitGone(t, 5*time.Second, pids...)
}
