#!/usr/bin/env python3
"""An HTTP server that answers with its pid, standard library only.

Under kin's cluster mode it serves on the socket kin bound and handed over
the systemd way (LISTEN_FDS, LISTEN_PID: the socket is fd 3), so that every
instance shares one port; alone it binds $PORT (default 8000).
"""
import http.server
import os
import socket


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format, *args):
        pass


def inherited_socket():
    """Returns the listening socket passed as fd 3, or None (sd_listen_fds)."""
    pid, fds = os.environ.get("LISTEN_PID"), os.environ.get("LISTEN_FDS")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children
    if pid != str(os.getpid()) or not fds or int(fds) < 1:
        return None
    # socket.socket(fileno=...) finds the family (IPv4, IPv6, unix) itself.
    # Never call listen() on it again: that would shrink kin's backlog.
    return socket.socket(fileno=3)


def main():
    sock = inherited_socket()
    if sock is None:
        server = http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8000"))), Handler)
    else:
        server = http.server.ThreadingHTTPServer(("", 0), Handler, bind_and_activate=False)
        server.socket.close()  # the unbound socket it made
        server.socket = sock
    server.serve_forever()


if __name__ == "__main__":
    main()
