// Package ipc is kin's message channel between a parent and a child process:
// an AF_UNIX stream socketpair carrying messages in one of two codecs.
//
//   - JSON: one JSON document per line, byte-compatible with the channel of
//     Node.js's child_process.fork, so an unmodified Node program using
//     process.send and process.on('message') is a peer, and any language can
//     speak it in a few lines. It is the default.
//   - Frame: length-prefixed binary frames with a kind and a request id, for
//     Go↔Go and any peer that wants speed and raw bytes.
//
// On top of either codec a Channel offers request/reply with correlation ids
// (the task protocol of kin's worker pools, see docs/protocol.md), passing of
// file descriptors with SCM_RIGHTS (Node's NODE_HANDLE envelope in the JSON
// codec), a maximum message size enforced while reading, and backpressure:
// Send blocks when the peer does not read, and the channel stops reading when
// received messages are not consumed. Nothing is queued without bound.
//
// A malformed or oversized message closes that channel with an error that says
// what was wrong; it never takes down the process.
package ipc
