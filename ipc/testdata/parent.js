// A Node parent forking a Go child with child_process.fork (or spawn with an
// 'ipc' stdio slot), exchanging messages both ways. Prints one JSON line of
// results on stdout and exits 0 when everything matched.
const { fork, spawn } = require('child_process');
const [exe, mode] = process.argv.slice(2);
const env = Object.assign({}, process.env);
let child;
if (mode === 'spawn') {
  child = spawn(exe, [], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env });
} else {
  child = fork('unused-module-path', [], { execPath: exe, execArgv: [], env });
}
const sent = [
  { hello: 'world', n: 1 },
  { s: 'café ☃ 😀' },
  { s: 'line1\nline2' },
  'str', 42, null, [1, 2, 3],
  { big: 'y'.repeat(3 << 20) },
];
const got = [];
child.on('message', (m) => {
  got.push(m);
  if (got.length === sent.length) {
    const ok = JSON.stringify(got) === JSON.stringify(sent);
    console.log(JSON.stringify({ ok, n: got.length }));
    child.disconnect();
  }
});
child.on('exit', (code, sig) => {
  if (got.length !== sent.length) {
    console.log(JSON.stringify({ ok: false, n: got.length, code, sig }));
    process.exit(1);
  }
});
for (const m of sent) child.send(m);
