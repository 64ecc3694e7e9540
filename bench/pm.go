package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kinproc/kin/supervisor/client"
)

// Process-manager benchmarks, the values of Result.Bench.
const (
	// BenchPMHTTP: HTTP requests per second (ReqPerS) through the unmodified
	// hello-world app, 2 instances in cluster mode, 50 keep-alive
	// connections.
	BenchPMHTTP = "pm-http"
	// BenchPMReload: failed requests (Failed: socket errors and non-2xx/3xx
	// answers) while the same app is reloaded twice under that load; N is
	// the number of reloads, Ms the mean time a reload command took.
	BenchPMReload = "pm-reload"
	// BenchPMRSS: the daemon's resident memory (RSSMB) with no app.
	BenchPMRSS = "pm-rss"
	// BenchPMRSSApps: the daemon's resident memory with 4 idle Node apps.
	BenchPMRSSApps = "pm-rss-4apps"
	// BenchPMAppRSS: the mean resident memory of one of those idle apps.
	BenchPMAppRSS = "pm-app-rss"
	// BenchPMList: the median time (Ms) of a status command, end to end.
	BenchPMList = "pm-ls"
	// BenchPMRestartNode and BenchPMRestartGo: the median time (Ms) from a
	// crashing app's exit to the first line of its restarted process, for
	// a Node app and a Go binary; ImplBare's row is the app's own start.
	BenchPMRestartNode = "pm-restart-node"
	BenchPMRestartGo   = "pm-restart-go"
)

// Process-manager implementations, the values of Result.Impl.
const (
	ImplKin        = "kin"         // kin's daemon and CLI
	ImplPM2        = "pm2"         // PM2 (the peer): its God daemon and CLI; pm-ls: pm2 jlist
	ImplBare       = "bare"        // the app alone, without a manager
	ImplBareIPC    = "bare-ipc"    // pm-restart-node: the app alone with a Node IPC channel, as both managers start Node apps
	ImplBareExit   = "bare-exit"   // pm-restart-*: the app alone, from its last line to its being reaped (its own exit)
	ImplKinVersion = "kin-version" // pm-ls: `kin version`, the kin binary's start, the floor of any kin command
	ImplKinAPI     = "kin-api"     // pm-ls: the daemon's list answer alone, timed inside one process
	ImplPM2Ls      = "pm2-ls"      // pm-ls: pm2 ls
)

// Load generators, Result.Codec of the pm-http and pm-reload rows.
const (
	LoadWrk = "wrk"     // wrk -t2 -c50, from the system
	LoadGo  = "go-load" // 50 Go keep-alive clients, when wrk is missing
)

// PMImpls are the implementations PM compares, in order. Options.Impls may
// select among them; kin-version and kin-api come with kin, pm2-ls with pm2.
var PMImpls = []string{ImplBare, ImplKin, ImplPM2}

// PMBenches are PM's benchmarks, in the order they run.
var PMBenches = []string{BenchPMRSS, BenchPMRSSApps, BenchPMAppRSS, BenchPMList, BenchPMRestartNode, BenchPMRestartGo, BenchPMHTTP, BenchPMReload}

// The restart app's environment (bench/node/restart.js and the Go child).
const (
	envStamps = "KIN_BENCH_STAMPS" // the file its timestamps go to
	envTurn   = "KIN_BENCH_TURN"   // if set, it exits when this file appears (and removes it); else at once
)

// childRestartApp is the Go restart app: the mode of ChildMain that runs it.
const childRestartApp = "pm-restart-app"

// idleApps is how many idle apps BenchPMRSSApps runs, as in ANCHORS.md.
const idleApps = 4

// pmParams are the sizes of one PM run.
type pmParams struct {
	settle   time.Duration // before reading a daemon's memory
	cliN     int           // timed runs of each status command
	restartN int           // restarts timed per manager and app
	life     time.Duration // the restart app's least run: beyond both managers' 1 s min uptime
	load     time.Duration // one load run (and the reload run's minimum)
	warm     time.Duration // untimed load before the first timed one
}

func pmParamsFor(quick bool) pmParams {
	if quick {
		return pmParams{settle: time.Second, cliN: 5, restartN: 3, life: 1100 * time.Millisecond, load: 3 * time.Second, warm: time.Second}
	}
	return pmParams{settle: 2 * time.Second, cliN: 20, restartN: 10, life: 1100 * time.Millisecond, load: 10 * time.Second, warm: time.Second}
}

// PeerDir is where the benchmarks look for peers installed from npm (PM2,
// BullMQ): $XDG_CACHE_HOME/kin-bench, by default ~/.cache/kin-bench.
// Install them with `npm install --prefix ~/.cache/kin-bench pm2@7 bullmq@5`,
// as .ci/run does.
func PeerDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "kin-bench")
}

// PM compares kin's process manager with PM2's, side by side in one run:
//
//	pm-rss           each daemon's VmRSS (/proc/PID/status) with no app, after
//	                 it settled
//	pm-rss-4apps     the same with 4 idle Node apps started from one
//	                 ecosystem file
//	pm-app-rss       the mean VmRSS of such an app, and of the same app run
//	                 with bare node
//	pm-ls            `kin ls` and `pm2 jlist` (and `pm2 ls`), end to end,
//	                 with the 4 apps; `kin version` is the floor of any kin
//	                 command, kin-api the daemon's answer alone
//	pm-restart-node  an app that writes its start time (CLOCK_REALTIME) and
//	pm-restart-go    exits with code 1 after 1.1 s (beyond both managers'
//	                 1 s min uptime, so no crash backoff applies): the time
//	                 from its exit to the restarted process's first line,
//	                 median of 10 (3 with Quick); bare is the app's own start,
//	                 exec to first line, so a manager's overhead is its row
//	                 minus bare's and bare-exit's (the app's own exit, from
//	                 its last line to its being reaped: Node needs ~8 ms);
//	                 bare-ipc is the Node app's own start with the IPC
//	                 channel both managers give Node apps
//	pm-http          wrk -t2 -c50 for 10 s (3 s with Quick; in turns of 2 s)
//	                 against the unmodified hello app: `kin start hello.js -i
//	                 2 --port P` and `pm2 start hello.js -i 2`, and one bare
//	                 node process; with the CPU time the serving processes
//	                 (daemon and instances) used per request
//	pm-reload        the same load while the app is reloaded twice (kin
//	                 reload / pm2 reload): failed requests are wrk's socket
//	                 errors plus non-2xx/3xx answers
//
// Every run uses a fresh KIN_HOME and PM2_HOME in a temporary directory and
// kills both daemons (and anything they left) before it returns, whatever
// happened. PM2 is PM2 7 from PeerDir or $PATH (Options.PM2 names it); when
// it is missing, or fails, its rows are skipped with the reason. Without
// wrk, a Go load generator drives both managers. The kin binary is
// Options.Kin, by default this program.
func PM(ctx context.Context, o Options) (results []Result, err error) {
	impls, err := o.impls(PMImpls)
	if err != nil {
		return nil, err
	}
	benches := o.Benches
	if benches == nil {
		benches = PMBenches
	}
	for _, b := range benches {
		if !slices.Contains(PMBenches, b) {
			return nil, fmt.Errorf("bench: unknown process-manager benchmark %q (want one of %v)", b, PMBenches)
		}
	}
	e, err := newPMEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	o.progress("%s", e.describe())
	p := pmParamsFor(o.Quick)
	runs := make([][]Result, o.runs())
	for i := range runs {
		r, err := e.newRun(o, p, impls, benches)
		if err != nil {
			return nil, err
		}
		rs, err := r.run(ctx)
		if cerr := r.close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		runs[i] = rs
	}
	return Median(runs), nil
}

