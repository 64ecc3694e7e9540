package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
	"github.com/kinproc/kin/worker"
)

func TestMain(m *testing.M) {
	// double doubles numbers, echoes strings, fails on "fail", and reports
	// progress for big numbers.
	worker.Register("double", func(ctx context.Context, t *worker.Task) ([]byte, error) {
		var v any
		json.Unmarshal(t.Data, &v)
		switch x := v.(type) {
		case float64:
			if x >= 1e6 {
				t.Progress([]byte(`"halfway"`))
			}
			return json.Marshal(2 * x)
		case string:
			if x == "fail" {
				return nil, errors.New("cannot double fail")
			}
			return json.Marshal(x + x)
		}
		return nil, fmt.Errorf("unexpected %s", t.Data)
	})
	worker.Register("sum", worker.JSON(func(ctx context.Context, in []int) (int, error) {
		s := 0
		for _, v := range in {
			s += v
		}
		return s, nil
	}))
	worker.Main()
	kintest.Main(m)
}

func TestNodeParentForksGoWorker(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"fork", "spawn"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "parent.js"), exe, mode)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("node parent: %v", err)
			}
			var r struct {
				Ready    bool
				Results  map[string]any
				Progress []string
				Errors   map[string]string
				Code     *int
				Signal   *string
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("report %q: %v", out, err)
			}
			want := map[string]any{"1": 2.0, "2": 42.0, "3": "é\n😀é\n😀", "5": 2e6}
			if !r.Ready || fmt.Sprint(r.Results) != fmt.Sprint(want) {
				t.Fatalf("ready %v results %v", r.Ready, r.Results)
			}
			if r.Errors["4"] != "cannot double fail" || strings.Join(r.Progress, ",") != "halfway" {
				t.Fatalf("errors %v progress %v", r.Errors, r.Progress)
			}
			if r.Code == nil || *r.Code != 0 {
				t.Fatalf("worker exit after shutdown: code %v signal %v", r.Code, r.Signal)
			}
		})
	}
}

func TestGoParentBothCodecs(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	for _, codec := range []ipc.Codec{ipc.JSON, ipc.Frame} {
		t.Run(string(codec), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := proc.Command(exe)
			c.Env = append(os.Environ(), worker.EnvWorker+"=sum")
			c.IPC = &ipc.Config{Codec: codec}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			m, err := c.Channel.Recv(ctx)
			if err != nil || !m.IsReady() {
				t.Fatalf("first message %v %q %v, want ready", m.Kind, m.Data, err)
			}
			r, err := c.Channel.Request(ctx, ipc.Message{Data: []byte(`[1,2,3]`)}, nil)
			if err != nil || string(r.Data) != "6" {
				t.Fatalf("sum: %q %v", r.Data, err)
			}
			_, err = c.Channel.Request(ctx, ipc.Message{Data: []byte(`{"not":"a list"}`)}, nil)
			var re *ipc.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Message, "task data") {
				t.Fatalf("bad input: %v", err)
			}
			c.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown})
			if err := c.Wait(); err != nil {
				t.Fatalf("exit after shutdown: %v", err)
			}
			c.Channel.Close()
		})
	}
}

func TestParentGoneEndsWorker(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	c := proc.Command(exe)
	c.Env = append(os.Environ(), worker.EnvWorker+"=sum")
	c.IPC = &ipc.Config{}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.Channel.Close() // as if the parent died: the worker sees EOF
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		c.Kill()
		t.Fatal("worker did not exit when its channel closed")
	}
}

func TestMainErrors(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	out, err := exec.Command("env", worker.EnvWorker+"=nope", exe).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `no worker registered as "nope"`) {
		t.Fatalf("unknown worker: %v %s", err, out)
	}
	out, err = exec.Command("env", "-u", "KIN_CHANNEL_FD", "-u", "NODE_CHANNEL_FD", worker.EnvWorker+"=sum", exe).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "no channel") {
		t.Fatalf("no channel: %v %s", err, out)
	}
}
