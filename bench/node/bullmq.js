// The BullMQ side of the queue benchmarks (bench/queue.go), driven over
// stdin: one JSON command per line, one JSON answer per line ({"error": …}
// when a command fails). BullMQ is loaded from $KIN_BENCH_PEERS/node_modules
// (bench.PeerDir()), or from Node's usual search path.
//
//   {"op":"throughput","port":P,"mode":"inline"|"sandboxed","jobs":N,"warm":W,"concurrency":2}
//     → {"ns": …}: N no-op jobs added with addBulk in chunks of 1 000, timed
//       from the first add to the N-th 'completed' event of the Worker, after
//       W untimed jobs through the same Worker (its child processes started).
//   {"op":"latency","port":P,"mode":…,"n":N,"warm":W}
//     → {"events":[ns…],"worker":[ns…],"add":[ns…]}: N jobs added one at a
//       time, each timed from the add() call to its 'completed' event on a
//       QueueEvents (events), to the Worker's own 'completed' event (worker),
//       and to add() returning (add), after W untimed ones.
//
// inline runs `async () => 1` in this process; sandboxed runs
// bullmq-processor.js (the same function) in BullMQ's child processes.
'use strict';
const path = require('path');
const readline = require('readline');

const paths = process.env.KIN_BENCH_PEERS ? [process.env.KIN_BENCH_PEERS] : undefined;
const { Queue, Worker, QueueEvents } = require(require.resolve('bullmq', { paths }));

const processorFile = path.join(__dirname, 'bullmq-processor.js');
let queues = 0; // a fresh queue name per command

const now = () => process.hrtime.bigint();

function worker(name, connection, mode, concurrency) {
  const processor = mode === 'sandboxed' ? processorFile : async () => 1;
  if (mode !== 'inline' && mode !== 'sandboxed') throw new Error('unknown mode ' + mode);
  const w = new Worker(name, processor, { connection, concurrency });
  w.on('error', (err) => console.error('bullmq worker:', err));
  w.on('failed', (job, err) => console.error('bullmq job failed:', err));
  return w;
}

async function throughput(cmd) {
  const connection = { host: '127.0.0.1', port: cmd.port };
  const name = 'bench' + (++queues);
  const queue = new Queue(name, { connection });
  const w = worker(name, connection, cmd.mode, cmd.concurrency || 2);
  let target = 0;
  let count = 0;
  let done = () => {};
  w.on('completed', () => {
    if (++count === target) done();
  });
  try {
    await Promise.all([queue.waitUntilReady(), w.waitUntilReady()]);
    const run = async (n) => {
      count = 0;
      target = n;
      const finished = new Promise((resolve) => { done = resolve; });
      const t0 = now();
      for (let added = 0; added < n; added += 1000) {
        const k = Math.min(1000, n - added);
        const jobs = new Array(k);
        for (let i = 0; i < k; i++) jobs[i] = { name: 'j', data: { n: 1 } };
        await queue.addBulk(jobs);
      }
      await finished;
      return Number(now() - t0);
    };
    if (cmd.warm > 0) await run(cmd.warm);
    return { ns: await run(cmd.jobs) };
  } finally {
    await w.close();
    await queue.close();
  }
}

async function latency(cmd) {
  const connection = { host: '127.0.0.1', port: cmd.port };
  const name = 'lat' + (++queues);
  const queue = new Queue(name, { connection });
  const events = new QueueEvents(name, { connection });
  const w = worker(name, connection, cmd.mode, 1);
  // Completion times by job id, from either source, and who waits for them.
  const seen = { events: new Map(), worker: new Map() };
  let waiting = null; // { id, resolve }
  const mark = (source, id) => {
    seen[source].set(String(id), now());
    if (source === 'events' && waiting && waiting.id === String(id)) waiting.resolve();
  };
  events.on('completed', ({ jobId }) => mark('events', jobId));
  w.on('completed', (job) => mark('worker', job.id));
  const out = { events: [], worker: [], add: [] };
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), w.waitUntilReady()]);
    for (let i = -(cmd.warm || 0); i < cmd.n; i++) {
      const t0 = now();
      const job = await queue.add('j', { n: 1 });
      const added = now();
      const id = String(job.id);
      if (!seen.events.has(id)) {
        await new Promise((resolve) => { waiting = { id, resolve }; });
        waiting = null;
      }
      // The worker's event comes before the QueueEvents one, but in another
      // callback: give it a turn if it has not run yet.
      for (let k = 0; k < 100 && !seen.worker.has(id); k++) await new Promise(setImmediate);
      if (i >= 0) {
        out.events.push(Number(seen.events.get(id) - t0));
        out.worker.push(Number((seen.worker.get(id) || seen.events.get(id)) - t0));
        out.add.push(Number(added - t0));
      }
      seen.events.delete(id);
      seen.worker.delete(id);
    }
    return out;
  } finally {
    await w.close();
    await events.close();
    await queue.close();
  }
}

const ops = { throughput, latency };

// Commands run one at a time, in order.
let chain = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let answer;
    try {
      const cmd = JSON.parse(line);
      const op = ops[cmd.op];
      if (!op) throw new Error('unknown op ' + cmd.op);
      answer = await op(cmd);
    } catch (err) {
      answer = { error: String((err && err.stack) || err) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  });
});
rl.on('close', () => { chain.then(() => process.exit(0)); });
process.stdout.write(JSON.stringify({ ready: true }) + '\n');
