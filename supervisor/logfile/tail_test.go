package logfile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeLines writes test lines from..to-1 through a Writer with a clock
// that advances a millisecond per write.
func writeLines(t testing.TB, w *Writer, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		mustWrite(t, w, line(i)+"\n")
	}
}

func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, line(i))
	}
	return out
}

func TestTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	// Two records per file, three rotated files: lines 2..9 are kept, in
	// app.log.3 {2,3}, .2 {4,5}, .1 {6,7}, app.log {8,9}.
	w := open(t, Config{Path: path, MaxSize: 100, Keep: 3, Now: newClock(time.Millisecond).Now})
	writeLines(t, w, 0, 10)
	w.Close()

	tests := []struct {
		n    int
		want []string
	}{
		{0, nil},
		{1, lines(9, 10)},
		{2, lines(8, 10)},
		{3, lines(7, 10)},
		{5, lines(5, 10)},
		{7, lines(3, 10)},
		{8, lines(2, 10)},
		{100, lines(2, 10)},
		{-1, lines(2, 10)},
	}
	for _, tt := range tests {
		recs, err := Tail(path, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(recs); !slices.Equal(got, tt.want) {
			t.Errorf("Tail(%d) = %q, want %q", tt.n, got, tt.want)
		}
		for i, r := range recs {
			if r.Source != path {
				t.Errorf("Tail(%d)[%d].Source = %q", tt.n, i, r.Source)
			}
			if want := base.Add(time.Duration(i+10-len(recs)) * time.Millisecond); !r.Time.Equal(want) {
				t.Errorf("Tail(%d)[%d].Time = %v, want %v", tt.n, i, r.Time, want)
			}
		}
	}
}

