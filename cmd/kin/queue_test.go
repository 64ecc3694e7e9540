package main

// Queue tests: the real kin binary and daemon with its embedded NATS
// server, real Node workers (testdata/queue/worker.js speaks the task
// protocol with no library), driven through the CLI.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// stats is kin queue stats --json.
type stats struct {
	Waiting, Active, Delayed, Completed, Failed, Dead uint64
}

func (p *pm) queueStats(q string) stats {
	p.t.Helper()
	var st stats
	if err := json.Unmarshal([]byte(p.ok("queue", "stats", q, "--json")), &st); err != nil {
		p.t.Fatal(err)
	}
	return st
}

// worker is a foreground `kin queue work` run by a test.
type queueWorker struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startWorker runs kin queue work with args; it is interrupted (SIGINT) at
// the end of the test if still running.
func (p *pm) startWorker(env []string, args ...string) *queueWorker {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kin"), append([]string{"queue", "work"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(slices.Clip(p.env), env...)
	w := &queueWorker{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = w.stderr, w.stderr
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() { w.done <- cmd.Wait() }()
	p.t.Cleanup(func() { w.stop(p.t) })
	return w
}

// stop interrupts the worker and waits for it (at most 60 s).
func (w *queueWorker) stop(t *testing.T) error {
	if w.cmd.ProcessState != nil {
		return nil
	}
	w.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-w.done:
		w.done <- err
		return err
	case <-time.After(60 * time.Second):
		w.cmd.Process.Kill()
		t.Errorf("kin queue work still running 60 s after SIGINT; its output:\n%s", w.stderr)
		return <-w.done
	}
}

func queueWorkerJS(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "queue", "worker.js"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeJobs writes n jobs' data, tagged from first on, one per line.
func writeJobs(t *testing.T, path string, first, n int, extra string) {
	t.Helper()
	var b strings.Builder
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, `{"n":%d,"tag":%d%s}`+"\n", i, i, extra)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// completions counts each tag's lines in the worker's DONE_FILE.
func completions(t *testing.T, path string) map[int]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, l := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("DONE_FILE line %q", l)
		}
		out[n]++
	}
	return out
}

