"""The HTTP probe server behind ``--ready-port``: ``/live``, ``/ready`` and ``--ready-check``.

Imported only when ``--ready-port`` is given. It is the one thread in pyinit
besides the main loop, and it only *reads* the lifecycle state
(``Readiness.ready``): it never touches signals (they stay blocked here,
inherited from the main thread), children or timers.

One thread runs one selectors loop over the listener, every client and the
outbound ``--ready-check`` request, instead of a thread per connection:

- nothing has to be started per request, so a pids cgroup or RLIMIT_NPROC the
  app has exhausted cannot take the probes down with it;
- a slow or hostile client costs an entry in a table, not a thread; each has
  one deadline for its whole request, and clients are kept in arrival order,
  so the nearest deadline is always the oldest client's;
- each source (an IPv4 address, an IPv6 /64) keeps at most ``PER_SOURCE``
  unfinished requests and all of them together at most ``MAX_CLIENTS``: a new
  connection pushes out the oldest one over either limit, so the kubelet's
  probe always gets in, whoever else is trickling bytes at the port.
"""

from __future__ import annotations

import errno
import http
import os
import selectors
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from pyinit.log import Log
from pyinit.readiness import Readiness

if TYPE_CHECKING:
    import ssl

#: A request must be complete this long after its connection was accepted.
REQUEST_DEADLINE = 2.0
#: How long the app gets to answer ``--ready-check`` before /ready says 503.
CHECK_TIMEOUT = 1.0
#: Unfinished requests kept per source address and in all.
PER_SOURCE = 8
MAX_CLIENTS = 256
#: Bytes a request line and its headers may take; probes send a few dozen.
MAX_REQUEST = 8192
#: socket.listen's queue: socketserver's 5 drops a burst of probes before accept().
BACKLOG = 64
#: How long to stop accepting when the process is out of descriptors and holds no client to let go.
ACCEPT_PAUSE = 0.1

#: A socket address as getaddrinfo gives one: IPv4, IPv6 (with flow info and scope), or another family's.
Address = Union[tuple[str, int], tuple[str, int, int, int], tuple[int, bytes]]


@dataclass(frozen=True)
class CheckTarget:
    """``--ready-check``'s URL, split and resolved once at startup: no DNS on the probe path."""

    url: str
    addresses: tuple[tuple[socket.AddressFamily, Address], ...]
    request: bytes
    #: For https: the system's verifying context (made now, so a bad CA file is a startup error),
    #: and the name the certificate must carry.
    tls: ssl.SSLContext | None = None
    tls_host: str = ""

    @classmethod
    def resolve(cls, url: str) -> CheckTarget:
        split = urllib.parse.urlsplit(url)
        host = split.hostname or ""
        port = split.port or (443 if split.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise OSError(exc.errno, f"--ready-check {url}: cannot resolve {host} ({exc.strerror})") from None
        authority = f"[{host}]" if ":" in host else host
        if split.port:
            authority += f":{split.port}"
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        request = f"GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: pyinit\r\nConnection: close\r\n\r\n"
        addresses = tuple((family, address) for family, _, _, _, address in found)
        if split.scheme != "https":
            return cls(url, addresses, request.encode("ascii"))
        import ssl

        return cls(url, addresses, request.encode("ascii"), ssl.create_default_context(), host)


def bind(host: str, port: int, check_url: str | None) -> ProbeServer:
    """Bind the probe port and resolve ``--ready-check`` now, so either failing is a startup error.

    ``host`` empty means every address: IPv6 and IPv4 both where the kernel
    has IPv6 (probes come from outside the pod, to its IPv4 or IPv6 address),
    else IPv4 only. Raises OSError whose ``strerror`` names the value.
    """
    check = CheckTarget.resolve(check_url) if check_url else None
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}" if host else str(port)
    try:
        listener = _listen(host, port)
    except OSError as exc:
        raise OSError(exc.errno, f"--ready-port {shown}: {exc.strerror}") from None
    return ProbeServer(listener, check)


