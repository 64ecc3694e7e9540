package supervisor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kinproc/kin/bus"
	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/internal/natstest"
	"github.com/kinproc/kin/queue"
	"github.com/kinproc/kin/supervisor"
)

// busApp is an unmodified Node app: no kin library, only process.send and
// process.on('message'). It subscribes to ctl.NAME (a list of messages to
// send, as they are, through its channel), echo.NAME.> (answered on
// echoed.NAME) and relay.NAME (passed on along data.next), then publishes
// up.NAME. It appends every message it receives to $BUS_OUT, except those
// of its flood subscription (with $BUS_GATE set), which it counts; it stops
// reading at the first of them until the file $BUS_GATE exists.
const busApp = `
const fs = require('fs');
const name = process.env.KIN_APP_NAME;
const log = (x) => fs.appendFileSync(process.env.BUS_OUT, JSON.stringify(x) + '\n');
const gate = process.env.BUS_GATE, want = Number(process.env.BUS_FLOOD || 0);
let flood = 0, dropped = 0, blocked = false;
const tally = () => { if (flood + dropped === want) log({pid: process.pid, report: {flood, dropped}}); };
process.on('message', (m) => {
  if (m && m.kin === 'message' && m.id === 'flood') {
    if (!blocked) {
      blocked = true;
      const cell = new Int32Array(new SharedArrayBuffer(4));
      while (!fs.existsSync(gate)) Atomics.wait(cell, 0, 0, 5); // the app is busy: it reads nothing
    }
    flood++;
    tally();
    return;
  }
  log({pid: process.pid, m});
  if (m && m.kin === 'bus-error' && m.op === 'message') { dropped += m.dropped; tally(); }
  if (!m || m.kin !== 'message') return;
  if (m.id === 'ctl') {
    for (const x of m.data) {
      if (x.big) { x.data = 'x'.repeat(x.big); delete x.big; }
      process.send(x);
    }
  } else if (m.id === 'echo') {
    process.send({kin: 'publish', subject: 'echoed.' + name, data: {got: m.data, subject: m.subject}});
  } else if (m.id === 'relay') {
    const next = m.data.next, trail = m.data.trail.concat([name]);
    process.send({kin: 'publish', subject: next.length ? next[0] : 'relayed', data: {next: next.slice(1), trail}});
  }
});
process.send({kin: 'subscribe', subject: 'ctl.' + name, id: 'ctl'});
process.send({kin: 'subscribe', subject: 'echo.' + name + '.>', id: 'echo'});
process.send({kin: 'subscribe', subject: 'relay.' + name, id: 'relay'});
if (gate) process.send({kin: 'subscribe', subject: 'flood', id: 'flood'});
process.send({kin: 'publish', subject: 'up.' + name, data: {pid: process.pid}});
`

// appSubs is how many subscriptions busApp makes (without a gate).
const appSubs = 3

// busWorld is a supervisor whose apps use the bus of an embedded NATS
// server, and the test's own connection to that bus.
type busWorld struct {
	s      *supervisor.Server
	bridge *nats.Conn // the supervisor's connection: only apps subscribe on it
	base   int        // its subscriptions that are not the apps'
	b      *bus.Bus   // the test's own, on another connection
	nc     *nats.Conn
	dir    string
	node   string
	opens  atomic.Int32 // calls of Config.Bus
	logs   kintest.SyncBuffer
}

type busOptions struct {
	noBus    bool // Config.Bus nil
	failOpen int  // the first failOpen calls of Config.Bus fail
}

func newBusWorld(t *testing.T, o busOptions) *busWorld {
	t.Helper()
	w := &busWorld{dir: t.TempDir(), node: kintest.Node(t)}
	if err := os.WriteFile(filepath.Join(w.dir, "app.js"), []byte(busApp), 0o600); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the server (its apps, their subscriptions)
	// goes before the connections, and they before NATS.
	// A small maximum payload keeps the test of a payload above it cheap.
	srv, c := natstest.Start(t, queue.ServerConfig{MaxPayload: 64 << 10})
	w.bridge = c.Conn()
	w.base = w.bridge.NumSubscriptions()
	w.nc = natstest.Connect(t, srv).Conn()
	w.b = bus.New(w.nc)
	cfg := supervisor.Config{Logger: slog.New(slog.NewTextHandler(&w.logs, nil))}
	if !o.noBus {
		cfg.Bus = func(ctx context.Context) (*bus.Bus, error) {
			if n := w.opens.Add(1); int(n) <= o.failOpen {
				return nil, fmt.Errorf("not yet (call %d)", n)
			}
			return bus.New(w.bridge), nil
		}
	}
	w.s = newServer(t, cfg)
	return w
}

