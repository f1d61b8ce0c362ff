"""Readiness that flips off at T0: a file, and an HTTP endpoint for probes.

The load balancer should stop sending traffic the moment shutdown begins, not
when the app finally closes its socket. ``/ready`` turns 503 at T0, while the
app is still serving, which is what lets the pre-stop delay drain cleanly.

The HTTP server is the one thing in pyinit off the main loop: a daemon thread
(signals stay blocked there, inherited from the main thread) that only reads
``Readiness.ready``. It never touches signals or children. Each connection is
bounded in time and their number is capped, so slow clients, floods and
malformed requests cost at most a refused connection.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from pyinit.log import Log

MAX_CONNECTIONS = 32
CLIENT_TIMEOUT = 2.0
CHECK_TIMEOUT = 1.0


class Readiness:
    def __init__(self, log: Log, ready_file: str | None = None, server: Any = None) -> None:
        self.log = log
        self.ready = False
        self._file = ready_file
        self._server = server
        if server is not None:
            server.readiness = self
            threading.Thread(target=_serve, args=(server,), name="pyinit-readiness", daemon=True).start()

    def up(self) -> None:
        self.ready = True
        if self._file:
            try:
                with open(self._file, "w"):
                    pass
            except OSError as exc:  # a full or read-only disk must not take PID 1 down
                self.log.error("ready_file", f"cannot create --ready-file {self._file}: {exc.strerror}")

    def down(self) -> None:
        if self.ready and self._file:
            try:
                os.unlink(self._file)
            except FileNotFoundError:
                pass
        self.ready = False


class _DeadlineReader:
    """Reads a request's lines within one deadline for the whole request.

    http.server's timeout bounds each recv, so a client trickling a byte a
    second would hold its slot forever and starve the kubelet's probes. Here
    a request that is not in by the deadline gets a TimeoutError, which
    http.server answers by closing the connection.
    """

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self._connection = connection
        self._end = time.monotonic() + seconds
        self._buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while b"\n" not in self._buffer and (limit < 0 or len(self._buffer) < limit):
            remaining = self._end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not complete by its deadline")
            self._connection.settimeout(remaining)
            chunk = self._connection.recv(4096)
            if not chunk:
                break
            self._buffer += chunk
        cut = self._buffer.find(b"\n") + 1 or len(self._buffer)
        if limit >= 0:
            cut = min(cut, limit)
        line, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return line


def _serve(server: Any) -> None:
    # handle_request() with no timeout blocks in select(): no periodic wake-ups,
    # unlike serve_forever(), which polls every half second.
    while True:
        server.handle_request()


def make_server(host: str, port: int, check_url: str | None) -> Any:
    """Bind now, so a taken port is a startup error; serving starts with Readiness."""
    import http.client
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    check = urllib.parse.urlsplit(check_url) if check_url else None

    def app_answer() -> int:
        """The app's own readiness, or 503 when it does not answer in time."""
        assert check is not None
        connection_class = http.client.HTTPSConnection if check.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(check.hostname or "127.0.0.1", check.port, timeout=CHECK_TIMEOUT)
        try:
            connection.request("GET", (check.path or "/") + (f"?{check.query}" if check.query else ""))
            return connection.getresponse().status
        except (OSError, http.client.HTTPException):
            return 503
        finally:
            connection.close()

    class Handler(BaseHTTPRequestHandler):
        timeout = CLIENT_TIMEOUT
        protocol_version = "HTTP/1.0"

        def setup(self) -> None:
            super().setup()
            self.rfile = _DeadlineReader(self.connection, CLIENT_TIMEOUT)  # type: ignore[assignment]

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/live":
                self._answer(200)
            elif path == "/ready":
                ready = self.server.readiness.ready  # type: ignore[attr-defined]
                status = (app_answer() if check else 200) if ready else 503
                # A stop may have begun while the app was being asked.
                self._answer(status if self.server.readiness.ready else 503)  # type: ignore[attr-defined]
            else:
                self._answer(404)

        def _answer(self, status: int) -> None:
            body = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        block_on_close = False
        request_queue_size = 64  # socketserver's 5 drops a burst of probes before accept()

        def process_request(self, request: Any, client_address: Any) -> None:
            if not slots.acquire(blocking=False):
                self.shutdown_request(request)  # full: refuse rather than queue
                return
            super().process_request(request, client_address)

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            try:
                super().process_request_thread(request, client_address)
            finally:
                slots.release()

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a broken client is not pyinit's problem; never print tracebacks

    return Server((host, port), Handler)
