package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

// spawnTimeout bounds one spawn up to its first message.
const spawnTimeout = 30 * time.Second

// Spawn times children from the moment they are spawned to their first IPC
// message, the median over 30 spawns per implementation (5 with Quick):
//
//	raw          this program via os/exec, writing one raw frame on fd 3:
//	             the floor for a Go child
//	kin-worker   this program started by proc with a frame channel, running
//	             worker.Serve, which sends Ready
//	kin-to-node  node ready.js started by proc with a JSON channel; it calls
//	             process.send('ready') first thing
//	node-fork    the peer: a Node parent's child_process.fork of ready.js,
//	             timed inside Node
//	node-to-kin  a Node parent forking this program as a worker.Serve worker
//
// Every child is waited for before the next starts; the implementations take
// turns, after one or two untimed spawns each.
func Spawn(ctx context.Context, o Options) (results []Result, err error) {
	impls, err := o.impls(SpawnImpls)
	if err != nil {
		return nil, err
	}
	e, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	var parent *nodePeer
	if e.node != "" && (slices.Contains(impls, ImplNodeFork) || slices.Contains(impls, ImplNodeToKin)) {
		if parent, err = startNodeParent(ctx, e, forkCmd{}); err != nil {
			return nil, fmt.Errorf("bench: start node parent: %w", ctxErr(ctx, err))
		}
		defer func() {
			if cerr := parent.close(); cerr != nil && err == nil {
				results, err = nil, fmt.Errorf("bench: node parent: %w", cerr)
			}
		}()
	}
	n, warm := 30, 2
	if o.Quick {
		n, warm = 5, 1
	}
	runs := make([][]Result, o.runs())
	for run := range runs {
		samples := make(map[string][]time.Duration)
		for i := 0; i < warm+n; i++ {
			for _, impl := range impls {
				if needsNode(impl) && e.node == "" {
					continue
				}
				d, err := e.spawnOnce(ctx, impl, parent)
				if err != nil {
					return nil, fmt.Errorf("bench: spawn %s: %w", impl, ctxErr(ctx, err))
				}
				if i >= warm {
					samples[impl] = append(samples[impl], d)
				}
			}
		}
		for _, impl := range impls {
			r := Result{Bench: BenchSpawn, Impl: impl, Codec: codecOf(impl), N: n}
			if needsNode(impl) && e.node == "" {
				r.Skipped = e.noNode
			} else {
				r.Ms = median(samples[impl], func(d time.Duration) float64 { return float64(d) / 1e6 })
				o.progress("%s", progressLine(r))
			}
			runs[run] = append(runs[run], r)
		}
	}
	return Median(runs), nil
}

func (e *env) spawnOnce(ctx context.Context, impl string, parent *nodePeer) (time.Duration, error) {
	switch impl {
	case ImplRaw:
		return e.spawnRaw(ctx)
	case ImplKinWorker:
		return spawnKin(ctx, ipc.Frame, e.exe, nil, childEnv(childWorker))
	case ImplKinToNode:
		return spawnKin(ctx, ipc.JSON, e.node, []string{e.script("ready.js")}, nil)
	case ImplNodeFork:
		return parent.spawn(forkCmd{Script: e.script("ready.js")})
	case ImplNodeToKin:
		return parent.spawn(forkCmd{ExecPath: e.exe, Env: map[string]string{EnvChild: childWorker}})
	}
	return 0, fmt.Errorf("unknown implementation %q", impl)
}

// spawnRaw starts this program with os/exec and a socketpair and waits for
// its one raw frame.
func (e *env) spawnRaw(ctx context.Context) (time.Duration, error) {
	mine, theirs, err := socketpair()
	if err != nil {
		return 0, err
	}
	defer mine.Close()
	stderr := &tailWriter{max: 4 << 10}
	cmd := exec.Command(e.exe)
	cmd.Env = childEnv(childRawReady)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = stderr
	t0 := time.Now()
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	defer stop()
	timer := time.AfterFunc(spawnTimeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var hdr [rawHeaderSize]byte
	_, rerr := io.ReadFull(mine, hdr[:])
	d := time.Since(t0)
	werr := cmd.Wait()
	if rerr != nil || werr != nil {
		return 0, fmt.Errorf("raw child: read: %v, exit: %v, stderr: %s", rerr, werr, stderr.String())
	}
	return d, nil
}

// spawnKin starts a child with proc and a channel of codec and waits for
// its first message, which must announce readiness.
func spawnKin(ctx context.Context, codec ipc.Codec, path string, args, env []string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, spawnTimeout)
	defer cancel()
	cmd := proc.Command(path, args...)
	cmd.Env = env
	cmd.IPC = &ipc.Config{Codec: codec}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	m, rerr := cmd.Channel.Recv(ctx)
	d := time.Since(t0)
	// Goodbye: a Shutdown message, on which a worker returns from Serve,
	// then closing the channel, on which ready.js exits. (Closing alone
	// would do, but worker.Serve may then report the cancellation of its
	// context as an error.)
	cmd.Channel.Send(ctx, ipc.Message{Kind: ipc.Shutdown})
	cmd.Channel.Flush(ctx)
	if codec == ipc.JSON {
		cmd.Channel.Close()
	}
	select {
	case <-cmd.Done():
	case <-ctx.Done():
		cmd.Kill()
	}
	cmd.Channel.Close()
	werr := cmd.Wait()
	switch {
	case rerr != nil:
		return 0, fmt.Errorf("first message: %v; child: %v", rerr, werr)
	case werr != nil:
		return 0, werr
	case !m.IsReady():
		return 0, fmt.Errorf("first message %.60q is not ready", m.Data)
	}
	return d, nil
}
