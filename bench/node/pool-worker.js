// A pool worker for the pool benchmarks. It answers kin's task protocol
// ({kin:'task'} → {kin:'result'}) and the plain pool protocol of
// pool-parent.js ({t:'task'} → {t:'done'}) with the same work, using nothing
// but process.on('message') and process.send().
//
// Work: a number x → x + 1 (a tiny task); {seed, rounds} → that many
// chained SHA-256 rounds (a CPU-heavy task).
const crypto = require('crypto');

function work(d) {
  if (d !== null && typeof d === 'object') {
    let h = Buffer.from(String(d.seed));
    for (let i = 0; i < d.rounds; i++) h = crypto.createHash('sha256').update(h).digest();
    return h.toString('hex').slice(0, 16);
  }
  return d + 1;
}

process.on('message', (m) => {
  if (m.kin === 'task') process.send({ kin: 'result', id: m.id, data: work(m.data) });
  else if (m.t === 'task') process.send({ t: 'done', id: m.id, r: work(m.d) });
});