// checkAllDone fails the test unless every tag in [0, n) completed;
// duplicates (at-least-once) are reported.
func checkAllDone(t *testing.T, done map[int]int, n int) {
	t.Helper()
	var missing []int
	dups := 0
	for i := 0; i < n; i++ {
		switch c := done[i]; {
		case c == 0:
			missing = append(missing, i)
		case c > 1:
			dups += c - 1
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d jobs never completed, e.g. %v", len(missing), n, missing[:min(10, len(missing))])
	}
	t.Logf("%d jobs completed, %d duplicate runs (at least once)", n-len(missing), dups)
}

func TestQueueCLI(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	workerJS := queueWorkerJS(t)

	// Adding: an id per job, idempotency keys, bad input touches nothing.
	id := strings.TrimSpace(p.ok("queue", "add", "jobs", `{"n":1}`))
	if len(id) != 22 {
		t.Errorf("generated id %q", id)
	}
	for range 2 {
		if got := strings.TrimSpace(p.ok("queue", "add", "jobs", `{"n":2}`, "--id", "order-17")); got != "order-17" {
			t.Errorf("--id order-17 printed %q", got)
		}
	}
	if _, errOut, code := p.run(nil, "queue", "add", "jobs", `{n:1}`); code != 2 || !strings.Contains(errOut, "is no JSON") {
		t.Errorf("bad JSON: exit %d, %s", code, errOut)
	}
	file := filepath.Join(p.dir, "jobs.jsonl")
	os.WriteFile(file, []byte("{\"n\":3}\n\n{\"n\":4}\nnope\n"), 0o600)
	if _, errOut, code := p.run(nil, "queue", "add", "jobs", "-f", file); code != 2 || !strings.Contains(errOut, "jobs.jsonl:4: not JSON") || !strings.Contains(errOut, "nothing was added") {
		t.Errorf("bad line: exit %d, %s", code, errOut)
	}
	if _, errOut, code := p.run(nil, "queue", "add", "jobs", "--priority", "urgent"); code != 2 || !strings.Contains(errOut, "want high, normal or low") {
		t.Errorf("bad priority: exit %d, %s", code, errOut)
	}
	if st := p.queueStats("jobs"); st.Waiting != 2 {
		t.Errorf("after 3 adds, 2 of one id, and bad ones: %+v, want 2 waiting", st)
	}
	os.WriteFile(file, []byte("{\"n\":3}\n\n{\"n\":4}\n"), 0o600)
	if ids := strings.Fields(p.ok("queue", "add", "jobs", "-f", file)); len(ids) != 2 {
		t.Errorf("-f with 2 jobs printed %q", ids)
	}
	if out := p.ok("queue", "get", "jobs", "order-17"); !strings.Contains(out, "state     waiting") || !strings.Contains(out, `data      {"n":2}`) {
		t.Errorf("get of a waiting job:\n%s", out)
	}
	if _, errOut, code := p.run(nil, "queue", "get", "jobs", "nope"); code != 2 || !strings.Contains(errOut, "not found") {
		t.Errorf("get of no such job: exit %d, %s", code, errOut)
	}

	// Working: Node workers take the four jobs, then more.
	w := p.startWorker(nil, "jobs", "-c", "2", "--", workerJS)
	kintest.WaitFor(t, 30*time.Second, "4 jobs completed", func() bool { return p.queueStats("jobs").Completed == 4 })
	if out := strings.TrimSpace(p.ok("queue", "add", "jobs", `{"n":21}`, "--wait")); out != `{"double":42}` {
		t.Errorf("add --wait printed %q", out)
	}
	out, errOut, code := p.run(nil, "queue", "add", "jobs", `{"fail":true}`, "--id", "bad-1", "--attempts", "2", "--backoff", "10ms", "--wait")
	if code != 1 || !strings.Contains(out, "dead: ") || !strings.Contains(out, "asked to fail") || !strings.Contains(errOut, "1 of 1 jobs ended dead") {
		t.Errorf("a failing job with --wait: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var job struct {
		State   string
		Attempt int
		Error   struct{ Message, Cause string }
	}
	if err := json.Unmarshal([]byte(p.ok("queue", "get", "jobs", "bad-1", "--json")), &job); err != nil {
		t.Fatal(err)
	}
	if job.State != "dead" || job.Attempt != 2 || job.Error.Cause != "error" || !strings.Contains(job.Error.Message, "asked to fail") {
		t.Errorf("dead job's record: %+v", job)
	}
	if st := p.queueStats("jobs"); st.Completed != 5 || st.Dead != 1 || st.Failed < 1 {
		t.Errorf("stats %+v, want 5 completed, 1 dead, a failed attempt", st)
	}
	if out := p.ok("queue", "retry", "jobs", "--dead"); !strings.Contains(out, "1 dead job(s) sent back") {
		t.Errorf("retry --dead: %s", out)
	}
	// It fails again, twice, and is dead again.
	kintest.WaitFor(t, 30*time.Second, "the retried job dead again", func() bool {
		var j struct{ State string }
		json.Unmarshal([]byte(p.ok("queue", "get", "jobs", "bad-1", "--json")), &j)
		return j.State == "dead" && p.queueStats("jobs").Dead == 1
	})
	if _, errOut, code := p.run(nil, "queue", "retry", "jobs", id); code != 2 || !strings.Contains(errOut, "not dead") {
		t.Errorf("retry of a completed job: exit %d, %s", code, errOut)
	}

	// Events: the kept ones, as lines or JSON.
	lines := p.ok("queue", "events", "jobs")
	if strings.Count(lines, " completed ") != 5 || !strings.Contains(lines, " dead ") || !strings.Contains(lines, `{"double":42}`) {
		t.Errorf("events:\n%s", lines)
	}
	var types []string
	for _, l := range strings.Split(strings.TrimSpace(p.ok("queue", "events", "jobs", "--json", "--type", "dead")), "\n") {
		var ev struct{ Type string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("events --json line %q: %v", l, err)
		}
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{"dead", "dead"}) {
		t.Errorf("events --type dead: %q", types)
	}

	// ls, purge, and a clean stop.
	var ls []struct {
		Name      string
		Completed uint64
	}
	if err := json.Unmarshal([]byte(p.ok("queue", "ls", "--json")), &ls); err != nil || len(ls) != 1 || ls[0].Name != "jobs" || ls[0].Completed != 5 {
		t.Errorf("ls --json: %+v (%v)", ls, err)
	}
	if out := p.ok("queue", "ls"); !strings.HasPrefix(out, "queue  waiting  active  delayed  completed  failed  dead\njobs ") {
		t.Errorf("ls:\n%s", out)
	}
	if err := w.stop(t); err != nil {
		t.Errorf("kin queue work after SIGINT: %v\n%s", err, w.stderr)
	}
	if !strings.Contains(w.stderr.String(), "jobs: 5 completed, 2 failed attempts, 2 dead") {
		t.Errorf("worker's summary:\n%s", w.stderr)
	}
	p.ok("queue", "add", "jobs", `{"n":1}`, "--delay", "1h")
	p.ok("queue", "purge", "jobs")
	if st := p.queueStats("jobs"); st.Waiting+st.Delayed+st.Dead+st.Completed != 0 {
		t.Errorf("after purge: %+v", st)
	}
	if _, errOut, code := p.run(nil, "queue", "stats", "nosuch"); code != 2 || !strings.Contains(errOut, "no such queue") {
		t.Errorf("stats of no such queue: exit %d, %s", code, errOut)
	}
}

// An app with a queue mapping runs kin queue work under the daemon.
func TestQueueApp(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	cfg := filepath.Join(p.dir, "kin.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("apps:\n  - name: doubler\n    script: %s\n    instances: 2\n    queue: {name: work, concurrency: 2, timeout: 5s}\n", queueWorkerJS(t))), 0o600)
	p.ok("start", cfg)
	if out := strings.TrimSpace(p.ok("queue", "add", "work", `{"n":4}`, "--wait")); out != `{"double":8}` {
		t.Errorf("add --wait printed %q", out)
	}
	// Both instances, each with two Node workers, are kin queue work.
	list := p.app("doubler")
	if len(list) != 2 {
		t.Fatalf("instances: %v", list)
	}
	for _, in := range list {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", in.PID))
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if !strings.Contains(cmdline, "queue work work --drain-timeout 4s -c 2 --timeout 5s -- node ") {
			t.Errorf("instance %d runs %q", in.Instance, cmdline)
		}
	}
	if out := p.ok("describe", "doubler"); !strings.Contains(out, "queue      work (concurrency 2, timeout 5s)") {
		t.Errorf("describe:\n%s", out)
	}
	p.ok("stop", "doubler")
	kintest.WaitFor(t, 10*time.Second, "no worker left after stop", func() bool {
		for _, pid := range homeProcs(p.home) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if bytes.Contains(b, []byte("worker.js")) || bytes.Contains(b, []byte("queue\x00work")) {
				return false
			}
		}
		return true
	})
}

// The daemon, and its embedded NATS server with it, killed with SIGKILL
// while Node workers run jobs: the worker brings the daemon back (same store,
// same port), nothing acknowledged is lost, and the rest completes.
func TestQueueDaemonKilled(t *testing.T) {
	t.Parallel()
	p := newHome(t) // the CLI starts (and restarts) the daemon
	const n = 3000
	jobs := filepath.Join(p.dir, "jobs.jsonl")
	writeJobs(t, jobs, 0, n/2, "")
	if ids := strings.Fields(p.ok("queue", "add", "dur", "-f", jobs)); len(ids) != n/2 {
		t.Fatalf("added %d jobs", len(ids))
	}
	portFile := filepath.Join(p.home, "nats", "port")
	port, err := os.ReadFile(portFile)
	if err != nil {
		t.Fatalf("the embedded server's port is not kept: %v", err)
	}
	doneFile := filepath.Join(p.dir, "done")
	w := p.startWorker([]string{"DONE_FILE=" + doneFile}, "dur", "-c", "2", "-q", "--", queueWorkerJS(t))
	kintest.WaitFor(t, 60*time.Second, "a third of the jobs done", func() bool { return len(completions(t, doneFile)) >= n/6 })
	old := daemons(p.home)
	if len(old) != 1 {
		t.Fatalf("daemons: %v", old)
	}
	syscall.Kill(old[0], syscall.SIGKILL)
	kintest.WaitFor(t, 10*time.Second, "the daemon gone", func() bool { return !kintest.Alive(old[0]) })
	// The worker revives the daemon by itself; adding more needs it too.
	kintest.WaitFor(t, 60*time.Second, "a new daemon", func() bool {
		d := daemons(p.home)
		return len(d) == 1 && d[0] != old[0]
	})
	writeJobs(t, jobs, n/2, n/2, "")
	if ids := strings.Fields(p.ok("queue", "add", "dur", "-f", jobs)); len(ids) != n/2 {
		t.Fatalf("added %d jobs after the restart", len(ids))
	}
	if now, _ := os.ReadFile(portFile); !bytes.Equal(now, port) {
		t.Errorf("the restarted server's port %q, want %q", now, port)
	}
	kintest.WaitFor(t, 120*time.Second, "every job done", func() bool { return len(completions(t, doneFile)) == n })
	checkAllDone(t, completions(t, doneFile), n)
	var st stats
	if !kintest.Poll(30*time.Second, func() bool {
		st = p.queueStats("dur")
		return st.Completed >= n && st.Waiting == 0 && st.Active == 0 && st.Dead == 0
	}) {
		t.Errorf("stats %+v, want %d completed and nothing waiting, active or dead", st, n)
	}
	if err := w.stop(t); err != nil {
		t.Errorf("worker: %v\n%s", err, w.stderr)
	}
}

// Three daemons whose embedded NATS servers form one cluster (nats.cluster
// in a config file), a queue replicated three times; one daemon is killed
// with SIGKILL mid-run and the other two finish every job.
func TestQueueCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("three NATS nodes: not in -short")
	}
	ports := []string{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, port := range ports {
		routes = append(routes, "127.0.0.1:"+port)
	}
	nodes := make([]*pm, 3)
	for i := range nodes {
		nodes[i] = newHome(t)
		cfg := filepath.Join(nodes[i].dir, "kin.yaml")
		os.WriteFile(cfg, []byte(fmt.Sprintf("nats:\n  replicas: 3\n  cluster:\n    name: kintest\n    listen: 127.0.0.1:%s\n    routes: [%s]\n",
			ports[i], strings.Join(routes, ", "))), 0o600)
		if out := nodes[i].ok("start", cfg); !strings.Contains(out, "nats settings applied") {
			t.Errorf("node %d: kin start: %s", i, out)
		}
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	const n = 1500
	jobs := filepath.Join(a.dir, "jobs.jsonl")
	writeJobs(t, jobs, 0, n/2, `,"sleep":1`)
	// The first add waits for the cluster's JetStream to elect its leader.
	if ids := strings.Fields(a.ok("queue", "add", "rq", "-f", jobs)); len(ids) != n/2 {
		t.Fatalf("added %d jobs", len(ids))
	}
	doneFile := filepath.Join(t.TempDir(), "done")
	env := []string{"DONE_FILE=" + doneFile}
	b.startWorker(env, "rq", "-c", "2", "-q", "--", queueWorkerJS(t))
	c.startWorker(env, "rq", "-c", "2", "-q", "--", queueWorkerJS(t))
	kintest.WaitFor(t, 90*time.Second, "a third of the jobs done", func() bool { return len(completions(t, doneFile)) >= n/6 })
	d := daemons(a.home)
	if len(d) != 1 {
		t.Fatalf("node 0 daemons: %v", d)
	}
	syscall.Kill(d[0], syscall.SIGKILL)
	kintest.WaitFor(t, 10*time.Second, "node 0 gone", func() bool { return !kintest.Alive(d[0]) })
	writeJobs(t, jobs, n/2, n/2, `,"sleep":1`)
	if ids := strings.Fields(b.ok("queue", "add", "rq", "-f", jobs)); len(ids) != n/2 {
		t.Fatalf("added %d jobs on node 1 after node 0 died", len(ids))
	}
	kintest.WaitFor(t, 180*time.Second, "every job done on the two nodes left", func() bool { return len(completions(t, doneFile)) == n })
	checkAllDone(t, completions(t, doneFile), n)
	if st := c.queueStats("rq"); st.Waiting != 0 || st.Dead != 0 {
		t.Errorf("node 2 stats: %+v", st)
	}
}

// kin bus pub and sub, and an app on the bus through its IPC channel.
func TestBus(t *testing.T) {
	t.Parallel()
	p := newPM(t)
	// An unmodified-protocol Node app: subscribes to greet.*, answers on greeted.
	p.ok("start", filepath.Join(kintest.RepoRoot(t), "examples", "bus-node", "greeter.js"), "--name", "greeter", "--wait-ready")

	sub := exec.Command(filepath.Join(binDir, "kin"), "bus", "sub", "greeted", "-n", "2", "--json", "--timeout", "60s")
	sub.Dir, sub.Env = p.dir, p.env
	var out bytes.Buffer
	errOut := &kintest.SyncBuffer{}
	sub.Stdout, sub.Stderr = &out, errOut
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 30*time.Second, "kin bus sub to subscribe", func() bool { return strings.Contains(errOut.String(), "subscribed to greeted") })
	p.ok("bus", "pub", "greet.web", `{"name":"Ada"}`)
	p.ok("bus", "pub", "greet.cli", `{"name":"Grace"}`)
	if err := sub.Wait(); err != nil {
		t.Fatalf("kin bus sub: %v\n%s", err, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m struct {
			Subject string
			Data    struct{ Hello, Via string }
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m.Subject+" "+m.Data.Hello+" "+m.Data.Via)
	}
	if !slices.Equal(got, []string{"greeted Ada greet.web", "greeted Grace greet.cli"}) {
		t.Errorf("answers: %q", got)
	}
	// Mistakes are usage errors, and kin's own subjects are not for publishing.
	for _, tc := range []struct{ args []string }{
		{[]string{"bus", "pub", "kin.q.jobs.normal.x", "{}"}},
		{[]string{"bus", "pub", "a.*", "1"}},
		{[]string{"bus", "pub", "a", "{nope"}},
		{[]string{"bus", "sub", "a..b"}},
	} {
		if _, errOut, code := p.run(nil, tc.args...); code != 2 || !strings.HasPrefix(errOut, "kin: bus ") {
			t.Errorf("kin %q: exit %d, %s", tc.args, code, errOut)
		}
	}
	if _, errOut, code := p.run(nil, "bus", "sub", "nothing.here", "--timeout", "200ms"); code != 1 || !strings.Contains(errOut, "no message on nothing.here for 200ms") {
		t.Errorf("sub --timeout: exit %d, %s", code, errOut)
	}
}
