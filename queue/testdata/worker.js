// A kin pool worker for the queue's tests: data.op chooses what a job does.
const kin = require('../../clients/node/kin-worker');
const fs = require('fs');

const hog = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

kin.serve(async (data, task) => {
  const op = (data && data.op) || 'echo';
  switch (op) {
    case 'echo':
      return { n: data && data.n, pid: process.pid };
    case 'sleep':
      await sleep(data.ms);
      return { n: data.n, pid: process.pid };
    case 'progress':
      task.progress(1);
      task.progress(2);
      return 'done';
    case 'fail':
      throw new Error(data.message || 'failed on purpose');
    case 'crash':
      process.exit(3);
      break;
    case 'crash-once': {
      // Crashes the first time, succeeds once the marker file exists.
      if (!fs.existsSync(data.marker)) {
        fs.writeFileSync(data.marker, 'x');
        process.exit(3);
      }
      return 'recovered';
    }
    case 'loop':
      for (;;) {} // never answers
    case 'alloc': {
      // Holds data.mb MiB and keeps going, long enough to be sampled.
      for (let i = 0; i < data.mb; i++) {
        const b = Buffer.alloc(1 << 20, 1);
        hog.push(b);
      }
      await sleep(data.hold || 5000);
      return hog.length;
    }
    default:
      throw new Error('unknown op ' + op);
  }
});
