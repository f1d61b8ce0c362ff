#!/usr/bin/env python3
"""The core benchmark: pyinit beside tini and dumb-init, all three as PID 1, in one run.

    python3 bench/core.py       # as root; about a minute; prints a markdown table

Needs root (for ``unshare --pid``), gcc, and Debian's tini and dumb-init::

    apt-get install -y tini dumb-init gcc

Each init runs as PID 1 of its own PID namespace
(``unshare --pid --fork --mount-proc INIT -- CHILD``) and is measured from
outside, through its host pid (the child of the ``unshare`` process):

* forwarding latency: the time from ``kill(init, SIGUSR1)`` to the child's
  handler running. The child (helpers/sigecho.c) writes CLOCK_MONOTONIC at
  handler entry to a pipe; CLOCK_MONOTONIC is one clock across PID namespaces,
  so the sender subtracts the time it took right before kill(). One signal is
  in flight at a time (the next is sent only once the reply is read), so none
  coalesce. The inits take turns signal by signal, in a rotating order.
* burst reaping: helpers/burst.c forks 2,000 grandchildren through a middle
  process that exits at once, so all are orphans re-parented to the init, each
  blocked on a pipe the child holds. Closing it makes all 2,000 exit at the
  same moment; the time is from then until the init has no child left but the
  main one (a tight read of /proc/INIT/task/*/children, which lists zombies
  until they are reaped), confirmed by a /proc scan for Z-state processes whose
  PPid is the init. That time is mostly the kernel tearing down 2,000
  processes, so a second kind of burst isolates the init's share: the init is
  stopped (SIGSTOP) while the 2,000 exit, and the clock starts when it is
  continued (SIGCONT) with all 2,000 zombies waiting. The inits take turns,
  burst by burst.
* idle wake-ups: voluntary_ctxt_switches of the init (all its threads) over
  10 s while the child sleeps (blocked reading its stdin), every init in the
  same window.
* RSS: VmRSS of the init while the child sleeps.
* startup: the wall time of ``INIT -- true``, as PID 1 under unshare (the
  number the target is about; ``unshare`` alone is reported too, to subtract)
  and plain, median over 20 rounds in which every case takes its turn.

pyinit runs as the installed console script of the interpreter running this
file (not a pyenv shim, which puts a shell and ``pyenv exec`` in front);
``--pyinit`` picks another command, e.g. ``--pyinit "python -m pyinit"``.
``python -m pyinit`` startup gets a row of its own. So do RSS and startup of
pyinit installed the way an image would (``pip install .``, not editable) into
a fresh venv, since the developer's interpreter may load .pth files at every
start that a container never has (``--no-clean-venv`` skips this; it needs pip
and the package index for click and psutil).

The machine is shared and noisy, so every number is a median (or percentile)
from this one run, and each ratio compares numbers measured in the same run.
A missed target is reported, not an error: the exit status is non-zero only
when something crashed (a helper failed, an init died, a reply never came).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "helpers"
NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc"]
INSTALL_HINT = "apt-get install -y tini dumb-init gcc"
RECORD = struct.Struct("=q")
MIB = 1024 * 1024

#: Every session still running, so a crash or ^C cleans up what this script started.
LIVE: set[Session] = set()


class BenchError(Exception):
    """Something crashed: a helper, an init, or a reply that never came."""


# -- helpers --------------------------------------------------------------------


def build_helpers(workdir: Path) -> dict[str, str]:
    built = {}
    for name in ("sigecho", "burst"):
        out = workdir / name
        cmd = ["gcc", "-O2", "-Wall", "-o", str(out), str(HELPERS / f"{name}.c")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"compiling {name}.c failed:\n{result.stderr}")
        built[name] = str(out)
    return built


def default_pyinit() -> list[str]:
    """The console script installed for this interpreter, else whatever PATH has."""
    script = Path(sysconfig.get_path("scripts")) / "pyinit"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("pyinit")
    if found:
        return [found]
    return [sys.executable, "-m", "pyinit"]


def read_exact(fd: int, size: int, timeout: float) -> bytes | None:
    """``size`` bytes from ``fd``, or None if they do not all come in ``timeout`` s."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise BenchError("the child's stdout closed (did the child or the init die?)")
        data += chunk
    return data


def drain(fd: int) -> int:
    """Throw away whatever is waiting on ``fd`` (late replies); return how many bytes."""
    dropped = 0
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        dropped += len(chunk)
    return dropped


