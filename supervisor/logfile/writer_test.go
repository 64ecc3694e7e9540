package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kinproc/kin/internal/kintest"
)

// never is a FlushAfter that no test waits for: partial lines are written
// only when they end, grow too long, or the Writer closes.
const never = time.Hour

func TestWriterFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		chunks []string
		want   string // the file, with T for the fixed timestamp
	}{
		{"one line", []string{"hello\n"}, "T hello\n"},
		{"several lines in one chunk", []string{"a\nb\nc\n"}, "T a\nT b\nT c\n"},
		{"line split across writes", []string{"hel", "lo wo", "rld\n"}, "T hello world\n"},
		{"split at the newline", []string{"hello", "\n", "next\n"}, "T hello\nT next\n"},
		{"chunk ends in the middle of the second line", []string{"a\nb", "c\nd\n"}, "T a\nT bc\nT d\n"},
		{"empty lines", []string{"\n\n", "\n"}, "T \nT \nT \n"},
		{"empty writes", []string{"", "a", "", "\n", ""}, "T a\n"},
		{"carriage returns are text", []string{"10%\r20%\r\n"}, "T 10%\r20%\r\n"},
		{"unfinished line written by Close", []string{"a\nno newline"}, "T a\nT+no newline\n"},
		{"binary", []string{"\x00\xff\xfe\n"}, "T \x00\xff\xfe\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "app.log")
			w := open(t, Config{Path: path, Now: func() time.Time { return base }, FlushAfter: never})
			for _, c := range tt.chunks {
				n, err := w.Write([]byte(c))
				if err != nil || n != len(c) {
					t.Fatalf("Write(%q) = %d, %v", c, n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := strings.ReplaceAll(tt.want, "T", "2026-11-23T05:54:24.123Z")
			if string(b) != want {
				t.Errorf("file = %q, want %q", b, want)
			}
		})
	}
}

// TestWriterTimestamps checks that a record is stamped when its first byte
// arrived, and that all the lines of one chunk share one stamp.
func TestWriterTimestamps(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	clk := newClock(time.Second)
	w := open(t, Config{Path: path, Now: clk.Now, FlushAfter: never})
	mustWrite(t, w, "a\nb\nc") // base
	mustWrite(t, w, "d\ne\n")  // base+1s
	w.Close()
	want := "2026-11-23T05:54:24.123Z a\n" +
		"2026-11-23T05:54:24.123Z b\n" +
		"2026-11-23T05:54:24.123Z cd\n" +
		"2026-11-23T05:54:25.123Z e\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
}

func TestWriterIdleFlush(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: 20 * time.Millisecond})
	start := time.Now()
	mustWrite(t, w, "done\nPassword: ")
	kintest.WaitFor(t, 5*time.Second, "the idle partial line", func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte("+Password: \n"))
	})
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("partial line written after %v, before FlushAfter", d)
	}
	mustWrite(t, w, "hunter2\n")
	w.Close()
	recs := readRecords(t, path)
	want := []Record{{Line: "done"}, {Line: "Password: ", Partial: true}, {Line: "hunter2"}}
	if len(recs) != len(want) {
		t.Fatalf("records %+v, want %+v", recs, want)
	}
	for i := range want {
		if recs[i].Line != want[i].Line || recs[i].Partial != want[i].Partial || recs[i].Time.IsZero() {
			t.Errorf("record %d = %+v, want %+v", i, recs[i], want[i])
		}
	}
}

// TestWriterIdleFlushWaitsForQuiet checks that the idle flush waits for
// FlushAfter without data, not FlushAfter since the line began: a line
// trickling in byte by byte stays one record.
func TestWriterIdleFlushWaitsForQuiet(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: 300 * time.Millisecond})
	line := "trickling in"
	for i := range len(line) {
		mustWrite(t, w, line[i:i+1])
		time.Sleep(40 * time.Millisecond) // pacing the input, not asserting
	}
	mustWrite(t, w, "\n")
	w.Close()
	if got := texts(readRecords(t, path)); !slices.Equal(got, []string{line}) {
		t.Errorf("records %q, want one line", got)
	}
}

func TestWriterLongLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		maxLine int
		chunks  []string
		want    []Record
	}{
		{"whole line in one write", 4, []string{"abcdefghij\n"},
			[]Record{{Line: "abcd", Partial: true}, {Line: "efgh", Partial: true}, {Line: "ij"}}},
		{"exactly MaxLine", 4, []string{"abcd\n"}, []Record{{Line: "abcd"}}},
		{"pending grows past MaxLine", 4, []string{"ab", "cdef", "gh", "ij\n"},
			[]Record{{Line: "abcd", Partial: true}, {Line: "efgh", Partial: true}, {Line: "ij"}}},
		{"cut before a UTF-8 sequence", 4, []string{"abc€xyz\n"},
			[]Record{{Line: "abc", Partial: true}, {Line: "€x", Partial: true}, {Line: "yz"}}},
		{"unfinished long line", 4, []string{"abcdefghij"},
			[]Record{{Line: "abcd", Partial: true}, {Line: "efgh", Partial: true}, {Line: "ij", Partial: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "app.log")
			w := open(t, Config{Path: path, MaxLine: tt.maxLine, FlushAfter: never})
			for _, c := range tt.chunks {
				mustWrite(t, w, c)
			}
			w.Close()
			got := readRecords(t, path)
			if len(got) != len(tt.want) {
				t.Fatalf("records %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Line != tt.want[i].Line || got[i].Partial != tt.want[i].Partial {
					t.Errorf("record %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}

	t.Run("default MaxLine", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "app.log")
		w := open(t, Config{Path: path, FlushAfter: never})
		line := strings.Repeat("x", 150<<10)
		for i := 0; i < len(line); i += 10000 {
			mustWrite(t, w, line[i:min(i+10000, len(line))])
		}
		mustWrite(t, w, "\n")
		w.Close()
		recs := readRecords(t, path)
		var lens []int
		var joined strings.Builder
		for _, r := range recs {
			lens = append(lens, len(r.Line))
			joined.WriteString(r.Line)
		}
		if want := []int{64 << 10, 64 << 10, 150<<10 - 128<<10}; !slices.Equal(lens, want) {
			t.Errorf("record lengths %v, want %v", lens, want)
		}
		if !recs[0].Partial || !recs[1].Partial || recs[2].Partial {
			t.Errorf("partial flags %v %v %v, want true true false", recs[0].Partial, recs[1].Partial, recs[2].Partial)
		}
		if joined.String() != line {
			t.Error("the pieces do not join to the line")
		}
	})
}

// line returns the text of the i-th test line, 24 bytes: with the
// timestamp, marker and newline, a record of 50 bytes.
func line(i int) string { return fmt.Sprintf("line %019d", i) }

func TestWriterRotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keep    int
		records int
		want    map[string][]int // file name → the lines it holds
	}{
		{"below MaxSize", 2, 2, map[string][]int{"app.log": {0, 1}}},
		{"one rotation", 2, 3, map[string][]int{"app.log": {2}, "app.log.1": {0, 1}}},
		{"retention", 2, 7, map[string][]int{"app.log": {6}, "app.log.1": {4, 5}, "app.log.2": {2, 3}}},
		{"keep 1", 1, 6, map[string][]int{"app.log": {4, 5}, "app.log.1": {2, 3}}},
		{"keep none", -1, 5, map[string][]int{"app.log": {4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "app.log")
			// MaxSize holds exactly two 50-byte records.
			w := open(t, Config{Path: path, MaxSize: 100, Keep: tt.keep, Now: func() time.Time { return base }})
			for i := range tt.records {
				mustWrite(t, w, line(i)+"\n")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			checkFiles(t, dir, tt.want)
		})
	}
}

// checkFiles checks that dir holds exactly the files of want, with the
// given test lines in each.
func checkFiles(t *testing.T, dir string, want map[string][]int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names, wantNames []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for name, lines := range want {
		wantNames = append(wantNames, name)
		var wantTexts []string
		for _, i := range lines {
			wantTexts = append(wantTexts, line(i))
		}
		if got := texts(readRecords(t, filepath.Join(dir, name))); !slices.Equal(got, wantTexts) {
			t.Errorf("%s holds %q, want %q", name, got, wantTexts)
		}
	}
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("files %q, want %q", names, wantNames)
	}
}

// TestWriterRotationInOneWrite checks that a chunk that crosses MaxSize
// several times rotates each time, and that a record larger than MaxSize
// gets a file of its own rather than being lost or split.
func TestWriterRotationInOneWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := open(t, Config{Path: path, MaxSize: 100, Keep: 10})
	var chunk strings.Builder
	for i := range 5 {
		chunk.WriteString(line(i) + "\n")
	}
	mustWrite(t, w, chunk.String())
	mustWrite(t, w, strings.Repeat("y", 300)+"\n")
	mustWrite(t, w, line(5)+"\n")
	w.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, f := range files {
		got = append(got, texts(readRecords(t, f)))
	}
	want := [][]string{{line(0), line(1)}, {line(2), line(3)}, {line(4)}, {strings.Repeat("y", 300)}, {line(5)}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("files hold %q, want %q", got, want)
	}
}

