package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors returned by a Channel.
var (
	// ErrClosed is returned by operations on a channel closed by this side.
	ErrClosed = errors.New("ipc: channel closed")
	// ErrMalformed wraps errors about bytes that are not a valid message of
	// the channel's codec. The channel is closed when it sees one.
	ErrMalformed = errors.New("ipc: malformed message")
	// ErrBadMessage wraps errors about a message given to Send that the
	// codec cannot carry (invalid JSON, too many files…). Nothing is sent
	// and the channel stays open.
	ErrBadMessage = errors.New("ipc: cannot send message")
)

// TooLargeError reports a message above Config.MaxMessageSize. A received one
// closes the channel before its payload is read.
type TooLargeError struct {
	Size int // bytes; for a JSON line still being read, the bytes seen so far
	Max  int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("ipc: message too large: %s > %s (Config.MaxMessageSize)", formatSize(e.Size), formatSize(e.Max))
}

// Default sizes.
const (
	DefaultMaxMessageSize = 64 << 20
	DefaultSendBuffer     = 1 << 20
	DefaultRecvBuffer     = 4 << 20
	defaultCloseTimeout   = 5 * time.Second
	readChunk             = 256 << 10
	// directWrite is the payload size from which Send writes the payload in
	// place (writev) instead of copying it into the send buffer.
	directWrite = 64 << 10
	// maxAbandoned bounds the memory of requests given up on.
	maxAbandoned = 4096
)

// Config configures a Channel. The zero value is usable: JSON codec, 64 MiB
// messages, 1 MiB send buffer, 4 MiB of unread received messages.
type Config struct {
	// Codec is the wire encoding; zero means JSON.
	Codec Codec
	// MaxMessageSize bounds one message's payload in bytes, in both
	// directions; zero means 64 MiB. A peer sending more has its channel
	// closed with a *TooLargeError.
	MaxMessageSize int
	// SendBuffer is how many bytes of small messages Send queues before it
	// blocks until the peer reads; zero means 1 MiB.
	SendBuffer int
	// RecvBuffer is how many bytes of received messages may wait for Recv
	// before the channel stops reading from the socket (the peer then
	// blocks); zero means 4 MiB. A single larger message is still delivered.
	RecvBuffer int
	// CloseTimeout bounds how long Close waits to write queued messages;
	// zero means 5 s.
	CloseTimeout time.Duration
}

func (c Config) withDefaults() Config {
	c.Codec = c.Codec.orDefault()
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = DefaultSendBuffer
	}
	if c.RecvBuffer <= 0 {
		c.RecvBuffer = DefaultRecvBuffer
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	return c
}

// Channel is one end of a message channel. Its methods are safe for
// concurrent use. A Channel owns two goroutines (a reader and a writer); Close
// stops both.
type Channel struct {
	cfg  Config
	conn *net.UnixConn

	// Lock order: wmu before mu. wmu is held by whoever writes to conn; mu
	// guards the send buffer and the state below it.
	wmu       sync.Mutex
	mu        sync.Mutex
	sendBuf   []byte
	spare     []byte
	spaceWait chan struct{} // closed when the send buffer drains; nil when nobody waits
	writeErr  error
	kick      chan struct{}

	// inbox of received messages, guarded by imu.
	imu       sync.Mutex
	inbox     []Message
	inboxHead int
	inboxSize int
	readErr   error         // terminal error of the reader; set once, before done closes
	incoming  chan struct{} // has a value when the inbox may be non-empty
	drained   chan struct{} // has a value when the inbox may have room

	// pending requests, guarded by pmu.
	pmu      sync.Mutex
	pending  map[uint64]*call
	npending atomic.Int32
	// abandoned holds ids of requests whose caller gave up, so that their
	// late replies are dropped rather than delivered to Recv.
	abandoned  map[uint64]struct{}
	nabandoned atomic.Int32
	nextID     atomic.Uint64

	// handlesOut counts NODE_HANDLE frames sent and not yet answered.
	handlesOut atomic.Int32

	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when the reader has stopped
	closeOnce sync.Once
	closed    atomic.Bool
	wg        sync.WaitGroup
}

type call struct {
	reply    chan Message
	progress func(Message)
}

