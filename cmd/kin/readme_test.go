package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// readmeBlocks returns the ```sh blocks of README.md, in order.
func readmeBlocks(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && line == "```sh":
			cur = &strings.Builder{}
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks
}

// TestReadme runs the README's shell examples as a user would, from the
// repository root, so that they cannot rot. The first block (build and
// test) is run by .ci/run: only its build line runs here.
func TestReadme(t *testing.T) {
	kintest.Node(t)
	kintest.Python(t)
	root, _ := filepath.Abs("../..")
	blocks := readmeBlocks(t, root)
	if len(blocks) < 5 {
		t.Fatalf("README has %d sh blocks; the test expects the two commands and the examples", len(blocks))
	}
	first := strings.Split(strings.TrimSpace(blocks[0]), "\n")
	if len(first) != 2 || !strings.HasPrefix(first[0], "CGO_ENABLED=0 go build") || first[1] != "go test -race ./..." {
		t.Fatalf("README must open with exactly the build+run and the test commands, got %q", first)
	}
	blocks[0] = first[0] + "\n"
	// The process-manager examples make their own KIN_HOME with mktemp:
	// keep those under a directory of this test, and kill any daemon a
	// failed block left behind.
	tmp, err := os.MkdirTemp("", "kinreadme")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		homes, _ := os.ReadDir(tmp)
		for _, h := range homes {
			kill := exec.Command(filepath.Join(root, "bin", "kin"), "kill")
			kill.Env = append(os.Environ(), "KIN_HOME="+filepath.Join(tmp, h.Name()))
			kill.Run()
		}
		os.RemoveAll(tmp)
	})
	for i, b := range blocks {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", b)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n--- block:\n%s--- output:\n%s", i, err, b, out)
		}
		if len(strings.TrimSpace(string(out))) == 0 && i > 0 {
			t.Fatalf("README block %d printed nothing:\n%s", i, b)
		}
	}
}
