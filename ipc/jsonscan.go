package ipc

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// maxJSONDepth is the deepest nesting of arrays and objects scanJSON
// accepts. It is encoding/json's own limit, so that scanJSON rejects exactly
// the documents json.Valid rejects for being too deep.
const maxJSONDepth = 10000

// scanJSON reports whether b is exactly one valid JSON document (RFC 8259,
// surrounded by optional whitespace: space, \t, \n, \r), accepting exactly
// what encoding/json.Valid accepts. When the document is an object and
// visit is not nil, visit is called for each top-level member, in order,
// with the raw key bytes between the quotes (escapes NOT decoded) and the
// exact bytes of the value (no surrounding whitespace). It never allocates.
//
// Like json.Valid, scanJSON does not check that strings are valid UTF-8 and
// rejects nesting deeper than 10000 arrays and objects.
//
// visit runs while b is being scanned, so it may already have been called
// for the leading members of a document that scanJSON then rejects; a caller
// must discard what it collected when scanJSON returns false. key and val
// alias b.
func scanJSON(b []byte, visit func(key, val []byte)) bool {
	var s jsonScanner
	if s.run(b, visit, nil) {
		return true
	}
	if !s.deep {
		return false
	}
	return s.runDeep(b, visit)
}

// jsonScanner holds the state that run hands over to runDeep when a
// document nests deeper than one machine word of container kinds.
type jsonScanner struct {
	i     int    // where the next value starts
	depth int    // open arrays and objects
	kinds uint64 // kinds of the innermost open containers, 1 = object, innermost in bit 0

	// The current top-level member: its key is b[key:keyEnd], its value starts at val.
	key, keyEnd, val int

	// deep is set when run stopped at an opening bracket because it had
	// no room to spill kinds; runDeep resumes there.
	deep bool
}

// runDeep resumes a scan that run left for lack of a spill stack. It is a
// separate function so that only documents nested deeper than 64 levels pay
// for zeroing the 1.2 KiB stack.
//
//go:noinline
func (s *jsonScanner) runDeep(b []byte, visit func(key, val []byte)) bool {
	var spill [maxJSONDepth/64 + 1]uint64
	s.deep = false
	return s.run(b, visit, spill[:])
}

// run scans from s.i, which must be at the start of a value, to the end of
// the document. The kinds of the open containers live in s.kinds while they
// fit; each outer 64 levels beyond that are kept as one word of spill. With
// a nil spill, run stops with s.deep set when it would need one.
//
// run is a single loop over three states (a value is due, a value has
// ended, a member key is due) rather than a recursive descent, so that
// depth costs no call frames and no allocation.
func (s *jsonScanner) run(b []byte, visit func(key, val []byte), spill []uint64) bool {
	i, depth, kinds := s.i, s.depth, s.kinds
	key, keyEnd, val := s.key, s.keyEnd, s.val
	var c byte

value:
	i = skipJSONSpace(b, i)
	if i >= len(b) {
		return false
	}
	c = b[i]
	switch {
	case c == '"':
		if i = scanJSONString(b, i); i < 0 {
			return false
		}
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return false
		}
		if depth&63 == 0 && depth > 0 {
			if spill == nil {
				s.i, s.depth, s.kinds = i, depth, kinds
				s.key, s.keyEnd, s.val = key, keyEnd, val
				s.deep = true
				return false
			}
			spill[depth>>6-1] = kinds
			kinds = 0
		}
		depth++
		i = skipJSONSpace(b, i+1)
		if c == '[' {
			kinds <<= 1
			if i < len(b) && b[i] == ']' {
				i++
				goto pop
			}
			goto value
		}
		kinds = kinds<<1 | 1
		if i < len(b) && b[i] == '}' {
			i++
			goto pop
		}
		goto member
	case c == '-' || c-'0' <= 9:
		if i = scanJSONNumber(b, i); i < 0 {
			return false
		}
	case c == 't':
		if len(b)-i < 4 || string(b[i:i+4]) != "true" {
			return false
		}
		i += 4
	case c == 'f':
		if len(b)-i < 5 || string(b[i:i+5]) != "false" {
			return false
		}
		i += 5
	case c == 'n':
		if len(b)-i < 4 || string(b[i:i+4]) != "null" {
			return false
		}
		i += 4
	default:
		return false
	}
	goto end