// TestWriterRotationKeepLowered checks that rotated files beyond Keep, left
// by a Writer that kept more, are removed at the next rotation.
func TestWriterRotationKeepLowered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	for _, n := range []int{3, 4, 5, 7} {
		os.WriteFile(fmt.Sprintf("%s.%d", path, n), []byte("old\n"), 0o600)
	}
	os.WriteFile(path+".01", AppendRecord(nil, base, []byte(line(99)), false), 0o600) // not a rotated file
	w := open(t, Config{Path: path, Keep: 2})
	mustWrite(t, w, line(0)+"\n")
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	checkFiles(t, dir, map[string][]int{"app.log": nil, "app.log.1": {0}, "app.log.01": {99}})
}

func TestWriterRotateAndTruncate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := open(t, Config{Path: path, MaxSize: 100, Keep: 3, FlushAfter: never})
	for i := range 5 {
		mustWrite(t, w, line(i)+"\n")
	}
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string][]int{"app.log": nil, "app.log.1": {4}, "app.log.2": {2, 3}, "app.log.3": {0, 1}})

	mustWrite(t, w, line(5)+"\n"+"partial")
	if err := w.Truncate(); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string][]int{"app.log": nil})
	// The size accounting restarted: two records fit before a rotation.
	mustWrite(t, w, " line\n"+line(6)+"\n")
	w.Close()
	b, _ := os.ReadFile(path)
	if got := texts(readRecords(t, path)); !slices.Equal(got, []string{"partial line", line(6)}) {
		t.Errorf("after Truncate the file holds %q (%q)", got, b)
	}
}

func TestTruncatePath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	if err := Truncate(path); err != nil {
		t.Errorf("Truncate of a missing log: %v", err)
	}
	if err := Truncate(filepath.Join(dir, "missing", "app.log")); err != nil {
		t.Errorf("Truncate in a missing directory: %v", err)
	}
	for _, name := range []string{"app.log", "app.log.1", "app.log.2", "other.log", "other.log.1"} {
		os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o600)
	}
	if err := Truncate(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"app.log", "other.log", "other.log.1"}; !slices.Equal(names, want) {
		t.Errorf("files %q, want %q", names, want)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Errorf("size %d after Truncate", st.Size())
	}
}

func TestWriterPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "app.log")
	w := open(t, Config{Path: path})
	mustWrite(t, w, "secret\n")
	w.Close()
	for name, want := range map[string]os.FileMode{
		filepath.Join(dir, "a"):      os.ModeDir | 0o700,
		filepath.Join(dir, "a", "b"): os.ModeDir | 0o700,
		path:                         0o600,
	} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
		}
	}
}

func TestWriterClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: never})
	mustWrite(t, w, "unfinished")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := readRecords(t, path); len(got) != 1 || got[0].Line != "unfinished" || !got[0].Partial {
		t.Errorf("records after Close %+v", got)
	}
	for name, err := range map[string]error{
		"Write":    func() error { _, err := w.Write([]byte("x\n")); return err }(),
		"Rotate":   w.Rotate(),
		"Truncate": w.Truncate(),
		"Input":    func() error { _, err := w.NewInput().Write([]byte("x")); return err }(),
	} {
		if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), path) || !strings.HasPrefix(err.Error(), "logfile: ") {
			t.Errorf("%s after Close: %v, want ErrClosed naming the path", name, err)
		}
	}
}

func TestOpenTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := open(t, Config{Path: path})
	if w2, err := Open(Config{Path: filepath.Join(dir, ".", "app.log")}); err == nil {
		w2.Close()
		t.Fatal("a second Writer opened the same path")
	} else if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	w.Close()
	w2, err := Open(Config{Path: path})
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	w2.Close()
	if _, err := Open(Config{}); err == nil || !strings.HasPrefix(err.Error(), "logfile: ") {
		t.Errorf("Open without a path: %v", err)
	}
}

// TestWriterDirectoryGone checks that a Writer whose directory disappears
// reports errors instead of panicking, keeps consuming its input, and
// resumes once the path can be created again.
func TestWriterDirectoryGone(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "logs")
	path := filepath.Join(dir, "app.log")
	var mu sync.Mutex
	var reported []error
	w := open(t, Config{Path: path, OnError: func(err error) {
		mu.Lock()
		reported = append(reported, err)
		mu.Unlock()
	}})
	mustWrite(t, w, "before\n")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// A file where the directory was: it cannot be recreated.
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := w.Rotate(); err == nil || !strings.HasPrefix(err.Error(), "logfile: ") || !strings.Contains(err.Error(), dir) {
		t.Errorf("Rotate without a directory: %v", err)
	}
	n, err := w.Write([]byte("lost\n"))
	if err == nil || n != 5 {
		t.Errorf("Write without a directory = %d, %v; want 5 and an error", n, err)
	}
	// ReadFrom drains its reader whatever happens to the file.
	in := strings.NewReader(strings.Repeat("lost too\n", 10000))
	copied, err := io.Copy(w, in)
	if err == nil || copied != int64(in.Size()) {
		t.Errorf("io.Copy without a directory = %d, %v; want %d and an error", copied, err, in.Size())
	}
	mu.Lock()
	if len(reported) == 0 {
		t.Error("OnError was not called")
	}
	mu.Unlock()

	os.Remove(dir)
	mustWrite(t, w, "after\n")
	w.Close()
	if got := texts(readRecords(t, path)); !slices.Equal(got, []string{"after"}) {
		t.Errorf("records %q, want [after]", got)
	}
}

// TestWriterReopens checks that a Writer notices that its file was removed
// or renamed by someone else, and writes to the path again.
func TestWriterReopens(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"removed", "renamed", "directory removed"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "logs")
			path := filepath.Join(dir, "app.log")
			w := open(t, Config{Path: path})
			mustWrite(t, w, "first\n")
			var err error
			switch how {
			case "removed":
				err = os.Remove(path)
			case "renamed":
				err = os.Rename(path, path+".old")
			case "directory removed":
				err = os.RemoveAll(dir)
			}
			if err != nil {
				t.Fatal(err)
			}
			kintest.WaitFor(t, 10*time.Second, "the file to be recreated", func() bool {
				mustWrite(t, w, "again\n")
				_, err := os.Stat(path)
				return err == nil
			})
			w.Close()
			if got := texts(readRecords(t, path)); len(got) == 0 || got[0] != "again" {
				t.Errorf("recreated file holds %q", got)
			}
		})
	}
}

func TestWriterReadFrom(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: never})
	src := "one\ntwo\nthree\nfour"
	n, err := io.Copy(w, iotest.OneByteReader(strings.NewReader(src)))
	if err != nil || n != int64(len(src)) {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	w.Close()
	if got := texts(readRecords(t, path)); !slices.Equal(got, []string{"one", "two", "three", "four"}) {
		t.Errorf("records %q", got)
	}
	if _, err := w.ReadFrom(strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadFrom after Close: %v", err)
	}
	errRead := errors.New("read failed")
	w2 := open(t, Config{Path: path + "2"})
	if _, err := w2.ReadFrom(iotest.ErrReader(errRead)); err != errRead {
		t.Errorf("ReadFrom of a failing reader: %v, want its error", err)
	}
}

