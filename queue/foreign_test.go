package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

// TestForeignProducer plays a producer in another language: it publishes
// job messages with a bare JetStream client, as the package doc's layout
// says, and reads the records and events the same way.
func TestForeignProducer(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	if err := c.Declare(ctx, "foreign", queue.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	var got []string
	working(t, c, "foreign", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		if j.Attempts != 1 || j.Timeout != 2*time.Second || j.MaxMemory != 1<<20 || j.Priority != queue.High {
			t.Errorf("options: %+v", j)
		}
		got = append(got, string(j.Data))
		return json.RawMessage(`{"done":true}`), nil
	}})
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe to the job's events before adding it.
	events := make(chan *nats.Msg, 8)
	sub, _ := c.Conn().ChanSubscribe("kin.qe.foreign.*.order-1", events)
	defer sub.Unsubscribe()
	m := nats.NewMsg("kin.q.foreign.high.order-1")
	m.Data = []byte(`{"sku":"x"}`)
	m.Header.Set("Nats-Msg-Id", "order-1")
	m.Header.Set("Kin-Attempts", "1")
	m.Header.Set("Kin-Timeout", "2000")
	m.Header.Set("Kin-Max-Memory", "1048576")
	m.Header.Set("Kin-Backoff", "fixed 10")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	var types []string
	for len(types) < 2 {
		select {
		case e := <-events:
			types = append(types, e.Subject)
			var rec map[string]any
			if err := json.Unmarshal(e.Data, &rec); err != nil || rec["id"] != "order-1" {
				t.Errorf("record %s: %v", e.Data, err)
			}
		case <-ctx.Done():
			t.Fatal("no events")
		}
	}
	if types[0] != "kin.qe.foreign.active.order-1" || types[1] != "kin.qe.foreign.completed.order-1" {
		t.Errorf("events %v", types)
	}
	// The current record is the last message on kin.qe.Q.*.ID.
	// (A subscriber may see an event a moment before the stream has it.)
	s, _ := js.Stream(ctx, "KIN_QE_foreign")
	var last *jetstream.RawStreamMsg
	kintest.WaitFor(t, 5*time.Second, "the completed record", func() bool {
		last, err = s.GetLastMsgForSubject(ctx, "kin.qe.foreign.*.order-1")
		return err == nil && strings.Contains(string(last.Data), `"state":"completed"`)
	})
	var rec struct {
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(last.Data, &rec); err != nil || rec.State != "completed" || string(rec.Result) != `{"done":true}` {
		t.Errorf("record %s", last.Data)
	}
	if len(got) != 1 || got[0] != `{"sku":"x"}` {
		t.Errorf("handler saw %v", got)
	}

	// A message with a header kin cannot read is dead at once, with that
	// cause.
	bad := nats.NewMsg("kin.q.foreign.normal.bad-1")
	bad.Header.Set("Kin-Attempts", "many")
	if _, err := js.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait(ctx, "foreign", "bad-1")
	var je *queue.JobError
	if !errors.As(err, &je) || je.Cause != queue.CauseInvalid {
		t.Errorf("bad job: %v", err)
	}
	// Subjects outside the layout are refused.
	if _, err := js.Publish(ctx, "kin.q.foreign.urgent.x", nil); err == nil {
		t.Error("a job on an unknown priority was stored")
	}
}
