// A Node HTTP server with shutdown code of its own, as apps holding a
// database pool have: on SIGTERM it takes 1.5 s to clean up, prints
// "cleaned up" and exits 0. With KINTEST_LISTEN=no it never listens, as an
// app stuck at start would.
const pool = setInterval(() => {}, 1000);
process.on('SIGTERM', () => {
  console.log(`SIGTERM ${process.pid}`);
  setTimeout(() => {
    clearInterval(pool);
    console.log(`cleaned up ${process.pid}`);
    process.exit(0);
  }, 1500);
});
if (process.env.KINTEST_LISTEN !== 'no') {
  require('http').createServer((req, res) => res.end(String(process.pid))).listen(process.env.PORT);
}