// pmEnv is what every PM run shares: the programs.
type pmEnv struct {
	*env
	kin        string // the kin binary
	pm2        string // PM2's CLI script, run with node; empty when missing
	noPM2      string // why pm2 is skipped
	pm2Version string
	wrk        string // empty: the Go load generator
	wrkVersion string
}

func newPMEnv(ctx context.Context, o Options) (*pmEnv, error) {
	base, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	e := &pmEnv{env: base, kin: o.Kin}
	if e.kin == "" {
		e.kin = base.exe
	}
	if e.kin, err = exec.LookPath(e.kin); err == nil {
		e.kin, err = filepath.Abs(e.kin)
	}
	if err != nil {
		e.close()
		return nil, fmt.Errorf("bench: kin binary: %w", err)
	}
	// A program that is not kin (a test binary) would not run a daemon.
	out, verr := exec.CommandContext(ctx, e.kin, "version").Output()
	if verr != nil || !strings.HasPrefix(string(out), "kin ") {
		e.close()
		return nil, fmt.Errorf("bench: %s is not kin (kin version: %q, %v): set Options.Kin", e.kin, firstLine(string(out)), verr)
	}
	e.findPM2(o.PM2)
	if e.wrk, err = exec.LookPath("wrk"); err == nil {
		// wrk prints its version and usage, and exits 1.
		vout, _ := exec.CommandContext(ctx, e.wrk, "--version").CombinedOutput()
		e.wrkVersion = firstLine(string(vout))
	} else {
		e.wrk = ""
	}
	return e, nil
}

// findPM2 looks for PM2's CLI: named, in PeerDir, or on $PATH. It never runs
// it: any pm2 command, even --version, starts a daemon in the current
// PM2_HOME.
func (e *pmEnv) findPM2(named string) {
	if e.node == "" {
		e.noPM2 = e.noNode
		return
	}
	var path string
	switch {
	case named != "":
		path = named
	case PeerDir() != "" && isExecutable(filepath.Join(PeerDir(), "node_modules", ".bin", "pm2")):
		path = filepath.Join(PeerDir(), "node_modules", ".bin", "pm2")
	default:
		path = "pm2"
	}
	found, err := exec.LookPath(path)
	if err == nil {
		found, err = filepath.EvalSymlinks(found)
	}
	if err != nil {
		e.noPM2 = fmt.Sprintf("pm2 not installed (npm install --prefix %s pm2@7; .ci/run does)", PeerDir())
		return
	}
	e.pm2 = found
	// bin/pm2 → ../package.json
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(filepath.Dir(found), "..", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
		e.pm2Version = pkg.Version
	}
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// describe says which programs the comparison runs.
func (e *pmEnv) describe() string {
	pm2 := "pm2: skipped: " + e.noPM2
	if e.pm2 != "" {
		pm2 = fmt.Sprintf("pm2 %s (%s)", e.pm2Version, e.pm2)
	}
	load := "load: wrk missing, Go load generator"
	if e.wrk != "" {
		load = "load: " + e.wrkVersion
	}
	node := "node: " + e.noNode
	if e.node != "" {
		node = "node: " + e.node
	}
	return fmt.Sprintf("kin: %s; %s; %s; %s", e.kin, pm2, node, load)
}

// pmRun is one run of the comparison: two fresh daemons, the apps, and
// everything to clean up.
type pmRun struct {
	*pmEnv
	o       Options
	p       pmParams
	impls   []string
	benches []string

	dir     string   // the run's temporary directory: homes, apps, stamps
	env     []string // of the CLIs and the bare apps: KIN_HOME and PM2_HOME set
	kinHome string
	pm2Home string
	kinc    *client.Client
	kinPID  int
	pm2PID  int
	pm2Err  error // PM2's first failure: its later rows are skipped with it
	bare    []*exec.Cmd
	rs      []Result
}

func (e *pmEnv) newRun(o Options, p pmParams, impls, benches []string) (*pmRun, error) {
	dir, err := os.MkdirTemp("", "kin-bench-pm-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	r := &pmRun{pmEnv: e, o: o, p: p, impls: impls, benches: benches, dir: dir,
		kinHome: filepath.Join(dir, "kin"), pm2Home: filepath.Join(dir, "pm2")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "KIN_HOME", "PM2_HOME", EnvChild, envStamps, envTurn, "PORT":
			continue
		}
		r.env = append(r.env, kv)
	}
	r.env = append(r.env, "KIN_HOME="+r.kinHome, "PM2_HOME="+r.pm2Home)
	if e.dir != "" {
		// The apps' files, where both managers start them from.
		for _, f := range []string{"hello.js", "idle.js", "restart.js"} {
			b, err := os.ReadFile(e.script(f))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			if err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("bench: %w", err)
			}
		}
	}
	return r, nil
}

func (r *pmRun) want(impl string) bool { return slices.Contains(r.impls, impl) }

func (r *pmRun) wantBench(benches ...string) bool {
	for _, b := range benches {
		if slices.Contains(r.benches, b) {
			return true
		}
	}
	return false
}

// usePM2 reports whether PM2's rows run; skip is why not.
func (r *pmRun) usePM2() (ok bool, skip string) {
	switch {
	case !r.want(ImplPM2):
		return false, ""
	case r.pm2 == "":
		return false, r.noPM2
	case r.pm2Err != nil:
		return false, "pm2 failed: " + r.pm2Err.Error()
	}
	return true, ""
}

// pm2Failed records PM2's first failure; the row it was for is skipped.
func (r *pmRun) pm2Failed(res Result, err error) {
	if r.pm2Err == nil {
		r.pm2Err = err
	}
	res.Skipped = "pm2 failed: " + err.Error()
	r.add(res)
}

func (r *pmRun) add(res Result) {
	if res.Skipped == "" {
		r.o.progress("%-15s %-11s %s", res.Bench, res.Impl, figure(res))
	}
	r.rs = append(r.rs, res)
}

