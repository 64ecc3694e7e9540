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
	// Borrow lets Recv and TryRecv return messages whose Data is valid only
	// until the next Recv or TryRecv on the channel, and so need not be
	// copied out of the channel's buffers: for receivers that handle a
	// message before asking for the next (a large frame is then read into
	// one reused buffer). False, the zero value, gives every message its
	// own Data.
	Borrow bool
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
// concurrent use. A Channel owns a writer goroutine, and a reader goroutine
// from the first call of Incoming, Done or Request on (before that, Recv
// and TryRecv read the socket themselves); Close stops both.
type Channel struct {
	cfg  Config
	conn *net.UnixConn
	raw  syscall.RawConn // conn's descriptor, for writes that must not wait
	// rawRead is the same for reads; a separate value keeps the read and
	// write locks of the descriptor apart.
	rawRead syscall.RawConn

	// Lock order: wmu before mu. wmu is held by whoever writes to conn; mu
	// guards the send buffer and the state below it.
	wmu       sync.Mutex
	mu        sync.Mutex
	sendBuf   []byte
	spare     []byte
	spaceWait chan struct{} // closed when the send buffer drains; nil when nobody waits
	writeErr  error
	lastSend  time.Duration // since epoch, for telling bursts from sparse messages
	sends     atomic.Uint64 // messages sent, for the reader's spin heuristic
	kick      chan struct{}

	// rmu is held by whoever reads from the socket and uses r: Recv itself,
	// or the background reader. waiters counts Recv calls waiting for it
	// or for the inbox, so that its holder wakes them when it lets go.
	rmu     sync.Mutex
	r       *reader
	waiters atomic.Int32
	bgOnce  sync.Once

	// inbox of received messages, guarded by imu.
	imu       sync.Mutex
	inbox     []Message
	inboxHead int
	inboxSize int
	inboxLen  atomic.Int32  // len(inbox)-inboxHead, readable without imu
	readErr   error         // why reading ended; set once, before done closes
	incoming  chan struct{} // has a value when the inbox may be non-empty
	drained   chan struct{} // has a value when the inbox may have room
	done      chan struct{} // closed when reading has ended
	ended     atomic.Bool   // done is closed
	doneOnce  sync.Once

	// pending requests, guarded by pmu.
	pmu      sync.Mutex
	pending  map[uint64]*call
	npending atomic.Int32
	nextID   atomic.Uint64
	// abandoned holds ids of requests whose caller gave up, so that their
	// late replies are dropped rather than delivered to Recv.
	abandoned  map[uint64]struct{}
	nabandoned atomic.Int32

	// handlesOut counts NODE_HANDLE frames sent and not yet answered.
	handlesOut atomic.Int32

	quit      chan struct{} // closed by Close
	closeOnce sync.Once
	closed    atomic.Bool
	wg        sync.WaitGroup
}

type call struct {
	reply    chan Message
	progress func(Message)
}

// New returns a Channel speaking over conn, which it owns from now on, and
// starts its writer.
func New(conn *net.UnixConn, cfg Config) *Channel {
	cfg = cfg.withDefaults()
	c := &Channel{
		cfg:       cfg,
		conn:      conn,
		kick:      make(chan struct{}, 1),
		incoming:  make(chan struct{}, 1),
		drained:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		pending:   make(map[uint64]*call),
		abandoned: make(map[uint64]struct{}),
		quit:      make(chan struct{}),
	}
	c.r = newReader(c)
	c.raw, _ = conn.SyscallConn()
	c.rawRead = c.raw
	setSocketBuffers(conn)
	c.wg.Add(1)
	go c.writeLoop()
	return c
}