pop:
	kinds >>= 1
	depth--
	if depth&63 == 0 && depth > 0 {
		kinds = spill[depth>>6-1]
	}

end:
	// A value ended just before b[i]; what may follow depends on its container.
	if depth == 0 {
		return skipJSONSpace(b, i) == len(b)
	}
	if kinds&1 != 0 {
		if depth == 1 && visit != nil {
			visit(b[key:keyEnd], b[val:i])
		}
		i = skipJSONSpace(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipJSONSpace(b, i+1)
			goto member
		case '}':
			i++
			goto pop
		}
		return false
	}
	i = skipJSONSpace(b, i)
	if i >= len(b) {
		return false
	}
	switch b[i] {
	case ',':
		i++
		goto value
	case ']':
		i++
		goto pop
	}
	return false

member:
	// A key is due at b[i], whitespace already skipped.
	if i >= len(b) || b[i] != '"' {
		return false
	}
	if depth == 1 {
		key = i + 1
	}
	if i = scanJSONString(b, i); i < 0 {
		return false
	}
	if depth == 1 {
		keyEnd = i - 1
	}
	i = skipJSONSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return false
	}
	i = skipJSONSpace(b, i+1)
	if depth == 1 {
		val = i
	}
	goto value
}

// jsonSpace has a bit set for each of JSON's four whitespace bytes.
const jsonSpace = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && jsonSpace&(1<<b[i]) != 0 {
		i++
	}
	return i
}

// Word-at-a-time constants: the byte broadcast to all eight lanes.
const (
	lanes01 = 0x0101010101010101
	lanes20 = 0x2020202020202020
	lanes22 = 0x2222222222222222 // '"'
	lanes5C = 0x5c5c5c5c5c5c5c5c // '\\'
	lanes80 = 0x8080808080808080
)