// skip adds a skipped row unless impl was left out on purpose.
func (r *pmRun) skip(bench, impl, why string) {
	if why != "" {
		r.add(Result{Bench: bench, Impl: impl, Skipped: why})
	}
}

func (r *pmRun) run(ctx context.Context) ([]Result, error) {
	if r.want(ImplKin) {
		r.kinc = client.New(r.kinHome)
		if _, err := r.kinc.EnsureDaemon(ctx, r.kin); err != nil {
			return nil, fmt.Errorf("start the kin daemon: %w", err)
		}
		ping, err := r.kinc.Ping(ctx)
		if err != nil {
			return nil, fmt.Errorf("kin daemon: %w", err)
		}
		r.kinPID = ping.PID
	}
	if ok, _ := r.usePM2(); ok {
		if _, err := r.pm2Cmd(ctx, "ping"); err != nil {
			r.pm2Err = err
		} else if r.pm2PID, err = r.pm2Daemon(); err != nil {
			r.pm2Err = err
		}
	}
	if r.wantBench(BenchPMRSS, BenchPMRSSApps, BenchPMAppRSS, BenchPMList) {
		if err := r.idle(ctx); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{BenchPMRestartNode, BenchPMRestartGo} {
		if r.wantBench(b) {
			if err := r.restart(ctx, b); err != nil {
				return nil, err
			}
		}
	}
	if r.wantBench(BenchPMHTTP, BenchPMReload) {
		if err := r.http(ctx); err != nil {
			return nil, err
		}
	}
	return r.rs, nil
}

// close stops the bare apps and both daemons, with what they run, and
// removes the run's directory. Whatever a daemon's kill left running is
// killed: for kin that is an error (a bug to see), for PM2 a progress note.
func (r *pmRun) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range r.bare {
		c.Process.Kill()
		c.Wait()
	}
	r.bare = nil
	var errs []error
	if r.kinc != nil {
		apps := descendants(r.kinPID)
		kctx, kcancel := context.WithTimeout(ctx, time.Minute)
		err := r.kinc.Kill(kctx)
		kcancel()
		r.kinc.Close()
		if err != nil && !errors.Is(err, client.ErrNoDaemon) {
			errs = append(errs, fmt.Errorf("kin kill: %w", err))
		}
		if r.kinPID != 0 {
			// The daemon releases its lock just before it exits; it is
			// our child (EnsureDaemon), reaped once gone.
			if left := leftBehind(r.kinPID, apps, 15*time.Second, true); len(left) > 0 {
				errs = append(errs, fmt.Errorf("kin kill left %v running (daemon %d): killed", left, r.kinPID))
			}
		}
	}
	if r.pm2 != "" && dirExists(r.pm2Home) {
		pid := r.pm2PID
		if pid == 0 {
			pid, _ = r.pm2Daemon()
		}
		var apps []int
		if pid != 0 {
			apps = descendants(pid)
		}
		if _, err := r.pm2Cmd(ctx, "kill"); err != nil {
			errs = append(errs, fmt.Errorf("pm2 kill: %w", err))
		}
		if pid != 0 {
			if left := leftBehind(pid, apps, 15*time.Second, false); len(left) > 0 {
				r.o.progress("pm2 kill left %v running (daemon %d): killed", left, pid)
			}
		}
	}
	if err := os.RemoveAll(r.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: clean-up: %w", err)
	}
	return nil
}

// leftBehind waits up to timeout for a daemon that was told to exit, and
// the apps it had, to be gone; it SIGKILLs those still running then (with
// their descendants) and returns their pids. With reap, the daemon is this
// process's child: leftBehind also waits until it has been reaped.
func leftBehind(daemon int, apps []int, timeout time.Duration, reap bool) []int {
	all := append([]int{daemon}, apps...)
	running := func() []int {
		var out []int
		for _, p := range all {
			if alive(p) {
				out = append(out, p)
			}
		}
		return out
	}
	var left []int
	if !poll(timeout, func() bool { return len(running()) == 0 }) {
		left = running()
		for _, p := range left {
			killTree(p)
		}
	}
	if reap {
		waitGone(daemon, 5*time.Second)
	}
	return left
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// cmdTimeout bounds one kin or pm2 command.
const cmdTimeout = 2 * time.Minute

// command runs a CLI in the run's directory and environment and returns its
// output.
func (r *pmRun) command(ctx context.Context, extraEnv []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = r.dir
	cmd.Env = append(slices.Clip(r.env), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, tail(out.String(), 400))
	}
	return out.String(), nil
}

func (r *pmRun) kinCmd(ctx context.Context, args ...string) (string, error) {
	return r.command(ctx, nil, r.kin, args...)
}

func (r *pmRun) pm2Cmd(ctx context.Context, args ...string) (string, error) {
	return r.pm2CmdEnv(ctx, nil, args...)
}

// pm2CmdEnv runs PM2's CLI with node, as its #! line would.
func (r *pmRun) pm2CmdEnv(ctx context.Context, env []string, args ...string) (string, error) {
	out, err := r.command(ctx, env, r.node, append([]string{r.pm2}, args...)...)
	if err != nil {
		err = errors.New(strings.Replace(err.Error(), filepath.Base(r.node), "pm2", 1))
	}
	return out, err
}

