// Listens on kin's port, then closes the server: with nothing left to do
// the process must exit, though the preload listens for kin's messages.
// With "own-listener" it adds a 'message' listener of its own, which must
// keep it alive as usual: it answers {ping} with {pong} and exits when the
// channel closes.
const http = require('http');
const server = http.createServer((req, res) => res.end('x'));
server.listen(process.env.PORT, () => server.close());
if (process.argv[2] === 'own-listener') {
  process.on('message', (m) => {
    if (m && m.ping) process.send({ pong: m.ping });
  });
}
