package main

// Process-manager tests: the real kin binary, the real daemon it starts on
// first use (under -race, one built with -race: see newPM), real Node,
// Python and Go apps, driven through the CLI as a user would. Each test has
// its own KIN_HOME (so its own daemon) and ends with kin kill; its cleanup
// then checks that nothing it started is still running, and that the
// daemon's log holds no data race or panic.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// envMarker is set, to the home, in the environment of every kin command a
// test runs; kin passes it on to the daemon and to the apps (and they to
// their children), which is how a test finds everything it started.
const envMarker = "KINTEST_PM_HOME"

// pm is one kin home, with the daemon that serves it, driven through the CLI.
type pm struct {
	t    *testing.T
	home string
	dir  string   // the working directory of the kin commands
	env  []string // their environment
	// daemon is the daemon built with -race that the test started itself,
	// under -race; nil when the CLI started the daemon.
	daemon *exec.Cmd
}

// newPM returns a fresh home, ready for commands. Its cleanup runs kin kill
// and fails the test if a process started for the home is left running.
//
// Under -race the home's daemon is started at once from a kin built with
// -race, so that the race detector watches the daemon through the test
// (the commands are run from the normal build: a race-enabled binary can
// take a second to start). Otherwise, and with newHome, the first command
// that needs a daemon starts it, as it does for users.
func newPM(t *testing.T) *pm {
	t.Helper()
	p := newHome(t)
	if raceEnabled {
		p.startRaceDaemon(nil)
	}
	return p
}

// startRaceDaemon starts the race-enabled daemon of p's home, with env added
// to its environment, and waits until it answers.
func (p *pm) startRaceDaemon(env []string) {
	t := p.t
	t.Helper()
	log, err := os.OpenFile(filepath.Join(p.home, "daemon.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(binDir, "race", "kin"), "daemon")
	cmd.Env = append(slices.Clip(p.env), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.daemon = cmd
	sock := filepath.Join(p.home, "kin.sock")
	kintest.WaitFor(t, 30*time.Second, "the daemon to answer on "+sock, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// newHome returns a fresh home with no daemon: the first command that needs
// one starts it. Cleanup as for newPM.
func newHome(t *testing.T) *pm {
	t.Helper()
	// Not t.TempDir: the socket path must stay under 108 bytes.
	home, err := os.MkdirTemp("", "kin")
	if err != nil {
		t.Fatal(err)
	}
	p := &pm{t: t, home: home, dir: t.TempDir()}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KIN_") && !strings.HasPrefix(kv, envMarker+"=") {
			p.env = append(p.env, kv)
		}
	}
	p.env = append(p.env, "KIN_HOME="+home, envMarker+"="+home)
	t.Cleanup(p.cleanup)
	return p
}

func (p *pm) cleanup() {
	t := p.t
	if _, errOut, code := p.run(nil, "kill"); code != 0 {
		t.Errorf("kin kill: exit %d: %s", code, errOut)
	}
	if p.daemon != nil {
		done := make(chan error, 1)
		go func() { done <- p.daemon.Wait() }()
		select {
		case err := <-done:
			// 66 is the exit status of a program in which the race
			// detector found a race.
			if err != nil {
				t.Errorf("race-enabled daemon: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("race-enabled daemon still running 15s after kin kill")
			p.daemon.Process.Kill()
			<-done
		}
	}
	var left []int
	if !kintest.Poll(15*time.Second, func() bool { left = homeProcs(p.home); return len(left) == 0 }) {
		t.Errorf("left running after kin kill: %s", describeProcs(left))
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	log, _ := os.ReadFile(filepath.Join(p.home, "daemon.log"))
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if bytes.Contains(log, []byte(bad)) {
			t.Errorf("daemon.log has %q", bad)
		}
	}
	if t.Failed() {
		t.Logf("daemon.log:\n%s", log)
	}
	os.RemoveAll(p.home)
}

// run runs kin with args, with env added to the environment, and returns
// its stdout, stderr and exit code.
func (p *pm) run(env []string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "kin"), args...)
	cmd.Dir = p.dir
	cmd.Env = append(slices.Clip(p.env), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		// (No t.Fatal: run is called from other goroutines too.)
		return out.String(), fmt.Sprintf("running kin: %v", err), -1
	}
	return out.String(), errb.String(), code
}

// ok runs kin with args and fails the test unless it exits 0.
func (p *pm) ok(args ...string) string {
	p.t.Helper()
	return p.okEnv(nil, args...)
}

func (p *pm) okEnv(env []string, args ...string) string {
	p.t.Helper()
	out, errOut, code := p.run(env, args...)
	if code != 0 {
		p.t.Fatalf("kin %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// instance is an element of kin ls --json.
type instance struct {
	ID       int     `json:"id"`
	Name     string  `json:"name"`
	Instance int     `json:"instance"`
	PID      int     `json:"pid"`
	Status   string  `json:"status"`
	Restarts int     `json:"restarts"`
	UptimeMS int64   `json:"uptime_ms"`
	CPU      float64 `json:"cpu"`
	Memory   uint64  `json:"memory"`
	Port     int     `json:"port"`
	LastExit string  `json:"last_exit"`
	// RestartInMS is the backoff left before the next start.
	RestartInMS int64  `json:"restart_in_ms"`
	OutLog      string `json:"out_log"`
	ErrLog      string `json:"err_log"`
}

func (in instance) String() string {
	return fmt.Sprintf("%s[%d] id %d pid %d %s restarts %d last exit %q", in.Name, in.Instance, in.ID, in.PID, in.Status, in.Restarts, in.LastExit)
}

func parseInstances(t *testing.T, out string) []instance {
	t.Helper()
	var list []instance
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("not a JSON list of instances: %v\n%s", err, out)
	}
	return list
}

// ls returns every instance.
func (p *pm) ls() []instance {
	p.t.Helper()
	return parseInstances(p.t, p.ok("ls", "--json"))
}

// app returns the instances of app name, by index.
func (p *pm) app(name string) []instance {
	p.t.Helper()
	var out []instance
	for _, in := range p.ls() {
		if in.Name == name {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

// waitApp polls the instances of app name until cond holds, and returns them.
func (p *pm) waitApp(name, what string, timeout time.Duration, cond func([]instance) bool) []instance {
	p.t.Helper()
	var list []instance
	if !kintest.Poll(timeout, func() bool { list = p.app(name); return cond(list) }) {
		p.t.Fatalf("timed out after %v waiting for %s %s; instances: %v", timeout, name, what, list)
	}
	return list
}

// allOnline reports whether there are n instances, all online.
func allOnline(n int) func([]instance) bool {
	return func(list []instance) bool {
		if len(list) != n {
			return false
		}
		for _, in := range list {
			if in.Status != "online" || in.PID == 0 {
				return false
			}
		}
		return true
	}
}

func pids(list []instance) []int {
	var out []int
	for _, in := range list {
		out = append(out, in.PID)
	}
	return out
}

// logText returns what kin logs prints for args.
func (p *pm) logText(args ...string) string {
	p.t.Helper()
	return p.ok(append([]string{"logs"}, args...)...)
}

// homeProcs returns the live processes started for home: the daemon and the
// apps (and theirs) carry envMarker.
func homeProcs(home string) []int {
	marker := []byte("\x00" + envMarker + "=" + home + "\x00")
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if bytes.Contains(append([]byte{0}, b...), marker) && kintest.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// daemons returns the live `kin daemon` processes of home.
func daemons(home string) []int {
	var out []int
	for _, pid := range homeProcs(home) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 2 && filepath.Base(args[0]) == "kin" && args[1] == "daemon" {
			out = append(out, pid)
		}
	}
	return out
}

func describeProcs(list []int) string {
	var parts []string
	for _, pid := range list {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		parts = append(parts, fmt.Sprintf("%d %q", pid, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
	}
	return strings.Join(parts, ", ")
}

// testdata returns the absolute path of a file under testdata/pm.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "pm", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func example(t *testing.T, path string) string {
	return filepath.Join(kintest.RepoRoot(t), "examples", path)
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// askPID sends one request on a new connection and returns the pid the
// server answered with.
func askPID(url string) (int, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// waitServedBy polls url, a connection per request, until every one of want
// has answered; an answer from any other pid fails the test.
func waitServedBy(t *testing.T, url string, want []int) {
	t.Helper()
	seen := map[int]bool{}
	var lastErr error
	ok := kintest.Poll(30*time.Second, func() bool {
		pid, err := askPID(url)
		if err != nil {
			lastErr = err
			return false
		}
		if !slices.Contains(want, pid) {
			t.Fatalf("%s answered by pid %d, not one of the instances %v", url, pid, want)
		}
		seen[pid] = true
		return len(seen) == len(want)
	})
	if !ok {
		t.Fatalf("%s: only pids %v of %v answered (last error: %v)", url, seen, want, lastErr)
	}
}

// clusterServes starts command (a script or binary) with two instances on
// one port, and checks that both instances serve it.
func clusterServes(t *testing.T, name string, command string) {
	p := newPM(t)
	port := freePort(t)
	out := p.ok("start", command, "--name", name, "-i", "2", "--port", port, "--host", "127.0.0.1", "--json")
	list := parseInstances(t, out)
	if len(list) != 2 || list[0].Port != atoi(t, port) {
		t.Fatalf("kin start printed %v", list)
	}
	list = p.waitApp(name, "online", 30*time.Second, allOnline(2))
	if list[0].PID == list[1].PID {
		t.Fatalf("two instances, one pid: %v", list)
	}
	waitServedBy(t, "http://127.0.0.1:"+port+"/", pids(list))
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPMClusterNode: an unmodified Node HTTP server, started with
// kin start server.js -i 2 --port P, serves P from both instances.
func TestPMClusterNode(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	clusterServes(t, "web", example(t, "cluster-node/server.js"))
}

// TestPMClusterGo: the same with a Go server (cluster.Listen).
func TestPMClusterGo(t *testing.T) {
	t.Parallel()
	clusterServes(t, "goweb", filepath.Join(binDir, "cluster-go"))
}

// TestPMClusterPython: the same with a standard-library Python server
// (socket.socket(fileno=3)).
func TestPMClusterPython(t *testing.T) {
	t.Parallel()
	kintest.Python(t)
	clusterServes(t, "pyweb", example(t, "cluster-python/server.py"))
}

// TestPMReloadUnderLoad: two kin reloads of a 2-instance unmodified Node
// server while 50 keep-alive clients send requests lose none of them, and
// leave every instance with a new pid.
func TestPMReloadUnderLoad(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/"
	p.ok("start", example(t, "cluster-node/server.js"), "--name", "web", "-i", "2", "--port", port, "--host", "127.0.0.1")
	first := pids(p.waitApp("web", "online", 30*time.Second, allOnline(2)))
	waitServedBy(t, url, first)

	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	var (
		served, failed atomic.Int64
		mu             sync.Mutex
		byPID          = map[int]int{}
		errs           []string
		stop           = make(chan struct{})
		wg             sync.WaitGroup
	)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// POST: a request that was sent is never retried by the
				// transport, so a connection closed under it is a failure.
				resp, err := client.Post(url, "text/plain", strings.NewReader("ping"))
				var pid int
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil {
						pid, err = strconv.Atoi(string(b))
					}
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				mu.Lock()
				if err != nil {
					failed.Add(1)
					if len(errs) < 10 {
						errs = append(errs, err.Error())
					}
				} else {
					served.Add(1)
					byPID[pid]++
				}
				mu.Unlock()
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	atLeast := func(n int64) {
		t.Helper()
		kintest.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more requests served", n), func() bool { return served.Load() >= n })
	}
	atLeast(200)
	p.ok("reload", "web")
	second := pids(p.waitApp("web", "online", 30*time.Second, allOnline(2)))
	atLeast(served.Load() + 200)
	p.ok("reload", "web")
	final := p.waitApp("web", "online", 30*time.Second, allOnline(2))
	third := pids(final)
	// Keep the load on until the new instances serve it. (Not necessarily
	// both: the clients' connections are kept alive, and those that moved
	// during the last drain were accepted by whichever new instance woke
	// first on the shared socket.)
	kintest.WaitFor(t, 30*time.Second, "the reloaded instances to serve the load", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return byPID[third[0]]+byPID[third[1]] > 0
	})
	atLeast(served.Load() + 200)
	stopLoad()
	waitServedBy(t, url, third)

	t.Logf("%d requests served, %d failed; by pid: %v", served.Load(), failed.Load(), byPID)
	if failed.Load() > 0 {
		t.Errorf("%d requests failed during the reloads, e.g. %q", failed.Load(), errs)
	}
	for i, in := range final {
		if in.Restarts != 2 {
			t.Errorf("instance %d: %d restarts after two reloads, want 2", i, in.Restarts)
		}
	}
	all := append(append(slices.Clone(first), second...), third...)
	sort.Ints(all)
	if len(slices.Compact(all)) != 6 {
		t.Errorf("pids did not all change: %v, then %v, then %v", first, second, third)
	}
	// The replaced instances drained and exited.
	kintest.WaitGone(t, 30*time.Second, append(first, second...)...)
}

// TestPMReloadRollback: a reload whose new process crashes, or is not ready
// within the ready timeout, fails and leaves the old instances serving;
// a good reload then replaces them; kin delete stops them and frees the port.
func TestPMReloadRollback(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/"
	deploy := filepath.Join(t.TempDir(), "deploy")
	p.ok("start", testdata(t, "deploy.js"), "--name", "web", "-i", "2", "--port", port, "--host", "127.0.0.1",
		"--ready-timeout", "2s", "--env", "KINTEST_DEPLOY="+deploy)
	old := p.waitApp("web", "online", 30*time.Second, allOnline(2))
	waitServedBy(t, url, pids(old))

	for _, c := range []struct{ deploy, want string }{
		{"crash", "the new process ended before it was ready (exit 3); the old one keeps running"},
		{"hang", "the new process was not ready within 2s; the old one keeps running"},
	} {
		if err := os.WriteFile(deploy, []byte(c.deploy), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := p.run(nil, "reload", "web")
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("kin reload of a %s deploy: exit %d, %q; want 1 and %q", c.deploy, code, errOut, c.want)
		}
		now := p.app("web")
		for i := range now {
			if now[i].PID != old[i].PID || now[i].Status != "online" || now[i].Restarts != 0 {
				t.Errorf("after a failed reload (%s): %v, was %v", c.deploy, now[i], old[i])
			}
		}
		waitServedBy(t, url, pids(old))
	}

	if err := os.Remove(deploy); err != nil {
		t.Fatal(err)
	}
	p.ok("reload", "web")
	now := p.waitApp("web", "online", 30*time.Second, allOnline(2))
	if now[0].PID == old[0].PID || now[1].PID == old[1].PID {
		t.Errorf("a good reload kept the old pids: %v, was %v", now, old)
	}
	waitServedBy(t, url, pids(now))

	p.ok("delete", "web")
	if list := p.ls(); len(list) != 0 {
		t.Errorf("after kin delete: %v", list)
	}
	kintest.WaitGone(t, 10*time.Second, append(pids(old), pids(now)...)...)
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Errorf("the port is not free after kin delete: %v", err)
	} else {
		ln.Close()
	}
}

// TestPMKill9OneInstance: an instance killed with SIGKILL is restarted (a
// new pid, one restart); the other instance is not touched.
func TestPMKill9OneInstance(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	port := freePort(t)
	p.ok("start", example(t, "cluster-node/server.js"), "--name", "web", "-i", "2", "--port", port, "--host", "127.0.0.1")
	before := p.waitApp("web", "online", 30*time.Second, allOnline(2))
	victim, other := before[0], before[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := p.waitApp("web", "restarted", 30*time.Second, func(list []instance) bool {
		return allOnline(2)(list) && list[0].PID != victim.PID
	})
	if after[0].Restarts != 1 || after[0].ID != victim.ID || after[0].LastExit != "signal SIGKILL" {
		t.Errorf("killed instance after its restart: %v; want the same id, 1 restart, last exit signal SIGKILL", after[0])
	}
	if after[1].PID != other.PID || after[1].Restarts != 0 || after[1].Status != "online" {
		t.Errorf("the other instance was touched: %v, was %v", after[1], other)
	}
	waitServedBy(t, "http://127.0.0.1:"+port+"/", pids(after))
}

// TestPMCrashLoop: an app that exits 1 at once is restarted with growing
// delays (backoff 100 ms, doubling, ±20 % jitter) and is errored once its
// restart budget (5) is spent.
func TestPMCrashLoop(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	stamps := filepath.Join(t.TempDir(), "starts")
	p.okEnv([]string{"KINTEST_OUT=" + stamps}, "start", testdata(t, "crash.yaml"), "--no-wait")
	list := p.waitApp("crash", "errored", 30*time.Second, func(list []instance) bool {
		return len(list) == 1 && list[0].Status == "errored"
	})
	in := list[0]
	if in.Restarts != 5 || in.PID != 0 || !strings.Contains(in.LastExit, "exit 1") || !strings.Contains(in.LastExit, "restart budget") {
		t.Errorf("after the crash loop: %v; want 5 restarts, no pid, last exit 1 and the budget spent", in)
	}
	b, err := os.ReadFile(stamps)
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for _, f := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", stamps, b)
		}
		starts = append(starts, time.Unix(0, ns))
	}
	if len(starts) != 6 {
		t.Fatalf("the app ran %d times, want 6 (the first run and 5 restarts): %v", len(starts), starts)
	}
	// Each wait is at least the backoff with the least jitter: 80 ms, 160,
	// 320, 640, 1280. (How much longer the machine takes is not bounded.)
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		gaps = append(gaps, gap)
		if least := time.Duration(80<<(i-1)) * time.Millisecond; gap < least {
			t.Errorf("restart %d came %v after the previous start, want at least %v", i, gap, least)
		}
	}
	t.Logf("delays between starts: %v", gaps)
	if in.RestartInMS != 0 {
		t.Errorf("an errored instance has a restart scheduled: %v", in)
	}
}

// TestPMStopKillsChildren: stopping an app whose process started children
// (one of them ignoring SIGTERM) leaves none of them running by the time
// kin stop returns.
func TestPMStopKillsChildren(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	out := filepath.Join(t.TempDir(), "children")
	p.ok("start", testdata(t, "family.sh"), "--name", "family", "--kill-timeout", "1s", "--env", "KINTEST_OUT="+out)
	leader := p.waitApp("family", "online", 30*time.Second, allOnline(1))[0].PID
	var children []int
	kintest.WaitFor(t, 30*time.Second, "the app's children", func() bool {
		b, _ := os.ReadFile(out)
		children = nil
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				children = append(children, n)
			}
		}
		return len(children) == 2
	})
	for _, c := range children {
		if !kintest.Alive(c) {
			t.Fatalf("child %d is not running before the stop", c)
		}
	}
	p.ok("stop", "family")
	for _, pid := range append([]int{leader}, children...) {
		if kintest.Alive(pid) {
			t.Errorf("pid %d still running after kin stop returned (%s)", pid, describeProcs([]int{pid}))
		}
	}
	if in := p.app("family")[0]; in.Status != "stopped" || in.PID != 0 {
		t.Errorf("after kin stop: %v", in)
	}
}

// TestPMStopKillsEscapedChildren: a child that left the app's process
// group (setsid, as a daemonizing child does) does not outlive kin stop
// (it did: a stop signalled the group only). A double-forked one, orphaned
// before the stop, still does: kin finds the escaped ones among the app's
// descendants at stop time, and an orphan is none. That part is skipped
// until kin follows an app's processes otherwise (a cgroup per instance,
// or the daemon as child subreaper); KINTEST_KNOWN_BUGS=1 runs it.
func TestPMStopKillsEscapedChildren(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	out := filepath.Join(t.TempDir(), "children")
	p.ok("start", testdata(t, "escape.sh"), "--name", "escape", "--kill-timeout", "1s", "--env", "KINTEST_OUT="+out)
	var children []int
	kintest.WaitFor(t, 30*time.Second, "the app's children", func() bool {
		b, _ := os.ReadFile(out)
		children = nil
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				children = append(children, n)
			}
		}
		return len(children) == 2
	})
	child, orphan := children[0], children[1]
	p.ok("stop", "escape")
	if kintest.Alive(child) {
		t.Errorf("the app's setsid child %d still runs after kin stop returned", child)
	}
	if kintest.Alive(orphan) {
		if os.Getenv("KINTEST_KNOWN_BUGS") == "" {
			// Known; the cleanup would fail the test for it.
			syscall.Kill(orphan, syscall.SIGKILL)
			kintest.WaitGone(t, 10*time.Second, orphan)
			t.Skip("known: a double-forked child, orphaned before the stop, outlives kin stop (KINTEST_KNOWN_BUGS=1 fails on it)")
		}
		t.Errorf("the app's double-forked child %d still runs after kin stop returned", orphan)
	}
}

// TestPMStopNodeCluster: stopping a clustered Node app that has a SIGTERM
// handler of its own gives that handler the kill timeout to finish (it
// got one second: the preload's "drained" was followed by the stop signal
// and SIGKILL a second later); and an instance that never listened is
// stopped by its signal at once, without waiting the kill timeout for a
// drain that cannot come.
func TestPMStopNodeCluster(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	p.ok("start", testdata(t, "cleanup.js"), "--name", "db", "--port", freePort(t), "--host", "127.0.0.1")
	pid := p.waitApp("db", "online", 30*time.Second, allOnline(1))[0].PID
	p.ok("stop", "db")
	if in := p.app("db")[0]; in.Status != "stopped" || in.LastExit != "exit 0" {
		t.Errorf("after kin stop: %v; want stopped, last exit 0 (its own cleanup)", in)
	}
	kintest.WaitFor(t, 30*time.Second, "the app's cleanup line", func() bool {
		return strings.Contains(p.logText("db"), fmt.Sprintf("cleaned up %d", pid))
	})

	p.ok("start", testdata(t, "cleanup.js"), "--name", "stuck", "--port", freePort(t), "--host", "127.0.0.1",
		"--kill-timeout", "20s", "--env", "KINTEST_LISTEN=no", "--no-wait")
	pid = p.waitApp("stuck", "running", 30*time.Second, func(list []instance) bool {
		return len(list) == 1 && list[0].PID != 0
	})[0].PID
	// Stop it once node runs its code: the SIGTERM line proves it got the
	// signal rather than being killed.
	kintest.WaitFor(t, 30*time.Second, "node to start", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return bytes.Contains(b, []byte("cleanup.js"))
	})
	began := time.Now()
	p.ok("stop", "stuck")
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("kin stop of an instance that never listened took %v", took)
	}
}

// TestPMMaxMemory: an instance whose memory goes over --max-memory is
// restarted, and says why.
func TestPMMaxMemory(t *testing.T) {
	t.Parallel()
	kintest.Python(t)
	p := newPM(t)
	p.ok("start", testdata(t, "hog.py"), "--name", "hog", "--max-memory", "50M")
	first := p.waitApp("hog", "online", 30*time.Second, allOnline(1))[0]
	in := p.waitApp("hog", "restarted for its memory", 30*time.Second, func(list []instance) bool {
		return len(list) == 1 && list[0].Restarts >= 1 && list[0].PID != 0
	})[0]
	if !strings.HasPrefix(in.LastExit, "max_memory") || in.PID == first.PID {
		t.Errorf("after the memory restart: %v; want a new pid and last exit max_memory…", in)
	}
}

// TestPMConcurrentFirstCalls: kin commands run at once against a home with
// no daemon all succeed, and exactly one daemon serves the home.
func TestPMConcurrentFirstCalls(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	for round := range 3 {
		p := newHome(t)
		var wg sync.WaitGroup
		errs := make([]string, 4)
		var started atomic.Int32
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				args := []string{"start", testdata(t, "idle.js"), "--name", fmt.Sprintf("app%d", i)}
				if i == 3 {
					args = []string{"ls"}
				}
				out, errOut, code := p.run(nil, args...)
				if code != 0 {
					errs[i] = fmt.Sprintf("kin %v: exit %d: %s%s", args, code, out, errOut)
				}
				if strings.Contains(errOut, "daemon started") {
					started.Add(1)
				}
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != "" {
				t.Errorf("round %d: %s", round, e)
			}
		}
		// The daemons that lost the race exit on their own.
		var ds []int
		if !kintest.Poll(10*time.Second, func() bool { ds = daemons(p.home); return len(ds) == 1 }) {
			t.Fatalf("round %d: daemons running for one home: %s", round, describeProcs(ds))
		}
		if n := started.Load(); n != 1 {
			t.Errorf("round %d: %d commands said they started the daemon, want 1", round, n)
		}
		if list := p.ls(); len(list) != 3 {
			t.Errorf("round %d: %d instances after three starts: %v", round, len(list), list)
		}
		if again := daemons(p.home); !slices.Equal(again, ds) {
			t.Errorf("round %d: daemons were %v, now %v", round, ds, again)
		}
	}
}

// TestPMResurrect: after kin save and kin kill, kin resurrect (starting a
// new daemon) brings the same apps back, in the same states: the stopped
// app stays stopped; cluster apps serve their ports again, and the stopped
// one does once started.
func TestPMResurrect(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	server := example(t, "cluster-node/server.js")
	sitePort, batchPort := freePort(t), freePort(t)
	p.ok("start", testdata(t, "idle.js"), "--name", "web", "-i", "2", "--env", "MODE=saved")
	p.ok("start", server, "--name", "site", "-i", "2", "--port", sitePort, "--host", "127.0.0.1")
	p.ok("start", server, "--name", "batch", "--port", batchPort, "--host", "127.0.0.1")
	p.ok("stop", "batch")
	p.waitApp("web", "online", 30*time.Second, allOnline(2))
	p.waitApp("site", "online", 30*time.Second, allOnline(2))
	before := p.ls()
	daemon := daemons(p.home)
	p.ok("save")
	if out := p.ok("kill"); !strings.Contains(out, "daemon stopped") {
		t.Errorf("kin kill: %q", out)
	}
	kintest.WaitGone(t, 10*time.Second, append(pids(before), daemon...)...)
	if out := p.ok("ls"); !strings.Contains(out, "no apps") {
		t.Errorf("kin ls with no daemon: %q", out)
	}

	p.ok("resurrect")
	p.waitApp("web", "online", 30*time.Second, allOnline(2))
	site := p.waitApp("site", "online", 30*time.Second, allOnline(2))
	after := p.ls()
	if len(after) != len(before) {
		t.Fatalf("before: %v\nafter resurrect: %v", before, after)
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.Name != b.Name || a.Instance != b.Instance || a.Status != b.Status {
			t.Errorf("instance %d: %v before, %v after resurrect", i, b, a)
		}
		if a.PID != 0 && slices.Contains(pids(before), a.PID) {
			t.Errorf("instance %v kept its old pid", a)
		}
	}
	if d := daemons(p.home); len(d) != 1 || slices.Equal(d, daemon) {
		t.Errorf("daemons after resurrect: %v (before: %v)", d, daemon)
	}
	// The saved env came back too.
	for _, in := range after[:2] {
		want := fmt.Sprintf("start %d MODE=saved", in.PID)
		kintest.WaitFor(t, 30*time.Second, "web printing "+want, func() bool {
			return strings.Contains(p.logText("web"), want)
		})
	}
	waitServedBy(t, "http://127.0.0.1:"+sitePort+"/", pids(site))
	p.ok("start", "batch")
	batch := p.waitApp("batch", "online", 30*time.Second, allOnline(1))
	waitServedBy(t, "http://127.0.0.1:"+batchPort+"/", pids(batch))
}

// TestPMBadConfig: a malformed config file is refused with exit 2 and
// errors naming the file, the line and the key, and changes nothing.
func TestPMBadConfig(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	p.ok("start", testdata(t, "idle.js"), "--name", "keep")
	before := p.waitApp("keep", "online", 30*time.Second, allOnline(1))
	p.dir = filepath.Dir(testdata(t, "bad.yaml"))
	out, errOut, code := p.run(nil, "start", "bad.yaml")
	if code != 2 {
		t.Errorf("kin start bad.yaml: exit %d, want 2", code)
	}
	for _, want := range []string{
		`bad.yaml:6:5: apps[0].instances: want a number or "max", got "lots"`,
		`bad.yaml:7:5: apps[0].restart_dealy: unknown key (did you mean restart_delay?)`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if out != "" {
		t.Errorf("stdout: %q", out)
	}
	after := p.ls()
	if len(after) != 1 || after[0].PID != before[0].PID || after[0].Restarts != 0 || after[0].Status != "online" {
		t.Errorf("the running app was touched: %v, was %v", after, before)
	}
}

// TestPMConfigChange: kin start of a changed config file: a new instance
// count alone scales the app and leaves the running instances alone (it
// restarted them all, the new ones included); any other change reloads
// the instances of a cluster app, and the env is replaced, not merged.
func TestPMConfigChange(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/"
	file := filepath.Join(t.TempDir(), "kin.yaml")
	write := func(instances int, env string) {
		t.Helper()
		y := fmt.Sprintf("apps:\n  - name: web\n    script: %s\n    instances: %d\n    port: %s\n    host: 127.0.0.1\n    env: {%s}\n",
			example(t, "cluster-node/server.js"), instances, port, env)
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1, "MODE: a, EXTRA: x")
	p.ok("start", file)
	first := p.waitApp("web", "online", 30*time.Second, allOnline(1))

	write(3, "MODE: a, EXTRA: x")
	p.ok("start", file)
	scaled := p.waitApp("web", "online", 30*time.Second, allOnline(3))
	for _, in := range scaled {
		if in.Restarts != 0 || in.Instance == 0 && in.PID != first[0].PID {
			t.Errorf("after scaling up by config: %v (instance 0 was %v)", in, first[0])
		}
	}
	waitServedBy(t, url, pids(scaled))

	write(2, "MODE: b")
	p.ok("start", file)
	changed := p.waitApp("web", "online", 30*time.Second, allOnline(2))
	for i, in := range changed {
		if in.Restarts != 1 || in.PID == scaled[i].PID {
			t.Errorf("after a changed env: %v, was %v; want a reload", in, scaled[i])
		}
	}
	kintest.WaitGone(t, 30*time.Second, pids(scaled)...)
	waitServedBy(t, url, pids(changed))
	var apps []struct {
		Spec struct{ Env map[string]string }
	}
	if err := json.Unmarshal([]byte(p.ok("describe", "web", "--json", "--env")), &apps); err != nil || len(apps) != 1 {
		t.Fatalf("kin describe web --json --env: %v %v", apps, err)
	}
	if env := apps[0].Spec.Env; env["MODE"] != "b" || env["EXTRA"] != "" {
		t.Errorf("the env was merged, not replaced: MODE=%q EXTRA=%q", env["MODE"], env["EXTRA"])
	}
}

// TestPMLogs: log files rotate at KIN_LOG_MAX_SIZE and keep KIN_LOG_KEEP
// rotated files; kin logs prints the last lines, as text or JSON; kin
// flush empties the logs, and lines written afterwards are logged.
func TestPMLogs(t *testing.T) {
	t.Parallel()
	kintest.Python(t)
	p := newHome(t)
	limits := []string{"KIN_LOG_MAX_SIZE=64K", "KIN_LOG_KEEP=2"}
	if raceEnabled {
		p.startRaceDaemon(limits)
	}
	// The first command starts the daemon, with its environment.
	p.okEnv(limits, "start", testdata(t, "chatty.py"), "--name", "chatty")
	kintest.WaitFor(t, 30*time.Second, "the app's last line", func() bool {
		return strings.HasSuffix(p.logText("chatty", "--out", "--lines", "1"), "  done\n")
	})
	in := p.app("chatty")[0]
	logs, _ := filepath.Glob(in.OutLog + "*")
	sort.Strings(logs)
	want := []string{in.OutLog, in.OutLog + ".1", in.OutLog + ".2"}
	if !slices.Equal(logs, want) {
		t.Errorf("log files %v, want %v (two rotated files kept)", logs, want)
	}
	for _, f := range logs {
		if st, err := os.Stat(f); err != nil || st.Size() > 64<<10 {
			t.Errorf("%s: %v bytes (%v), over 64K", f, st.Size(), err)
		}
	}

	text := p.logText("chatty", "--out", "--lines", "3")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "chatty[0] out  line 4998 x") ||
		!strings.Contains(lines[1], "line 4999") || !strings.HasSuffix(lines[2], "chatty[0] out  done") {
		t.Errorf("kin logs --lines 3:\n%s", text)
	}
	if text := p.logText("chatty", "--err"); !strings.HasSuffix(text, "chatty[0] err  oops on stderr\n") || strings.Count(text, "\n") != 1 {
		t.Errorf("kin logs --err:\n%s", text)
	}
	text = p.logText("chatty", "--out", "--lines", "2", "--json")
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("kin logs --json line %q: %v", l, err)
		}
		recs = append(recs, m)
	}
	if len(recs) != 2 || recs[1]["line"] != "done" || recs[1]["app"] != "chatty" || recs[1]["stream"] != "out" ||
		recs[1]["instance"] != 0.0 || recs[1]["time"] == nil {
		t.Errorf("kin logs --lines 2 --json:\n%s", text)
	}

	if out := p.ok("flush", "chatty"); !strings.Contains(out, "flushed 2 log files") {
		t.Errorf("kin flush: %q", out)
	}
	logs, _ = filepath.Glob(filepath.Join(p.home, "logs", "*"))
	for _, f := range logs {
		if st, err := os.Stat(f); err != nil || st.Size() != 0 || strings.Contains(f, ".log.") {
			t.Errorf("after kin flush: %s (%v)", f, err)
		}
	}
	if text := p.logText("chatty"); text != "" {
		t.Errorf("kin logs after kin flush:\n%s", text)
	}
	// The app goes on being logged after the flush.
	p.ok("signal", "SIGUSR2", "chatty")
	kintest.WaitFor(t, 30*time.Second, "the line printed on SIGUSR2", func() bool {
		return strings.Contains(p.logText("chatty"), fmt.Sprintf("SIGUSR2 %d", in.PID))
	})
}