// New returns a Channel speaking over conn, which it owns from now on, and
// starts its goroutines.
func New(conn *net.UnixConn, cfg Config) *Channel {
	cfg = cfg.withDefaults()
	c := &Channel{
		cfg:       cfg,
		conn:      conn,
		kick:      make(chan struct{}, 1),
		incoming:  make(chan struct{}, 1),
		drained:   make(chan struct{}, 1),
		pending:   make(map[uint64]*call),
		abandoned: make(map[uint64]struct{}),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	setSocketBuffers(conn)
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return c
}

// FromFile returns a Channel on f, an inherited AF_UNIX stream socket. f is
// closed: the channel uses its own duplicate of the descriptor.
func FromFile(f *os.File, cfg Config) (*Channel, error) {
	defer f.Close()
	fc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("ipc: fd %d is not a socket: %w", f.Fd(), err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, fmt.Errorf("ipc: fd %d is not an AF_UNIX socket", f.Fd())
	}
	return New(uc, cfg), nil
}

// Pair returns a connected pair of channels in this process, both with cfg.
// It is meant for tests and for in-process plumbing; to talk to a child, use
// Socketpair.
func Pair(cfg Config) (*Channel, *Channel, error) {
	a, b, err := Socketpair()
	if err != nil {
		return nil, nil, err
	}
	ca, err := FromFile(a, cfg)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	cb, err := FromFile(b, cfg)
	if err != nil {
		ca.Close()
		return nil, nil, err
	}
	return ca, cb, nil
}

// Codec returns the channel's codec.
func (c *Channel) Codec() Codec { return c.cfg.Codec }

// Send queues m for the peer. Small messages are copied into the send buffer
// and written by the channel's writer, coalesced with others; Send returns
// once m is queued, blocking while the buffer is full (the peer is slow) or
// until ctx ends. Large messages and messages with Files are written before
// Send returns. Either way m.Data may be reused when Send returns; m.Files
// may be closed once Send returns (the peer has its own descriptors).
func (c *Channel) Send(ctx context.Context, m Message) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if len(m.Data) > c.cfg.MaxMessageSize {
		return &TooLargeError{Size: len(m.Data), Max: c.cfg.MaxMessageSize}
	}
	if len(m.Files) > maxFiles {
		return fmt.Errorf("%w: %d files in one message; at most %d", ErrBadMessage, len(m.Files), maxFiles)
	}
	if m.Kind >= numKinds {
		return fmt.Errorf("%w: unknown message kind %d", ErrBadMessage, m.Kind)
	}
	if len(m.Files) > 0 {
		return c.sendWithFiles(ctx, &m)
	}
	if c.cfg.Codec == Frame && len(m.Data) >= directWrite {
		return c.sendDirect(ctx, &m)
	}
	c.mu.Lock()
	for len(c.sendBuf) >= c.cfg.SendBuffer && c.writeErr == nil {
		if err := c.waitSpaceLocked(ctx); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	if c.writeErr != nil {
		err := c.writeErr
		c.mu.Unlock()
		return err
	}
	var err error
	if c.cfg.Codec == Frame {
		c.sendBuf = appendFrame(c.sendBuf, &m)
	} else {
		n := len(c.sendBuf)
		c.sendBuf, err = appendJSON(c.sendBuf, &m)
		if err == nil && len(c.sendBuf)-n-1 > c.cfg.MaxMessageSize {
			c.sendBuf = c.sendBuf[:n]
			err = &TooLargeError{Size: len(c.sendBuf) - n, Max: c.cfg.MaxMessageSize}
		}
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return nil
}

// waitSpaceLocked waits, with c.mu held on entry and exit, until the writer
// has taken the send buffer.
func (c *Channel) waitSpaceLocked(ctx context.Context) error {
	if c.spaceWait == nil {
		c.spaceWait = make(chan struct{})
	}
	ch := c.spaceWait
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.quit:
		err = ErrClosed
	}
	c.mu.Lock()
	return err
}

// lockWriter takes wmu, giving up when ctx ends or the channel closes.
func (c *Channel) lockWriter(ctx context.Context) error {
	if c.wmu.TryLock() {
		return nil
	}
	got := make(chan struct{})
	go func() {
		c.wmu.Lock()
		close(got)
	}()
	select {
	case <-got:
		return nil
	case <-ctx.Done():
	case <-c.quit:
	}
	// The helper goroutine will take the lock eventually; release it then.
	go func() {
		<-got
		c.wmu.Unlock()
	}()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrClosed
}

// sendDirect writes a large frame without copying its payload.
func (c *Channel) sendDirect(ctx context.Context, m *Message) error {
	if err := c.lockWriter(ctx); err != nil {
		return err
	}
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	var hdr [frameHeaderSize]byte
	putFrameHeader(hdr[:], m, len(m.Data))
	bufs := net.Buffers{hdr[:], m.Data}
	_, err := bufs.WriteTo(c.conn)
	return c.setWriteErr(err)
}

// sendWithFiles writes m in one sendmsg carrying its descriptors, so that
// they arrive with the first byte of the message (NODE-IPC.md §3.4).
func (c *Channel) sendWithFiles(ctx context.Context, m *Message) error {
	var b []byte
	if c.cfg.Codec == Frame {
		b = appendFrame(nil, m)
	} else {
		var err error
		if b, err = appendJSON(nil, m); err != nil {
			return err
		}
	}
	fds := make([]int, len(m.Files))
	for i, f := range m.Files {
		fds[i] = int(f.Fd())
	}
	if err := c.lockWriter(ctx); err != nil {
		return err
	}
	defer c.wmu.Unlock()
	if err := c.flushLocked(); err != nil {
		return err
	}
	n, _, err := c.conn.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
	if err == nil && n < len(b) {
		_, err = c.conn.Write(b[n:])
	}
	if err == nil && c.cfg.Codec == JSON {
		c.handlesOut.Add(1)
	}
	return c.setWriteErr(err)
}

func (c *Channel) setWriteErr(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("ipc: write: %w", err)
	c.mu.Lock()
	if c.writeErr == nil {
		c.writeErr = err
	}
	if c.spaceWait != nil {
		close(c.spaceWait)
		c.spaceWait = nil
	}
	c.mu.Unlock()
	return err
}

// writeLoop writes the send buffer whenever Send kicks it.
func (c *Channel) writeLoop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		c.wmu.Lock()
		c.flushLocked()
		c.wmu.Unlock()
	}
}

