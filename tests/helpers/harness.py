"""The test harness: run the real pyinit, watch what it prints, read /proc, wait for conditions.

Test modules import from here (``from helpers.harness import ...``: pytest puts
``tests/`` on sys.path, and ``helpers`` is a namespace package); conftest.py
only turns it into fixtures. Nothing here mocks anything: processes are real,
and every wait is for a condition, with a deadline generous enough for a
loaded machine.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent.parent
HELPERS = ROOT / "tests" / "helpers"
PY = sys.executable
WAIT = 20.0  # generous: tests assert order and behaviour, never speed
SLACK = 0.05  # timers may fire a hair early relative to the test's clock, never more
MODES = ["pid1", "child"]


def helper(name: str) -> str:
    return str(HELPERS / name)


PYINIT = (PY, "-m", "pyinit")
SIGPRINT = [PY, helper("sigprint.py")]
FAMILY = [PY, helper("family.py")]
JSON = ["--log-format", "json"]  # sequence tests read pyinit's events by name, not its English
LONG_DELAY = ["--pre-stop-delay", "60"]  # never sat out: see Pyinit.cut_the_delay_short
REALTIME = range(signal.SIGRTMIN, signal.SIGRTMAX + 1)


def signal_label(number: int) -> str:
    """A signal's name as sigprint.py prints it: real-time ones as ``SIGRTMIN+N``, N from 0."""
    return f"SIGRTMIN+{number - signal.SIGRTMIN}" if number in REALTIME else signal.Signals(number).name


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


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = WAIT, interval: float = 0.02) -> T:
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


def events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """pyinit's ``--log-format json`` lines as objects, in order (other lines are skipped)."""
    found = []
    for line in lines:
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                found.append(record)
    return found


def matches(record: dict[str, Any], name: str, wanted: dict[str, object]) -> bool:
    return record["event"] == name and all(record.get(key) == value for key, value in wanted.items())


# -- /proc ------------------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """The children of ``pid`` (none once it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def proc_status(pid: int) -> dict[str, str]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        found[key] = value.strip()
    return found


def state(pid: int) -> str:
    """The one-letter process state: R, S, T, Z, ..."""
    return proc_status(pid)["State"][0]


def pending(pid: int, number: int) -> bool:
    """Whether signal ``number`` waits to be handled by ``pid`` (sent to it or to its group)."""
    status = proc_status(pid)
    return bool((int(status["ShdPnd"], 16) | int(status["SigPnd"], 16)) >> (number - 1) & 1)


def alive(pid: int) -> bool:
    """Whether host pid ``pid`` is a live (not zombie) process."""
    try:
        return state(pid) not in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return False


