// An app that talks on kin's bus through its IPC channel, with no library:
// it subscribes to greet.*, and answers each message on "greeted".
//
//   kin start greeter.js --wait-ready
//   kin bus pub greet.web '{"name":"Ada"}'     (kin bus sub greeted prints the answer)
process.send({ kin: 'subscribe', subject: 'greet.*' });
process.send('ready'); // after the subscribe, on the same channel: kin start --wait-ready returns once it is in place
process.on('message', (m) => {
  if (m && m.kin === 'message') {
    process.send({ kin: 'publish', subject: 'greeted', data: { hello: m.data && m.data.name, via: m.subject, pid: process.pid } });
  } else if (m && m.kin === 'bus-error') {
    console.error('bus error:', m.error); // a bad subject, say: the app keeps running
  }
});