// flushLocked writes the send buffer until it is empty. wmu is held.
func (c *Channel) flushLocked() error {
	for {
		c.mu.Lock()
		if c.writeErr != nil {
			err := c.writeErr
			c.mu.Unlock()
			return err
		}
		if len(c.sendBuf) == 0 {
			c.mu.Unlock()
			return nil
		}
		out := c.sendBuf
		c.sendBuf, c.spare = c.spare[:0], nil
		if c.spaceWait != nil {
			close(c.spaceWait)
			c.spaceWait = nil
		}
		c.mu.Unlock()
		_, err := c.conn.Write(out)
		if err != nil {
			return c.setWriteErr(err)
		}
		if cap(out) <= 4*c.cfg.SendBuffer {
			c.mu.Lock()
			c.spare = out[:0]
			c.mu.Unlock()
		}
	}
}

// Flush waits until every message queued by Send so far has been written to
// the socket, or ctx ends.
func (c *Channel) Flush(ctx context.Context) error {
	if err := c.lockWriter(ctx); err != nil {
		return err
	}
	defer c.wmu.Unlock()
	return c.flushLocked()
}

// Recv returns the next message that is not a reply to a pending Request.
// After the peer has closed the channel and every message has been received,
// it returns io.EOF; after a protocol error, that error.
func (c *Channel) Recv(ctx context.Context) (Message, error) {
	for {
		m, ok, err := c.TryRecv()
		if ok || err != nil {
			return m, err
		}
		select {
		case <-c.incoming:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		}
	}
}