// startBackground starts the background reader, once.
func (c *Channel) startBackground() {
	c.bgOnce.Do(func() {
		if c.closed.Load() {
			return
		}
		c.wg.Add(1)
		go c.background()
	})
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
	c.sends.Add(1)
	if len(m.Files) > 0 {
		return c.sendWithFiles(ctx, &m)
	}
	if len(m.Data) >= directWrite {
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
	n := len(c.sendBuf)
	var err error
	if c.cfg.Codec == Frame {
		c.sendBuf = appendFrame(c.sendBuf, &m)
	} else {
		c.sendBuf, err = appendJSON(c.sendBuf, &m)
		if err == nil && len(c.sendBuf)-n-1 > c.cfg.MaxMessageSize {
			err = &TooLargeError{Size: len(c.sendBuf) - n - 1, Max: c.cfg.MaxMessageSize}
		}
		if err != nil {
			c.sendBuf = c.sendBuf[:n]
		}
	}
	sparse := false
	if n == 0 {
		// Read the clock only here: in a burst the buffer is rarely empty.
		now := time.Since(epoch)
		sparse = now-c.lastSend > sparseGap
		c.lastSend = now
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	// A message after a quiet spell is written at once, by this goroutine:
	// no handoff, the latency of a raw write. Messages in quick succession
	// go to the writer goroutine, which coalesces them into few writes.
	if sparse && c.wmu.TryLock() {
		err := c.flushNow()
		c.wmu.Unlock()
		return err
	}
	c.kickWriter()
	return nil
}

// flushNow writes what the socket takes of the send buffer without
// waiting, and leaves the rest to the writer goroutine. wmu is held.
func (c *Channel) flushNow() error {
	c.mu.Lock()
	out := c.sendBuf
	c.sendBuf, c.spare = c.spare[:0], nil
	c.mu.Unlock()
	n, err := c.tryWrite(out)
	if err != nil {
		return c.setWriteErr(err)
	}
	c.mu.Lock()
	if n < len(out) {
		// The socket is full: what is left goes first, before anything
		// queued meanwhile.
		rest := make([]byte, 0, len(out)-n+len(c.sendBuf))
		rest = append(append(rest, out[n:]...), c.sendBuf...)
		c.sendBuf, c.spare = rest, c.sendBuf[:0]
		c.mu.Unlock()
		c.kickWriter()
		return nil
	}
	c.spare = out[:0]
	c.mu.Unlock()
	return nil
}

// tryWrite writes what the socket accepts of b at once; it never waits.
func (c *Channel) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, e := syscall.Write(int(fd), b[n:])
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				break
			}
			if e != nil {
				werr = e
				break
			}
			n += k
		}
		return true // done, whatever happened: never park
	})
	if werr == nil {
		werr = err
	}
	return n, werr
}

// guardWrite runs write, a blocking write, so that it stops when ctx ends:
// a write deadline in the past interrupts it. It returns the bytes written
// and, when interrupted, ctx's error.
func (c *Channel) guardWrite(ctx context.Context, write func() (int, error)) (int, error) {
	if ctx.Done() == nil {
		return write()
	}
	var mu sync.Mutex
	active, fired := true, false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		if active {
			fired = true
			c.conn.SetWriteDeadline(aLongTimeAgo)
		}
		mu.Unlock()
	})
	n, err := write()
	stop()
	mu.Lock()
	active = false
	if fired {
		if c.closed.Load() {
			c.conn.SetWriteDeadline(time.Now()) // keep Close from waiting
		} else {
			c.conn.SetWriteDeadline(time.Time{})
		}
	}
	mu.Unlock()
	if fired && errors.Is(err, os.ErrDeadlineExceeded) {
		return n, ctx.Err()
	}
	return n, err
}

