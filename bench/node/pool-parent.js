// The peer of kin's pool: a plain Node child_process pool, the way Node
// programs hand work to processes. It forks `workers` copies of
// pool-worker.js, gives each one task at a time (the next when it answers),
// and reports how long `tasks` took, from the first dispatch to the last
// answer, after one untimed task per worker (so start-up is not counted).
//
// Usage: node pool-parent.js '{"workers":2,"tasks":[…]}'  →  {"ms":…}
const { fork } = require('child_process');
const path = require('path');
const { workers, tasks } = JSON.parse(process.argv[2]);

const procs = [];
for (let i = 0; i < workers; i++) procs.push(fork(path.join(__dirname, 'pool-worker.js')));

function run(list) {
  return new Promise((resolve) => {
    let next = 0, done = 0;
    const give = (w) => {
      if (next < list.length) {
        const id = next++;
        w.send({ t: 'task', id, d: list[id] });
      }
    };
    for (const w of procs) {
      w.removeAllListeners('message');
      w.on('message', () => {
        if (++done === list.length) resolve();
        else give(w);
      });
      give(w);
    }
  });
}

(async () => {
  await run(procs.map(() => tasks[0]));
  const t0 = process.hrtime.bigint();
  await run(tasks);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify({ ms }));
  for (const w of procs) w.disconnect();
})();
