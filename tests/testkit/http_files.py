"""A loopback HTTP file server for the download tests: Range requests, cut connections,
responses without Content-Length, stalls, slow answers and error statuses."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer(BaseHTTPRequestHandler):
    """Serves `files`; paths in `no_length` are sent without Content-Length (the body
    ends when the connection closes), paths in `cut` lose the connection halfway, paths
    in `stall` send a third of what is asked and then hold the connection silently, and
    paths in `silent` never answer at all (both until the server stops). Paths in
    `always_cut` lose the connection halfway through every answer, `delay` holds a path's
    answer for its seconds, `trickle` sends a path's body in 1 kB pieces its seconds apart,
    and `status` answers a path with that HTTP error. `times` holds when each request came
    (time.monotonic: the tests' own clock)."""

    files: dict = {}
    cut: set = set()
    always_cut: set = set()
    no_length: set = set()
    stall: set = set()
    silent: set = set()
    delay: dict = {}
    trickle: dict = {}
    status: dict = {}
    log: list = []
    times: list = []
    released: threading.Event

    def do_GET(self):
        body = self.files.get(self.path)
        self.times.append(time.monotonic())
        self.log.append((self.path, self.headers.get("Range")))
        if self.path in self.silent:
            self.released.wait(60)
            return
        if self.path in self.delay and self.released.wait(self.delay[self.path]):
            return
        if self.path in self.status:
            self.send_error(self.status[self.path])
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
        if self.path in self.cut or self.path in self.always_cut:
            self.cut.discard(self.path)
            rest = rest[: len(rest) // 2]
        if self.path in self.stall:
            self.wfile.write(rest[: max(1, len(rest) // 3)])
            self.wfile.flush()
            self.released.wait(60)
            return
        if self.path in self.trickle:
            for at in range(0, len(rest), 1000):
                if self.released.wait(self.trickle[self.path]):
                    return
                self.wfile.write(rest[at:at + 1000])
                self.wfile.flush()
            rest = b""
        self.wfile.write(rest)
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving() -> Iterator[type]:
    """A fresh FileServer class bound to 127.0.0.1 (a free port) while inside the block: set
    its `files`, `cut`, `always_cut`, `no_length`, `stall`, `silent`, `delay`, `trickle`,
    `status`; read its `log`, `times` and `url`."""
    handler = type("Handler", (FileServer,), {
        "files": {}, "cut": set(), "always_cut": set(), "no_length": set(), "stall": set(),
        "silent": set(), "delay": {}, "trickle": {}, "status": {}, "log": [], "times": [],
        "released": threading.Event()})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # a short poll: shutdown() waits up to one interval, at the end of every test
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield handler
    finally:
        handler.released.set()
        httpd.shutdown()
        httpd.server_close()
