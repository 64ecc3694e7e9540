package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Reading. Bytes are read from the socket by whoever holds the read lock
// (Channel.rmu): Recv itself when nobody else reads, so that a message
// costs no goroutine handoff (a round trip then costs what it costs over a
// raw socket), or the background reader, which runs once someone needs
// messages delivered asynchronously (Incoming, Done, Request) and queues
// them in the inbox. The reader state below belongs to the lock holder.

// lineSlack is how many bytes of surrounding whitespace (Node tolerates
// "\r\n" and spaces) a JSON line may have beyond the message size limit.
const lineSlack = 64

// slabSize is the size of the blocks received payloads are copied into: the
// largest size Go's allocator serves from its per-thread caches.
const slabSize = 32 << 10

var (
	nodeHandleAck  = []byte(`{"cmd":"NODE_HANDLE_ACK"}` + "\n")
	nodeHandleNack = []byte(`{"cmd":"NODE_HANDLE_NACK"}` + "\n")
	aLongTimeAgo   = time.Unix(1, 0)
)

// errInterrupted is returned by fill when the caller's context ended while
// it waited for bytes; the channel is fine.
var errInterrupted = errors.New("ipc: read interrupted")

// errNothing is returned by fill in fillNow mode when no bytes are readable.
var errNothing = errors.New("ipc: nothing to read")

// fillMode says how fill waits for bytes.
type fillMode int

const (
	fillBlock fillMode = iota // park until bytes come
	fillSpin                  // poll a few microseconds first when a peer streams (see spin)
	fillNow                   // do not wait
)

type reader struct {
	c     *Channel
	buf   []byte
	start int // first unparsed byte
	end   int // end of valid data
	seen  int // JSON: bytes before this offset hold no newline
	oob   []byte
	fds   []int // received descriptors not yet attached to a message

	// large is a frame bigger than buf whose payload is being read in place.
	large *largeFrame
	big   []byte // Config.Borrow: the reused payload buffer of large frames

	slab []byte // the current block for copies of small payloads

	lastData    time.Duration // when a read last returned bytes, since epoch
	sendsAtData uint64        // Channel.sends then

	// Interrupting a blocked read when the caller's context ends: the
	// callback sets a read deadline in the past, but only while this reader
	// is in its read (intrMu makes that exact), and fill resets it after.
	intrMu      sync.Mutex
	reading     bool
	interrupted bool
}

type largeFrame struct {
	msg     Message
	payload []byte
	have    int
	owned   bool
}

func newReader(c *Channel) *reader {
	return &reader{
		c:   c,
		buf: make([]byte, readChunk),
		oob: make([]byte, syscall.CmsgSpace(maxFiles*4)),
	}
}

// next returns the next message in the buffered bytes. ok is false when more
// bytes are needed (call fill). Data aliases the read buffer unless owned;
// control messages (ACKs) are handled here and never returned. A non-nil
// error is a protocol error: the channel is broken.
func (r *reader) next() (m Message, owned, ok bool, err error) {
	if r.large != nil {
		l := r.large
		if l.have < len(l.payload) {
			return m, false, false, nil
		}
		r.large = nil
		l.msg.Data = l.payload
		return l.msg, l.owned, true, nil
	}
	if r.c.cfg.Codec == Frame {
		return r.nextFrame()
	}
	for {
		m, ok, skip, err := r.nextLine()
		if err != nil || !skip {
			return m, false, ok, err
		}
	}
}

func (r *reader) nextFrame() (m Message, owned, ok bool, err error) {
	if r.end-r.start < frameHeaderSize {
		return m, false, false, nil
	}
	h, err := parseFrameHeader(r.buf[r.start:r.end], r.c.cfg.MaxMessageSize)
	if err != nil {
		return m, false, false, err
	}
	complete := r.end-r.start >= h.total
	if !complete && h.total <= len(r.buf) {
		return m, false, false, nil // the rest fits once it arrives
	}
	// The descriptors came with the frame's first byte: they are here.
	files, fok := r.popFiles(h.nfds)
	if !fok {
		return m, false, false, fmt.Errorf("%w: frame announces %d descriptors, %d arrived", ErrMalformed, h.nfds, len(r.fds))
	}
	m = Message{Kind: h.kind, ID: h.id, Files: files}
	if complete {
		m.Data = r.buf[r.start+frameHeaderSize : r.start+h.total]
		r.start += h.total
		return m, false, true, nil
	}
	// A frame larger than the buffer: its payload is read in place.
	l := &largeFrame{msg: m}
	if r.c.cfg.Borrow {
		if cap(r.big) < h.size {
			r.big = make([]byte, h.size)
		}
		l.payload = r.big[:h.size]
	} else {
		l.payload, l.owned = make([]byte, h.size), true
	}
	l.have = copy(l.payload, r.buf[r.start+frameHeaderSize:r.end])
	r.start, r.end, r.seen = 0, 0, 0
	r.large = l
	if l.have == len(l.payload) {
		return r.next()
	}
	return m, false, false, nil
}

