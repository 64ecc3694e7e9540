package proc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

func TestMain(m *testing.M) {
	kintest.Register("exit", func(args []string) {
		for i := 0; i < 30; i++ {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		fmt.Fprint(os.Stderr, "no newline at the end")
		code, _ := strconv.Atoi(args[0])
		os.Exit(code)
	})
	kintest.Register("sleep", func(args []string) {
		if len(args) > 0 && args[0] == "ignore-term" {
			signal.Ignore(syscall.SIGTERM)
		}
		if len(args) > 0 && args[0] == "graceful" {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			fmt.Println("ready")
			<-ch
			fmt.Println("bye")
			os.Exit(0)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
	})
	// grandparent starts a grandchild in its own group and prints its pid;
	// with "exit" it then exits at once, leaving the grandchild behind.
	kintest.Register("grandparent", func(args []string) {
		gc := exec.Command("/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(gc.Process.Pid)
		if len(args) > 0 && args[0] == "exit" {
			os.Exit(0)
		}
		gc.Wait()
	})
	// escaper starts a grandchild that leaves the group and session
	// (setsid) and ignores SIGTERM, prints its pid and waits.
	kintest.Register("escaper", func(args []string) {
		gc := exec.Command("/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done")
		gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := gc.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(gc.Process.Pid)
		gc.Wait()
	})
	// forker forks a child with a channel and DieWithParent, prints the
	// child's pid and waits to be killed.
	kintest.Register("forker", func(args []string) {
		path, cargs, env := kintest.Command("sleep")
		c := proc.Command(path, cargs...)
		c.Env = env
		c.DieWithParent = args[0] == "pdeathsig"
		c.IPC = &ipc.Config{}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(c.Process.Pid)
		time.Sleep(time.Hour)
	})
	kintest.Register("env", func(args []string) {
		for _, k := range args {
			fmt.Printf("%s=%s\n", k, os.Getenv(k))
		}
	})
	kintest.Register("echo-channel", func(args []string) {
		ch, err := ipc.FromEnv(ipc.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ctx := context.Background()
		for {
			m, err := ch.Recv(ctx)
			if err != nil {
				return
			}
			ch.Reply(ctx, m, m.Data)
		}
	})
	kintest.Main(m)
}

// helper returns a Cmd running the named helper.
func helper(name string, args ...string) *proc.Cmd {
	path, a, env := kintest.Command(name, args...)
	c := proc.Command(path, a...)
	c.Env = env
	return c
}

// startReady starts c and waits for its first stdout line.
func startReady(t *testing.T, c *proc.Cmd) string {
	t.Helper()
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Kill(); c.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("first line: %v", err)
	}
	go io.Copy(io.Discard, out)
	return strings.TrimSpace(line)
}

func TestExitError(t *testing.T) {
	t.Parallel()
	c := helper("exit", "3")
	err := c.Run()
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Run: %v, want *ExitError", err)
	}
	if ee.Code != 3 || ee.Signal != 0 || ee.Stopped || ee.PID != c.Process.Pid {
		t.Fatalf("ExitError %+v", ee)
	}
	lines := strings.Split(strings.TrimSpace(ee.Stderr), "\n")
	if len(lines) != proc.DefaultStderrTail || lines[0] != "line 11" || lines[len(lines)-1] != "no newline at the end" {
		t.Fatalf("stderr tail: %q", ee.Stderr)
	}
	if !strings.Contains(err.Error(), "exited with status 3") || !strings.Contains(err.Error(), "no newline at the end") {
		t.Fatalf("message: %v", err)
	}
	if err := helper("exit", "0").Run(); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
}

func TestStopGraceful(t *testing.T) {
	t.Parallel()
	c := helper("sleep", "graceful")
	startReady(t, c)
	start := time.Now()
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("graceful exit: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("graceful stop took %v", d)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	t.Parallel()
	c := helper("sleep", "ignore-term")
	c.StopTimeout = 200 * time.Millisecond
	startReady(t, c)
	start := time.Now()
	c.Stop(context.Background())
	d := time.Since(start)
	var ee *proc.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL || !ee.Stopped {
		t.Fatalf("Wait: %v", err)
	}
	if d < 200*time.Millisecond {
		t.Fatalf("killed after %v, before the grace period", d)
	}
}

func TestStopContextKillsAtOnce(t *testing.T) {
	t.Parallel()
	c := helper("sleep", "ignore-term")
	c.StopTimeout = time.Hour
	startReady(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c.Stop(ctx)
	if !c.Exited() {
		t.Fatal("Stop returned before the child was reaped")
	}
}

func TestStopKillsGrandchildren(t *testing.T) {
	t.Parallel()
	c := helper("grandparent")
	c.StopTimeout = 300 * time.Millisecond
	gc, _ := strconv.Atoi(startReady(t, c))
	if !kintest.Alive(gc) {
		t.Fatalf("grandchild %d not running", gc)
	}
	c.Stop(context.Background())
	// The grandchild ignores SIGTERM; it must have been SIGKILLed with the group.
	kintest.WaitGone(t, 5*time.Second, gc, c.Process.Pid)
}

// Regression: a descendant that called setsid outlived Stop, which
// signalled the process group only.
func TestStopKillsEscapedDescendants(t *testing.T) {
	t.Parallel()
	for _, kill := range []bool{false, true} {
		c := helper("escaper")
		c.StopTimeout = 300 * time.Millisecond
		gc, _ := strconv.Atoi(startReady(t, c))
		if !kintest.Alive(gc) {
			t.Fatalf("grandchild %d not running", gc)
		}
		if kill {
			c.Kill()
		} else {
			c.Stop(context.Background())
		}
		if kintest.Alive(gc) {
			t.Fatalf("kill=%v: escaped grandchild %d still running after Stop returned", kill, gc)
		}
	}
}

func TestOrphansStoppedWhenChildExits(t *testing.T) {
	t.Parallel()
	c := helper("grandparent", "exit")
	c.StopTimeout = 300 * time.Millisecond
	gc, _ := strconv.Atoi(startReady(t, c))
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if kintest.Alive(gc) {
		t.Fatalf("grandchild %d still running after Wait returned", gc)
	}

	keep := helper("grandparent", "exit")
	keep.KeepOrphans = true
	gc2, _ := strconv.Atoi(startReady(t, keep))
	keep.Wait()
	if !kintest.Alive(gc2) {
		t.Fatalf("KeepOrphans: grandchild %d was stopped", gc2)
	}
	syscall.Kill(gc2, syscall.SIGKILL)
}

func TestDieWithParent(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"pdeathsig"} {
		c := helper("forker", mode)
		child, _ := strconv.Atoi(startReady(t, c))
		if !kintest.Alive(child) {
			t.Fatal("forked child not running")
		}
		c.Process.Signal(syscall.SIGKILL) // only the parent, not its group
		c.Wait()
		kintest.WaitGone(t, 5*time.Second, child)
	}
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	path, args, env := kintest.Command("env", "NODE_CHANNEL_FD", "KIN_CHANNEL_FD", "NODE_UNIQUE_ID", "KEEP")
	c := proc.Command(path, args...)
	c.Env = append(env, "NODE_CHANNEL_FD=7", "KIN_CHANNEL_FD=7", "NODE_UNIQUE_ID=1", "KEEP=yes")
	out, _, err := c.Exec(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "NODE_CHANNEL_FD=\nKIN_CHANNEL_FD=\nNODE_UNIQUE_ID=\nKEEP=yes\n"
	if string(out) != want {
		t.Fatalf("child saw\n%s\nwant\n%s", out, want)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, errOut, err := proc.Exec(ctx, "/bin/sh", "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\n" || string(errOut) != "err\n" {
		t.Fatalf("Exec: %q %q %v", out, errOut, err)
	}
	// No shell unless asked: the argument is not interpreted.
	out, _, err = proc.Exec(ctx, "echo", "$HOME;", "x")
	if err != nil || string(out) != "$HOME; x\n" {
		t.Fatalf("Exec echo: %q %v", out, err)
	}
	out, _, err = proc.Shell("echo $((1+2))").Exec(ctx)
	if err != nil || string(out) != "3\n" {
		t.Fatalf("Shell: %q %v", out, err)
	}
	c := proc.Command("/bin/sh", "-c", "head -c 100000 /dev/zero; sleep 60")
	c.MaxOutput = 1000
	out, _, err = c.Exec(ctx)
	if !errors.Is(err, proc.ErrOutputTooLarge) || len(out) != 1000 {
		t.Fatalf("over MaxOutput: %d bytes, %v", len(out), err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = proc.Exec(tctx, "sleep", "60")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("timeout: %v after %v", err, time.Since(start))
	}
	_, _, err = proc.Exec(ctx, "no-such-program-kin")
	if err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Fatalf("missing program: %v", err)
	}
}

func TestForkGoChild(t *testing.T) {
	t.Parallel()
	c := helper("echo-channel")
	c.IPC = &ipc.Config{Codec: ipc.Frame}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Channel.Request(ctx, ipc.Message{Data: []byte("raw \x00 bytes")}, nil)
	if err != nil || string(r.Data) != "raw \x00 bytes" {
		t.Fatalf("request: %q %v", r.Data, err)
	}
	// Closing the channel is "disconnect": the child sees EOF and exits.
	c.Channel.Close()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestForkNodeChild(t *testing.T) {
	t.Parallel()
	node := kintest.Node(t)
	script := filepath.Join(t.TempDir(), "child.js")
	os.WriteFile(script, []byte(`process.on('message', (m) => process.send({got: m, pid: process.pid}));`), 0o644)
	c, err := proc.Fork(node, script)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Channel.Send(ctx, ipc.Message{Data: []byte(`"hi"`)})
	m, err := c.Channel.Recv(ctx)
	want := fmt.Sprintf(`{"got":"hi","pid":%d}`, c.Process.Pid)
	if err != nil || string(m.Data) != want {
		t.Fatalf("got %q %v, want %s", m.Data, err, want)
	}
	c.Channel.Close() // Node exits once its channel closes
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	c := helper("grandparent")
	gc, _ := strconv.Atoi(startReady(t, c))
	// The grandchild counts once it has exec'd sh: until then it shares
	// its parent's memory, and mid-exec its RSS reads 0.
	var snap *proc.Snapshot
	kintest.WaitFor(t, 5*time.Second, "the grandchild running sh", func() bool {
		var err error
		snap, err = proc.TakeSnapshot()
		if err != nil {
			return false
		}
		p, ok := snap.Process(gc)
		return ok && p.Comm == "sh" && p.RSS > 0
	})
	if d := snap.Descendants(c.Process.Pid); len(d) < 1 || d[0] != gc {
		t.Fatalf("descendants %v, want [%d …]", d, gc)
	}
	tree, _ := snap.TreeStats(c.Process.Pid)
	alone, _ := snap.Stats(c.Process.Pid)
	if tree.Procs < 2 || tree.RSS <= alone.RSS || tree.Threads <= alone.Threads || alone.RSS == 0 {
		t.Fatalf("tree %+v, alone %+v", tree, alone)
	}
	if st, err := c.Stats(); err != nil || st.Procs < 2 || st.RSS == 0 {
		t.Fatalf("Cmd.Stats: %+v %v", st, err)
	}
	if st, err := proc.ReadStats(c.Process.Pid); err != nil || st.Procs != 1 || st.RSS == 0 || st.Threads < 2 {
		t.Fatalf("ReadStats: %+v %v", st, err)
	}
	if g := snap.GroupMembers(c.Process.Pid); len(g) < 2 {
		t.Fatalf("group members %v", g)
	}
	ths, err := proc.Threads(c.Process.Pid)
	if err != nil || len(ths) < 2 || ths[0].TID != c.Process.Pid {
		t.Fatalf("threads of a Go program: %+v %v", ths, err)
	}
	if cl := proc.CommandLine(c.Process.Pid); !strings.Contains(cl, filepath.Base(os.Args[0])) {
		t.Fatalf("command line %q", cl)
	}
}

func TestStdinPipe(t *testing.T) {
	t.Parallel()
	c := proc.Command("cat")
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(in, "through cat")
	in.Close()
	b, _ := io.ReadAll(out)
	if err := c.Wait(); err != nil || string(b) != "through cat" {
		t.Fatalf("%q %v", b, err)
	}
}
