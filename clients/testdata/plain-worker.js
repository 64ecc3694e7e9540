// An unmodified Node worker: no kin code, only process.on('message') and
// process.send(). It sends no ready message. Tasks are answered in arrival
// order by chaining them on one promise, even when a task waits.
let chain = Promise.resolve();
let running = 0;

// reply sends msg and resolves once it is written, so that disconnect below
// cannot drop a reply still being written.
const reply = (msg) => new Promise((resolve) => process.send(msg, resolve));

async function run(m) {
  const d = m.data;
  running++;
  try {
    switch (d.op) {
      case 'echo':
        return reply({ kin: 'result', id: m.id, data: d.v });
      case 'fail':
        throw new Error(d.msg);
      case 'progress':
        for (let i = 0; i < d.n; i++) process.send({ kin: 'progress', id: m.id, data: i });
        return reply({ kin: 'result', id: m.id, data: 'done' });
      case 'order':
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        return reply({ kin: 'result', id: m.id, data: { i: d.i, id: m.id, overlap: running > 1 } });
      case 'block':
        process.send({ kin: 'progress', id: m.id, data: 'started' });
        return new Promise(() => {});
      default:
        throw new Error('unknown op ' + d.op);
    }
  } catch (err) {
    return reply({ kin: 'error', id: m.id, error: { message: err.message, stack: err.stack } });
  } finally {
    running--;
  }
}

process.on('message', (m) => {
  if (!m) return; // process.send(null) is a valid message too
  if (m.kin === 'task') chain = chain.then(() => run(m));
  if (m.kin === 'shutdown') chain = chain.then(() => process.disconnect());
});
