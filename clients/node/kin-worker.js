'use strict';
// kin-worker: the worker side of kin's task protocol for Node.js (18–22), no
// dependencies. The wire format is Node's own IPC channel, so this file only
// adds the protocol of docs/protocol.md on top of process.send and
// process.on('message'):
//
//   const kin = require('kin-worker');
//   kin.serve(async (data, task) => {
//     task.progress({ step: 1 });     // optional, while the task runs
//     return { sum: data.a + data.b }; // the task's result (any JSON value)
//   });
//
// serve() says {kin:'ready'}, then runs the handler for one task at a time,
// in the order the tasks arrived (the parent may send several ahead and
// relies on that order). A throw or rejection becomes the task's error.
// {kin:'shutdown'} lets the tasks received before it finish, then exits 0;
// the parent closing the channel exits 0 at once.

const { inspect } = require('util');

let serving = false;

function serve(handler) {
  if (typeof handler !== 'function') {
    throw new TypeError('kin-worker: serve(handler): handler must be a function');
  }
  if (typeof process.send !== 'function') {
    throw new Error('kin-worker: no IPC channel (process.send is undefined): ' +
      'start this script with kin (a pool, kin pool, proc.Fork) or with child_process.fork');
  }
  if (serving) throw new Error('kin-worker: serve() called twice');
  serving = true;
  // Node removed NODE_CHANNEL_*; the channel is not for our children either.
  delete process.env.KIN_CHANNEL_FD;
  delete process.env.KIN_CHANNEL_CODEC;

  const queue = []; // tasks and the shutdown, in arrival order
  let busy = false;
  let written = Promise.resolve(); // settles when the last message is written

  // send writes msg; it throws, writing nothing, for values JSON cannot encode.
  function send(msg) {
    if (!process.connected) return;
    let done;
    const p = new Promise((resolve) => { done = resolve; });
    process.send(msg, () => done()); // the callback runs after the write (or its failure)
    written = p;
  }

  async function run(m) {
    let finished = false;
    const task = {
      id: m.id,
      // progress reports on the running task; ignored once it has finished.
      progress(value) { if (!finished) send({ kin: 'progress', id: m.id, data: value }); },
    };
    let reply;
    try {
      reply = { kin: 'result', id: m.id, data: await handler(m.data, task) };
    } catch (err) {
      reply = { kin: 'error', id: m.id, error: toError(err) };
    }
    finished = true;
    try {
      send(reply);
    } catch (err) { // a result JSON cannot encode: a BigInt, a cycle…
      send({ kin: 'error', id: m.id, error: toError(err) });
    }
  }

  async function pump() {
    if (busy) return;
    busy = true;
    while (queue.length > 0) {
      const m = queue.shift();
      if (m.kin === 'shutdown') {
        await written; // process.exit would drop a write still in progress
        process.exit(0);
      }
      await run(m);
    }
    busy = false;
  }

  process.on('message', (m) => {
    if (m !== null && typeof m === 'object' && (m.kin === 'task' || m.kin === 'shutdown')) {
      queue.push(m);
      pump();
    }
  });
  // The parent closed the channel or died: nobody is left to answer.
  process.on('disconnect', () => process.exit(0));
  send({ kin: 'ready' });
}

// toError returns the protocol's error object for a thrown value.
function toError(err) {
  if (err instanceof Error) return { message: String(err.message), stack: String(err.stack || '') };
  return { message: typeof err === 'string' ? err : inspect(err) };
}

module.exports = { serve };