// pm2Daemon returns the pid of PM2's God daemon from $PM2_HOME/pm2.pid.
func (r *pmRun) pm2Daemon() (int, error) {
	var pid int
	var err error
	ok := poll(5*time.Second, func() bool {
		var b []byte
		if b, err = os.ReadFile(filepath.Join(r.pm2Home, "pm2.pid")); err == nil {
			pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err == nil && pid > 0
	})
	if !ok {
		return 0, fmt.Errorf("no pm2.pid in %s: %v", r.pm2Home, err)
	}
	return pid, nil
}

// ecosystem writes a PM2 ecosystem file, which both managers start.
func (r *pmRun) ecosystem(name string, apps []map[string]any) (string, error) {
	b, err := json.MarshalIndent(map[string]any{"apps": apps}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(r.dir, name+".json")
	return path, os.WriteFile(path, b, 0o644)
}

// idle measures the daemons' memory without and with idle apps, the apps'
// own memory, and the status commands.
func (r *pmRun) idle(ctx context.Context) error {
	usePM2, noPM2 := r.usePM2()
	sleep(ctx, r.p.settle)
	if r.wantBench(BenchPMRSS) {
		if r.want(ImplKin) {
			r.addRSS(BenchPMRSS, ImplKin, r.kinPID)
		}
		if usePM2 {
			r.addRSS(BenchPMRSS, ImplPM2, r.pm2PID)
		} else {
			r.skip(BenchPMRSS, ImplPM2, noPM2)
		}
	}
	if r.node == "" {
		for _, b := range []string{BenchPMRSSApps, BenchPMAppRSS, BenchPMList} {
			for _, impl := range r.impls {
				if r.wantBench(b) && (b != BenchPMRSSApps || impl != ImplBare) {
					r.skip(b, impl, r.noNode)
				}
			}
		}
		return nil
	}
	var apps []map[string]any
	for i := range idleApps {
		apps = append(apps, map[string]any{"name": fmt.Sprintf("idle-%d", i), "script": filepath.Join(r.dir, "idle.js")})
	}
	eco, err := r.ecosystem("idle", apps)
	if err != nil {
		return err
	}
	if r.want(ImplKin) {
		if _, err := r.kinCmd(ctx, "start", eco); err != nil {
			return err
		}
	}
	if usePM2 {
		if _, err := r.pm2Cmd(ctx, "start", eco); err != nil {
			r.pm2Err = err
			usePM2, noPM2 = r.usePM2()
		}
	}
	var bare *exec.Cmd
	if r.want(ImplBare) && r.wantBench(BenchPMAppRSS) {
		if bare, err = r.startBare(r.node, []string{filepath.Join(r.dir, "idle.js")}, nil); err != nil {
			return err
		}
	}
	sleep(ctx, r.p.settle)
	if r.wantBench(BenchPMRSSApps) {
		if r.want(ImplKin) {
			r.addRSS(BenchPMRSSApps, ImplKin, r.kinPID)
		}
		if usePM2 {
			r.addRSS(BenchPMRSSApps, ImplPM2, r.pm2PID)
		} else {
			r.skip(BenchPMRSSApps, ImplPM2, noPM2)
		}
	}
	if r.wantBench(BenchPMAppRSS) {
		if bare != nil {
			r.addRSS(BenchPMAppRSS, ImplBare, bare.Process.Pid)
		}
		if r.want(ImplKin) {
			out, err := r.kinCmd(ctx, "ls", "--json")
			if err != nil {
				return err
			}
			if err := r.addAppRSS(ImplKin, out); err != nil {
				return fmt.Errorf("kin ls --json: %w", err)
			}
		}
		if usePM2 {
			out, err := r.pm2Cmd(ctx, "jlist")
			if err == nil {
				err = r.addAppRSS(ImplPM2, out)
			}
			if err != nil {
				r.pm2Failed(Result{Bench: BenchPMAppRSS, Impl: ImplPM2}, err)
				usePM2, noPM2 = r.usePM2()
			}
		} else {
			r.skip(BenchPMAppRSS, ImplPM2, noPM2)
		}
	}
	if r.wantBench(BenchPMList) {
		if err := r.statusCommands(ctx); err != nil {
			return err
		}
	}
	if r.want(ImplKin) {
		if _, err := r.kinCmd(ctx, "delete", "all"); err != nil {
			return err
		}
	}
	if usePM2 {
		if _, err := r.pm2Cmd(ctx, "delete", "all"); err != nil {
			r.pm2Err = err
		}
	}
	return r.stopBare(bare)
}

func (r *pmRun) addRSS(bench, impl string, pid int) {
	res := Result{Bench: bench, Impl: impl, N: 1}
	kb, err := rssKB(pid)
	if err != nil {
		res.Skipped = err.Error()
	}
	res.RSSMB = float64(kb) / 1024
	r.add(res)
}

// addAppRSS adds the mean memory of the idle apps listed in a JSON array of
// objects with "name" and "pid" (kin ls --json, pm2 jlist).
func (r *pmRun) addAppRSS(impl, list string) error {
	var infos []struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
	}
	// pm2 may print a line of its own before the JSON.
	if i := strings.IndexByte(list, '['); i > 0 {
		list = list[i:]
	}
	if err := json.Unmarshal([]byte(list), &infos); err != nil {
		return fmt.Errorf("%v: %.200q", err, list)
	}
	var sum, n int
	for _, in := range infos {
		if !strings.HasPrefix(in.Name, "idle-") || in.PID == 0 {
			continue
		}
		kb, err := rssKB(in.PID)
		if err != nil {
			return err
		}
		sum += kb
		n++
	}
	if n != idleApps {
		return fmt.Errorf("%d idle apps running, want %d: %.300q", n, idleApps, list)
	}
	r.add(Result{Bench: BenchPMAppRSS, Impl: impl, N: n, RSSMB: float64(sum) / float64(n) / 1024})
	return nil
}

// statusCommands times the status commands end to end, taking turns.
func (r *pmRun) statusCommands(ctx context.Context) error {
	type cli struct {
		impl string
		run  func() error
	}
	var clis []cli
	run := func(name string, args ...string) func() error {
		return func() error {
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Dir, cmd.Env = r.dir, r.env
			// Output to /dev/null: the cheapest sink for every command.
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
			}
			return nil
		}
	}
	if r.want(ImplKin) {
		clis = append(clis,
			cli{ImplKin, run(r.kin, "ls")},
			cli{ImplKinVersion, run(r.kin, "version")},
			cli{ImplKinAPI, func() error { _, err := r.kinc.List(ctx); return err }},
		)
	}
	usePM2, noPM2 := r.usePM2()
	if usePM2 {
		clis = append(clis,
			cli{ImplPM2, run(r.node, r.pm2, "jlist")},
			cli{ImplPM2Ls, run(r.node, r.pm2, "ls")},
		)
	}
	samples := map[string][]time.Duration{}
	failed := map[string]error{}
	for i := -1; i < r.p.cliN; i++ { // one untimed round first
		for _, c := range clis {
			if failed[c.impl] != nil {
				continue
			}
			t0 := time.Now()
			err := c.run()
			d := time.Since(t0)
			if err != nil {
				if c.impl != ImplPM2 && c.impl != ImplPM2Ls {
					return err
				}
				failed[c.impl] = err
				continue
			}
			if i >= 0 {
				samples[c.impl] = append(samples[c.impl], d)
			}
		}
	}
	for _, c := range clis {
		res := Result{Bench: BenchPMList, Impl: c.impl, N: r.p.cliN}
		if err := failed[c.impl]; err != nil {
			r.pm2Failed(res, err)
			continue
		}
		res.Ms = medianMs(samples[c.impl])
		r.add(res)
	}
	if !usePM2 {
		r.skip(BenchPMList, ImplPM2, noPM2)
	}
	return nil
}

func medianMs(ds []time.Duration) float64 {
	return median(ds, func(d time.Duration) float64 { return float64(d) / 1e6 })
}

