package logfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxSize    = 10 << 20
	DefaultKeep       = 5
	DefaultFlushAfter = 100 * time.Millisecond
	DefaultMaxLine    = 64 << 10
)

const (
	// batchLimit bounds the records buffered for one write: a chunk that
	// frames to more is written in several.
	batchLimit = 256 << 10
	// checkEvery is how often a Writer checks that its path still names the
	// file it has open.
	checkEvery = time.Second
	// readSize is ReadFrom's buffer: a Linux pipe's default capacity, so
	// that one read drains a full pipe.
	readSize = 64 << 10
)

// ErrClosed is what the methods of a closed Writer or Input return,
// wrapped in an error that names the path.
var ErrClosed = errors.New("logfile: writer closed")

// Config configures a Writer. Only Path is required; every other zero value
// is a documented default. Open does not change the Config.
type Config struct {
	// Path is the log file, appended to if it exists. Missing directories
	// are created with mode 0700, the file with mode 0600.
	Path string
	// MaxSize is the size in bytes past which the file is rotated: a
	// record that would make it larger goes to a fresh file. A record larger
	// than MaxSize is written whole to a file of its own. Zero means
	// DefaultMaxSize (10 MiB); negative means never rotate by size.
	MaxSize int64
	// Keep is how many rotated files are kept (Path.1 is the newest,
	// Path.<Keep> the oldest). Zero means DefaultKeep (5); negative means
	// none: rotation discards the old content.
	Keep int
	// Now stamps the records; nil means time.Now. It is not used for the
	// idle flush, which always measures real time.
	Now func() time.Time
	// FlushAfter is how long a partial line (bytes after the last newline)
	// waits for more data before it is written as a partial record. Zero
	// means DefaultFlushAfter (100 ms).
	FlushAfter time.Duration
	// MaxLine is the longest text of one record, in bytes: a longer line
	// is written as several records, all but the last partial, cut before
	// a UTF-8 sequence where possible. Zero means DefaultMaxLine (64 KiB).
	MaxLine int
	// OnError, when not nil, is called with every error of writing,
	// rotating or reopening the file, including those no caller can see
	// (the idle flush, ReadFrom, which keeps reading). It is called with
	// the Writer locked and must not call the Writer.
	OnError func(error)
}

// A Writer appends line-framed, timestamped records to a log file and
// rotates it by size. Its Write takes raw chunks of an app's output, split
// anywhere; see the package documentation for the record format.
//
// A Writer is safe for concurrent use, but its Write (and ReadFrom) frame
// one stream of bytes: to feed it from several pipes at once (the old and
// the new process of a restarted instance, or several instances sharing a
// file), give each pipe its own Input.
//
// Exactly one Writer may write a path: Open refuses a path that another
// Writer of this process has open, and nothing else should append to it.
//
// Get a Writer with Open; the zero Writer is not usable.
//
// A Writer notices within about a second that its file was removed or
// renamed behind its back (rm, an external logrotate) and reopens the path,
// recreating its directory. Data it could not write is dropped and reported
// (the app must never block on its log); it tries again with the next
// chunk.
type Writer struct {
	path       string
	maxSize    int64
	keep       int
	now        func() time.Time
	flushAfter time.Duration
	maxLine    int
	onError    func(error)

	// idle counts the idle-flush timer's pending or running callback, so
	// that Close can wait for it.
	idle sync.WaitGroup

	mu      sync.Mutex
	f       *os.File    // nil after a failed open; the next write retries
	fi      os.FileInfo // f's identity, to notice it being replaced
	checked time.Time   // when fi was last compared with path
	size    int64       // bytes in f
	batch   []byte      // records not yet written
	err     error       // the first error of the current call
	def     Input       // what Write and ReadFrom feed
	inputs  []*Input    // open inputs, def included
	timer   *time.Timer // the idle flush
	armed   bool        // timer is set and its callback has not yet run
	closed  bool
}

// An Input is one stream of bytes into a Writer, with its own partial
// line, so that streams written concurrently do not mix inside a line.
// Get one with Writer.NewInput; the zero value is not usable.
type Input struct {
	w       *Writer
	pending []byte      // the partial line
	ts      [tsLen]byte // pending's timestamp
	last    time.Time   // when pending last grew
	closed  bool
}

