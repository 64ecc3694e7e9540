package logfile

import (
	"bytes"
	"testing"
	"time"
)

func TestAppendRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		t       time.Time
		text    string
		partial bool
		want    string
	}{
		{"utc", base, "hello", false, "2026-11-23T05:54:24.123Z hello\n"},
		{"partial", base, "Password: ", true, "2026-11-23T05:54:24.123Z+Password: \n"},
		{"empty", base, "", false, "2026-11-23T05:54:24.123Z \n"},
		{"local zone is written in UTC", base.In(time.FixedZone("X", 5*3600+1800)), "x", false, "2026-11-23T05:54:24.123Z x\n"},
		{"truncated to ms", time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), "x", false, "2026-01-02T03:04:05.999Z x\n"},
		{"zero ms", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "x", false, "2026-01-02T03:04:05.000Z x\n"},
		{"year zero", time.Time{}, "x", false, "0001-01-01T00:00:00.000Z x\n"},
		{"year clamped high", time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC), "x", false, "9999-12-31T23:59:59.999Z x\n"},
		{"year clamped low", time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), "x", false, "0000-01-01T00:00:00.000Z x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(AppendRecord(nil, tt.t, []byte(tt.text), tt.partial))
			if got != tt.want {
				t.Errorf("AppendRecord = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want Record
	}{
		{"2026-11-23T05:54:24.123Z hello", Record{Time: base, Line: "hello"}},
		{"2026-11-23T05:54:24.123Z+Password: ", Record{Time: base, Line: "Password: ", Partial: true}},
		{"2026-11-23T05:54:24.123Z ", Record{Time: base, Line: ""}},
		{"2026-11-23T05:54:24.123Z  two spaces", Record{Time: base, Line: " two spaces"}},
		{"2024-02-29T23:59:59.999Z leap", Record{Time: time.Date(2024, 2, 29, 23, 59, 59, 999e6, time.UTC), Line: "leap"}},
		// Foreign lines: returned whole, untimed.
		{"", Record{}},
		{"plain text", Record{Line: "plain text"}},
		{"2026-11-23T05:54:24.123Z", Record{Line: "2026-11-23T05:54:24.123Z"}},               // no marker
		{"2026-11-23T05:54:24.123Zx", Record{Line: "2026-11-23T05:54:24.123Zx"}},             // bad marker
		{"2026-11-23T05:54:24.123+01:00 x", Record{Line: "2026-11-23T05:54:24.123+01:00 x"}}, // not UTC
		{"2026-11-23T05:54:24Z hello", Record{Line: "2026-11-23T05:54:24Z hello"}},           // no ms
		{"2026-11-23 05:54:24.123Z x", Record{Line: "2026-11-23 05:54:24.123Z x"}},
		{"2023-02-29T00:00:00.000Z x", Record{Line: "2023-02-29T00:00:00.000Z x"}}, // not a leap year
		{"2026-04-31T00:00:00.000Z x", Record{Line: "2026-04-31T00:00:00.000Z x"}},
		{"2026-13-01T00:00:00.000Z x", Record{Line: "2026-13-01T00:00:00.000Z x"}},
		{"2026-11-23T24:00:00.000Z x", Record{Line: "2026-11-23T24:00:00.000Z x"}},
		{"2026-11-23T23:60:00.000Z x", Record{Line: "2026-11-23T23:60:00.000Z x"}},
		{"2026-11-23T23:59:60.000Z x", Record{Line: "2026-11-23T23:59:60.000Z x"}},
		{"2026-11-00T00:00:00.000Z x", Record{Line: "2026-11-00T00:00:00.000Z x"}},
		{"2026-1a-23T05:54:24.123Z x", Record{Line: "2026-1a-23T05:54:24.123Z x"}},
		{"+026-11-23T05:54:24.123Z x", Record{Line: "+026-11-23T05:54:24.123Z x"}},
	}
	for _, tt := range tests {
		got := ParseRecord([]byte(tt.line))
		if !got.Time.Equal(tt.want.Time) || got.Line != tt.want.Line || got.Partial != tt.want.Partial {
			t.Errorf("ParseRecord(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestCutAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		b    string
		max  int
		want int
	}{
		{"abcdef", 3, 3},
		{"ab€cd", 3, 2},                // € is 3 bytes at 2..4: cut before it
		{"ab€cd", 4, 2},                // in the middle of €
		{"ab€cd", 2, 2},                // right before €
		{"\x80\x80\x80\x80\x80", 2, 2}, // no rune start near: cut at max
		{"a\x80\x80\x80\x80", 3, 3},    // the start is more than UTFMax-1 back
		{"😀😀", 5, 4},
	}
	for _, tt := range tests {
		if got := cutAt([]byte(tt.b), tt.max); got != tt.want {
			t.Errorf("cutAt(%q, %d) = %d, want %d", tt.b, tt.max, got, tt.want)
		}
	}
}

// FuzzParseRecord checks that the parser never panics, accepts exactly the
// timestamps AppendRecord writes (a record it accepts is written back
// byte for byte) and agrees with time.Parse.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("2026-11-23T05:54:24.123Z hello"))
	f.Add([]byte("2026-11-23T05:54:24.123Z+partial"))
	f.Add([]byte("2024-02-29T23:59:59.999Z "))
	f.Add([]byte("2023-02-29T23:59:59.999Z x"))
	f.Add([]byte("0000-01-01T00:00:00.000Z x"))
	f.Add([]byte("plain"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, line []byte) {
		r := ParseRecord(line)
		// A foreign line comes back whole. (A record stamped with the zero
		// time, 0001-01-01T00:00:00.000Z, has a zero Time too.)
		if r.Time.IsZero() && r.Line == string(line) {
			if r.Partial {
				t.Fatalf("foreign line %q parsed as %+v", line, r)
			}
		} else {
			back := AppendRecord(nil, r.Time, []byte(r.Line), r.Partial)
			if !bytes.Equal(back[:len(back)-1], line) {
				t.Fatalf("ParseRecord(%q) = %+v, written back as %q", line, r, back)
			}
		}
		if len(line) < tsLen {
			return
		}
		pt, err := time.Parse("2006-01-02T15:04:05.000Z", string(line[:tsLen]))
		canonical := err == nil && string(AppendRecord(nil, pt, nil, false)[:tsLen]) == string(line[:tsLen])
		got, ok := parseTime(line[:tsLen])
		if ok != canonical || ok && !got.Equal(pt) {
			t.Fatalf("parseTime(%q) = %v, %v; time.Parse = %v, %v (canonical %v)", line[:tsLen], got, ok, pt, err, canonical)
		}
	})
}