def proc_status(pid: int, tid: str | None = None) -> dict[str, str]:
    """/proc/PID/status, or one thread's (/proc/PID/task/TID/status), as a dict."""
    fields = {}
    with open(f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def zombies_of(parent: int) -> int:
    """A full /proc scan: how many Z-state processes have PPid ``parent``."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] == b"Z" and int(fields[1]) == parent:
            count += 1
    return count


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def rotations(names: Sequence[str], rounds: int):
    """Round after round, every name once, starting one further along each time."""
    for r in range(rounds):
        k = r % len(names)
        yield r, [*names[k:], *names[:k]]


# -- one init as PID 1 ------------------------------------------------------------


class Session:
    """One init as PID 1 of a fresh PID namespace, running one helper as its child."""

    def __init__(self, name: str, init: Sequence[str], child: Sequence[str], logdir: Path, tag: str) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.{tag}.stderr"
        self._log = open(self.log_path, "wb")  # closed in close()
        self.proc = subprocess.Popen(
            [*NAMESPACE, *init, "--", *child],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        LIVE.add(self)
        self.out = self.proc.stdout.fileno()  # type: ignore[union-attr]
        self.inp = self.proc.stdin.fileno()  # type: ignore[union-attr]
        self.pid = 0
        first = self.read_record(timeout=20)
        if first is None:
            raise BenchError(f"{name}: the child never said it was ready{self.log_tail()}")
        self.first_record = first
        self.pid = self._find_init()
        self.tids = os.listdir(f"/proc/{self.pid}/task")
        kids = self.children()
        if len(kids) != 1:
            raise BenchError(f"{name}: expected one child of the init, found {kids}")
        self.child_pid = kids[0]

    def _find_init(self) -> int:
        """The init's host pid: the one child of the unshare process, PID 1 inside."""
        upid = self.proc.pid
        with open(f"/proc/{upid}/task/{upid}/children") as f:
            kids = [int(p) for p in f.read().split()]
        if len(kids) != 1:
            raise BenchError(f"{self.name}: unshare has children {kids}, expected one")
        nspid = proc_status(kids[0]).get("NSpid", "").split()
        if not nspid or nspid[-1] != "1":
            raise BenchError(f"{self.name}: pid {kids[0]} is not PID 1 in its namespace (NSpid {nspid})")
        return kids[0]

    def log_tail(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        return f"\n  {self.name} stderr: {text[-800:]}" if text else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_record(self, timeout: float) -> int | None:
        try:
            data = read_exact(self.out, RECORD.size, timeout)
        except BenchError as exc:
            self.proc.poll()
            raise BenchError(f"{self.name}: {exc}, exit status {self.proc.returncode}{self.log_tail()}") from None
        return None if data is None else RECORD.unpack(data)[0]

    def command(self, byte: bytes, timeout: float) -> int:
        os.write(self.inp, byte)
        value = self.read_record(timeout)
        if value is None:
            raise BenchError(f"{self.name}: no answer to {byte!r} within {timeout} s{self.log_tail()}")
        return value

    def children(self) -> list[int]:
        found: list[int] = []
        for tid in self.tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/children") as f:
                    found += [int(p) for p in f.read().split()]
            except FileNotFoundError:
                pass
        return found

    def children_text(self) -> str:
        """The raw children lists (cheap enough for a tight loop)."""
        text = ""
        for tid in self.tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/children") as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def voluntary_switches(self) -> int:
        total = 0
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                total += int(proc_status(self.pid, tid)["voluntary_ctxt_switches"])
            except FileNotFoundError:
                pass
        return total

    def rss_bytes(self) -> int:
        value = proc_status(self.pid)["VmRSS"]  # "12345 kB"
        return int(value.split()[0]) * 1024

    def _init_is_ours(self) -> bool:
        """Only signal the init's pid while it is still our unshare's child (no pid reuse)."""
        if not self.pid or not self.alive():
            return False
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return str(self.pid) in f.read().split()
        except OSError:
            return False

    def close(self, polite: Callable[[Session], None] | None = None, timeout: float = 10.0) -> int | None:
        """Stop politely if asked, else (or if that fails) SIGKILL PID 1, which ends the namespace."""
        try:
            if polite is not None and self.alive():
                try:
                    polite(self)
                    self.proc.wait(timeout)
                except (subprocess.TimeoutExpired, OSError):
                    pass
            if self.alive():
                if self._init_is_ours():
                    os.kill(self.pid, signal.SIGKILL)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()  # our own child, by its pid
                    self.proc.wait(5)
            return self.proc.returncode
        finally:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()  # type: ignore[union-attr]
                except (OSError, AttributeError):
                    pass
            self._log.close()
            LIVE.discard(self)


def terminate(session: Session) -> None:
    if session._init_is_ours():
        os.kill(session.pid, signal.SIGTERM)


def close_stdin(session: Session) -> None:
    session.proc.stdin.close()  # type: ignore[union-attr]


def cleanup() -> None:
    for session in list(LIVE):
        try:
            session.close()
        except Exception as exc:  # best effort on the way out
            print(f"cleanup of {session.name} failed: {exc}", file=sys.stderr)


# -- the measurements ------------------------------------------------------------


def measure_idle_and_latency(
    inits: dict[str, list[str]],
    idle_only: dict[str, list[str]],
    helpers: dict[str, str],
    logdir: Path,
    args: argparse.Namespace,
) -> dict[str, dict]:
    """Idle wake-ups and RSS of every init (same window), then forwarding latency of ``inits``."""
    everyone = {**inits, **idle_only}
    sessions = {name: Session(name, cmd, [helpers["sigecho"]], logdir, "sigecho") for name, cmd in everyone.items()}
    results: dict[str, dict] = {name: {} for name in everyone}
    time.sleep(1.0)  # let every init settle into its wait

    # Idle: every init in the same window, its child asleep in read().
    before = {name: s.voluntary_switches() for name, s in sessions.items()}
    time.sleep(args.idle)
    for name, s in sessions.items():
        results[name]["idle_switches"] = s.voluntary_switches() - before[name]
        results[name]["rss"] = s.rss_bytes()
        if not s.alive():
            raise BenchError(f"{name} died while idle{s.log_tail()}")

    for name in idle_only:
        sessions.pop(name).close(terminate)

    # Forwarding latency: one signal in flight at a time, inits taking turns.
    lat: dict[str, list[float]] = {name: [] for name in inits}
    lost = dict.fromkeys(inits, 0)
    total = args.warmup + args.signals
    for i, order in rotations(list(inits), total):
        for name in order:
            s = sessions[name]
            drain(s.out)
            sent = time.monotonic_ns()
            os.kill(s.pid, signal.SIGUSR1)
            got = s.read_record(timeout=2.0)
            if got is None:
                lost[name] += 1
                if not s.alive():
                    raise BenchError(f"{name} died during the latency run{s.log_tail()}")
                continue
            if i >= args.warmup:
                lat[name].append((got - sent) / 1000.0)  # microseconds
    for name in inits:
        if not lat[name]:
            raise BenchError(f"{name}: no forwarded signal ever reached the child")
        results[name]["lat_p50"] = percentile(lat[name], 0.50)
        results[name]["lat_p99"] = percentile(lat[name], 0.99)
        results[name]["lat_n"] = len(lat[name])
        results[name]["lat_lost"] = lost[name]
        results[name]["lat_raw"] = lat[name]

    for s in sessions.values():
        s.close(terminate)
    return results


def proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "gone"
    return stat[stat.rindex(b")") + 2 :].split(maxsplit=1)[0].decode()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0, pause: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting until {what}")
        time.sleep(pause)


def one_burst(s: Session, zombies: int, isolated: bool) -> float:
    """Fire one burst; milliseconds until the init has no child left but the main one.

    End to end (``isolated`` false): from the moment the 2,000 are told to exit,
    so the time includes their exits, which the init cannot speed up. Isolated:
    the init is stopped (SIGSTOP works on a namespace's PID 1 from outside)
    while they exit, so all 2,000 zombies are waiting when it is woken
    (SIGCONT), and the time is the init's reaping alone.
    """
    made = s.command(b"s", timeout=120)
    if made != zombies:
        raise BenchError(f"{s.name}: the burst helper forked {made} of {zombies}")
    kids = s.children()
    if len(kids) != zombies + 1:
        raise BenchError(f"{s.name}: the init has {len(kids)} children, expected {zombies + 1}")
    time.sleep(0.2)  # let the fork storm's aftermath settle
    only_main = f"{s.child_pid} "
    if isolated:
        os.kill(s.pid, signal.SIGSTOP)
        wait_until(lambda: proc_state(s.pid) == "T", f"{s.name} is stopped")
    os.write(s.inp, b"g")
    fired = s.read_record(timeout=30)
    if fired is None:
        raise BenchError(f"{s.name}: the burst helper never said when it fired")
    if isolated:
        grandchildren = [pid for pid in kids if pid != s.child_pid]
        wait_until(
            lambda: all(proc_state(pid) == "Z" for pid in grandchildren),
            f"all {zombies} of {s.name}'s grandchildren are zombies",
            pause=0.02,
        )
        fired = time.monotonic_ns()
        os.kill(s.pid, signal.SIGCONT)
    # Tight scan: the init's children lists hold its zombies until they are reaped.
    deadline = time.monotonic() + 60
    while s.children_text() != only_main:
        if time.monotonic() > deadline:
            raise BenchError(f"{s.name}: zombies still there after 60 s{s.log_tail()}")
    done = time.monotonic_ns()
    return (done - fired) / 1e6


def measure_bursts(
    inits: dict[str, list[str]], helpers: dict[str, str], logdir: Path, args: argparse.Namespace
) -> dict[str, dict]:
    sessions = {
        name: Session(name, cmd, [helpers["burst"], str(args.zombies)], logdir, "burst") for name, cmd in inits.items()
    }
    results: dict[str, dict] = {name: {"burst_raw": [], "reap_raw": [], "burst_leftover": 0} for name in inits}
    for _, order in rotations(list(inits), args.bursts):
        for isolated in (False, True):
            for name in order:
                s = sessions[name]
                elapsed = one_burst(s, args.zombies, isolated)
                results[name]["reap_raw" if isolated else "burst_raw"].append(elapsed)
                results[name]["burst_leftover"] += zombies_of(s.pid)
    for s in sessions.values():
        s.close(close_stdin)
    for r in results.values():
        r["burst_ms"] = statistics.median(r["burst_raw"])
        r["reap_ms"] = statistics.median(r["reap_raw"])
    return results


def measure_startup(cases: dict[str, list[str]], args: argparse.Namespace) -> dict[str, float]:
    """Median wall time of each command line, over rounds in which every case takes its turn."""

    def run(argv: list[str]) -> float:
        start = time.perf_counter()
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise BenchError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.decode()[-400:]}")
        return elapsed * 1000.0

    for argv in cases.values():  # warm the page cache and the .pyc files
        run(argv)
    samples: dict[str, list[float]] = {case: [] for case in cases}
    for _, order in rotations(list(cases), args.startup_runs):
        for case in order:
            samples[case].append(run(cases[case]))
    return {case: statistics.median(values) for case, values in samples.items()}


def startup_cases(inits: dict[str, list[str]]) -> dict[str, list[str]]:
    """``INIT -- true`` as PID 1 and plain for each init; unshare alone, to subtract."""
    cases: dict[str, list[str]] = {}
    for name, cmd in inits.items():
        cases[f"{name}|ns"] = [*NAMESPACE, *cmd, "--", "true"]
        cases[f"{name}|plain"] = [*cmd, "--", "true"]
    cases["unshare|ns"] = [*NAMESPACE, "true"]
    return cases


def clean_venv(workdir: Path) -> list[str] | None:
    """pyinit installed the ordinary way (not editable) in a venv with nothing else in it.

    The interpreter this script runs under may load .pth files at every start
    (an editable install's finder, whatever else site-packages holds); a
    container image has none of that. The checkout is copied first, so the
    build writes nothing into it. Returns the venv's ``pyinit``, or None (with
    a note on stderr) when it cannot be built, e.g. with no package index.
    """
    root = HERE.parent
    src, venv = workdir / "src", workdir / "venv"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copy2(root / name, src / name)
    shutil.copytree(root / "pyinit", src / "pyinit", ignore=shutil.ignore_patterns("__pycache__"))
    steps = [
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            str(src),
        ],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            why = result.stderr.strip()[-300:]
            print(f"note: no clean-venv rows: {shlex.join(step)} failed: {why}", file=sys.stderr)
            return None
    return [str(venv / "bin" / "pyinit")]


# -- the report -------------------------------------------------------------------

VENV, MODULE = "pyinit (clean venv)", "python -m pyinit"


def render(results: dict[str, dict], startup: dict[str, float], meta: dict) -> tuple[str, list[str]]:
    """The markdown table, and the names of the targets that were missed."""
    t, d, p = results["tini"], results["dumb-init"], results["pyinit"]
    rows: list[tuple[str, ...]] = []
    missed: list[str] = []

    def judge(metric: str, held: bool | None) -> str:
        if held is None:
            return "—"
        if not held:
            missed.append(metric)
        return "yes" if held else "**no**"

    def row(
        metric: str, values: Sequence[float | None], fmt: str, target: str, held: bool | None, with_ratio: bool = True
    ) -> None:
        cells = ["—" if v is None else fmt.format(v) for v in values]
        tini, mine = values[0], values[2]
        ratio = f"{mine / tini:.2f}x" if with_ratio and tini and mine is not None else "—"
        rows.append((metric, *cells, ratio, target, judge(metric, held)))

    def per_init(key: str) -> list[float]:
        return [r[key] for r in (t, d, p)]

    def started(name: str, mode: str) -> float | None:
        return startup.get(f"{name}|{mode}")

    n, runs, bursts = p["lat_n"], meta["startup_runs"], meta["bursts"]
    row(
        f"forwarding latency p50, µs ({n} signals)",
        per_init("lat_p50"),
        "{:.1f}",
        "≤ 1.5x tini",
        p["lat_p50"] <= 1.5 * t["lat_p50"],
    )
    row(
        f"forwarding latency p99, µs ({n} signals)",
        per_init("lat_p99"),
        "{:.1f}",
        "≤ 2x tini",
        p["lat_p99"] <= 2 * t["lat_p99"],
    )
    row(
        f"burst of {meta['zombies']:,} orphaned zombies, exit to none left, ms (median of {bursts})",
        per_init("burst_ms"),
        "{:.1f}",
        "≤ 1.5x tini",
        p["burst_ms"] <= 1.5 * t["burst_ms"],
    )
    row(
        f"reaping alone: {meta['zombies']:,} zombies already waiting, ms (median of {bursts})",
        per_init("reap_ms"),
        "{:.1f}",
        "≤ 1.5x tini",
        p["reap_ms"] <= 1.5 * t["reap_ms"],
    )
    row(
        f"idle voluntary context switches in {meta['idle']:g} s",
        per_init("idle_switches"),
        "{:.0f}",
        "0",
        p["idle_switches"] == 0,
        with_ratio=False,
    )
    # RSS and startup are judged on pyinit as an image installs it (`pip install .`
    # into a fresh venv) when that was built: the developers' interpreter loads
    # its own .pth files at every start, which is not pyinit's weight.
    venv_built = VENV in results
    context = "context: dev interpreter"
    row(
        "RSS while the child sleeps, MiB",
        [r["rss"] / MIB for r in (t, d, p)],
        "{:.1f}",
        context if venv_built else "≤ 16 MiB",
        None if venv_built else p["rss"] <= 16 * MIB,
    )
    ns = [started(name, "ns") for name in ("tini", "dumb-init", "pyinit")]
    row(
        f"startup `INIT -- true` as PID 1, ms (median of {runs})",
        ns,
        "{:.1f}",
        context if venv_built else "≤ 120 ms",
        None if venv_built else ns[2] is not None and ns[2] <= 120,
    )
    row(
        f"startup `INIT -- true` plain, ms (median of {runs})",
        [started(name, "plain") for name in ("tini", "dumb-init", "pyinit")],
        "{:.1f}",
        "—",
        None,
    )
    if VENV in results:
        row(
            "↳ pyinit from a clean venv: RSS, MiB",
            [t["rss"] / MIB, None, results[VENV]["rss"] / MIB],
            "{:.1f}",
            "≤ 16 MiB",
            results[VENV]["rss"] <= 16 * MIB,
        )
    if started(VENV, "ns") is not None:
        venv_ns = started(VENV, "ns")
        row(
            "↳ pyinit from a clean venv: startup as PID 1, ms",
            [ns[0], None, venv_ns],
            "{:.1f}",
            "≤ 120 ms",
            venv_ns <= 120,
        )
        row(
            "↳ pyinit from a clean venv: startup plain, ms",
            [started("tini", "plain"), None, started(VENV, "plain")],
            "{:.1f}",
            "—",
            None,
        )
    if started(MODULE, "ns") is not None:
        row("↳ `python -m pyinit`: startup as PID 1, ms", [ns[0], None, started(MODULE, "ns")], "{:.1f}", "—", None)

    header = ("metric", "tini", "dumb-init", "pyinit", "pyinit/tini", "target", "held?")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] + [" ---: "] * 4 + [" --- "] * 2) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines), missed


