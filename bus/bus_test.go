package bus_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kinproc/kin/bus"
	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/internal/natstest"
	"github.com/kinproc/kin/queue"
)

func TestMain(m *testing.M) { kintest.Main(m) }

// setup starts an embedded server and returns a Bus on a client's connection.
func setup(t *testing.T) (*bus.Bus, *nats.Conn) {
	t.Helper()
	_, c := natstest.Start(t, queue.ServerConfig{})
	return bus.New(c.Conn()), c.Conn()
}

// recv waits for the next message on ch.
func recv(t *testing.T, ch <-chan bus.Message) bus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10 s")
		return bus.Message{}
	}
}

func collect(t *testing.T, b *bus.Bus, pattern string) (<-chan bus.Message, *bus.Subscription) {
	t.Helper()
	ch := make(chan bus.Message, 100)
	sub, err := b.Subscribe(pattern, func(m bus.Message) { ch <- m })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return ch, sub
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	one, _ := collect(t, b, "orders.*")
	all, _ := collect(t, b, "orders.>")
	if err := b.Publish("orders.created", json.RawMessage(` {"id": 7} `)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish("orders.eu.created", nil); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, one); m.Subject != "orders.created" || string(m.Data) != `{"id": 7}` {
		t.Fatalf("orders.*: %s %s", m.Subject, m.Data)
	}
	if m := recv(t, all); m.Subject != "orders.created" {
		t.Fatalf("orders.> first: %s %s", m.Subject, m.Data)
	}
	if m := recv(t, all); m.Subject != "orders.eu.created" || string(m.Data) != "null" {
		t.Fatalf("orders.> second: %s %s", m.Subject, m.Data)
	}
	// orders.eu.created has three tokens: not for orders.*.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	b.Publish("orders.last", json.RawMessage(`1`))
	if m := recv(t, one); m.Subject != "orders.last" {
		t.Fatalf("orders.* got %s, want orders.last", m.Subject)
	}
}

// TestForeignPayloads: what other NATS clients publish arrives as one JSON
// document.
func TestForeignPayloads(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	ch, _ := collect(t, b, "raw")
	for _, c := range []struct{ in, want string }{
		{"hello", `"hello"`},
		{"", `null`},
		{" 42\n", `42`},
		{"\xff<a>", `"\ufffd\u003ca\u003e"`},
		{`{"a":[1,2]}`, `{"a":[1,2]}`},
		{`{"a":1} {"b":2}`, `"{\"a\":1} {\"b\":2}"`},
	} {
		if err := nc.Publish("raw", []byte(c.in)); err != nil {
			t.Fatal(err)
		}
		m := recv(t, ch)
		if string(m.Data) != c.want {
			t.Errorf("payload %q: data %s, want %s", c.in, m.Data, c.want)
		}
		if !json.Valid(m.Data) {
			t.Errorf("payload %q: data %s is not JSON", c.in, m.Data)
		}
	}
}

