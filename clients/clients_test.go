package clients_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

func TestMain(m *testing.M) { kintest.Main(m) }

// A worker under test: how to start it and what it does beyond the protocol.
type workerKind struct {
	name string
	cmd  func(t *testing.T) (string, []string)
	// ready is set when the worker announces itself with {"kin":"ready"}.
	ready bool
	// errPrefix is what the worker's error message puts before the thrown text.
	errPrefix string
}

var workers = []workerKind{
	{
		name:  "node-helper",
		cmd:   func(t *testing.T) (string, []string) { return kintest.Node(t), []string{"testdata/helper-worker.js"} },
		ready: true,
	},
	{
		// An unmodified Node worker: process.on('message') and process.send only.
		name: "node-plain",
		cmd:  func(t *testing.T) (string, []string) { return kintest.Node(t), []string{"testdata/plain-worker.js"} },
	},
	{
		name:      "python-helper",
		cmd:       func(t *testing.T) (string, []string) { return kintest.Python(t), []string{"testdata/py_worker.py"} },
		ready:     true,
		errPrefix: "ValueError: ",
	},
}

// forEachWorker runs test as a parallel subtest for every kind of worker.
func forEachWorker(t *testing.T, test func(t *testing.T, w workerKind)) {
	t.Parallel()
	for _, w := range workers {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			test(t, w)
		})
	}
}

// testCtx returns a context that ends well before the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start starts the worker with a JSON channel and, for workers that send
// one, waits for its ready message. The process is killed and waited for
// when the test ends.
func start(t *testing.T, ctx context.Context, w workerKind) *proc.Cmd {
	t.Helper()
	path, args := w.cmd(t)
	return startCmd(t, ctx, path, args, nil, &ipc.Config{}, w.ready)
}

// startCmd starts path with args, env added to this process's environment,
// and a channel configured by cfg; see start.
func startCmd(t *testing.T, ctx context.Context, path string, args, env []string, cfg *ipc.Config, ready bool) *proc.Cmd {
	t.Helper()
	c := proc.Command(path, args...)
	c.IPC = cfg
	if env != nil {
		c.Env = append(os.Environ(), env...)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Channel.Close()
		c.Kill()
	})
	if ready {
		m, err := c.Channel.Recv(ctx)
		if err != nil {
			t.Fatalf("waiting for ready: %v (stderr: %s)", err, c.RecentStderr())
		}
		if !m.IsReady() {
			t.Fatalf("first message is %v %s, want ready", m.Kind, m.Data)
		}
	}
	return c
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request runs one task and decodes its result into out.
func request(t *testing.T, ctx context.Context, c *proc.Cmd, task any, out any) {
	t.Helper()
	r, err := c.Channel.Request(ctx, ipc.Message{Data: mustJSON(t, task)}, nil)
	if err != nil {
		t.Fatalf("task %s: %v (stderr: %s)", mustJSON(t, task), err, c.RecentStderr())
	}
	if r.Kind != ipc.Result {
		t.Fatalf("task %s: reply is %v, want result", mustJSON(t, task), r.Kind)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("task %s: result %.80q: %v", mustJSON(t, task), r.Data, err)
		}
	}
}

// waitExit waits for the worker to exit on its own and checks it exited 0.
func waitExit(t *testing.T, ctx context.Context, c *proc.Cmd) {
	t.Helper()
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatalf("worker still running: %v", ctx.Err())
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
}

func TestResults(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		values := []any{
			map[string]any{"a": 1.0, "b": []any{"x", true, nil}},
			42.5, "str", true, []any{},
			"é ☃ 😀 \u2028 \u0000 \"quoted\" \\ \t",
			"line1\nline2\r\nline3\n",
			map[string]any{"nested": map[string]any{"s": "a\nb", "ü": "ß"}},
		}
		for _, v := range values {
			var got any
			request(t, ctx, c, map[string]any{"op": "echo", "v": v}, &got)
			if !reflect.DeepEqual(got, v) {
				t.Errorf("echo of %#v: got %#v", v, got)
			}
		}
	})
}

func TestLargePayload(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		// 1 MiB of text with multi-byte characters and escaped newlines.
		big := strings.Repeat("abcdefghijklmnopqrstuvwxyzé😀\n", (1<<20)/31+1)
		var got string
		request(t, ctx, c, map[string]any{"op": "echo", "v": big}, &got)
		if got != big {
			t.Fatalf("1 MiB echo: got %d bytes, want %d", len(got), len(big))
		}
	})
}

