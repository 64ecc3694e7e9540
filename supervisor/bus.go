package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kinproc/kin/bus"
	"github.com/kinproc/kin/ipc"
)

// The bus bridge: an app's {"kin":"publish"|"subscribe"|"unsubscribe"}
// messages on its IPC channel are carried out on the bus of Config.Bus, and
// what its subscriptions receive goes back as {"kin":"message"}
// (docs/protocol.md §11.4). Each run of an instance has its own bridge: its
// subscriptions end with the run.

// Bounds of one run's bridge.
const (
	// maxBusPending and maxBusPendingBytes bound the messages waiting for
	// the app to read them (beyond the channel's own send buffer); past
	// them, messages are dropped and counted. One message larger than the
	// byte bound still goes when nothing else waits.
	maxBusPending      = 1024
	maxBusPendingBytes = 16 << 20
	// maxBusSubs bounds an instance's subscriptions.
	maxBusSubs = 1024
	// maxBusID bounds a subscription id, in bytes of JSON.
	maxBusID = 256
	// busLogEvery spaces the log lines about dropping messages.
	busLogEvery = 10 * time.Second
)

// errNoBus answers bus messages when Config.Bus is nil.
var errNoBus = errors.New("supervisor: no bus: this kin runs without one (supervisor.Config.Bus is nil)")

// busLink is what a process needs of its Server for the bus.
type busLink struct {
	open   func(context.Context) (*bus.Bus, error) // Config.Bus; nil: no bus
	logger *slog.Logger
}

func (s *Server) busLink() busLink { return busLink{open: s.cfg.Bus, logger: s.logger} }

// kinFrame is an object with a "kin" member from an app: the bus members
// are decoded with it, in the same pass, and kept raw so that a member of
// the wrong type gets an answer that names it.
type kinFrame struct {
	Kin     string          `json:"kin"`
	Subject json.RawMessage `json:"subject"`
	Data    json.RawMessage `json:"data"`
	ID      json.RawMessage `json:"id"`
}

// bridge carries out one run's bus messages. Its reader side (handle,
// unknown, close) runs on the process's channel reader goroutine only;
// deliveries come from the bus's goroutines and meet the reader side only
// in out.
type bridge struct {
	link   busLink
	who    string // "app web instance 3", for log lines
	ch     *ipc.Channel
	ctx    context.Context // ends when the bridge closes
	cancel context.CancelFunc
	wg     *sync.WaitGroup // the process's: owns the writer

	// Reader side only.
	b      *bus.Bus
	subs   []*bridgeSub
	writer bool // the writer goroutine was started

	out outbox
}

// bridgeSub is one subscription of the app.
type bridgeSub struct {
	subject string
	id      json.RawMessage // nil when the app gave none
	sub     *bus.Subscription
}

func newBridge(p *process) *bridge {
	br := &bridge{link: p.bus, who: p.who, ch: p.cmd.Channel, wg: &p.wg}
	br.ctx, br.cancel = context.WithCancel(p.ctx)
	br.out.wake = make(chan struct{}, 1)
	br.out.warn = func() {
		br.link.logger.Warn(fmt.Sprintf("%s: dropping bus messages: the app reads them too slowly (at most %d messages or %d MiB wait for it)",
			br.who, maxBusPending, maxBusPendingBytes>>20))
	}
	return br
}

// handle carries out the bus message f, whose kind is "publish",
// "subscribe" or "unsubscribe". Failures are answered on the channel; none
// ends it.
func (br *bridge) handle(f *kinFrame) {
	br.startWriter()
	op := f.Kin
	id, err := frameID(f.ID)
	if err != nil {
		br.answer(op, f.Subject, nil, err)
		return
	}
	var subject string
	if f.Subject != nil || op != "unsubscribe" {
		if subject, err = frameSubject(f.Subject); err != nil {
			br.answer(op, f.Subject, id, err)
			return
		}
	}
	switch op {
	case "publish":
		err = br.publish(subject, f.Data)
	case "subscribe":
		err = br.subscribe(subject, id)
	case "unsubscribe":
		err = br.unsubscribe(subject, id)
	}
	if err != nil {
		br.answer(op, f.Subject, id, err)
	}
}

