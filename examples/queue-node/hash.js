// A kin queue worker in Node with no library: kin's task protocol over
// Node's IPC channel. Each job's data is {"text": …, "rounds": N}; the result
// is the hex SHA-256 of the text hashed N times (CPU work that would block an
// event loop, which is why it runs in worker processes).
//
//   kin queue work hashes -c 2 -- hash.js
//   kin queue add hashes '{"text":"hello","rounds":1000}' --wait
const crypto = require('crypto');

process.on('message', (m) => {
  if (!m || m.kin !== 'task') return;
  const { text = '', rounds = 1 } = m.data || {};
  if (typeof text !== 'string' || !Number.isInteger(rounds) || rounds < 1) {
    // An error fails this attempt; the job is retried, then dead-lettered.
    process.send({ kin: 'error', id: m.id, error: { message: 'want {"text": string, "rounds": positive integer}' } });
    return;
  }
  let h = text;
  for (let i = 0; i < rounds; i++) h = crypto.createHash('sha256').update(h).digest('hex');
  process.send({ kin: 'result', id: m.id, data: { sha256: h, rounds, pid: process.pid } });
});
