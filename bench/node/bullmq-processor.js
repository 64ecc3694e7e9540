// BullMQ's sandboxed processor for the queue benchmarks (bullmq.js): the
// no-op job, run in BullMQ's child processes.
module.exports = async () => 1;
