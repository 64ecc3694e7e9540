package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors.
var (
	// ErrNotFound: no such job (or its record is older than the queue's
	// Retention).
	ErrNotFound = errors.New("queue: job not found")
	// ErrNoQueue: no such queue.
	ErrNoQueue = errors.New("queue: no such queue")
	// ErrNotDead: Retry was asked for a job that is not dead.
	ErrNotDead = errors.New("queue: job is not dead")
	// ErrClosed: the Client is closed.
	ErrClosed = errors.New("queue: client closed")
)

// ConnectConfig says which NATS server(s) a Client uses: an embedded
// Server, or URLs. Every other field's zero value is a sensible default.
type ConnectConfig struct {
	// Server is an embedded server, reached in-process (no socket); its
	// credentials are used.
	Server *Server
	// URLs are NATS server URLs ("nats://host:4222"), used when Server is
	// nil; several name nodes of one cluster.
	URLs []string
	// User and Password authenticate to URLs.
	User, Password string
	// Name names the connection in the server's monitoring.
	Name string
	// Options are extra nats.go options (TLS, credentials files, …).
	Options []nats.Option
	// Queue is the configuration of queues this client creates implicitly,
	// on first use; see QueueConfig.
	Queue QueueConfig
}

// QueueConfig configures a queue's streams and bucket of records. Every
// field's zero value is a sensible default. It applies when the queue is
// created (Declare updates an existing queue).
type QueueConfig struct {
	// Replicas is how many servers of a cluster keep each of the queue's
	// streams; zero means 1. Use 3 on a 3-node cluster.
	Replicas int
	// AckWait is how long a worker may hold a job without a sign of life
	// before the server gives it to another worker; workers renew it every
	// AckWait/3 while the job runs. Zero means 30 s.
	AckWait time.Duration
	// Retention is how long job records and events are kept (the TTL of
	// the queue's bucket of records); zero means 24 h.
	Retention time.Duration
	// MaxRecords caps the number of records (events) the queue's bucket
	// keeps, of all jobs together: past it, the oldest go first. Zero
	// means no cap other than Retention and the 64 records kept per job.
	MaxRecords int64
	// DedupeWindow is how long the server remembers job IDs given by
	// producers to drop duplicate adds; zero means 2 min. (Client.Add also
	// looks for an existing job with that ID.)
	DedupeWindow time.Duration
}

func (qc QueueConfig) withDefaults() QueueConfig {
	if qc.Replicas <= 0 {
		qc.Replicas = 1
	}
	if qc.AckWait <= 0 {
		qc.AckWait = 30 * time.Second
	}
	if qc.Retention <= 0 {
		qc.Retention = 24 * time.Hour
	}
	if qc.MaxRecords <= 0 {
		qc.MaxRecords = -1
	}
	if qc.DedupeWindow <= 0 {
		qc.DedupeWindow = 2 * time.Minute
	}
	return qc
}

// Client adds jobs, reads their records and runs workers. Its methods are
// safe for concurrent use.
type Client struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg ConnectConfig
	// worker names the process in records: "host/pid".
	worker string

	mu     sync.Mutex
	queues map[string]*queueHandle
	closed bool
	once   sync.Once
}

// queueHandle is what a Client knows of one queue.
type queueHandle struct {
	name string
	work jetstream.Stream
	// records is the stream of the queue's KV bucket of records.
	records jetstream.Stream
	dlq     jetstream.Stream
	cons    [len(priorities)]jetstream.Consumer
	ackWait time.Duration
}

