package queue

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