def zombies_under(pid: int) -> list[int]:
    found = []
    for child in descendants(pid):
        try:
            if state(child) == "Z":
                found.append(child)
        except FileNotFoundError:
            pass
    return found


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and what runs beneath it, deepest first, each by pid."""
    for each in [*reversed(descendants(pid)), pid]:
        try:
            os.kill(each, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- gates ------------------------------------------------------------------------------------


class Gate:
    """A FIFO that a command blocks on (``gate.command``) until the test lets it go on.

    The test decides when "later" is, instead of a hook sleeping for a while
    and hoping the test has looked by then. ``reached()`` waits until the
    command is blocked at the gate and holds it there; ``release()`` lets it
    go on (it reads EOF).
    """

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.command = f"cat {shlex.quote(str(path))} >/dev/null"
        self._held: int | None = None

    def reached(self, timeout: float = WAIT) -> None:
        if self._held is None:
            self._held = wait_for(self._open, f"a command to wait at {self.path.name}", timeout)

    def _open(self) -> int | None:
        try:  # succeeds only once a reader has the FIFO open
            return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return None

    def release(self) -> None:
        self.reached()
        self.close()

    def close(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None


# -- watching a running process ------------------------------------------------------------------


class Watched:
    """A running process whose output is collected line by line, so a test can wait for a line."""

    def __init__(self, proc: subprocess.Popen[bytes], streams: list[tuple[IO[bytes], list[str]]]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._pumps = [threading.Thread(target=self._pump, args=pair, daemon=True) for pair in streams]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream: IO[bytes], sink: list[str]) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\n")
            sink.append(line)
            self.lines.append(line)
            self._new.put(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def expect_line(self, found: Callable[[str], T | None], what: str, timeout: float = WAIT) -> T:
        """Wait for a line for which ``found`` returns something, and return that."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                value = found(line)
                if value is not None:
                    return value
            seen = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line with {what} in:\n{self.text}")
            try:
                self._new.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                pass

    def expect(self, text: str, timeout: float = WAIT) -> str:
        """Wait for a line containing ``text`` and return it."""
        return self.expect_line(lambda line: line if text in line else None, repr(text), timeout)

    def drained(self, timeout: float = WAIT) -> None:
        """Wait until every output pipe is at EOF: each line is collected, every writer is gone."""
        deadline = time.monotonic() + timeout
        for pump in self._pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        if any(pump.is_alive() for pump in self._pumps):
            raise AssertionError(f"the output pipes are still open (a process outlived its parent?):\n{self.text}")


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
        assert proc.stdout is not None and proc.stderr is not None
        self.out: list[str] = []
        self.err: list[str] = []
        super().__init__(proc, [(proc.stdout, self.out), (proc.stderr, self.err)])
        self.pid = self._find_pid()

    def _find_pid(self) -> int:
        """The pid of pyinit itself, as seen from here (unshare forks it); -1 if it is gone already."""
        if self.mode != "pid1":
            return self.proc.pid

        def found() -> int | None:
            if self.proc.poll() is not None:
                return -1
            kids = children_of(self.proc.pid)
            return kids[0] if kids else None

        return wait_for(found, "pyinit to start under unshare")

    def kill(self, number: int) -> None:
        os.kill(self.pid, number)

    def wait(self, timeout: float = WAIT, *, drain: bool = True) -> int:
        """pyinit's exit code, once it exited and (``drain``) all it printed is collected.

        ``drain=False`` is for an init that leaves a process running which holds the
        pipes: lines may then still be on their way, so wait for the ones you need.
        """
        code = self.proc.wait(timeout=timeout)
        if drain:
            self.drained(timeout)
        return code

    def child_pid(self) -> int:
        """The host pid of the main child, once it runs."""
        return wait_for(lambda: next(iter(children_of(self.pid)), None), "pyinit's child")

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)

    @property
    def events(self) -> list[dict[str, Any]]:
        """What pyinit logged so far, when it runs with ``--log-format json``."""
        return events(self.err)

    @property
    def names(self) -> list[str]:
        return [record["event"] for record in self.events]

    def event(self, name: str, **wanted: object) -> dict[str, Any]:
        """The first logged event ``name`` (with these field values)."""
        for record in self.events:
            if matches(record, name, wanted):
                return record
        raise AssertionError(f"no event {name} {wanted or ''} in:\n{self.stderr}")

    def offset(self, name: str, **wanted: object) -> float:
        """Seconds from T0 to the first event ``name``."""
        record = self.event(name, **wanted)
        assert isinstance(record.get("offset"), (int, float)), f"{record} carries no offset from T0"
        return float(record["offset"])

    def expect_event(self, name: str, timeout: float = WAIT, **wanted: object) -> dict[str, Any]:
        """Wait until pyinit logs event ``name`` (with these field values) and return it."""

        def found(line: str) -> dict[str, Any] | None:
            return next((record for record in events([line]) if matches(record, name, wanted)), None)

        return self.expect_line(found, f"event {name} {wanted or ''}", timeout)

    def cut_the_delay_short(self) -> None:
        """The second stop signal, to a sigprint child: the pre-stop delay ends, the child gets TERM.

        Tests that look at what happens during the delay give a delay they never sit
        out, and end it this way once they have looked, however slow the machine.
        """
        assert "signal SIGTERM" not in self.out, "the stop was held back until now"
        self.kill(signal.SIGTERM)
        self.expect("signal SIGTERM")

    def close(self) -> None:
        if self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait()


def run_pyinit(
    args: list[str], *, mode: str = "child", timeout: float = WAIT, program: Sequence[str] = PYINIT, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """pyinit run to its end; ``program`` as for ``Pyinit`` (a launcher that sets the scene and execs it)."""
    prefix = list(NAMESPACE or []) if mode == "pid1" else []
    return subprocess.run([*prefix, *program, *args], capture_output=True, text=True, timeout=timeout, **kw)


def one_line_error(result: subprocess.CompletedProcess[str], *named: str) -> str:
    """Bad input as pyinit answers it: exit 2, ONE ``[pyinit] error:`` line naming each of ``named``; that line."""
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[pyinit] error:"), result.stderr
    for text in named:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in result.stderr
    return lines[0]


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