// Stream, bucket and subject names (see doc.go).
func workStream(q string) string   { return "KIN_Q_" + q }
func recordBucket(q string) string { return "KIN_QR_" + q }
func recordStream(q string) string { return "KV_KIN_QR_" + q }
func deadStream(q string) string   { return "KIN_DLQ_" + q }
func jobSubject(q string, p Priority, id string) string {
	return "kin.q." + q + "." + string(p) + "." + id
}
func delayedSubject(q, id string) string    { return "kin.q." + q + ".delayed." + id }
func recordSubject(q, id string) string     { return "$KV.KIN_QR_" + q + "." + id }
func eventSubject(q, typ, id string) string { return "kin.qe." + q + "." + typ + "." + id }
func deadSubject(q, id string) string       { return "kin.dlq." + q + "." + id }
func consumerName(p Priority) string        { return string(p) }
func anyJobSubject(q, id string) string     { return "kin.q." + q + ".*." + id }
func anyEventSubject(q, id string) string   { return "kin.qe." + q + ".*." + id }
func eventFilter(q string, typ EventType) string {
	return "kin.qe." + q + "." + string(typ) + ".*"
}

// recordHistory is how many records (events) of each job its queue's
// bucket keeps: the most a KV bucket keeps (jetstream.KeyValueMaxHistory).
const recordHistory = 64

// Connect connects to NATS and checks that JetStream answers, retrying
// until ctx ends (a cluster may still be electing its leader). The
// connection reconnects by itself after a server restart.
func Connect(ctx context.Context, cfg ConnectConfig) (*Client, error) {
	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectBufSize(32 << 20),
		nats.PingInterval(10 * time.Second),
	}
	if cfg.Name != "" {
		opts = append(opts, nats.Name(cfg.Name))
	}
	url := strings.Join(cfg.URLs, ",")
	switch {
	case cfg.Server != nil:
		opts = append(opts, nats.InProcessServer(cfg.Server.ns), nats.UserInfo(cfg.Server.user, cfg.Server.password))
	case url == "":
		return nil, errors.New("queue: ConnectConfig needs a Server or URLs")
	case cfg.User != "" || cfg.Password != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	opts = append(opts, cfg.Options...)
	var nc *nats.Conn
	var err error
	for {
		nc, err = nats.Connect(url, opts...)
		if err == nil {
			break
		}
		if errors.Is(err, nats.ErrAuthorization) || !sleepCtx(ctx, 100*time.Millisecond) {
			return nil, fmt.Errorf("queue: connect: %w", err)
		}
	}
	// (No async publish timeout: it costs a timer per publish. Those who
	// wait for acknowledgements bound the wait themselves.)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("queue: %w", err)
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.AccountInfo(actx)
		cancel()
		if err == nil {
			break
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			nc.Close()
			return nil, fmt.Errorf("queue: JetStream not available: %w", err)
		}
	}
	host, _ := os.Hostname()
	return &Client{
		nc:     nc,
		js:     js,
		cfg:    cfg,
		worker: host + "/" + strconv.Itoa(os.Getpid()),
		queues: map[string]*queueHandle{},
	}, nil
}

// sleepCtx sleeps d, or less if ctx ends; it reports whether ctx is still
// alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close closes the connection. Work loops using the client should end
// first. It is idempotent.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.js.CleanupPublisher()
		c.nc.Close()
	})
	return nil
}

// Conn returns the client's NATS connection (for the bus, and for tests).
func (c *Client) Conn() *nats.Conn { return c.nc }

// Declare creates queue with cfg, or updates its configuration. Queues are
// also created on first use with ConnectConfig.Queue.
func (c *Client) Declare(ctx context.Context, queue string, cfg QueueConfig) error {
	if !validQueue(queue) {
		return fmt.Errorf("queue: bad queue name %q (1 to 64 of A–Z a–z 0–9 - _)", queue)
	}
	h, err := c.declare(ctx, queue, cfg.withDefaults(), true)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.queues[queue] = h
	c.mu.Unlock()
	return nil
}