def version(cmd: Sequence[str]) -> str:
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pyinit", help="command that runs pyinit (default: the installed console script)")
    parser.add_argument("--signals", type=int, default=1000, help="forwarded signals per init (default 1000)")
    parser.add_argument("--warmup", type=int, default=20, help="signals per init not counted (default 20)")
    parser.add_argument("--zombies", type=int, default=2000, help="zombies per burst (default 2000)")
    parser.add_argument("--bursts", type=int, default=7, help="bursts per init and kind (default 7)")
    parser.add_argument("--idle", type=float, default=10.0, help="idle window in seconds (default 10)")
    parser.add_argument("--startup-runs", type=int, default=20, help="startup rounds (default 20)")
    parser.add_argument(
        "--no-clean-venv",
        action="store_true",
        help="skip the rows for pyinit installed non-editable in a fresh venv (needs pip)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every raw number here")
    args = parser.parse_args(argv)
    if args.signals < 1 or args.bursts < 1 or args.startup_runs < 1 or args.zombies < 1:
        parser.error("counts must be at least 1")

    missing = [tool for tool in ("tini", "dumb-init", "gcc", "unshare") if not shutil.which(tool)]
    if missing:
        print(f"missing: {', '.join(missing)}. Install with: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("run as root: each init runs as PID 1 of a new PID namespace (unshare --pid)", file=sys.stderr)
        return 2

    pyinit = shlex.split(args.pyinit) if args.pyinit else default_pyinit()
    inits = {
        "tini": [shutil.which("tini") or "tini"],
        "dumb-init": [shutil.which("dumb-init") or "dumb-init"],
        "pyinit": pyinit,
    }
    meta = {
        "zombies": args.zombies,
        "bursts": args.bursts,
        "idle": args.idle,
        "startup_runs": args.startup_runs,
        "signals": args.signals,
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": f"{platform.python_version()} ({sys.executable})",
        "versions": {name: version(cmd) for name, cmd in inits.items()},
        "pyinit_command": shlex.join(pyinit),
        "pyinit_on_path": shutil.which("pyinit"),
    }

    started = time.monotonic()
    atexit.register(cleanup)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda n, _f: sys.exit(128 + n))
    try:
        with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
            workdir = Path(tmp)
            helpers = build_helpers(workdir)
            venv = None if args.no_clean_venv else clean_venv(workdir)
            idle_only = {VENV: venv} if venv else {}
            results = measure_idle_and_latency(inits, idle_only, helpers, workdir, args)
            for name, values in measure_bursts(inits, helpers, workdir, args).items():
                results[name].update(values)
            cases = startup_cases({**inits, **idle_only})
            if pyinit[1:] != ["-m", "pyinit"]:
                cases[f"{MODULE}|ns"] = [*NAMESPACE, sys.executable, "-m", "pyinit", "--", "true"]
            cases["python -c pass|plain"] = [sys.executable, "-c", "pass"]
            if venv:
                cases["venv python -c pass|plain"] = [str(Path(venv[0]).with_name("python")), "-c", "pass"]
            startup = measure_startup(cases, args)
    except BenchError as exc:
        print(f"benchmark crashed: {exc}", file=sys.stderr)
        return 1
    finally:
        cleanup()
    elapsed = time.monotonic() - started

    table, missed = render(results, startup, meta)
    versions = ", ".join(meta["versions"].values())
    lost = {name: r["lat_lost"] for name, r in results.items() if r.get("lat_lost")}
    left = {name: r["burst_leftover"] for name, r in results.items() if r.get("burst_leftover")}
    baseline = f"`python -c pass` takes {startup['python -c pass|plain']:.1f} ms with this interpreter"
    if "venv python -c pass|plain" in startup:
        baseline += f", {startup['venv python -c pass|plain']:.1f} ms in the clean venv"
    print(table)
    print()
    print(
        f"Linux {meta['kernel']}, {meta['cpus']} CPUs; Python {meta['python']}; {versions}. "
        f"pyinit ran as `{meta['pyinit_command']}`"
        + (" (the venv rows: installed with `pip install .` into a fresh venv)" if VENV in results else "")
        + ". Each init ran as PID 1 of its own PID namespace (`unshare --pid --fork --mount-proc`), with its "
        "default forwarding (tini: to the child; dumb-init and pyinit: to its process group); the inits took "
        "turns signal by signal, burst by burst and run by run. "
        f"`unshare --pid --fork --mount-proc true` alone takes {startup['unshare|ns']:.1f} ms; {baseline}. "
        f"Lost signals: {lost or 'none'}; zombies left after a burst: {left or 'none'}. Whole run: {elapsed:.0f} s."
    )
    print()
    print("All targets held." if not missed else f"Missed: {'; '.join(missed)}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results, "startup": startup}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