// unknown answers an object whose "kin" kin does not know: most likely a
// misspelt bus message.
func (br *bridge) unknown(kind string) {
	br.startWriter()
	if len(kind) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(kind[n]) {
			n--
		}
		kind = kind[:n] + "…"
	}
	br.answer(kind, nil, nil, fmt.Errorf("supervisor: unknown message kind %q (bus messages are publish, subscribe and unsubscribe)", kind))
}

func (br *bridge) publish(subject string, data json.RawMessage) error {
	if err := bus.CheckSubject(subject); err != nil {
		return err
	}
	b, err := br.bus()
	if err != nil {
		return err
	}
	return b.Publish(subject, data)
}

func (br *bridge) subscribe(pattern string, id json.RawMessage) error {
	if err := bus.CheckPattern(pattern); err != nil {
		return err
	}
	for _, s := range br.subs {
		if id != nil && string(s.id) == string(id) {
			if s.subject == pattern {
				return nil // again: nothing changes
			}
			return fmt.Errorf("supervisor: bus: subscription id %s is already subscribed to %q", id, s.subject)
		}
		if id == nil && s.id == nil && s.subject == pattern {
			return nil
		}
	}
	if len(br.subs) >= maxBusSubs {
		return fmt.Errorf("supervisor: bus: %d subscriptions already; unsubscribe first", maxBusSubs)
	}
	b, err := br.bus()
	if err != nil {
		return err
	}
	sub, err := b.Subscribe(pattern, func(m bus.Message) { br.out.put(messageLine(m, id)) })
	if err != nil {
		return err
	}
	br.subs = append(br.subs, &bridgeSub{subject: pattern, id: id, sub: sub})
	return nil
}

// unsubscribe ends the subscription with id, or without id every
// subscription to pattern.
func (br *bridge) unsubscribe(pattern string, id json.RawMessage) error {
	if id == nil && pattern == "" {
		return errors.New("supervisor: bus: unsubscribe needs a subject or an id")
	}
	kept := br.subs[:0]
	n := 0
	for _, s := range br.subs {
		if (id != nil && string(s.id) == string(id)) || (id == nil && s.subject == pattern) {
			s.sub.Unsubscribe()
			n++
			continue
		}
		kept = append(kept, s)
	}
	clear(br.subs[len(kept):])
	br.subs = kept
	if n == 0 {
		if id != nil {
			return fmt.Errorf("supervisor: bus: no subscription with id %s", id)
		}
		return fmt.Errorf("supervisor: bus: no subscription to %q", pattern)
	}
	return nil
}

// bus returns the bus, opening it on first use.
func (br *bridge) bus() (*bus.Bus, error) {
	if br.b != nil {
		return br.b, nil
	}
	if br.link.open == nil {
		return nil, errNoBus
	}
	b, err := br.link.open(br.ctx)
	if err != nil {
		return nil, fmt.Errorf("supervisor: bus: %w", err)
	}
	if b == nil {
		return nil, errNoBus
	}
	br.b = b
	return b, nil
}

// answer queues an error answer for the app.
func (br *bridge) answer(op string, subject, id json.RawMessage, err error) {
	b := append(make([]byte, 0, 128), `{"kin":"bus-error","op":`...)
	b = appendJSONString(b, op)
	if len(subject) > 0 && subject[0] == '"' {
		b = append(b, `,"subject":`...)
		b = append(b, subject...)
	}
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	b = append(b, `,"error":`...)
	b = appendJSONString(b, err.Error())
	br.out.put(append(b, '}'))
}

// startWriter starts the goroutine that writes out to the channel, once:
// before the first answer or subscription, so that nothing is put into out
// without a writer.
func (br *bridge) startWriter() {
	if br.writer {
		return
	}
	br.writer = true
	br.wg.Add(1)
	go br.write()
}

// write sends what out holds to the app, in order, until the bridge closes
// or the channel fails. ipc.Channel serialises these sends with the
// supervisor's own ({"kin":"shutdown"}).
func (br *bridge) write() {
	defer br.wg.Done()
	for {
		msg := br.out.take()
		if msg == nil {
			select {
			case <-br.out.wake:
				continue
			case <-br.ctx.Done():
				return
			}
		}
		err := br.ch.Send(br.ctx, ipc.Message{Data: msg})
		var tooLarge *ipc.TooLargeError
		if err != nil && !errors.Is(err, ipc.ErrBadMessage) && !errors.As(err, &tooLarge) {
			// The channel is gone (the app exited) or the bridge closed.
			br.out.shut()
			return
		}
	}
}

