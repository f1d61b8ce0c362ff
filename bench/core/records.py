"""What one run was asked to do, where it ran, and what it measured.

The measuring modules fill these in and the report only reads them, so neither
imports the other; ``--json`` writes a ``Run`` as it is.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

#: The names under which the clean-venv pyinit and ``python -m pyinit`` appear
#: beside the three inits (in the idle results and the startup cases).
VENV, MODULE = "pyinit (clean venv)", "python -m pyinit"


@dataclass(frozen=True)
class Settings:
    """The command line, checked."""

    pyinit: list[str]  #: the command that runs pyinit
    signals: int
    warmup: int
    zombies: int
    bursts: int
    idle: float
    startup_runs: int
    clean_venv: bool
    json: str | None


@dataclass(frozen=True)
class Machine:
    """Enough about the machine and the inits to read the numbers against."""

    kernel: str
    cpus: int | None
    python: str
    versions: dict[str, str]
    pyinit_command: str
    pyinit_on_path: str | None


@dataclass(frozen=True)
class Idle:
    switches: int  #: voluntary context switches in the idle window
    rss: int  #: bytes


@dataclass(frozen=True)
class Latency:
    """Forwarding latency in microseconds, over the signals that came back."""

    raw: list[float]
    lost: int

    @property
    def p50(self) -> float:
        return percentile(self.raw, 0.50)

    @property
    def p99(self) -> float:
        return percentile(self.raw, 0.99)


@dataclass
class Bursts:
    """Milliseconds per burst: end to end, and the init's reaping alone."""

    burst_raw: list[float] = field(default_factory=list)
    reap_raw: list[float] = field(default_factory=list)
    leftover: int = 0  #: zombies of the init found after its bursts

    @property
    def burst_ms(self) -> float:
        return statistics.median(self.burst_raw)

    @property
    def reap_ms(self) -> float:
        return statistics.median(self.reap_raw)


@dataclass(frozen=True)
class Run:
    settings: Settings
    machine: Machine
    idle: dict[str, Idle]  #: the three inits, and the clean-venv pyinit if it was built
    latency: dict[str, Latency]
    bursts: dict[str, Bursts]
    startup: dict[str, float]  #: ms, keyed "NAME|ns" (as PID 1) or "NAME|plain"
    elapsed: float  #: seconds, the whole run


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