// handle returns the queue's handle, creating the queue with the client's
// defaults if it does not exist.
func (c *Client) handle(ctx context.Context, queue string) (*queueHandle, error) {
	c.mu.Lock()
	h, closed := c.queues[queue], c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if h != nil {
		return h, nil
	}
	if !validQueue(queue) {
		return nil, fmt.Errorf("queue: bad queue name %q (1 to 64 of A–Z a–z 0–9 - _)", queue)
	}
	h, err := c.declare(ctx, queue, c.cfg.Queue.withDefaults(), false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if old := c.queues[queue]; old != nil {
		h = old
	} else {
		c.queues[queue] = h
	}
	c.mu.Unlock()
	return h, nil
}

// forget drops the cached handle (after the queue was deleted, say).
func (c *Client) forget(queue string) {
	c.mu.Lock()
	delete(c.queues, queue)
	c.mu.Unlock()
}

// existing returns the queue's handle without creating the queue.
func (c *Client) existing(ctx context.Context, queue string) (*queueHandle, error) {
	c.mu.Lock()
	h := c.queues[queue]
	c.mu.Unlock()
	if h != nil {
		return h, nil
	}
	if !validQueue(queue) {
		return nil, ErrNoQueue
	}
	if _, err := c.js.Stream(ctx, workStream(queue)); errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoQueue
	} else if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return c.handle(ctx, queue)
}

// streamConfigs are the configurations of the queue's work and dead-letter
// streams.
func (c *Client) streamConfigs(q string, qc QueueConfig) [2]jetstream.StreamConfig {
	return [2]jetstream.StreamConfig{
		{
			Name:        workStream(q),
			Description: "kin queue " + q + ": jobs",
			Subjects: []string{
				"kin.q." + q + ".high.*", "kin.q." + q + ".normal.*", "kin.q." + q + ".low.*",
				"kin.q." + q + ".delayed.*",
			},
			Retention:         jetstream.WorkQueuePolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          qc.Replicas,
			Duplicates:        qc.DedupeWindow,
			AllowMsgSchedules: true,
			AllowRollup:       true,
			Discard:           jetstream.DiscardOld,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			MaxAge:            0,
		},
		{
			Name:              deadStream(q),
			Description:       "kin queue " + q + ": dead jobs",
			Subjects:          []string{"kin.dlq." + q + ".*"},
			Retention:         jetstream.LimitsPolicy,
			Storage:           jetstream.FileStorage,
			Replicas:          qc.Replicas,
			MaxMsgsPerSubject: 1,
			MaxMsgs:           -1,
			MaxBytes:          -1,
			Discard:           jetstream.DiscardOld,
		},
	}
}

// recordsConfig is the configuration of the queue's bucket of records.
func recordsConfig(q string, qc QueueConfig) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      recordBucket(q),
		Description: "kin queue " + q + ": job records",
		History:     recordHistory,
		TTL:         qc.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    qc.Replicas,
	}
}

// declare makes sure the queue's streams, bucket and consumers exist; with
// update, it also applies qc to existing ones.
func (c *Client) declare(ctx context.Context, q string, qc QueueConfig, update bool) (*queueHandle, error) {
	h := &queueHandle{name: q}
	for i, sc := range c.streamConfigs(q, qc) {
		var s jetstream.Stream
		var err error
		if update {
			s, err = retryJS(ctx, func(ctx context.Context) (jetstream.Stream, error) { return c.js.CreateOrUpdateStream(ctx, sc) })
		} else {
			s, err = retryJS(ctx, func(ctx context.Context) (jetstream.Stream, error) {
				s, err := c.js.Stream(ctx, sc.Name)
				if errors.Is(err, jetstream.ErrStreamNotFound) {
					s, err = c.js.CreateStream(ctx, sc)
					if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
						s, err = c.js.Stream(ctx, sc.Name)
					}
				}
				return s, err
			})
		}
		if err != nil {
			return nil, fmt.Errorf("queue: stream %s: %w", sc.Name, err)
		}
		if i == 0 {
			h.work = s
		} else {
			h.dlq = s
		}
	}
	var err error
	h.records, err = retryJS(ctx, func(ctx context.Context) (jetstream.Stream, error) { return c.declareRecords(ctx, q, qc, update) })
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", recordBucket(q), err)
	}
	for i, p := range priorities {
		cc := jetstream.ConsumerConfig{
			Durable:       consumerName(p),
			Description:   "kin workers, " + string(p) + " priority",
			FilterSubject: jobSubject(q, p, "*"),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       qc.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: -1,
			MaxWaiting:    4096,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
		cons, err := retryJS(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
			if !update {
				cons, err := h.work.Consumer(ctx, cc.Durable)
				if !errors.Is(err, jetstream.ErrConsumerNotFound) {
					return cons, err
				}
			}
			return h.work.CreateOrUpdateConsumer(ctx, cc)
		})
		if err != nil {
			return nil, fmt.Errorf("queue: consumer %s of %s: %w", cc.Durable, workStream(q), err)
		}
		h.cons[i] = cons
	}
	h.ackWait = h.cons[0].CachedInfo().Config.AckWait
	if h.ackWait <= 0 {
		h.ackWait = 30 * time.Second
	}
	return h, nil
}

