package main

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

func TestTreeNodeThreads(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	// A Node process with a child: a busy JavaScript loop on one thread.
	cmd := exec.Command(node, "-e", `require('child_process').spawn('sleep', ['30']); const t = Date.now(); while (Date.now() - t < 30000) {}`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	var tree treeNode
	kintest.WaitFor(t, 10*time.Second, "node's child to appear", func() bool {
		out, _, code := kin(t, "", "tree", pid, "--threads", "--json", "--sample", "300ms")
		return code == 0 && json.Unmarshal([]byte(out), &tree) == nil && len(tree.Children) == 1
	})
	if tree.PID != cmd.Process.Pid || !strings.Contains(tree.Command, "node -e") || tree.RSS == 0 {
		t.Fatalf("root %+v", tree)
	}
	if tree.Threads < 4 || len(tree.ThreadList) != tree.Threads {
		t.Fatalf("node has %d threads, %d listed", tree.Threads, len(tree.ThreadList))
	}
	// JavaScript runs on the main thread (tid == pid): it is the busy one.
	var main, others float64
	for _, th := range tree.ThreadList {
		if th.TID == tree.PID {
			main = th.CPUPercent
		} else {
			others += th.CPUPercent
		}
	}
	if main < 5 || others > main {
		t.Fatalf("main thread %.1f%%, others %.1f%%", main, others)
	}
	if c := tree.Children[0]; !strings.HasPrefix(c.Command, "sleep 30") || c.PPID != tree.PID {
		t.Fatalf("child %+v", c)
	}
	out, _, code := kin(t, "", "tree", pid, "--threads", "--sample", "0")
	if code != 0 || !strings.Contains(out, "COMMAND") || !strings.Contains(out, "└─ sleep 30") || !strings.Contains(out, "· thread node") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestTreeErrors(t *testing.T) {
	t.Parallel()
	if _, errOut, code := kin(t, "", "tree", "abc"); code != 2 || !strings.Contains(errOut, "not a process id") {
		t.Fatalf("bad pid: %d %q", code, errOut)
	}
	if _, errOut, code := kin(t, "", "tree", "999999999"); code != 1 || !strings.Contains(errOut, "no process 999999999") {
		t.Fatalf("missing pid: %d %q", code, errOut)
	}
}
