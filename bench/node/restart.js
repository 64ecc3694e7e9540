'use strict';
// The crashing app of the process-manager benchmark's restart figure. Its
// first act is to append "start <ms>" to $KIN_BENCH_STAMPS. Then, once the
// file $KIN_BENCH_TURN appears (at once when that is unset), it removes it,
// appends "exit <ms>" and exits with code 1. <ms> is the wall clock
// (CLOCK_REALTIME) in milliseconds with microseconds, so the Go side can
// subtract one process's exit from the next one's start.
const fs = require('fs');
const file = process.env.KIN_BENCH_STAMPS;
const turn = process.env.KIN_BENCH_TURN;
const now = () => (performance.timeOrigin + performance.now()).toFixed(3);
fs.appendFileSync(file, `start ${now()}\n`);

function exit() {
  fs.appendFileSync(file, `exit ${now()}\n`);
  process.exit(1);
}

if (!turn) {
  exit();
} else {
  setInterval(() => {
    try {
      fs.unlinkSync(turn);
    } catch (_) {
      return; // not our turn yet
    }
    exit();
  }, 5);
}
