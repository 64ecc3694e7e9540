'use strict';
// kin's preload for cluster mode (Node 18–22, no dependencies). kin loads it
// into an unmodified app with NODE_OPTIONS="--require <this file>"; the app
// does not know it is there. Under kin it:
//
//  1. makes server.listen(port) (http, https, net, express… any net.Server)
//     on a port kin handed over use kin's inherited listening socket instead
//     of binding: kin describes the sockets in KIN_LISTEN (set by the Go
//     package cluster, with the systemd LISTEN_FDS convention). Listens on
//     other ports, on random ports, on handles or fds are left alone;
//  2. reports {"kin":"listening","port":P} on the IPC channel when such a
//     server listens (kin's readiness signal for a rolling reload);
//  3. drains the app when kin sends {"kin":"shutdown"} on the channel, or on
//     SIGTERM/SIGINT when the app has no handler of its own for the signal:
//     every kin server stops accepting (the socket stays open in kin and in
//     the other instances, so no connection is refused); each request in
//     flight that has not sent its headers yet, and the next request on
//     every keep-alive connection, is answered with "Connection: close" and
//     that connection closes after the response; a connection that stays
//     idle for KIN_IDLE_GRACE_MS (1000) after the drain began is closed; a
//     connection that is not HTTP (an upgraded WebSocket, a raw TCP server)
//     is left to end by itself. When no connection remains the process exits
//     with code 0 — unless the app has shutdown code of its own (a SIGTERM
//     or SIGINT handler, or an IPC 'message' listener): then the preload
//     only drains, sends {"kin":"drained"}, and the app (or kin's stop
//     signal) ends the process. After KIN_DRAIN_TIMEOUT_MS (10000) the
//     connections still open are closed.
//
// Outside kin (no KIN_LISTEN) it does nothing at all. It never keeps a
// process alive: an app with nothing left to do exits as it would without.
//
// Why not server.close() for the drain: on Node ≥ 19 http.Server#close also
// calls closeIdleConnections(), which closes idle keep-alive connections at
// once; a client may be sending a request on one at that very moment, and
// that request is lost. The idle grace avoids it.
//
// Why the signals only without an app handler: an app that handles SIGTERM
// has its own shutdown logic (closing a database, flushing a queue), and
// the preload must not race it or exit under it. Without a handler Node
// would die at once, dropping every request in flight, so draining is
// strictly better. A signal never cuts a drain short: kin's kill timeout
// (SIGKILL) and KIN_DRAIN_TIMEOUT_MS bound it.

