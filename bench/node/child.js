'use strict';
// An unmodified Node child for kin's IPC benchmarks: it uses only
// process.on('message') and process.send(), and so runs the same under a Node
// parent (child_process.fork) and under kin.
//
//   {t:'n', n:N}   the next N messages are counted, not echoed; after the
//                  Nth the child answers {t:'done', n:N}
//   anything else  is echoed back unchanged
//
// It exits when the parent closes the channel ('disconnect').
let left = 0;
let count = 0;
process.on('message', (m) => {
  if (left > 0) {
    if (--left === 0) process.send({ t: 'done', n: count });
    return;
  }
  if (m !== null && typeof m === 'object' && m.t === 'n') {
    left = count = m.n;
    if (left === 0) process.send({ t: 'done', n: 0 });
    return;
  }
  process.send(m);
});