// declareRecords makes sure the queue's bucket of records exists (with
// update, with qc) and returns its stream. The bucket is made by nats.go's
// KV API, so that any NATS client's KV API reads it. A KV bucket has no
// cap on its message count and refuses new messages when full; with
// MaxRecords, its stream is then given that cap, dropping the oldest.
func (c *Client) declareRecords(ctx context.Context, q string, qc QueueConfig, update bool) (jetstream.Stream, error) {
	kvc := recordsConfig(q, qc)
	made := update
	if update {
		if _, err := c.js.CreateOrUpdateKeyValue(ctx, kvc); err != nil {
			return nil, err
		}
	} else if _, err := c.js.Stream(ctx, recordStream(q)); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = c.js.CreateKeyValue(ctx, kvc)
		switch {
		case err == nil:
			made = true
		case !errors.Is(err, jetstream.ErrBucketExists):
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	s, err := c.js.Stream(ctx, recordStream(q))
	if err != nil || !made || qc.MaxRecords <= 0 {
		return s, err
	}
	sc := s.CachedInfo().Config
	sc.MaxMsgs, sc.Discard = qc.MaxRecords, jetstream.DiscardOld
	return c.js.UpdateStream(ctx, sc)
}

// retryJS retries a JetStream request that failed for a passing reason (a
// cluster electing a leader, a reconnection) until ctx ends.
func retryJS[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	delay := 50 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := fn(rctx)
		cancel()
		if err == nil || !transient(err) || ctx.Err() != nil {
			return v, err
		}
		if !sleepCtx(ctx, delay) {
			return v, err
		}
		delay = min(2*delay, time.Second)
	}
}

