package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kinproc/kin/internal/natsd"
	"github.com/kinproc/kin/queue"
	"github.com/kinproc/kin/supervisor"
	"github.com/kinproc/kin/supervisor/config"
)

func init() {
	register(&command{name: "queue", summary: "durable jobs run in worker processes (add, work, stats, get, …)", run: runQueue})
}

const queueAbout = `Durable job queues on NATS JetStream. Jobs run in worker processes speaking
kin's task protocol (any language; docs/protocol.md), each with a timeout and
a memory limit; a job that crashes, hangs or grows too big has its worker's
process tree killed, is recorded with the cause and retried, and after its
last attempt goes to the dead-letter list.

Commands:
  add <queue> [DATA-JSON] [-f FILE.jsonl]   add jobs; prints their ids
  work <queue> [-c N] -- CMD [ARGS…]         run N worker processes of CMD
  stats <queue> [--json]                    count waiting, active, … jobs
  ls [--json]                               list the queues with their counts
  get <queue> <id> [--json]                 a job's state, attempts, result
  events <queue> [-f] [--since DUR]         the queue's events
  retry <queue> <id|--dead>                 send dead jobs back to the queue
  purge <queue>                             drop waiting, delayed, dead jobs
  delete <queue>                            remove the queue altogether

Where the queues live: the kin daemon's embedded NATS server (started on
first use, store under $KIN_HOME/nats), or the NATS servers named by
$KIN_NATS_URL (comma-separated; $KIN_NATS_USER and $KIN_NATS_PASSWORD, and
$KIN_NATS_REPLICAS for the queues created), which needs no daemon.

Exit status: 0 success, 1 failure (a job that ended dead with --wait, a
server error), 2 usage error or no such job, 130 interrupted.`

type queueCmd struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var queueCmds = map[string]queueCmd{
	"add":    {"add jobs", runQueueAdd},
	"work":   {"run worker processes", runQueueWork},
	"stats":  {"count a queue's jobs", runQueueStats},
	"ls":     {"list the queues", runQueueLs},
	"get":    {"show a job", runQueueGet},
	"events": {"print a queue's events", runQueueEvents},
	"retry":  {"retry dead jobs", runQueueRetry},
	"purge":  {"drop a queue's jobs", runQueuePurge},
	"delete": {"remove a queue", runQueueDelete},
}

func runQueue(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := e.stdout
		if len(args) == 0 {
			w = e.stderr
		}
		fmt.Fprintf(w, "Usage: kin queue <command> [flags] [args]\n\n%s\n", queueAbout)
		if len(args) == 0 {
			return &exitError{code: exitUsage}
		}
		return nil
	}
	c, ok := queueCmds[args[0]]
	if !ok {
		names := make([]string, 0, len(queueCmds))
		for n := range queueCmds {
			names = append(names, n)
		}
		sort.Strings(names)
		return usageErrorf("queue: unknown command %q: want one of %s", args[0], strings.Join(names, ", "))
	}
	return c.run(ctx, e, args[1:])
}

// natsInfo says where the queues are: $KIN_NATS_URL, or the daemon's NATS
// (starting the daemon, and its embedded server, when needed).
func natsInfo(ctx context.Context, e *env) (supervisor.NATSInfo, error) {
	if urls := natsd.ParseURLs(os.Getenv("KIN_NATS_URL")); len(urls) > 0 {
		info := supervisor.NATSInfo{URLs: urls, User: os.Getenv("KIN_NATS_USER"), Password: os.Getenv("KIN_NATS_PASSWORD")}
		if v := os.Getenv("KIN_NATS_REPLICAS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return info, usageErrorf("KIN_NATS_REPLICAS=%s: want 1 to 5", v)
			}
			info.Replicas = n
		}
		return info, nil
	}
	dc, err := daemonClient(ctx, e, true)
	if err != nil {
		return supervisor.NATSInfo{}, err
	}
	defer dc.Close()
	info, err := dc.NATS(ctx, nil)
	if err != nil {
		return info, apiError(err)
	}
	return info, nil
}

