package bench

import (
	"bufio"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kinproc/kin/proc"
)

// scripts are the Node programs of the benchmarks: parent.js (a Node parent
// driven over stdin), child.js (an unmodified echoing child) and ready.js
// (a child that says "ready" at once).
//
//go:embed node/*.js
var scripts embed.FS

// writeScripts writes the Node scripts to a new temporary directory.
func writeScripts() (string, error) {
	dir, err := os.MkdirTemp("", "kin-bench-")
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	ents, _ := scripts.ReadDir("node")
	for _, e := range ents {
		b, err := scripts.ReadFile("node/" + e.Name())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("bench: write Node scripts: %w", err)
		}
	}
	return dir, nil
}

func (e *env) script(name string) string { return filepath.Join(e.dir, name) }

// forkCmd says which child parent.js forks: a Node script, or a program
// (this one) with extra environment.
type forkCmd struct {
	Script   string            `json:"script,omitempty"`
	ExecPath string            `json:"execPath,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
}

// nodePeer drives parent.js, a Node parent that does the measuring itself
// (with process.hrtime) and answers each command with one line.
type nodePeer struct {
	cmd  *proc.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	stop func() bool
}

// startNodeParent starts parent.js; when child names a script or a
// program, parent.js forks it for the IPC benchmarks.
func startNodeParent(ctx context.Context, e *env, child forkCmd) (*nodePeer, error) {
	cmd := proc.Command(e.node, e.script("parent.js"))
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		in.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &nodePeer{cmd: cmd, in: in, out: bufio.NewReader(out)}
	// Ending ctx kills the parent and its child, which ends any command.
	p.stop = context.AfterFunc(ctx, func() { cmd.Kill() })
	if child.Script != "" || child.ExecPath != "" {
		if _, err := p.call(struct {
			Op string `json:"op"`
			forkCmd
		}{"fork", child}); err != nil {
			p.close()
			return nil, err
		}
		if _, err := p.roundTrip(ctx, 1, 1, 0); err != nil {
			p.close()
			return nil, err
		}
	}
	return p, nil
}

// call sends one command to parent.js and returns the nanoseconds it answers.
func (p *nodePeer) call(cmd any) (time.Duration, error) {
	b, err := json.Marshal(cmd)
	if err != nil {
		return 0, err
	}
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return 0, p.err(err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return 0, p.err(err)
	}
	var answer struct {
		NS    *float64 `json:"ns"`
		Error string   `json:"error"`
	}
	if err := json.Unmarshal(line, &answer); err != nil {
		return 0, fmt.Errorf("node parent: bad answer %.80q: %v", line, err)
	}
	if answer.Error != "" {
		return 0, fmt.Errorf("node parent: %s", answer.Error)
	}
	if answer.NS == nil {
		return 0, fmt.Errorf("node parent: answer without a time: %.80q", line)
	}
	return time.Duration(*answer.NS), nil
}

type measureCmd struct {
	Op   string `json:"op"`
	Size int    `json:"size"`
	N    int    `json:"n"`
	Warm int    `json:"warm"`
}

func (p *nodePeer) roundTrip(ctx context.Context, size, n, warm int) (time.Duration, error) {
	return p.call(measureCmd{"rtt", size, n, warm})
}

func (p *nodePeer) oneWay(ctx context.Context, size, n, warm int) (time.Duration, error) {
	return p.call(measureCmd{"oneway", size, n, warm})
}

// spawn has parent.js fork child and time it up to its first message.
func (p *nodePeer) spawn(child forkCmd) (time.Duration, error) {
	return p.call(struct {
		Op string `json:"op"`
		forkCmd
	}{"spawn", child})
}

// err adds how parent.js ended, if it did, to an I/O error.
func (p *nodePeer) err(err error) error {
	select {
	case <-p.cmd.Done():
		if werr := p.cmd.Wait(); werr != nil {
			return fmt.Errorf("node parent: %w; %v", err, werr)
		}
	case <-time.After(100 * time.Millisecond):
		if s := p.cmd.RecentStderr(); s != "" {
			return fmt.Errorf("node parent: %w; stderr: %s", err, s)
		}
	}
	return fmt.Errorf("node parent: %w", err)
}

// close closes parent.js's stdin, upon which it disconnects its child and
// both exit, and waits for them.
func (p *nodePeer) close() error {
	p.stop()
	p.in.Close()
	t := time.AfterFunc(10*time.Second, func() { p.cmd.Kill() })
	defer t.Stop()
	_, cerr := io.Copy(io.Discard, p.out)
	err := p.cmd.Wait()
	if err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	return err
}
