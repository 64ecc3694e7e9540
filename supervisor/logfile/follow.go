package logfile

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

const (
	// pollInterval is how often Follow looks for new data when it has
	// caught up. It matches the Writer's FlushAfter: a line is seen within
	// about 200 ms of being written.
	pollInterval = 100 * time.Millisecond
	// pollBudget bounds what one file contributes to one round, so that a
	// large backlog is delivered in pieces.
	pollBudget = 1 << 20
	// maxCarry bounds a line without a newline that Follow holds back; a
	// longer one (no Writer writes one) is delivered as a partial record.
	maxCarry = 1 << 20
)

// Follow calls fn with each record appended to the log at path, in order,
// like `tail -F`: it goes on across rotations (the file renamed and a new
// one created: the rest of the old file is read first) and truncations (a
// flush: it starts again from the beginning), and waits for a file that
// does not exist yet. It starts at the end of the file when fromEnd is true
// (pair it with Tail to show history first), at its beginning otherwise.
// Each record's Source is path.
//
// Follow returns fn's error if fn fails, or ctx.Err() when ctx is done; it
// holds the file open, and no goroutine, between its calls to fn.
//
// Follow polls (every 100 ms once it has caught up) rather than using
// inotify: the checks it needs after each event are the same stat and read
// that polling does, polling sees renames and truncations without a watch
// on the directory, works on every file system, and costs two system calls
// per file per interval. When several rotations (or a flush and rotations)
// happen within one interval, Follow reads the rotated files it did not see
// open, as long as they are kept. It misses records when a file is cut in
// place and grows back past the size it had within one interval, as `tail
// -F` would; the Writer never cuts in place.
func Follow(ctx context.Context, path string, fromEnd bool, fn func(Record) error) error {
	return FollowMany(ctx, []string{path}, fromEnd, fn)
}

// FollowMany follows several logs at once, as Follow does each one. The
// records that arrive within one poll are merged by time (see Merge) before
// fn sees them; records of different polls arrive in the order they were
// read. Each record's Source is the path it came from.
func FollowMany(ctx context.Context, paths []string, fromEnd bool, fn func(Record) error) error {
	followers := make([]*follower, len(paths))
	for i, p := range paths {
		followers[i] = &follower{path: p}
		defer followers[i].close()
		if fromEnd {
			followers[i].openAtEnd()
		}
	}
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	lists := make([][]Record, 0, len(followers))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		lists = lists[:0]
		more := false
		for _, f := range followers {
			recs, m, err := f.poll()
			if err != nil {
				return err
			}
			more = more || m
			if len(recs) > 0 {
				lists = append(lists, recs)
			}
		}
		for _, r := range Merge(lists...) {
			if err := fn(r); err != nil {
				return err
			}
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// follower reads one log file as it grows.
type follower struct {
	path  string
	f     *os.File    // nil until the file exists
	fi    os.FileInfo // f's identity, to notice a rotation
	off   int64       // where to read next
	carry []byte      // the start of a line not yet ended
	buf   []byte
}

// openAtEnd opens the file, if it exists, positioned at its end.
func (f *follower) openAtEnd() {
	file, err := os.Open(f.path)
	if err != nil {
		return // poll tries again and reports the error
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return
	}
	f.f, f.fi, f.off = file, st, st.Size()
}

func (f *follower) close() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// poll returns the records appended since the last poll; more says that
// there is more to read at once.
func (f *follower) poll() (recs []Record, more bool, err error) {
	if f.f == nil {
		file, err := os.Open(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, wrapErr(f.path, err)
		}
		st, err := file.Stat()
		if err != nil {
			file.Close()
			return nil, false, wrapErr(f.path, err)
		}
		f.f, f.fi, f.off = file, st, 0
	}
	recs, n, err := f.read(nil, pollBudget)
	if err != nil || n >= pollBudget {
		return recs, err == nil, err
	}
	// Caught up: has the path been rotated or truncated?
	st, err := os.Stat(f.path)
	switch {
	case err != nil:
		// Gone, between a rotation's rename and create, or removed: keep
		// the old file until a new one appears.
		return recs, false, nil
	case !os.SameFile(st, f.fi):
		// Rotated: the Writer may have appended to the old file after our
		// last read and before renaming it.
		recs, _, err = f.read(recs, -1)
		if err != nil {
			return recs, false, err
		}
		recs = f.flushCarry(recs)
		missed := f.missedFiles()
		f.close()
		for _, name := range missed {
			if recs, err = f.readWhole(recs, name); err != nil {
				return recs, false, err
			}
		}
		return recs, true, nil
	case st.Size() < f.off:
		// Truncated: what is there now was written since.
		recs = f.flushCarry(recs)
		f.off = 0
		return recs, true, nil
	}
	return recs, false, nil
}

// read appends the records in the next budget bytes of the file (all of
// it for budget < 0) to recs, and returns how many bytes it read.
func (f *follower) read(recs []Record, budget int) ([]Record, int, error) {
	if f.buf == nil {
		f.buf = make([]byte, 64<<10)
	}
	total := 0
	for budget < 0 || total < budget {
		m, err := f.f.ReadAt(f.buf, f.off)
		f.off += int64(m)
		total += m
		recs = f.lines(recs, f.buf[:m])
		if err != nil && err != io.EOF {
			return recs, total, wrapErr(f.path, err)
		}
		if err == io.EOF || m == 0 {
			break
		}
	}
	return recs, total, nil
}

// lines splits data into records, holding back a line not yet ended.
func (f *follower) lines(recs []Record, data []byte) []Record {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			f.carry = append(f.carry, data...)
			if len(f.carry) > maxCarry {
				recs = f.flushCarry(recs)
			}
			return recs
		}
		line := data[:i]
		if len(f.carry) > 0 {
			f.carry = append(f.carry, line...)
			line = f.carry
		}
		r := ParseRecord(line)
		r.Source = f.path
		recs = append(recs, r)
		f.carry = f.carry[:0]
		data = data[i+1:]
	}
	return recs
}

