// An app that runs Node's cluster module itself: the primary forks two
// workers, which serve HTTP on $PORT through the primary (round-robin).
const cluster = require('cluster');
const http = require('http');
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
} else {
  http.createServer((req, res) => res.end(String(process.pid))).listen(process.env.PORT);
}