// nextLine decodes the next line of the JSON codec. skip is set for lines
// that carry no message for the caller (blank lines, ACKs, NACKed handles).
func (r *reader) nextLine() (m Message, ok, skip bool, err error) {
	limit := r.c.cfg.MaxMessageSize
	from := max(r.start, r.seen)
	i := bytes.IndexByte(r.buf[from:r.end], '\n')
	if i < 0 {
		r.seen = r.end
		if r.end-r.start > limit+lineSlack {
			return m, false, false, &TooLargeError{Size: r.end - r.start, Max: limit}
		}
		return m, false, false, nil
	}
	lineEnd := from + i
	line := bytes.Trim(r.buf[r.start:lineEnd], " \t\r")
	r.start = lineEnd + 1
	if len(line) > limit {
		return m, false, false, &TooLargeError{Size: len(line), Max: limit}
	}
	l, blank, err := decodeJSONLine(line)
	if err != nil {
		return m, false, false, err
	}
	switch {
	case blank:
		return m, false, true, nil
	case l.ack:
		if r.c.handlesOut.Load() > 0 {
			r.c.handlesOut.Add(-1)
		}
		return m, false, true, nil
	case l.wantsFile:
		files, fok := r.popFiles(1)
		if !fok {
			r.c.sendControl(nodeHandleNack) // Node's answer to a handle without a descriptor
			return m, false, true, nil
		}
		r.c.sendControl(nodeHandleAck)
		l.msg.Files = files
	}
	return l.msg, true, false, nil
}

// own copies m's payload out of the read buffer into a slab.
func (r *reader) own(m *Message) {
	n := len(m.Data)
	if m.Data == nil {
		return
	}
	if n > slabSize/4 {
		m.Data = append([]byte(nil), m.Data...)
		return
	}
	if cap(r.slab)-len(r.slab) < n {
		r.slab = make([]byte, 0, slabSize)
	}
	s := len(r.slab)
	r.slab = append(r.slab, m.Data...)
	m.Data = r.slab[s:len(r.slab):len(r.slab)]
}

// fill reads once from the socket. When ctx ends while it waits, it returns
// errInterrupted and the channel stays usable. Any other error is terminal.
// spin allows a few microseconds of polling first (see spin).
func (r *reader) fill(ctx context.Context, mode fillMode) error {
	var p []byte
	if r.large != nil {
		p = r.large.payload[r.large.have:]
	} else {
		if err := r.makeRoom(); err != nil {
			return err
		}
		p = r.buf[r.end:]
	}
	var stop func() bool
	if ctx.Done() != nil {
		r.intrMu.Lock()
		r.reading = true
		r.intrMu.Unlock()
		stop = context.AfterFunc(ctx, func() {
			r.intrMu.Lock()
			if r.reading {
				r.interrupted = true
				r.c.conn.SetReadDeadline(aLongTimeAgo)
			}
			r.intrMu.Unlock()
		})
	}
	var n, oobn, flags int
	var err error
	switch mode {
	case fillSpin:
		n, oobn, flags, err = r.spin(p)
	case fillNow:
		var got bool
		n, oobn, flags, got, err = r.readNow(p)
		if !got && err == nil {
			return errNothing
		}
	}
	if n == 0 && oobn == 0 && err == nil {
		n, oobn, flags, _, err = r.c.conn.ReadMsgUnix(p, r.oob)
		if n < 0 || oobn < 0 {
			// internal/poll passes on recvmsg's -1 with some errors (a
			// read deadline passing, for one).
			n, oobn = 0, 0
		}
	}
	if n > 0 {
		r.lastData = time.Since(epoch)
		r.sendsAtData = r.c.sends.Load()
	}
	interrupted := false
	if stop != nil {
		stop()
		r.intrMu.Lock()
		r.reading = false
		if r.interrupted {
			r.interrupted, interrupted = false, true
			r.c.conn.SetReadDeadline(time.Time{})
		}
		r.intrMu.Unlock()
	}
	if oobn > 0 {
		if e := r.takeFiles(r.oob[:oobn]); e != nil {
			return e
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		return fmt.Errorf("%w: descriptors were dropped (more than %d in one read)", ErrMalformed, maxFiles)
	}
	if r.large != nil {
		r.large.have += n
	} else {
		r.end += n
	}
	if err != nil {
		if interrupted && errors.Is(err, os.ErrDeadlineExceeded) {
			return errInterrupted
		}
		return r.readError(err)
	}
	if n == 0 && oobn == 0 {
		return r.readError(io.EOF)
	}
	return nil
}

func (r *reader) readError(err error) error {
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF // Node treats a reset like a close, and so do we
	}
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	if errors.Is(err, io.EOF) {
		if r.end > r.start || r.large != nil {
			return fmt.Errorf("ipc: peer closed the channel in the middle of a message: %w", io.ErrUnexpectedEOF)
		}
		return io.EOF
	}
	return fmt.Errorf("ipc: read: %w", err)
}

