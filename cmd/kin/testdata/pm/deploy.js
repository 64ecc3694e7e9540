// An HTTP server that answers with its pid, unless the file named by
// $KINTEST_DEPLOY says this deploy is bad: "crash" exits 3 at start, "hang"
// never listens.
const fs = require('fs');
let deploy = '';
try { deploy = fs.readFileSync(process.env.KINTEST_DEPLOY, 'utf8').trim(); } catch (_) { /* a good deploy */ }
if (deploy === 'crash') {
  console.error('bad deploy: crashing');
  process.exit(3);
}
if (deploy === 'hang') {
  setInterval(() => {}, 1 << 30);
} else {
  require('http').createServer((req, res) => res.end(String(process.pid))).listen(process.env.PORT);
}
