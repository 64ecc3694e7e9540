package queue

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendRecord appends j, without its Data, as the JSON of a record: the
// same document json.Marshal writes (members in the same order, empty ones
// left out), without reflection, since every job writes two or three.
func appendRecord(b []byte, j *Job) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, j.ID)
	b = append(b, `,"queue":`...)
	b = appendString(b, j.Queue)
	b = append(b, `,"state":`...)
	b = appendString(b, string(j.State))
	if j.Priority != "" {
		b = append(b, `,"priority":`...)
		b = appendString(b, string(j.Priority))
	}
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(j.Attempt), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(j.Attempts), 10)
	if len(j.Progress) > 0 {
		b = append(b, `,"progress":`...)
		b = append(b, j.Progress...)
	}
	if len(j.Result) > 0 {
		b = append(b, `,"result":`...)
		b = append(b, j.Result...)
	}
	if e := j.Error; e != nil {
		b = append(b, `,"error":{"message":`...)
		b = appendString(b, e.Message)
		b = append(b, `,"cause":`...)
		b = appendString(b, string(e.Cause))
		if e.Stack != "" {
			b = append(b, `,"stack":`...)
			b = appendString(b, e.Stack)
		}
		b = append(b, '}')
	}
	b = appendTime(b, `,"added":`, j.Added)
	b = appendTime(b, `,"started":`, j.Started)
	b = appendTime(b, `,"finished":`, j.Finished)
	b = appendTime(b, `,"run_at":`, j.RunAt)
	if j.Worker != "" {
		b = append(b, `,"worker":`...)
		b = appendString(b, j.Worker)
	}
	return append(b, '}')
}

func appendTime(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, name...)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// marshalRecord is appendRecord into a new slice.
func marshalRecord(j *Job) []byte {
	return appendRecord(make([]byte, 0, 200+len(j.Progress)+len(j.Result)), j)
}