// makeRoom ensures buf has free space after end, moving or growing it.
func (r *reader) makeRoom() error {
	if r.start == r.end {
		r.start, r.end, r.seen = 0, 0, 0
		if len(r.buf) > 4*readChunk {
			r.buf = make([]byte, readChunk)
		}
		return nil
	}
	if r.end < len(r.buf) {
		return nil
	}
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.seen -= r.start
		r.start, r.end = 0, n
		return nil
	}
	// A JSON line longer than the buffer: grow, within the size limit.
	limit := r.c.cfg.MaxMessageSize
	if r.end > limit+lineSlack {
		return &TooLargeError{Size: r.end, Max: limit}
	}
	size := min(2*len(r.buf), limit+lineSlack+1)
	nb := make([]byte, size)
	copy(nb, r.buf[:r.end])
	r.buf = nb
	return nil
}

func (r *reader) takeFiles(oob []byte) error {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("%w: control message: %v", ErrMalformed, err)
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue // not SCM_RIGHTS
		}
		r.fds = append(r.fds, fds...)
	}
	return nil
}

// popFiles takes the n oldest received descriptors.
func (r *reader) popFiles(n int) ([]*os.File, bool) {
	if n == 0 {
		return nil, true
	}
	if n > len(r.fds) {
		return nil, false
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(r.fds[i]), "ipc-fd")
	}
	r.fds = r.fds[n:]
	return files, true
}

// closeFiles closes descriptors nobody will receive.
func (r *reader) closeFiles() {
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	r.fds = nil
	if r.large != nil {
		r.large.msg.closeFiles()
		r.large = nil
	}
}

