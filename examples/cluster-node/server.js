// An unmodified Node HTTP server: under kin's cluster mode (kin start
// server.js -i 2 --port 3000) every instance serves the same port, through
// kin's preload; alone it binds $PORT or 3000 as usual.
const http = require('http');
http.createServer((req, res) => res.end(String(process.pid))).listen(process.env.PORT || 3000);