// TestPMEcosystem: a PM2 ecosystem file with two apps started with
// --env production: both online, and the apps see env merged with
// env_production.
func TestPMEcosystem(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newPM(t)
	p.ok("start", testdata(t, "ecosystem.config.js"), "--env", "production")
	p.waitApp("api", "online", 30*time.Second, allOnline(1))
	p.waitApp("worker", "online", 30*time.Second, allOnline(2))
	for _, c := range []struct{ app, want string }{
		{"api", "MODE=production SHARED=both EXTRA= KIN_APP_NAME=api KIN_INSTANCE=0"},
		{"worker", "MODE=production SHARED= EXTRA=prod-only KIN_APP_NAME=worker KIN_INSTANCE=0"},
		{"worker", "MODE=production SHARED= EXTRA=prod-only KIN_APP_NAME=worker KIN_INSTANCE=1"},
	} {
		kintest.WaitFor(t, 30*time.Second, c.app+" printing "+c.want, func() bool {
			return strings.Contains(p.logText(c.app), c.want)
		})
	}

	// describe hides env values unless --env.
	out := p.ok("describe", "api")
	if strings.Contains(out, "production") || !strings.Contains(out, "variables") || !strings.Contains(out, "ecosystem.config.js") {
		t.Errorf("kin describe api shows env values, or not the app:\n%s", out)
	}
	out = p.ok("describe", "api", "--json")
	if strings.Contains(out, "production") || !strings.Contains(out, `"MODE":"(hidden`) {
		t.Errorf("kin describe api --json shows env values:\n%s", out)
	}
	out = p.ok("describe", "api", "--env")
	if !strings.Contains(out, "MODE") || !strings.Contains(out, "production") {
		t.Errorf("kin describe api --env does not show MODE=production:\n%s", out)
	}
}

