package logfile

import "time"

// Record is one line of a log file. The zero value is an empty, untimed,
// complete line of no source.
type Record struct {
	// Time is when the record's first byte reached the Writer, in UTC with
	// millisecond precision; zero for a line without a timestamp.
	Time time.Time
	// Line is the text, without the timestamp and without the newline.
	Line string
	// Partial is true when the app did not end the line here (the record
	// was written with the '+' marker): the next record of the same file
	// may continue it.
	Partial bool
	// Source is the path the record was read from, as given to Tail,
	// TailMany, Follow or FollowMany; empty from ParseRecord.
	Source string
}

// tsLen is the length of a record's timestamp: 2006-01-02T15:04:05.000Z.
const tsLen = 24

// Record markers, the byte after the timestamp.
const (
	markLine    = ' '
	markPartial = '+'
)

// AppendRecord appends to dst the record of text stamped with t, as a
// Writer writes it, newline included. text must not hold a newline
// (AppendRecord does not check); partial selects the '+' marker. t is
// written in UTC, truncated to the millisecond; years outside 0000–9999 are
// clamped so that the timestamp keeps its width.
func AppendRecord(dst []byte, t time.Time, text []byte, partial bool) []byte {
	var ts [tsLen]byte
	formatTime(&ts, t)
	dst = append(dst, ts[:]...)
	if partial {
		dst = append(dst, markPartial)
	} else {
		dst = append(dst, markLine)
	}
	dst = append(dst, text...)
	return append(dst, '\n')
}

// formatTime writes t as 2006-01-02T15:04:05.000Z into ts; it is
// time.Format without the layout interpretation and without allocating.
func formatTime(ts *[tsLen]byte, t time.Time) {
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	switch {
	case year < 0:
		year, month, day, hour, min, sec, ms = 0, 1, 1, 0, 0, 0, 0
	case year > 9999:
		year, month, day, hour, min, sec, ms = 9999, 12, 31, 23, 59, 59, 999
	}
	put := func(i, v, width int) {
		for j := i + width - 1; j >= i; j-- {
			ts[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, year, 4)
	ts[4] = '-'
	put(5, int(month), 2)
	ts[7] = '-'
	put(8, day, 2)
	ts[10] = 'T'
	put(11, hour, 2)
	ts[13] = ':'
	put(14, min, 2)
	ts[16] = ':'
	put(17, sec, 2)
	ts[19] = '.'
	put(20, ms, 3)
	ts[23] = 'Z'
}

// ParseRecord reads one line of a log file, given without its newline. A
// line that does not start with a valid timestamp and marker is returned
// whole, with a zero Time.
func ParseRecord(line []byte) Record {
	if len(line) > tsLen {
		if t, ok := parseTime(line[:tsLen]); ok {
			switch line[tsLen] {
			case markLine:
				return Record{Time: t, Line: string(line[tsLen+1:])}
			case markPartial:
				return Record{Time: t, Line: string(line[tsLen+1:]), Partial: true}
			}
		}
	}
	return Record{Line: string(line)}
}

// parseTime reads exactly what formatTime writes, and nothing else: a
// record's timestamp is fixed-width, so anything looser is a foreign line.
func parseTime(b []byte) (time.Time, bool) {
	if len(b) != tsLen || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' ||
		b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(i, width int) int {
		v := 0
		for _, c := range b[i : i+width] {
			if c < '0' || c > '9' {
				ok = false
				return 0
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, min, sec, ms := num(11, 2), num(14, 2), num(17, 2), num(20, 3)
	if !ok || month < 1 || month > 12 || day < 1 || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, min, sec, ms*1e6, time.UTC)
	if t.Day() != day { // the 31st of a 30-day month, 29 February of a common year
		return time.Time{}, false
	}
	return t, true
}
