package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/pool"
	"golang.org/x/term"
)

func init() {
	register(&command{name: "pool", summary: "run JSON tasks from stdin on N warm worker processes", run: runPool})
}

const poolAbout = `Starts N worker processes running CMD and feeds them tasks: one JSON value
per line of stdin is one task's data. Writes one JSON object per task to
stdout: {"index":I,"result":…} or {"index":I,"error":{"message":…}}, where I
is the task's 0-based line number; in input order unless --unordered. Blank
lines are skipped. The workers' own stdout and stderr go to kin's stderr.

Workers speak kin's task protocol (docs/protocol.md): a Go program built with
package worker, a Node script using process.on('message')/process.send or
clients/node, a Python script using clients/python.

Exit status: 0 if every task succeeded, 1 if any failed, 2 on usage errors,
130 when interrupted.`

func runPool(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "pool", "[flags] -- CMD [ARGS…]", poolAbout)
	fs.SetInterspersed(false) // everything after CMD belongs to CMD
	workers := fs.IntP("workers", "w", runtime.NumCPU(), "number of worker processes")
	timeout := fs.Duration("timeout", 0, "per-task timeout, e.g. 30s (0: none); the worker is killed and replaced")
	maxTasks := fs.Int("max-tasks", 0, "recycle a worker after this many tasks (0: never)")
	maxMemory := fs.String("max-memory", "", "recycle a worker whose process tree uses more memory, e.g. 512M")
	unordered := fs.Bool("unordered", false, "print results as they complete instead of in input order")
	pipeline := fs.Int("pipeline", pool.DefaultPipeline, "most tasks sent ahead to a worker, used while its tasks take under 1 ms (1: off)")
	codec := fs.String("codec", "json", "channel codec: json (any language) or frame (Go workers)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cmd := fs.Args()
	if len(cmd) == 0 {
		return usageErrorf("pool: no worker command: kin pool [flags] -- CMD [ARGS…]")
	}
	if *workers < 1 || *pipeline < 1 {
		return usageErrorf("pool: --workers and --pipeline must be at least 1")
	}
	c, err := ipc.ParseCodec(*codec)
	if err != nil {
		return usageErrorf("pool: --codec: %v", err)
	}
	var maxRSS uint64
	if *maxMemory != "" {
		if maxRSS, err = parseSize(*maxMemory); err != nil {
			return usageErrorf("pool: --max-memory: %v", err)
		}
	}
	p, err := pool.New(pool.Config{
		Command:     cmd,
		Workers:     *workers,
		Pipeline:    *pipeline,
		Codec:       c,
		TaskTimeout: *timeout,
		MaxTasks:    *maxTasks,
		MaxRSS:      maxRSS,
		Stdout:      e.stderr,
		Stderr:      e.stderr,
	})
	if err != nil {
		return err
	}
	// The window bounds the results kept for reordering and the tasks in
	// flight: enough to keep every worker's pipeline and the queue full.
	r := &poolRun{p: p, e: e, ordered: !*unordered, trusted: c == ipc.JSON,
		window: 2 * (64**workers + *workers**pipeline)}
	err = r.run(ctx)
	if ctx.Err() != nil {
		p.Close()
		return ctx.Err()
	}
	p.Shutdown(context.Background())
	if err != nil {
		return err
	}
	if n := r.failed.Load(); n > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("pool: %d of %d tasks failed", n, r.done.Load())}
	}
	return nil
}

// poolRun feeds stdin to a pool and writes the results.
type poolRun struct {
	p       *pool.Pool
	e       *env
	ordered bool
	window  int  // tasks submitted and not yet written, at most
	trusted bool // results are JSON already checked by the channel

	done, failed atomic.Int64
}

type poolResult struct {
	seq   int // position among the tasks, for ordering
	index int // input line
	data  []byte
	err   error
}