// queueConnect connects to the queues' NATS; extra are nats.go options.
func queueConnect(ctx context.Context, e *env, name string, extra ...nats.Option) (*queue.Client, supervisor.NATSInfo, error) {
	info, err := natsInfo(ctx, e)
	if err != nil {
		return nil, info, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := queue.Connect(cctx, queue.ConnectConfig{
		URLs: info.URLs, User: info.User, Password: info.Password,
		Name: "kin " + name, Options: extra,
		Queue: queue.QueueConfig{Replicas: info.Replicas},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, info, ctx.Err()
		}
		return nil, info, &exitError{code: exitFailure, err: fmt.Errorf("cannot reach the queue's NATS at %s: %v", strings.Join(info.URLs, ","), err)}
	}
	return c, info, nil
}

// queueError turns package queue's errors into the CLI's: an unknown job or
// queue is exit 2, a bad argument too.
func queueError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) || errors.Is(err, context.Canceled) {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), "queue: ")
	if errors.Is(err, queue.ErrNotFound) || errors.Is(err, queue.ErrNoQueue) || errors.Is(err, queue.ErrNotDead) {
		return &exitError{code: exitUsage, err: errors.New(msg)}
	}
	return &exitError{code: exitFailure, err: errors.New(msg)}
}

// posArgs returns the positional arguments of a subcommand: a queue, then
// want more (up to want with atMost).
func posArgs(fs interface{ Args() []string }, name string, want int, atMost bool) ([]string, error) {
	a := fs.Args()
	if len(a) == 0 {
		return nil, usageErrorf("queue %s: no queue named: kin queue %s <queue> …", name, name)
	}
	if len(a)-1 > want || (!atMost && len(a)-1 < want) {
		return nil, usageErrorf("queue %s: want %d argument(s) after the queue, got %d: %q", name, want, len(a)-1, a[1:])
	}
	return a, nil
}

const addAbout = `Add jobs to a queue and print their ids, one per line. DATA-JSON is the job's
data (one JSON document; none means null). -f reads one job's data per line
of FILE ("-" for stdin; blank lines skipped): the whole file is checked before
anything is added, and a line that is no JSON is reported as FILE:LINE.
--id names the job: adding a job whose id is known adds nothing and prints
the same id (an idempotency key). With --wait, kin waits for each job to
complete and prints its result instead (exit 1 if one ends dead).`

func runQueueAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue add", "<queue> [DATA-JSON] [-f FILE.jsonl] [flags]", addAbout)
	file := fs.StringP("file", "f", "", "read one job's data per line from FILE (- for stdin)")
	id := fs.String("id", "", "the job's id, also its idempotency key (one job only)")
	delay := fs.Duration("delay", 0, "hold the job back this long, e.g. 30s")
	prio := fs.String("priority", "normal", "high, normal or low")
	attempts := fs.Int("attempts", 0, "attempts before the job is dead-lettered (0: 3)")
	backoff := fs.Duration("backoff", 0, "wait before the second attempt, doubling for each next one (0: 1s)")
	timeout := fs.Duration("timeout", 0, "each attempt's timeout (0: the worker's)")
	maxMem := fs.String("max-memory", "", "memory limit of the worker process tree, e.g. 256M")
	wait := fs.Bool("wait", false, "wait for the jobs to finish and print their results")
	asJSON := fs.Bool("json", false, "with --wait, print each job's whole record as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := posArgs(fs, "add", 1, true)
	if err != nil {
		return err
	}
	qname := a[0]
	spec := queue.JobSpec{ID: *id, Delay: *delay, Priority: queue.Priority(*prio), Attempts: *attempts, Timeout: *timeout}
	switch spec.Priority {
	case queue.High, queue.Normal, queue.Low:
	default:
		return usageErrorf("queue add: --priority %q: want high, normal or low", *prio)
	}
	if *backoff < 0 || *delay < 0 || *timeout < 0 || *attempts < 0 {
		return usageErrorf("queue add: negative --backoff, --delay, --timeout or --attempts")
	}
	if *backoff > 0 {
		spec.Backoff = queue.Backoff{Delay: *backoff}
	}
	if *maxMem != "" {
		n, err := supervisor.ParseSize(*maxMem)
		if err != nil || n <= 0 {
			return usageErrorf("queue add: --max-memory %q: want a size such as 256M", *maxMem)
		}
		spec.MaxMemory = uint64(n)
	}
	var datas []json.RawMessage
	switch {
	case *file != "" && len(a) > 1:
		return usageErrorf("queue add: give DATA-JSON or -f, not both")
	case *file != "":
		if datas, err = readJobLines(e, *file); err != nil {
			return err
		}
		if *id != "" && len(datas) != 1 {
			return usageErrorf("queue add: --id names one job, and %s holds %d", *file, len(datas))
		}
		if len(datas) == 0 {
			return usageErrorf("queue add: %s holds no jobs", *file)
		}
	case len(a) > 1:
		if !json.Valid([]byte(a[1])) {
			return usageErrorf("queue add: DATA-JSON %q is no JSON (quote strings: '\"text\"')", a[1])
		}
		datas = []json.RawMessage{json.RawMessage(a[1])}
	default:
		datas = []json.RawMessage{nil}
	}
	c, _, err := queueConnect(ctx, e, "queue add")
	if err != nil {
		return err
	}
	defer c.Close()
	var ids []string
	if len(datas) == 1 {
		spec.Data = datas[0]
		id, err := c.Add(ctx, qname, spec)
		if err != nil {
			return queueError(err)
		}
		ids = []string{id}
	} else {
		const chunk = 1000
		specs := make([]queue.JobSpec, 0, chunk)
		for i := 0; i < len(datas); i += chunk {
			specs = specs[:0]
			for _, d := range datas[i:min(i+chunk, len(datas))] {
				s := spec
				s.Data = d
				specs = append(specs, s)
			}
			got, err := c.AddBatch(ctx, qname, specs)
			ids = append(ids, got...)
			if err != nil {
				printLines(e.stdout, ids)
				return queueError(fmt.Errorf("%w (the %d jobs above were added)", err, len(ids)))
			}
		}
	}
	if !*wait {
		return printLines(e.stdout, ids)
	}
	failed := 0
	for _, id := range ids {
		job, err := c.Wait(ctx, qname, id)
		var je *queue.JobError
		switch {
		case errors.As(err, &je):
			failed++
		case err != nil:
			return queueError(err)
		}
		if *asJSON {
			if err := json.NewEncoder(e.stdout).Encode(job); err != nil {
				return err
			}
			continue
		}
		prefix := ""
		if len(ids) > 1 {
			prefix = id + " "
		}
		if je != nil {
			fmt.Fprintf(e.stdout, "%sdead: %s\n", prefix, failure(je))
			continue
		}
		res := string(job.Result)
		if res == "" {
			res = "null"
		}
		fmt.Fprintf(e.stdout, "%s%s\n", prefix, res)
	}
	if failed > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d of %d jobs ended dead (kin queue get %s <id> shows why)", failed, len(ids), qname)}
	}
	return nil
}

