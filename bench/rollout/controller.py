"""Replicas under an init, and an endpoint controller that rolls them the way Kubernetes does.

A rollout with maxSurge 1 and maxUnavailable 0, for each old replica in turn:

1. a new replica is started;
2. once it answers, it is added to nginx's upstreams (config rewrite + reload);
3. the old replica's init gets SIGTERM, as from the kubelet: that is T0;
4. the old replica is removed from the upstreams only at T0 + the propagation
   delay (the endpoint update reaching the load balancer).

As in Kubernetes, a terminating replica no longer counts against maxSurge, so
the next new replica is started right at T0: the swaps overlap, and both old
replicas can be terminating while still in the upstreams.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.rollout.load import Counts
from bench.rollout.nginx import Nginx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
APP = HERE / "app.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: The adaptive drain's settings: a 1 s quiet window, and a maximum no rollout comes near.
QUIET, MAXIMUM = 1.0, 30.0
#: The short fixed delay issue 11 shows failing on slow rollouts.
SHORT_DELAY = 3.0


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    init: tuple[str, ...]  #: the init's argv before the app's; () for none
    drain_on: str = "TERM"  #: the signal the app drains on
    delay: float = 0.0  #: the pre-stop delay the init is configured with (the maximum when adaptive)
    quiet: float | None = None  #: --drain-quiet, for the adaptive variants


def variants(delay: float) -> list[Variant]:
    """Every variant the issues ask for, in the order of the table; ``delay`` is the worst case + 1 s."""
    d = f"{delay:g}"
    py = (sys.executable, "-m", "pyinit")
    adaptive = ("--drain-quiet", f"{QUIET:g}", "--pre-stop-delay", f"{MAXIMUM:g}")
    return [
        Variant("none", "no init", ()),
        Variant("tini", "tini", ("tini", "-s", "--")),
        Variant("dumb-init", "dumb-init", ("dumb-init",)),
        Variant("pyinit", "pyinit", py),
        Variant("pyinit-delay", f"pyinit --pre-stop-delay {d}", (*py, "--pre-stop-delay", d), delay=delay),
        Variant(
            "pyinit-rewrite",
            f"USR1 app, pyinit --rewrite TERM:USR1 --pre-stop-delay {d}",
            (*py, "--rewrite", "TERM:USR1", "--pre-stop-delay", d),
            drain_on="USR1",
            delay=delay,
        ),
        Variant(
            "dumb-init-rewrite", "USR1 app, dumb-init --rewrite 15:10", ("dumb-init", "--rewrite", "15:10"), "USR1"
        ),
        Variant(
            "pyinit-delay-short",
            f"pyinit --pre-stop-delay {SHORT_DELAY:g}",
            (*py, "--pre-stop-delay", f"{SHORT_DELAY:g}"),
            delay=SHORT_DELAY,
        ),
        Variant(
            "pyinit-adaptive",
            f"pyinit {' '.join(adaptive)}",
            (*py, *adaptive),
            delay=MAXIMUM,
            quiet=QUIET,
        ),
        Variant(
            "pyinit-adaptive-rewrite",
            f"USR1 app, pyinit --rewrite TERM:USR1 {' '.join(adaptive)}",
            (*py, "--rewrite", "TERM:USR1", *adaptive),
            drain_on="USR1",
            delay=MAXIMUM,
            quiet=QUIET,
        ),
    ]


class Replica:
    """One replica: the init (or the bare app) as our child, on its own port."""

    def __init__(self, name: str, variant: Variant, workdir: Path, work_ms: float) -> None:
        self.name = name
        self.port = free_port()
        app = [sys.executable, str(APP), "--port", str(self.port), "--name", name, "--work-ms", f"{work_ms:g}"]
        app += ["--drain-on", variant.drain_on]
        self.argv = [*variant.init, *app]
        self.started = time.monotonic()
        self.ready_at: float | None = None
        self.t0: float | None = None  #: monotonic time of the SIGTERM
        self.t0_wall: float | None = None
        self.exited: float | None = None
        self.returncode: int | None = None
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "wb")  # closed by the watcher
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            env=env,
            start_new_session=True,  # like a container: not in our terminal's process group
        )
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        code = self.proc.wait()
        self.exited = time.monotonic()
        self.returncode = code
        self.log.close()

    @property
    def alive(self) -> bool:
        return self.exited is None

    def probe(self, timeout: float = 0.5) -> bool:
        """One GET straight to the replica (not through nginx), as a readiness probe."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"GET /ready HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"replica {self.name} exited {self.returncode} before answering: {self.argv}")
            if self.probe():
                self.ready_at = time.monotonic()
                return
            time.sleep(0.02)
        raise RuntimeError(f"replica {self.name} did not answer within {timeout:g}s")

    def terminate(self) -> None:
        """SIGTERM to the init, as the kubelet sends it; this is T0."""
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        os.kill(self.proc.pid, signal.SIGTERM)

    @property
    def stop_seconds(self) -> float | None:
        if self.t0 is None or self.exited is None:
            return None
        return self.exited - self.t0

    def wait_exit(self, timeout: float) -> bool:
        self._watcher.join(timeout)
        return not self.alive

    def kill(self) -> None:
        """SIGKILL the init and every descendant, by pid (cleanup only)."""
        if not self.alive:
            return
        try:
            tree = psutil.Process(self.proc.pid)
            processes = [*reversed(tree.children(recursive=True)), tree]
        except psutil.Error:
            processes = []
        for process in processes:
            try:
                process.kill()
            except psutil.Error:
                pass
        self.wait_exit(5.0)


