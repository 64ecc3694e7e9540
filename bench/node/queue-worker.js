// kin's Node worker for the queue benchmarks (bench/queue.go): the no-op job
// (`async () => 1`, as BullMQ's processor) served over kin's task protocol
// with nothing but process.on('message') and process.send(), one task at a
// time and in order, as docs/protocol.md asks, and as
// clients/node/kin-worker.js does it.
const handler = async () => 1;

let chain = Promise.resolve();
let written = Promise.resolve(); // settles once the last reply is written
process.on('message', (m) => {
  if (m.kin === 'task') {
    chain = chain.then(async () => {
      let reply;
      try {
        reply = { kin: 'result', id: m.id, data: await handler(m.data) };
      } catch (err) {
        reply = { kin: 'error', id: m.id, error: { message: String((err && err.message) || err) } };
      }
      written = new Promise((resolve) => process.send(reply, resolve));
    });
  } else if (m.kin === 'shutdown') {
    chain.then(() => written).then(() => process.exit(0));
  }
});
process.send({ kin: 'ready' });