// openPaths holds the absolute paths of the open Writers. openMu is never
// taken with a Writer's mu held, nor mu with openMu held.
var (
	openMu    sync.Mutex
	openPaths = map[string]bool{}
)

// Open opens the log file cfg.Path for appending, creating it and its
// directory if needed.
func Open(cfg Config) (*Writer, error) {
	if cfg.Path == "" {
		return nil, errors.New("logfile: Config.Path is empty")
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, wrapErr(cfg.Path, err)
	}
	w := &Writer{
		path:       abs,
		maxSize:    cfg.MaxSize,
		keep:       cfg.Keep,
		now:        cfg.Now,
		flushAfter: cfg.FlushAfter,
		maxLine:    cfg.MaxLine,
		onError:    cfg.OnError,
	}
	if w.maxSize == 0 {
		w.maxSize = DefaultMaxSize
	}
	if w.keep == 0 {
		w.keep = DefaultKeep
	}
	if w.flushAfter <= 0 {
		w.flushAfter = DefaultFlushAfter
	}
	if w.maxLine <= 0 {
		w.maxLine = DefaultMaxLine
	}
	w.def.w = w
	w.inputs = []*Input{&w.def}

	openMu.Lock()
	defer openMu.Unlock()
	if openPaths[abs] {
		return nil, errors.New("logfile: open " + abs + ": another Writer of this process has it open")
	}
	if err := w.open(); err != nil {
		return nil, err
	}
	openPaths[abs] = true
	return w, nil
}

// Path returns the absolute path of the log file.
func (w *Writer) Path() string { return w.path }

// Write frames p into records and appends them to the file with one write
// (or one per rotation). The text after p's last newline is kept until the
// line ends, FlushAfter passes without more data, or it grows past MaxLine.
// Write consumes p even when it fails: it returns len(p) and the error, and
// the records that could not be written are lost.
func (w *Writer) Write(p []byte) (int, error) { return w.def.Write(p) }

// ReadFrom copies r into the Writer until r ends (io.Copy(w, r) calls it).
// A failed write does not stop it: the data is dropped, so that an app never
// blocks on a full pipe because its log cannot be written, and the first
// write error is returned when r ends. It stops early only when the Writer
// is closed.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) { return w.def.ReadFrom(r) }

// NewInput returns a new stream into w, with its own partial line. Close it
// when its source ends, to write its last partial line.
func (w *Writer) NewInput() *Input {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := &Input{w: w, closed: w.closed}
	if !w.closed {
		w.inputs = append(w.inputs, in)
	}
	return in
}

// Write frames p as Writer.Write does, with in's partial line.
func (in *Input) Write(p []byte) (int, error) {
	w := in.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if in.closed {
		return 0, w.closedErr("write")
	}
	w.err = nil
	mono := time.Now()
	if mono.Sub(w.checked) >= checkEvery {
		w.checkFile(mono)
	}
	stamp := mono
	if w.now != nil {
		stamp = w.now()
	}
	var ts [tsLen]byte
	formatTime(&ts, stamp)
	in.frame(p, &ts, mono)
	w.writeBatch()
	if len(in.pending) > 0 {
		w.armIdle()
	}
	return len(p), w.takeErr()
}

// ReadFrom copies r into in as Writer.ReadFrom does.
func (in *Input) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, readSize)
	var n int64
	var first error
	for {
		m, rerr := r.Read(buf)
		if m > 0 {
			n += int64(m)
			if _, err := in.Write(buf[:m]); err != nil {
				if errors.Is(err, ErrClosed) {
					return n, err
				}
				if first == nil {
					first = err
				}
			}
		}
		if rerr == io.EOF {
			return n, first
		}
		if rerr != nil {
			if first == nil {
				first = rerr
			}
			return n, first
		}
	}
}

// Close writes in's partial line, if any, as a partial record, and
// detaches in from its Writer. It does not close the Writer. Closing an
// Input again, or after its Writer, does nothing.
func (in *Input) Close() error {
	w := in.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if in.closed {
		return nil
	}
	w.err = nil
	in.closeLocked()
	for i, x := range w.inputs {
		if x == in {
			w.inputs = append(w.inputs[:i], w.inputs[i+1:]...)
			break
		}
	}
	w.writeBatch()
	return w.takeErr()
}