// start starts busApp as app name, with extra environment.
func (w *busWorld) start(t *testing.T, name string, env ...string) {
	t.Helper()
	w.startScript(t, name, filepath.Join(w.dir, "app.js"), env...)
}

// startScript starts the Node program script as app name.
func (w *busWorld) startScript(t *testing.T, name, script string, env ...string) {
	t.Helper()
	spec := supervisor.AppSpec{
		Name:    name,
		Command: []string{w.node, script},
		Env:     map[string]string{"BUS_OUT": w.out(name)},
	}
	for i := 0; i+1 < len(env); i += 2 {
		spec.Env[env[i]] = env[i+1]
	}
	if _, err := w.s.StartApps(ctxT(t), []supervisor.AppSpec{spec}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
}

func (w *busWorld) out(name string) string { return filepath.Join(w.dir, name+".out") }

// appSubs returns how many subscriptions the apps hold.
func (w *busWorld) appSubs() int { return w.bridge.NumSubscriptions() - w.base }

// subscribe collects what the test receives on pattern.
func (w *busWorld) subscribe(t *testing.T, pattern string) <-chan bus.Message {
	t.Helper()
	ch := make(chan bus.Message, 1000)
	sub, err := w.b.Subscribe(pattern, func(m bus.Message) {
		select {
		case ch <- m:
		default:
			panic("test subscriber overflow on " + m.Subject)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	// The subscription is the server's once a round trip has been made.
	if err := w.nc.FlushTimeout(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return ch
}

func (w *busWorld) publish(t *testing.T, subject string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.b.Publish(subject, data); err != nil {
		t.Fatal(err)
	}
}

// ctl makes app name send msgs through its channel.
func (w *busWorld) ctl(t *testing.T, name string, msgs ...any) {
	t.Helper()
	w.publish(t, "ctl."+name, msgs)
}

// next returns the next message on ch, failing the test after 20 s.
func next(t *testing.T, ch <-chan bus.Message, what string) bus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return bus.Message{}
	}
}

// waitUp waits for app's up message and returns its pid.
func waitUp(t *testing.T, ups <-chan bus.Message, not ...int) int {
	t.Helper()
	for {
		m := next(t, ups, "an app's up message")
		var v struct{ PID int }
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("up: %s: %v", m.Data, err)
		}
		if !containsInt(not, v.PID) {
			return v.PID
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// outLine is one line the app appended to its out file.
type outLine struct {
	PID    int             `json:"pid"`
	M      json.RawMessage `json:"m"`
	Report *struct{ Flood, Dropped int }
}

// busMsg is a message the app received, decoded.
type busMsg struct {
	Kin     string
	Op      string
	Subject string
	ID      any
	Error   string
	Dropped int
	Data    json.RawMessage
}

func readOut(t *testing.T, path string) []outLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var lines []outLine
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var l outLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			break // a line being written
		}
		lines = append(lines, l)
	}
	return lines
}

// received returns the messages of kind kin that app name received.
func received(t *testing.T, w *busWorld, name, kin string) []busMsg {
	t.Helper()
	var out []busMsg
	for _, l := range readOut(t, w.out(name)) {
		var m busMsg
		if l.M != nil && json.Unmarshal(l.M, &m) == nil && m.Kin == kin {
			out = append(out, m)
		}
	}
	return out
}

// TestBusNodeApp: an unmodified Node app receives what Go publishes, in
// kin's message format, and publishes what a Go subscriber receives.
func TestBusNodeApp(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	ups, echoed := w.subscribe(t, "up.alpha"), w.subscribe(t, "echoed.alpha")
	w.start(t, "alpha")
	waitUp(t, ups)
	if n := w.appSubs(); n != appSubs {
		t.Fatalf("the app holds %d subscriptions, want %d", n, appSubs)
	}

	w.publish(t, "echo.alpha.x", map[string]int{"n": 1})
	m := next(t, echoed, "the echo of a JSON message")
	if m.Subject != "echoed.alpha" || string(m.Data) != `{"got":{"n":1},"subject":"echo.alpha.x"}` {
		t.Fatalf("echo: %s %s", m.Subject, m.Data)
	}
	// What the app got, exactly.
	var got busMsg
	kintest.WaitFor(t, 10*time.Second, "the message in the app's log", func() bool {
		ms := received(t, w, "alpha", "message")
		for _, m := range ms {
			if m.Subject == "echo.alpha.x" {
				got = m
				return true
			}
		}
		return false
	})
	if got.ID != "echo" || string(got.Data) != `{"n":1}` {
		t.Fatalf("the app received %+v", got)
	}

	// A foreign NATS client's payload that is not JSON arrives as a string.
	if err := w.nc.Publish("echo.alpha.raw.bytes", []byte("plain <text>")); err != nil {
		t.Fatal(err)
	}
	m = next(t, echoed, "the echo of a plain payload")
	if string(m.Data) != `{"got":"plain <text>","subject":"echo.alpha.raw.bytes"}` {
		t.Fatalf("echo of a plain payload: %s", m.Data)
	}

	// Unsubscribe by id, then by subject: the subscriptions go.
	acks := w.subscribe(t, "ack.alpha")
	w.ctl(t, "alpha",
		map[string]any{"kin": "unsubscribe", "id": "echo"},
		map[string]any{"kin": "unsubscribe", "subject": "relay.alpha"},
		map[string]any{"kin": "publish", "subject": "ack.alpha", "data": 1})
	next(t, acks, "the ack of the unsubscribes")
	if n := w.appSubs(); n != appSubs-2 {
		t.Fatalf("after two unsubscribes the app holds %d subscriptions, want %d", n, appSubs-2)
	}
	if _, err := w.nc.Request("echo.alpha.x", []byte("1"), 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("request to an unsubscribed subject: %v, want no responders", err)
	}
	if errs := received(t, w, "alpha", "bus-error"); len(errs) != 0 {
		t.Fatalf("bus errors: %+v", errs)
	}
}

// TestBusTwoApps: two apps talk to each other through the bus.
func TestBusTwoApps(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	ups, relayed := w.subscribe(t, "up.*"), w.subscribe(t, "relayed")
	w.start(t, "ping")
	w.start(t, "pong")
	waitUp(t, ups)
	waitUp(t, ups)
	w.publish(t, "relay.ping", map[string]any{"next": []string{"relay.pong", "relay.ping", "relay.pong"}, "trail": []string{}})
	m := next(t, relayed, "the end of the relay")
	if string(m.Data) != `{"next":[],"trail":["ping","pong","ping","pong"]}` {
		t.Fatalf("relay: %s", m.Data)
	}
}

// TestBusBadMessages: bad bus messages are answered with an error, and the
// app's channel and subscriptions go on working. (Data that is not JSON
// cannot come from an app: its channel carries JSON only, and a line that
// is not JSON closes the channel, as for every kin channel; package bus
// refuses such data from Go callers.)
func TestBusBadMessages(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	ups, after := w.subscribe(t, "up.bad"), w.subscribe(t, "after.bad")
	w.start(t, "bad")
	pid := waitUp(t, ups)
	huge := int(w.bridge.MaxPayload()) + 1
	cases := []struct {
		msg                  map[string]any
		op, subject, errPart string
		id                   any
	}{
		{map[string]any{"kin": "publish", "subject": "a..b", "data": 1}, "publish", "a..b", "empty token", nil},
		{map[string]any{"kin": "publish", "subject": "a.*"}, "publish", "a.*", "wildcard", nil},
		{map[string]any{"kin": "publish", "subject": "kin.q.jobs.normal.1", "data": map[string]any{}}, "publish", "kin.q.jobs.normal.1", "reserved", nil},
		{map[string]any{"kin": "subscribe", "subject": "$JS.API.>", "id": 7}, "subscribe", "$JS.API.>", "reserved", 7.0},
		{map[string]any{"kin": "subscribe", "subject": "a.b>", "id": "x"}, "subscribe", "a.b>", "whole token", "x"},
		{map[string]any{"kin": "publish", "subject": 5}, "publish", "", "must be a string", nil},
		{map[string]any{"kin": "publish"}, "publish", "", "no \"subject\"", nil},
		{map[string]any{"kin": "publish", "subject": "big", "big": huge}, "publish", "big", "maximum payload", nil},
		{map[string]any{"kin": "publsh", "subject": "x"}, "publsh", "", "unknown message kind", nil},
		{map[string]any{"kin": "unsubscribe", "id": "nope"}, "unsubscribe", "", "no subscription with id", "nope"},
		{map[string]any{"kin": "unsubscribe"}, "unsubscribe", "", "needs a subject or an id", nil},
		{map[string]any{"kin": "subscribe", "subject": "x", "id": map[string]int{"a": 1}}, "subscribe", "x", "must be a string or a number", nil},
		{map[string]any{"kin": "subscribe", "subject": "ctl.bad", "id": "echo"}, "subscribe", "ctl.bad", "already subscribed", "echo"},
	}
	var msgs []any
	for _, c := range cases {
		msgs = append(msgs, c.msg)
	}
	msgs = append(msgs, map[string]any{"kin": "publish", "subject": "after.bad", "data": "still here"})
	w.ctl(t, "bad", msgs...)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(w.out("bad"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("app log:\n%s\nsupervisor log:\n%s\ninstances: %+v", b, w.logs.String(), instances(w.s, "bad"))
		}
	})
	if m := next(t, after, "a publish after the bad messages"); string(m.Data) != `"still here"` {
		t.Fatalf("after: %s", m.Data)
	}
	var errs []busMsg
	kintest.WaitFor(t, 10*time.Second, "every error answer in the app's log", func() bool {
		errs = received(t, w, "bad", "bus-error")
		return len(errs) >= len(cases)
	})
	if len(errs) != len(cases) {
		t.Fatalf("%d error answers for %d bad messages: %+v", len(errs), len(cases), errs)
	}
	for i, c := range cases {
		e := errs[i]
		if e.Op != c.op || e.Subject != c.subject || !strings.Contains(e.Error, c.errPart) || fmt.Sprint(e.ID) != fmt.Sprint(c.id) {
			t.Errorf("answer to %v: %+v; want op %q, subject %q, id %v, error with %q", c.msg, e, c.op, c.subject, c.id, c.errPart)
		}
	}
	// The app still works both ways, in the same run.
	w.ctl(t, "bad", map[string]any{"kin": "publish", "subject": "after.bad", "data": 2})
	next(t, after, "a second publish")
	if in := instances(w.s, "bad")[0]; in.PID != pid || in.Restarts != 0 {
		t.Fatalf("the app was restarted: %+v", in)
	}
	if n := w.appSubs(); n != appSubs {
		t.Fatalf("the app holds %d subscriptions, want %d", n, appSubs)
	}
}

// TestBusRestartDropsSubscriptions: a run's subscriptions end with it, on a
// restart by kin and on a crash; the new run has only its own.
func TestBusRestartDropsSubscriptions(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	ups, echoed := w.subscribe(t, "up.r"), w.subscribe(t, "echoed.r")
	w.start(t, "r")
	pids := []int{waitUp(t, ups)}
	for round, restart := range []func(pid int){
		func(int) {
			if err := w.s.Restart(ctxT(t), "r"); err != nil {
				t.Fatal(err)
			}
		},
		func(pid int) { syscall.Kill(pid, syscall.SIGKILL) },
	} {
		restart(pids[len(pids)-1])
		pids = append(pids, waitUp(t, ups, pids...))
		kintest.WaitFor(t, 10*time.Second, "the old run's subscriptions to end", func() bool { return w.appSubs() == appSubs })
		// One echo, from the new run.
		w.publish(t, "echo.r.x", round)
		next(t, echoed, "the echo")
		if n := w.appSubs(); n != appSubs {
			t.Fatalf("round %d: %d subscriptions, want %d", round, n, appSubs)
		}
		select {
		case m := <-echoed:
			t.Fatalf("round %d: a second echo: %s", round, m.Data)
		default:
		}
	}
	if err := w.s.Stop(ctxT(t), "r"); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "no subscription after stop", func() bool { return w.appSubs() == 0 })
}

