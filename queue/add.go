package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// jobMsg builds the message that adds spec to queue q, and returns it with
// the job's id.
func jobMsg(q string, spec *JobSpec, now time.Time) (*nats.Msg, string, error) {
	id := spec.ID
	if id == "" {
		id = nuid.Next()
	} else if !validID(id) {
		return nil, "", fmt.Errorf("queue: bad job id %q: want 1 to 128 of A–Z a–z 0–9 - _ = (it is a NATS KV key and a subject token)", id)
	}
	prio := spec.Priority.orDefault()
	if !prio.valid() {
		return nil, "", fmt.Errorf("queue: job %s: bad priority %q (high, normal or low)", id, spec.Priority)
	}
	switch {
	case spec.Attempts < 0 || spec.Attempts > maxAttempts:
		return nil, "", fmt.Errorf("queue: job %s: attempts %d out of 0…%d", id, spec.Attempts, maxAttempts)
	case spec.Timeout < 0, spec.Delay < 0, spec.Backoff.Delay < 0, spec.Backoff.Max < 0:
		return nil, "", fmt.Errorf("queue: job %s: negative duration", id)
	case len(spec.Data) > 0 && !json.Valid(spec.Data):
		return nil, "", fmt.Errorf("queue: job %s: data is not valid JSON", id)
	}
	o := jobOpts{
		attempts:  spec.Attempts,
		backoff:   spec.Backoff,
		timeout:   spec.Timeout,
		maxMemory: spec.MaxMemory,
	}
	if o.attempts == 0 {
		o.attempts = DefaultAttempts
	}
	m := &nats.Msg{Subject: jobSubject(q, prio, id), Data: spec.Data}
	if spec.Delay > 0 || spec.ID != "" || o != (jobOpts{attempts: DefaultAttempts}) {
		// (A job with defaults only goes without headers: less to parse.)
		m.Header = nats.Header{}
	}
	if spec.Delay > 0 {
		// The server stores the job under a subject of its own and, when
		// its time comes, copies it to the priority's subject.
		o.added = now
		m.Subject = delayedSubject(q, id)
		m.Header[hdrSchedule] = []string{"@at " + now.Add(spec.Delay).UTC().Format(time.RFC3339Nano)}
		m.Header[hdrSchedTgt] = []string{jobSubject(q, prio, id)}
	}
	if spec.ID != "" {
		m.Header[hdrMsgID] = []string{id}
	}
	o.encodeHeaders(m.Header)
	return m, id, nil
}

// Add adds a job to queue and returns its id once the server has stored it
// (with the durability of its sync setting). The queue is created if it
// does not exist.
//
// A job with an ID that is already known — waiting, delayed, running, dead,
// or with a record younger than the queue's Retention — is not added again:
// Add returns the ID and nil. (Within QueueConfig.DedupeWindow the server
// itself drops the duplicate, even when two producers race.)
func (c *Client) Add(ctx context.Context, queue string, spec JobSpec) (string, error) {
	h, err := c.handle(ctx, queue)
	if err != nil {
		return "", err
	}
	m, id, err := jobMsg(queue, &spec, time.Now())
	if err != nil {
		return "", err
	}
	if spec.ID != "" {
		known, err := c.known(ctx, h, id)
		if err != nil {
			return "", err
		}
		if known {
			return id, nil
		}
	}
	_, err = c.js.PublishMsg(ctx, m)
	if noStream(err) {
		// The queue was deleted since this client last saw it: make it
		// again.
		c.forget(queue)
		if _, err = c.handle(ctx, queue); err == nil {
			_, err = c.js.PublishMsg(ctx, m)
		}
	}
	if err != nil {
		return "", fmt.Errorf("queue: add to %s: %w", queue, err)
	}
	return id, nil
}

// noStream reports whether a publish failed because no stream took it.
func noStream(err error) bool {
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
}

// known reports whether a job with this id exists in any form.
func (c *Client) known(ctx context.Context, h *queueHandle, id string) (bool, error) {
	for _, look := range []struct {
		s    jetstream.Stream
		subj string
	}{
		{h.work, anyJobSubject(h.name, id)},
		{h.dlq, deadSubject(h.name, id)},
	} {
		_, err := look.s.GetLastMsgForSubject(ctx, look.subj)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, jetstream.ErrMsgNotFound):
		default:
			return false, fmt.Errorf("queue: look up job %s: %w", id, err)
		}
	}
	m, err := c.lastMsg(ctx, recordStream(h.name), recordSubject(h.name, id))
	switch {
	case err == nil:
		return m.Header.Get(hdrKVOp) == "", nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, fmt.Errorf("queue: look up job %s: %w", id, err)
}

// batchWindow bounds the publishes AddBatch has in flight.
const batchWindow = 1024

// AddBatch adds many jobs at once, pipelining the publishes, and returns
// their ids in order. It does not look for existing jobs with the given
// IDs: only the server's DedupeWindow drops duplicates. On error, some of
// the jobs may have been added; adding them again with the same IDs is
// safe within the DedupeWindow.
func (c *Client) AddBatch(ctx context.Context, queue string, specs []JobSpec) ([]string, error) {
	h, err := c.handle(ctx, queue)
	if err != nil {
		return nil, err
	}
	// A queue deleted since this client last saw it is made again.
	if _, err := h.work.Info(ctx); errors.Is(err, jetstream.ErrStreamNotFound) {
		c.forget(queue)
		if _, err := c.handle(ctx, queue); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	ids := make([]string, len(specs))
	msgs := make([]*nats.Msg, len(specs))
	for i := range specs {
		m, id, err := jobMsg(queue, &specs[i], now)
		if err != nil {
			return nil, err
		}
		msgs[i], ids[i] = m, id
	}
	futures := make([]jetstream.PubAckFuture, 0, min(len(msgs), batchWindow))
	var firstErr error
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := func(f jetstream.PubAckFuture) {
		timer.Reset(ackTimeout)
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if firstErr == nil {
				firstErr = fmt.Errorf("queue: add to %s: %w", queue, err)
			}
		case <-timer.C:
			if firstErr == nil {
				firstErr = fmt.Errorf("queue: add to %s: not acknowledged within %v", queue, ackTimeout)
			}
		case <-ctx.Done():
			if firstErr == nil {
				firstErr = ctx.Err()
			}
		}
		timer.Stop()
	}
	for _, m := range msgs {
		if len(futures) == batchWindow {
			wait(futures[0])
			futures = futures[1:]
		}
		if firstErr != nil {
			break
		}
		f, err := c.js.PublishMsgAsync(m)
		if err != nil {
			firstErr = fmt.Errorf("queue: add to %s: %w", queue, err)
			break
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		wait(f)
	}
	if firstErr != nil {
		return ids, firstErr
	}
	return ids, nil
}
