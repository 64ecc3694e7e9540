package supervisor_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
	"github.com/kinproc/kin/supervisor"
)

func TestMain(m *testing.M) { kintest.Main(m) }

func init() {
	// sleep: runs until killed; with "stamp FILE", appends its start time.
	kintest.Register("sleep", func(args []string) {
		stamp(args)
		select {}
	})
	// crash: exits 3 at once (after stamping).
	kintest.Register("crash", func(args []string) {
		stamp(args)
		os.Exit(3)
	})
	// ready: reports ready on its IPC channel after the given delay.
	kintest.Register("ready", func(args []string) {
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
		ch, err := ipc.FromEnv(ipc.Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ch.Send(context.Background(), ipc.Message{Kind: ipc.Ready})
		select {}
	})
	// notify: says READY=1 on $NOTIFY_SOCKET after the given delay.
	kintest.Register("notify", func(args []string) {
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
		conn, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		conn.Write([]byte("STATUS=starting\nREADY=1"))
		conn.Close()
		select {}
	})
	// serve: listens on the given address after a delay; /health answers
	// 200.
	kintest.Register("serve", func(args []string) {
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
		l, err := net.Listen("tcp", args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/health" {
				http.NotFound(w, r)
			}
		}))
	})
	// grandchild: starts a sleeping grandchild, writes its pid to a file.
	kintest.Register("grandchild", func(args []string) {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			os.Exit(1)
		}
		os.WriteFile(args[0], []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		select {}
	})
	// hog: allocates and touches N MiB, then waits.
	kintest.Register("hog", func(args []string) {
		n, _ := strconv.Atoi(args[0])
		b := make([]byte, n<<20)
		for i := 0; i < len(b); i += 4096 { // one write per page: resident, and quick under -race
			b[i] = 1
		}
		fmt.Println("allocated", len(b))
		select {}
	})
	// echo: prints its environment's instance variables and exits 0.
	kintest.Register("print", func(args []string) {
		fmt.Println("line one")
		fmt.Fprintln(os.Stderr, "to stderr")
		fmt.Println("instance", os.Getenv("NODE_APP_INSTANCE"), os.Getenv("KIN_INSTANCE"), os.Getenv("GREETING"))
		select {}
	})
}

func stamp(args []string) {
	if len(args) == 2 && args[0] == "stamp" {
		f, err := os.OpenFile(args[1], os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintln(f, time.Now().UnixNano())
			f.Close()
		}
	}
}

// helperSpec is an AppSpec running the test binary as helper name.
func helperSpec(name, helper string, args ...string) supervisor.AppSpec {
	exe, argv, _ := kintest.Command(helper, args...)
	return supervisor.AppSpec{
		Name:    name,
		Command: append([]string{exe}, argv...),
		Env:     map[string]string{kintest.EnvHelper: helper},
	}
}