func TestUnsubscribe(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	base := nc.NumSubscriptions() // the queue client's own
	ch, sub := collect(t, b, "u.>")
	if sub.Subject() != "u.>" {
		t.Fatalf("Subject() = %q", sub.Subject())
	}
	if n := nc.NumSubscriptions() - base; n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("second Unsubscribe: %v", err)
	}
	if n := nc.NumSubscriptions() - base; n != 0 {
		t.Fatalf("%d subscriptions after Unsubscribe, want 0", n)
	}
	// Nobody listens any more: a request is refused at once.
	if _, err := nc.Request("u.x", []byte("1"), 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request after Unsubscribe: %v, want no responders", err)
	}
	select {
	case m := <-ch:
		t.Fatalf("message after Unsubscribe: %+v", m)
	default:
	}
	var zero bus.Subscription
	if zero.Unsubscribe() != nil || zero.Subject() != "" || zero.Dropped() != 0 {
		t.Fatal("zero Subscription misbehaves")
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	long := strings.Repeat("a.", bus.MaxSubjectLen/2) + "z"
	for _, c := range []struct {
		subject string
		pub     error // from Publish; nil: accepted
		sub     error // from Subscribe
	}{
		{"a.b", nil, nil},
		{"a.*", bus.ErrSubject, nil},
		{"a.>", bus.ErrSubject, nil},
		{">", bus.ErrSubject, nil},
		{"*.b.>", bus.ErrSubject, nil},
		{"kin.qe.orders.completed.1", bus.ErrReserved, nil},
		{"kin.>", bus.ErrSubject, nil},
		{"kin", bus.ErrReserved, nil},
		{"kinfolk.x", nil, nil},
		{"$JS.API.INFO", bus.ErrReserved, bus.ErrReserved},
		{"$SYS.>", bus.ErrSubject, bus.ErrReserved},
		{"_INBOX.abc", bus.ErrReserved, bus.ErrReserved},
		{"", bus.ErrSubject, bus.ErrSubject},
		{"a..b", bus.ErrSubject, bus.ErrSubject},
		{".a", bus.ErrSubject, bus.ErrSubject},
		{"a.", bus.ErrSubject, bus.ErrSubject},
		{"a b", bus.ErrSubject, bus.ErrSubject},
		{"a\tb", bus.ErrSubject, bus.ErrSubject},
		{"a\nb", bus.ErrSubject, bus.ErrSubject},
		{"a\u00a0b", bus.ErrSubject, bus.ErrSubject},
		{"a\x00b", bus.ErrSubject, bus.ErrSubject},
		{"a\xffb", bus.ErrSubject, bus.ErrSubject},
		{"a.>.b", bus.ErrSubject, bus.ErrSubject},
		{"a.b*", bus.ErrSubject, bus.ErrSubject},
		{"a.>b", bus.ErrSubject, bus.ErrSubject},
		{long, bus.ErrSubject, bus.ErrSubject},
		{"é.ünïcode", nil, nil},
	} {
		err := b.Publish(c.subject, json.RawMessage(`1`))
		if (c.pub == nil) != (err == nil) || (c.pub != nil && !errors.Is(err, c.pub)) {
			t.Errorf("Publish(%q) = %v, want %v", c.subject, err, c.pub)
		}
		s, err := b.Subscribe(c.subject, func(bus.Message) {})
		if (c.sub == nil) != (err == nil) || (c.sub != nil && !errors.Is(err, c.sub)) {
			t.Errorf("Subscribe(%q) = %v, want %v", c.subject, err, c.sub)
		}
		if s != nil {
			s.Unsubscribe()
		}
	}
	for _, data := range []string{`{`, `1 2`, `nope`, "\"\xff"} {
		if err := b.Publish("a", json.RawMessage(data)); !errors.Is(err, bus.ErrData) {
			t.Errorf("Publish data %q: %v, want ErrData", data, err)
		}
	}
	if _, err := b.Subscribe("a", nil); err == nil {
		t.Error("Subscribe with a nil func succeeded")
	}
	// Over the server's maximum payload: refused, and the connection stays.
	big := json.RawMessage(`"` + strings.Repeat("x", int(nc.MaxPayload())) + `"`)
	if err := b.Publish("a", big); !errors.Is(err, nats.ErrMaxPayload) {
		t.Errorf("Publish above the maximum payload: %v", err)
	}
	// None of it cost the connection, which the daemon shares with its queue.
	if err := nc.FlushTimeout(5 * time.Second); err != nil || !nc.IsConnected() {
		t.Fatalf("connection after refused calls: %v (connected %v)", err, nc.IsConnected())
	}
	var zero bus.Bus
	if err := zero.Publish("a", nil); !errors.Is(err, bus.ErrNoConn) {
		t.Errorf("zero Bus Publish: %v", err)
	}
	if _, err := zero.Subscribe("a", func(bus.Message) {}); !errors.Is(err, bus.ErrNoConn) {
		t.Errorf("zero Bus Subscribe: %v", err)
	}
}

// TestAcceptedSubjectsKeepTheConnection: subjects the checks accept, odd as
// they are, are accepted by the server too (a refused one would close the
// connection).
func TestAcceptedSubjectsKeepTheConnection(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	for _, s := range []string{"a", "A-b_c.d~e", "é.ü.€", "x.*.y", "*", "q.>", "a.b.c.d.e.f.g.h.i.j", strings.Repeat("z", bus.MaxSubjectLen)} {
		ch, sub := collect(t, b, s)
		lit := strings.NewReplacer("*", "w", ">", "w.w").Replace(s)
		if len(lit) > bus.MaxSubjectLen {
			lit = s
		}
		if err := b.Publish(lit, json.RawMessage(`"x"`)); err != nil {
			t.Fatalf("Publish(%q): %v", lit, err)
		}
		if m := recv(t, ch); m.Subject != lit {
			t.Fatalf("pattern %q got %q", s, m.Subject)
		}
		sub.Unsubscribe()
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil || !nc.IsConnected() {
		t.Fatalf("connection: %v", err)
	}
}

func TestClosedConnection(t *testing.T) {
	t.Parallel()
	b, nc := setup(t)
	_, sub := collect(t, b, "c")
	nc.Close()
	if err := sub.Unsubscribe(); err != nil {
		t.Fatalf("Unsubscribe after close: %v", err)
	}
	if err := b.Publish("c", nil); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("Publish after close: %v", err)
	}
}