// flushCarry delivers a line that will not be ended, as a partial record.
func (f *follower) flushCarry(recs []Record) []Record {
	if len(f.carry) == 0 {
		return recs
	}
	r := ParseRecord(f.carry)
	r.Partial = true
	r.Source = f.path
	f.carry = f.carry[:0]
	return append(recs, r)
}

// missedFiles returns, oldest first, the rotated files newer than the one
// open: those that were created and rotated away between two polls.
func (f *follower) missedFiles() []string {
	rotated, err := rotatedFiles(f.path)
	if err != nil || len(rotated) == 0 {
		return nil
	}
	infos := make([]os.FileInfo, len(rotated))
	for i, r := range rotated {
		infos[i], _ = os.Stat(r.name)
		if infos[i] != nil && os.SameFile(infos[i], f.fi) {
			// Ours was rotated to Path.N: Path.N-1 to Path.1 came after.
			missed := make([]string, 0, i)
			for j := i - 1; j >= 0; j-- {
				missed = append(missed, rotated[j].name)
			}
			return missed
		}
	}
	// Ours was deleted: rotated past Keep, or flushed (the Writer then
	// removes the rotated files too), so the rotated files there are now
	// came after it. Unless it was removed by hand: then they are older,
	// and their times tell.
	last, err := f.f.Stat()
	if err != nil {
		return nil
	}
	var missed []string
	for i := len(rotated) - 1; i >= 0; i-- {
		if infos[i] != nil && !infos[i].ModTime().Before(last.ModTime()) {
			missed = append(missed, rotated[i].name)
		}
	}
	return missed
}

// readWhole appends the records of the file name, all of it, to recs.
func (f *follower) readWhole(recs []Record, name string) ([]Record, error) {
	file, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return recs, nil
	}
	if err != nil {
		return recs, wrapErr(name, err)
	}
	defer file.Close()
	f.f, f.off = file, 0
	recs, _, err = f.read(recs, -1)
	f.f = nil
	return f.flushCarry(recs), err
}
