package logfile

import (
	"bytes"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

func TestMain(m *testing.M) { kintest.Main(m) }

// base is the time the fake clocks start at.
var base = time.Date(2026, 11, 23, 5, 54, 24, 123e6, time.UTC)

// clock is a Config.Now that starts at base and advances step per call.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func newClock(step time.Duration) *clock { return &clock{t: base, step: step} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// open opens a Writer and closes it when the test ends.
func open(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// readRecords parses every line of one file.
func readRecords(t testing.TB, name string) []Record {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte{'\n'})
		out = append(out, ParseRecord(line))
		b = rest
	}
	return out
}

// texts returns the Line of each record.
func texts(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Line
	}
	return out
}

func mustWrite(t testing.TB, w interface{ Write([]byte) (int, error) }, s string) {
	t.Helper()
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}
