// Package queue is kin's durable job queue: jobs are stored in NATS
// JetStream and run in isolated child processes (pool workers in any
// language) or in Go handlers.
//
// The engine is NATS JetStream, either embedded (StartServer runs a
// nats-server in this process, with its file store under a directory) or an
// external NATS server or cluster (Connect with URLs); the same code runs
// against both. There is no other store: jobs and dead jobs are JetStream
// streams, job records a JetStream KV bucket whose history holds the recent
// events, laid out as below so that producers and consumers in other
// languages can use any NATS client.
//
//	srv, _ := queue.StartServer(queue.ServerConfig{Dir: home + "/nats"})
//	c, _ := queue.Connect(ctx, queue.ConnectConfig{Server: srv})
//	id, _ := c.Add(ctx, "emails", queue.JobSpec{Data: msg, Timeout: time.Minute})
//	go c.Work(ctx, "emails", queue.WorkConfig{Command: []string{"node", "send.js"}})
//	job, err := c.Wait(ctx, "emails", id) // job.Result
//
// A job is tried up to JobSpec.Attempts times. Each attempt runs with the
// job's timeout and memory limit; a worker process that crashes, runs past
// the timeout or grows past the limit is killed with its whole process group,
// the attempt is recorded with its cause, and the job is retried after its
// backoff. After the last attempt it goes to the dead-letter stream, from
// which Retry brings it back. Delivery is at least once: a job whose worker
// vanished (its program killed) runs again once its acknowledgement deadline
// passes; a job is acknowledged only after its record is stored.
//
// Durability: the embedded server writes every message to the kernel before
// acknowledging it, and fsyncs every ServerConfig.Sync interval (100 ms by
// default), so a kill -9 of the process loses nothing that was acknowledged
// and a power cut at most that interval; Sync "always" fsyncs before every
// acknowledgement. On a cluster, streams with 3 replicas are acknowledged
// once a majority of nodes has them.
//
// # Layout
//
// (This section is also section 12 of docs/protocol.md, "Queue layout"; a
// test keeps the two the same.)
//
// A queue Q (1 to 64 characters among A–Z a–z 0–9 - _) is two streams and
// a KV bucket:
//
//	name       subjects                 kind
//	KIN_Q_Q    kin.q.Q.high.ID          work-queue stream: the jobs waiting
//	           kin.q.Q.normal.ID        or running, one message each
//	           kin.q.Q.low.ID
//	           kin.q.Q.delayed.ID       delayed jobs (message schedules)
//	KIN_QR_Q   $KV.KIN_QR_Q.ID          KV bucket (stream KV_KIN_QR_Q) of
//	                                    job records: key ID, history 64,
//	                                    TTL QueueConfig.Retention
//	KIN_DLQ_Q  kin.dlq.Q.ID             dead jobs (one per ID, kept until
//	                                    retried or purged)
//
// and its events are published, not stored, on kin.qe.Q.TYPE.ID.
//
// A job ID is 1 to 128 characters among A–Z a–z 0–9 - _ = (a subject
// token and a KV key; kin generates 22-character NUIDs).
//
// Adding a job is publishing its message with JetStream (wait for the
// publish acknowledgement): subject kin.q.Q.PRIORITY.ID, where PRIORITY is
// high, normal or low; the body is the job's data, one JSON document (or
// nothing, for null). Headers, all optional:
//
//	Nats-Msg-Id     ID       drop duplicates within QueueConfig.DedupeWindow (2 min)
//	Kin-Attempts    3        attempts before the job is dead-lettered (1–1000; default 3)
//	Kin-Backoff     exponential 1000 3600000
//	                         wait before retry n: DELAY·2^(n-1) ms capped at MAX
//	                         ("fixed 500": always 500 ms); default exponential 1000 3600000
//	Kin-Timeout     30000    each attempt's timeout, ms (default: the worker's)
//	Kin-Max-Memory  268435456
//	                         memory limit of the worker process tree, bytes
//	Kin-Added       1700000000000
//	                         when the job was added, unix ms (default: when stored)
//
// A delayed job is published instead to kin.q.Q.delayed.ID with the
// server's message-schedule headers (nats-server 2.12 or later)
// "Nats-Schedule: @at 2026-01-02T15:04:05.999Z" (UTC, RFC 3339) and
// "Nats-Schedule-Target: kin.q.Q.PRIORITY.ID", plus Kin-Added; at that time
// the server copies it to the target subject (it fires with a resolution of
// about 250 ms) and removes the schedule.
//
// Workers pull jobs from three durable consumers of KIN_Q_Q, named high,
// normal and low, filtered on kin.q.Q.PRIORITY.* (explicit acks, AckWait
// QueueConfig.AckWait, no MaxDeliver or MaxAckPending limit: attempts are
// counted by the workers). A worker asks the high consumer first, then
// normal, then low, so a waiting high job is always taken before a normal
// one; it renews the acknowledgement deadline of each job it holds every
// AckWait/3 (+WPI). The attempt number is the delivery count (from the
// message's $JS.ACK reply subject), or for a redelivery one more than the
// attempt in the job's current record. A failed attempt is negatively
// acknowledged with the backoff as delay (-NAK {"delay": ns}); a redelivered
// job whose current record says completed or dead is acknowledged without
// running (its acknowledgement was lost). A job whose headers or ID kin
// cannot read is dead at once (cause invalid).
//
// A job is acknowledged (+ACK, which removes it from KIN_Q_Q) only once its
// completed record, or its dead letter and dead record, are stored.
//
// Records. Each change of a job is one put of key ID into the bucket: a
// message published to $KV.KIN_QR_Q.ID with the header "Kin-Event: TYPE",
// where TYPE is active, progress, completed, failed (an attempt failed;
// another follows), dead, or waiting (sent back by Retry, or by a worker
// that stopped before running it). Active and progress records are
// published with core NATS (not waited for: the next record replaces a
// lost one); the others with JetStream, waiting for the acknowledgement.
// The value is the job's record after the change, a JSON object:
//
//	{"id":"…","queue":"Q","state":"completed","priority":"normal",
//	 "attempt":1,"attempts":3,"progress":…,"result":…,
//	 "error":{"message":"…","cause":"timeout","stack":"…"},
//	 "added":"2026-…Z","started":"…","finished":"…","run_at":"…",
//	 "worker":"host/pid"}
//
// state is waiting, delayed, active, completed, failed or dead (progress
// records say active); cause is error, crash, timeout, memory, lost or
// invalid; members without a value are left out; times are RFC 3339.
//
// The bucket is made with the KV API (as nats.go's CreateKeyValue makes
// it: History 64, TTL QueueConfig.Retention, file storage,
// QueueConfig.Replicas; with QueueConfig.MaxRecords, its stream also keeps
// at most that many messages, dropping the oldest), so any NATS client's
// KV API reads it: a job's current record is the key's value
// (nats kv get KIN_QR_Q ID), its recent events the key's history (its last
// 64 records, each kept for the TTL). A value with a KV-Operation header
// (a key deleted or purged with the KV API) is no record. kin reads a
// record from the stream's leader ($JS.API.STREAM.MSG.GET.KV_KIN_QR_Q with
// {"last_by_subj":"$KV.KIN_QR_Q.ID"}): the KV API's direct gets may be
// answered by a replica that does not have the latest record yet. If there
// is no record, the job is waiting (or delayed), in KIN_Q_Q.
//
// Events. Once a record is stored (active and progress records: once
// published), its value is published again, with core NATS and not
// stored, on kin.qe.Q.TYPE.ID, so that subscribers choose events by type
// and job (kin.qe.Q.completed.*, kin.qe.Q.*.ID). To wait for a result,
// subscribe to kin.qe.Q.*.ID (or kin.qe.Q.completed.ID and
// kin.qe.Q.dead.ID), then read the current record, then wait for a
// completed or dead event: as those are published only after their record
// is stored, none can slip between the two. (A KV watcher of the key works
// too.) To replay recent events, use an ordered consumer on KV_KIN_QR_Q,
// filtered on $KV.KIN_QR_Q.* or $KV.KIN_QR_Q.ID, from a sequence or a
// time; each message's type is its Kin-Event header. A worker in another
// language writes records and publishes events in the same way.
//
// A dead job is the job's message (body and Kin- headers, plus
// Kin-Priority and Kin-Added) published to kin.dlq.Q.ID; the dead record,
// which has the error, is stored once the dead letter is stored. Retry
// publishes the job to kin.q.Q.PRIORITY.ID again (with Nats-Msg-Id
// "ID:retry:SEQ"), stores a waiting record and removes the dead letter.
package queue
