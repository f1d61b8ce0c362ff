"""Shared tools for the graceful-shutdown tests (issue 4): the text timeline and HTTP.

Imported by the test modules as ``helpers.shutdown_support``, next to
``helpers.harness``. Nothing here mocks anything: it parses pyinit's real
log and talks real HTTP.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from helpers.harness import WAIT, wait_for

TEXT_LINE = re.compile(r"^\[pyinit\] (?:\+(\d+\.\d{3})s )?(.*)$")


# -- the timeline ------------------------------------------------------------------------------


@dataclass
class Step:
    offset: float | None
    message: str


def timeline(lines: list[str]) -> list[Step]:
    """pyinit's text log lines (``[pyinit] +1.234s message``) as steps, in order."""
    steps = []
    for line in lines:
        match = TEXT_LINE.match(line)
        if match:
            steps.append(Step(None if match.group(1) is None else float(match.group(1)), match.group(2)))
    return steps


def step(lines: list[str], text: str) -> Step:
    """The first timeline step whose message contains ``text``."""
    for item in timeline(lines):
        if text in item.message:
            return item
    raise AssertionError(f"no pyinit log line with {text!r} in:\n" + "\n".join(lines))


def offset_of(lines: list[str], text: str) -> float:
    found = step(lines, text)
    assert found.offset is not None, f"{found.message!r} carries no offset from T0"
    return found.offset


# -- HTTP ----------------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on every address, IPv4 and IPv6: pyinit binds ``[::]`` (both) when given no host,
    and a port free on 127.0.0.1 alone may still be held elsewhere (a client's TIME_WAIT on 127.0.0.2)."""
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError:  # no IPv6 here: every IPv4 address, then
        sock = socket.socket()
        sock.bind(("0.0.0.0", 0))
    with sock:
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float = 5.0, *, host: str = "127.0.0.1") -> int:
    """The status of ``GET path`` on host:port, IPv4 or IPv6 (raises OSError when nothing answers)."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_for_status(port: int, path: str, status: int, timeout: float = WAIT, *, host: str = "127.0.0.1") -> None:
    last: list[Any] = [None]

    def answered() -> bool:
        try:
            last[0] = http_get(port, path, host=host)
        except OSError as exc:
            last[0] = exc
            return False
        return last[0] == status

    try:
        wait_for(answered, f"GET {path} on {host} to answer {status}", timeout)
    except AssertionError:
        raise AssertionError(f"GET {path} on {host} never answered {status}; last answer: {last[0]!r}") from None


class App:
    """A real HTTP app with a readiness endpoint whose answer the test controls.

    ``status`` is what ``GET /healthz`` answers; ``delay`` holds the answer back
    (to play an app that does not answer in time). ``hits`` counts requests.
    ``host`` may be an IPv6 address; with ``tls`` (a server context) it speaks https.
    """

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.status = 200
        self.delay = 0.0
        self.hits = 0
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                app.hits += 1
                if app.delay:
                    time.sleep(app.delay)
                body = b"app\n"
                try:
                    self.send_response(app.status if self.path == "/healthz" else 404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the prober gave up on us

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True
            block_on_close = False

        self.server = Server((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        authority = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if tls else 'http'}://{authority}:{self.port}/healthz"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
