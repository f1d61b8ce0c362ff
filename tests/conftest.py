"""Drive the real pyinit from outside, as PID 1 of a fresh PID namespace and as a plain child.

Nothing about the kernel is mocked: each test starts ``python -m pyinit`` as a
real process, sends it real signals and reads /proc. The ``mode`` fixture runs
a test both ways.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "tests" / "helpers"
PY = sys.executable
WAIT = 20.0  # generous: tests assert order and behaviour, never speed


def helper(name: str) -> str:
    return str(HELPERS / name)


def namespace_prefix() -> list[str] | None:
    """How to get a real PID 1 here, or None when this machine cannot make one."""
    if not shutil.which("unshare"):
        return None
    for prefix in (
        ["unshare", "--pid", "--fork", "--mount-proc"],
        ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"],
    ):
        if subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
            return prefix
    return None


NAMESPACE = namespace_prefix()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT, interval: float = 0.02) -> Any:
    """Wait until ``predicate()`` is truthy and return its value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def fields(line: str) -> dict[str, str]:
    """``ready pid=1 pgid=2 sid=3`` -> {'pid': '1', ...}"""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def proc_status(pid: int) -> dict[str, str]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


REALTIME = range(signal.SIGRTMIN, signal.SIGRTMAX + 1)


def signal_label(number: int) -> str:
    """A signal's name as sigprint.py prints it: real-time ones as ``SIGRTMIN+N``, N from 0."""
    return f"SIGRTMIN+{number - signal.SIGRTMIN}" if number in REALTIME else signal.Signals(number).name


def state(pid: int) -> str:
    """The process state letter: R, S, T (stopped), Z..."""
    return proc_status(pid)["State"][0]


def pending(pid: int, number: int) -> bool:
    """Whether signal ``number`` waits to be handled by ``pid`` (sent to it or to its group)."""
    status = proc_status(pid)
    return bool((int(status["ShdPnd"], 16) | int(status["SigPnd"], 16)) >> (number - 1) & 1)


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def zombies_under(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            if proc_status(child)["State"].startswith("Z"):
                found.append(child)
        except FileNotFoundError:
            pass
    return found


class Watched:
    """A running process whose output is collected line by line, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen, streams: list[tuple[object, list[str]]]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        for stream, sink in streams:
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    def _pump(self, stream, sink: list[str]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            sink.append(line)
            self.lines.append(line)
            self._new.put(line)

    def expect(self, text: str, timeout: float = WAIT) -> str:
        """Wait for a line containing ``text`` and return it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if text in line:
                    return line
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {text!r} in:\n" + "\n".join(self.lines))
            try:
                self._new.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                pass


PYINIT = (PY, "-m", "pyinit")


class Pyinit(Watched):
    """One running pyinit, with its output collected line by line.

    ``program`` replaces ``python -m pyinit``: the compatibility tests run tini
    and dumb-init the same way, or put a launcher in front (it must exec, so
    that the pid found is the init's). ``pass_fds`` keeps descriptors open for it.
    """

    def __init__(
        self,
        args: list[str],
        *,
        mode: str,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        stdin: int | None = subprocess.DEVNULL,
        program: Sequence[str] = PYINIT,
        pass_fds: Sequence[int] = (),
    ) -> None:
        prefix = list(NAMESPACE or []) if mode == "pid1" else []
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.mode = mode
        proc = subprocess.Popen(
            [*prefix, *program, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=stdin,
            env=full_env,
            cwd=cwd or str(ROOT),
            pass_fds=pass_fds,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        super().__init__(proc, [(proc.stdout, self.out), (proc.stderr, self.err)])
        self.pid = self._find_pid()

    def _find_pid(self) -> int:
        """The pid of pyinit itself, as seen from here (unshare forks it)."""
        if self.mode != "pid1":
            return self.proc.pid
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            kids = children_of(self.proc.pid) if self.proc.poll() is None else []
            if kids:
                return kids[0]
            if self.proc.poll() is not None:
                return -1
            time.sleep(0.01)
        raise AssertionError("pyinit did not start under unshare")

    def kill(self, number: int) -> None:
        os.kill(self.pid, number)

    def wait(self, timeout: float = WAIT) -> int:
        code = self.proc.wait(timeout=timeout)
        time.sleep(0.05)  # let the pumps drain the pipes
        return code

    def child_pid(self) -> int:
        """The host pid of the main child, once it runs."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            kids = children_of(self.pid)
            if kids:
                return kids[0]
            time.sleep(0.01)
        raise AssertionError("pyinit has no child")

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in [*reversed(descendants(self.proc.pid)), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()


def job_stop_handled(init: Pyinit, child: int) -> None:
    """Wait until ``init`` has handled the TSTP, TTIN or TTOU it was sent, its own SIGSTOP included.

    Only then may a SIGCONT follow: a stop signal makes the kernel discard a
    pending SIGCONT, even for a PID 1 that then ignores the stop. As a plain
    child the init is stopped by now. As PID 1 its self-stop has no effect, so
    a marker the init handles after the stop (SIGURG, a higher number, sent
    later) must have reached ``child``: printed by sigprint, or pending there.
    """
    if init.mode == "child":
        wait_for(lambda: state(init.pid) == "T", "the init to stop itself")
        return
    init.kill(signal.SIGURG)
    wait_for(lambda: "signal SIGURG" in init.lines or pending(child, signal.SIGURG), "the init to forward SIGURG")


MODES = ["pid1", "child"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "pid1" and NAMESPACE is None:
        pytest.skip("cannot create a PID namespace here: neither root nor user namespaces work")
    return request.param


@pytest.fixture
def start(mode: str) -> Iterator:
    """``start(args, **kw)`` runs pyinit in the test's mode; everything is killed afterwards."""
    running: list[Pyinit] = []

    def _start(args: list[str], **kw) -> Pyinit:
        instance = Pyinit(args, mode=mode, **kw)
        running.append(instance)
        return instance

    yield _start
    for instance in running:
        instance.close()


def run_pyinit(args: list[str], *, mode: str = "child", timeout: float = WAIT, **kw) -> subprocess.CompletedProcess:
    prefix = list(NAMESPACE or []) if mode == "pid1" else []
    return subprocess.run([*prefix, *PYINIT, *args], capture_output=True, text=True, timeout=timeout, **kw)
