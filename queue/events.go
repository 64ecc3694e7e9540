package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventType names what happened to a job. Each event carries the job's
// record after it; its type is the record's state, but for progress.
type EventType string

// The event types.
const (
	// EventActive: a worker started an attempt.
	EventActive EventType = "active"
	// EventProgress: the running attempt reported progress.
	EventProgress EventType = "progress"
	// EventCompleted: the job completed; the record has its result.
	EventCompleted EventType = "completed"
	// EventFailed: an attempt failed and another will follow (RunAt).
	EventFailed EventType = "failed"
	// EventDead: the last attempt failed; the job is in the dead-letter
	// stream.
	EventDead EventType = "dead"
	// EventWaiting: a dead job was sent back to the queue (Retry), or a
	// worker shutting down gave back a job it had not finished.
	EventWaiting EventType = "waiting"
)

func (t EventType) state() State {
	if t == EventProgress {
		return Active
	}
	return State(t)
}

// eventTypes lists the event types.
var eventTypes = [...]EventType{EventActive, EventProgress, EventCompleted, EventFailed, EventDead, EventWaiting}

// valid reports whether t is one of the event types.
func (t EventType) valid() bool {
	_, ok := recordHeaders[t]
	return ok
}

// Event is one event of a queue.
type Event struct {
	Type EventType
	// Seq is the event's sequence number in the stream of the queue's
	// bucket of records, to resume from (EventsOptions.StartSeq).
	Seq  uint64
	Time time.Time
	// Job is the job's record after the event.
	Job *Job
}

// EventsOptions chooses the events Events delivers. The zero value
// delivers every new event of the queue.
type EventsOptions struct {
	// StartSeq replays the kept events from that sequence number on.
	StartSeq uint64
	// Since replays the kept events stored at or after that time (when
	// StartSeq is zero). With both zero, only new events are delivered.
	Since time.Time
	// Types keeps only events of those types; empty means all.
	Types []EventType
	// ID keeps only the events of that job; empty means every job's.
	ID string
}

