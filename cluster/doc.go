// Package cluster runs many processes behind one listening socket, the way
// Node's cluster module does, for apps in any language and with the parent
// never on the data path.
//
// The parent (kin's supervisor, or any Go program) binds the socket itself
// with Bind and hands it to every instance it starts with Activate, using
// systemd's socket-activation convention: the socket is inherited as fd 3
// (and the next ones for more sockets), announced by LISTEN_FDS,
// LISTEN_FDNAMES and LISTEN_PID. The kernel spreads incoming connections
// over the instances that accept on it. Because the parent holds the socket
// for as long as the app exists, a rolling reload (start a new instance,
// wait until it listens, ask the old one to drain) never closes it, and no
// connection is refused.
//
// What each kind of app does with the inherited socket:
//
//   - Go: Listen (instead of net.Listen) returns the inherited listener when
//     there is one and binds as usual otherwise; Listeners returns them all.
//   - Node.js: nothing. The preload written by WriteNodePreload and loaded
//     through NODE_OPTIONS (UseNodePreload) makes server.listen(port) of an
//     unmodified app use the inherited socket, reports {"kin":"listening"}
//     over the IPC channel, and drains the app gracefully on
//     {"kin":"shutdown"} (see clients/node/preload.js).
//   - Python, Rust and others: the systemd convention (gunicorn and uvicorn
//     take --fd 3; with the standard library, socket.socket(fileno=3)).
//
// LISTEN_PID must equal the child's own pid, which os/exec cannot know before
// exec; Activate runs the program through a one-line /bin/sh trampoline that
// exports its own pid and then execs the program under the same pid, so
// signals, exit status and the process group are the program's.
package cluster
