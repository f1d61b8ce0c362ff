"""Watching the child's traffic stop: which ports, what counts as traffic, and when it is quiet enough.

From the stop signal (T0) on, the load balancer is removing the pod, but how
long that takes is the one number nobody knows. pyinit shares the app's
network namespace, so it can watch the requests stop arriving instead of
guessing. Three kinds of event count as traffic on a watched port (each one
alone was measured to fail, see issue 11):

- a connection not seen before (a handshake in progress included);
- a rise in ``tcpi_data_segs_in`` on a known connection (data segments only:
  a bare FIN is not a request, and an idle keep-alive connection makes none);
- a destroyed connection that was never seen, or that received data since the
  last poll: short connections open and close between two polls.

Connections from ``--drain-ignore`` networks (liveness probes) never count,
and neither does pyinit's own readiness port. ``Watcher`` is the policy and
does no I/O: it is fed one ``Poll`` at a time. ``Traffic`` reads the kernel.
This module and ``sockdiag`` are imported only when a watch starts.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from pyinit import sockdiag
from pyinit.config import Network
from pyinit.log import DEBUG, INFO, Log
from pyinit.sockdiag import Socket

#: Seconds between two polls of the socket table.
POLL_INTERVAL = 0.1
#: After the stop is passed on, traffic is still watched this long (or until the child exits).
LATE_WINDOW = 2.0
#: With a fixed delay, the quiet window the stop is judged against (issue 11's measured default).
DEFAULT_QUIET = 1.0
#: The quiet window is at least this many mean gaps between requests, as measured during --drain-min.
RATE_GAPS = 5.0
_IGNORED = -2  #: the segment count stored for a connection from an ignored network


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant, through /proc/PID/task/TID/children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
            except OSError:
                pass
    return found


def socket_inodes(pids: Sequence[int]) -> tuple[set[int], bool]:
    """The socket inodes open in these processes, and whether /proc refused to show some."""
    inodes: set[int] = set()
    denied = False
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except PermissionError:
            denied = True
            continue
        except OSError:
            continue  # exited meanwhile
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except PermissionError:
                denied = True
                break
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes, denied


@dataclass(frozen=True)
class Ports:
    """The ports to watch and how they were found, in words for the T0 line."""

    ports: frozenset[int]
    how: str


def discover(child: int, uid: int, listeners: Sequence[Socket], exclude: Collection[int] = ()) -> Ports:
    """The TCP ports the child's process tree listens on (IPv4 and IPv6), minus ``exclude``.

    Each process's socket inodes are matched to the LISTEN sockets. Where /proc
    denies reading a process's descriptors (another user, no CAP_SYS_PTRACE),
    the listeners owned by the app's uid are taken instead.
    """
    inodes, denied = socket_inodes(tree_pids(child))
    ports = {sock.port for sock in listeners if sock.inode in inodes}
    how = "found in the child's processes"
    if denied:
        ports |= {sock.port for sock in listeners if sock.uid == uid}
        how = f"listening as uid {uid}: /proc denied reading the child's descriptors"
    return Ports(frozenset(ports - set(exclude)), how)


class Verdict(enum.Enum):
    WAIT = "keep waiting"
    QUIET = "quiet enough"
    MAX = "maximum reached"


@dataclass(frozen=True)
class Connection:
    """The last new connection seen: when (monotonic), on which port, from where."""

    at: float
    port: int
    source: str


@dataclass
class Poll:
    """What one poll of the kernel saw on the watched ports."""

    at: float  #: monotonic time, right after the reads
    sockets: Sequence[Socket]  #: the connections open now
    destroyed: Sequence[Socket] = ()  #: the connections freed since the last poll
    lost: bool = False  #: destroy notifications were dropped: some traffic went unseen


@dataclass
class Watcher:
    """The drain policy, fed one Poll at a time; no I/O, no clock of its own.

    The first poll, taken at ``start`` (T0), is the baseline: what is open then
    is not new. From then on it knows the last new connection, the last data
    received, how many connections are open, and the request rate during
    ``minimum``, which stretches the quiet window to at least RATE_GAPS mean
    gaps between requests: at ~1 request per second a 1 s window would go
    "quiet" between two requests.
    """

    start: float
    quiet: float
    minimum: float
    maximum: float
    ignore: Sequence[Network]
    last_connection: Connection | None = None
    last_data: float | None = None
    open: int = 0  #: connections open at the last poll
    busy: int = 0  #: of those, how many received data within the quiet window
    #: request events (a new connection or data on one, per poll) during --drain-min
    events_in_minimum: int = 0
    stopped_at: float | None = None  #: when the stop was passed on
    late: int = 0  #: request events after it
    last_late: float | None = None
    lost: int = 0  #: polls in which destroy notifications were dropped
    connections: int = 0  #: new connections since T0
    #: cookie -> data segments received, for the last two dumps (a connection
    #: freed between a dump and the next read is only in the older one)
    _known: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _older: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _baseline: bool = field(default=True, init=False, repr=False)  #: the next poll is the first
    #: (peer, peer port, port) of the handshakes in the last dump: the socket the
    #: kernel makes when one completes has a cookie of its own but is no new connection
    _handshakes: set[tuple[bytes, int, int]] = field(default_factory=set, init=False, repr=False)

    # -- what the policy concludes -------------------------------------------

    @property
    def last_activity(self) -> float | None:
        times = [self.last_data, self.last_connection.at if self.last_connection else None]
        return max((t for t in times if t is not None), default=None)

    def gaps(self) -> float:
        """RATE_GAPS mean gaps between requests, at the rate seen during --drain-min (0 without one)."""
        return RATE_GAPS * self.minimum / max(self.events_in_minimum, 1) if self.minimum > 0 else 0.0

    def window(self) -> float:
        """The quiet window: --drain-quiet, or RATE_GAPS mean gaps between requests if that is longer."""
        return max(self.quiet, self.gaps())

    def quiet_for(self, now: float) -> float:
        """Seconds without traffic, counted from T0 at the earliest: before it nothing was watched."""
        return now - max(self.start, self.last_activity or self.start)

    def verdict(self, now: float) -> Verdict:
        if now >= self.start + self.minimum and self.quiet_for(now) >= self.window():
            return Verdict.QUIET
        return Verdict.MAX if now >= self.start + self.maximum else Verdict.WAIT

    def stopped(self, now: float) -> None:
        """The stop has been passed on: from now on, traffic is late."""
        self.stopped_at = now

    # -- feeding it ----------------------------------------------------------

    def observe(self, poll: Poll) -> None:
        baseline, self._baseline = self._baseline, False
        events = 0
        handshakes = self._handshakes
        self._handshakes = set()
        for sock in poll.destroyed:  # a socket closed since the last poll, or opened and closed between two
            older = self._older.pop(sock.cookie, None)
            before = self._known.pop(sock.cookie, older)
            if before == _IGNORED or (before is None and self._ignores(sock)):
                continue
            events += self._seen(sock, before, poll.at, handshakes)
        known: dict[int, int] = {}
        window_ms = self.window() * 1000
        self.open = self.busy = 0
        for sock in poll.sockets:
            before = self._known.get(sock.cookie, self._older.get(sock.cookie))
            if before == _IGNORED or (before is None and self._ignores(sock)):
                known[sock.cookie] = _IGNORED
                continue
            segs = max(sock.segs_in, 0)
            known[sock.cookie] = segs
            if sock.segs_in < 0:  # a handshake: its connection will be a socket of its own
                self._handshakes.add(_tuple(sock))
            else:
                self.open += 1
                if sock.idle_ms < window_ms:
                    self.busy += 1
            if before is not None or not baseline:
                events += self._seen(sock, before, poll.at, handshakes)
        self._older, self._known = self._known, known
        if poll.lost:
            self.lost += 1
            events += 1
            self._data(poll.at)
        if poll.at <= self.start + self.minimum:
            self.events_in_minimum += events
        if self.stopped_at is not None and events:
            self.late += events
            self.last_late = poll.at

    def _seen(self, sock: Socket, before: int | None, now: float, handshakes: set[tuple[bytes, int, int]]) -> int:
        """Note what one socket shows since the last poll (``before``: its data segments then); 1 if a request.

        tcpi_last_data_recv runs from the handshake until data arrives, so ``now`` minus it is a
        precise time either way. For a socket already freed it is only known to be before ``now``.
        """
        at = now - max(sock.idle_ms, 0) / 1000
        if before is None:  # a new connection, unless it is the socket of a handshake seen last time
            if _tuple(sock) not in handshakes:
                self._connection(at, sock)
            if sock.segs_in > 0:
                self._data(at)
            return 1
        if sock.segs_in > before:
            self._data(at)
            return 1
        return 0

    def _ignores(self, sock: Socket) -> bool:
        if not self.ignore:
            return False
        import ipaddress  # already loaded: parsing --drain-ignore needed it

        address = ipaddress.ip_address(sock.peer_ip())
        return any(address in network for network in self.ignore)

    def _connection(self, at: float, sock: Socket) -> None:
        self.connections += 1
        if self.last_connection is None or at >= self.last_connection.at:
            self.last_connection = Connection(at, sock.port, sock.peer_ip())

    def _data(self, at: float) -> None:
        self.last_data = at if self.last_data is None else max(self.last_data, at)


def _tuple(sock: Socket) -> tuple[bytes, int, int]:
    return sock.peer, sock.peer_port, sock.port


class Traffic:
    """The kernel's view of the watched ports. Raises OSError when the table cannot be read."""

    def __init__(self, ports: Collection[int], table: sockdiag.Table) -> None:
        self.ports = frozenset(ports)
        self._table = table
        # subscribed before the first dump, so no connection falls between the two
        self._destroyed = sockdiag.Destroyed()

    def poll(self) -> Poll:
        destroyed, lost = self._destroyed.read(self.ports)
        sockets = self._table.connections(self.ports)
        return Poll(time.monotonic(), sockets, destroyed, lost)

    def close(self) -> None:
        self._table.close()
        self._destroyed.close()


