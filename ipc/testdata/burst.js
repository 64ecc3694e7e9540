// Sends N messages as fast as the channel takes them, then 'done'.
process.on('message', (m) => {
  if (m.op !== 'burst') return;
  const payload = 'x'.repeat(m.size);
  for (let i = 0; i < m.n; i++) process.send({ i, p: payload });
  process.send({ op: 'done' });
});
