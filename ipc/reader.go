package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// reader is the state of a channel's reader goroutine.
type reader struct {
	c     *Channel
	buf   []byte
	start int // first unconsumed byte
	end   int // end of valid data
	seen  int // JSON: bytes before this offset hold no newline
	oob   []byte
	fds   []int // received descriptors not yet attached to a message
	batch []Message
	owned []bool // batch[i].Data is already its own memory
}

// lineSlack is how many bytes of surrounding whitespace (Node tolerates
// "\r\n" and spaces) a JSON line may have beyond the message size limit.
const lineSlack = 64

var (
	nodeHandleAck  = []byte(`{"cmd":"NODE_HANDLE_ACK"}` + "\n")
	nodeHandleNack = []byte(`{"cmd":"NODE_HANDLE_NACK"}` + "\n")
)

func (c *Channel) readLoop() {
	defer c.wg.Done()
	r := &reader{
		c:   c,
		buf: make([]byte, readChunk),
		oob: make([]byte, syscall.CmsgSpace(maxFiles*4)),
	}
	err := r.run()
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	select {
	case <-c.quit:
		err = ErrClosed
	default:
		if err != io.EOF {
			// A broken channel is closed at once: the peer sees EOF, and no
			// more bytes of a stream that lost its framing are read.
			c.conn.Close()
		}
	}
	c.imu.Lock()
	c.readErr = err
	c.imu.Unlock()
	close(c.done)
	select {
	case c.incoming <- struct{}{}:
	default:
	}
}

func (r *reader) run() error {
	for {
		if err := r.makeRoom(); err != nil {
			return err
		}
		n, oobn, flags, _, err := r.c.conn.ReadMsgUnix(r.buf[r.end:], r.oob)
		if oobn > 0 {
			if e := r.takeFiles(r.oob[:oobn]); e != nil {
				return e
			}
		}
		if flags&syscall.MSG_CTRUNC != 0 {
			return fmt.Errorf("%w: descriptors were dropped (more than %d in one read)", ErrMalformed, maxFiles)
		}
		r.end += n
		if n > 0 {
			if e := r.parse(); e != nil {
				return e
			}
		}
		if err != nil {
			return r.readError(err)
		}
		if n == 0 && oobn == 0 {
			return r.readError(io.EOF)
		}
	}
}

