// Package bus is kin's publish/subscribe bus between processes: plain NATS
// core pub/sub on subjects, over a connection the caller owns (the kin
// daemon's comes from package queue: queue.Client.Conn). Messages carry one
// JSON document each, so that a Node, Python or Go process reads them
// without a codec; apps run by kin's supervisor reach the bus through their
// IPC channel (docs/protocol.md §11), with no client library.
//
//	b := bus.New(nc)
//	sub, _ := b.Subscribe("orders.*", func(m bus.Message) { log.Println(m.Subject, string(m.Data)) })
//	defer sub.Unsubscribe()
//	b.Publish("orders.created", json.RawMessage(`{"id":7}`))
//
// Delivery is NATS core's: at most once, to every subscription whose pattern
// matches at the moment of publishing (nothing is stored; a process that
// subscribes later, or is restarting, misses the message), in publishing
// order per publisher and subscription.
//
// # Subjects
//
// A subject is tokens separated by dots ("orders.created"): each token
// non-empty, without white space or control characters, in UTF-8, the
// whole at most MaxSubjectLen bytes. Subscribe takes patterns: the token "*"
// matches one token, a last token ">" one or more. Some subjects are not
// the bus's to use:
//
//   - a first token beginning with "$" ($JS, $KV, $SYS…): NATS's own
//     JetStream and system subjects; refused for publish and subscribe;
//   - a first token "_INBOX": replies to NATS requests; refused for both;
//   - a first token "kin": kin's own (kin.q.… jobs, kin.qe.… job events,
//     kin.dlq.… dead jobs, see package queue). Publishing there could forge
//     jobs or events, so it is refused; subscribing is allowed, so that a
//     process can watch job events.
//
// These rules stop mistakes, not a hostile process: every app the daemon
// runs belongs to the same user, who can also connect to NATS directly. A
// pattern such as ">" matches the subjects above too.
//
// # Payloads
//
// Publish sends data as is (one JSON document; empty means null). Other
// NATS clients may publish anything on the same subjects: a payload that is
// not one JSON document is delivered as a JSON string of its bytes (invalid
// UTF-8 replaced by U+FFFD), and an empty one as null, so that Message.Data
// is always one JSON document.
package bus

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// Errors. Those about a subject or data wrap ErrSubject, ErrReserved or
// ErrData with the details.
var (
	// ErrSubject is returned for a subject or pattern that is not valid NATS
	// (see the package doc).
	ErrSubject = errors.New("bus: invalid subject")
	// ErrReserved is returned for a subject that belongs to NATS or kin.
	ErrReserved = errors.New("bus: reserved subject")
	// ErrData is returned by Publish for data that is not one JSON document.
	ErrData = errors.New("bus: data is not one JSON document")
	// ErrNoConn is returned by a Bus without a connection (the zero Bus).
	ErrNoConn = errors.New("bus: no NATS connection")
)

// Bus publishes and subscribes over one NATS connection. Its methods are safe
// for concurrent use. The zero value has no connection: its methods return
// ErrNoConn. A Bus holds nothing of its own: closing the connection ends it
// and every subscription.
type Bus struct {
	nc *nats.Conn
}

// New returns a Bus on nc, which stays the caller's to close.
func New(nc *nats.Conn) *Bus { return &Bus{nc: nc} }

// Message is one message received from the bus. The zero value is a message
// without a subject whose data is null.
type Message struct {
	// Subject is the subject the message was published to (never a pattern).
	Subject string
	// Data is one JSON document: what the publisher sent, with surrounding
	// white space removed; null for an empty payload; a JSON string of the
	// payload's bytes for a payload that is not JSON (see the package doc).
	// It is the receiver's to keep.
	Data json.RawMessage
}

// Publish sends data on subject to every current subscriber. subject must
// pass CheckSubject; data must be one JSON document, and empty means null.
// Publish returns once the message is handed to the connection (NATS core
// does not confirm delivery); it fails for a payload above the server's
// maximum (nats.ErrMaxPayload) or a closed connection.
func (b *Bus) Publish(subject string, data json.RawMessage) error {
	if b == nil || b.nc == nil {
		return ErrNoConn
	}
	if err := CheckSubject(subject); err != nil {
		return err
	}
	data = trimJSONSpace(data)
	if len(data) == 0 {
		data = json.RawMessage("null")
	} else if !json.Valid(data) {
		return fmt.Errorf("%w: %s", ErrData, quote(string(data)))
	}
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", quote(subject), err)
	}
	return nil
}

// Subscribe calls fn with every message published to a subject matching
// pattern, which must pass CheckPattern, until Unsubscribe. fn runs on the
// subscription's own goroutine, one message at a time, in order; while it
// runs, further messages wait in the connection's buffer for this
// subscription, and beyond NATS's pending limits (nats.DefaultSubPendingMsgsLimit
// messages, nats.DefaultSubPendingBytesLimit bytes) they are dropped and
// counted by Dropped. A fn that must not lose messages returns quickly.
func (b *Bus) Subscribe(pattern string, fn func(Message)) (*Subscription, error) {
	if b == nil || b.nc == nil {
		return nil, ErrNoConn
	}
	if err := CheckPattern(pattern); err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, errors.New("bus: Subscribe with a nil func")
	}
	s := &Subscription{pattern: pattern}
	sub, err := b.nc.Subscribe(pattern, func(m *nats.Msg) {
		if s.stopped.Load() {
			return
		}
		fn(Message{Subject: m.Subject, Data: decodePayload(m.Data)})
	})
	if err != nil {
		return nil, fmt.Errorf("bus: subscribe %s: %w", quote(pattern), err)
	}
	s.sub = sub
	return s, nil
}

// Subscription is one Subscribe. Its methods are safe for concurrent use.
// The zero value is a subscription already ended: Unsubscribe returns nil,
// Subject is empty and Dropped zero.
type Subscription struct {
	sub     *nats.Subscription
	pattern string
	stopped atomic.Bool
}

// Subject returns the pattern subscribed to.
func (s *Subscription) Subject() string { return s.pattern }

// Unsubscribe ends the subscription. Once it returns, fn is not called
// again, except for a call already under way. It is idempotent, and does
// not fail because the connection is closed (that ended the subscription
// already).
func (s *Subscription) Unsubscribe() error {
	if s.sub == nil || s.stopped.Swap(true) {
		return nil
	}
	err := s.sub.Unsubscribe()
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("bus: unsubscribe %s: %w", quote(s.pattern), err)
	}
	return nil
}

// Dropped returns how many messages NATS dropped for this subscription
// because fn did not keep up (see Subscribe).
func (s *Subscription) Dropped() int {
	if s.sub == nil {
		return 0
	}
	n, err := s.sub.Dropped()
	if err != nil {
		return 0
	}
	return n
}

// decodePayload returns a received payload as one JSON document (see
// Message.Data).
func decodePayload(p []byte) json.RawMessage {
	t := trimJSONSpace(p)
	switch {
	case len(t) == 0:
		return json.RawMessage("null")
	case json.Valid(t):
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(string(p)) // a string cannot fail; invalid UTF-8 becomes U+FFFD
	return b
}

// trimJSONSpace removes the white space JSON allows around a document.
func trimJSONSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }
