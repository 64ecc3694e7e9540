package queue

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestHeadersRoundTrip(t *testing.T) {
	for _, o := range []jobOpts{
		{attempts: DefaultAttempts},
		{attempts: 1, backoff: Backoff{Delay: 250 * time.Millisecond, Fixed: true}},
		{attempts: 7, backoff: Backoff{Delay: time.Second, Max: time.Minute}, timeout: 30 * time.Second, maxMemory: 1 << 30, added: time.UnixMilli(1700000000123), priority: Low},
	} {
		h := nats.Header{}
		o.encodeHeaders(h)
		got, err := decodeHeaders(h)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		if got != o {
			t.Errorf("round trip: %+v -> %v -> %+v", o, h, got)
		}
	}
}

func TestHeadersRejected(t *testing.T) {
	for _, h := range []nats.Header{
		{"Kin-Attempts": {"0"}},
		{"Kin-Attempts": {"1001"}},
		{"Kin-Attempts": {"three"}},
		{"Kin-Backoff": {"linear 100"}},
		{"Kin-Backoff": {"fixed"}},
		{"Kin-Backoff": {"fixed -1"}},
		{"Kin-Backoff": {"fixed 1 2 3"}},
		{"Kin-Timeout": {"-5"}},
		{"Kin-Timeout": {"99999999999999999999"}},
		{"Kin-Max-Memory": {"1e9"}},
		{"Kin-Added": {"yesterday"}},
		{"Kin-Priority": {"urgent"}},
	} {
		if _, err := decodeHeaders(h); err == nil {
			t.Errorf("%v accepted", h)
		}
	}
}

func TestBackoffWait(t *testing.T) {
	for _, c := range []struct {
		b    Backoff
		n    int
		want time.Duration
	}{
		{Backoff{}, 1, time.Second},
		{Backoff{}, 3, 4 * time.Second},
		{Backoff{}, 40, time.Hour},
		{Backoff{Delay: 10 * time.Millisecond, Fixed: true}, 5, 10 * time.Millisecond},
		{Backoff{Delay: time.Second, Max: 3 * time.Second}, 3, 3 * time.Second},
	} {
		if got := c.b.Wait(c.n); got != c.want {
			t.Errorf("%+v.Wait(%d) = %v, want %v", c.b, c.n, got, c.want)
		}
	}
}

// FuzzDecodeHeaders: any header values either decode to options that
// survive a round trip, or are an error; never a panic.
func FuzzDecodeHeaders(f *testing.F) {
	f.Add("3", "exponential 1000 3600000", "30000", "1024", "1700000000000", "high")
	f.Add("", "fixed 5", "", "", "", "")
	f.Add("1000", "fixed 0", "0", "0", "0", "low")
	f.Add("-1", "exponential", "x", "-", "", "Normal")
	f.Fuzz(func(t *testing.T, attempts, backoff, timeout, mem, added, prio string) {
		h := nats.Header{}
		for k, v := range map[string]string{hdrAttempts: attempts, hdrBackoff: backoff, hdrTimeout: timeout, hdrMaxMemory: mem, hdrAdded: added, hdrPriority: prio} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		o, err := decodeHeaders(h)
		if err != nil {
			return
		}
		if o.attempts < 1 || o.attempts > maxAttempts || o.timeout < 0 || o.backoff.Delay < 0 || o.backoff.Max < 0 {
			t.Fatalf("out of range: %+v", o)
		}
		h2 := nats.Header{}
		o.encodeHeaders(h2)
		o2, err := decodeHeaders(h2)
		if err != nil {
			t.Fatalf("re-decode of %v: %v", h2, err)
		}
		// Durations are carried in whole milliseconds.
		o.timeout = o.timeout.Truncate(time.Millisecond)
		if o2 != o {
			t.Fatalf("round trip %+v -> %+v", o, o2)
		}
	})
}