func printLines(w io.Writer, lines []string) error {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}

// readJobLines reads one JSON document per non-blank line of name.
func readJobLines(e *env, name string) ([]json.RawMessage, error) {
	var r io.Reader
	if name == "-" {
		r = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, usageErrorf("queue add: %v", err)
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var out []json.RawMessage
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if !json.Valid(b) {
			return nil, usageErrorf("queue add: %s:%d: not JSON: %.60q (nothing was added)", name, line, b)
		}
		out = append(out, json.RawMessage(bytes.Clone(b)))
	}
	if err := sc.Err(); err != nil {
		return nil, &exitError{code: exitFailure, err: fmt.Errorf("queue add: reading %s: %v (nothing was added)", name, err)}
	}
	return out, nil
}

const workAbout = `Run N worker processes of CMD that take jobs from the queue until interrupted
(SIGINT or SIGTERM: running jobs finish, then kin exits 0). A job's data is
the task's data; the worker's answer is the job's result (docs/protocol.md:
a Go program built with package worker, a Node script using process.on
('message') and process.send, a Python script using clients/python). CMD is
run as kin start runs a script: .js with node, .py with python3.

This is what an app with a queue mapping in a config file runs, under the
daemon. Progress goes to stderr every 10 s while jobs are done.`

func runQueueWork(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue work", "<queue> [-c N] [flags] -- CMD [ARGS…]", workAbout)
	conc := fs.IntP("concurrency", "c", runtime.NumCPU(), "worker processes, one job each at a time")
	timeout := fs.Duration("timeout", 0, "timeout of jobs that set none (0: none)")
	maxMem := fs.String("max-memory", "", "memory limit of jobs that set none, e.g. 512M")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long running jobs may finish after a stop signal")
	quiet := fs.BoolP("quiet", "q", false, "no progress lines, only failures")
	// Flags may follow the queue's name; everything after "--" is the
	// worker's command line, flags and all.
	var cmdArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, cmdArgs = args[:i], args[i+1:]
	} else {
		fs.SetInterspersed(false)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a := fs.Args()
	if len(a) == 0 {
		return usageErrorf("queue work: want a queue and a worker command: kin queue work <queue> [-c N] -- CMD [ARGS…]")
	}
	qname := a[0]
	cmdArgs = append(a[1:], cmdArgs...)
	if len(cmdArgs) == 0 {
		return usageErrorf("queue work: no worker command: kin queue work %s [-c N] -- CMD [ARGS…]", qname)
	}
	if *conc < 1 {
		return usageErrorf("queue work: -c %d: want at least 1", *conc)
	}
	if *timeout < 0 || *drain < 0 {
		return usageErrorf("queue work: negative --timeout or --drain-timeout")
	}
	var maxRSS uint64
	if *maxMem != "" {
		n, err := supervisor.ParseSize(*maxMem)
		if err != nil || n <= 0 {
			return usageErrorf("queue work: --max-memory %q: want a size such as 512M", *maxMem)
		}
		maxRSS = uint64(n)
	}
	command, _ := config.Resolve(cmdArgs[0], "", nil, cmdArgs[1:])

	// Under the daemon, or in a shell: SIGTERM and SIGINT both stop taking
	// jobs and let the running ones finish.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rv := &revive{e: e}
	c, info, err := queueConnect(ctx, e, "queue work "+qname,
		nats.DisconnectErrHandler(func(*nats.Conn, error) { rv.lost(ctx) }),
		nats.ReconnectHandler(func(*nats.Conn) { rv.back() }),
	)
	if err != nil {
		return err
	}
	defer c.Close()
	rv.embedded = info.Embedded && os.Getenv("KIN_NATS_URL") == ""

	var mu sync.Mutex
	var done, failed, dead uint64
	last := time.Now()
	onDone := func(j *queue.Job) {
		mu.Lock()
		defer mu.Unlock()
		switch j.State {
		case queue.Completed:
			done++
		case queue.Dead:
			dead++
			fmt.Fprintf(e.stderr, "kin: job %s dead after %d attempt(s): %s\n", j.ID, j.Attempt, failure(j.Error))
		default:
			failed++
			if j.Error != nil {
				fmt.Fprintf(e.stderr, "kin: job %s attempt %d/%d failed: %s\n", j.ID, j.Attempt, j.Attempts, failure(j.Error))
			}
		}
		if !*quiet && time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(e.stderr, "kin: %s: %d completed, %d failed attempts, %d dead\n", qname, done, failed, dead)
		}
	}
	if !*quiet {
		fmt.Fprintf(e.stderr, "kin: working on queue %s with %d × %s (Ctrl-C stops)\n", qname, *conc, strings.Join(command, " "))
	}
	st, err := c.Work(ctx, qname, queue.WorkConfig{
		Command: command, Concurrency: *conc, Timeout: *timeout, MaxMemory: maxRSS,
		DrainTimeout: *drain, Log: logger, OnDone: onDone,
	})
	if !*quiet || st.Duplicates > 0 {
		fmt.Fprintf(e.stderr, "kin: %s: %d completed, %d failed attempts, %d dead, %d duplicates, %d given back\n",
			qname, st.Completed, st.Failed, st.Dead, st.Duplicates, st.Released)
	}
	if err != nil && ctx.Err() == nil {
		return queueError(err)
	}
	return nil
}

