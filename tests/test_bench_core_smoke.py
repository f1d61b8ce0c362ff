"""Smoke test of bench/core: a short run of the benchmark's own command, checked against its raw numbers.

It runs ``python -m bench.core`` with small counts (the numbers mean nothing
at that size; no target is asserted) on this checkout's pyinit, and checks
that every measurement produced what it promises (a latency per signal, a
time per burst, every orphan reaped) and that the printed table reports
exactly those numbers. Needs root, gcc, and Debian's tini and dumb-init.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

import pytest
from helpers.harness import ROOT

from bench.core.run import unfit

INITS = ("tini", "dumb-init", "pyinit")
SIGNALS, WARMUP, ZOMBIES, BURSTS, IDLE, STARTUP_RUNS = 30, 3, 100, 2, 0.5, 2
HEADER = "| metric | tini | dumb-init | pyinit | pyinit/tini | target | held? |"
MIB = 1024 * 1024

UNFIT = unfit()  # the benchmark's own check of the machine
pytestmark = pytest.mark.skipif(UNFIT is not None, reason=f"bench/core cannot run here: {UNFIT}")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The printed report and the ``--json`` record of one short run."""
    out = tmp_path_factory.mktemp("bench-core") / "core.json"
    command = [
        sys.executable,
        "-m",
        "bench.core",
        f"--pyinit={sys.executable} -m pyinit",
        f"--signals={SIGNALS}",
        f"--warmup={WARMUP}",
        f"--zombies={ZOMBIES}",
        f"--bursts={BURSTS}",
        f"--idle={IDLE}",
        f"--startup-runs={STARTUP_RUNS}",
        "--no-clean-venv",  # it would need the package index
        f"--json={out}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's pyinit and bench
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, json.loads(out.read_text())


def table_rows(report: str) -> dict[str, list[str]]:
    """The table's rows by metric, each the six cells after it."""
    lines = report.splitlines()
    assert lines[0] == HEADER
    rows = {}
    for line in lines[2 : lines.index("")]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 7, line
        rows[cells[0]] = cells[1:]
    return rows


def row(rows: dict[str, list[str]], starts: str) -> list[str]:
    (found,) = [cells for metric, cells in rows.items() if metric.startswith(starts)]
    return found


def close_to(cell: str, value: float) -> bool:
    """A cell printed with one decimal shows ``value``."""
    return abs(float(cell) - value) <= 0.051


def test_every_measurement_is_complete(bench: tuple[str, dict[str, Any]]) -> None:
    _, run = bench
    assert run["machine"]["pyinit_command"] == f"{sys.executable} -m pyinit"
    assert run["machine"]["versions"]["pyinit"].startswith("pyinit")
    for name in INITS:
        latency, bursts, idle = run["latency"][name], run["bursts"][name], run["idle"][name]
        # Every counted signal is either timed or reported lost.
        assert len(latency["raw"]) + latency["lost"] == SIGNALS
        assert all(took > 0 for took in latency["raw"])
        assert len(bursts["burst_raw"]) == len(bursts["reap_raw"]) == BURSTS
        assert all(ms > 0 for ms in bursts["burst_raw"] + bursts["reap_raw"])
        assert bursts["leftover"] == 0, f"{name} left zombies after a burst"
        assert idle["rss"] > 0 and idle["switches"] >= 0
    cases = {f"{name}|{mode}" for name in INITS for mode in ("ns", "plain")}
    # pyinit already runs as `python -m pyinit`, so that case has no row of its own.
    assert set(run["startup"]) == cases | {"unshare|ns", "python -c pass|plain"}
    assert all(ms > 0 for ms in run["startup"].values())


def test_the_table_reports_the_measured_numbers(bench: tuple[str, dict[str, Any]]) -> None:
    report, run = bench
    rows = table_rows(report)
    assert len(rows) == 8  # no venv rows: --no-clean-venv
    timed = len(run["latency"]["pyinit"]["raw"])
    p50 = row(rows, f"forwarding latency p50, µs ({timed} signals)")
    burst = row(rows, f"burst of {ZOMBIES} orphaned zombies")
    reap = row(rows, f"reaping alone: {ZOMBIES} zombies")
    idle = row(rows, f"idle voluntary context switches in {IDLE:g} s")
    rss = row(rows, "RSS while the child sleeps, MiB")
    started = row(rows, f"startup `INIT -- true` as PID 1, ms (median of {STARTUP_RUNS})")
    for i, name in enumerate(INITS):
        assert close_to(p50[i], statistics.median(run["latency"][name]["raw"]))
        assert close_to(burst[i], statistics.median(run["bursts"][name]["burst_raw"]))
        assert close_to(reap[i], statistics.median(run["bursts"][name]["reap_raw"]))
        assert idle[i] == str(run["idle"][name]["switches"])
        assert close_to(rss[i], run["idle"][name]["rss"] / MIB)
        assert close_to(started[i], run["startup"][f"{name}|ns"])
    # pyinit/tini, from the same run's numbers; none for a count that may be 0.
    ratio = statistics.median(run["latency"]["pyinit"]["raw"]) / statistics.median(run["latency"]["tini"]["raw"])
    assert abs(float(p50[3].removesuffix("x")) - ratio) <= 0.0051
    assert idle[3] == "—"


def test_the_verdict_names_exactly_the_missed_targets(bench: tuple[str, dict[str, Any]]) -> None:
    report, run = bench
    rows = table_rows(report)
    assert {cells[5] for cells in rows.values()} <= {"yes", "**no**", "—"}
    missed = [metric for metric, cells in rows.items() if cells[5] == "**no**"]
    verdict = report.rstrip("\n").splitlines()[-1]
    assert verdict == ("All targets held." if not missed else f"Missed: {'; '.join(missed)}.")
    # The targets judge pyinit itself here: no clean venv to judge instead.
    assert row(rows, "RSS while the child sleeps")[4] == "≤ 16 MiB"
    lost = {name: r["lost"] for name, r in run["latency"].items() if r["lost"]}
    assert f"Lost signals: {lost or 'none'}; zombies left after a burst: none." in report