@dataclass(frozen=True)
class Settings:
    """What a watch needs from the config, and whose ports it watches."""

    delay: float  #: --pre-stop-delay: the maximum when adaptive, the whole delay when not
    quiet: float | None  #: --drain-quiet; None for a fixed delay, which is only measured
    minimum: float
    ports: tuple[int, ...]  #: --drain-ports; () to discover them
    ignore: tuple[Network, ...]
    exclude: int | None  #: pyinit's own readiness port
    uid: int  #: the app's uid, for discovery when /proc denies reading its descriptors


def _ports(ports: Collection[int]) -> str:
    return ", ".join(f":{port}" for port in sorted(ports))


class Watch:
    """One drain's watch: Traffic feeding a Watcher, and the lines it adds to the timeline."""

    def __init__(self, log: Log, settings: Settings, traffic: Traffic, start: float) -> None:
        self._log = log
        self._settings = settings
        self._traffic = traffic
        adaptive = settings.quiet is not None
        self.watcher = Watcher(
            start,
            quiet=settings.quiet if settings.quiet is not None else DEFAULT_QUIET,
            minimum=settings.minimum,
            maximum=settings.delay if adaptive else float("inf"),
            ignore=settings.ignore,
        )
        self.adaptive = adaptive

    def _offset(self, at: float) -> str:
        return f"+{at - self.watcher.start:.3f}s"

    def poll(self) -> bool:
        """Read the kernel once; False when it stopped answering (the watch is then over)."""
        try:
            self.watcher.observe(self._traffic.poll())
        except OSError as exc:
            self._log.error("traffic_blind", f"the socket table stopped answering ({exc.strerror}): watch ended")
            return False
        return True

    def quiet(self) -> bool:
        """With --drain-quiet: whether the watched ports have gone quiet enough to pass the stop on now."""
        return self.adaptive and self.watcher.verdict(time.monotonic()) is Verdict.QUIET

    def late_window_over(self) -> bool:
        stopped = self.watcher.stopped_at
        return stopped is not None and time.monotonic() >= stopped + LATE_WINDOW

    def stopped(self, *, cut: bool) -> None:
        """The stop is being passed on: say when traffic stopped, and whether it had."""
        now = time.monotonic()
        w = self.watcher
        verdict = w.verdict(now)
        w.stopped(now)
        ports = _ports(self._traffic.ports)
        connection, data = w.last_connection, w.last_data
        seen = []
        if connection is not None:
            where = f":{connection.port} (from {connection.source}; {w.connections} since T0)"
            seen.append(f"{self._offset(connection.at)} last new connection on {where}")
        if data is not None:
            seen.append(f"{self._offset(data)} last data received")
        if w.lost:
            seen.append(f"the kernel dropped socket notifications in {w.lost} poll(s), counted as traffic")
        self._log.info(
            "traffic_seen",
            "; ".join(seen) or f"no new connection and no data on {ports} since T0",
            last_connection_offset=None if connection is None else round(connection.at - w.start, 3),
            last_connection_port=None if connection is None else connection.port,
            last_connection_source=None if connection is None else connection.source,
            last_data_offset=None if data is None else round(data - w.start, 3),
            connections=w.connections,
            lost=w.lost,
        )
        quiet_for = w.quiet_for(now)
        fields = {"quiet_for": round(quiet_for, 3), "window": round(w.window(), 3), "open": w.open, "busy": w.busy}
        if verdict is Verdict.MAX:
            self._log.info(
                "traffic_never_quiet",
                f"traffic was not quiet for {w.window():.2f}s within the {self._settings.delay:g}s maximum: "
                f"{w.open} connection(s) still open, {w.busy} received data in the last {w.window():.2f}s",
                **fields,
            )
        elif verdict is Verdict.QUIET or w.last_activity is None:
            self._log.info("traffic_quiet", f"traffic had been quiet for {quiet_for:.2f}s", **fields)
        else:
            advice = "" if cut or self.adaptive else f"; raise --pre-stop-delay above {self._settings.delay:g}s"
            # still flowing at its own pace, or stopped too recently to tell
            finished = "had not finished" if quiet_for < w.gaps() else "may not have finished"
            self._log.warning(
                "traffic_not_quiet",
                f"requests were still arriving {quiet_for:.2f}s before the stop was passed on: "
                f"the load balancer {finished} removing this pod{advice}",
                **fields,
            )

    def finish(self) -> None:
        """The watch is over (the late window passed, or the child exited): report late traffic."""
        w = self.watcher
        self._traffic.close()
        if w.stopped_at is None:
            return
        if w.late and w.last_late is not None:
            self._log.warning(
                "late_traffic",
                f"{w.late} request(s) arrived up to {w.last_late - w.stopped_at:.2f}s after the stop was passed on",
                late=w.late,
                last_late_offset=round(w.last_late - w.start, 3),
            )
        else:
            self._log.debug("late_traffic", "no traffic after the stop was passed on", late=0)


