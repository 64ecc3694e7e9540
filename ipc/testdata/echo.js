// An unmodified Node child: it only uses process.on('message') and
// process.send(). It echoes every message; a handle it receives is used as
// described by the message.
const net = require('net');
process.on('message', (m, handle) => {
  if (m && m.op === 'serve' && handle) {
    // A listening socket from the Go parent: answer every connection.
    handle.on('connection', (c) => c.end('hi from node ' + process.pid + '\n'));
    process.send({ op: 'serving', port: handle.address() && handle.address().port });
    return;
  }
  if (m && m.op === 'listen') {
    // Send a listening socket of our own to the Go parent, then a plain
    // message, which Node holds back until the parent ACKs the handle.
    const srv = net.createServer((c) => c.end('hi from node server\n'));
    srv.listen(0, '127.0.0.1', () => {
      process.send({ op: 'server', port: srv.address().port }, srv);
      process.send({ op: 'after-handle' });
    });
    return;
  }
  if (m && m.op === 'exit') {
    process.exit(m.code || 0);
  }
  process.send(m);
});
// The servers above keep the event loop alive; leave with the parent.
process.on('disconnect', () => process.exit(0));