// revive brings the daemon's embedded NATS server back when a worker loses
// it (the daemon was killed): it restarts the daemon, which starts the
// server on the same port and store, and nats.go reconnects by itself.
type revive struct {
	e        *env
	embedded bool
	mu       sync.Mutex
	down     bool
}

func (r *revive) lost(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.embedded || r.down {
		return
	}
	r.down = true
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			r.mu.Lock()
			down := r.down
			r.mu.Unlock()
			if !down {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			if _, err := natsInfo(cctx, r.e); err != nil && ctx.Err() == nil {
				fmt.Fprintf(r.e.stderr, "kin: the queue's server is gone and the daemon cannot bring it back yet: %v\n", err)
			}
			cancel()
		}
	}()
}

func (r *revive) back() {
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
}

func runQueueStats(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue stats", "<queue> [--json]", "Count a queue's jobs: waiting, active, delayed, completed, failed (attempts), dead.")
	asJSON := fs.Bool("json", false, "print a JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := posArgs(fs, "stats", 0, false)
	if err != nil {
		return err
	}
	c, _, err := queueConnect(ctx, e, "queue stats")
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Stats(ctx, a[0])
	if err != nil {
		return queueError(err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(st)
	}
	return statsTable([]string{a[0]}, []queue.Stats{st}).write(e.stdout)
}

func statsTable(names []string, stats []queue.Stats) *table {
	t := &table{
		headers: []string{"queue", "waiting", "active", "delayed", "completed", "failed", "dead"},
		right:   map[string]bool{"waiting": true, "active": true, "delayed": true, "completed": true, "failed": true, "dead": true},
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	for i, st := range stats {
		t.add(names[i], u(st.Waiting), u(st.Active), u(st.Delayed), u(st.Completed), u(st.Failed), u(st.Dead))
	}
	return t
}

func runQueueLs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue ls", "[--json]", "List the queues with their counts.")
	asJSON := fs.Bool("json", false, "print a JSON array of {name, waiting, active, …}")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("queue ls: no arguments expected, got %q", fs.Args())
	}
	c, _, err := queueConnect(ctx, e, "queue ls")
	if err != nil {
		return err
	}
	defer c.Close()
	names, err := c.List(ctx)
	if err != nil {
		return queueError(err)
	}
	sort.Strings(names)
	stats := make([]queue.Stats, len(names))
	for i, n := range names {
		if stats[i], err = c.Stats(ctx, n); err != nil {
			return queueError(err)
		}
	}
	if *asJSON {
		type row struct {
			Name string `json:"name"`
			queue.Stats
		}
		out := make([]row, len(names))
		for i := range names {
			out[i] = row{names[i], stats[i]}
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	if len(names) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no queues: add a job with kin queue add <queue> [DATA-JSON]")
		return err
	}
	return statsTable(names, stats).write(e.stdout)
}

func runQueueGet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue get", "<queue> <id> [--json]", "Show a job: its state, attempts, result or error, and timings.")
	asJSON := fs.Bool("json", false, "print the job's record as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := posArgs(fs, "get", 1, false)
	if err != nil {
		return err
	}
	c, _, err := queueConnect(ctx, e, "queue get")
	if err != nil {
		return err
	}
	defer c.Close()
	job, err := c.Get(ctx, a[0], a[1])
	if err != nil {
		return queueError(err)
	}
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(job)
	}
	return printJob(e.stdout, job)
}

func printJob(w io.Writer, j *queue.Job) error {
	t := &table{headers: []string{"field", "value"}}
	t.add("id", j.ID)
	t.add("state", string(j.State))
	t.add("priority", string(j.Priority))
	t.add("attempt", fmt.Sprintf("%d of %d", j.Attempt, j.Attempts))
	ts := func(name string, at time.Time) {
		if !at.IsZero() {
			t.add(name, at.Local().Format("2006-01-02 15:04:05.000"))
		}
	}
	ts("added", j.Added)
	ts("started", j.Started)
	ts("finished", j.Finished)
	ts("run at", j.RunAt)
	if !j.Started.IsZero() && !j.Finished.IsZero() {
		t.add("took", j.Finished.Sub(j.Started).Round(time.Microsecond).String())
	}
	if j.Worker != "" {
		t.add("worker", j.Worker)
	}
	if len(j.Data) > 0 {
		t.add("data", string(j.Data))
	}
	if len(j.Progress) > 0 {
		t.add("progress", string(j.Progress))
	}
	if len(j.Result) > 0 {
		t.add("result", string(j.Result))
	}
	if j.Error != nil {
		t.add("error", j.Error.Message)
		t.add("cause", string(j.Error.Cause))
	}
	t.noHeader = true
	return t.write(w)
}

const eventsAbout = `Print a queue's events, one line each: time, type, job id, attempt, and the
result or error. Without -f, prints the kept events of the last --since and
exits; with -f, then follows new ones until interrupted. Types: active,
progress, completed, failed (an attempt failed; another follows), dead,
waiting.`

func runQueueEvents(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue events", "<queue> [-f] [--since DUR] [--type T]… [--json]", eventsAbout)
	follow := fs.BoolP("follow", "f", false, "keep printing new events")
	since := fs.Duration("since", time.Hour, "replay the kept events of this long ago on (0: none)")
	types := fs.StringSlice("type", nil, "only events of this type (repeatable)")
	id := fs.String("id", "", "only the events of this job")
	asJSON := fs.Bool("json", false, "print one JSON object per event")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := posArgs(fs, "events", 0, false)
	if err != nil {
		return err
	}
	if *since < 0 {
		return usageErrorf("queue events: negative --since")
	}
	opts := queue.EventsOptions{ID: *id}
	for _, t := range *types {
		switch et := queue.EventType(t); et {
		case queue.EventActive, queue.EventProgress, queue.EventCompleted, queue.EventFailed, queue.EventDead, queue.EventWaiting:
			opts.Types = append(opts.Types, et)
		default:
			return usageErrorf("queue events: --type %q: want active, progress, completed, failed, dead or waiting", t)
		}
	}
	if *since > 0 {
		opts.Since = time.Now().Add(-*since)
	}
	c, _, err := queueConnect(ctx, e, "queue events")
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Stats(ctx, a[0]); err != nil {
		return queueError(err)
	}
	ectx := ctx
	var idle *time.Timer
	if !*follow {
		// Replay what is kept, then stop once nothing more arrives.
		var cancel context.CancelFunc
		ectx, cancel = context.WithCancel(ctx)
		defer cancel()
		idle = time.AfterFunc(time.Second, cancel)
		defer idle.Stop()
	}
	bw := bufio.NewWriter(e.stdout)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	err = c.Events(ectx, a[0], opts, func(ev queue.Event) error {
		if idle != nil {
			idle.Reset(300 * time.Millisecond)
		}
		if *asJSON {
			err := enc.Encode(struct {
				Type queue.EventType `json:"type"`
				Seq  uint64          `json:"seq"`
				Time time.Time       `json:"time"`
				Job  *queue.Job      `json:"job"`
			}{ev.Type, ev.Seq, ev.Time, ev.Job})
			if *follow {
				bw.Flush()
			}
			return err
		}
		j := ev.Job
		detail := ""
		switch {
		case j.Error != nil && (ev.Type == queue.EventFailed || ev.Type == queue.EventDead):
			detail = failure(j.Error)
		case ev.Type == queue.EventCompleted:
			detail = string(j.Result)
		case ev.Type == queue.EventProgress:
			detail = string(j.Progress)
		}
		_, err := fmt.Fprintf(bw, "%s  %-9s  %s  %d/%d  %s\n", ev.Time.Local().Format("15:04:05.000"), ev.Type, j.ID, j.Attempt, j.Attempts, detail)
		if *follow {
			bw.Flush()
		}
		return err
	})
	if err != nil && ectx.Err() == nil {
		return queueError(err)
	}
	return nil
}

func runQueueRetry(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "queue retry", "<queue> <id|--dead>", "Send a dead job (or, with --dead, every dead job) back to its queue, its attempts counted afresh.")
	all := fs.Bool("dead", false, "retry every dead job")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	want := 1
	if *all {
		want = 0
	}
	a, err := posArgs(fs, "retry", want, false)
	if err != nil {
		return usageErrorf("queue retry: want a queue and a job id, or a queue and --dead")
	}
	c, _, err := queueConnect(ctx, e, "queue retry")
	if err != nil {
		return err
	}
	defer c.Close()
	if *all {
		n, err := c.RetryDead(ctx, a[0])
		if err != nil {
			return queueError(err)
		}
		fmt.Fprintf(e.stdout, "%d dead job(s) sent back to %s\n", n, a[0])
		return nil
	}
	if err := c.Retry(ctx, a[0], a[1]); err != nil {
		return queueError(err)
	}
	fmt.Fprintf(e.stdout, "%s sent back to %s\n", a[1], a[0])
	return nil
}

