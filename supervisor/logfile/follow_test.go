package logfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// following is a FollowMany running in the background.
type following struct {
	mu   sync.Mutex
	recs []Record
	stop func() error
}

// follow runs FollowMany until the test ends or stop is called.
func follow(t *testing.T, paths []string, fromEnd bool) *following {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &following{}
	done := make(chan error, 1)
	go func() {
		done <- FollowMany(ctx, paths, fromEnd, func(r Record) error {
			f.mu.Lock()
			f.recs = append(f.recs, r)
			f.mu.Unlock()
			return nil
		})
	}()
	var once sync.Once
	var err error
	f.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { f.stop() })
	return f
}

func (f *following) records() []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// waitFor waits until exactly want has been followed.
func (f *following) waitFor(t *testing.T, want []string) {
	t.Helper()
	var got []string
	if !kintest.Poll(10*time.Second, func() bool {
		got = texts(f.records())
		return len(got) >= len(want)
	}) || !slices.Equal(got, want) {
		t.Fatalf("followed %q, want %q", got, want)
	}
}

func TestFollowRotationAndTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := open(t, Config{Path: path, MaxSize: 100, Keep: 3, FlushAfter: never})
	writeLines(t, w, 0, 2)
	f := follow(t, []string{path}, false)
	f.waitFor(t, lines(0, 2))

	writeLines(t, w, 2, 3) // rotated by size
	f.waitFor(t, lines(0, 3))
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	writeLines(t, w, 3, 5)
	f.waitFor(t, lines(0, 5))

	// A flush followed at once by more output than there was before, and
	// a rotation.
	if err := w.Truncate(); err != nil {
		t.Fatal(err)
	}
	writeLines(t, w, 5, 8)
	f.waitFor(t, lines(0, 8))
	writeLines(t, w, 8, 9)
	f.waitFor(t, lines(0, 9))

	// Several rotations in one write, most likely between two polls
	// (TestFollowerMissedRotations makes sure of it).
	var burst []byte
	for i := 9; i < 13; i++ {
		burst = append(burst, line(i)+"\n"...)
	}
	if _, err := w.Write(burst); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, lines(0, 13))

	// A file cut in place by someone else, then written again, less than
	// it held before.
	w.Close()
	if err := Truncate(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, AppendRecord(nil, base, []byte("short"), false), 0o600)
	f.waitFor(t, append(lines(0, 13), "short"))

	if err := f.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Follow returned %v after its context ended, want context.Canceled", err)
	}
	for _, r := range f.records() {
		if r.Source != path || r.Time.IsZero() {
			t.Errorf("record %+v", r)
		}
	}
}

// TestFollowerMissedRotations rotates a file several times between two
// polls: the follower must read the rotated files it never saw open.
func TestFollowerMissedRotations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rotations int
		keep      int
		want      []string
	}{
		{"one", 1, 3, lines(0, 4)},
		{"as many as kept", 3, 3, lines(0, 8)},
		// The file the follower had open was deleted: the rotated files
		// are newer.
		{"more than kept", 4, 3, lines(0, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "app.log")
			w := open(t, Config{Path: path, MaxSize: 100, Keep: tt.keep, FlushAfter: never})
			f := &follower{path: path}
			defer f.close()
			var got []Record
			poll := func() {
				for {
					recs, more, err := f.poll()
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, recs...)
					if !more {
						return
					}
				}
			}
			writeLines(t, w, 0, 1)
			poll()
			writeLines(t, w, 1, 2+2*tt.rotations)
			poll()
			if g := texts(got); !slices.Equal(g, tt.want) {
				t.Errorf("followed %q, want %q", g, tt.want)
			}
		})
	}
}

// TestFollowerFileRemoved checks that when the followed file is removed by
// hand and created again, older rotated files are not read again.
func TestFollowerFileRemoved(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, MaxSize: 100, FlushAfter: never})
	writeLines(t, w, 0, 4) // app.log.1 {0,1}, app.log {2,3}
	w.Close()
	hourAgo := time.Now().Add(-time.Hour)
	os.Chtimes(path+".1", hourAgo, hourAgo)
	f := &follower{path: path}
	defer f.close()
	var got []Record
	for range 3 {
		recs, _, err := f.poll()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		if len(got) == 2 {
			os.Remove(path)
			os.WriteFile(path, AppendRecord(nil, base, []byte(line(4)), false), 0o600)
		}
	}
	if g := texts(got); !slices.Equal(g, lines(2, 5)) {
		t.Errorf("followed %q, want %q", g, lines(2, 5))
	}
}

func TestFollowFromEnd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: never})
	writeLines(t, w, 0, 3)
	f := follow(t, []string{path}, true)
	// The follower may not have opened the file yet; poll until a line
	// written now shows up, then check that nothing older did.
	i := 3
	kintest.WaitFor(t, 10*time.Second, "new lines", func() bool {
		writeLines(t, w, i, i+1)
		i++
		return len(f.records()) > 0
	})
	got := texts(f.records())
	if got[0] == line(0) || got[0] == line(1) || got[0] == line(2) {
		t.Errorf("following from the end delivered old lines: %q", got)
	}
}

func TestFollowFileAppears(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "later", "app.log")
	for _, fromEnd := range []bool{false, true} {
		f := follow(t, []string{path}, fromEnd)
		if fromEnd { // the second round: the file exists, start afresh
			f.stop()
			continue
		}
		w := open(t, Config{Path: path, FlushAfter: never})
		writeLines(t, w, 0, 2)
		f.waitFor(t, lines(0, 2))
	}
}

// TestFollowForeignWriter checks a line that reaches the file in two
// writes: it is delivered once, whole.
func TestFollowForeignWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	f := follow(t, []string{path}, false)
	file.WriteString("first\nsec")
	f.waitFor(t, []string{"first"})
	file.WriteString("ond\n")
	f.waitFor(t, []string{"first", "second"})
}

func TestFollowStops(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: never})
	writeLines(t, w, 0, 3)

	errStop := errors.New("enough")
	calls := 0
	err := Follow(context.Background(), path, false, func(r Record) error {
		calls++
		return errStop
	})
	if err != errStop || calls != 1 {
		t.Errorf("Follow = %v after %d calls, want fn's error after 1", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Follow(ctx, path, false, func(Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Follow with a done context = %v", err)
	}
}

func TestFollowMany(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, errp := filepath.Join(dir, "app-0.out.log"), filepath.Join(dir, "app-0.err.log")
	clk := newClock(time.Millisecond)
	wo := open(t, Config{Path: out, Now: clk.Now, FlushAfter: never})
	we := open(t, Config{Path: errp, Now: clk.Now, FlushAfter: never})
	write := func(from, to int) {
		for i := from; i < to; i++ {
			w := wo
			if i%3 == 0 {
				w = we
			}
			mustWrite(t, w, line(i)+"\n")
		}
	}
	write(0, 10)
	f := follow(t, []string{out, errp}, false)
	f.waitFor(t, lines(0, 10)) // one poll: merged by time
	write(10, 12)
	f.waitFor(t, lines(0, 12))
	for _, r := range f.records() {
		var i int
		fmt.Sscanf(r.Line, "line %d", &i)
		if want := map[bool]string{true: errp, false: out}[i%3 == 0]; r.Source != want {
			t.Errorf("%s from %s, want %s", r.Line, r.Source, want)
		}
	}
}
