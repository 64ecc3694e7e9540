package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kinproc/kin/internal/kintest"
	"github.com/kinproc/kin/queue"
)

// TestForeignProducer plays a producer in another language: it publishes
// job messages with a bare JetStream client, as the package doc's layout
// says, follows the job's events on their typed subjects, and reads its
// record with the KV API and its events from the bucket's history.
func TestForeignProducer(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	if err := c.Declare(ctx, "foreign", queue.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 8)
	working(t, c, "foreign", queue.WorkConfig{Handler: func(ctx context.Context, j *queue.Job) (json.RawMessage, error) {
		if j.ID == "order-1" && (j.Attempts != 1 || j.Timeout != 2*time.Second || j.MaxMemory != 1<<20 || j.Priority != queue.High) {
			t.Errorf("options: %+v", j)
		}
		got <- string(j.Data)
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
	var subjects []string
	for len(subjects) < 2 {
		select {
		case e := <-events:
			subjects = append(subjects, e.Subject)
			var rec map[string]any
			if err := json.Unmarshal(e.Data, &rec); err != nil || rec["id"] != "order-1" {
				t.Errorf("record %s: %v", e.Data, err)
			}
		case <-ctx.Done():
			t.Fatal("no events")
		}
	}
	if !slices.Equal(subjects, []string{"kin.qe.foreign.active.order-1", "kin.qe.foreign.completed.order-1"}) {
		t.Errorf("events %v", subjects)
	}
	if d := <-got; d != `{"sku":"x"}` {
		t.Errorf("handler saw %s", d)
	}

	// The record is the job's key in bucket KIN_QR_foreign. A completed
	// event is announced only once its record is stored: no need to poll.
	kv, err := js.KeyValue(ctx, "KIN_QR_foreign")
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		ID     string          `json:"id"`
		State  string          `json:"state"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID != "order-1" || rec.State != "completed" || string(rec.Result) != `{"done":true}` {
		t.Errorf("record %s: %v", e.Value(), err)
	}
	if st, err := kv.Status(ctx); err != nil || st.History() != 64 || st.TTL() != 24*time.Hour {
		t.Errorf("bucket status: %+v %v", st, err)
	}
	hist, err := kv.History(ctx, "order-1")
	if err != nil || len(hist) != 2 {
		t.Fatalf("history: %d entries, %v", len(hist), err)
	}

	// The job's events replay from the bucket's stream, their type in
	// the Kin-Event header.
	cons, err := js.OrderedConsumer(ctx, "KV_KIN_QR_foreign", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"$KV.KIN_QR_foreign.order-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for range 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, m.Headers().Get("Kin-Event"))
	}
	if !slices.Equal(types, []string{"active", "completed"}) {
		t.Errorf("replayed events %v", types)
	}

	// A KV watcher sees a job's record change: another way to wait.
	w, err := kv.Watch(ctx, "order-2", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := js.Publish(ctx, "kin.q.foreign.normal.order-2", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				t.Fatalf("record %s: %v", e.Value(), err)
			}
			done = rec.State == "completed"
		case <-ctx.Done():
			t.Fatal("the watcher saw no completed record")
		}
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
	// So is a job whose ID cannot be a KV key; it is kept in the
	// dead-letter stream.
	if _, err := js.Publish(ctx, "kin.q.foreign.normal.a:b", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, "KIN_DLQ_foreign")
	if err != nil {
		t.Fatal(err)
	}
	kintest.WaitFor(t, 10*time.Second, "the dead letter of a:b", func() bool {
		_, err := dlq.GetLastMsgForSubject(ctx, "kin.dlq.foreign.a:b")
		return err == nil
	})
	// Subjects outside the layout are refused.
	if _, err := js.Publish(ctx, "kin.q.foreign.urgent.x", nil); err == nil {
		t.Error("a job on an unknown priority was stored")
	}
}

// TestForeignWorker plays a worker in another language: it takes a job
// from the queue's consumer, writes its records into the bucket with a
// bare JetStream client and announces them, as the package doc says; the
// Client reads them as its own.
func TestForeignWorker(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	ctx := ctxT(t)
	// (A short dedupe window, so that the server has forgotten the ID when
	// it is added again below: the record must be what says it is known.)
	if err := c.Declare(ctx, "fw", queue.QueueConfig{DedupeWindow: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan *queue.Job, 1)
	id, err := c.Add(ctx, "fw", queue.JobSpec{ID: "job-1", Data: data(2)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		j, _ := c.Wait(ctx, "fw", id)
		waiting <- j
	}()
	js, err := jetstream.New(c.Conn())
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, "KIN_Q_fw", "normal")
	if err != nil {
		t.Fatal(err)
	}
	job, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || job.Subject() != "kin.q.fw.normal.job-1" || string(job.Data()) != "2" {
		t.Fatalf("job %v %v", job, err)
	}
	record := func(typ, body string) {
		t.Helper()
		m := nats.NewMsg("$KV.KIN_QR_fw.job-1")
		m.Header.Set("Kin-Event", typ)
		m.Data = []byte(body)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := c.Conn().Publish("kin.qe.fw."+typ+".job-1", m.Data); err != nil {
			t.Fatal(err)
		}
	}
	record("active", `{"id":"job-1","queue":"fw","state":"active","attempt":1,"attempts":3,"worker":"elsewhere"}`)
	record("completed", `{"id":"job-1","queue":"fw","state":"completed","attempt":1,"attempts":3,"result":4,"worker":"elsewhere"}`)
	if err := job.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case j := <-waiting:
		if j == nil || j.State != queue.Completed || string(j.Result) != "4" || j.Worker != "elsewhere" {
			t.Fatalf("Wait: %+v", j)
		}
	case <-ctx.Done():
		t.Fatal("Wait did not return")
	}
	var types []queue.EventType
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err = c.Events(ectx, "fw", queue.EventsOptions{StartSeq: 1, ID: id}, func(ev queue.Event) error {
		types = append(types, ev.Type)
		if ev.Type == queue.EventCompleted {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) || !slices.Equal(types, []queue.EventType{queue.EventActive, queue.EventCompleted}) {
		t.Errorf("events %v, %v", types, err)
	}
	if st, err := c.Stats(ctx, "fw"); err != nil || st != (queue.Stats{Completed: 1}) {
		t.Errorf("stats %+v %v", st, err)
	}
	// The ID is known from its record: adding it again, once the server's
	// dedupe window is over, adds nothing.
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Add(ctx, "fw", queue.JobSpec{ID: "job-1"}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Stats(ctx, "fw"); err != nil || st.Waiting != 0 {
		t.Errorf("stats after a second add %+v %v", st, err)
	}
}
