package clients_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
)

// docExamples returns the code blocks of docs/protocol.md marked
// "<!-- example: NAME (tested) -->", by name.
func docExamples(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(kintest.RepoRoot(t), "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- example: ([a-z-]+) \\(tested\\) -->\n```[a-z]*\n(.*?)```\n")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	return out
}

// TestDocExamples runs the workers printed in docs/protocol.md §9, so that
// the document cannot drift from the code: each adds up data.numbers,
// reports progress, fails a task without numbers, and exits 0 on shutdown.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	examples := docExamples(t)
	root := kintest.RepoRoot(t)
	want := []string{"node-plain", "node-helper", "python-helper", "go"}
	if len(examples) != len(want) {
		t.Fatalf("docs/protocol.md has tested examples %v, want %v", keys(examples), want)
	}
	for _, name := range want {
		src, ok := examples[name]
		if !ok {
			t.Fatalf("docs/protocol.md has no tested example %q", name)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			dir := t.TempDir()
			var path string
			var args []string
			var env []string
			switch name {
			case "node-plain", "node-helper":
				path, args = kintest.Node(t), []string{writeFile(t, dir, "add.js", src)}
				// require('kin-worker') finds the helper as an installed package.
				if err := os.Mkdir(filepath.Join(dir, "node_modules"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(root, "clients", "node"), filepath.Join(dir, "node_modules", "kin-worker")); err != nil {
					t.Fatal(err)
				}
			case "python-helper":
				path, args = kintest.Python(t), []string{writeFile(t, dir, "add.py", src)}
				env = []string{"PYTHONPATH=" + filepath.Join(root, "clients", "python")}
			case "go":
				path = buildGo(t, ctx, root, writeFile(t, dir, "main.go", src), filepath.Join(dir, "add"))
			}
			c := startCmd(t, ctx, path, args, env, &ipc.Config{}, true)

			var mu sync.Mutex
			var progress []string
			r, err := c.Channel.Request(ctx, ipc.Message{Data: []byte(`{"numbers":[1,2,3.5]}`)}, func(m ipc.Message) {
				mu.Lock()
				progress = append(progress, string(m.Data))
				mu.Unlock()
			})
			if err != nil || string(r.Data) != "6.5" {
				t.Fatalf("sum: %q %v (stderr: %s)", r.Data, err, c.RecentStderr())
			}
			mu.Lock()
			if len(progress) != 1 || progress[0] != `"adding"` {
				t.Errorf("progress %q, want one \"adding\"", progress)
			}
			mu.Unlock()
			_, err = c.Channel.Request(ctx, ipc.Message{Data: []byte(`{}`)}, nil)
			var re *ipc.RemoteError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("task without numbers: %v, want a task error", err)
			}
			if err := c.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown}); err != nil {
				t.Fatal(err)
			}
			if m, err := c.Channel.Recv(ctx); err != io.EOF {
				t.Fatalf("after shutdown: %v %q %v, want EOF", m.Kind, m.Data, err)
			}
			waitExit(t, ctx, c)
		})
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// buildGo builds the Go program src (a file outside the module) against this
// module and returns the binary's path.
func buildGo(t *testing.T, ctx context.Context, root, src, out string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("go is required under CI: %v", err)
		}
		t.Skipf("go not installed: %v", err)
	}
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, src)
	cmd.Dir = root // the module the example imports
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the Go example: %v\n%s", err, b)
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
