// A worker written with the Node helper (clients/node). Each task's data says
// what to do: {"op": "echo" | "fail" | "throw" | "bad-result" | "progress" |
// "order" | "block" | "env", …}.
const kin = require('../node'); // package.json's main: kin-worker.js

let running = 0; // tasks inside the handler now; more than 1 breaks the protocol

kin.serve(async (data, task) => {
  running++;
  try {
    switch (data.op) {
      case 'echo':
        return data.v;
      case 'fail':
        throw new Error(data.msg);
      case 'throw': // not an Error
        throw data.v;
      case 'bad-result':
        return { n: 1n }; // JSON cannot encode a BigInt
      case 'progress':
        for (let i = 0; i < data.n; i++) task.progress(i);
        return 'done';
      case 'order': {
        // Random async delays: answers still come in order, one at a time.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
        return { i: data.i, id: task.id, overlap: running > 1 };
      }
      case 'block': // tell the parent the task started, then never finish
        task.progress('started');
        await new Promise(() => setInterval(() => {}, 1000));
        return null;
      case 'env':
        return Object.keys(process.env).filter((k) => /_CHANNEL_/.test(k));
      default:
        throw new Error('unknown op ' + data.op);
    }
  } finally {
    running--;
  }
});