// TestWriterInputs checks that streams written concurrently through their
// own Inputs keep their lines whole.
func TestWriterInputs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	w := open(t, Config{Path: path, FlushAfter: never})
	a, b := w.NewInput(), w.NewInput()
	mustWrite(t, a, "hello ")
	mustWrite(t, b, "good")
	mustWrite(t, w, "own\n")
	mustWrite(t, a, "world\nbye")
	mustWrite(t, b, "bye\n")
	mustWrite(t, b, "unfinished")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Input.Close: %v", err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write to a closed Input: %v", err)
	}
	w.Close() // writes a's partial line
	got := readRecords(t, path)
	want := []Record{{Line: "own"}, {Line: "hello world"}, {Line: "goodbye"}, {Line: "unfinished", Partial: true}, {Line: "bye", Partial: true}}
	if len(got) != len(want) {
		t.Fatalf("records %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Line != want[i].Line || got[i].Partial != want[i].Partial {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestWriterConcurrent writes from several goroutines through their own
// Inputs while another rotates and truncates, for the race detector, and
// checks that every record that survived is a whole line. (FlushAfter is
// off: a goroutine descheduled for longer between the two halves of a line
// would rightly have its first half flushed as a partial record.)
func TestWriterConcurrent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	w := open(t, Config{Path: path, MaxSize: 4 << 10, Keep: 3, FlushAfter: never})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := w.NewInput()
			defer in.Close()
			for i := range 500 {
				s := fmt.Sprintf("g%d line %d\n", g, i)
				in.Write([]byte(s[:4]))
				in.Write([]byte(s[4:]))
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if i%5 == 4 {
				w.Truncate()
			} else {
				w.Rotate()
			}
		}
	}()
	wg.Wait()
	w.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 4 {
		t.Errorf("%d files, Keep is 3", len(files))
	}
	for _, f := range files {
		for _, r := range readRecords(t, f) {
			var g, i int
			if n, err := fmt.Sscanf(r.Line, "g%d line %d", &g, &i); n != 2 || err != nil || r.Partial || r.Time.IsZero() {
				t.Fatalf("%s: broken record %+v", f, r)
			}
		}
	}
}

// FuzzFramer checks that the framing does not depend on how the input is
// cut into writes: the file is the same byte for byte, and its records join
// back to the input.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), []byte{1, 2, 3})
	f.Add([]byte("a\n\nb\nno newline"), []byte{5})
	f.Add([]byte("a very long line that is cut\nshort\n"), []byte{7, 0, 1})
	f.Add([]byte("ab€€€€cd\n"), []byte{2, 3})
	f.Fuzz(func(t *testing.T, input, cuts []byte) {
		dir := t.TempDir()
		write := func(name string, chunks [][]byte) []byte {
			path := filepath.Join(dir, name)
			w, err := Open(Config{Path: path, MaxSize: -1, MaxLine: 8, FlushAfter: never, Now: func() time.Time { return base }})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				if _, err := w.Write(c); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		var chunks [][]byte
		rest := input
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(int(cuts[i]), n)
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		whole := write("whole", [][]byte{input})
		cut := write("cut", chunks)
		if !bytes.Equal(whole, cut) {
			t.Fatalf("input %q in chunks %q:\n%q\nwritten whole:\n%q", input, chunks, cut, whole)
		}
		// Join the records back: a partial record goes on in the next.
		var joined []byte
		for len(cut) > 0 {
			line, next, _ := bytes.Cut(cut, []byte{'\n'})
			cut = next
			r := ParseRecord(line)
			if r.Time.IsZero() || len(r.Line) > 8 {
				t.Fatalf("bad record %q", line)
			}
			joined = append(joined, r.Line...)
			if !r.Partial {
				joined = append(joined, '\n')
			}
		}
		if !bytes.Equal(joined, input) {
			t.Fatalf("records join to %q, want %q", joined, input)
		}
	})
}
