"""A loopback HTTP file server for the download tests: Range requests, cut connections,
responses without Content-Length."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer(BaseHTTPRequestHandler):
    """Serves `files`; paths in `no_length` are sent without Content-Length (the body
    ends when the connection closes), paths in `cut` lose the connection halfway, paths
    in `stall` send a third of what is asked and then hold the connection silently, and
    paths in `silent` never answer at all (both until the server stops)."""

    files: dict = {}
    cut: set = set()
    no_length: set = set()
    stall: set = set()
    silent: set = set()
    log: list = []
    released: threading.Event

    def do_GET(self):
        body = self.files.get(self.path)
        self.log.append((self.path, self.headers.get("Range")))
        if self.path in self.silent:
            self.released.wait(60)
            return
        if body is None:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range") and self.path not in self.no_length:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if self.path not in self.no_length:
            self.send_header("Content-Length", str(len(body) - start))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        rest = body[start:]
        if self.path in self.cut:
            self.cut.discard(self.path)
            rest = rest[: len(rest) // 2]
        if self.path in self.stall:
            self.wfile.write(rest[: max(1, len(rest) // 3)])
            self.wfile.flush()
            self.released.wait(60)
            return
        self.wfile.write(rest)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving() -> Iterator[type]:
    """A fresh FileServer class bound to 127.0.0.1 (a free port) while inside the block: set
    its `files`, `cut`, `no_length`, `stall`, `silent`; read its `log` and `url`."""
    handler = type("Handler", (FileServer,), {"files": {}, "cut": set(), "no_length": set(),
                                              "stall": set(), "silent": set(), "log": [],
                                              "released": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield handler
    finally:
        handler.released.set()
        httpd.shutdown()
        httpd.server_close()
