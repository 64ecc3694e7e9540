// An unmodified HTTPS server answering with its pid; the key and
// certificate files are named by $TLS_KEY and $TLS_CERT.
const https = require('https');
const fs = require('fs');
const options = { key: fs.readFileSync(process.env.TLS_KEY), cert: fs.readFileSync(process.env.TLS_CERT) };
https.createServer(options, (req, res) => res.end(String(process.pid))).listen(process.env.PORT);
