// A Node parent that forks a Go worker (argv[2], selected with KIN_WORKER)
// with child_process.fork or spawn(…, {stdio: [..., 'ipc']}), runs tasks on
// it over Node's own IPC channel, then asks it to shut down. Prints one JSON
// line describing what happened.
const { fork, spawn } = require('child_process');
const [exe, mode] = process.argv.slice(2);
const env = Object.assign({}, process.env, { KIN_WORKER: 'double' });
const child = mode === 'spawn'
  ? spawn(exe, [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env })
  : fork('ignored', [], { execPath: exe, execArgv: [], env });

const report = { ready: false, results: {}, progress: [], errors: {} };
const tasks = [1, 21, 'é\n😀', 'fail', 1e6];
child.on('message', (m) => {
  if (m.kin === 'ready') {
    report.ready = true;
    tasks.forEach((data, i) => child.send({ kin: 'task', id: i + 1, data }));
  } else if (m.kin === 'progress') {
    report.progress.push(m.data);
  } else if (m.kin === 'result') {
    report.results[m.id] = m.data;
  } else if (m.kin === 'error') {
    report.errors[m.id] = m.error.message;
  }
  if (Object.keys(report.results).length + Object.keys(report.errors).length === tasks.length) {
    child.send({ kin: 'shutdown' });
  }
});
child.on('exit', (code, signal) => {
  report.code = code;
  report.signal = signal;
  console.log(JSON.stringify(report));
});