func TestErrors(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		msg := "boom: ü\nsecond line"
		_, err := c.Channel.Request(ctx, ipc.Message{Data: mustJSON(t, map[string]any{"op": "fail", "msg": msg})}, nil)
		var re *ipc.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("error reply: got %v (%T), want *ipc.RemoteError", err, err)
		}
		if re.Message != w.errPrefix+msg {
			t.Errorf("error message %q, want %q", re.Message, w.errPrefix+msg)
		}
		if !strings.Contains(re.Stack, "boom") || !strings.Contains(re.Stack, "\n") {
			t.Errorf("error stack %q: want a multi-line stack mentioning the error", re.Stack)
		}
		// The worker goes on after an error.
		var got string
		request(t, ctx, c, map[string]any{"op": "echo", "v": "after"}, &got)
		if got != "after" {
			t.Fatalf("echo after error: %q", got)
		}
	})
}

// TestHelperErrors covers what only the helpers turn into errors: throws of
// non-Errors and results JSON cannot encode.
func TestHelperErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		worker workerKind
		task   map[string]any
		want   string // in the error message
	}{
		{"throw-string", workers[0], map[string]any{"op": "throw", "v": "a plain string"}, "a plain string"},
		{"throw-object", workers[0], map[string]any{"op": "throw", "v": map[string]any{"code": 7}}, "code: 7"},
		{"bigint-result", workers[0], map[string]any{"op": "bad-result"}, "BigInt"},
		{"nan-result", workers[2], map[string]any{"op": "bad-result"}, "not JSON-serialisable"},
	}
	for _, tc := range cases {
		t.Run(tc.worker.name+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := start(t, ctx, tc.worker)
			_, err := c.Channel.Request(ctx, ipc.Message{Data: mustJSON(t, tc.task)}, nil)
			var re *ipc.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Message, tc.want) {
				t.Fatalf("got %v, want a task error containing %q", err, tc.want)
			}
			var got string
			request(t, ctx, c, map[string]any{"op": "echo", "v": "alive"}, &got)
		})
	}
}

func TestProgress(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		var mu sync.Mutex
		var seen []string
		r, err := c.Channel.Request(ctx, ipc.Message{Data: []byte(`{"op":"progress","n":5}`)}, func(m ipc.Message) {
			mu.Lock()
			seen = append(seen, string(m.Data))
			mu.Unlock()
		})
		if err != nil || string(r.Data) != `"done"` {
			t.Fatalf("progress task: %q %v", r.Data, err)
		}
		mu.Lock()
		defer mu.Unlock()
		// Progress messages come before the result, on the same reader, so
		// they have all been seen by now.
		if want := []string{"0", "1", "2", "3", "4"}; !reflect.DeepEqual(seen, want) {
			t.Fatalf("progress %q, want %q", seen, want)
		}
	})
}

// TestInOrder sends many tasks ahead (pipelining) to a handler that waits a
// random time: the replies must come in the order sent, with no two tasks
// running at once.
func TestInOrder(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		const n = 50
		for i := 0; i < n; i++ {
			m := ipc.Message{Kind: ipc.Task, ID: uint64(1000 + i), Data: mustJSON(t, map[string]any{"op": "order", "i": i})}
			if err := c.Channel.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < n; i++ {
			m, err := c.Channel.Recv(ctx)
			if err != nil {
				t.Fatalf("reply %d: %v (stderr: %s)", i, err, c.RecentStderr())
			}
			var got struct {
				I, ID   int
				Overlap bool
			}
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatalf("reply %d: %v %q: %v", i, m.Kind, m.Data, err)
			}
			if m.Kind != ipc.Result || m.ID != uint64(1000+i) || got.I != i || got.ID != 1000+i {
				t.Fatalf("reply %d: %v id %d %+v, want the result of task %d", i, m.Kind, m.ID, got, 1000+i)
			}
			if got.Overlap {
				t.Fatalf("task %d ran while another task was running", i)
			}
		}
	})
}