// Events calls fn for each event of queue, in order: first the kept events
// chosen by opts, then new ones as they happen, until ctx ends (it returns
// ctx.Err()) or fn returns an error (it returns that error).
//
// Events are read from the queue's bucket of records, whose history holds
// each job's last 64 events for QueueConfig.Retention. (Subscribers that
// need no replay can subscribe to kin.qe.QUEUE.TYPE.ID instead; see the
// package doc.)
func (c *Client) Events(ctx context.Context, queue string, opts EventsOptions, fn func(Event) error) error {
	h, err := c.handle(ctx, queue)
	if err != nil {
		return err
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case opts.StartSeq > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, opts.StartSeq
	case !opts.Since.IsZero():
		since := opts.Since
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	id := "*"
	if opts.ID != "" {
		if !validID(opts.ID) {
			return fmt.Errorf("queue: events: bad job id %q", opts.ID)
		}
		id = opts.ID
	}
	occ.FilterSubjects = []string{recordSubject(queue, id)}
	// The server cannot filter on a header: types are chosen here.
	var types map[EventType]bool
	if len(opts.Types) > 0 {
		types = map[EventType]bool{}
		for _, t := range opts.Types {
			types[t] = true
		}
	}
	cons, err := c.js.OrderedConsumer(ctx, recordStream(h.name), occ)
	if err != nil {
		return fmt.Errorf("queue: events: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("queue: events: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("queue: events: %w", err)
		}
		ev, err := decodeEvent(m.Headers(), m.Data())
		if err != nil {
			continue // not ours to judge: skip what a foreign client wrote
		}
		if types != nil && !types[ev.Type] {
			continue
		}
		if md, err := m.Metadata(); err == nil {
			ev.Seq, ev.Time = md.Sequence.Stream, md.Timestamp
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// decodeEvent reads a record message (a value of a queue's bucket) as an
// event: its type is the Kin-Event header.
func decodeEvent(hdr nats.Header, data []byte) (Event, error) {
	typ := EventType(hdr.Get(hdrEvent))
	if !typ.valid() {
		return Event{}, fmt.Errorf("queue: not an event: %s %q", hdrEvent, typ)
	}
	j, err := decodeRecord(data)
	if err != nil {
		return Event{}, err
	}
	return Event{Type: typ, Job: j}, nil
}

// lastRecord returns the job's latest record, or nil if there is none.
func (c *Client) lastRecord(ctx context.Context, h *queueHandle, id string) (*Job, error) {
	m, err := c.lastMsg(ctx, recordStream(h.name), recordSubject(h.name, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: job %s: %w", id, err)
	}
	if m.Header.Get(hdrKVOp) != "" {
		return nil, nil // deleted or purged with the KV API
	}
	j, err := decodeRecord(m.Data)
	if err != nil {
		return nil, err
	}
	return j, nil
}

// lastMsg returns the last message on subject in stream, as its leader has
// it. (KV buckets allow direct gets, which any replica answers, perhaps
// before it has the latest message: a record just stored, which is what
// Wait and a redelivered job look for, might not be there yet.)
func (c *Client) lastMsg(ctx context.Context, stream, subject string) (*jetstream.RawStreamMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	req, _ := json.Marshal(struct {
		LastBySubj string `json:"last_by_subj"`
	}{subject})
	resp, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	return decodeMsgGet(resp.Data)
}

// decodeMsgGet reads the answer to $JS.API.STREAM.MSG.GET.
func decodeMsgGet(b []byte) (*jetstream.RawStreamMsg, error) {
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("queue: malformed message get response: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeStreamNotFound:
		return nil, jetstream.ErrStreamNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, errors.New("queue: malformed message get response: no message")
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return nil, fmt.Errorf("queue: malformed message get response: %w", err)
		}
		m.Header = h
	}
	return m, nil
}

// Get returns the job's record.
func (c *Client) Get(ctx context.Context, queue, id string) (*Job, error) {
	h, err := c.existing(ctx, queue)
	if errors.Is(err, ErrNoQueue) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, ErrNotFound
	}
	rec, err := c.lastRecord(ctx, h, id)
	if err != nil {
		return nil, err
	}
	if rec != nil && rec.State == Completed {
		return rec, nil
	}
	// Waiting, delayed, running or between attempts: the job's message is
	// in the work stream.
	m, err := h.work.GetLastMsgForSubject(ctx, anyJobSubject(queue, id))
	switch {
	case err == nil:
		return jobFromMsg(queue, id, m, rec), nil
	case !errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, fmt.Errorf("queue: job %s: %w", id, err)
	}
	if rec == nil || rec.State == Dead {
		m, err := h.dlq.GetLastMsgForSubject(ctx, deadSubject(queue, id))
		switch {
		case err == nil:
			if rec == nil {
				rec = jobFromMsg(queue, id, m, nil)
				rec.State = Dead
			} else {
				rec.Data = m.Data
			}
			return rec, nil
		case !errors.Is(err, jetstream.ErrMsgNotFound):
			return nil, fmt.Errorf("queue: job %s: %w", id, err)
		}
	}
	// It may have finished while we looked.
	if rec2, err := c.lastRecord(ctx, h, id); err != nil {
		return nil, err
	} else if rec2 != nil {
		return rec2, nil
	}
	return nil, ErrNotFound
}

// jobFromMsg builds a job from its message (in the work or dead-letter
// stream) and its latest record, if any.
func jobFromMsg(q, id string, m *jetstream.RawStreamMsg, rec *Job) *Job {
	o, _ := decodeHeaders(m.Header)
	j := &Job{ID: id, Queue: q, State: Waiting, Attempts: o.attempts, Added: o.added, Priority: o.priority}
	if rest, ok := strings.CutPrefix(m.Subject, "kin.q."+q+"."); ok {
		p, _, _ := strings.Cut(rest, ".")
		if p == "delayed" {
			j.State = Delayed
			if at, ok := strings.CutPrefix(m.Header.Get(hdrSchedule), "@at "); ok {
				j.RunAt, _ = time.Parse(time.RFC3339Nano, at)
			}
			if tgt := m.Header.Get(hdrSchedTgt); tgt != "" {
				parts := strings.Split(tgt, ".")
				if len(parts) == 5 {
					j.Priority = Priority(parts[3])
				}
			}
		} else {
			j.Priority = Priority(p)
		}
	}
	if j.Added.IsZero() {
		j.Added = m.Time
	}
	j.Timeout, j.MaxMemory = o.timeout, o.maxMemory
	if rec != nil && j.State != Delayed {
		data := m.Data
		j = rec
		j.Data = data
	} else {
		j.Data = m.Data
	}
	if len(j.Data) == 0 {
		j.Data = nil
	}
	return j
}

// Wait waits until the job completes or dies and returns its record. For a
// dead job it returns the record and the job's *JobError.
func (c *Client) Wait(ctx context.Context, queue, id string) (*Job, error) {
	_, err := c.existing(ctx, queue)
	if errors.Is(err, ErrNoQueue) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if !validID(id) {
		return nil, ErrNotFound
	}
	ch := make(chan *nats.Msg, 64)
	// Subscribe before looking, so that no event can slip between: a
	// completed or dead event is published only once its record is stored,
	// so either the record is there to see, or the event comes after the
	// subscription.
	sub, err := c.nc.ChanSubscribe(anyEventSubject(queue, id), ch)
	if err != nil {
		return nil, fmt.Errorf("queue: wait: %w", err)
	}
	defer sub.Unsubscribe()
	done := func(j *Job) (*Job, error, bool) {
		switch j.State {
		case Completed:
			return j, nil, true
		case Dead:
			if j.Error == nil {
				j.Error = &JobError{Message: "dead", Cause: CauseError}
			}
			return j, j.Error, true
		}
		return nil, nil, false
	}
	check := func() (*Job, error, bool) {
		j, err := c.Get(ctx, queue, id)
		if err != nil {
			return nil, err, true
		}
		return done(j)
	}
	if j, err, ok := check(); ok {
		return j, err
	}
	// Events can be dropped for a slow subscriber: look again now and then.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case m := <-ch:
			j, err := decodeRecord(m.Data)
			if err != nil {
				continue
			}
			if j, err, ok := done(j); ok {
				return j, err
			}
		case <-tick.C:
			if j, err, ok := check(); ok {
				return j, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Retry sends a dead job back to its queue, with its attempts counted
// afresh.
func (c *Client) Retry(ctx context.Context, queue, id string) error {
	h, err := c.existing(ctx, queue)
	if errors.Is(err, ErrNoQueue) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if !validID(id) {
		return ErrNotFound
	}
	m, err := h.dlq.GetLastMsgForSubject(ctx, deadSubject(queue, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return ErrNotDead
	}
	if err != nil {
		return fmt.Errorf("queue: retry %s: %w", id, err)
	}
	return c.retry(ctx, h, id, m)
}

func (c *Client) retry(ctx context.Context, h *queueHandle, id string, m *jetstream.RawStreamMsg) error {
	o, err := decodeHeaders(m.Header)
	if err != nil {
		return fmt.Errorf("queue: retry %s: %w", id, err)
	}
	prio := o.priority.orDefault()
	if o.added.IsZero() {
		o.added = m.Time
	}
	o.priority = ""
	jm := &nats.Msg{Subject: jobSubject(h.name, prio, id), Data: m.Data, Header: nats.Header{}}
	o.encodeHeaders(jm.Header)
	// Two Retry calls for the same dead message add one job.
	jm.Header[hdrMsgID] = []string{fmt.Sprintf("%s:retry:%d", id, m.Sequence)}
	// The waiting record goes first: a worker may take the job the moment
	// it is published, and its records must come after this one (a
	// waiting record after them would reset the attempt it counts from).
	rec := &Job{ID: id, Queue: h.name, State: Waiting, Priority: prio, Attempts: o.attempts, Added: o.added}
	if last, err := c.lastRecord(ctx, h, id); err == nil && last != nil {
		rec.Error = last.Error
	}
	rm := recordMsg(h.name, EventWaiting, rec)
	if _, err := c.js.PublishMsg(ctx, rm); err != nil {
		return fmt.Errorf("queue: retry %s: %w", id, err)
	}
	if _, err := c.js.PublishMsg(ctx, jm); err != nil {
		return fmt.Errorf("queue: retry %s: %w", id, err)
	}
	c.announce(h.name, rm)
	// Remove this dead letter (not a newer one: the job may have died
	// again already).
	err = h.dlq.Purge(ctx, jetstream.WithPurgeSubject(deadSubject(h.name, id)), jetstream.WithPurgeSequence(m.Sequence+1))
	if err != nil {
		return fmt.Errorf("queue: retry %s: %w", id, err)
	}
	return nil
}

// RetryDead sends every dead job of queue back to it and returns how many.
func (c *Client) RetryDead(ctx context.Context, queue string) (int, error) {
	h, err := c.existing(ctx, queue)
	if err != nil {
		return 0, err
	}
	info, err := h.dlq.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue: retry dead: %w", err)
	}
	// Jobs that die again meanwhile get later sequence numbers: stop at
	// the last one there now.
	last := info.State.LastSeq
	n := 0
	for seq := info.State.FirstSeq; seq <= last && info.State.Msgs > 0; {
		m, err := h.dlq.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(deadSubject(queue, "*")))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return n, fmt.Errorf("queue: retry dead: %w", err)
		}
		if m.Sequence > last {
			break
		}
		id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		if err := c.retry(ctx, h, id, m); err != nil {
			return n, err
		}
		n++
		seq = m.Sequence + 1
	}
	return n, nil
}

// recordHeaders are the headers of records, by event type: shared, and so
// read-only (publishing a record with jetstream.PublishOpt options would
// write into them: never do).
var recordHeaders = func() map[EventType]nats.Header {
	m := map[EventType]nats.Header{}
	for _, t := range eventTypes {
		m[t] = nats.Header{hdrEvent: []string{string(t)}}
	}
	return m
}()

// recordMsg is the record j after an event of type typ: a put of key
// j.ID into queue q's bucket, the type in its Kin-Event header.
func recordMsg(q string, typ EventType, j *Job) *nats.Msg {
	return &nats.Msg{Subject: recordSubject(q, j.ID), Header: recordHeaders[typ], Data: marshalRecord(j)}
}

// announce publishes the event of record m (a recordMsg of queue q) on its
// typed subject, kin.qe.Q.TYPE.ID, with core NATS: it is not stored (the
// record is), and reaches whoever listens now.
func (c *Client) announce(q string, m *nats.Msg) error {
	id := m.Subject[len("$KV.KIN_QR_")+len(q)+1:]
	return c.nc.Publish(eventSubject(q, m.Header.Get(hdrEvent), id), m.Data)
}
