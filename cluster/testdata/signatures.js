// Listens with every form of listen() on the ports in $PORTS (a comma list)
// and the unix socket $SOCK_PATH, then on two ports kin did not hand over
// ($FREE_PORT and 0). Prints one JSON line per server, in order:
// {"i":…, "port":…, "path":…} or {"i":…, "error":…}. Kin holds the ports, so a
// listen that bound instead of using kin's socket would fail EADDRINUSE.
const http = require('http');
const net = require('net');
const ports = process.env.PORTS.split(',');
const forms = [
  (s, p, cb) => s.listen(Number(p), cb),
  (s, p, cb) => s.listen(p, cb), // a string
  (s, p, cb) => s.listen(Number(p), '127.0.0.1', cb),
  (s, p, cb) => s.listen(Number(p), '127.0.0.1', 10, cb),
  (s, p, cb) => s.listen({ port: Number(p), host: 'localhost' }, cb),
  (s, p, cb) => { s.once('listening', cb); s.listen({ port: p, backlog: 5 }); },
  (s, p, cb) => { s.once('listening', cb); s.listen(Number(p)); },
];
const results = [];
let pending = 0;
function run(i, server, listenFn) {
  pending++;
  server.once('error', (err) => { results[i] = { i, error: err.code || err.message }; done(); });
  listenFn(server, () => {
    const a = server.address();
    results[i] = typeof a === 'string' ? { i, path: a } : { i, port: a.port };
    done();
  });
}
function done() {
  if (--pending > 0) return;
  for (const r of results) console.log(JSON.stringify(r));
  process.exit(0);
}
forms.forEach((f, i) => run(i, (i % 2 ? net : http).createServer(() => {}), (s, cb) => f(s, ports[i], cb)));
const n = forms.length;
run(n, http.createServer(), (s, cb) => s.listen(process.env.SOCK_PATH, cb));
run(n + 1, net.createServer(), (s, cb) => s.listen(Number(process.env.FREE_PORT), '127.0.0.1', cb));
run(n + 2, net.createServer(), (s, cb) => s.listen(0, '127.0.0.1', cb));