// TestShutdown: tasks sent before the shutdown are answered, a large last
// reply included, then the worker closes the channel and exits 0.
func TestShutdown(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		ctx := testCtx(t)
		c := start(t, ctx, w)
		big := strings.Repeat("x", 2<<20)
		tasks := []any{
			map[string]any{"op": "order", "i": 0},
			map[string]any{"op": "order", "i": 1},
			map[string]any{"op": "echo", "v": big},
		}
		for i, task := range tasks {
			if err := c.Channel.Send(ctx, ipc.Message{Kind: ipc.Task, ID: uint64(i + 1), Data: mustJSON(t, task)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
			t.Fatal(err)
		}
		for i := range tasks {
			m, err := c.Channel.Recv(ctx)
			if err != nil {
				t.Fatalf("reply %d: %v (stderr: %s)", i+1, err, c.RecentStderr())
			}
			if m.Kind != ipc.Result || m.ID != uint64(i+1) {
				t.Fatalf("reply %d: %v id %d", i+1, m.Kind, m.ID)
			}
			if i == 2 && string(m.Data) != `"`+big+`"` {
				t.Fatalf("last reply: %d bytes, want %d", len(m.Data), len(big)+2)
			}
		}
		if m, err := c.Channel.Recv(ctx); err != io.EOF {
			t.Fatalf("after the replies: %v %q %v, want EOF", m.Kind, m.Data, err)
		}
		waitExit(t, ctx, c)
	})
}

// TestParentCloses: closing the channel is the parent's "disconnect"; the
// worker exits, idle or in the middle of a task.
func TestParentCloses(t *testing.T) {
	forEachWorker(t, func(t *testing.T, w workerKind) {
		for _, busy := range []bool{false, true} {
			t.Run(fmt.Sprintf("busy=%v", busy), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t)
				c := start(t, ctx, w)
				var got string
				request(t, ctx, c, map[string]any{"op": "echo", "v": "x"}, &got)
				if busy {
					m := ipc.Message{Kind: ipc.Task, ID: 99, Data: []byte(`{"op":"block"}`)}
					if err := c.Channel.Send(ctx, m); err != nil {
						t.Fatal(err)
					}
					if m, err := c.Channel.Recv(ctx); err != nil || m.Kind != ipc.Progress || string(m.Data) != `"started"` {
						t.Fatalf("waiting for the task to start: %v %q %v", m.Kind, m.Data, err)
					}
				}
				c.Channel.Close()
				waitExit(t, ctx, c)
			})
		}
	})
}

// TestChannelHidden: the helpers remove the channel's variables from the
// environment and make the descriptor close-on-exec, so the worker's own
// children do not inherit the channel.
func TestChannelHidden(t *testing.T) {
	t.Parallel()
	for _, w := range []workerKind{workers[0], workers[2]} {
		t.Run(w.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := start(t, ctx, w)
			var vars []string
			request(t, ctx, c, map[string]any{"op": "env"}, &vars)
			if len(vars) != 0 {
				t.Errorf("channel variables left in the environment: %q", vars)
			}
			if w.name == "python-helper" {
				var cloexec bool
				request(t, ctx, c, map[string]any{"op": "cloexec"}, &cloexec)
				if !cloexec {
					t.Errorf("channel descriptor is not close-on-exec")
				}
			}
		})
	}
}

// TestNoChannel: a helper started without a channel fails with an error that
// says so, and the Python helper refuses the frame codec by name.
func TestNoChannel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cmd  func(t *testing.T) (string, []string)
		ipc  *ipc.Config
		want string
	}{
		{"node", workers[0].cmd, nil, "no IPC channel"},
		{"python", workers[2].cmd, nil, "no channel"},
		{"python-frame", workers[2].cmd, &ipc.Config{Codec: ipc.Frame}, "'frame' codec"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			path, args := tc.cmd(t)
			c := proc.Command(path, args...)
			c.IPC = tc.ipc
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if c.Channel != nil {
					c.Channel.Close()
				}
				c.Kill()
			})
			select {
			case <-c.Done():
			case <-ctx.Done():
				t.Fatal("worker without a usable channel did not exit")
			}
			var ee *proc.ExitError
			if err := c.Wait(); !errors.As(err, &ee) || !strings.Contains(ee.Stderr, tc.want) {
				t.Fatalf("exit: %v, want a failure whose stderr says %q", err, tc.want)
			}
		})
	}
}
