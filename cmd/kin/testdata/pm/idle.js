// An app that does nothing until stopped: it prints its pid and the
// variables the tests look for, and a line for every SIGUSR2.
const v = (k) => `${k}=${process.env[k] || ''}`;
console.log(`start ${process.pid} ${v('MODE')} ${v('SHARED')} ${v('EXTRA')} ${v('KIN_APP_NAME')} ${v('KIN_INSTANCE')}`);
process.on('SIGUSR2', () => console.log(`SIGUSR2 ${process.pid}`));
setInterval(() => {}, 1 << 30);