func newServer(t *testing.T, cfg supervisor.Config) *supervisor.Server {
	t.Helper()
	if cfg.Home == "" {
		cfg.Home = t.TempDir()
	}
	if cfg.SampleInterval == 0 {
		cfg.SampleInterval = 50 * time.Millisecond
	}
	s, err := supervisor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func instances(s *supervisor.Server, name string) []supervisor.InstanceInfo {
	var out []supervisor.InstanceInfo
	for _, in := range s.List() {
		if in.Name == name {
			out = append(out, in)
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStartListStop(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("web", "sleep")
	spec.Instances = 2
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("got %d instances, want 2", len(infos))
	}
	var pids []int
	for i, in := range infos {
		if in.Status != supervisor.StatusOnline || in.PID == 0 || in.Instance != i || in.Name != "web" {
			t.Fatalf("instance %d: %+v", i, in)
		}
		if !kintest.Alive(in.PID) {
			t.Fatalf("pid %d not alive", in.PID)
		}
		pids = append(pids, in.PID)
	}
	if infos[0].ID == infos[1].ID {
		t.Fatalf("ids not unique: %+v", infos)
	}
	// The sampler fills in memory.
	kintest.WaitFor(t, 5*time.Second, "memory sampled", func() bool {
		in := instances(s, "web")
		return in[0].Memory > 0 && in[1].Memory > 0
	})
	if err := s.Stop(ctxT(t), "web"); err != nil {
		t.Fatal(err)
	}
	kintest.WaitGone(t, 5*time.Second, pids...)
	for _, in := range instances(s, "web") {
		if in.Status != supervisor.StatusStopped || in.PID != 0 {
			t.Fatalf("after stop: %+v", in)
		}
	}
	// Start again by name: same ids, new pids.
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	for i, in := range instances(s, "web") {
		if in.Status != supervisor.StatusOnline || in.ID != infos[i].ID || in.PID == pids[i] {
			t.Fatalf("after restart: %+v (was %+v)", in, infos[i])
		}
	}
	if err := s.Delete(ctxT(t), "web"); err != nil {
		t.Fatal(err)
	}
	if n := len(s.List()); n != 0 {
		t.Fatalf("after delete, %d instances listed", n)
	}
	if _, err := s.Describe("web"); err == nil {
		t.Fatal("describe of a deleted app succeeded")
	}
}

func TestKilledInstanceRestartsOthersUnaffected(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("svc", "sleep")
	spec.Instances = 2
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(infos[0].PID, syscall.SIGKILL)
	kintest.WaitFor(t, 5*time.Second, "instance 0 restarted", func() bool {
		in := instances(s, "svc")[0]
		return in.Status == supervisor.StatusOnline && in.PID != infos[0].PID && in.PID != 0
	})
	now := instances(s, "svc")
	if now[0].Restarts != 1 || now[0].LastExit != "signal SIGKILL" {
		t.Fatalf("instance 0: %+v", now[0])
	}
	if now[1].PID != infos[1].PID || now[1].Restarts != 0 {
		t.Fatalf("instance 1 was touched: %+v (was %+v)", now[1], infos[1])
	}
}

func TestCrashLoopEndsErroredWithGrowingDelays(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	stamps := filepath.Join(t.TempDir(), "stamps")
	spec := helperSpec("crashy", "crash", "stamp", stamps)
	spec.Backoff = supervisor.Duration(100 * time.Millisecond)
	spec.MaxRestarts = 4
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "errored", func() bool {
		return instances(s, "crashy")[0].Status == supervisor.StatusErrored
	})
	in := instances(s, "crashy")[0]
	if in.Restarts != 4 || !strings.Contains(in.LastExit, "exit 3") || !strings.Contains(in.LastExit, "budget") {
		t.Fatalf("errored instance: %+v", in)
	}
	b, _ := os.ReadFile(stamps)
	lines := strings.Fields(string(b))
	if len(lines) != 5 {
		t.Fatalf("%d starts, want 5 (1 + 4 restarts)", len(lines))
	}
	var gaps []time.Duration
	for i := 1; i < len(lines); i++ {
		a, _ := strconv.ParseInt(lines[i-1], 10, 64)
		b, _ := strconv.ParseInt(lines[i], 10, 64)
		gaps = append(gaps, time.Duration(b-a))
	}
	// Backoff 100, 200, 400, 800 ms (±20 %), each on top of a start time.
	if gaps[0] < 80*time.Millisecond || gaps[3] < 640*time.Millisecond || gaps[3]-gaps[0] < 300*time.Millisecond {
		t.Fatalf("delays between starts do not grow: %v", gaps)
	}
	// A manual restart resets the budget: four more restarts, errored again.
	s.Restart(ctxT(t), "crashy")
	kintest.WaitFor(t, 20*time.Second, "errored again", func() bool {
		in := instances(s, "crashy")[0]
		return in.Status == supervisor.StatusErrored && in.Restarts == 8
	})
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	never := helperSpec("never", "crash")
	never.Restart = supervisor.RestartNever
	onfail := helperSpec("onfail", "print") // runs forever: killed with SIGTERM by us
	onfail.Restart = supervisor.RestartOnFailure
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{never, onfail}, supervisor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 5*time.Second, "never: errored without restart", func() bool {
		in := instances(s, "never")[0]
		return in.Status == supervisor.StatusErrored && in.Restarts == 0
	})
	if err := s.WaitOnline(ctxT(t), "onfail"); err != nil {
		t.Fatal(err)
	}
	pid := instances(s, "onfail")[0].PID
	syscall.Kill(pid, syscall.SIGKILL) // a failure: restarted
	kintest.WaitFor(t, 5*time.Second, "on-failure restarted after SIGKILL", func() bool {
		in := instances(s, "onfail")[0]
		return in.Status == supervisor.StatusOnline && in.PID != pid
	})
}

func TestStopKillsGrandchildren(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	pidFile := filepath.Join(t.TempDir(), "gc")
	spec := helperSpec("parent", "grandchild", pidFile)
	spec.KillTimeout = supervisor.Duration(2 * time.Second)
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	var gc int
	kintest.WaitFor(t, 5*time.Second, "grandchild pid", func() bool {
		b, _ := os.ReadFile(pidFile)
		gc, _ = strconv.Atoi(string(b))
		return gc > 0
	})
	pid := instances(s, "parent")[0].PID
	if err := s.Stop(ctxT(t), "parent"); err != nil {
		t.Fatal(err)
	}
	kintest.WaitGone(t, 5*time.Second, pid, gc)
}

func TestMaxMemoryRestarts(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{SampleInterval: 50 * time.Millisecond})
	spec := helperSpec("hog", "hog", "80")
	spec.MaxMemory = 40 << 20
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 15*time.Second, "restart for max_memory", func() bool {
		in := instances(s, "hog")[0]
		return in.Restarts >= 1 && strings.HasPrefix(in.LastExit, "max_memory")
	})
}

