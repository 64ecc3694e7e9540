// An HTTP server without shutdown code of its own. GET /slow?ms=N answers
// after N ms; anything else answers at once. Every body is the pid.
// With "sigterm-handler" it handles SIGTERM itself by exiting with code 7;
// with "message-listener" it listens for IPC messages (and ignores them).
const http = require('http');
http.createServer((req, res) => {
  const m = /^\/slow\?ms=(\d+)/.exec(req.url);
  if (m) setTimeout(() => res.end(String(process.pid)), Number(m[1]));
  else res.end(String(process.pid));
}).listen(process.env.PORT);
if (process.argv.includes('sigterm-handler')) process.on('SIGTERM', () => process.exit(7));
if (process.argv.includes('message-listener')) process.on('message', () => {});
