"""kin_worker: the worker side of kin's task protocol for Python (3.8+, stdlib only).

A process started by kin (a pool, ``kin pool``, ``proc.Fork``) or forked by
Node's ``child_process.fork`` inherits a channel to its parent. ``serve`` finds
it, tells the parent it is ready, and calls ``handler(data, task)`` for every
task, one at a time and in the order the tasks arrived::

    import kin_worker

    def handle(data, task):
        task.progress({"step": 1})          # optional, while the task runs
        return {"sum": data["a"] + data["b"]}  # any JSON-serialisable value

    kin_worker.serve(handle)

An exception raised by the handler becomes the task's error (its message and
traceback); the worker goes on with the next task. ``serve`` returns when the
parent asks for shutdown (after the tasks received before it are answered) or
closes the channel, so a script that ends with ``serve(...)`` then exits 0.

Only kin's JSON codec is spoken: one compact JSON document per line, the
format of Node's IPC channel. The protocol is written down in
docs/protocol.md of https://github.com/kinproc/kin.
"""

import array
import json
import os
import socket
import threading
import traceback

__all__ = ["serve", "Task", "NoChannelError"]

_ENV = ("KIN_CHANNEL_FD", "KIN_CHANNEL_CODEC", "NODE_CHANNEL_FD", "NODE_CHANNEL_SERIALIZATION_MODE")
_READ_SIZE = 256 << 10
_MAX_FDS = 253  # Linux's SCM_MAX_FD
_ACK = b'{"cmd":"NODE_HANDLE_ACK"}\n'
_NACK = b'{"cmd":"NODE_HANDLE_NACK"}\n'


class NoChannelError(RuntimeError):
    """Raised by serve when this process was not started with a channel."""


class _ParentGone(Exception):
    """The channel broke while writing: the parent closed it or died."""


class Task:
    """The task being run: ``id`` is its correlation id on the channel."""

    __slots__ = ("id", "_channel", "_finished")

    def __init__(self, id, channel):
        self.id = id
        self._channel = channel
        self._finished = False

    def progress(self, value):
        """Send a progress report (any JSON value) for this task; the task
        goes on. Ignored once the task has finished."""
        if not self._finished:
            self._channel.send({"kin": "progress", "id": self.id, "data": value})


def _encode(obj):
    # Compact, one line, real UTF-8; NaN and Infinity are not JSON and would
    # break the peer's parser, so they are refused here.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode() + b"\n"