// scanJSONString returns the index just past the string whose opening quote
// is at b[i], or -1 if the string is invalid or unterminated.
func scanJSONString(b []byte, i int) int {
	i++
	// Strings carry most of a message's bytes, so scanJSONString has two
	// gears. The first looks at eight bytes at a time for the only bytes
	// that need attention: '"', '\\' and controls. Each term of m is the
	// classic "has a zero byte" test (x-0x01…)&^x&0x80…, which flags every
	// such byte and may flag others above one (a borrow runs on), so each
	// flag is checked against its byte; escape-dense text then costs one
	// load per word, not one per escape.
	//
	// After two clean words the string is probably long, and the second
	// gear lets bytes.IndexByte's vector code find the next '"' and '\\',
	// leaving only the control check to a word loop. The quote's position
	// is kept until the scan passes it: searching again after every escape
	// would make a long string with sparse escapes cost quadratic time.
	clean, quote := 0, -1
words:
	for i+8 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		q := w ^ lanes22
		e := w ^ lanes5C
		m := ((q - lanes01) &^ q) | ((e - lanes01) &^ e) | ((w - lanes20) &^ w)
		m &= lanes80
		base := i
		i += 8
		if m == 0 {
			if clean++; clean >= 2 {
				if quote < i {
					if quote = bytes.IndexByte(b[i:], '"'); quote < 0 {
						return -1
					}
					quote += i
				}
				end := quote
				if k := bytes.IndexByte(b[i:end], '\\'); k >= 0 {
					end = i + k
				}
				if hasJSONControl(b[i:end]) {
					return -1
				}
				i = end
				if b[i] == '"' {
					return i + 1
				}
				n := jsonEscapeLen(b, i)
				if n < 0 {
					return -1
				}
				i += n
				clean = 0
			}
			continue
		}
		clean = 0
		for m != 0 {
			t := bits.TrailingZeros64(m) // the flag of byte t/8
			j := base + t>>3
			c := b[j]
			if c == '\\' {
				n := jsonEscapeLen(b, j)
				if n < 0 {
					return -1
				}
				if j+n >= i {
					i = j + n
					continue words
				}
				// Clear the flags of the backslash and the escaped byte
				// (which may be '"' or '\\'), and leave any of \u's hex
				// digits to be checked as false flags: so finding the next
				// flag waits on neither the escape's bytes nor its length.
				// j+n < i puts t+9 below 64.
				m &= ^uint64(0) << ((t + 9) & 63)
				continue
			}
			if c == '"' {
				return j + 1
			}
			if c < 0x20 {
				return -1
			}
			m &= m - 1
		}
	}
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			n := jsonEscapeLen(b, i)
			if n < 0 {
				return -1
			}
			i += n
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// hasJSONControl reports whether s holds a byte below 0x20, which a JSON
// string may not. It does not stop at the first: controls are rare, and
// checking as it goes would slow the common case.
func hasJSONControl(s []byte) bool {
	var acc uint64
	for len(s) >= 32 {
		w0 := binary.LittleEndian.Uint64(s[0:8])
		w1 := binary.LittleEndian.Uint64(s[8:16])
		w2 := binary.LittleEndian.Uint64(s[16:24])
		w3 := binary.LittleEndian.Uint64(s[24:32])
		acc |= (w0-lanes20)&^w0 | (w1-lanes20)&^w1 | (w2-lanes20)&^w2 | (w3-lanes20)&^w3
		s = s[32:]
	}
	for len(s) >= 8 {
		w := binary.LittleEndian.Uint64(s[0:8])
		acc |= (w - lanes20) &^ w
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return acc&lanes80 != 0
}

// jsonEscapeLen returns the length of the escape whose backslash is at b[i],
// or -1 if it is not one of JSON's.
func jsonEscapeLen(b []byte, i int) int {
	if i+1 < len(b) {
		switch jsonEscape[b[i+1]] {
		case jsonEscSimple:
			return 2
		case jsonEscHex:
			if i+6 <= len(b) && jsonHex[b[i+2]]&jsonHex[b[i+3]]&jsonHex[b[i+4]]&jsonHex[b[i+5]] != 0 {
				return 6
			}
		}
	}
	return -1
}

// What may follow a backslash in a string.
const (
	jsonEscBad    = iota
	jsonEscSimple // one byte: " \ / b f n r t
	jsonEscHex    // u and four hex digits
)

// Escapes are dense in some text, and tables decide them without the chain
// of unpredictable branches a switch compiles to.
var (
	jsonEscape = [256]uint8{'"': jsonEscSimple, '\\': jsonEscSimple, '/': jsonEscSimple, 'b': jsonEscSimple,
		'f': jsonEscSimple, 'n': jsonEscSimple, 'r': jsonEscSimple, 't': jsonEscSimple, 'u': jsonEscHex}
	jsonHex = [256]uint8{'0': 1, '1': 1, '2': 1, '3': 1, '4': 1, '5': 1, '6': 1, '7': 1, '8': 1, '9': 1,
		'a': 1, 'b': 1, 'c': 1, 'd': 1, 'e': 1, 'f': 1, 'A': 1, 'B': 1, 'C': 1, 'D': 1, 'E': 1, 'F': 1}
)

// scanJSONNumber returns the index just past the number that starts at b[i],
// or -1 if it does not follow JSON's grammar. What follows the number is
// left to the caller.
func scanJSONNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return -1
		}
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c-'1' <= 8:
		i = skipJSONDigits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := skipJSONDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && b[i]|0x20 == 'e' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipJSONDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func skipJSONDigits(b []byte, i int) int {
	for i < len(b) && b[i]-'0' <= 9 {
		i++
	}
	return i
}