def _listen(host: str, port: int) -> socket.socket:
    if host:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        return _open_listener(family, address)
    try:
        return _open_listener(socket.AF_INET6, ("::", port))
    except OSError as exc:
        if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            raise
    return _open_listener(socket.AF_INET, ("0.0.0.0", port))


def _open_listener(family: socket.AddressFamily, address: Address) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted pyinit rebinds at once
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # "::" takes IPv4 too
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _source(host: str) -> bytes:
    """The key a client's connections are counted under: its IPv4 address, or its IPv6 /64."""
    if ":" not in host:
        return socket.inet_pton(socket.AF_INET, host)
    packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    return packed[12:] if packed.startswith(b"\0" * 10 + b"\xff\xff") else packed[:8]


def _response(status: int, with_body: bool = True) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    body = f"{status}\n"
    head = (
        f"HTTP/1.0 {status} {phrase}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return (head + body if with_body else head).encode("ascii")


class _Client:
    """One inbound connection, from accept to its one answer."""

    def __init__(self, sock: socket.socket, source: bytes, deadline: float) -> None:
        self.sock = sock
        self.source = source
        self.deadline = deadline
        self.buffer = b""
        self.head_only = False

    def read(self) -> bytes | None:
        """Take what has arrived; the request line once the whole head is in, else None.

        Raises OSError when the client is gone or the head is too long.
        """
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ConnectionResetError("the client closed before its request was complete")
        self.buffer += chunk
        if b"\r\n\r\n" not in self.buffer and b"\n\n" not in self.buffer:
            if len(self.buffer) > MAX_REQUEST:
                raise OSError(errno.EMSGSIZE, "request head too long")
            return None
        return self.buffer.split(b"\n", 1)[0].rstrip(b"\r")

    def answer(self, status: int) -> None:
        try:
            self.sock.send(_response(status, with_body=not self.head_only))
        except OSError:
            pass  # the client gave up: its answer goes nowhere
        self.sock.close()


class _Check:
    """One outbound ``--ready-check`` GET in flight, shared by every /ready probe that waits for it.

    Connecting, the TLS handshake (https), sending and reading the status line
    are the phases of a small state machine; ``step`` runs as many as the
    socket allows whenever the loop sees it ready.
    """

    def __init__(self, target: CheckTarget, now: float) -> None:
        self.target = target
        self.deadline = now + CHECK_TIMEOUT
        self.waiting: list[_Client] = []
        self._addresses = list(target.addresses)
        self._phase = "connect"
        self._sent = 0
        self._buffer = b""
        self._tls: ssl.SSLSocket | None = None
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        family, address = self._addresses.pop(0)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)  # EINPROGRESS: the socket turns writable once it is decided
        return sock

    def step(self) -> tuple[int, int | None]:
        """Advance as far as the socket allows; return (the events still wanted, the status once known).

        Only called once the socket is ready for what it last wanted. Raises
        OSError (ssl.SSLError is one) when the app cannot be asked.
        """
        try:
            return 0, self._advance()
        except (BlockingIOError, InterruptedError):
            return (selectors.EVENT_READ if self._phase == "read" else selectors.EVENT_WRITE), None
        except OSError as exc:
            if self._tls is not None:
                import ssl

                if isinstance(exc, ssl.SSLWantReadError):
                    return selectors.EVENT_READ, None
                if isinstance(exc, ssl.SSLWantWriteError):
                    return selectors.EVENT_WRITE, None
            raise

    def _advance(self) -> int:
        if self._phase == "connect":
            error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error and self._addresses:
                self.sock.close()
                self.sock = self._connect()  # the next address the name resolved to
                raise BlockingIOError
            if error:
                raise OSError(error, os.strerror(error))
            self._phase = "send" if self.target.tls is None else "handshake"
            if self.target.tls is not None:
                self._tls = self.target.tls.wrap_socket(
                    self.sock, server_hostname=self.target.tls_host, do_handshake_on_connect=False
                )
                self.sock = self._tls
        if self._phase == "handshake":
            assert self._tls is not None
            self._tls.do_handshake()
            self._phase = "send"
        request = self.target.request
        while self._sent < len(request):
            self._sent += self.sock.send(request[self._sent :])
        self._phase = "read"
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionResetError(errno.ECONNRESET, "closed without answering")
            self._buffer += chunk
            if len(self._buffer) > MAX_REQUEST:
                raise OSError(errno.EPROTO, "no status line")
        parts = self._buffer.split(b"\n", 1)[0].split()
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise OSError(errno.EPROTO, "not an HTTP answer")
        status = int(parts[1])
        return status if 100 <= status <= 599 else 503

    def close(self) -> None:
        self.sock.close()


