// A kin pool worker in Node.js, using the helper in clients/node: the
// handler gets each task's data and returns (or resolves to) the result.
//
//   kin pool -w 2 -- node examples/node-worker/worker.js < examples/tasks.jsonl
const kin = require('../../clients/node/kin-worker');
const crypto = require('crypto');

kin.serve(async (data, task) => {
  const text = JSON.stringify(data);
  return {
    sha256: crypto.createHash('sha256').update(text).digest('hex').slice(0, 16),
    bytes: Buffer.byteLength(text),
    pid: process.pid,
  };
});