// background is the background reader: it reads whenever it can take the
// read lock and queues every message in the inbox for Recv, TryRecv and
// Incoming, until the channel ends.
func (c *Channel) background() {
	defer c.wg.Done()
	var batch []Message
	for {
		c.rmu.Lock()
		select {
		case <-c.quit:
			c.rmu.Unlock()
			return
		default:
		}
		r := c.r
		var err error
		if c.ended.Load() {
			c.rmu.Unlock()
			return // an inline reader saw the end
		}
		for {
			m, owned, ok, e := r.next()
			if e != nil {
				err = e
				break
			}
			if !ok {
				break
			}
			if !owned {
				r.own(&m)
			}
			if !c.routeReply(m) {
				batch = append(batch, m)
			}
		}
		if len(batch) > 0 {
			if !c.deliver(batch) {
				c.rmu.Unlock()
				return // closed
			}
			clear(batch)
			batch = batch[:0]
		}
		if err == nil {
			// No spinning here: after a delivery the consumer should run,
			// on this thread, while this goroutine parks.
			err = r.fill(context.Background(), fillBlock)
		}
		c.rmu.Unlock()
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// deliver queues messages for Recv, waiting while the inbox is over
// Config.RecvBuffer. It reports false when the channel was closed meanwhile.
func (c *Channel) deliver(msgs []Message) bool {
	c.imu.Lock()
	for c.inboxSize >= c.cfg.RecvBuffer && c.inboxHead < len(c.inbox) {
		c.imu.Unlock()
		select {
		case <-c.drained:
		case <-c.quit:
			for _, m := range msgs {
				m.closeFiles()
			}
			return false
		}
		c.imu.Lock()
	}
	if c.inboxHead > 0 && c.inboxHead >= len(c.inbox)/2 {
		// Keep the inbox from growing: move the live part to the front.
		n := copy(c.inbox, c.inbox[c.inboxHead:])
		clear(c.inbox[n:])
		c.inbox, c.inboxHead = c.inbox[:n], 0
	}
	for i := range msgs {
		c.inboxSize += msgCost(&msgs[i])
	}
	c.inbox = append(c.inbox, msgs...)
	c.inboxLen.Add(int32(len(msgs)))
	c.imu.Unlock()
	c.signalIncoming()
	return true
}

func (c *Channel) signalIncoming() {
	select {
	case c.incoming <- struct{}{}:
	default:
	}
}

// finish records the error that ended reading; the first one wins.
func (c *Channel) finish(err error) {
	c.doneOnce.Do(func() {
		select {
		case <-c.quit:
			err = ErrClosed
		default:
			if err != io.EOF {
				// A broken channel is closed at once: the peer sees EOF,
				// and no more bytes of a stream that lost its framing are
				// read.
				c.conn.Close()
			}
		}
		c.imu.Lock()
		c.readErr = err
		c.imu.Unlock()
		c.ended.Store(true)
		close(c.done)
		c.signalIncoming()
	})
}

// routeReply gives m to the Request waiting for it and reports whether it did.
func (c *Channel) routeReply(m Message) bool {
	if !m.Kind.isReply() || (c.npending.Load() == 0 && c.nabandoned.Load() == 0) {
		return false
	}
	c.pmu.Lock()
	cl := c.pending[m.ID]
	_, gaveUp := c.abandoned[m.ID]
	if gaveUp && m.Kind != Progress {
		delete(c.abandoned, m.ID)
	}
	c.pmu.Unlock()
	if gaveUp {
		m.closeFiles() // the late reply of a request whose caller gave up
		return true
	}
	if cl == nil {
		return false
	}
	if m.Kind == Progress {
		if cl.progress != nil {
			cl.progress(m)
		}
		m.closeFiles()
		return true
	}
	select {
	case cl.reply <- m:
	default:
		m.closeFiles() // a second reply to the same task
	}
	return true
}

// sendControl queues a small protocol message, ignoring the send buffer's
// limit: the reader must never block on the writer.
func (c *Channel) sendControl(b []byte) {
	c.mu.Lock()
	if c.writeErr == nil {
		c.sendBuf = append(c.sendBuf, b...)
	}
	c.mu.Unlock()
	c.kickWriter()
}

// readNow tries one non-blocking read; got is false when nothing was
// readable.
func (r *reader) readNow(p []byte) (n, oobn, flags int, got bool, err error) {
	n, oobn, flags, rerr := r.recvmsgNow(p)
	switch {
	case rerr == syscall.EAGAIN:
		return 0, 0, 0, false, nil
	case rerr != nil:
		return 0, 0, 0, true, rerr
	case n == 0 && oobn == 0:
		return 0, 0, 0, true, io.EOF
	}
	return n, oobn, flags, true, nil
}

// recvmsgNow makes one non-blocking recvmsg (retried on EINTR). The error
// is syscall.EAGAIN when nothing is readable, or the descriptor's error
// when the channel was closed meanwhile; n and oobn are 0 on any error.
func (r *reader) recvmsgNow(p []byte) (n, oobn, flags int, err error) {
	var rerr error
	cerr := r.c.rawRead.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, _, rerr = syscall.Recvmsg(int(fd), p, r.oob, syscall.MSG_CMSG_CLOEXEC)
			if rerr != syscall.EINTR {
				return true
			}
		}
	})
	if cerr != nil {
		return 0, 0, 0, cerr
	}
	if rerr != nil {
		return 0, 0, 0, rerr
	}
	return n, oobn, flags, nil
}

// spin tries non-blocking reads for a few microseconds when bytes arrived
// very recently and this side has sent nothing since: a peer streaming
// messages one write at a time then finds this side awake, and neither side
// pays a wakeup per message. (After a send, the next bytes are an answer,
// a round trip away: spinning would only take the CPU the peer needs.)
// Returns no bytes and no error when nothing came.
func (r *reader) spin(p []byte) (n, oobn, flags int, err error) {
	if r.c.sends.Load() != r.sendsAtData {
		return 0, 0, 0, nil
	}
	now := time.Since(epoch)
	if now-r.lastData > spinAfter {
		return 0, 0, 0, nil
	}
	deadline := now + spinFor
	for {
		var rerr error
		n, oobn, flags, rerr = r.recvmsgNow(p)
		if rerr == nil {
			if n == 0 && oobn == 0 {
				return 0, 0, 0, io.EOF
			}
			return n, oobn, flags, nil
		}
		if rerr != syscall.EAGAIN && rerr != syscall.EINTR {
			return 0, 0, 0, rerr
		}
		if time.Since(epoch) > deadline {
			return 0, 0, 0, nil
		}
	}
}

const (
	spinAfter = 20 * time.Microsecond
	spinFor   = 10 * time.Microsecond
)
