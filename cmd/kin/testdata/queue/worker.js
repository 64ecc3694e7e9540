// A queue worker for the tests, with no client library: kin's task protocol
// over Node's IPC channel. {"n":N} → {"double":2N}; {"fail":true} fails the
// attempt; {"sleep":MS} takes that long; a job's "tag" is appended to
// $DONE_FILE when it completes (to count each job's completions).
const fs = require('fs');
process.on('message', (m) => {
  if (!m || m.kin !== 'task') return;
  const d = m.data || {};
  const finish = () => {
    if (d.fail) {
      process.send({ kin: 'error', id: m.id, error: { message: 'asked to fail' } });
      return;
    }
    if (process.env.DONE_FILE && d.tag !== undefined) fs.appendFileSync(process.env.DONE_FILE, d.tag + '\n');
    process.send({ kin: 'result', id: m.id, data: { double: (d.n || 0) * 2 } });
  };
  if (d.sleep) setTimeout(finish, d.sleep);
  else finish();
});