// restart measures exit → restarted-and-running for one app kind. The
// implementations take turns sample by sample, so that noise from the rest
// of the machine hits them alike: a bare start, a bare start with an IPC
// channel (Node), then one restart under kin and one under PM2. The apps
// under the managers exit only when given their turn, and never before they
// ran for the managers' min uptime.
func (r *pmRun) restart(ctx context.Context, bench string) error {
	goApp := bench == BenchPMRestartGo
	if !goApp && r.node == "" {
		for _, impl := range r.impls {
			r.skip(bench, impl, r.noNode)
		}
		return nil
	}
	type sampler struct {
		impl string
		next func() (time.Duration, error)
	}
	var ss []sampler
	var exits []time.Duration // the bare app's own exits, the first untimed
	if r.want(ImplBare) {
		ss = append(ss, sampler{ImplBare, func() (time.Duration, error) {
			start, exit, err := r.bareStart(ctx, goApp, false)
			exits = append(exits, exit)
			return start, err
		}})
		if !goApp {
			ss = append(ss, sampler{ImplBareIPC, func() (time.Duration, error) {
				start, _, err := r.bareStart(ctx, goApp, true)
				return start, err
			}})
		}
	}
	var apps []*managedApp
	defer func() {
		for _, m := range apps {
			m.delete(ctx)
		}
	}()
	if r.want(ImplKin) {
		m, err := r.startRestartApp(ctx, ImplKin, goApp)
		if err != nil {
			return err
		}
		apps = append(apps, m)
		ss = append(ss, sampler{ImplKin, func() (time.Duration, error) { return m.restart(ctx) }})
	}
	usePM2, noPM2 := r.usePM2()
	if usePM2 {
		m, err := r.startRestartApp(ctx, ImplPM2, goApp)
		if err != nil {
			r.pm2Failed(Result{Bench: bench, Impl: ImplPM2}, err)
			usePM2 = false
		} else {
			apps = append(apps, m)
			ss = append(ss, sampler{ImplPM2, func() (time.Duration, error) { return m.restart(ctx) }})
		}
	}
	defer func() {
		if !usePM2 {
			r.skip(bench, ImplPM2, noPM2) // after the measured rows
		}
	}()
	samples := map[string][]time.Duration{}
	failed := map[string]error{}
	for i := -1; i < r.p.restartN; i++ { // one untimed round first
		for _, s := range ss {
			if failed[s.impl] != nil {
				continue
			}
			d, err := s.next()
			switch {
			case err != nil && s.impl == ImplPM2:
				failed[s.impl] = err
			case err != nil:
				return fmt.Errorf("%s %s: %w", bench, s.impl, err)
			case i >= 0:
				samples[s.impl] = append(samples[s.impl], d)
			}
		}
	}
	for _, s := range ss {
		res := Result{Bench: bench, Impl: s.impl, N: r.p.restartN}
		if err := failed[s.impl]; err != nil {
			r.pm2Failed(res, err)
			continue
		}
		res.Ms = medianMs(samples[s.impl])
		r.add(res)
		if s.impl == ImplBare && len(exits) > 1 {
			r.add(Result{Bench: bench, Impl: ImplBareExit, N: len(exits) - 1, Ms: medianMs(exits[1:])})
		}
	}
	return nil
}

// restartApp returns the command of the restart app and its environment;
// with turns, it exits only when the file stamps+".turn" appears.
func (r *pmRun) restartApp(goApp bool, stamps string, turns bool) (argv, env []string) {
	env = []string{envStamps + "=" + stamps}
	if turns {
		env = append(env, envTurn+"="+stamps+".turn")
	}
	if goApp {
		return []string{r.kin}, append(env, EnvChild+"="+childRestartApp)
	}
	return []string{r.node, filepath.Join(r.dir, "restart.js")}, env
}

// bareStart times the restart app alone: start, from exec to its first
// line, and exit, from its last line to its being reaped. With ipc, the
// app gets a Node IPC channel (fd 3, NODE_CHANNEL_FD), as kin and PM2 give
// every Node app: Node then loads its stream, net and child_process modules
// before the app runs.
func (r *pmRun) bareStart(ctx context.Context, goApp, ipc bool) (start, exit time.Duration, err error) {
	stamps := filepath.Join(r.dir, "bare.stamps")
	os.Remove(stamps)
	argv, env := r.restartApp(goApp, stamps, false)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(slices.Clip(r.env), env...)
	var mine, theirs *os.File
	if ipc {
		if mine, theirs, err = socketpair(); err != nil {
			return 0, 0, err
		}
		defer mine.Close()
		defer theirs.Close()
		cmd.ExtraFiles = []*os.File{theirs}
		cmd.Env = append(cmd.Env, "NODE_CHANNEL_FD=3", "NODE_CHANNEL_SERIALIZATION_MODE=json")
	}
	t0 := time.Now()
	err = cmd.Run()
	reaped := time.Now()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return 0, 0, fmt.Errorf("bare restart app: %w", err)
	}
	st, err := readStamps(stamps)
	if err != nil || len(st.starts) != 1 || len(st.exits) != 1 {
		return 0, 0, fmt.Errorf("bare restart app: stamps %+v: %v", st, err)
	}
	return st.starts[0].Sub(t0), reaped.Sub(st.exits[0]), nil
}

// managedApp is the restart app under a manager.
type managedApp struct {
	r         *pmRun
	impl      string
	name      string
	stamps    string
	seen      int       // starts seen so far
	lastStart time.Time // the running process's start stamp
}

