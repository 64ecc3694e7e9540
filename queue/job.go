package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// State is where a job is in its life.
type State string

// A job's states. A job is waiting, or delayed until its time comes, then
// active while a worker runs it; it ends completed, or dead once its last
// attempt failed. Between a failed attempt and the next one it is failed.
const (
	Waiting   State = "waiting"
	Delayed   State = "delayed"
	Active    State = "active"
	Completed State = "completed"
	Failed    State = "failed"
	Dead      State = "dead"
)

// Priority orders the jobs of a queue: workers take every waiting high job
// before any normal one, and every normal one before any low one. The zero
// value is Normal.
type Priority string

// The priorities.
const (
	High   Priority = "high"
	Normal Priority = "normal"
	Low    Priority = "low"
)

// priorities lists the priorities in the order workers take them.
var priorities = [...]Priority{High, Normal, Low}

func (p Priority) valid() bool { return p == High || p == Normal || p == Low }

func (p Priority) orDefault() Priority {
	if p == "" {
		return Normal
	}
	return p
}

func (p Priority) index() int {
	switch p {
	case High:
		return 0
	case Low:
		return 2
	}
	return 1
}

// Cause says why an attempt failed.
type Cause string

// The causes of failure.
const (
	// CauseError: the handler returned (or the worker answered) an error.
	CauseError Cause = "error"
	// CauseCrash: the worker process died during the job (or an in-process
	// handler panicked).
	CauseCrash Cause = "crash"
	// CauseTimeout: the job ran past its timeout; its worker's process
	// group was killed.
	CauseTimeout Cause = "timeout"
	// CauseMemory: the worker's process tree went above the job's memory
	// limit; it was killed.
	CauseMemory Cause = "memory"
	// CauseLost: the worker that held the job went away without a verdict
	// (its acknowledgement deadline passed), e.g. the program running Work
	// was killed.
	CauseLost Cause = "lost"
	// CauseInvalid: the job's message could not be decoded (a producer in
	// another language sent bad headers, or a job ID that is not a KV key).
	// It is not retried.
	CauseInvalid Cause = "invalid"
)

// JobError is why a job's attempt failed, as recorded. Wait returns it for a
// dead job.
type JobError struct {
	Message string `json:"message"`
	Cause   Cause  `json:"cause"`
	// Stack is the worker's stack trace, when it sent one.
	Stack string `json:"stack,omitempty"`
}

func (e *JobError) Error() string {
	return "queue: job failed (" + string(e.Cause) + "): " + e.Message
}

// Backoff is how long a failed job waits before its next attempt. The zero
// value is exponential from 1 s, doubling, at most 1 h.
type Backoff struct {
	// Delay is the wait before the first retry; zero means 1 s.
	Delay time.Duration `json:"delay,omitempty"`
	// Fixed waits Delay before every retry, instead of doubling it.
	Fixed bool `json:"fixed,omitempty"`
	// Max caps the wait; zero means 1 h.
	Max time.Duration `json:"max,omitempty"`
}

// Wait returns the wait after the failure of attempt n (1 for the first).
func (b Backoff) Wait(n int) time.Duration {
	d, max := b.Delay, b.Max
	if d <= 0 {
		d = time.Second
	}
	if max <= 0 {
		max = time.Hour
	}
	if !b.Fixed {
		for i := 1; i < n && d < max; i++ {
			d *= 2
		}
	}
	return min(d, max)
}

// JobSpec describes a job to add. Every field's zero value is a sensible
// default.
type JobSpec struct {
	// ID names the job; empty means a generated unique id. A given ID is
	// also the job's idempotency key: adding a job whose ID is known adds
	// nothing and returns the same ID (see Client.Add). An ID is 1 to 128
	// characters among A–Z a–z 0–9 - _ = (it is the job's key in the
	// queue's KV bucket of records, and a subject token).
	ID string
	// Data is the job's input, a JSON document given to the handler (a pool
	// worker receives it as its task's data); nil means null.
	Data json.RawMessage
	// Attempts is how many times the job is tried before it is
	// dead-lettered; zero means 3.
	Attempts int
	// Backoff spaces the attempts.
	Backoff Backoff
	// Delay holds the job back for that long before any worker may take
	// it; zero means none. (The server fires delayed jobs with a
	// resolution of about 250 ms.)
	Delay time.Duration
	// Priority orders jobs; zero means Normal.
	Priority Priority
	// Timeout bounds each attempt: past it the worker is killed (a pool
	// worker with its whole process group) and the attempt fails with
	// CauseTimeout. Zero means WorkConfig.Timeout.
	Timeout time.Duration
	// MaxMemory, in bytes, bounds the memory (RSS of the whole process
	// tree) of the worker process running the job: above it the worker is
	// killed and the attempt fails with CauseMemory. Zero means
	// WorkConfig.MaxMemory. It has no effect on in-process handlers.
	MaxMemory uint64
}

