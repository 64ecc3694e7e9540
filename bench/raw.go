package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// rawPeer is the raw Go↔Go baseline's parent: frames written through a
// 64 KiB bufio.Writer and read through a bufio.Reader on a socketpair whose
// other end is the child's fd 3. It uses os/exec and net directly, nothing
// of kin's.
type rawPeer struct {
	cmd    *exec.Cmd
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	buf    []byte
	stderr *tailWriter
	stop   func() bool
}

// socketpair returns a connected AF_UNIX stream pair, both close-on-exec.
func socketpair() (mine, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "bench-parent"), os.NewFile(uintptr(fds[1]), "bench-child"), nil
}

func startRaw(ctx context.Context, exe string) (*rawPeer, error) {
	mine, theirs, err := socketpair()
	if err != nil {
		return nil, err
	}
	p := &rawPeer{stderr: &tailWriter{max: 4 << 10}}
	p.cmd = exec.Command(exe)
	p.cmd.Env = childEnv(childRaw)
	p.cmd.ExtraFiles = []*os.File{theirs}
	p.cmd.Stderr = p.stderr
	err = p.cmd.Start()
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, err
	}
	p.conn, err = net.FileConn(mine)
	mine.Close()
	if err != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		return nil, err
	}
	p.r = bufio.NewReaderSize(p.conn, 64<<10)
	p.w = bufio.NewWriterSize(p.conn, 64<<10)
	// Ending ctx kills the child, which fails any read or write under way.
	p.stop = context.AfterFunc(ctx, func() { p.cmd.Process.Kill() })
	if _, err := p.roundTrip(ctx, 1, 1, 0); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *rawPeer) roundTrip(ctx context.Context, size, n, warm int) (time.Duration, error) {
	payload := bytes.Repeat([]byte{'x'}, size)
	var hdr [rawHeaderSize]byte
	if cap(p.buf) < size {
		p.buf = make([]byte, size)
	}
	one := func(i int) error {
		putRawHeader(hdr[:], size, rawPing, i)
		p.w.Write(hdr[:])
		p.w.Write(payload)
		if err := p.w.Flush(); err != nil {
			return p.err(err)
		}
		if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
			return p.err(err)
		}
		got, typ, _ := parseRawHeader(hdr[:])
		if typ != rawPing || got != size {
			return fmt.Errorf("raw: reply type %d of %d bytes to a ping of %d", typ, got, size)
		}
		if _, err := io.ReadFull(p.r, p.buf[:size]); err != nil {
			return p.err(err)
		}
		return nil
	}
	for i := 0; i < warm; i++ {
		if err := one(i); err != nil {
			return 0, err
		}
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if err := one(i); err != nil {
			return 0, err
		}
	}
	return time.Since(t0), nil
}

func (p *rawPeer) oneWay(ctx context.Context, size, n, warm int) (time.Duration, error) {
	payload := bytes.Repeat([]byte{'x'}, size)
	if warm > 0 {
		if _, err := p.burst(payload, warm); err != nil {
			return 0, err
		}
	}
	return p.burst(payload, n)
}

func (p *rawPeer) burst(payload []byte, n int) (time.Duration, error) {
	var hdr [rawHeaderSize]byte
	putRawHeader(hdr[:], 0, rawCount, n)
	p.w.Write(hdr[:])
	t0 := time.Now()
	for i := 0; i < n; i++ {
		putRawHeader(hdr[:], len(payload), rawData, i)
		p.w.Write(hdr[:])
		if _, err := p.w.Write(payload); err != nil {
			return 0, p.err(err)
		}
	}
	if err := p.w.Flush(); err != nil {
		return 0, p.err(err)
	}
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return 0, p.err(err)
	}
	d := time.Since(t0)
	if size, typ, got := parseRawHeader(hdr[:]); typ != rawDone || size != 0 || got != n {
		return 0, fmt.Errorf("raw: answer type %d n %d to a burst of %d", typ, got, n)
	}
	return d, nil
}

// err adds what the child said on stderr to an I/O error.
func (p *rawPeer) err(err error) error {
	if s := p.stderr.String(); s != "" {
		return fmt.Errorf("raw: %w; child's stderr: %s", err, s)
	}
	return fmt.Errorf("raw: %w", err)
}

// close closes the socket, which makes the child exit, and waits for it.
func (p *rawPeer) close() error {
	p.stop()
	p.conn.Close()
	t := time.AfterFunc(10*time.Second, func() { p.cmd.Process.Kill() })
	defer t.Stop()
	if err := p.cmd.Wait(); err != nil {
		return p.err(err)
	}
	return nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.b))
}