// startRestartApp starts the restart app under a manager, from an ecosystem
// file, and waits for its first start.
func (r *pmRun) startRestartApp(ctx context.Context, impl string, goApp bool) (*managedApp, error) {
	m := &managedApp{r: r, impl: impl, name: "restart-node"}
	if goApp {
		m.name = "restart-go"
	}
	m.stamps = filepath.Join(r.dir, impl+"-"+m.name+".stamps")
	argv, envList := r.restartApp(goApp, m.stamps, true)
	env := map[string]string{}
	for _, kv := range envList {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	app := map[string]any{"name": m.name, "script": argv[len(argv)-1], "env": env}
	if goApp {
		app["interpreter"] = "none"
	}
	eco, err := r.ecosystem(impl+"-"+m.name, []map[string]any{app})
	if err != nil {
		return nil, err
	}
	if _, err := m.cli(ctx, "start", eco); err != nil {
		return nil, err
	}
	if _, err := m.waitStart(ctx); err != nil {
		m.delete(ctx)
		return nil, err
	}
	return m, nil
}

func (m *managedApp) cli(ctx context.Context, args ...string) (string, error) {
	if m.impl == ImplPM2 {
		return m.r.pm2Cmd(ctx, args...)
	}
	return m.r.kinCmd(ctx, args...)
}

func (m *managedApp) delete(ctx context.Context) {
	m.cli(ctx, "delete", m.name)
}

// restart gives the app its turn to exit, once it has run for the min
// uptime, and returns the time from its exit to its successor's start.
func (m *managedApp) restart(ctx context.Context) (time.Duration, error) {
	sleep(ctx, time.Until(m.lastStart.Add(m.r.p.life)))
	if err := os.WriteFile(m.stamps+".turn", nil, 0o644); err != nil {
		return 0, err
	}
	return m.waitStart(ctx)
}

// waitStart waits for the app's next start and returns the time since the
// exit before it (0 for the first start).
func (m *managedApp) waitStart(ctx context.Context) (time.Duration, error) {
	var st stampLog
	var err error
	ok := poll(30*time.Second, func() bool {
		st, err = readStamps(m.stamps)
		return ctx.Err() != nil || (err == nil && len(st.starts) > m.seen)
	})
	switch {
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case !ok:
		return 0, fmt.Errorf("%s: no start %d within 30 s (%v)", m.name, m.seen+1, err)
	}
	m.seen = len(st.starts)
	m.lastStart = st.starts[m.seen-1]
	if len(st.exits) == 0 {
		return 0, nil
	}
	if n := len(st.exits) - 1; st.next[n] != m.seen-1 || m.seen == 1 {
		return 0, fmt.Errorf("%s: stamps out of order: %+v", m.name, st)
	}
	return st.starts[m.seen-1].Sub(st.exits[len(st.exits)-1]), nil
}

// stampLog is what restart apps wrote: each process's start and exit.
type stampLog struct {
	starts, exits []time.Time
	// next[i] is the index of the start that followed exits[i], -1 if none.
	next []int
}

// readStamps parses a stamps file: lines "start <ms>" and "exit <ms>", ms
// since the Unix epoch with a fraction.
func readStamps(path string) (stampLog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stampLog{}, err
	}
	return parseStamps(string(b))
}

func parseStamps(s string) (stampLog, error) {
	var st stampLog
	lines := strings.Split(s, "\n")
	// The last piece is empty, or a line still being written.
	for _, line := range lines[:len(lines)-1] {
		kind, v, ok := strings.Cut(line, " ")
		ms, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return st, fmt.Errorf("bad stamp line %q", line)
		}
		t := time.Unix(0, int64(ms*1e6))
		switch kind {
		case "start":
			if n := len(st.exits); n > 0 && st.next[n-1] < 0 {
				st.next[n-1] = len(st.starts)
			}
			st.starts = append(st.starts, t)
		case "exit":
			st.exits = append(st.exits, t)
			st.next = append(st.next, -1)
		default:
			return st, fmt.Errorf("bad stamp line %q", line)
		}
	}
	return st, nil
}

// gaps returns exit → next start, for every exit followed by a start.
func (st stampLog) gaps() []time.Duration {
	var out []time.Duration
	for i, n := range st.next {
		if n >= 0 {
			out = append(out, st.starts[n].Sub(st.exits[i]))
		}
	}
	return out
}

// startBare starts an app without a manager; close kills it.
func (r *pmRun) startBare(name string, args, env []string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = r.dir
	cmd.Env = append(slices.Clip(r.env), env...)
	cmd.Stderr = &tailWriter{max: 4 << 10}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r.bare = append(r.bare, cmd)
	return cmd, nil
}

func (r *pmRun) stopBare(cmd *exec.Cmd) error {
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	t := time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
	cmd.Wait()
	t.Stop()
	r.bare = slices.DeleteFunc(r.bare, func(c *exec.Cmd) bool { return c == cmd })
	return nil
}

