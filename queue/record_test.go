package queue

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendRecord: the fast encoder writes the document encoding/json
// writes (compared after decoding both).
func FuzzAppendRecord(f *testing.F) {
	f.Add("id", "q", "completed", "high", 1, 3, []byte(`{"a":1}`), []byte(`[1,2]`), "", "error", "", int64(1700000000123456789), "host/1")
	f.Add("x", "q", "dead", "", 2, 2, []byte(nil), []byte(nil), "bad \"quote\"\n\x01\xff é", "timeout", "stack\tline", int64(0), "h\u2028")
	f.Fuzz(func(t *testing.T, id, q, state, prio string, attempt, attempts int, progress, result []byte, msg, cause, stack string, ts int64, worker string) {
		j := &Job{ID: id, Queue: q, State: State(state), Priority: Priority(prio), Attempt: attempt, Attempts: attempts, Worker: worker}
		if json.Valid(progress) {
			j.Progress = progress
		}
		if json.Valid(result) {
			j.Result = result
		}
		if msg != "" || cause != "" || stack != "" {
			j.Error = &JobError{Message: msg, Cause: Cause(cause), Stack: stack}
		}
		if ts != 0 {
			j.Added = time.Unix(0, ts)
			j.Started = j.Added.Add(time.Millisecond)
		}
		fast := appendRecord(nil, j)
		ref, err := json.Marshal(j)
		if err != nil {
			t.Skip()
		}
		var a, b any
		if err := json.Unmarshal(fast, &a); err != nil {
			t.Fatalf("fast encoding is not JSON: %s: %v", fast, err)
		}
		json.Unmarshal(ref, &b)
		fa, _ := json.Marshal(a)
		fb, _ := json.Marshal(b)
		if !bytes.Equal(fa, fb) {
			t.Fatalf("fast %s\nref  %s", fast, ref)
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	j := &Job{ID: "Afgszy1DmCDHc9xpd7h8L4", Queue: "bench", State: Completed, Priority: Normal, Attempt: 1, Attempts: 3,
		Result: json.RawMessage(`{"ok":true}`), Added: time.Now(), Started: time.Now(), Finished: time.Now(), Worker: "host/1234"}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			marshalRecord(j)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			json.Marshal(j)
		}
	})
}