// TestBusNoBus: without Config.Bus, bus messages are answered with an
// error and the app runs on.
func TestBusNoBus(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{noBus: true})
	w.start(t, "lonely")
	var errs []busMsg
	kintest.WaitFor(t, 10*time.Second, "four error answers", func() bool {
		errs = received(t, w, "lonely", "bus-error")
		return len(errs) >= 4
	})
	want := []struct{ op, subject string }{{"subscribe", "ctl.lonely"}, {"subscribe", "echo.lonely.>"}, {"subscribe", "relay.lonely"}, {"publish", "up.lonely"}}
	for i, e := range errs {
		if i >= len(want) || e.Op != want[i].op || e.Subject != want[i].subject || !strings.Contains(e.Error, "no bus") {
			t.Fatalf("answer %d: %+v", i, e)
		}
	}
	if in := instances(w.s, "lonely")[0]; in.Status != supervisor.StatusOnline || in.Restarts != 0 {
		t.Fatalf("app: %+v", in)
	}
}

// TestBusOpenedLazily: Config.Bus is called when a run first needs the bus,
// again after a failure, and once per run after a success; a failure is
// answered like any other.
func TestBusOpenedLazily(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{failOpen: 1})
	ups := w.subscribe(t, "up.lazy")
	quiet := helperSpec("quiet", "sleep") // never says a word on its channel
	if _, err := w.s.StartApps(ctxT(t), []supervisor.AppSpec{quiet}, supervisor.StartOptions{Wait: true}); err != nil {
		t.Fatal(err)
	}
	if n := w.opens.Load(); n != 0 {
		t.Fatalf("Config.Bus called %d times for an app that does not use the bus", n)
	}
	w.start(t, "lazy")
	pid := waitUp(t, ups)
	var errs []busMsg
	kintest.WaitFor(t, 10*time.Second, "the answer to the first bus message", func() bool {
		errs = received(t, w, "lazy", "bus-error")
		return len(errs) > 0
	})
	if len(errs) != 1 || errs[0].Subject != "ctl.lazy" || !strings.Contains(errs[0].Error, "not yet (call 1)") {
		t.Fatalf("answers: %+v", errs)
	}
	if n := w.opens.Load(); n != 2 {
		t.Fatalf("Config.Bus called %d times, want 2 (a failure, then a success kept by the run)", n)
	}
	if n := w.appSubs(); n != appSubs-1 {
		t.Fatalf("%d subscriptions, want %d", n, appSubs-1)
	}
	if err := w.s.Restart(ctxT(t), "lazy"); err != nil {
		t.Fatal(err)
	}
	waitUp(t, ups, pid)
	if n := w.opens.Load(); n != 3 {
		t.Fatalf("Config.Bus called %d times after a restart, want 3", n)
	}
}