func (in *Input) closeLocked() {
	if len(in.pending) > 0 {
		in.w.emitLine(&in.ts, in.pending, true)
	}
	in.pending = nil
	in.closed = true
}

// frame turns p into records in w.batch, keeping the text after its last
// newline in in.pending.
func (in *Input) frame(p []byte, ts *[tsLen]byte, mono time.Time) {
	w := in.w
	if len(in.pending) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			in.addPending(p, ts, mono)
			return
		}
		in.pending = append(in.pending, p[:i]...)
		w.emitLine(&in.ts, in.pending, false)
		in.pending = in.pending[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			in.ts = *ts
			in.addPending(p, ts, mono)
			return
		}
		w.emitLine(ts, p[:i], false)
		p = p[i+1:]
	}
}

// addPending appends p to the partial line and writes what exceeds MaxLine
// as partial records; the rest of the line is then stamped ts.
func (in *Input) addPending(p []byte, ts *[tsLen]byte, mono time.Time) {
	w := in.w
	in.pending = append(in.pending, p...)
	in.last = mono
	off := 0
	for len(in.pending)-off > w.maxLine {
		cut := off + cutAt(in.pending[off:], w.maxLine)
		w.emit(&in.ts, in.pending[off:cut], true)
		off = cut
		in.ts = *ts
	}
	if off > 0 {
		in.pending = in.pending[:copy(in.pending, in.pending[off:])]
	}
}

// cutAt returns where to cut b, longer than max, so that the first piece
// holds at most max bytes and, if possible, no UTF-8 sequence is split.
func cutAt(b []byte, max int) int {
	for i := max; i > max-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return max
}

// emitLine adds the records of one line of text, split at MaxLine.
func (w *Writer) emitLine(ts *[tsLen]byte, text []byte, partial bool) {
	for len(text) > w.maxLine {
		cut := cutAt(text, w.maxLine)
		w.emit(ts, text[:cut], true)
		text = text[cut:]
	}
	w.emit(ts, text, partial)
}

// emit adds one record to the batch, first rotating if the record would
// take the file past MaxSize.
func (w *Writer) emit(ts *[tsLen]byte, text []byte, partial bool) {
	n := tsLen + 2 + len(text)
	if w.maxSize > 0 {
		if used := w.size + int64(len(w.batch)); used > 0 && used+int64(n) > w.maxSize {
			w.writeBatch()
			w.rotate()
		}
	}
	if len(w.batch) > 0 && len(w.batch)+n > batchLimit {
		w.writeBatch()
	}
	w.batch = append(w.batch, ts[:]...)
	if partial {
		w.batch = append(w.batch, markPartial)
	} else {
		w.batch = append(w.batch, markLine)
	}
	w.batch = append(w.batch, text...)
	w.batch = append(w.batch, '\n')
}

// writeBatch writes the pending records with one write, reopening the file
// if an earlier open failed. Records that cannot be written are dropped.
func (w *Writer) writeBatch() {
	if len(w.batch) == 0 {
		return
	}
	defer func() {
		if cap(w.batch) > 4*batchLimit {
			w.batch = nil // one huge chunk must not pin its buffer
		} else {
			w.batch = w.batch[:0]
		}
	}()
	if w.f == nil {
		if err := w.open(); err != nil {
			w.fail(err)
			return
		}
	}
	n, err := w.f.Write(w.batch)
	w.size += int64(n)
	if err != nil {
		w.fail(wrapErr(w.path, err))
	}
}

// open opens w.path, creating it and its directory.
func (w *Writer) open() error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o700); err != nil {
		return wrapErr(w.path, err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return wrapErr(w.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return wrapErr(w.path, err)
	}
	w.f, w.fi, w.size = f, fi, fi.Size()
	w.checked = time.Now()
	return nil
}

// checkFile reopens the path if the open file is no longer what it names.
func (w *Writer) checkFile(mono time.Time) {
	w.checked = mono
	if w.f == nil {
		return
	}
	st, err := os.Stat(w.path)
	if err == nil && os.SameFile(st, w.fi) {
		return
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return // not sure it is gone: keep writing where we are
	}
	w.f.Close()
	w.f, w.size = nil, 0
	if err := w.open(); err != nil {
		w.fail(err)
	}
}

// rotate shifts Path.N to Path.N+1, dropping the oldest, moves Path to
// Path.1 and opens a fresh Path.
func (w *Writer) rotate() {
	if w.keep <= 0 {
		w.replace()
		return
	}
	rotated, err := rotatedFiles(w.path)
	if err != nil {
		w.fail(err)
	}
	// Highest first, so that each name is free when its file moves there.
	for i := len(rotated) - 1; i >= 0; i-- {
		r := rotated[i]
		if r.n < w.keep {
			w.rename(r.name, rotatedName(w.path, r.n+1))
		} else if err := os.Remove(r.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.fail(wrapErr(r.name, err))
		}
	}
	w.rename(w.path, rotatedName(w.path, 1))
	w.reopen()
}

// replace removes Path and opens a fresh one.
func (w *Writer) replace() {
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.fail(wrapErr(w.path, err))
	}
	w.reopen()
}