def _describe(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class _Channel:
    """One end of the JSON-lines channel: blocking reads and writes."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()  # one writer at a time (progress may come from threads)
        self.buf = bytearray()
        self.fds = []  # received descriptors not yet given to a NODE_HANDLE

    def send(self, obj):
        line = _encode(obj)  # raises, writing nothing, for values JSON cannot encode
        self.write(line)

    def write(self, line):
        with self.lock:
            try:
                self.sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                raise _ParentGone() from None

    def messages(self):
        """Yield every decoded message until the parent closes the channel."""
        start = scanned = 0
        while True:
            i = self.buf.find(b"\n", scanned)
            if i < 0:
                del self.buf[:start]
                start, scanned = 0, len(self.buf)
                if not self._read():
                    return  # EOF: a partial last line is dropped, as Node does
                continue
            line = bytes(self.buf[start:i]).strip(b" \t\r")
            start = scanned = i + 1
            if not line:
                continue  # kin never sends blank lines; tolerate them
            try:
                msg = json.loads(line.decode("utf-8", "replace"))
            except ValueError as e:
                raise ValueError("kin_worker: malformed message from the parent: %r: %s" % (line[:60], e)) from None
            msg = self._unwrap_handle(msg)
            if msg is not None:
                yield msg

    def _read(self):
        try:
            data, anc, _, _ = self.sock.recvmsg(
                _READ_SIZE, socket.CMSG_SPACE(_MAX_FDS * 4), getattr(socket, "MSG_CMSG_CLOEXEC", 0))
        except ConnectionResetError:
            return False  # the parent closed with data unread: the same as EOF
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[: len(cdata) - len(cdata) % fds.itemsize])
                self.fds.extend(fds)
        self.buf += data
        return len(data) > 0 or len(anc) > 0

    def _unwrap_handle(self, msg):
        # A Node parent sending a handle (process.send(msg, handle)) waits for
        # exactly one ACK, or NACK when no descriptor came, before it sends
        # anything else. This helper has no use for handles: it closes the
        # descriptor and delivers the message.
        if not (isinstance(msg, dict) and msg.get("cmd") == "NODE_HANDLE"):
            return msg
        if not self.fds:
            self.write(_NACK)
            return None  # Node drops such a message too
        os.close(self.fds.pop(0))
        self.write(_ACK)
        while isinstance(msg, dict) and msg.get("cmd") == "NODE_HANDLE":
            msg = msg.get("msg")  # Node double-wraps retransmissions
        return msg

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.sock.close()


def _open_channel():
    """Return the inherited channel socket, removing its variables from the
    environment and marking it close-on-exec so that children do not inherit
    it."""
    fd, codec, name = os.environ.get("KIN_CHANNEL_FD", ""), os.environ.get("KIN_CHANNEL_CODEC", ""), "KIN_CHANNEL_FD"
    if not fd:
        fd, codec, name = os.environ.get("NODE_CHANNEL_FD", ""), os.environ.get("NODE_CHANNEL_SERIALIZATION_MODE", ""), "NODE_CHANNEL_FD"
    for k in _ENV:
        os.environ.pop(k, None)  # also unsets it for child processes
    if not fd:
        raise NoChannelError(
            "kin_worker: no channel: neither KIN_CHANNEL_FD nor NODE_CHANNEL_FD is set "
            "(start this program with kin, or with child_process.fork from Node)")
    if (codec or "json") != "json":
        raise ValueError(
            "kin_worker: the parent chose the %r codec, but this helper speaks only 'json': "
            "start the worker with the json codec (kin's default; ipc.Config{Codec: ipc.JSON}, "
            "or Node's serialization: 'json')" % codec)
    try:
        n = int(fd)
        if n < 0:
            raise ValueError
    except ValueError:
        raise ValueError("kin_worker: %s=%r is not a file descriptor number" % (name, fd)) from None
    try:
        os.set_inheritable(n, False)
        sock = socket.socket(fileno=n)
    except OSError as e:
        raise OSError("kin_worker: %s=%d is not a usable socket: %s" % (name, n, e)) from None
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise OSError("kin_worker: %s=%d is not an AF_UNIX stream socket" % (name, n))
    sock.settimeout(None)  # blocking
    return sock


def serve(handler):
    """Serve tasks from the parent with handler(data, task) until the parent
    asks for shutdown or closes the channel, then close the channel and return.

    data is the task's JSON payload decoded (None when absent); the return
    value, which must be JSON-serialisable, is the task's result. Raises
    NoChannelError when the process has no channel.
    """
    ch = _Channel(_open_channel())
    try:
        ch.send({"kin": "ready"})
        for msg in ch.messages():
            if not isinstance(msg, dict):
                continue
            kin = msg.get("kin")
            if kin == "shutdown":
                return  # every earlier task is answered; sendall has written it all
            if kin == "task":
                _run(ch, handler, msg)
    except _ParentGone:
        return  # the parent is gone: nobody is left to answer
    finally:
        ch.close()


def _run(ch, handler, msg):
    task = Task(msg.get("id"), ch)
    try:
        reply = {"kin": "result", "id": task.id, "data": handler(msg.get("data"), task)}
    except _ParentGone:
        raise  # from task.progress: not the task's error, the channel's
    except Exception as e:
        reply = {"kin": "error", "id": task.id, "error": {"message": _describe(e), "stack": traceback.format_exc()}}
    task._finished = True
    try:
        line = _encode(reply)
    except (TypeError, ValueError) as e:  # a result JSON cannot encode
        line = _encode({"kin": "error", "id": task.id, "error": {
            "message": "result is not JSON-serialisable: " + _describe(e), "stack": traceback.format_exc()}})
    ch.write(line)
