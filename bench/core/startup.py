"""Startup: the wall time of ``INIT -- true``, as PID 1 and plain, and the baselines to subtract."""

from __future__ import annotations

import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.core.records import MODULE
from bench.core.session import NAMESPACE, BenchError
from bench.core.turns import rotations


def cases(inits: dict[str, list[str]]) -> dict[str, list[str]]:
    """``INIT -- true`` as PID 1 ("NAME|ns") and plain ("NAME|plain") for each init; unshare alone."""
    found: dict[str, list[str]] = {}
    for name, cmd in inits.items():
        found[f"{name}|ns"] = [*NAMESPACE, *cmd, "--", "true"]
        found[f"{name}|plain"] = [*cmd, "--", "true"]
    found["unshare|ns"] = [*NAMESPACE, "true"]
    return found


def baselines(pyinit: list[str], venv: list[str] | None) -> dict[str, list[str]]:
    """``python -m pyinit`` (unless that is how pyinit runs already) and the interpreters' own start."""
    found: dict[str, list[str]] = {}
    if pyinit[1:] != ["-m", "pyinit"]:
        found[f"{MODULE}|ns"] = [*NAMESPACE, sys.executable, "-m", "pyinit", "--", "true"]
    found["python -c pass|plain"] = [sys.executable, "-c", "pass"]
    if venv:
        found["venv python -c pass|plain"] = [str(Path(venv[0]).with_name("python")), "-c", "pass"]
    return found


def measure_startup(commands: dict[str, list[str]], rounds: int) -> dict[str, float]:
    """Median wall time of each command line, over rounds in which every case takes its turn."""
    for argv in commands.values():  # warm the page cache and the .pyc files
        time_once(argv)
    samples: dict[str, list[float]] = {case: [] for case in commands}
    for _, order in rotations(list(commands), rounds):
        for case in order:
            samples[case].append(time_once(commands[case]))
    return {case: statistics.median(values) for case, values in samples.items()}


def time_once(argv: list[str]) -> float:
    """Milliseconds from spawn to exit; a failure is a crash, not a slow start."""
    start = time.perf_counter()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {result.returncode}: {result.stderr.decode()[-400:]}")
    return elapsed * 1000.0