// TestPMCommands: kin ls --json fields, exit codes, kin scale up and down,
// kin signal.
func TestPMCommands(t *testing.T) {
	t.Parallel()
	kintest.Node(t)
	p := newHome(t)

	// No daemon: ls says so and succeeds, stop fails clearly, and neither
	// starts a daemon.
	if out := p.ok("ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("kin ls --json with no daemon: %q", out)
	}
	_, errOut, code := p.run(nil, "stop", "web")
	if code != 1 || !strings.Contains(errOut, "no kin daemon is running") {
		t.Errorf("kin stop with no daemon: exit %d, %q", code, errOut)
	}
	if d := daemons(p.home); len(d) != 0 {
		t.Errorf("kin ls and kin stop started a daemon: %v", d)
	}
	// A bad log limit stops the daemon before it takes the home.
	for _, kv := range []string{"KIN_LOG_MAX_SIZE=lots", "KIN_LOG_KEEP=-1"} {
		if _, errOut, code := p.run([]string{kv}, "daemon"); code != 2 || !strings.Contains(errOut, kv) {
			t.Errorf("kin daemon with %s: exit %d, %q", kv, code, errOut)
		}
	}

	p.ok("start", testdata(t, "idle.js"), "--name", "web")
	p.waitApp("web", "online", 30*time.Second, allOnline(1))

	// Every field of kin ls --json, memory measured once sampled.
	var raw []map[string]any
	kintest.WaitFor(t, 30*time.Second, "a memory sample", func() bool {
		raw = nil
		if err := json.Unmarshal([]byte(p.ok("ls", "--json")), &raw); err != nil {
			t.Fatal(err)
		}
		return len(raw) == 1 && raw[0]["memory"].(float64) > 0
	})
	for _, k := range []string{"id", "name", "instance", "pid", "status", "restarts", "uptime_ms", "cpu", "memory"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("kin ls --json has no %q: %v", k, raw[0])
		}
	}
	if raw[0]["name"] != "web" || raw[0]["status"] != "online" || raw[0]["pid"].(float64) == 0 || raw[0]["uptime_ms"].(float64) <= 0 {
		t.Errorf("kin ls --json: %v", raw[0])
	}

	// An unknown app or id is a usage error (exit 2), for every command.
	for _, args := range [][]string{
		{"stop", "nosuch"}, {"restart", "nosuch"}, {"reload", "nosuch"}, {"delete", "nosuch"},
		{"describe", "nosuch"}, {"logs", "nosuch"}, {"scale", "nosuch", "2"}, {"signal", "SIGUSR2", "nosuch"},
		{"stop", "99"}, {"flush", "nosuch"},
	} {
		if _, errOut, code := p.run(nil, args...); code != 2 || !(strings.Contains(errOut, "nosuch") || strings.Contains(errOut, "99")) {
			t.Errorf("kin %s: exit %d, %q; want 2 and the name", strings.Join(args, " "), code, errOut)
		}
	}
	if _, errOut, code := p.run(nil, "signal", "SIGBOGUS", "web"); code != 2 {
		t.Errorf("kin signal SIGBOGUS: exit %d, %q", code, errOut)
	}

	// Scale up, then down: the surplus instances are stopped.
	one := p.app("web")[0]
	list := parseInstances(t, p.ok("scale", "web", "3", "--json"))
	if len(list) != 3 {
		t.Fatalf("kin scale web 3 printed %v", list)
	}
	list = p.waitApp("web", "online", 30*time.Second, allOnline(3))
	if list[0].PID != one.PID {
		t.Errorf("scaling up replaced instance 0: %v, was %v", list[0], one)
	}
	ids := map[int]bool{}
	for _, in := range list {
		ids[in.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("ids not unique: %v", list)
	}
	p.ok("scale", "web", "1")
	after := p.app("web")
	if len(after) != 1 || after[0].PID != one.PID {
		t.Errorf("after kin scale web 1: %v", after)
	}
	kintest.WaitGone(t, 10*time.Second, list[1].PID, list[2].PID)

	// kin start NAME starts the app as it is: a running one is left alone;
	// a flag that would change it is refused rather than taking NAME for a
	// program (which replaced the app's command).
	p.ok("start", "web")
	if now := p.app("web"); len(now) != 1 || now[0].PID != one.PID || now[0].Restarts != 0 {
		t.Errorf("kin start of the running app web: %v, was %v", now, one)
	}
	if _, errOut, code := p.run(nil, "start", "web", "-i", "2"); code != 2 || !strings.Contains(errOut, "web is an app already") {
		t.Errorf("kin start web -i 2: exit %d, %q", code, errOut)
	}

	// kin signal reaches the app's process.
	p.ok("signal", "SIGUSR2", "web")
	kintest.WaitFor(t, 30*time.Second, "the app's line for SIGUSR2", func() bool {
		return strings.Contains(p.logText("web"), fmt.Sprintf("SIGUSR2 %d", one.PID))
	})
}
