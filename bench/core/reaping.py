"""Burst reaping: a crowd of orphans exits at once, on inits whose child is helpers/burst.c."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bench.core import procfs
from bench.core.records import Bursts, Settings
from bench.core.session import BenchError, Session, close_stdin
from bench.core.turns import rotations


def measure_bursts(
    inits: dict[str, list[str]], helpers: dict[str, str], logdir: Path, settings: Settings
) -> dict[str, Bursts]:
    """Both kinds of burst, each init in turn, ``settings.bursts`` rounds."""
    child = [helpers["burst"], str(settings.zombies)]
    sessions = {name: Session(name, cmd, child, logdir, "burst") for name, cmd in inits.items()}
    results = {name: Bursts() for name in inits}
    for _, order in rotations(list(inits), settings.bursts):
        for isolated in (False, True):
            for name in order:
                s = sessions[name]
                elapsed = one_burst(s, settings.zombies, isolated)
                (results[name].reap_raw if isolated else results[name].burst_raw).append(elapsed)
                results[name].leftover += procfs.zombies_of(s.pid)
    for s in sessions.values():
        s.close(close_stdin)
    return results


def one_burst(s: Session, zombies: int, isolated: bool) -> float:
    """Fire one burst; milliseconds until the init has no child left but the main one.

    End to end (``isolated`` false): from the moment the orphans are told to
    exit, so the time includes their exits, which the init cannot speed up.
    Isolated: the init is stopped (SIGSTOP works on a namespace's PID 1 from
    outside) while they exit, so all the zombies are waiting when it is woken
    (SIGCONT), and the time is the init's reaping alone.
    """
    orphans = spawn_orphans(s, zombies)
    if isolated:
        os.kill(s.pid, signal.SIGSTOP)
        wait_until(lambda: procfs.state(s.pid) == "T", f"{s.name} is stopped")
    fired = release(s)
    if isolated:
        wait_until(
            lambda: all(procfs.state(pid) == "Z" for pid in orphans),
            f"all {zombies} of {s.name}'s grandchildren are zombies",
            pause=0.02,
        )
        fired = time.monotonic_ns()
        os.kill(s.pid, signal.SIGCONT)
    done = reaped(s)
    return (done - fired) / 1e6


def spawn_orphans(s: Session, zombies: int) -> list[int]:
    """Have the helper fork ``zombies`` orphans for the init; their pids."""
    made = s.command(b"s", timeout=120)
    if made != zombies:
        raise BenchError(f"{s.name}: the burst helper forked {made} of {zombies}")
    kids = s.children()
    if len(kids) != zombies + 1:
        raise BenchError(f"{s.name}: the init has {len(kids)} children, expected {zombies + 1}")
    time.sleep(0.2)  # let the fork storm's aftermath settle
    return [pid for pid in kids if pid != s.child_pid]


def release(s: Session) -> int:
    """Let every orphan exit at once; the helper's CLOCK_MONOTONIC (ns) at that moment."""
    os.write(s.inp, b"g")
    fired = s.read_record(timeout=30)
    if fired is None:
        raise BenchError(f"{s.name}: the burst helper never said when it fired")
    return fired


def reaped(s: Session, timeout: float = 60.0) -> int:
    """CLOCK_MONOTONIC (ns) once the init's children lists hold only the main child.

    A tight scan with no pause: the lists hold the init's zombies until it reaps them.
    """
    only_main = f"{s.child_pid} "
    deadline = time.monotonic() + timeout
    while s.children_text() != only_main:
        if time.monotonic() > deadline:
            raise BenchError(f"{s.name}: zombies still there after {timeout:g} s{s.log_tail()}")
    return time.monotonic_ns()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0, pause: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting until {what}")
        time.sleep(pause)
