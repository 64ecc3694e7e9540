package ipc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
)

// Frame codec: every message is a 16-byte header and a payload.
//
//	offset size field
//	0      4    payload length, uint32 little-endian
//	4      1    kind (Plain=0, Task=1, Result=2, Error=3, Progress=4, Ready=5, Shutdown=6)
//	5      1    number of file descriptors sent with this frame (SCM_RIGHTS)
//	6      2    reserved, zero
//	8      8    id, uint64 little-endian
//	16     n    payload
const frameHeaderSize = 16

// maxFiles is the most descriptors one message may carry (Linux's SCM_MAX_FD).
const maxFiles = 253

type frameHeader struct {
	size  int
	kind  Kind
	nfds  int
	id    uint64
	total int // header + payload
}

// parseFrameHeader decodes a frame header from the first 16 bytes of b.
func parseFrameHeader(b []byte, max int) (frameHeader, error) {
	h := frameHeader{
		size: int(binary.LittleEndian.Uint32(b[0:4])),
		kind: Kind(b[4]),
		nfds: int(b[5]),
		id:   binary.LittleEndian.Uint64(b[8:16]),
	}
	if b[6] != 0 || b[7] != 0 || h.kind >= numKinds || h.nfds > maxFiles {
		hint := ""
		if b[0] == '{' || b[0] == '"' || b[0] == '[' {
			hint = " (the peer seems to speak the JSON codec: use the same codec on both ends)"
		}
		return h, fmt.Errorf("%w: bad frame header % x%s", ErrMalformed, b[:frameHeaderSize], hint)
	}
	if h.size > max {
		return h, &TooLargeError{Size: h.size, Max: max}
	}
	h.total = frameHeaderSize + h.size
	return h, nil
}

func putFrameHeader(b []byte, m *Message, size int) {
	binary.LittleEndian.PutUint32(b[0:4], uint32(size))
	b[4] = byte(m.Kind)
	b[5] = byte(len(m.Files))
	b[6], b[7] = 0, 0
	binary.LittleEndian.PutUint64(b[8:16], m.ID)
}

// appendFrame appends m's frame (header and payload) to dst.
func appendFrame(dst []byte, m *Message) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, frameHeaderSize)...)
	putFrameHeader(dst[n:], m, len(m.Data))
	return append(dst, m.Data...)
}

// JSON codec.

// appendJSON appends m as one line of JSON to dst. Data must be valid JSON;
// a document spread over several lines is compacted so that the line stays
// one message.
func appendJSON(dst []byte, m *Message) ([]byte, error) {
	if err := checkJSON(m); err != nil {
		return dst, err
	}
	dst = appendJSONHead(dst, m)
	dst = appendCompact(dst, m.Data)
	return appendJSONTail(dst, m), nil
}

// jsonParts returns m's line in three parts, for a write that does not copy
// the payload: the envelope before Data, Data (compacted if it had raw
// newlines), and what follows it.
func jsonParts(m *Message) (head, data, tail []byte, err error) {
	if err := checkJSON(m); err != nil {
		return nil, nil, nil, err
	}
	data = m.Data
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		data = appendCompact(nil, data)
	}
	return appendJSONHead(nil, m), data, appendJSONTail(nil, m), nil
}

// checkJSON reports why the JSON codec cannot carry m, if it cannot.
func checkJSON(m *Message) error {
	if m.Kind >= numKinds {
		return fmt.Errorf("%w: unknown message kind %d", ErrBadMessage, m.Kind)
	}
	if len(m.Files) > 1 {
		return fmt.Errorf("%w: the JSON codec passes one file per message, not %d", ErrBadMessage, len(m.Files))
	}
	if m.Kind == Plain && len(m.Data) == 0 {
		return fmt.Errorf("%w: empty message: the JSON codec needs a JSON value (Node cannot send undefined either)", ErrBadMessage)
	}
	if len(m.Data) > 0 && !validJSON(m.Data) {
		return fmt.Errorf("%w: data is not valid JSON: %s", ErrBadMessage, quoteStart(m.Data))
	}
	return nil
}

// appendJSONHead appends what comes before m.Data on m's line.
func appendJSONHead(dst []byte, m *Message) []byte {
	if len(m.Files) == 1 {
		handle := m.Handle
		if handle == "" {
			handle = guessHandle(m.Files[0])
		}
		dst = append(dst, `{"cmd":"NODE_HANDLE","type":`...)
		dst = strconv.AppendQuote(dst, handle)
		if handle == "dgram.Socket" {
			dst = append(dst, `,"dgramType":`...)
			dst = strconv.AppendQuote(dst, udpType(m.Files[0]))
		}
		dst = append(dst, `,"msg":`...)
	}
	if m.Kind == Plain {
		return dst
	}
	dst = append(dst, `{"kin":"`...)
	dst = append(dst, kindNames[m.Kind]...)
	dst = append(dst, '"')
	if m.Kind.hasID() {
		dst = append(dst, `,"id":`...)
		dst = strconv.AppendUint(dst, m.ID, 10)
	}
	if len(m.Data) > 0 {
		if m.Kind == Error {
			dst = append(dst, `,"error":`...)
		} else {
			dst = append(dst, `,"data":`...)
		}
	}
	return dst
}