// TestBusSlowApp: an app that does not read makes kin drop messages beyond
// its bound, not buffer them; the app learns how many it lost, and every
// message is either received or counted as dropped.
func TestBusSlowApp(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	const n = 5000 // 20 MB: more than the bound (4 MB of these), the channel's buffer (1 MiB) and the socket's (4 MiB)
	gate := filepath.Join(w.dir, "gate")
	ups := w.subscribe(t, "up.slow")
	w.start(t, "slow", "BUS_GATE", gate, "BUS_FLOOD", fmt.Sprint(n))
	waitUp(t, ups)
	payload := json.RawMessage(`"` + strings.Repeat("x", 4000) + `"`)
	for i := 0; i < n; i++ {
		if err := w.b.Publish("flood", payload); err != nil {
			t.Fatal(err)
		}
	}
	kintest.WaitFor(t, 20*time.Second, "the supervisor to drop messages", func() bool {
		return strings.Contains(w.logs.String(), "dropping bus messages")
	})
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var report *struct{ Flood, Dropped int }
	kintest.WaitFor(t, 30*time.Second, "every message received or reported dropped", func() bool {
		for _, l := range readOut(t, w.out("slow")) {
			if l.Report != nil {
				report = l.Report
				return true
			}
		}
		return false
	})
	t.Logf("received %d, dropped %d", report.Flood, report.Dropped)
	if report.Dropped == 0 || report.Flood == 0 {
		t.Fatalf("received %d, dropped %d", report.Flood, report.Dropped)
	}
	notices := received(t, w, "slow", "bus-error")
	for _, e := range notices {
		if e.Op != "message" || e.Dropped <= 0 || !strings.Contains(e.Error, "dropped") {
			t.Fatalf("notice: %+v", e)
		}
	}
	// The app still works.
	acks := w.subscribe(t, "ack.slow")
	w.ctl(t, "slow", map[string]any{"kin": "publish", "subject": "ack.slow"})
	if m := next(t, acks, "the app's ack"); string(m.Data) != "null" {
		t.Fatalf("ack: %s", m.Data)
	}
	if err := w.s.Stop(ctxT(t), "slow"); err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "the run's summary in the log", func() bool {
		return strings.Contains(w.logs.String(), "bus messages were dropped during this run")
	})
}

// TestBusDocExample runs the Node example of docs/protocol.md §11.4: it
// receives its own message and publishes on audit.seen.
func TestBusDocExample(t *testing.T) {
	t.Parallel()
	w := newBusWorld(t, busOptions{})
	md, err := os.ReadFile(filepath.Join(kintest.RepoRoot(t), "docs", "protocol.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- bus example \\(tested by supervisor/bus_test.go\\) -->\n```js\n(.*?)```\n").FindSubmatch(md)
	if m == nil {
		t.Fatal("docs/protocol.md has no tested bus example")
	}
	script := filepath.Join(w.dir, "example.js")
	if err := os.WriteFile(script, m[1], 0o600); err != nil {
		t.Fatal(err)
	}
	seen := w.subscribe(t, "audit.seen")
	w.startScript(t, "example", script)
	if got := next(t, seen, "the example's publish"); string(got.Data) != `{"order":7}` {
		t.Fatalf("audit.seen: %s", got.Data)
	}
}