#: pyinit's timeline line at the stop: "+2.043s last new connection on ...; +2.051s last data received"
LAST_DATA = re.compile(r"\+(\d+\.\d+)s last data received")
QUIET_FOR = re.compile(r"traffic had been quiet for (\d+\.\d+)s|still arriving (\d+\.\d+)s before the stop")


@dataclass
class Swap:
    """One old replica replaced by a new one; times are wall clock (for the log timeline)."""

    old: str
    new: str
    old_port: int = 0
    propagation: float = 0.0  #: T0 to the endpoint removal, as the controller was told to wait
    added: float = 0.0  #: the new replica serves through nginx
    t0: float = 0.0  #: SIGTERM to the old one
    removal_sent: float = 0.0  #: the controller reloads nginx without it
    removed: float = 0.0  #: nginx's new workers serve the config without it
    #: the last request nginx logged from the old replica (its old workers retire ~0.1 s after a reload)
    last_routed: float = 0.0
    stop_seconds: float | None = None  #: SIGTERM to the init's exit
    returncode: int | None = None
    failed: int = 0  #: failed requests nginx had routed to the old replica
    #: pyinit's own account, from its timeline: the last data received (seconds after T0), and how
    #: long traffic had been quiet when it passed the stop on (negative: still arriving so long before)
    measured: float | None = None
    quiet_for: float | None = None

    def read_timeline(self, text: str) -> None:
        data = LAST_DATA.search(text)
        self.measured = float(data.group(1)) if data else None
        quiet = QUIET_FOR.search(text)
        if quiet:
            self.quiet_for = float(quiet.group(1)) if quiet.group(1) else -float(quiet.group(2))


@dataclass
class Rollout:
    """One rollout of one variant under one load: what the client saw, and each swap."""

    variant: str
    mode: str
    index: int
    load_start: float  #: wall clock
    load_end: float
    counts: Counts
    swaps: list[Swap]
    #: (seconds since load_start, status) for every failed request nginx logged
    failures: list[tuple[float, int]] = field(default_factory=list)
    logged: int = 0  #: requests in nginx's log for this run

    @property
    def failed(self) -> int:
        return self.counts.failed


@dataclass
class Deployment:
    variant: Variant
    nginx: Nginx
    workdir: Path
    work_ms: float
    replicas: list[Replica] = field(default_factory=list)
    retired: list[Replica] = field(default_factory=list)
    _count: int = 0

    def spawn(self) -> Replica:
        self._count += 1
        replica = Replica(f"r{self._count}", self.variant, self.workdir, self.work_ms)
        self.retired.append(replica)  # every replica ever started, for cleanup
        return replica

    def scale_up(self, count: int) -> None:
        fresh = [self.spawn() for _ in range(count)]
        for replica in fresh:
            replica.wait_ready()
        self.replicas = fresh

    def upstreams(self) -> list[int]:
        return [r.port for r in self.replicas]

    def rollout(self, propagation: float, timeout: float = 60.0) -> list[Swap]:
        """Replace every replica once; return when the old ones have exited (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        todo = list(self.replicas)
        serving = list(self.replicas)  # what nginx routes to
        swaps: list[Swap] = []
        removals: list[tuple[float, Replica, Swap]] = []  # (monotonic due time, old, its swap)
        starting: Replica | None = None
        new_set: list[Replica] = []
        while (todo or starting or removals) and time.monotonic() < deadline:
            now = time.monotonic()
            for due, old, swap in [r for r in removals if r[0] <= now]:
                removals.remove((due, old, swap))
                serving.remove(old)
                swap.removal_sent = time.time()
                swap.removed = self.nginx.set_upstreams([r.port for r in serving])
            if starting is None and todo:
                starting = self.spawn()
            if starting is not None:
                if not starting.alive:
                    raise RuntimeError(f"new replica {starting.name} exited {starting.returncode}")
                if starting.probe(timeout=0.2):
                    old = todo.pop(0)
                    serving.append(starting)
                    new_set.append(starting)
                    swap = Swap(old=old.name, new=starting.name, old_port=old.port, propagation=propagation)
                    swap.added = self.nginx.set_upstreams([r.port for r in serving])
                    old.terminate()
                    swap.t0 = old.t0_wall or 0.0
                    assert old.t0 is not None
                    removals.append((old.t0 + propagation, old, swap))
                    swaps.append(swap)
                    starting = None
                    continue
            waits = [due - time.monotonic() for due, _, _ in removals]
            time.sleep(max(0.0, min([0.01, *waits])))
        if todo or starting or removals:
            raise RuntimeError(f"rollout did not finish within {timeout:g}s")
        old_by_name = {r.name: r for r in self.retired}
        for swap in swaps:
            old = old_by_name[swap.old]
            old.wait_exit(max(0.0, deadline - time.monotonic()))
            swap.stop_seconds = old.stop_seconds
            swap.returncode = old.returncode
            swap.read_timeline(old.log_path.read_text(errors="replace"))
        self.replicas = new_set
        return swaps

    def close(self) -> None:
        for replica in self.retired:
            replica.kill()