// TestMemoryLimitKills: an instance over its memory_limit is killed, by
// the kernel in a cgroup where this process may create one, else by kin's
// sampling (both ways are tested where cgroups work).
func TestMemoryLimitKills(t *testing.T) {
	t.Parallel()
	cgroups := false
	if probe, err := proc.NewMemoryCgroup("probe", 1<<30); err == nil {
		probe.Remove()
		cgroups = true
	}
	for _, sampled := range []bool{true, false} {
		if !sampled && !cgroups {
			continue
		}
		t.Run(fmt.Sprintf("sampled=%v", sampled), func(t *testing.T) {
			s := newServer(t, supervisor.Config{SampleInterval: 50 * time.Millisecond, NoCgroups: sampled})
			spec := helperSpec("hog2", "hog", "80")
			spec.MemoryLimit = 40 << 20
			spec.Restart = supervisor.RestartNever
			if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{}); err != nil {
				t.Fatal(err)
			}
			want := "> 40.0 MiB (signal SIGKILL)" // "memory_limit: 46.2 MiB > 40.0 MiB…", as sampled
			if !sampled {
				want = "memory_limit: over 40.0 MiB, killed by the kernel (cgroup) (signal SIGKILL)"
			}
			var last string
			kintest.WaitFor(t, 15*time.Second, "killed for memory_limit", func() bool {
				in := instances(s, "hog2")[0]
				last = in.LastExit
				return in.Status == supervisor.StatusErrored && strings.HasPrefix(in.LastExit, "memory_limit") && strings.Contains(in.LastExit, "SIGKILL")
			})
			if !strings.HasSuffix(last, want) {
				t.Fatalf("last exit %q, want …%q", last, want)
			}
		})
	}
	if cgroups {
		// Every instance's cgroup went with it.
		kintest.WaitFor(t, 5*time.Second, "the instances' cgroups removed", func() bool {
			return len(kinCgroups(t)) == 0
		})
	}
}

// kinCgroups lists the memory cgroups this test process created.
func kinCgroups(t *testing.T) []string {
	probe, err := proc.NewMemoryCgroup("list", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	probe.Remove()
	m, _ := filepath.Glob(filepath.Join(filepath.Dir(probe.Dir()), fmt.Sprintf("kin-%d-*", os.Getpid())))
	return m
}

func TestWaitReadyAndReload(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("rdy", "ready", "100ms")
	spec.WaitReady = true
	spec.Instances = 2
	start := time.Now()
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("online before the instances said ready")
	}
	if err := s.Reload(ctxT(t), "rdy"); err != nil {
		t.Fatal(err)
	}
	now := instances(s, "rdy")
	for i := range now {
		if now[i].PID == infos[i].PID || now[i].Status != supervisor.StatusOnline || now[i].ID != infos[i].ID {
			t.Fatalf("after reload: %+v (was %+v)", now[i], infos[i])
		}
	}
	kintest.WaitGone(t, 10*time.Second, infos[0].PID, infos[1].PID)

}

