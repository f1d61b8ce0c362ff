"""Idle wake-ups, RSS and forwarding latency, all on inits whose child is helpers/sigecho.c.

sigecho sleeps in read() until a signal comes, so the same sessions serve
the idle window first (nothing happening) and the latency run after.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.core.records import Idle, Latency, Settings
from bench.core.session import BenchError, Session, drain, terminate
from bench.core.turns import rotations

#: How long a forwarded signal may take before it counts as lost.
REPLY_TIMEOUT = 2.0


def idle_and_latency(
    inits: dict[str, list[str]],
    idle_only: dict[str, list[str]],
    helpers: dict[str, str],
    logdir: Path,
    settings: Settings,
) -> tuple[dict[str, Idle], dict[str, Latency]]:
    """Idle wake-ups and RSS of every init (same window), then forwarding latency of ``inits``."""
    everyone = {**inits, **idle_only}
    sessions = {name: Session(name, cmd, [helpers["sigecho"]], logdir, "sigecho") for name, cmd in everyone.items()}
    time.sleep(1.0)  # let every init settle into its wait
    idle = measure_idle(sessions, settings.idle)
    for name in idle_only:
        sessions.pop(name).close(terminate)
    latency = measure_latency(sessions, settings.warmup, settings.signals)
    for s in sessions.values():
        s.close(terminate)
    return idle, latency


def measure_idle(sessions: dict[str, Session], seconds: float) -> dict[str, Idle]:
    """Every init in the same window, its child asleep in read()."""
    before = {name: s.voluntary_switches() for name, s in sessions.items()}
    time.sleep(seconds)
    idle = {}
    for name, s in sessions.items():
        idle[name] = Idle(switches=s.voluntary_switches() - before[name], rss=s.rss_bytes())
        if not s.alive():
            raise BenchError(f"{name} died while idle{s.log_tail()}")
    return idle


def measure_latency(sessions: dict[str, Session], warmup: int, signals: int) -> dict[str, Latency]:
    """One signal in flight at a time, the inits taking turns; the first ``warmup`` rounds not counted."""
    raw: dict[str, list[float]] = {name: [] for name in sessions}
    lost = dict.fromkeys(sessions, 0)
    for i, order in rotations(list(sessions), warmup + signals):
        for name in order:
            took = forward_once(sessions[name])
            if took is None:
                lost[name] += 1
            elif i >= warmup:
                raw[name].append(took)
    for name in sessions:
        if not raw[name]:
            raise BenchError(f"{name}: no forwarded signal ever reached the child")
    return {name: Latency(raw=raw[name], lost=lost[name]) for name in sessions}


def forward_once(s: Session) -> float | None:
    """Microseconds from kill() to the child's handler, or None if no reply came in time."""
    drain(s.out)
    sent = time.monotonic_ns()
    os.kill(s.pid, signal.SIGUSR1)
    got = s.read_record(timeout=REPLY_TIMEOUT)
    if got is None:
        if not s.alive():
            raise BenchError(f"{s.name} died during the latency run{s.log_tail()}")
        return None
    return (got - sent) / 1000.0
