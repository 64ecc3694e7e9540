package queue_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

// child is a helper process of this test binary.
type child struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	done chan struct{}
}

// startChild runs helper name and returns once it printed its first line.
func startChild(t *testing.T, name string, args ...string) (*child, string) {
	t.Helper()
	path, argv, env := kintest.Command(name, args...)
	cmd := exec.Command(path, argv...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, out: bufio.NewReader(out), done: make(chan struct{})}
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.kill()
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		io.Copy(io.Discard, c.out)
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(c.kill)
	return c, strings.TrimSpace(line)
}

// kill SIGKILLs the child and waits for it.
func (c *child) kill() {
	c.cmd.Process.Kill()
	<-c.done
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func connectURL(t *testing.T, url, dir string) *queue.Client {
	t.Helper()
	cred, err := queue.ReadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := queue.Connect(ctxT(t), queue.ConnectConfig{URLs: []string{url}, User: cred.User, Password: cred.Password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServerKilledAndRestarted runs jobs through Node workers while the
// server (in a child process, as the daemon would be) is SIGKILLed and
// started again on the same store: every job whose Add succeeded completes,
// the others are added again by the producer, and duplicates are counted.
func TestServerKilledAndRestarted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	port := strconv.Itoa(freePort(t))
	srv, url := startChild(t, "nats-server", dir, port)
	producer := connectURL(t, url, dir)
	consumer := connectURL(t, url, dir)
	ctx := ctxFor(t, 4*time.Minute) // slow under -race on a busy machine

	var mu sync.Mutex
	completed := map[string]int{}
	stop := working(t, consumer, "crashy", queue.WorkConfig{Command: nodeWorker(t), Concurrency: 2, OnDone: func(j *queue.Job) {
		if j.State == queue.Completed {
			mu.Lock()
			completed[j.ID]++
			mu.Unlock()
		}
	}})
	done := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(completed)
	}

	const n = 3000
	var acked []string
	var addFailures atomic.Int32
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Not WaitFor: its Fatal would end this goroutine only, and the
		// server would never be restarted.
		if !kintest.Poll(2*time.Minute, func() bool { return done() > n/3 }) {
			t.Errorf("a third of the jobs not done within 2 minutes (%d done)", done())
		}
		srv.kill()
		time.Sleep(300 * time.Millisecond)
		srv, _ = startChild(t, "nats-server", dir, port)
	}()
	for i := range n {
		id := fmt.Sprintf("job-%d", i)
		for {
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := producer.Add(actx, "crashy", queue.JobSpec{ID: id, Data: data(map[string]any{"op": "sleep", "ms": 1, "n": i})})
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("add %s: %v", id, err)
			}
			addFailures.Add(1)
			time.Sleep(50 * time.Millisecond)
		}
		acked = append(acked, id)
	}
	<-killed
	kintest.WaitFor(t, 60*time.Second, "every job to complete", func() bool { return done() == n })
	st := stop()
	dups := 0
	mu.Lock()
	for _, k := range completed {
		dups += k - 1
	}
	mu.Unlock()
	for _, id := range acked {
		j, err := producer.Get(ctx, "crashy", id)
		if err != nil || j.State != queue.Completed {
			t.Fatalf("job %s: %+v %v", id, j, err)
		}
	}
	t.Logf("%d adds failed during the outage (and were repeated); %d jobs completed twice; work stats %+v", addFailures.Load(), dups, st)
	if addFailures.Load() == 0 {
		t.Error("the server was killed, yet no add failed")
	}
}

// TestLostWorkerRunsAgain: a program running Work is SIGKILLed during a
// job; once the job's deadline passes, another worker runs it, as the next
// attempt, recorded as lost.
func TestLostWorkerRunsAgain(t *testing.T) {
	t.Parallel()
	srv := startServer(t, queue.ServerConfig{})
	c := connect(t, srv)
	ctx := ctxT(t)
	if err := c.Declare(ctx, "lost", queue.QueueConfig{AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	id, err := c.Add(ctx, "lost", queue.JobSpec{Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	cred := srv.Credentials()
	w, line := startChild(t, "queue-worker", srv.ClientURL(), cred.User, cred.Password, "lost")
	if line != "started "+id {
		t.Fatalf("worker said %q", line)
	}
	kintest.WaitFor(t, 5*time.Second, "the job's record to say active", func() bool {
		j, err := c.Get(ctx, "lost", id)
		return err == nil && j.State == queue.Active && j.Attempt == 1
	})
	w.kill()
	var rec atomic.Pointer[queue.Job]
	working(t, c, "lost", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		rec.Store(j)
		return data("second"), nil
	}})
	j, err := c.Wait(ctx, "lost", id)
	if err != nil || j.Attempt != 2 || string(j.Result) != `"second"` {
		t.Fatalf("job %+v %v", j, err)
	}
	if r := rec.Load(); r.Error == nil || r.Error.Cause != queue.CauseLost {
		t.Errorf("the second attempt's record does not say the first was lost: %+v", r)
	}
}

// queueWorkerHelper runs Work in a child process: args are the URL, user,
// password and queue. Its handler prints "started ID" and never returns.
func queueWorkerHelper(args []string) {
	ctx := context.Background()
	c, err := queue.Connect(ctx, queue.ConnectConfig{URLs: []string{args[0]}, User: args[1], Password: args[2]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c.Work(ctx, args[3], queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		fmt.Println("started", j.ID)
		select {}
	}})
}
