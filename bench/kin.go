package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kinproc/kin/ipc"
	"github.com/kinproc/kin/proc"
)

// kinPeer is a Go parent using kin: proc starts the child with a channel
// and the benchmark talks over cmd.Channel with Send and Recv, as an
// application would. The child is this program (kinChild) or Node (child.js).
type kinPeer struct {
	cmd   *proc.Cmd
	ch    *ipc.Channel
	codec string
}

func startKin(ctx context.Context, codec, path string, args, env []string) (*kinPeer, error) {
	cmd := proc.Command(path, args...)
	cmd.Env = env
	// Borrow: the benchmark looks at each reply before the next Recv.
	cmd.IPC = &ipc.Config{Codec: ipc.Codec(codec), Borrow: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &kinPeer{cmd: cmd, ch: cmd.Channel, codec: codec}
	if _, err := p.roundTrip(ctx, 1, 1, 0); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// payload returns the message carrying size payload bytes: the bytes
// themselves in the frame codec, {"t":"p","d":"xx…"} in JSON.
func (p *kinPeer) payload(size int) []byte {
	if p.codec == CodecFrame {
		return bytes.Repeat([]byte{'x'}, size)
	}
	return []byte(`{"t":"p","d":"` + strings.Repeat("x", size) + `"}`)
}

func (p *kinPeer) roundTrip(ctx context.Context, size, n, warm int) (time.Duration, error) {
	m := ipc.Message{Data: p.payload(size)}
	one := func() error {
		if err := p.ch.Send(ctx, m); err != nil {
			return p.err(err)
		}
		r, err := p.ch.Recv(ctx)
		if err != nil {
			return p.err(err)
		}
		if len(r.Data) != len(m.Data) {
			return fmt.Errorf("echo of %d bytes, sent %d: %.60q", len(r.Data), len(m.Data), r.Data)
		}
		return nil
	}
	for i := 0; i < warm; i++ {
		if err := one(); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := one(); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

func (p *kinPeer) oneWay(ctx context.Context, size, n, warm int) (time.Duration, error) {
	m := ipc.Message{Data: p.payload(size)}
	if warm > 0 {
		if _, err := p.burst(ctx, m, warm); err != nil {
			return 0, err
		}
	}
	return p.burst(ctx, m, n)
}

func (p *kinPeer) burst(ctx context.Context, m ipc.Message, n int) (time.Duration, error) {
	if err := p.ch.Send(ctx, ipc.Message{Data: setupMessage(n)}); err != nil {
		return 0, p.err(err)
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := p.ch.Send(ctx, m); err != nil {
			return 0, p.err(err)
		}
	}
	r, err := p.ch.Recv(ctx)
	if err != nil {
		return 0, p.err(err)
	}
	d := time.Since(t0)
	if want := doneMessage(n); !bytes.Equal(r.Data, want) {
		return 0, fmt.Errorf("answer %.60q to a burst, want %s", r.Data, want)
	}
	return d, nil
}

// err adds how the child ended, if it did, to a channel error.
func (p *kinPeer) err(err error) error {
	select {
	case <-p.cmd.Done():
		if werr := p.cmd.Wait(); werr != nil {
			return fmt.Errorf("%w; child: %v", err, werr)
		}
	case <-time.After(100 * time.Millisecond):
		if s := p.cmd.RecentStderr(); s != "" {
			return fmt.Errorf("%w; child's stderr: %s", err, s)
		}
	}
	return err
}

// close closes the channel, which makes the child exit, and waits for it.
func (p *kinPeer) close() error {
	p.ch.Close()
	select {
	case <-p.cmd.Done():
	case <-time.After(10 * time.Second):
		p.cmd.Kill()
	}
	return p.cmd.Wait()
}