func (r *reader) readError(err error) error {
	if errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF // Node treats a reset like a close, and so do we
	}
	if errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	if errors.Is(err, io.EOF) {
		if r.end > r.start {
			return fmt.Errorf("ipc: peer closed the channel in the middle of a message (%d bytes unread): %w", r.end-r.start, io.ErrUnexpectedEOF)
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
	max := r.c.cfg.MaxMessageSize
	if r.end > max+lineSlack {
		return &TooLargeError{Size: r.end, Max: max}
	}
	size := 2 * len(r.buf)
	if size > max+lineSlack+1 {
		size = max + lineSlack + 1
	}
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

// parse decodes every complete message in buf[start:end] and delivers them.
func (r *reader) parse() error {
	var err error
	if r.c.cfg.Codec == Frame {
		err = r.parseFrames()
	} else {
		err = r.parseLines()
	}
	if len(r.batch) > 0 {
		if e := r.deliver(); e != nil {
			return e
		}
	}
	return err
}

func (r *reader) add(m Message, owned bool) {
	r.batch = append(r.batch, m)
	r.owned = append(r.owned, owned)
}

func (r *reader) parseFrames() error {
	max := r.c.cfg.MaxMessageSize
	for r.end-r.start >= frameHeaderSize {
		h, err := parseFrameHeader(r.buf[r.start:r.end], max)
		if err != nil {
			return err
		}
		complete := r.end-r.start >= h.total
		if !complete && h.total <= len(r.buf) {
			return nil // the rest fits once more arrives
		}
		files, ok := r.popFiles(h.nfds)
		if !ok {
			return fmt.Errorf("%w: frame announces %d descriptors, %d arrived", ErrMalformed, h.nfds, len(r.fds))
		}
		m := Message{Kind: h.kind, ID: h.id, Files: files}
		if complete {
			m.Data = r.buf[r.start+frameHeaderSize : r.start+h.total]
			r.start += h.total
			r.add(m, false)
			continue
		}
		// A frame larger than the buffer: read its payload in place.
		payload := make([]byte, h.size)
		have := copy(payload, r.buf[r.start+frameHeaderSize:r.end])
		r.start, r.end, r.seen = 0, 0, 0
		if err := r.readFull(payload[have:]); err != nil {
			m.closeFiles()
			return err
		}
		m.Data = payload
		r.add(m, true)
	}
	return nil
}

// readFull fills p from the socket, collecting any descriptors that come along.
func (r *reader) readFull(p []byte) error {
	for len(p) > 0 {
		n, oobn, _, _, err := r.c.conn.ReadMsgUnix(p, r.oob)
		if oobn > 0 {
			if e := r.takeFiles(r.oob[:oobn]); e != nil {
				return e
			}
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
		if err != nil {
			if e := r.readError(err); e != io.EOF && !errors.Is(e, io.ErrUnexpectedEOF) {
				return e
			}
			return fmt.Errorf("ipc: peer closed the channel in the middle of a message: %w", io.ErrUnexpectedEOF)
		}
		if n == 0 && oobn == 0 {
			return fmt.Errorf("ipc: peer closed the channel in the middle of a message: %w", io.ErrUnexpectedEOF)
		}
	}
	return nil
}

func (r *reader) parseLines() error {
	max := r.c.cfg.MaxMessageSize
	for {
		from := r.start
		if r.seen > from {
			from = r.seen
		}
		i := bytes.IndexByte(r.buf[from:r.end], '\n')
		if i < 0 {
			r.seen = r.end
			if r.end-r.start > max+lineSlack {
				return &TooLargeError{Size: r.end - r.start, Max: max}
			}
			return nil
		}
		lineEnd := from + i
		line := bytes.Trim(r.buf[r.start:lineEnd], " \t\r")
		r.start = lineEnd + 1
		if len(line) > max {
			return &TooLargeError{Size: len(line), Max: max}
		}
		l, skip, err := decodeJSONLine(line)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if l.ack {
			if r.c.handlesOut.Load() > 0 {
				r.c.handlesOut.Add(-1)
			}
			continue
		}
		if l.wantsFile {
			files, ok := r.popFiles(1)
			if !ok {
				// Node's answer to a handle without a descriptor.
				r.c.sendControl(nodeHandleNack)
				continue
			}
			r.c.sendControl(nodeHandleAck)
			l.msg.Files = files
		}
		r.add(l.msg, false)
	}
}

// deliver copies the batch's payloads out of the read buffer, hands replies
// to their pending requests and queues the rest for Recv.
func (r *reader) deliver() error {
	c := r.c
	total := 0
	for i := range r.batch {
		if !r.owned[i] {
			total += len(r.batch[i].Data)
		}
	}
	slab := make([]byte, 0, total)
	for i := range r.batch {
		m := &r.batch[i]
		if !r.owned[i] && m.Data != nil {
			n := len(slab)
			slab = append(slab, m.Data...)
			m.Data = slab[n:len(slab):len(slab)]
		}
	}
	msgs := r.batch
	if c.npending.Load() > 0 || c.nabandoned.Load() > 0 {
		msgs = msgs[:0]
		for _, m := range r.batch {
			if !c.routeReply(m) {
				msgs = append(msgs, m)
			}
		}
	}
	if len(msgs) > 0 {
		c.imu.Lock()
		for c.inboxSize >= c.cfg.RecvBuffer && c.inboxHead < len(c.inbox) {
			c.imu.Unlock()
			select {
			case <-c.drained:
			case <-c.quit:
				for _, m := range msgs {
					m.closeFiles()
				}
				r.reset()
				return ErrClosed
			}
			c.imu.Lock()
		}
		for i := range msgs {
			c.inboxSize += msgCost(&msgs[i])
		}
		c.inbox = append(c.inbox, msgs...)
		c.imu.Unlock()
		select {
		case c.incoming <- struct{}{}:
		default:
		}
	}
	r.reset()
	return nil
}

func (r *reader) reset() {
	clear(r.batch)
	r.batch = r.batch[:0]
	r.owned = r.owned[:0]
}

// routeReply gives m to the Request waiting for it and reports whether it did.
func (c *Channel) routeReply(m Message) bool {
	if !m.Kind.isReply() {
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
	select {
	case c.kick <- struct{}{}:
	default:
	}
}