func TestReloadKeepsOldWhenNewNeverReady(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("keep", "ready", "0s")
	spec.WaitReady = true
	spec.Port = freePort(t)
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	bad := helperSpec("keep", "sleep")
	bad.WaitReady = true
	bad.Port = spec.Port
	bad.Ready.Timeout = supervisor.Duration(300 * time.Millisecond)
	// A changed spec with the same port is applied by a rolling reload.
	_, err = s.StartApps(ctxT(t), []supervisor.AppSpec{bad}, supervisor.StartOptions{Wait: true})
	if err == nil || !strings.Contains(err.Error(), "old one keeps running") {
		t.Fatalf("reload to a never-ready spec: %v", err)
	}
	in := instances(s, "keep")[0]
	if in.PID != infos[0].PID || in.Status != supervisor.StatusOnline {
		t.Fatalf("old instance not kept: %+v (was %+v)", in, infos[0])
	}
}

func TestLogsAndEnv(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	s := newServer(t, supervisor.Config{Home: home})
	spec := helperSpec("printer", "print")
	spec.Env["GREETING"] = "hello"
	spec.Instances = 2
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range infos {
		want := fmt.Sprintf("instance %d %d hello", i, i)
		kintest.WaitFor(t, 5*time.Second, "log line "+want, func() bool {
			b, _ := os.ReadFile(in.OutLog)
			return strings.Contains(string(b), want)
		})
		kintest.WaitFor(t, 5*time.Second, "stderr line", func() bool {
			b, _ := os.ReadFile(in.ErrLog)
			return strings.Contains(string(b), "to stderr")
		})
	}
	if filepath.Dir(infos[0].OutLog) != filepath.Join(home, "logs") {
		t.Fatalf("log in %s", infos[0].OutLog)
	}
	// The new spec's env replaces the old one.
	spec2 := helperSpec("printer", "print")
	spec2.Instances = 2
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec2}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 5*time.Second, "instance line without GREETING", func() bool {
		b, _ := os.ReadFile(infos[0].OutLog)
		return strings.Contains(string(b), "instance 0 0 \n")
	})
}