func TestTailEmpty(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.log")
	os.WriteFile(empty, nil, 0o600)
	onlyRotated := filepath.Join(dir, "rotated.log")
	os.WriteFile(onlyRotated+".1", AppendRecord(nil, base, []byte("old"), false), 0o600)
	tests := []struct {
		name string
		path string
		want []string
	}{
		{"missing file", filepath.Join(dir, "missing.log"), nil},
		{"missing directory", filepath.Join(dir, "nodir", "missing.log"), nil},
		{"empty file", empty, nil},
		{"only a rotated file", onlyRotated, []string{"old"}},
	}
	for _, tt := range tests {
		recs, err := Tail(tt.path, 10)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if got := texts(recs); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Tail = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTailForeignLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.log")
	content := "plain\n" + string(AppendRecord(nil, base, []byte("framed"), false)) + "\n" + "no newline at the end"
	os.WriteFile(path, []byte(content), 0o600)
	recs, err := Tail(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Record{{Line: "plain"}, {Time: base, Line: "framed"}, {Line: ""}, {Line: "no newline at the end"}}
	if len(recs) != len(want) {
		t.Fatalf("Tail = %+v, want %+v", recs, want)
	}
	for i := range want {
		if !recs[i].Time.Equal(want[i].Time) || recs[i].Line != want[i].Line {
			t.Errorf("record %d = %+v, want %+v", i, recs[i], want[i])
		}
	}
}

// TestTailFile compares the backward reader with splitting the whole file,
// for files larger and smaller than its blocks, with and without a final
// newline, and for every n around the edges.
func TestTailFile(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	dir := t.TempDir()
	for _, size := range []int{0, 1, 100, 16<<10 - 1, 16 << 10, 16<<10 + 1, 100 << 10, 3 << 20} {
		for _, trailing := range []bool{true, false} {
			var b bytes.Buffer
			for b.Len() < size {
				n := rng.IntN(200)
				if rng.IntN(50) == 0 {
					n = rng.IntN(40 << 10)
				}
				b.WriteString(strings.Repeat(string(rune('a'+rng.IntN(26))), n))
				b.WriteByte('\n')
			}
			data := b.Bytes()[:size]
			if size > 0 && trailing {
				data[size-1] = '\n'
			}
			if size > 0 && !trailing && data[size-1] == '\n' {
				data[size-1] = 'z'
			}
			name := filepath.Join(dir, fmt.Sprintf("f%d-%v", size, trailing))
			os.WriteFile(name, data, 0o600)
			all := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if size == 0 {
				all = nil
			}
			for _, n := range []int{-1, 1, 2, 3, 15, 100, len(all) - 1, len(all), len(all) + 1} {
				if n == 0 {
					continue
				}
				want := all
				if n >= 0 && n < len(all) {
					want = all[len(all)-n:]
				}
				recs, err := tailFile(name, n, name)
				if err != nil {
					t.Fatal(err)
				}
				if got := texts(recs); !slices.Equal(got, want) {
					t.Fatalf("size %d trailing %v n %d: got %d lines, want %d", size, trailing, n, len(got), len(want))
				}
			}
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	r := func(ms int, s string) Record {
		if ms < 0 {
			return Record{Line: s}
		}
		return Record{Time: at(ms), Line: s}
	}
	tests := []struct {
		name  string
		lists [][]Record
		want  []string
	}{
		{"none", nil, []string{}},
		{"one", [][]Record{{r(1, "a"), r(2, "b")}}, []string{"a", "b"}},
		{"interleaved", [][]Record{{r(1, "a1"), r(3, "a3")}, {r(2, "b2"), r(4, "b4")}}, []string{"a1", "b2", "a3", "b4"}},
		{"equal times keep the order of the lists", [][]Record{{r(1, "a"), r(1, "a'")}, {r(1, "b")}}, []string{"a", "a'", "b"}},
		{"a list's own order is kept", [][]Record{{r(5, "a5"), r(1, "a1")}, {r(3, "b3")}}, []string{"b3", "a5", "a1"}},
		{"untimed lines follow their predecessor", [][]Record{{r(1, "a1"), r(-1, "a-"), r(5, "a5")}, {r(2, "b2")}}, []string{"a1", "a-", "b2", "a5"}},
		{"untimed first lines come first", [][]Record{{r(1, "a1")}, {r(-1, "b-"), r(0, "b0")}}, []string{"b-", "b0", "a1"}},
		{"empty lists", [][]Record{{}, {r(1, "b")}, nil}, []string{"b"}},
	}
	for _, tt := range tests {
		if got := texts(Merge(tt.lists...)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Merge = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestTailMany(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, errp := filepath.Join(dir, "app-0.out.log"), filepath.Join(dir, "app-0.err.log")
	clk := newClock(time.Millisecond)
	wo := open(t, Config{Path: out, MaxSize: 100, Now: clk.Now})
	we := open(t, Config{Path: errp, Now: clk.Now})
	for i := range 10 {
		w := wo
		if i%3 == 0 {
			w = we
		}
		mustWrite(t, w, line(i)+"\n")
	}
	wo.Close()
	we.Close()
	recs, err := TailMany([]string{out, errp, filepath.Join(dir, "missing.log")}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(recs); !slices.Equal(got, lines(5, 10)) {
		t.Errorf("TailMany = %q, want %q", got, lines(5, 10))
	}
	for _, r := range recs {
		var i int
		fmt.Sscanf(r.Line, "line %d", &i)
		if want := map[bool]string{true: errp, false: out}[i%3 == 0]; r.Source != want {
			t.Errorf("%s from %s, want %s", r.Line, r.Source, want)
		}
	}
}

func TestFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	for _, name := range []string{"app.log", "app.log.1", "app.log.2", "app.log.10", "app.log.0", "app.log.x", "app.log.-1", "app.logs", "other.log.1"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	os.Mkdir(filepath.Join(dir, "app.log.3"), 0o700)
	got, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{path + ".10", path + ".2", path + ".1", path}
	if !slices.Equal(got, want) {
		t.Errorf("Files = %q, want %q", got, want)
	}
	if got, err := Files(filepath.Join(dir, "none", "x.log")); err != nil || len(got) != 0 {
		t.Errorf("Files in a missing directory = %q, %v", got, err)
	}
}
