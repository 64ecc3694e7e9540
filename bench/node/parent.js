'use strict';
// The Node side of kin's IPC benchmarks: a parent that forks its child with
// child_process.fork and runs the measurements the Go driver asks for. Each
// command is one JSON line on stdin and gets one JSON line on stdout, either
// {"ns": <nanoseconds>} or {"error": "…"}.
//
//   {"op":"fork","script":"…/child.js"}                      fork a Node child
//   {"op":"fork","execPath":"/path/to/go-binary","env":{…}}  fork a Go child
//   {"op":"rtt","size":100,"n":20000,"warm":1000}            n round trips
//   {"op":"oneway","size":100,"n":200000,"warm":200000}      n messages, then 'done'
//   {"op":"spawn","script":"…/ready.js"}                     fork → first message
//   {"op":"spawn","execPath":"…","env":{…}}                  the same for a Go child
//
// The payload is {t:'p', d:'x'.repeat(size)}. Times are taken here, with
// process.hrtime, so that Node's own figures owe nothing to the Go driver.
// Closing stdin disconnects the child; both then exit.
const { fork } = require('child_process');
const readline = require('readline');

let child = null;

// Children write to our stderr: our stdout carries the answers.
const stdio = ['ignore', 2, 2, 'ipc'];

function forkChild(cmd) {
  if (cmd.execPath) {
    return fork('kin-bench-child', [], {
      execPath: cmd.execPath,
      execArgv: [],
      env: Object.assign({}, process.env, cmd.env || {}),
      stdio,
    });
  }
  return fork(cmd.script, [], { stdio });
}

function now() {
  return process.hrtime.bigint();
}

// exchange sends first() and calls onMessage for every reply until it
// returns true; it fails if the child exits first.
function exchange(first, onMessage) {
  return new Promise((resolve, reject) => {
    const done = (err) => {
      child.off('message', handler);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    const handler = (m) => {
      try {
        if (onMessage(m)) done();
      } catch (e) {
        done(e);
      }
    };
    const onExit = (code, sig) => done(new Error(`child exited (code ${code}, signal ${sig})`));
    child.on('message', handler);
    child.on('exit', onExit);
    first();
  });
}

async function rtt(size, n, warm) {
  const msg = { t: 'p', d: 'x'.repeat(size) };
  const total = warm + n;
  let got = 0;
  let t0 = now();
  await exchange(
    () => child.send(msg),
    (m) => {
      if (m.d.length !== size) throw new Error(`echo of ${m.d.length} bytes, sent ${size}`);
      got++;
      if (got === warm) t0 = now();
      if (got === total) return true;
      child.send(msg);
      return false;
    },
  );
  return Number(now() - t0);
}

// burst sends n messages as fast as the channel takes them and waits for the
// child's 'done'. When child.send reports a full queue (it returns false),
// the next message is sent with a callback and the loop waits for it, so
// that serialised messages do not pile up in memory (200 × 1 MiB would).
async function burst(msg, n) {
  let resolveDone, rejectDone;
  const done = new Promise((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // awaited below; do not report it as unhandled meanwhile
  const onMessage = (m) => {
    if (m && m.t === 'done') resolveDone();
  };
  const onExit = (code, sig) => rejectDone(new Error(`child exited (code ${code}, signal ${sig})`));
  child.on('message', onMessage);
  child.on('exit', onExit);
  try {
    child.send({ t: 'n', n });
    const t0 = now();
    for (let i = 0; i < n; i++) {
      if (!child.send(msg) && ++i < n) {
        await new Promise((resolve, reject) => child.send(msg, (err) => (err ? reject(err) : resolve())));
      }
    }
    await done;
    return Number(now() - t0);
  } finally {
    child.off('message', onMessage);
    child.off('exit', onExit);
  }
}

async function oneway(size, n, warm) {
  const msg = { t: 'p', d: 'x'.repeat(size) };
  if (warm > 0) await burst(msg, warm);
  return burst(msg, n);
}

function spawnOnce(cmd) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const c = forkChild(cmd);
    let ns = null;
    c.once('message', () => {
      ns = Number(now() - t0);
      // Goodbye: kin's shutdown message, on which a Go worker returns from
      // worker.Serve, then disconnect, on which ready.js exits.
      c.send({ kin: 'shutdown' });
      c.disconnect();
    });
    c.once('error', reject);
    c.once('exit', (code, sig) => {
      if (ns === null) reject(new Error(`child exited before its first message (code ${code}, signal ${sig})`));
      else resolve(ns);
    });
  });
}

async function run(cmd) {
  switch (cmd.op) {
    case 'fork':
      child = forkChild(cmd);
      return 0;
    case 'rtt':
      return rtt(cmd.size, cmd.n, cmd.warm);
    case 'oneway':
      return oneway(cmd.size, cmd.n, cmd.warm);
    case 'spawn':
      return spawnOnce(cmd);
  }
  throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
}

(async () => {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    let answer;
    try {
      answer = { ns: await run(JSON.parse(line)) };
    } catch (e) {
      answer = { error: String((e && e.stack) || e) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
  if (child !== null && child.connected) child.disconnect();
})();
