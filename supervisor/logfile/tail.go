package logfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// Tail returns the last n records of the log at path, oldest first, reading
// the rotated files too when the current one holds fewer than n. It reads
// the files backwards from their ends, so its cost follows n, not the size
// of the log. n < 0 means every record; n == 0 means none. A log that does
// not exist (an app that has written nothing yet) has no records and is not
// an error. Each record's Source is path.
//
// Tail does not lock out a Writer: a rotation while it reads may make it
// miss or repeat the records around the rotation.
func Tail(path string, n int) ([]Record, error) {
	if n == 0 {
		return nil, nil
	}
	files, err := Files(path)
	if err != nil {
		return nil, err
	}
	var parts [][]Record // newest file first
	have := 0
	for i := len(files) - 1; i >= 0 && (n < 0 || have < n); i-- {
		want := -1
		if n >= 0 {
			want = n - have
		}
		recs, err := tailFile(files[i], want, path)
		if err != nil {
			return nil, err
		}
		parts = append(parts, recs)
		have += len(recs)
	}
	out := make([]Record, 0, have)
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	return out, nil
}

// TailMany returns the last n records of the logs at paths, merged into one
// list ordered by time as Merge orders it, oldest first. Each record's
// Source says which path it came from. n < 0 means every record.
func TailMany(paths []string, n int) ([]Record, error) {
	streams := make([][]Record, 0, len(paths))
	for _, p := range paths {
		recs, err := Tail(p, n)
		if err != nil {
			return nil, err
		}
		streams = append(streams, recs)
	}
	out := Merge(streams...)
	if n >= 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// Merge merges lists of records, each in the order of its file, into one
// list ordered by Time. The order within each list is kept, and records of
// equal time keep the order of their lists in the arguments. A record
// without a time (a foreign line) sorts as if it had the time of the record
// before it in its list.
func Merge(lists ...[]Record) []Record {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	out := make([]Record, 0, total)
	pos := make([]int, len(lists))
	at := make([]time.Time, len(lists)) // each list's effective time so far
	for len(out) < total {
		best := -1
		var bestT time.Time
		for i, l := range lists {
			if pos[i] == len(l) {
				continue
			}
			t := l[pos[i]].Time
			if t.IsZero() {
				t = at[i]
			}
			if best < 0 || t.Before(bestT) {
				best, bestT = i, t
			}
		}
		at[best] = bestT
		out = append(out, lists[best][pos[best]])
		pos[best]++
	}
	return out
}

// tailFile returns the last n records of one file (all of them for n < 0),
// reading blocks backwards from the end until it has seen enough lines.
func tailFile(name string, n int, source string) ([]Record, error) {
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // rotated away or flushed since Files listed it
	}
	if err != nil {
		return nil, wrapErr(name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, wrapErr(name, err)
	}
	pos := st.Size()
	var blocks [][]byte // read backwards: the last block first
	lines := 0
	block := int64(16 << 10)
	// n records end with n newlines; one more marks where the first begins.
	for pos > 0 && (n < 0 || lines <= n) {
		size := min(block, pos)
		pos -= size
		b := make([]byte, size)
		m, err := f.ReadAt(b, pos)
		if err == io.EOF {
			// The file shrank under us (a flush): keep what was read after it.
			break
		}
		if err != nil {
			return nil, wrapErr(name, err)
		}
		b = b[:m]
		lines += bytes.Count(b, []byte{'\n'})
		blocks = append(blocks, b)
		block = min(block*2, 1<<20)
	}
	var data []byte
	if len(blocks) == 1 {
		data = blocks[0]
	} else {
		total := 0
		for _, b := range blocks {
			total += len(b)
		}
		data = make([]byte, 0, total)
		for i := len(blocks) - 1; i >= 0; i-- {
			data = append(data, blocks[i]...)
		}
	}
	if pos > 0 {
		// The first line read may have begun before pos: drop it.
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, nil
		}
		data = data[i+1:]
	}
	data = bytes.TrimSuffix(data, []byte{'\n'})
	if len(data) == 0 && (pos > 0 || st.Size() == 0) {
		return nil, nil
	}
	// Keep only the last n lines before parsing them.
	if n >= 0 {
		start := len(data)
		for k := 0; k < n; k++ {
			i := bytes.LastIndexByte(data[:start], '\n')
			if i < 0 {
				start = -1
				break
			}
			start = i
		}
		data = data[start+1:]
	}
	out := make([]Record, 0, min(max(n, 0), 1024))
	for {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line = data[:i]
		}
		r := ParseRecord(line)
		r.Source = source
		out = append(out, r)
		if i < 0 {
			break
		}
		data = data[i+1:]
	}
	return out, nil
}
