// A worker thread shares the process's descriptors but must not take kin's
// socket: its listen on $PORT binds, and fails (kin holds the port). Then
// the main thread listens on it through kin. Prints "worker: <code>" and
// "main: <port>".
const { Worker, isMainThread, parentPort } = require('worker_threads');
const http = require('http');
if (isMainThread) {
  const w = new Worker(__filename);
  w.on('message', (m) => {
    console.log('worker:', m);
    const s = http.createServer().listen(process.env.PORT, () => {
      console.log('main:', s.address().port);
      process.exit(0);
    });
  });
} else {
  const s = http.createServer();
  s.on('error', (err) => { parentPort.postMessage(err.code); process.exit(0); });
  s.listen(process.env.PORT, () => { parentPort.postMessage('listening'); process.exit(0); });
}
