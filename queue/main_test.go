package queue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/internal/natstest"
	"github.com/kinproc/kin/pool"
	"github.com/kinproc/kin/queue"
	"github.com/kinproc/kin/worker"
)

func TestMain(m *testing.M) {
	worker.Register("echo", func(ctx context.Context, t *worker.Task) ([]byte, error) { return t.Data, nil })
	kintest.Register("nats-server", serverHelper)
	kintest.Register("queue-worker", queueWorkerHelper)
	kintest.Register("nats-node", nodeHelper)
	worker.Main()
	kintest.Main(m)
}

// startServer starts an embedded server in a fresh directory, shut down
// when the test ends.
func startServer(t testing.TB, cfg queue.ServerConfig) *queue.Server {
	t.Helper()
	return natstest.Server(t, cfg)
}

// connect connects to s in-process, closed when the test ends.
func connect(t testing.TB, s *queue.Server) *queue.Client {
	t.Helper()
	return natstest.Connect(t, s)
}

// setup is a server and a client on it.
func setup(t testing.TB) (*queue.Server, *queue.Client) {
	t.Helper()
	return natstest.Start(t, queue.ServerConfig{})
}

func ctxT(t testing.TB) context.Context {
	return ctxFor(t, 60*time.Second)
}

// ctxFor is a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// nodeWorker returns the command of testdata/worker.js.
func nodeWorker(t testing.TB) []string {
	node := kintest.Node(t)
	wd, _ := os.Getwd()
	return []string{node, filepath.Join(wd, "testdata", "worker.js")}
}

// working runs c.Work in the background until the test ends (or stop is
// called) and returns stop, which returns Work's result.
func working(t testing.TB, c *queue.Client, q string, cfg queue.WorkConfig) (stop func() queue.WorkStats) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	type res struct {
		st  queue.WorkStats
		err error
	}
	done := make(chan res, 1)
	go func() {
		st, err := c.Work(ctx, q, cfg)
		done <- res{st, err}
	}()
	var r *res
	stop = func() queue.WorkStats {
		if r == nil {
			cancel()
			v := <-done
			r = &v
			if r.err != nil {
				t.Errorf("Work: %v", r.err)
			}
		}
		return r.st
	}
	t.Cleanup(func() { stop() })
	return stop
}

func data(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// serverHelper runs an embedded server in a child process, for tests that
// kill it: args are the store directory and the port.
func serverHelper(args []string) {
	port, _ := strconv.Atoi(args[1])
	s, err := queue.StartServer(queue.ServerConfig{Dir: args[0], Port: port})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(s.ClientURL())
	select {}
}

// goPool starts a pool of n Go workers ("echo", this test binary
// re-executed, frame codec), closed when the test ends.
func goPool(t testing.TB, n int) *pool.Pool {
	t.Helper()
	p, err := pool.New(pool.Config{Func: "echo", Workers: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
