// Package worker is the child's side of kin's task protocol for Go programs:
// it finds the channel the parent gave (kin's KIN_CHANNEL_FD, or Node's
// NODE_CHANNEL_FD when a Node program forked this one with
// child_process.fork), says it is ready, and runs a handler for each task,
// one at a time and in order, until the parent asks it to shut down or goes
// away.
//
//	func main() {
//		worker.Serve(func(ctx context.Context, t *worker.Task) ([]byte, error) {
//			return t.Data, nil // echo
//		})
//	}
//
// A program can also register named handlers and start copies of itself as
// workers (self re-exec): call Main first thing in main, and give pool the
// name (pool.Config.Func).
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"syscall"

	"github.com/kinproc/kin/ipc"
)

// EnvWorker names the registered handler a re-executed program runs.
const EnvWorker = "KIN_WORKER"

// Handler runs one task and returns its result's payload, or an error that
// the parent receives as the task's error. ctx ends when serving ends.
// In the JSON codec the payloads are JSON documents; Data may be nil when
// the task carried none, and a nil result is sent as no data.
type Handler func(ctx context.Context, t *Task) ([]byte, error)

// Task is one task being run.
type Task struct {
	// ID is the task's correlation id on the channel.
	ID uint64
	// Data is the task's payload.
	Data []byte
	ch   *ipc.Channel
	ctx  context.Context
}

// Progress reports progress of the task to the parent; the task goes on.
func (t *Task) Progress(data []byte) error {
	return t.ch.Send(t.ctx, ipc.Message{Kind: ipc.Progress, ID: t.ID, Data: data})
}

// JSON adapts a function of Go values to a Handler: the task's data is
// decoded into In and the returned Out is encoded as the result.
func JSON[In, Out any](fn func(ctx context.Context, in In) (Out, error)) Handler {
	return func(ctx context.Context, t *Task) ([]byte, error) {
		var in In
		if len(t.Data) > 0 {
			if err := json.Unmarshal(t.Data, &in); err != nil {
				return nil, fmt.Errorf("task data: %w", err)
			}
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

// Serve runs h for every task on the channel inherited from the parent and
// returns nil when the parent asks for shutdown or closes the channel. It
// returns an error when there is no channel or it breaks.
func Serve(h Handler) error {
	ch, err := ipc.FromEnv(ipc.Config{})
	if err != nil {
		return err
	}
	defer ch.Close()
	return ServeChannel(ch, h)
}

// ServeChannel is Serve on a given channel, which it does not close.
// Tasks run one at a time, and the channel is read only between them (a
// read per task, no goroutine handing messages over): a task runs to its
// end even if the parent goes away meanwhile. Parents that must stop a
// runaway task kill the worker: kin's pool does on timeout, and its workers
// die with it.
func ServeChannel(ch *ipc.Channel, h Handler) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()                  // the tasks' context ends when serving does
	recvCtx := context.Background() // no cancellation: Recv stays on its fast path
	// Once the parent has closed the channel, failures to talk to it are
	// the end of the conversation, not errors: EOF on reads, EPIPE or
	// ECONNRESET on writes, whichever the race between them shows first.
	gone := func(err error) error {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(ch.Err(), io.EOF) ||
			errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return nil
		}
		return err
	}
	if err := ch.Send(ctx, ipc.Message{Kind: ipc.Ready}); err != nil {
		return gone(err)
	}
	for {
		m, err := ch.Recv(recvCtx)
		if err != nil {
			return gone(err)
		}
		switch m.Kind {
		case ipc.Task:
			if err := runTask(ctx, ch, h, m); err != nil {
				return gone(err)
			}
		case ipc.Shutdown:
			return gone(ch.Flush(ctx))
		default:
			for _, f := range m.Files {
				f.Close()
			}
		}
	}
}

func runTask(ctx context.Context, ch *ipc.Channel, h Handler, m ipc.Message) error {
	t := &Task{ID: m.ID, Data: m.Data, ch: ch, ctx: ctx}
	for _, f := range m.Files {
		f.Close()
	}
	out, err := call(ctx, h, t)
	if err != nil {
		msg, stack := err.Error(), ""
		var p *panicError
		if errors.As(err, &p) {
			stack = p.stack
		}
		return ch.Send(ctx, ipc.Message{Kind: ipc.Error, ID: m.ID, Data: ipc.EncodeError(msg, stack)})
	}
	if ch.Codec() == ipc.JSON && len(out) > 0 && !json.Valid(out) {
		return ch.Send(ctx, ipc.Message{Kind: ipc.Error, ID: m.ID,
			Data: ipc.EncodeError(fmt.Sprintf("worker: handler returned invalid JSON: %.60q", out), "")})
	}
	return ch.Send(ctx, ipc.Message{Kind: ipc.Result, ID: m.ID, Data: out})
}

type panicError struct {
	value any
	stack string
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// call runs h, turning a panic into an error for that task: the worker goes
// on serving, as net/http does.
func call(ctx context.Context, h Handler, t *Task) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: string(debug.Stack())}
		}
	}()
	return h(ctx, t)
}

var (
	regMu    sync.Mutex
	registry = map[string]Handler{}
)

// Register makes h available as the worker called name, for programs that
// start copies of themselves as workers. Register from init or main before
// calling Main; a name registered twice panics.
func Register(name string, h Handler) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("worker: Register called twice for " + name)
	}
	registry[name] = h
}

// Registered returns the names of the registered workers, sorted.
func Registered() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Main serves the registered worker named by $KIN_WORKER and exits the
// process when it is done; when the variable is unset it returns at once.
// Call it first thing in main, after the Register calls.
func Main() {
	name := os.Getenv(EnvWorker)
	if name == "" {
		return
	}
	os.Unsetenv(EnvWorker)
	regMu.Lock()
	h := registry[name]
	regMu.Unlock()
	if h == nil {
		fmt.Fprintf(os.Stderr, "worker: no worker registered as %q (registered: %v)\n", name, Registered())
		os.Exit(2)
	}
	if err := Serve(h); err != nil {
		fmt.Fprintf(os.Stderr, "worker %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Command returns how to start this program as the registered worker name:
// the executable's path, no arguments, and the environment entry that
// selects the worker (to append to the child's environment).
func Command(name string) (path string, envEntry string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("worker: cannot find this program to re-execute: %w", err)
	}
	return exe, EnvWorker + "=" + name, nil
}
