'use strict';
// The unmodified hello-world HTTP app of the process-manager benchmark, as
// users write it: kin and PM2 run this very file in cluster mode.
require('http').createServer((q, s) => s.end('hello')).listen(process.env.PORT || 3000);