def open_watch(log: Log, settings: Settings, child: int, start: float) -> Watch | None:
    """Start watching at T0, saying what is watched; or say in one line why not (then: the full delay)."""
    level = INFO if settings.quiet is not None else DEBUG
    fallback = f"waiting the full pre-stop delay ({settings.delay:g}s)"
    try:
        opened = _open_traffic(settings, child)
    except OSError as exc:
        log.emit(level, "traffic_unseen", f"cannot read the socket table (sock_diag: {exc.strerror}): {fallback}")
        return None
    if opened is None:
        log.emit(level, "traffic_unseen", f"no listening TCP port found in the child's processes: {fallback}")
        return None
    traffic, how = opened
    watch = Watch(log, settings, traffic, start)
    if not watch.poll():  # the baseline: what is open at T0 is not new
        watch.finish()
        return None
    ports = sorted(traffic.ports)
    log.emit(level, "traffic_watch", f"watching traffic on {_ports(ports)} ({how})", ports=ports)
    return watch


def _open_traffic(settings: Settings, child: int) -> tuple[Traffic, str] | None:
    table = sockdiag.Table()
    try:
        if settings.ports:
            found = Ports(frozenset(settings.ports), "from --drain-ports")
        else:
            exclude = () if settings.exclude is None else (settings.exclude,)
            found = discover(child, settings.uid, table.listeners(), exclude)
        if found.ports:
            return Traffic(found.ports, table), found.how
    except OSError:
        table.close()
        raise
    table.close()
    return None