(function kinPreload() {
  const spec = process.env.KIN_LISTEN;
  if (!spec) return;
  // A cluster worker's listen() goes through its primary, which has the
  // preload too and holds the sockets.
  const loaded = process.moduleLoadList;
  if (Array.isArray(loaded) && loaded.includes('NativeModule internal/cluster/child')) return;

  const fs = require('fs');
  const net = require('net');
  const pathModule = require('path');

  function warn(msg) {
    try { process.stderr.write(`kin preload: ${msg}\n`); } catch (_) { /* no stderr */ }
  }

  let described;
  try {
    described = JSON.parse(spec);
  } catch (err) {
    warn(`ignoring KIN_LISTEN: ${err.message}`);
    return;
  }
  if (!Array.isArray(described)) return;

  // The descriptors that really are kin's sockets: the inode check (rather
  // than LISTEN_PID) also holds in a process that inherited them through a
  // wrapper, and refuses a number that now names something else.
  const sockets = [];
  for (const e of described) {
    if (!e || !Number.isInteger(e.fd) || e.fd < 3) continue;
    if (e.network !== 'tcp' && e.network !== 'unix') continue;
    try {
      const st = fs.fstatSync(e.fd, { bigint: true });
      if (!st.isSocket() || (e.inode !== undefined && String(st.ino) !== String(e.inode))) continue;
    } catch (_) {
      continue;
    }
    sockets.push({
      fd: e.fd,
      network: e.network,
      port: e.network === 'tcp' ? Number(e.port) : undefined,
      path: e.network === 'unix' ? pathModule.resolve(String(e.address)) : undefined,
      address: e.address,
      used: false,
    });
  }
  if (sockets.length === 0) return;

  function msEnv(name, def) {
    const v = Number(process.env[name]);
    return Number.isFinite(v) && v >= 0 && process.env[name] !== '' ? v : def;
  }
  const IDLE_GRACE = msEnv('KIN_IDLE_GRACE_MS', 1000);
  const DRAIN_TIMEOUT = msEnv('KIN_DRAIN_TIMEOUT_MS', 10000);
  // The socket's backlog is kin's (somaxconn): listen() on an inherited
  // socket sets it again, and Linux caps the value at somaxconn.
  const BACKLOG = 0x7fffffff;

  // ---- 1. listen() ----

  const origListen = net.Server.prototype.listen;

  function toNumber(x) { return (x = Number(x)) >= 0 ? x : false; }
  function isPipeName(s) { return typeof s === 'string' && toNumber(s) === false; }

  // match finds the kin socket a listen() call asks for, reading its
  // arguments as Node's normalizeArgs does: (port[, host][, backlog][, cb]),
  // (path[, backlog][, cb]), (options[, cb]); or returns null.
  function match(args) {
    if (args.length === 0) return null;
    const last = args[args.length - 1];
    const cb = typeof last === 'function' ? last : undefined;
    const a0 = args[0];
    let port;
    let path;
    let signal;
    if (typeof a0 === 'object' && a0 !== null) {
      if (a0._handle || a0.handle || (typeof a0.fd === 'number' && a0.fd >= 0)) return null;
      signal = a0.signal;
      if (typeof a0.port === 'number' || typeof a0.port === 'string') port = a0.port;
      else if (isPipeName(a0.path)) path = a0.path;
      else return null;
    } else if (isPipeName(a0)) {
      path = a0;
    } else if (typeof a0 === 'number' || typeof a0 === 'string') {
      port = a0;
    } else {
      return null;
    }
    let sock;
    if (port !== undefined) {
      if (typeof port === 'string' && port.trim() === '') return null;
      const p = Number(port);
      if (!Number.isInteger(p) || p <= 0 || p > 65535) return null;
      sock = sockets.find((s) => !s.used && s.network === 'tcp' && s.port === p);
    } else {
      const want = pathModule.resolve(path);
      sock = sockets.find((s) => !s.used && s.network === 'unix' && s.path === want);
    }
    // A worker thread shares the process's descriptors but not this
    // bookkeeping: only the main thread takes kin's sockets.
    return sock && isMainThread() ? { sock, cb, signal } : null;
  }

  let mainThread;
  function isMainThread() {
    if (mainThread === undefined) mainThread = require('worker_threads').isMainThread;
    return mainThread;
  }

  function listen(...args) {
    const m = this._handle ? null : match(args); // a listening server: let Node throw
    if (!m) return Reflect.apply(origListen, this, args);
    // A socket serves one server: Node closes the descriptor when that
    // server closes, so a later listen on the port binds (and fails with
    // EADDRINUSE, as it would without kin).
    m.sock.used = true;
    adopt(this, m.sock);
    // A server on a descriptor has no path to report: give address() one.
    if (m.sock.network === 'unix') this._pipeName = m.sock.address;
    const opts = { fd: m.sock.fd };
    if (m.signal !== undefined) opts.signal = m.signal;
    return m.cb ? Reflect.apply(origListen, this, [opts, BACKLOG, m.cb])
      : Reflect.apply(origListen, this, [opts, BACKLOG]);
  }
  net.Server.prototype.listen = listen;

  // ---- 2. bookkeeping for servers on kin sockets ----

  const servers = new Set(); // of server state, see adopt
  const connState = new WeakMap(); // socket → { inflight, last, bytes }
  let controlled = false;

  function now() { return Date.now(); }

  function isHTTP(server) {
    return typeof server.closeIdleConnections === 'function' || 'maxHeadersCount' in server;
  }
  function isTLS(server) {
    return typeof server.addContext === 'function' && typeof server.setSecureContext === 'function';
  }

  function adopt(server, sock) {
    const st = {
      server,
      sock,
      http: isHTTP(server),
      conns: new Set(), // connections as the HTTP layer sees them (TLS sockets for https)
      raw: new Set(), // TCP connections, TLS handshakes included
      listened: false,
      draining: false,
      closed: false,
    };
    servers.add(st);
    server.on('connection', (c) => {
      st.raw.add(c);
      c.once('close', () => st.raw.delete(c));
      if (!isTLS(server)) track(st, c);
    });
    if (isTLS(server)) server.on('secureConnection', (c) => track(st, c));
    // Requests are followed only once a drain begins (startDrain): until
    // then a listener per request would cost every request 1–2 µs.
    server.once('listening', () => {
      st.listened = true;
      installControl();
      report({ kin: 'listening', port: sock.port, address: sock.address, fd: sock.fd });
      if (draining) startDrain(st);
    });
    server.on('close', () => {
      st.closed = true;
      servers.delete(st);
      maybeFinished();
    });
  }

  function track(st, c) {
    st.conns.add(c);
    connState.set(c, { inflight: 0, last: now(), bytes: c.bytesRead });
    c.once('close', () => st.conns.delete(c));
  }

  function onRequest(st, req, res) {
    const c = req.socket;
    const cs = c && connState.get(c);
    if (cs) {
      cs.inflight++;
      cs.last = now();
    }
    res.once('close', () => {
      if (cs) {
        cs.inflight--;
        cs.last = now();
        cs.bytes = c.bytesRead;
      }
    });
    if (draining) closeAfter(res);
  }

  // closeAfter makes res the last response on its connection, if its
  // headers are not out yet. (One already sent with keep-alive is left
  // alone: the client may reuse the connection at once, so closing it now
  // would race; its next request gets "Connection: close" instead.)
  function closeAfter(res) {
    if (!res.headersSent) res.shouldKeepAlive = false;
  }

  function report(msg) {
    if (typeof process.send !== 'function' || !process.connected) return;
    try {
      process.send(msg, () => {}); // a callback: a failed send must not throw
    } catch (_) { /* unserialisable: cannot happen for these messages */ }
  }

  // ---- 3. the drain ----

  let draining = false;
  let drainStart = 0;
  let finished = false;
  let exitWhenDrained = false;
  let ticker = null;
  let deadline = null;

  function onMessage(m) {
    if (m && typeof m === 'object' && m.kin === 'shutdown') drain(false);
  }

  function onSignal(signal) {
    // Another listener means the app handles the signal itself.
    if (process.listenerCount(signal) > 1) return;
    drain(true);
  }

  // installControl listens for kin's shutdown message and for signals, once
  // a kin server listens. Neither keeps the process alive.
  function installControl() {
    if (controlled) return;
    controlled = true;
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (typeof process.send === 'function' && process.channel) {
      process.on('message', onMessage);
      // A 'message' listener refs the channel, which would keep an app that
      // has nothing left to do alive. Undo our count only, so that the
      // app's own listeners still ref it as usual; unref() would turn that
      // counting off for good.
      const ch = process.channel;
      if (typeof ch.unrefCounted === 'function') ch.unrefCounted();
      else if (typeof ch.unref === 'function') ch.unref();
    }
  }

  // appHandlesShutdown reports whether the app has shutdown code of its own.
  function appHandlesShutdown() {
    const mine = controlled ? 1 : 0;
    return process.listenerCount('SIGTERM') > mine || process.listenerCount('SIGINT') > mine ||
      process.listenerCount('message') > (process.listeners('message').includes(onMessage) ? 1 : 0);
  }

  function drain(bySignal) {
    if (bySignal) exitWhenDrained = true;
    if (finished) {
      // Drained already, and left running for the app: a stop signal
      // without an app handler ends it now.
      if (exitWhenDrained) process.exit();
      return;
    }
    if (draining) return;
    draining = true;
    drainStart = now();
    if (!bySignal) exitWhenDrained = !appHandlesShutdown();
    for (const st of servers) {
      if (st.server.listening) startDrain(st);
      else if (st.listened && !st.server._handle && !st.server._connections) st.closed = true;
      // (A server that listened and has no handle left and no connection
      // is closed, or had its handle taken by Node's cluster module, whose
      // round-robin primary accepts for its workers: nothing to drain.)
    }
    ticker = setInterval(tick, Math.max(10, Math.min(100, IDLE_GRACE / 4)));
    ticker.unref();
    deadline = setTimeout(forceClose, DRAIN_TIMEOUT);
    deadline.unref();
    maybeFinished();
  }

  function startDrain(st) {
    if (st.draining) return;
    st.draining = true;
    if (st.http) {
      // The response each connection is writing now is its last, if its
      // headers are not out yet; from now on every request is followed,
      // first in line, before the app's handler can send headers.
      for (const c of st.conns) {
        const cs = connState.get(c);
        if (cs) cs.bytes = c.bytesRead;
        if (c._httpMessage) closeAfter(c._httpMessage);
      }
      st.server.prependListener('request', (req, res) => onRequest(st, req, res));
    }
    // net.Server's close, not http.Server's: stop accepting, keep every
    // connection; the callback runs once they have all closed.
    Reflect.apply(net.Server.prototype.close, st.server, [() => {}]);
  }

  // tick closes the HTTP connections that have stayed idle for the grace
  // period since the drain began.
  function tick() {
    const t = now();
    for (const st of servers) {
      if (!st.http) continue;
      for (const c of st.conns) {
        const cs = connState.get(c);
        if (c.destroyed || !cs) continue;
        if (c.parser === null) continue; // upgraded: not HTTP any more
        const msg = c._httpMessage;
        if (cs.inflight > 0 || (msg && !msg.finished)) {
          cs.last = t;
          continue;
        }
        const bytes = c.bytesRead;
        if (bytes !== cs.bytes) { // a request is arriving
          cs.bytes = bytes;
          cs.last = t;
          continue;
        }
        if (t - Math.max(cs.last, drainStart) >= IDLE_GRACE) c.destroy();
      }
    }
  }

  // forceClose ends a drain that took too long: the connections left are
  // closed, and the drain is over whether or not every server said so.
  function forceClose() {
    for (const st of servers) {
      for (const c of st.conns) c.destroy();
      for (const c of st.raw) c.destroy();
    }
    setImmediate(finish); // after the 'close' events that may finish it first
  }

  function maybeFinished() {
    if (!draining || finished) return;
    for (const st of servers) {
      // (A listen that failed leaves no handle and never listened; the app
      // got its 'error' event.)
      if (!st.closed && (st.listened || st.server._handle)) return;
    }
    finish();
  }

  function finish() {
    if (finished) return;
    finished = true;
    clearInterval(ticker);
    clearTimeout(deadline);
    if (exitWhenDrained || !appHandlesShutdown()) {
      process.exit();
    } else {
      report({ kin: 'drained' });
    }
  }
})();