// transient reports whether err may go away by itself.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 503: JetStream not ready (no leader yet); 10008: cluster not
		// ready; 10023/10074: no suitable peers / insufficient resources
		// while nodes join.
		return apiErr.Code == 503 || apiErr.Code == 500 || apiErr.ErrorCode == 10008 ||
			apiErr.ErrorCode == 10023 || apiErr.ErrorCode == 10074
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// List returns the names of the queues on the server.
func (c *Client) List(ctx context.Context) ([]string, error) {
	lister := c.js.StreamNames(ctx, jetstream.WithStreamListSubject("kin.q.>"))
	var out []string
	for name := range lister.Name() {
		if q, ok := strings.CutPrefix(name, "KIN_Q_"); ok {
			out = append(out, q)
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("queue: list: %w", err)
	}
	return out, nil
}

// Delete removes queue and everything in it: jobs, records, dead jobs.
// Workers of the queue stop getting jobs (and retry until it is created
// again).
func (c *Client) Delete(ctx context.Context, queue string) error {
	if !validQueue(queue) {
		return ErrNoQueue
	}
	c.forget(queue)
	found := false
	for _, name := range []string{workStream(queue), recordStream(queue), deadStream(queue)} {
		err := c.js.DeleteStream(ctx, name)
		switch {
		case err == nil:
			found = true
		case errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return fmt.Errorf("queue: delete %s: %w", name, err)
		}
	}
	if !found {
		return ErrNoQueue
	}
	return nil
}

// Purge removes every waiting, delayed and dead job of queue, and every
// record and event. Jobs running now finish, and their records are written.
func (c *Client) Purge(ctx context.Context, queue string) error {
	h, err := c.existing(ctx, queue)
	if err != nil {
		return err
	}
	for _, s := range []jetstream.Stream{h.work, h.dlq, h.records} {
		if err := s.Purge(ctx); err != nil {
			return fmt.Errorf("queue: purge %s: %w", s.CachedInfo().Config.Name, err)
		}
	}
	return nil
}

// Stats counts a queue's jobs.
type Stats struct {
	// Waiting jobs may run now.
	Waiting uint64 `json:"waiting"`
	// Active jobs are held by workers: running, about to run, or waiting
	// out the backoff before their next attempt (failed).
	Active uint64 `json:"active"`
	// Delayed jobs wait for their time.
	Delayed uint64 `json:"delayed"`
	// Dead jobs are in the dead-letter stream.
	Dead uint64 `json:"dead"`
	// Completed and Failed count the completed events (jobs) and failed
	// events (attempts) still kept: younger than QueueConfig.Retention,
	// and among the last 64 events of their job.
	Completed uint64 `json:"completed"`
	Failed    uint64 `json:"failed"`
}

// Stats counts queue's jobs. Completed and Failed are counted from the
// headers of the kept records, all read: the call's cost grows with the
// records the queue keeps.
func (c *Client) Stats(ctx context.Context, queue string) (Stats, error) {
	var st Stats
	h, err := c.existing(ctx, queue)
	if err != nil {
		return st, err
	}
	var pending, ackPending uint64
	for _, cons := range h.cons {
		ci, err := cons.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("queue: stats: %w", err)
		}
		pending += ci.NumPending
		ackPending += uint64(ci.NumAckPending)
	}
	wi, err := h.work.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("queue: stats: %w", err)
	}
	di, err := h.dlq.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("queue: stats: %w", err)
	}
	st.Waiting, st.Active, st.Dead = pending, ackPending, di.State.Msgs
	if wi.State.Msgs > pending+ackPending {
		st.Delayed = wi.State.Msgs - pending - ackPending
	}
	if st.Completed, st.Failed, err = c.countRecords(ctx, h); err != nil {
		return st, err
	}
	return st, nil
}

// countBatch is how many record headers countRecords asks for at a time.
const countBatch = 4096

// countRecords counts the kept completed and failed events. The server
// cannot count by header, so it reads the headers of every kept record with
// a short-lived consumer (BenchmarkStats measures what that costs).
func (c *Client) countRecords(ctx context.Context, h *queueHandle) (completed, failed uint64, err error) {
	info, err := h.records.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("queue: stats: %w", err)
	}
	if info.State.Msgs == 0 {
		return 0, 0, nil
	}
	// Count up to the last record there now; later ones do not hold
	// up the count.
	last := info.State.LastSeq
	cons, err := h.records.CreateConsumer(ctx, jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       true,
		InactiveThreshold: 10 * time.Second,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return 0, 0, fmt.Errorf("queue: stats: %w", err)
	}
	defer h.records.DeleteConsumer(context.WithoutCancel(ctx), cons.CachedInfo().Name)
	for {
		// Whatever is there now, up to a batch. (Records purged or expired
		// since Info just end the count sooner.)
		b, err := cons.FetchNoWait(countBatch)
		if err != nil {
			return 0, 0, fmt.Errorf("queue: stats: %w", err)
		}
		n := 0
		var lastMsg jetstream.Msg
		for m := range b.Messages() {
			n++
			lastMsg = m
			switch EventType(m.Headers().Get(hdrEvent)) {
			case EventCompleted:
				completed++
			case EventFailed:
				failed++
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return 0, 0, fmt.Errorf("queue: stats: %w", err)
		}
		if n < countBatch {
			return completed, failed, nil
		}
		// Records stored after Info are counted as well, but need not be
		// waited for.
		if md, err := lastMsg.Metadata(); err != nil || md.Sequence.Stream >= last || md.NumPending == 0 {
			return completed, failed, nil
		}
	}
}