func TestSaveResurrect(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	s := newServer(t, supervisor.Config{Home: home})
	a, b := helperSpec("a", "sleep"), helperSpec("b", "sleep")
	// Regression: a resurrected cluster app got no socket (it was added
	// stopped, then started without binding its port).
	a.Port = freePort(t)
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{a, b}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctxT(t), "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2 := newServer(t, supervisor.Config{Home: home})
	if _, err := s2.Resurrect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s2.WaitOnline(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	list := s2.List()
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" || list[1].Status != supervisor.StatusStopped {
		t.Fatalf("resurrected: %+v", list)
	}
	if err := tryBind(a.Port); err == nil {
		t.Fatalf("port %d of the resurrected app is not bound", a.Port)
	}
	// Stopped, then started again: the socket comes back.
	if err := s2.Stop(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.StartApps(ctxT(t), []supervisor.AppSpec{a}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if err := tryBind(a.Port); err == nil {
		t.Fatalf("port %d not bound after stop and start", a.Port)
	}
}

func TestScaleAndSignal(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("sc", "sleep")
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Scale(ctxT(t), "sc", 3); err != nil {
		t.Fatal(err)
	}
	list := instances(s, "sc")
	if len(list) != 3 || list[2].Status != supervisor.StatusOnline {
		t.Fatalf("after scale up: %+v", list)
	}
	gone := list[1].PID
	if err := s.Scale(ctxT(t), "sc", 1); err != nil {
		t.Fatal(err)
	}
	kintest.WaitGone(t, 5*time.Second, gone, list[2].PID)
	if n := len(instances(s, "sc")); n != 1 {
		t.Fatalf("after scale down: %d instances", n)
	}
	pid := instances(s, "sc")[0].PID
	if err := s.Signal(ctxT(t), "sc", "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 5*time.Second, "restart after signal", func() bool {
		in := instances(s, "sc")[0]
		return in.PID != pid && in.Status == supervisor.StatusOnline
	})
	if err := s.Signal(ctxT(t), "nope", "SIGTERM"); err == nil {
		t.Fatal("signal to an unknown app succeeded")
	}
	if err := s.Signal(ctxT(t), "sc", "SIGNOPE"); err == nil {
		t.Fatal("unknown signal accepted")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		// Ports the kernel does not hand out as ephemeral ones are less
		// likely to be taken between here and the bind.
		p := 20000 + int(time.Now().UnixNano()%20000)
		if err := tryBind(p); err == nil {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func tryBind(port int) error {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	return l.Close()
}

func TestCronAndWatchRestart(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	cronSpec := helperSpec("cronned", "sleep")
	cronSpec.Cron = "@every 1s"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("v1"), 0o600)
	os.Mkdir(filepath.Join(dir, "node_modules"), 0o700)
	watchSpec := helperSpec("watched", "sleep")
	watchSpec.Cwd = dir
	watchSpec.Watch = []string{"."}
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{cronSpec, watchSpec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "cron restart", func() bool {
		in := instances(s, "cronned")[0]
		return in.Restarts >= 1 && strings.HasPrefix(in.LastExit, "cron @every 1s")
	})
	// A change under node_modules is ignored; one in the app's files is not.
	os.WriteFile(filepath.Join(dir, "node_modules", "x.js"), []byte("x"), 0o600)
	time.Sleep(600 * time.Millisecond) // a restart, if any, would be ordered by now
	if in := instances(s, "watched")[0]; in.PID != infos[1].PID {
		t.Fatalf("restarted for a change in node_modules: %+v", in)
	}
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("v2"), 0o600)
	kintest.WaitFor(t, 10*time.Second, "watch restart", func() bool {
		in := instances(s, "watched")[0]
		return in.PID != infos[1].PID && in.Status == supervisor.StatusOnline && strings.Contains(in.LastExit, "app.conf changed")
	})
	// Stopped apps are not restarted by their schedule.
	if err := s.Stop(ctxT(t), "cronned"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if in := instances(s, "cronned")[0]; in.Status != supervisor.StatusStopped {
		t.Fatalf("stopped app restarted by cron: %+v", in)
	}
}

func TestReadinessKinds(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	const delay = 300 * time.Millisecond
	notify := helperSpec("notify", "notify", delay.String())
	notify.Ready.Kind = supervisor.ReadyNotify
	addr1 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	probeHTTP := helperSpec("probe-http", "serve", addr1, delay.String())
	probeHTTP.Ready = supervisor.Readiness{Kind: supervisor.ReadyHTTP, URL: "http://" + addr1 + "/health"}
	addr2 := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	probeTCP := helperSpec("probe-tcp", "serve", addr2, delay.String())
	probeTCP.Ready = supervisor.Readiness{Kind: supervisor.ReadyTCP, Address: addr2}
	alive := helperSpec("alive", "sleep")
	alive.Ready = supervisor.Readiness{Kind: supervisor.ReadyAlive, Delay: supervisor.Duration(delay)}
	for _, spec := range []supervisor.AppSpec{notify, probeHTTP, probeTCP, alive} {
		start := time.Now()
		if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		if in := instances(s, spec.Name)[0]; in.Status != supervisor.StatusStarting {
			t.Fatalf("%s: %s before it could be ready", spec.Name, in.Status)
		}
		if err := s.WaitOnline(ctxT(t), spec.Name); err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
		if d := time.Since(start); d < delay {
			t.Fatalf("%s online after %v, before its %v delay", spec.Name, d, delay)
		}
	}
	// An instance that never gets ready is stopped and counts as a crash.
	never := helperSpec("never-ready", "sleep")
	never.Ready = supervisor.Readiness{Kind: supervisor.ReadyNotify, Timeout: supervisor.Duration(200 * time.Millisecond)}
	never.Restart = supervisor.RestartNever
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{never}, supervisor.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "never-ready errored", func() bool {
		in := instances(s, "never-ready")[0]
		return in.Status == supervisor.StatusErrored && strings.HasPrefix(in.LastExit, "not ready within 200ms")
	})
}

func TestCallerEnvKeptUnlessUpdated(t *testing.T) {
	t.Parallel()
	s := newServer(t, supervisor.Config{})
	spec := helperSpec("ce", "sleep")
	spec.CallerEnv = map[string]string{"SHELL_THING": "1"}
	infos, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	// Another caller's environment: the running app is left alone.
	spec.CallerEnv = map[string]string{"SHELL_THING": "2"}
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if in := instances(s, "ce")[0]; in.PID != infos[0].PID {
		t.Fatalf("restarted for a different caller environment: %+v", in)
	}
	// Asked to update it: restarted with it.
	if _, err := s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true, UpdateEnv: true}); err != nil {
		t.Fatal(err)
	}
	if in := instances(s, "ce")[0]; in.PID == infos[0].PID {
		t.Fatal("not restarted with --update-env")
	}
	apps, _ := s.Describe("ce")
	if apps[0].Spec.CallerEnv["SHELL_THING"] != "2" {
		t.Fatalf("caller env not updated: %v", apps[0].Spec.CallerEnv)
	}
}