// http runs the hello app under each manager and bare, measures throughput
// in turns, then reloads under load.
func (r *pmRun) http(ctx context.Context) error {
	benches := []string{BenchPMHTTP, BenchPMReload}
	if r.node == "" {
		for _, b := range benches {
			for _, impl := range r.impls {
				if r.wantBench(b) && (b == BenchPMHTTP || impl != ImplBare) {
					r.skip(b, impl, r.noNode)
				}
			}
		}
		return nil
	}
	usePM2, noPM2 := r.usePM2()
	hello := filepath.Join(r.dir, "hello.js")
	urls := map[string]string{}
	var impls []string
	if r.want(ImplBare) && r.wantBench(BenchPMHTTP) {
		port, err := freePort()
		if err != nil {
			return err
		}
		if _, err := r.startBare(r.node, []string{hello}, []string{"PORT=" + strconv.Itoa(port)}); err != nil {
			return err
		}
		impls, urls[ImplBare] = append(impls, ImplBare), fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	if r.want(ImplKin) {
		port, err := freePort()
		if err != nil {
			return err
		}
		if _, err := r.kinCmd(ctx, "start", hello, "-i", "2", "--port", strconv.Itoa(port), "--name", "web"); err != nil {
			return err
		}
		impls, urls[ImplKin] = append(impls, ImplKin), fmt.Sprintf("http://127.0.0.1:%d/", port)
	}
	if usePM2 {
		port, err := freePort()
		if err != nil {
			return err
		}
		if _, err := r.pm2CmdEnv(ctx, []string{"PORT=" + strconv.Itoa(port)}, "start", hello, "-i", "2", "--name", "web"); err != nil {
			r.pm2Err = err
		} else {
			impls, urls[ImplPM2] = append(impls, ImplPM2), fmt.Sprintf("http://127.0.0.1:%d/", port)
		}
	}
	for _, impl := range impls {
		if err := waitHTTP(ctx, urls[impl], time.Minute); err != nil {
			if impl == ImplPM2 {
				r.pm2Err = err
				continue
			}
			return fmt.Errorf("%s: %w", impl, err)
		}
		if _, err := r.load(ctx, urls[impl], r.p.warm, nil); err != nil {
			return err
		}
	}
	if usePM2, noPM2 = r.usePM2(); !usePM2 {
		impls = slices.DeleteFunc(impls, func(s string) bool { return s == ImplPM2 })
	}
	if r.wantBench(BenchPMHTTP) {
		roots := map[string]int{ImplKin: r.kinPID, ImplPM2: r.pm2PID}
		if len(r.bare) > 0 {
			roots[ImplBare] = r.bare[len(r.bare)-1].Process.Pid
		}
		// The implementations take turns, in slices of 1 or 2 s, so that
		// a burst of noise from the rest of the machine hits them alike.
		slice := min(2*time.Second, r.p.load/3)
		rounds := int(r.p.load / slice)
		type total struct {
			requests, failed int
			elapsed, cpu     time.Duration
		}
		totals := map[string]*total{}
		for range rounds {
			for _, impl := range impls {
				cpu0 := treeCPU(roots[impl])
				lr, err := r.load(ctx, urls[impl], slice, nil)
				if err != nil {
					return err
				}
				t := totals[impl]
				if t == nil {
					t = &total{}
					totals[impl] = t
				}
				t.requests += lr.requests
				t.failed += lr.failed
				t.elapsed += lr.elapsed
				t.cpu += treeCPU(roots[impl]) - cpu0
			}
		}
		for _, impl := range impls {
			t := totals[impl]
			res := Result{Bench: BenchPMHTTP, Impl: impl, Codec: r.loadName(), N: t.requests, Failed: float64(t.failed)}
			if t.requests > 0 && t.elapsed > 0 {
				res.ReqPerS = float64(t.requests) / t.elapsed.Seconds()
				res.CPUus = float64(t.cpu) / 1e3 / float64(t.requests)
			}
			r.add(res)
		}
		r.skip(BenchPMHTTP, ImplPM2, noPM2)
	}
	if r.wantBench(BenchPMReload) {
		for _, impl := range impls {
			if impl == ImplBare {
				continue
			}
			reload := func(ctx context.Context) error { _, err := r.kinCmd(ctx, "reload", "web"); return err }
			if impl == ImplPM2 {
				reload = func(ctx context.Context) error { _, err := r.pm2Cmd(ctx, "reload", "web"); return err }
			}
			res := Result{Bench: BenchPMReload, Impl: impl, Codec: r.loadName()}
			lr, took, err := r.reloadUnderLoad(ctx, urls[impl], reload)
			if err != nil {
				if impl == ImplPM2 {
					r.pm2Failed(res, err)
					continue
				}
				return err
			}
			res.N, res.Ms = len(took), medianMs(took)
			res.ReqPerS, res.Failed = lr.reqPerS, float64(lr.failed)
			r.add(res)
		}
		r.skip(BenchPMReload, ImplPM2, noPM2)
	}
	return nil
}

// reloadUnderLoad reloads the app twice during one load run: the first
// reload a fifth into the run, the second at half-time or 0.5 s after the
// first ended; the load goes on for the run's length, and at least 1 s
// after the second reload ended. It returns the load's figures and how long
// each reload took.
func (r *pmRun) reloadUnderLoad(ctx context.Context, url string, reload func(context.Context) error) (loadResult, []time.Duration, error) {
	stop := make(chan struct{})
	type loaded struct {
		lr  loadResult
		err error
	}
	done := make(chan loaded, 1)
	start := time.Now()
	go func() {
		lr, err := r.load(ctx, url, 0, stop)
		done <- loaded{lr, err}
	}()
	var took []time.Duration
	var err error
	at := start.Add(r.p.load / 5)
	for range 2 {
		sleep(ctx, time.Until(at))
		t0 := time.Now()
		if err = reload(ctx); err != nil {
			break
		}
		took = append(took, time.Since(t0))
		at = later(start.Add(r.p.load/2), time.Now().Add(500*time.Millisecond))
	}
	if err == nil {
		sleep(ctx, time.Until(later(start.Add(r.p.load), time.Now().Add(time.Second))))
	}
	close(stop)
	l := <-done
	if err == nil {
		err = l.err
	}
	return l.lr, took, err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (r *pmRun) loadName() string {
	if r.wrk != "" {
		return LoadWrk
	}
	return LoadGo
}

// loadResult is one load run's outcome.
type loadResult struct {
	requests int
	failed   int // socket errors (connect, read, write, timeout) and non-2xx/3xx answers
	elapsed  time.Duration
	reqPerS  float64
}

// loadConns is the number of keep-alive connections, wrk's -c.
const loadConns = 50

// load runs the load generator against url for d, or, when d is 0, until
// stop is closed.
func (e *pmEnv) load(ctx context.Context, url string, d time.Duration, stop <-chan struct{}) (loadResult, error) {
	if e.wrk == "" {
		return goLoad(ctx, url, loadConns, d, stop), nil
	}
	secs := int64(600) // until stopped
	if d > 0 {
		secs = max(int64((d+time.Second-1)/time.Second), 1)
	}
	cmd := exec.CommandContext(ctx, e.wrk, "-t2", "-c"+strconv.Itoa(loadConns), fmt.Sprintf("-d%ds", secs), url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return loadResult{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-stop:
		// wrk prints its figures on SIGINT.
		cmd.Process.Signal(os.Interrupt)
		err = <-exited
	}
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, tail(out.String(), 400))
	}
	lr, err := parseWrk(out.String())
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, tail(out.String(), 400))
	}
	return lr, nil
}