// reopen opens Path, which rotate or replace has moved away, and closes the
// old file.
func (w *Writer) reopen() {
	old := w.f
	w.f, w.size = nil, 0
	if err := w.open(); err != nil {
		w.fail(err)
	}
	if old != nil {
		old.Close()
	}
}

func (w *Writer) rename(from, to string) {
	if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.fail(wrapErr(from, err))
	}
}

// Rotate rotates the file now, whatever its size (kin's `reloadLogs`).
func (w *Writer) Rotate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.closedErr("rotate")
	}
	w.err = nil
	w.rotate()
	return w.takeErr()
}

// Truncate empties the log (`kin flush`, like PM2's `pm2 flush`): the file
// is replaced by a new, empty one and the rotated files are removed. The
// file is replaced rather than cut in place so that Follow sees the flush
// as it sees a rotation, and cannot miss what is written right after it;
// `tail -F` follows too, a plain `tail -f` stays with the old file. The
// partial lines not yet written are kept.
func (w *Writer) Truncate() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.closedErr("truncate")
	}
	w.err = nil
	w.replace()
	if err := removeRotated(w.path, 1); err != nil {
		w.fail(err)
	}
	return w.takeErr()
}

// Close writes the partial line of every Input as a partial record, closes
// the file and stops the idle flush, returning only after its callback has
// finished. Closing again does nothing and returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.err = nil
	for _, in := range w.inputs {
		in.closeLocked()
	}
	w.inputs = nil
	w.writeBatch()
	if w.armed && w.timer.Stop() {
		w.armed = false
		w.idle.Done()
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.fail(wrapErr(w.path, err))
		}
		w.f = nil
	}
	err := w.takeErr()
	w.mu.Unlock()
	w.idle.Wait()

	openMu.Lock()
	delete(openPaths, w.path)
	openMu.Unlock()
	return err
}

// armIdle sets the idle-flush timer unless it is already set.
func (w *Writer) armIdle() {
	if w.armed || w.closed {
		return
	}
	w.armed = true
	w.idle.Add(1)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.flushAfter, w.idleFlush)
	} else {
		w.timer.Reset(w.flushAfter)
	}
}

// idleFlush writes the partial lines that have waited FlushAfter, and sets
// the timer again for the ones that have not.
func (w *Writer) idleFlush() {
	defer w.idle.Done()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.closed {
		return
	}
	w.err = nil
	now := time.Now()
	next := time.Duration(-1)
	for _, in := range w.inputs {
		if len(in.pending) == 0 {
			continue
		}
		if wait := w.flushAfter - now.Sub(in.last); wait > 0 {
			if next < 0 || wait < next {
				next = wait
			}
			continue
		}
		w.emitLine(&in.ts, in.pending, true)
		in.pending = in.pending[:0]
	}
	w.writeBatch()
	w.err = nil // reported through OnError; nobody else to tell
	if next >= 0 {
		w.armed = true
		w.idle.Add(1)
		w.timer.Reset(next)
	}
}

// fail records err as the current call's error and reports it to OnError.
func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	if w.onError != nil {
		w.onError(err)
	}
}

func (w *Writer) takeErr() error {
	err := w.err
	w.err = nil
	return err
}

func (w *Writer) closedErr(op string) error {
	return &closedError{op: op, path: w.path}
}

type closedError struct{ op, path string }

func (e *closedError) Error() string { return "logfile: " + e.op + " " + e.path + ": writer closed" }
func (e *closedError) Unwrap() error { return ErrClosed }