// writeMessage writes, with wmu held, what Send queued before, then the
// message that write writes, stopping when ctx ends. A message cut short
// cannot be taken back: the channel is then broken.
func (c *Channel) writeMessage(ctx context.Context, write func() (int, error)) error {
	total := 0
	_, err := c.guardWrite(ctx, func() (int, error) {
		m, err := c.flushCount()
		total += m
		if err != nil {
			return 0, err
		}
		k, err := write()
		total += k
		return k, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && err == ctx.Err() && total == 0 {
		return err // nothing was written: the channel is fine
	}
	if ctx.Err() != nil && err == ctx.Err() {
		err = fmt.Errorf("context ended in the middle of a message, which cannot be taken back: %w", err)
		werr := c.setWriteErr(err)
		c.conn.Close()
		return werr
	}
	return c.setWriteErr(err)
}

// sparseGap is the quiet time after which Send writes inline.
const sparseGap = 10 * time.Microsecond

var epoch = time.Now()

func (c *Channel) kickWriter() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// waitSpaceLocked waits, with c.mu held on entry and exit, until the writer
// has taken the send buffer.
func (c *Channel) waitSpaceLocked(ctx context.Context) error {
	if c.spaceWait == nil {
		c.spaceWait = make(chan struct{})
	}
	ch := c.spaceWait
	c.mu.Unlock()
	c.kickWriter()
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

// sendDirect writes a large message without copying its payload into the
// send buffer: header (or JSON envelope), payload and trailer in one writev.
func (c *Channel) sendDirect(ctx context.Context, m *Message) error {
	var bufs net.Buffers
	if c.cfg.Codec == Frame {
		var hdr [frameHeaderSize]byte
		putFrameHeader(hdr[:], m, len(m.Data))
		bufs = net.Buffers{hdr[:], m.Data}
	} else {
		head, data, tail, err := jsonParts(m)
		if err != nil {
			return err
		}
		if len(data) > c.cfg.MaxMessageSize {
			return &TooLargeError{Size: len(data), Max: c.cfg.MaxMessageSize}
		}
		bufs = net.Buffers{head, data, tail}
	}
	if err := c.lockWriter(ctx); err != nil {
		return err
	}
	defer c.wmu.Unlock()
	return c.writeMessage(ctx, func() (int, error) {
		n, err := bufs.WriteTo(c.conn)
		return int(n), err
	})
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
	err := c.writeMessage(ctx, func() (int, error) {
		n, _, err := c.conn.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
		if err == nil && n < len(b) {
			var k int
			k, err = c.conn.Write(b[n:])
			n += k
		}
		return n, err
	})
	if err == nil && c.cfg.Codec == JSON {
		c.handlesOut.Add(1)
	}
	return err
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
	_, err := c.flushCount()
	return err
}

// flushCount is flushLocked, also returning how many bytes it wrote.
func (c *Channel) flushCount() (int, error) {
	total := 0
	for {
		c.mu.Lock()
		if c.writeErr != nil {
			err := c.writeErr
			c.mu.Unlock()
			return total, err
		}
		if len(c.sendBuf) == 0 {
			c.mu.Unlock()
			return total, nil
		}
		out := c.sendBuf
		c.sendBuf, c.spare = c.spare[:0], nil
		if c.spaceWait != nil {
			close(c.spaceWait)
			c.spaceWait = nil
		}
		c.mu.Unlock()
		n, err := c.conn.Write(out)
		total += n
		if err != nil {
			return total, c.setWriteErr(err)
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
// it returns io.EOF; after a protocol error, that error. When no other
// goroutine is reading, Recv reads the socket itself.
func (c *Channel) Recv(ctx context.Context) (Message, error) {
	for {
		if m, ok, err := c.tryRecv(); ok || err != nil {
			return m, err
		}
		if m, ok, err, done := c.recvInline(ctx); done {
			return m, err
		} else if ok {
			continue
		}
		// Someone else is reading: wait for what they queue, or for them
		// to let go. Registered as a waiter first, then checked once more,
		// so that a reader letting go meanwhile is not missed.
		c.waiters.Add(1)
		if c.inboxLen.Load() > 0 || c.ended.Load() {
			c.waiters.Add(-1)
			continue
		}
		if m, ok, err, done := c.recvInline(ctx); done || ok {
			c.waiters.Add(-1)
			if done {
				return m, err
			}
			continue
		}
		select {
		case <-c.incoming:
			c.waiters.Add(-1)
		case <-ctx.Done():
			c.waiters.Add(-1)
			return Message{}, ctx.Err()
		}
	}
}

// recvInline reads the next message itself if nobody else is reading.
// done means Recv returns m and err; ok means it took the read lock but
// found nothing to return (try the inbox again).
func (c *Channel) recvInline(ctx context.Context) (m Message, ok bool, err error, done bool) {
	if !c.rmu.TryLock() {
		return m, false, nil, false
	}
	m, got, err := c.readInline(ctx)
	c.rmu.Unlock()
	if c.waiters.Load() > 0 {
		c.signalIncoming()
	}
	switch {
	case got:
		return m, true, nil, true
	case err == errInterrupted:
		return Message{}, true, ctx.Err(), true
	case err != nil:
		c.finish(err)
	}
	return Message{}, true, nil, false
}

// readInline reads the next message with the read lock held. ok is false
// when there is none to return: messages are waiting in the inbox, reading
// has ended, or a reply went to its Request.
func (c *Channel) readInline(ctx context.Context) (Message, bool, error) {
	return c.readInlineMode(ctx, fillSpin)
}

// readInlineMode is readInline with a choice of how to wait for bytes;
// with fillNow it does not wait: ok is false when nothing is readable.
func (c *Channel) readInlineMode(ctx context.Context, mode fillMode) (Message, bool, error) {
	if c.ended.Load() || c.inboxLen.Load() > 0 {
		return Message{}, false, nil
	}
	r := c.r
	for {
		m, owned, ok, err := r.next()
		if err != nil {
			return m, false, err
		}
		if !ok {
			if err := r.fill(ctx, mode); err != nil {
				if err == errNothing {
					return m, false, nil
				}
				return m, false, err
			}
			continue
		}
		if m.Kind.isReply() && (c.npending.Load() > 0 || c.nabandoned.Load() > 0) {
			if !owned {
				r.own(&m)
			}
			if c.routeReply(m) {
				continue
			}
		}
		if !owned && !c.cfg.Borrow {
			r.own(&m)
		}
		return m, true, nil
	}
}

// TryRecv returns the next message if it can be had without waiting:
// already received, or readable from the socket now. ok is false when there
// is none; err is the channel's terminal error once it has no more messages
// (io.EOF after a clean close).
func (c *Channel) TryRecv() (m Message, ok bool, err error) {
	if m, ok, err := c.tryRecv(); ok || err != nil {
		return m, ok, err
	}
	if !c.rmu.TryLock() {
		return m, false, nil // someone is reading: what they get is queued
	}
	m, got, err := c.readInlineMode(context.Background(), fillNow)
	c.rmu.Unlock()
	if c.waiters.Load() > 0 {
		c.signalIncoming()
	}
	if got {
		return m, true, nil
	}
	if err != nil {
		c.finish(err)
	}
	return c.tryRecv()
}

func (c *Channel) tryRecv() (m Message, ok bool, err error) {
	if c.inboxLen.Load() == 0 && !c.ended.Load() {
		return m, false, nil
	}
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
		more := c.inboxLen.Add(-1) > 0
		c.imu.Unlock()
		select {
		case c.drained <- struct{}{}:
		default:
		}
		if more && c.waiters.Load() > 0 {
			c.signalIncoming() // one signal wakes one waiter; pass it on
		}
		return m, true, nil
	}
	err = c.readErr
	c.imu.Unlock()
	if err != nil {
		// Keep other waiters on Incoming from sleeping forever.
		c.signalIncoming()
	}
	return Message{}, false, err
}

// Incoming returns a channel that has a value whenever a received message may
// be waiting; drain with TryRecv. It lets one goroutine wait for messages
// together with other events in a select. It starts the background reader,
// which from then on receives every message.
func (c *Channel) Incoming() <-chan struct{} {
	c.startBackground()
	return c.incoming
}

// Done returns a channel closed when the channel can receive no more: the
// peer closed it, a protocol error occurred, or Close was called. Messages
// already received can still be taken with Recv. It starts the background
// reader, which notices the end.
func (c *Channel) Done() <-chan struct{} {
	c.startBackground()
	return c.done
}

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
	c.startBackground()
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
		c.conn.Close() // ends any read in progress
		c.wg.Wait()
		c.finish(ErrClosed)
		// Wait for an inline reader to let go, then release what nobody
		// will receive.
		c.rmu.Lock()
		c.r.closeFiles()
		c.rmu.Unlock()
		c.imu.Lock()
		for i := c.inboxHead; i < len(c.inbox); i++ {
			c.inbox[i].closeFiles()
		}
		c.inbox, c.inboxHead, c.inboxSize = nil, 0, 0
		c.inboxLen.Store(0)
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