func (r *poolRun) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan poolResult, r.window)
	sem := make(chan struct{}, r.window)
	var readErr error
	var total atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		readErr = r.read(ctx, func(seq, index int, data []byte, bad error) bool {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			total.Add(1)
			if bad != nil {
				results <- poolResult{seq: seq, index: index, err: bad}
				return true
			}
			err := r.p.SubmitFunc(ctx, pool.Task{Data: data}, func(out []byte, err error) {
				results <- poolResult{seq: seq, index: index, data: out, err: err}
			})
			if err != nil {
				results <- poolResult{seq: seq, index: index, err: err}
			}
			return true
		})
	}()

	stopProgress := r.progress(&total)
	defer stopProgress()
	out := bufio.NewWriterSize(r.e.stdout, 64<<10)
	defer out.Flush()
	pending := map[int]poolResult{}
	next, written := 0, int64(0)
	var line []byte
	write := func(res poolResult) error {
		line = appendResult(line[:0], res, r.trusted)
		r.done.Add(1)
		if res.err != nil {
			r.failed.Add(1)
		}
		written++
		<-sem
		_, err := out.Write(line)
		return err
	}
	reading := (<-chan struct{})(readDone)
	for {
		if reading == nil && written == total.Load() {
			return readErr
		}
		var res poolResult
		select {
		case res = <-results:
		default:
			// Nothing ready: flush what we have, so that a slow stream of
			// tasks sees its results promptly.
			if err := out.Flush(); err != nil {
				return err
			}
			select {
			case res = <-results:
			case <-reading:
				reading = nil
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !r.ordered {
			if err := write(res); err != nil {
				return err
			}
			continue
		}
		pending[res.seq] = res
		for {
			res, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err := write(res); err != nil {
				return err
			}
		}
	}
}

// read calls submit for every non-blank line of stdin; bad is set for a
// line that is not JSON. It stops when submit returns false.
func (r *poolRun) read(ctx context.Context, submit func(seq, index int, data []byte, bad error) bool) error {
	br := bufio.NewReaderSize(r.e.stdin, 64<<10)
	seq := 0
	for index := 0; ; index++ {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			data := bytes.TrimSpace(line)
			if len(data) > 0 {
				var bad error
				if !json.Valid(data) {
					bad = fmt.Errorf("stdin line %d: not a JSON value: %.60q", index+1, data)
				}
				if !submit(seq, index, data, bad) {
					return ctx.Err()
				}
				seq++
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pool: reading tasks from stdin: %w", err)
		}
	}
}

// appendResult appends res as one output line. trusted means the result is
// known to be valid JSON.
func appendResult(b []byte, res poolResult, trusted bool) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, int64(res.index), 10)
	if res.err != nil {
		b = append(b, `,"error":`...)
		e := struct {
			Message string `json:"message"`
			Stack   string `json:"stack,omitempty"`
		}{Message: res.err.Error()}
		var re *ipc.RemoteError
		if errors.As(res.err, &re) {
			e.Message, e.Stack = re.Message, re.Stack
		}
		enc, _ := json.Marshal(e)
		b = append(b, enc...)
	} else {
		b = append(b, `,"result":`...)
		switch {
		case len(res.data) == 0:
			b = append(b, "null"...)
		case trusted || json.Valid(res.data):
			b = append(b, res.data...)
		default: // a frame-codec worker's raw bytes
			enc, _ := json.Marshal(string(res.data))
			b = append(b, enc...)
		}
	}
	return append(b, "}\n"...)
}

// progress prints a status line on stderr while tasks run, when stderr is a
// terminal. It returns the function that stops it and prints a summary.
func (r *poolRun) progress(total *atomic.Int64) (stop func()) {
	f, ok := r.e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	start := time.Now()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	line := func(final bool) {
		done, failed := r.done.Load(), r.failed.Load()
		el := time.Since(start)
		rate := float64(done) / el.Seconds()
		st := r.p.Stats()
		msg := fmt.Sprintf("kin pool: %d done, %d failed, %d running, %d read · %s/s · %s",
			done, failed, st.Busy, total.Load(), humanCount(rate), el.Round(100*time.Millisecond))
		if final {
			fmt.Fprintf(f, "\r\033[K%s\n", msg)
		} else {
			fmt.Fprintf(f, "\r\033[K%s", msg)
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line(false)
			case <-quit:
				return
			}
		}
	}()
	return func() {
		close(quit)
		wg.Wait()
		line(true)
	}
}

func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// parseSize parses sizes like 512M, 1.5G, 200K, 1048576 (bytes; K, M, G,
// T are powers of 1024, with an optional trailing B or iB).
func parseSize(s string) (uint64, error) {
	t := bytes.TrimSpace([]byte(s))
	t = bytes.TrimSuffix(bytes.TrimSuffix(bytes.ToUpper(t), []byte("B")), []byte("I"))
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(string(t), 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%q is not a size (use e.g. 512M, 1.5G)", s)
	}
	return uint64(v * mult), nil
}
