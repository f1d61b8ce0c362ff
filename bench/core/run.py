"""The command: check the machine, measure every init in turns, print the report."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType

import bench.core
from bench.core import forwarding, prepare, reaping, report, startup
from bench.core.records import VENV, Run, Settings
from bench.core.session import BenchError, close_all


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.core", description=(bench.core.__doc__ or "").split("\n")[0])
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
    return Settings(
        pyinit=shlex.split(args.pyinit) if args.pyinit else prepare.default_pyinit(),
        signals=args.signals,
        warmup=args.warmup,
        zombies=args.zombies,
        bursts=args.bursts,
        idle=args.idle,
        startup_runs=args.startup_runs,
        clean_venv=not args.no_clean_venv,
        json=args.json,
    )


def unfit() -> str | None:
    """Why this machine cannot run the benchmark, if it cannot."""
    missing = prepare.missing_tools()
    if missing:
        return f"missing: {', '.join(missing)}. Install with: {prepare.INSTALL_HINT}"
    if os.geteuid() != 0:
        return "run as root: each init runs as PID 1 of a new PID namespace (unshare --pid)"
    return None


def measure(settings: Settings) -> Run:
    """Every measurement, in a scratch directory for the helpers, the venv and the inits' stderr."""
    inits = prepare.inits(settings.pyinit)
    machine = prepare.describe(inits)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyinit-bench-") as tmp:
        workdir = Path(tmp)
        helpers = prepare.build_helpers(workdir)
        venv = prepare.clean_venv(workdir) if settings.clean_venv else None
        idle_only = {VENV: venv} if venv else {}
        idle, latency = forwarding.idle_and_latency(inits, idle_only, helpers, workdir, settings)
        bursts = reaping.measure_bursts(inits, helpers, workdir, settings)
        commands = {**startup.cases({**inits, **idle_only}), **startup.baselines(settings.pyinit, venv)}
        times = startup.measure_startup(commands, settings.startup_runs)
    elapsed = time.monotonic() - started
    return Run(settings, machine, idle, latency, bursts, times, elapsed)


def exit_on_signal(number: int, _frame: FrameType | None) -> None:
    """A polite stop of the benchmark unwinds through the cleanup, like ^C."""
    sys.exit(128 + number)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    why = unfit()
    if why:
        print(why, file=sys.stderr)
        return 2
    atexit.register(close_all)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, exit_on_signal)
    try:
        run = measure(settings)
    except BenchError as exc:
        print(f"benchmark crashed: {exc}", file=sys.stderr)
        return 1
    finally:
        close_all()
    print(report.report(run))
    if settings.json:
        with open(settings.json, "w") as f:
            json.dump(asdict(run), f, indent=1)
    return 0
