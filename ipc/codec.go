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
	if m.Kind >= numKinds {
		return dst, fmt.Errorf("%w: unknown message kind %d", ErrBadMessage, m.Kind)
	}
	if len(m.Files) > 1 {
		return dst, fmt.Errorf("%w: the JSON codec passes one file per message, not %d", ErrBadMessage, len(m.Files))
	}
	if m.Kind == Plain && len(m.Data) == 0 {
		return dst, fmt.Errorf("%w: empty message: the JSON codec needs a JSON value (Node cannot send undefined either)", ErrBadMessage)
	}
	if len(m.Data) > 0 && !json.Valid(m.Data) {
		return dst, fmt.Errorf("%w: data is not valid JSON: %s", ErrBadMessage, quoteStart(m.Data))
	}
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
		dst = appendCompact(dst, m.Data)
	} else {
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
			dst = appendCompact(dst, m.Data)
		}
		dst = append(dst, '}')
	}
	if len(m.Files) == 1 {
		dst = append(dst, '}')
	}
	return append(dst, '\n'), nil
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
// blank line, which carries no message.
func decodeJSONLine(line []byte) (l jsonLine, skip bool, err error) {
	line = bytes.Trim(line, " \t\r")
	if len(line) == 0 {
		return l, true, nil
	}
	if !json.Valid(line) {
		return l, false, fmt.Errorf("%w: invalid JSON: %s", ErrMalformed, quoteStart(line))
	}
	l.msg, l.wantsFile, l.ack, err = decodeJSONValue(line, 0)
	return l, false, err
}

// decodeJSONValue interprets a valid JSON document as a message. depth counts
// the NODE_HANDLE envelopes around it (Node double-wraps retransmissions).
func decodeJSONValue(v []byte, depth int) (m Message, handle, ack bool, err error) {
	m.Data = v
	if len(v) == 0 || v[0] != '{' {
		return m, false, false, nil
	}
	// Only objects with a "kin" or "cmd" member are more than Plain.
	if !bytes.Contains(v, []byte(`"kin"`)) && !bytes.Contains(v, []byte(`"cmd"`)) {
		return m, false, false, nil
	}
	var kin, id, data, errv, cmd, typ, inner []byte
	forEachMember(v, func(key, val []byte) {
		switch string(key) {
		case "kin":
			kin = val
		case "id":
			id = val
		case "data":
			data = val
		case "error":
			errv = val
		case "cmd":
			cmd = val
		case "type":
			typ = val
		case "msg":
			inner = val
		}
	})
	switch string(cmd) {
	case `"NODE_HANDLE"`:
		if inner == nil {
			return m, false, false, fmt.Errorf("%w: NODE_HANDLE without msg", ErrMalformed)
		}
		if depth > 4 {
			return m, false, false, fmt.Errorf("%w: NODE_HANDLE nested too deep", ErrMalformed)
		}
		m, _, _, err = decodeJSONValue(inner, depth+1)
		if err != nil {
			return m, false, false, err
		}
		if depth == 0 {
			if s, e := strconv.Unquote(string(typ)); e == nil {
				m.Handle = s
			}
		}
		return m, true, false, nil
	case `"NODE_HANDLE_ACK"`, `"NODE_HANDLE_NACK"`:
		return m, false, true, nil
	}
	if kin == nil || kin[0] != '"' {
		return m, false, false, nil
	}
	k, ok := kindByName(kin[1 : len(kin)-1])
	if !ok {
		return m, false, false, nil
	}
	m.Kind = k
	m.Data = data
	if k == Error {
		m.Data = errv
		if errv == nil {
			m.Data = data
		}
	}
	if bytes.Equal(m.Data, []byte("null")) {
		m.Data = nil
	}
	if k.hasID() {
		if id == nil {
			return m, false, false, fmt.Errorf("%w: %q message without an id", ErrMalformed, k)
		}
		n, e := strconv.ParseUint(string(id), 10, 64)
		if e != nil {
			// Node sends 7 as 7, but tolerate 7.0 and 7e0 from other languages.
			f, e2 := strconv.ParseFloat(string(id), 64)
			if e2 != nil || f < 0 || f != float64(uint64(f)) {
				return m, false, false, fmt.Errorf("%w: %q message id %s is not a non-negative integer", ErrMalformed, k, id)
			}
			n = uint64(f)
		}
		m.ID = n
	}
	return m, false, false, nil
}

// forEachMember calls fn with every top-level member of the valid JSON
// object obj. Keys are passed without quotes and unescaped only in that they
// are compared raw; values are passed as their exact bytes.
func forEachMember(obj []byte, fn func(key, val []byte)) {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		key := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		i = skipSpace(obj, i+1) // ':'
		vend := skipValue(obj, i)
		fn(key, obj[i:vend])
		i = skipSpace(obj, vend)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		i += j
		// The quote ends the string unless an odd number of backslashes precede it.
		n := 0
		for k := i - 1; k >= 0 && b[k] == '\\'; k-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
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