// TryRecv returns the next received message without blocking. ok is false
// when none is waiting; err is the channel's terminal error once it has no
// more messages (io.EOF after a clean close).
func (c *Channel) TryRecv() (m Message, ok bool, err error) {
	c.imu.Lock()
	if c.inboxHead < len(c.inbox) {
		m = c.inbox[c.inboxHead]
		c.inbox[c.inboxHead] = Message{}
		c.inboxHead++
		c.inboxSize -= msgCost(&m)
		if c.inboxHead == len(c.inbox) {
			c.inbox = c.inbox[:0]
			c.inboxHead = 0
		}
		c.imu.Unlock()
		select {
		case c.drained <- struct{}{}:
		default:
		}
		return m, true, nil
	}
	err = c.readErr
	c.imu.Unlock()
	if err != nil {
		// Keep Recv callers that wait on Incoming from sleeping forever.
		select {
		case c.incoming <- struct{}{}:
		default:
		}
	}
	return Message{}, false, err
}

// Incoming returns a channel that has a value whenever a received message may
// be waiting; drain with TryRecv. It lets one goroutine wait for messages
// together with other events in a select.
func (c *Channel) Incoming() <-chan struct{} { return c.incoming }

// Done returns a channel closed when the channel can receive no more: the
// peer closed it, a protocol error occurred, or Close was called. Messages
// already received can still be taken with Recv.
func (c *Channel) Done() <-chan struct{} { return c.done }

// Err returns why the channel stopped receiving: nil while it is open,
// io.EOF after the peer closed it, ErrClosed after Close, or the protocol or
// I/O error that closed it.
func (c *Channel) Err() error {
	select {
	case <-c.done:
	default:
		return nil
	}
	c.imu.Lock()
	defer c.imu.Unlock()
	return c.readErr
}

// Request sends m as a Task with a fresh id and waits for its Result or
// Error. Progress messages for the task are passed to progress, when not
// nil, on the channel's reader goroutine (keep it short). An Error reply is
// returned as a *RemoteError along with the reply. If ctx ends first, the
// request is abandoned: a late reply is dropped.
func (c *Channel) Request(ctx context.Context, m Message, progress func(Message)) (Message, error) {
	m.Kind = Task
	m.ID = c.nextID.Add(1)
	cl := &call{reply: make(chan Message, 1), progress: progress}
	c.pmu.Lock()
	c.pending[m.ID] = cl
	c.pmu.Unlock()
	c.npending.Add(1)
	answered := false
	defer func() {
		c.pmu.Lock()
		delete(c.pending, m.ID)
		if !answered {
			if len(c.abandoned) >= maxAbandoned {
				clear(c.abandoned) // forget the oldest rather than grow without bound
			}
			c.abandoned[m.ID] = struct{}{}
		}
		c.nabandoned.Store(int32(len(c.abandoned)))
		c.pmu.Unlock()
		c.npending.Add(-1)
	}()
	if err := c.Send(ctx, m); err != nil {
		return Message{}, err
	}
	select {
	case r := <-cl.reply:
		answered = true
		if r.Kind == Error {
			return r, DecodeError(r.Data)
		}
		return r, nil
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.done:
		// A reply may have raced with the close.
		select {
		case r := <-cl.reply:
			answered = true
			if r.Kind == Error {
				return r, DecodeError(r.Data)
			}
			return r, nil
		default:
		}
		err := c.Err()
		if err == io.EOF {
			err = fmt.Errorf("ipc: channel closed by the peer before the reply to task %d", m.ID)
		}
		return Message{}, err
	}
}

// Reply sends the Result of task req with data.
func (c *Channel) Reply(ctx context.Context, req Message, data []byte) error {
	return c.Send(ctx, Message{Kind: Result, ID: req.ID, Data: data})
}

// Close flushes queued messages (waiting at most Config.CloseTimeout), closes
// the socket, and returns after the channel's goroutines have exited. Files
// of messages never received are closed. It is idempotent.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.conn.SetWriteDeadline(time.Now().Add(c.cfg.CloseTimeout))
		c.wmu.Lock()
		c.flushLocked()
		c.wmu.Unlock()
		close(c.quit)
		c.conn.Close()
		c.wg.Wait()
		c.imu.Lock()
		for i := c.inboxHead; i < len(c.inbox); i++ {
			c.inbox[i].closeFiles()
		}
		c.inbox, c.inboxHead, c.inboxSize = nil, 0, 0
		c.imu.Unlock()
	})
	return nil
}

// msgCost is what a message counts against Config.RecvBuffer.
func msgCost(m *Message) int { return len(m.Data) + 64 }

func formatSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