// close ends every subscription of the run and stops the writer (the
// process's WaitGroup waits for it). Messages still waiting are dropped:
// the app is gone.
func (br *bridge) close() {
	for _, s := range br.subs {
		s.sub.Unsubscribe()
	}
	br.subs = nil
	if n := br.out.shut(); n > 0 {
		br.link.logger.Warn(fmt.Sprintf("%s: %d bus messages were dropped during this run: the app read them too slowly", br.who, n))
	}
	br.cancel()
}

// outbox holds the lines waiting for the app, bounded; it is safe for
// concurrent use.
type outbox struct {
	mu       sync.Mutex
	q        [][]byte // q[head:] wait, oldest first
	head     int
	bytes    int
	dropped  int // since the last drop notice
	total    int // dropped in all
	lastWarn time.Time
	closed   bool
	warn     func()        // logs that messages are being dropped
	wake     chan struct{} // has a value when q may have grown
}

// put queues msg, or drops it (counting it) when the bounds are reached.
func (o *outbox) put(msg []byte) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	n := len(o.q) - o.head
	if n > 0 && (n >= maxBusPending || o.bytes+len(msg) > maxBusPendingBytes) {
		o.dropped++
		o.total++
		warn := o.dropped == 1 && time.Since(o.lastWarn) >= busLogEvery
		if warn {
			o.lastWarn = time.Now()
		}
		o.mu.Unlock()
		if warn && o.warn != nil {
			o.warn()
		}
		return
	}
	if o.dropped > 0 {
		// There is room again: first say what was lost, in its place.
		o.push(dropNotice(o.dropped))
		o.dropped = 0
	}
	o.push(msg)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) push(msg []byte) {
	o.q = append(o.q, msg)
	o.bytes += len(msg)
}

// take returns the next line for the app, or nil when none waits.
func (o *outbox) take() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
		if o.dropped > 0 && !o.closed {
			// Nothing waits any more: say now what was lost.
			n := o.dropped
			o.dropped = 0
			return dropNotice(n)
		}
		return nil
	}
	msg := o.q[o.head]
	o.q[o.head] = nil
	o.head++
	o.bytes -= len(msg)
	if o.head >= 256 && o.head*2 >= len(o.q) {
		n := copy(o.q, o.q[o.head:])
		clear(o.q[n:])
		o.q, o.head = o.q[:n], 0
	}
	return msg
}

// shut drops what waits and refuses what comes; it returns how many
// messages were dropped in all.
func (o *outbox) shut() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	clear(o.q)
	o.q, o.head, o.bytes = nil, 0, 0
	return o.total
}

func dropNotice(n int) []byte {
	b := append(make([]byte, 0, 200), `{"kin":"bus-error","op":"message","error":`...)
	b = appendJSONString(b, fmt.Sprintf("kin dropped %d bus messages for this process: it did not read them fast enough (at most %d messages or %d MiB wait for it)", n, maxBusPending, maxBusPendingBytes>>20))
	b = append(b, `,"dropped":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '}')
}

// messageLine is the delivery of m to the app: {"kin":"message",
// "subject":…,"id":…,"data":…}.
func messageLine(m bus.Message, id json.RawMessage) []byte {
	b := make([]byte, 0, len(m.Data)+len(m.Subject)+len(id)+48)
	b = append(b, `{"kin":"message","subject":`...)
	b = appendJSONString(b, m.Subject)
	if id != nil {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	b = append(b, `,"data":`...)
	b = append(b, m.Data...)
	return append(b, '}')
}

// frameSubject returns the subject member as a string.
func frameSubject(raw json.RawMessage) (string, error) {
	if raw == nil {
		return "", errors.New(`supervisor: bus: the message has no "subject"`)
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf(`supervisor: bus: "subject" must be a string, not %s`, cut(raw))
	}
	return s, nil
}

// frameID returns the id member: nil when absent or null, else a string or
// a number as written.
func frameID(raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > maxBusID {
		return nil, fmt.Errorf("supervisor: bus: \"id\" is longer than %d bytes", maxBusID)
	}
	switch c := raw[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return raw, nil
	}
	return nil, fmt.Errorf(`supervisor: bus: "id" must be a string or a number, not %s`, cut(raw))
}

func cut(raw []byte) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD, the rest
// as is (unlike encoding/json, which escapes <, > and &: subjects with >
// stay readable).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
