// Does nothing for a moment, then has nothing left to do: it must exit even
// with kin's preload loaded and an IPC channel open.
setTimeout(() => {}, 10);