// wrkPatterns are parseWrk's patterns, compiled on first use rather than at
// init: every kin command links this package.
var wrkPatterns = sync.OnceValue(func() [4]*regexp.Regexp {
	return [4]*regexp.Regexp{
		regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m|h),`),
		regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`),
		regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`),
		regexp.MustCompile(`Requests/sec:\s+([\d.]+)`),
	}
})

// parseWrk reads wrk's summary: requests and duration, socket errors,
// non-2xx/3xx answers, and requests per second.
func parseWrk(out string) (loadResult, error) {
	var lr loadResult
	re := wrkPatterns()
	m := re[0].FindStringSubmatch(out)
	rate := re[3].FindStringSubmatch(out)
	if m == nil || rate == nil {
		return lr, errors.New("no summary in wrk's output")
	}
	lr.requests, _ = strconv.Atoi(m[1])
	v, _ := strconv.ParseFloat(m[2], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[m[3]]
	lr.elapsed = time.Duration(v * float64(unit))
	lr.reqPerS, _ = strconv.ParseFloat(rate[1], 64)
	if s := re[1].FindStringSubmatch(out); s != nil {
		for _, n := range s[1:] {
			k, _ := strconv.Atoi(n)
			lr.failed += k
		}
	}
	if s := re[2].FindStringSubmatch(out); s != nil {
		k, _ := strconv.Atoi(s[1])
		lr.failed += k
	}
	return lr, nil
}

// goLoad is the load generator used when wrk is missing: conns clients, each
// with one keep-alive connection, sending GETs back to back for d or until
// stop is closed. A failed request is a transport error (the connection is
// then redialed) or an answer of 400 or more; a request cut by the end of
// the run is not counted.
func goLoad(ctx context.Context, url string, conns int, d time.Duration, stop <-chan struct{}) loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if d > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, d)
		defer c2()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var requests, failed atomic.Int64
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 2 * time.Second}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch {
				case ctx.Err() != nil:
					return
				case err != nil || resp.StatusCode >= 400:
					failed.Add(1)
				default:
					requests.Add(1)
				}
			}
		}()
	}
	<-ctx.Done()
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	lr := loadResult{requests: int(requests.Load() + failed.Load()), failed: int(failed.Load()), elapsed: elapsed}
	lr.reqPerS = float64(lr.requests) / elapsed.Seconds()
	return lr
}

// waitHTTP polls url until it answers 200.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	defer c.CloseIdleConnections()
	var last error
	ok := poll(timeout, func() bool {
		if ctx.Err() != nil {
			return true
		}
		resp, err := c.Get(url)
		if err != nil {
			last = err
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = fmt.Errorf("%s answered %s", url, resp.Status)
		return resp.StatusCode == http.StatusOK
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !ok {
		return fmt.Errorf("%s not answering after %v: %v", url, timeout, last)
	}
	return nil
}

// freePort returns a TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// rssKB returns a process's VmRSS in kB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("memory of %d: no VmRSS", pid)
}

// treeCPU returns the CPU time (user and system) that pid and its live
// descendants have used, from /proc/PID/stat.
func treeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	var ticks int64
	for _, p := range append(descendants(pid), pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			ticks += u + k
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// procStat returns a process's parent and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0, 0, false
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 2 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0], true
}

// descendants returns the live processes below pid.
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(p); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if alive(c) {
				out = append(out, c)
			}
			queue = append(queue, c)
		}
	}
	return out
}

// killTree SIGKILLs pid and its descendants if any of them still runs, and
// reports whether it had to.
func killTree(pid int) bool {
	pids := descendants(pid)
	if alive(pid) {
		pids = append(pids, pid)
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	return len(pids) > 0
}

// waitGone waits up to timeout for pid to be gone, zombies included.
func waitGone(pid int, timeout time.Duration) {
	poll(timeout, func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err != nil
	})
}

// poll calls cond every 20 ms until it returns true or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// restartAppChild is the Go restart app (see bench/node/restart.js).
func restartAppChild() error {
	path := os.Getenv(envStamps)
	stamp := func(kind string) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(f, "%s %.3f\n", kind, float64(time.Now().UnixNano())/1e6)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	if err := stamp("start"); err != nil {
		return err
	}
	if turn := os.Getenv(envTurn); turn != "" {
		for os.Remove(turn) != nil {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := stamp("exit"); err != nil {
		return err
	}
	os.Exit(1)
	return nil
}

// pmFigure formats the measurement of a process-manager row.
func pmFigure(r Result) (string, bool) {
	switch r.Bench {
	case BenchPMHTTP:
		s := count(r.ReqPerS) + " req/s"
		if r.CPUus > 0 {
			s += fmt.Sprintf(", %.0f µs CPU/req", r.CPUus)
		}
		if r.Failed > 0 {
			s += fmt.Sprintf(", %.0f failed", r.Failed)
		}
		return s, true
	case BenchPMReload:
		return fmt.Sprintf("%.0f failed (%d reloads of %.2f s; %s req/s)", r.Failed, r.N, r.Ms/1000, count(r.ReqPerS)), true
	case BenchPMRSS, BenchPMRSSApps, BenchPMAppRSS:
		return fmt.Sprintf("%.1f MB", r.RSSMB), true
	case BenchPMList, BenchPMRestartNode, BenchPMRestartGo:
		return fmt.Sprintf("%.1f ms", r.Ms), true
	}
	return "", false
}

// pmChecks are the process manager's targets: throughput ≥ 1.15 × PM2's
// cluster mode, no failed request over two reloads, a daemon within 20 MB
// (with no app and with a few), `kin ls` within 20 ms, and a restart within
// 10 ms of the app's own start.
func pmChecks(rs []Result) []Check {
	var out []Check
	find := func(bench, impl string) (Result, bool) {
		for _, r := range rs {
			if r.Bench == bench && r.Impl == impl && r.Skipped == "" {
				return r, true
			}
		}
		return Result{}, false
	}
	for _, r := range rs {
		if r.Impl != ImplKin || r.Skipped != "" {
			continue
		}
		switch r.Bench {
		case BenchPMHTTP:
			if ratio, base, ok := Ratio(rs, r); ok {
				out = append(out, Check{Name: fmt.Sprintf("%s %s/%s req/s", r.Bench, r.Impl, base), Value: ratio, Goal: 1.15})
			}
		case BenchPMReload:
			out = append(out, Check{Name: fmt.Sprintf("%s kin failed requests over %d reloads", r.Bench, r.N), Value: r.Failed, Goal: 0, AtMost: true})
		case BenchPMRSS, BenchPMRSSApps:
			out = append(out, Check{Name: r.Bench + " kin daemon MB", Value: r.RSSMB, Goal: 20, AtMost: true})
		case BenchPMList:
			out = append(out, Check{Name: "pm-ls kin ls ms", Value: r.Ms, Goal: 20, AtMost: true})
		case BenchPMRestartNode, BenchPMRestartGo:
			// No manager can start the app again before it has exited:
			// the app's own exit and start are not the manager's.
			if bare, ok := find(r.Bench, ImplBare); ok {
				exit, _ := find(r.Bench, ImplBareExit)
				out = append(out, Check{Name: r.Bench + " kin ms beyond the app's own exit and start", Value: r.Ms - bare.Ms - exit.Ms, Goal: 10, AtMost: true})
			}
		}
	}
	return out
}

// PMOverheads summarises what the process-manager table implies: each
// manager's restart overhead beyond the app's own start, and where the time
// of `kin ls` goes. It returns "" when rs has none of those figures.
func PMOverheads(rs []Result) string {
	get := func(bench, impl string) (float64, bool) {
		for _, r := range rs {
			if r.Bench == bench && r.Impl == impl && r.Skipped == "" {
				return r.Ms, true
			}
		}
		return 0, false
	}
	var b strings.Builder
	for _, bench := range []string{BenchPMRestartNode, BenchPMRestartGo} {
		bare, ok := get(bench, ImplBare)
		if !ok {
			continue
		}
		exit, _ := get(bench, ImplBareExit)
		withIPC, hasIPC := get(bench, ImplBareIPC)
		fmt.Fprintf(&b, "%s: the app's own exit %.1f ms and start %.1f ms", bench, exit, bare)
		if hasIPC {
			fmt.Fprintf(&b, " (%.1f ms with an IPC channel)", withIPC)
		}
		b.WriteString("; exit → restarted beyond those:")
		for _, impl := range []string{ImplKin, ImplPM2} {
			if v, ok := get(bench, impl); ok {
				fmt.Fprintf(&b, " %s %+.1f ms", impl, v-exit-bare)
				if hasIPC {
					fmt.Fprintf(&b, " (%+.1f)", v-exit-withIPC)
				}
			}
		}
		b.WriteString("\n")
	}
	ls, ok1 := get(BenchPMList, ImplKin)
	floor, ok2 := get(BenchPMList, ImplKinVersion)
	api, ok3 := get(BenchPMList, ImplKinAPI)
	if ok1 && ok2 && ok3 {
		fmt.Fprintf(&b, "kin ls %.1f ms = the kin binary's start (kin version) %.1f ms + the daemon's answer %.1f ms + the rest %.1f ms\n",
			ls, floor, api, ls-floor-api)
	}
	return b.String()
}