// appendJSONTail appends what comes after m.Data on m's line, newline included.
func appendJSONTail(dst []byte, m *Message) []byte {
	if m.Kind != Plain {
		dst = append(dst, '}')
	}
	if len(m.Files) == 1 {
		dst = append(dst, '}')
	}
	return append(dst, '\n')
}

// appendCompact appends the valid JSON document v to dst without raw newlines.
func appendCompact(dst, v []byte) []byte {
	if bytes.IndexByte(v, '\n') < 0 && bytes.IndexByte(v, '\r') < 0 {
		return append(dst, v...)
	}
	buf := bytes.NewBuffer(dst)
	if err := json.Compact(buf, v); err != nil {
		// Unreachable: v was validated by the caller.
		panic("ipc: compact of validated JSON failed: " + err.Error())
	}
	return buf.Bytes()
}

// jsonLine is one decoded line of the JSON codec.
type jsonLine struct {
	msg Message
	// wantsFile is set for a NODE_HANDLE envelope: the message takes the
	// next received descriptor, and the sender waits for an ACK or NACK.
	wantsFile bool
	// ack is set for NODE_HANDLE_ACK and NODE_HANDLE_NACK, which answer
	// handles this side sent and are not delivered.
	ack bool
}

// decodeJSONLine decodes one line (without its newline). skip reports a
// blank line, which carries no message. One pass validates the line and
// collects the members that make it more than a Plain message.
func decodeJSONLine(line []byte) (l jsonLine, skip bool, err error) {
	line = bytes.Trim(line, " \t\r")
	if len(line) == 0 {
		return l, true, nil
	}
	var f members
	if !scanJSON(line, f.visit) {
		return l, false, fmt.Errorf("%w: invalid JSON: %s", ErrMalformed, quoteStart(line))
	}
	l.msg, l.wantsFile, l.ack, err = f.decode(line, 0)
	return l, false, err
}

// members are the top-level members of a JSON object that kin looks at.
type members struct {
	kin, id, data, errv, cmd, typ, inner []byte
}

func (f *members) visit(key, val []byte) {
	switch string(key) {
	case "kin":
		f.kin = val
	case "id":
		f.id = val
	case "data":
		f.data = val
	case "error":
		f.errv = val
	case "cmd":
		f.cmd = val
	case "type":
		f.typ = val
	case "msg":
		f.inner = val
	}
}

// decode interprets the valid JSON document v, whose members are f, as a
// message. depth counts the NODE_HANDLE envelopes around it (Node
// double-wraps retransmissions).
func (f *members) decode(v []byte, depth int) (m Message, handle, ack bool, err error) {
	m.Data = v
	switch string(f.cmd) {
	case `"NODE_HANDLE"`:
		if f.inner == nil {
			return m, false, false, fmt.Errorf("%w: NODE_HANDLE without msg", ErrMalformed)
		}
		if depth > 4 {
			return m, false, false, fmt.Errorf("%w: NODE_HANDLE nested too deep", ErrMalformed)
		}
		var g members
		scanJSON(f.inner, g.visit) // valid: part of a valid document
		m, _, _, err = g.decode(f.inner, depth+1)
		if err != nil {
			return m, false, false, err
		}
		if depth == 0 {
			if s, e := strconv.Unquote(string(f.typ)); e == nil {
				m.Handle = s
			}
		}
		return m, true, false, nil
	case `"NODE_HANDLE_ACK"`, `"NODE_HANDLE_NACK"`:
		return m, false, true, nil
	}
	if len(f.kin) < 2 || f.kin[0] != '"' {
		return m, false, false, nil
	}
	k, ok := kindByName(f.kin[1 : len(f.kin)-1])
	if !ok {
		return m, false, false, nil
	}
	m.Kind = k
	m.Data = f.data
	if k == Error && f.errv != nil {
		m.Data = f.errv
	}
	if bytes.Equal(m.Data, []byte("null")) {
		m.Data = nil
	}
	if k.hasID() {
		if f.id == nil {
			return m, false, false, fmt.Errorf("%w: %q message without an id", ErrMalformed, k)
		}
		n, e := strconv.ParseUint(string(f.id), 10, 64)
		if e != nil {
			// Node sends 7 as 7, but tolerate 7.0 and 7e0 from other languages.
			x, e2 := strconv.ParseFloat(string(f.id), 64)
			if e2 != nil || x < 0 || x != float64(uint64(x)) {
				return m, false, false, fmt.Errorf("%w: %q message id %s is not a non-negative integer", ErrMalformed, k, f.id)
			}
			n = uint64(x)
		}
		m.ID = n
	}
	return m, false, false, nil
}

// quoteStart returns the first bytes of b, quoted, for error messages.
func quoteStart(b []byte) string {
	const n = 60
	if len(b) > n {
		return strconv.Quote(string(b[:n])) + "…"
	}
	return strconv.Quote(string(b))
}

// compactJSON writes v without insignificant whitespace.
func compactJSON(b *bytes.Buffer, v []byte) error { return json.Compact(b, v) }

// validJSON reports whether b is one valid JSON document.
func validJSON(b []byte) bool { return scanJSON(b, nil) }