// FuzzDecodeRecord: any bytes either decode to a record with a valid id and
// state that encodes again, or are an error.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(`{"id":"a","queue":"q","state":"completed","attempt":1,"attempts":3,"result":{"x":1},"added":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"id":"b","state":"dead","error":{"message":"m","cause":"timeout"}}`))
	f.Add([]byte(`{"id":"c.d","state":"active"}`))
	f.Add([]byte(`{"id":"c:d","state":"active"}`))
	f.Add([]byte(`{"id":"e","state":"sleeping"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := decodeRecord(b)
		if err != nil {
			return
		}
		if !validID(j.ID) {
			t.Fatalf("bad id %q accepted", j.ID)
		}
		out, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decodeRecord(out); err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
	})
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "Afgszy1DmCDHc9xpd7h8L4": true, "order-42_x=": true, strings.Repeat("z", 128): true,
		"": false, strings.Repeat("z", 129): false, "a:b": false, "a.b": false, "a*": false, "a>": false,
		"a/b": false, "a b": false, "é": false, "a\x00": false,
	} {
		if validID(id) != want {
			t.Errorf("validID(%q) = %v", id, !want)
		}
	}
}

// FuzzDecodeEvent: a record message is an event only with a known
// Kin-Event type and a valid record.
func FuzzDecodeEvent(f *testing.F) {
	f.Add("completed", []byte(`{"id":"a","queue":"q","state":"completed","attempt":1,"attempts":3,"result":1}`))
	f.Add("progress", []byte(`{"id":"a","state":"active","progress":0.5}`))
	f.Add("", []byte(`{"id":"a","state":"active"}`))
	f.Add("sleeping", []byte(`{"id":"a","state":"active"}`))
	f.Add("dead", []byte(`{"id":"a:b","state":"dead"}`))
	f.Add("failed", []byte(``))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		h := nats.Header{}
		if typ != "" {
			h[hdrEvent] = []string{typ}
		}
		ev, err := decodeEvent(h, data)
		if err != nil {
			return
		}
		if !ev.Type.valid() || ev.Job == nil || !validID(ev.Job.ID) {
			t.Fatalf("accepted %q %s as %+v", typ, data, ev)
		}
	})
}

// FuzzDecodeMsgGet: any answer to a message get decodes to a message or an
// error, never a panic; what the server sends decodes to what it holds.
func FuzzDecodeMsgGet(f *testing.F) {
	f.Add([]byte(`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"$KV.KIN_QR_q.a","seq":7,"hdrs":"TkFUUy8xLjANCktpbi1FdmVudDogY29tcGxldGVkDQoNCg==","data":"e30=","time":"2026-01-02T03:04:05.123456789Z"}}`))
	f.Add([]byte(`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","error":{"code":404,"err_code":10037,"description":"no message found"}}`))
	f.Add([]byte(`{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`))
	f.Add([]byte(`{"error":{"code":503,"err_code":10008,"description":"cluster not ready"}}`))
	f.Add([]byte(`{"message":{"subject":"x","seq":1,"hdrs":"TkFUUy8xLjANCg==","data":""}}`))
	f.Add([]byte(`{"message":{"hdrs":"bm90IGhlYWRlcnM="}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMsgGet(b)
		if err != nil {
			if m != nil {
				t.Fatal("a message and an error")
			}
			return
		}
		if m == nil {
			t.Fatal("neither a message nor an error")
		}
	})
}

func TestDecodeMsgGet(t *testing.T) {
	m, err := decodeMsgGet([]byte(`{"message":{"subject":"$KV.KIN_QR_q.a","seq":7,"hdrs":"TkFUUy8xLjANCktpbi1FdmVudDogY29tcGxldGVkDQoNCg==","data":"e30=","time":"2026-01-02T03:04:05.123456789Z"}}`))
	if err != nil || m.Subject != "$KV.KIN_QR_q.a" || m.Sequence != 7 || m.Header.Get(hdrEvent) != "completed" || string(m.Data) != "{}" || m.Time.Nanosecond() != 123456789 {
		t.Errorf("%+v %v", m, err)
	}
	if _, err := decodeMsgGet([]byte(`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`)); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("not found: %v", err)
	}
	var apiErr *jetstream.APIError
	if _, err := decodeMsgGet([]byte(`{"error":{"code":503,"err_code":10008,"description":"cluster not ready"}}`)); !errors.As(err, &apiErr) || !transient(err) {
		t.Errorf("cluster not ready: %v", err)
	}
	for _, bad := range []string{``, `{}`, `{"message":{"hdrs":"bm90IGhlYWRlcnM="}}`, `{"message":{"data":"!"}}`} {
		if _, err := decodeMsgGet([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