func runQueuePurge(ctx context.Context, e *env, args []string) error {
	return queueOp(ctx, e, args, "purge", "Drop every waiting, delayed and dead job of a queue, and the kept records; running jobs finish.",
		func(c *queue.Client, q string) error { return c.Purge(ctx, q) }, "purged")
}

func runQueueDelete(ctx context.Context, e *env, args []string) error {
	return queueOp(ctx, e, args, "delete", "Remove a queue and everything in it (workers of it stop finding jobs).",
		func(c *queue.Client, q string) error { return c.Delete(ctx, q) }, "deleted")
}

func queueOp(ctx context.Context, e *env, args []string, name, about string, op func(*queue.Client, string) error, did string) error {
	fs := newFlags(e, "queue "+name, "<queue>", about)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	a, err := posArgs(fs, name, 0, false)
	if err != nil {
		return err
	}
	c, _, err := queueConnect(ctx, e, "queue "+name)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Stats(ctx, a[0]); err != nil {
		return queueError(err)
	}
	if err := op(c, a[0]); err != nil {
		return queueError(err)
	}
	fmt.Fprintf(e.stdout, "queue %s %s\n", a[0], did)
	return nil
}

// failure formats an attempt's failure for a line: the message and cause.
func failure(e *queue.JobError) string {
	if e == nil {
		return "failed"
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Cause)
}