class ProbeServer:
    """The bound probe port; ``serve`` starts its one thread once the lifecycle state exists."""

    def __init__(self, listener: socket.socket, check: CheckTarget | None) -> None:
        self.listener = listener
        self._check_target = check
        self._selector = selectors.DefaultSelector()
        #: Unfinished requests, oldest first: the first one's deadline is the nearest.
        self._clients: dict[_Client, None] = {}
        self._by_source: dict[bytes, list[_Client]] = {}
        self._check: _Check | None = None
        self._check_watched: socket.socket | None = None
        self._paused_until: float | None = None
        #: Whether the app answered the last --ready-check, so that only a change is logged.
        self._app_answered = True
        self._readiness: Readiness | None = None
        self._log: Log | None = None

    def serve(self, readiness: Readiness, log: Log) -> None:
        """Answer probes from now on, on a daemon thread; a failure to start it is logged, not fatal."""
        self._readiness, self._log = readiness, log
        try:
            threading.Thread(target=self._run, name="pyinit-probe", daemon=True).start()
        except RuntimeError as exc:  # no thread to be had: the app may already hold every pid
            log.error("probe_server", f"cannot start the probe server ({exc}): /live and /ready will not answer")
            self.listener.close()

    def _run(self) -> None:
        try:
            self._selector.register(self.listener, selectors.EVENT_READ)
            while True:
                for key, _ in self._selector.select(self._timeout()):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif isinstance(key.data, _Client):
                        self._read(key.data)
                    elif key.data is self._check:  # not an event left over from a check already done
                        self._step_check()
                self._expire(time.monotonic())
        except Exception as exc:  # a bug here must not print a traceback; the probes fail closed
            if self._log is not None:
                self._log.error("probe_server", f"the probe server stopped: {exc!r}")
            self.listener.close()

    def _timeout(self) -> float | None:
        deadlines = [next(iter(self._clients)).deadline] if self._clients else []  # the oldest is due first
        if self._check is not None:
            deadlines.append(self._check.deadline)
        if self._paused_until is not None:
            deadlines.append(self._paused_until)
        return max(0.0, min(deadlines) - time.monotonic()) if deadlines else None

    # -- clients ------------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(BACKLOG):  # then let the clients already in have their turn
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    continue  # that connection died before it was accepted
                if not self._clients:
                    self._selector.unregister(self.listener)
                    self._paused_until = time.monotonic() + ACCEPT_PAUSE
                    return
                self._drop(next(iter(self._clients)))  # out of descriptors: the oldest request makes room
                continue
            sock.setblocking(False)
            client = _Client(sock, _source(address[0]), time.monotonic() + REQUEST_DEADLINE)
            same_source = self._by_source.setdefault(client.source, [])
            if len(same_source) >= PER_SOURCE:
                self._drop(same_source[0])
            if len(self._clients) >= MAX_CLIENTS:
                self._drop(next(iter(self._clients)))
            self._clients[client] = None
            same_source.append(client)
            self._selector.register(sock, selectors.EVENT_READ, client)
            self._read(client)  # a probe's request is usually in already

    def _read(self, client: _Client) -> None:
        try:
            line = client.read()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        if line is not None:
            self._forget(client)
            self._handle(client, line)

    def _handle(self, client: _Client, line: bytes) -> None:
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
            client.answer(400)
            return
        method, target, _ = parts
        if method not in (b"GET", b"HEAD"):
            client.answer(405)
            return
        client.head_only = method == b"HEAD"
        path = target.split(b"?", 1)[0]
        if path == b"/live":
            client.answer(200)
        elif path != b"/ready":
            client.answer(404)
        elif not self._ready():
            client.answer(503)
        elif self._check_target is None:
            client.answer(200)
        else:
            self._ask_app(client)

    def _ready(self) -> bool:
        return self._readiness is not None and self._readiness.ready

    def _forget(self, client: _Client) -> None:
        """Take a client out of the tables of unfinished requests (its request is in, or it is dropped)."""
        if client in self._clients:
            del self._clients[client]
            same_source = self._by_source[client.source]
            same_source.remove(client)
            if not same_source:
                del self._by_source[client.source]
            self._selector.unregister(client.sock)

    def _drop(self, client: _Client) -> None:
        self._forget(client)
        client.sock.close()

    def _expire(self, now: float) -> None:
        while self._clients:
            oldest = next(iter(self._clients))
            if oldest.deadline > now:
                break
            self._drop(oldest)
        if self._check is not None and self._check.deadline <= now:
            self._app_done(None, "no answer within the check timeout")
        if self._paused_until is not None and self._paused_until <= now:
            self._paused_until = None
            self._selector.register(self.listener, selectors.EVENT_READ)

    # -- --ready-check ---------------------------------------------------------------------------

    def _ask_app(self, client: _Client) -> None:
        """Join the check in flight, or start one: concurrent probes share one request to the app."""
        if self._check is None:
            assert self._check_target is not None
            try:
                self._check = _Check(self._check_target, time.monotonic())
            except OSError as exc:  # no socket to be had
                client.answer(503)
                self._note_app(exc.strerror or str(exc))
                return
            self._watch_check(selectors.EVENT_WRITE)
        if len(self._check.waiting) >= MAX_CLIENTS:
            client.answer(503)
            return
        self._check.waiting.append(client)

    def _watch_check(self, events: int) -> None:
        """Watch the check's current socket for ``events`` (0: for none).

        The old registration goes first, while its descriptor number is still
        its own: a step may close it and open the next socket on the same number.
        """
        if self._check_watched is not None:
            self._selector.unregister(self._check_watched)
            self._check_watched = None
        if events and self._check is not None:
            self._selector.register(self._check.sock, events, self._check)
            self._check_watched = self._check.sock

    def _step_check(self) -> None:
        check = self._check
        assert check is not None
        self._watch_check(0)
        try:
            wanted, status = check.step()
        except OSError as exc:
            self._app_done(None, exc.strerror or str(exc))
            return
        if status is None:
            self._watch_check(wanted)
        else:
            self._app_done(status, None)

    def _app_done(self, status: int | None, failure: str | None) -> None:
        check = self._check
        assert check is not None
        self._watch_check(0)
        self._check = None
        check.close()
        self._note_app(failure)
        for client in check.waiting:
            # A stop may have begun while the app was being asked: then it is 503 whatever the app said.
            client.answer(status if status is not None and self._ready() else 503)

    def _note_app(self, failure: str | None) -> None:
        if (failure is None) == self._app_answered or self._log is None:
            return
        self._app_answered = failure is None
        url = self._check_target.url if self._check_target else ""
        if failure is None:
            self._log.info("ready_check", f"--ready-check {url} answers again")
        else:
            self._log.error("ready_check", f"--ready-check {url} does not answer ({failure}): /ready says 503")