// DefaultAttempts is JobSpec.Attempts' default.
const DefaultAttempts = 3

// Job is a job's record: what Get, Wait and Events return and what a
// handler receives.
type Job struct {
	ID       string   `json:"id"`
	Queue    string   `json:"queue"`
	State    State    `json:"state"`
	Priority Priority `json:"priority,omitempty"`
	// Data is the job's input. Handlers always have it; Get has it while
	// the job is waiting, delayed, active, failed or dead (it is not kept
	// in the record itself).
	Data json.RawMessage `json:"data,omitempty"`
	// Attempt is the number of the current or last attempt (1 for the
	// first); 0 before the first.
	Attempt int `json:"attempt"`
	// Attempts is how many attempts the job may have.
	Attempts int `json:"attempts"`
	// Progress is the last progress report of the current attempt.
	Progress json.RawMessage `json:"progress,omitempty"`
	// Result is a completed job's result.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is the last attempt's failure (failed and dead jobs).
	Error *JobError `json:"error,omitempty"`
	// Added is when the job was added; Started and Finished bound the
	// last attempt.
	Added    time.Time `json:"added,omitzero"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// RunAt is when a delayed job becomes waiting, or when a failed job's
	// next attempt is due.
	RunAt time.Time `json:"run_at,omitzero"`
	// Worker names the program that ran the last attempt (the one running
	// Work): "host/pid".
	Worker string `json:"worker,omitempty"`

	// Timeout and MaxMemory are the job's limits, for handlers.
	Timeout   time.Duration `json:"-"`
	MaxMemory uint64        `json:"-"`

	progress func(json.RawMessage) error
}

// ReportProgress publishes a progress event for the job; only a handler's
// job can. It returns an error for other jobs.
func (j *Job) ReportProgress(data json.RawMessage) error {
	if j.progress == nil {
		return errors.New("queue: progress reported outside a handler")
	}
	return j.progress(data)
}

// Headers of job messages (docs: the "Job messages" section of doc.go).
const (
	hdrMsgID     = "Nats-Msg-Id"
	hdrAttempts  = "Kin-Attempts"
	hdrBackoff   = "Kin-Backoff"
	hdrTimeout   = "Kin-Timeout"
	hdrMaxMemory = "Kin-Max-Memory"
	hdrAdded     = "Kin-Added"
	hdrPriority  = "Kin-Priority"
	hdrSchedule  = "Nats-Schedule"
	hdrSchedTgt  = "Nats-Schedule-Target"
	// On records (KV puts): the event's type; and the KV API's marker of a
	// deleted or purged key.
	hdrEvent = "Kin-Event"
	hdrKVOp  = "KV-Operation"
)

// jobOpts are a job's options as carried by its message's headers.
type jobOpts struct {
	attempts  int
	backoff   Backoff
	timeout   time.Duration
	maxMemory uint64
	added     time.Time // zero: not in the headers
	priority  Priority  // only on dead-letter messages
}

// maxAttempts bounds Kin-Attempts, so that a bad header cannot make a job
// run forever.
const maxAttempts = 1000

// encodeHeaders writes o into h. Defaults are left out.
func (o *jobOpts) encodeHeaders(h nats.Header) {
	if o.attempts != DefaultAttempts {
		h[hdrAttempts] = []string{strconv.Itoa(o.attempts)}
	}
	if o.backoff != (Backoff{}) {
		h[hdrBackoff] = []string{o.backoff.String()}
	}
	if o.timeout > 0 {
		h[hdrTimeout] = []string{strconv.FormatInt(o.timeout.Milliseconds(), 10)}
	}
	if o.maxMemory > 0 {
		h[hdrMaxMemory] = []string{strconv.FormatUint(o.maxMemory, 10)}
	}
	if !o.added.IsZero() {
		h[hdrAdded] = []string{strconv.FormatInt(o.added.UnixMilli(), 10)}
	}
	if o.priority != "" {
		h[hdrPriority] = []string{string(o.priority)}
	}
}

// String formats b as its Kin-Backoff header: "exponential 1000 3600000"
// or "fixed 500" (milliseconds; the maximum is optional).
func (b Backoff) String() string {
	kind := "exponential"
	if b.Fixed {
		kind = "fixed"
	}
	s := kind + " " + strconv.FormatInt(b.Delay.Milliseconds(), 10)
	if b.Max > 0 {
		s += " " + strconv.FormatInt(b.Max.Milliseconds(), 10)
	}
	return s
}

// decodeHeaders reads a job's options from its message's headers. Absent
// headers take their defaults; a malformed one is an error.
func decodeHeaders(h nats.Header) (jobOpts, error) {
	o := jobOpts{attempts: DefaultAttempts}
	var err error
	if v, ok := header(h, hdrAttempts); ok {
		if o.attempts, err = parseCount(hdrAttempts, v, 1, maxAttempts); err != nil {
			return o, err
		}
	}
	if v, ok := header(h, hdrBackoff); ok {
		if o.backoff, err = parseBackoff(v); err != nil {
			return o, err
		}
	}
	if v, ok := header(h, hdrTimeout); ok {
		ms, err := parseUint(hdrTimeout, v, uint64(maxMillis))
		if err != nil {
			return o, err
		}
		o.timeout = time.Duration(ms) * time.Millisecond
	}
	if v, ok := header(h, hdrMaxMemory); ok {
		if o.maxMemory, err = parseUint(hdrMaxMemory, v, 1<<62); err != nil {
			return o, err
		}
	}
	if v, ok := header(h, hdrAdded); ok {
		ms, err := parseUint(hdrAdded, v, uint64(maxMillis))
		if err != nil {
			return o, err
		}
		o.added = time.UnixMilli(int64(ms))
	}
	if v, ok := header(h, hdrPriority); ok {
		o.priority = Priority(v)
		if !o.priority.valid() {
			return o, fmt.Errorf("queue: header %s: %q is not high, normal or low", hdrPriority, v)
		}
	}
	return o, nil
}

// maxMillis is the largest duration in milliseconds that fits a
// time.Duration.
const maxMillis = int64(1<<63-1) / int64(time.Millisecond)

func header(h nats.Header, name string) (string, bool) {
	v := h[name]
	if len(v) == 0 {
		return "", false
	}
	return strings.TrimSpace(v[0]), true
}

func parseUint(name, v string, max uint64) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, fmt.Errorf("queue: header %s: %q is not a number from 0 to %d", name, v, max)
	}
	return n, nil
}

func parseCount(name, v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("queue: header %s: %q is not a number from %d to %d", name, v, lo, hi)
	}
	return n, nil
}

func parseBackoff(v string) (Backoff, error) {
	var b Backoff
	f := strings.Fields(v)
	bad := func() (Backoff, error) {
		return Backoff{}, fmt.Errorf("queue: header %s: %q is not \"exponential|fixed DELAY-MS [MAX-MS]\"", hdrBackoff, v)
	}
	if len(f) < 2 || len(f) > 3 {
		return bad()
	}
	switch f[0] {
	case "exponential":
	case "fixed":
		b.Fixed = true
	default:
		return bad()
	}
	for i, s := range f[1:] {
		ms, err := strconv.ParseUint(s, 10, 64)
		if err != nil || ms > uint64(maxMillis) {
			return bad()
		}
		d := time.Duration(ms) * time.Millisecond
		if i == 0 {
			b.Delay = d
		} else {
			b.Max = d
		}
	}
	return b, nil
}

// validID reports whether s can be a job id: a subject token and a KV
// key.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return true
}

// validQueue reports whether s can be a queue name (it becomes part of
// stream names and a subject token).
func validQueue(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// decodeRecord reads a job record (the body of an event message).
func decodeRecord(b []byte) (*Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("queue: malformed job record: %w", err)
	}
	switch j.State {
	case Waiting, Delayed, Active, Completed, Failed, Dead:
	default:
		return nil, fmt.Errorf("queue: malformed job record: unknown state %q", j.State)
	}
	if !validID(j.ID) {
		return nil, fmt.Errorf("queue: malformed job record: bad id %q", j.ID)
	}
	return &j, nil
}
