"""Run every variant through the same rollouts behind the same nginx setup, and report.

For each load mode (keep-alive, and a new connection per request) and each
variant: a fresh nginx and a deployment of ``--replicas`` replicas under the
variant's init; then ``--rollouts`` consecutive rollouts, each under its own
hey run that starts ``--lead`` seconds before the first new replica and ends
``--tail`` seconds after the last old replica has exited.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.rollout import load, nginx, report
from bench.rollout.controller import ROOT, Deployment, Rollout, Variant, free_port, variants
from bench.rollout.load import Hey
from bench.rollout.nginx import Nginx

MODES = {"keepalive": True, "close": False}
#: What ``--variants drain`` runs: issue 11's adaptive drain against the fixed delays
DRAIN_VARIANTS = "pyinit-adaptive,pyinit-delay-short,pyinit-delay,pyinit-adaptive-rewrite"


def missing_tools() -> list[str]:
    """Debian packages to install for what is missing."""
    missing = []
    if nginx.binary() is None:
        missing.append("nginx-light")
    if load.binary() is None:
        missing.append("hey")
    return missing


def missing_inits(chosen: list[Variant]) -> list[str]:
    return sorted({v.init[0] for v in chosen if v.init and shutil.which(v.init[0]) is None})


def measure(variant: Variant, mode: str, args: argparse.Namespace, base: Path, log: Any) -> list[Rollout]:
    workdir = base / f"{variant.key}-{mode}"
    workdir.mkdir(parents=True)
    lb = Nginx(workdir / "nginx", free_port(), free_port(), upstream_keepalive=MODES[mode])
    deployment = Deployment(variant, lb, workdir, args.work_ms)
    results = []
    hey = None
    try:
        deployment.scale_up(args.replicas)
        lb.start(deployment.upstreams())
        for index in range(args.rollouts):
            run = f"{variant.key}.{mode}.{index}"
            hey = Hey(
                f"http://127.0.0.1:{lb.port}/",
                args.rate,
                keepalive=MODES[mode],
                run=run,
                out=workdir / f"hey-{index}.txt",
            )
            time.sleep(args.lead)
            propagation = args.propagations[index]
            swaps = deployment.rollout(propagation, timeout=propagation + variant.delay + 60)
            time.sleep(args.tail)
            load_end = time.time()
            load_start, counts = hey.started, hey.finish()
            hey = None
            entries = lb.entries(run)
            result = Rollout(variant.key, mode, index, load_start, load_end, counts, swaps)
            result.logged = len(entries)
            for swap in swaps:
                upstream = f"127.0.0.1:{swap.old_port}"
                routed = [e.at for e in entries if e.upstream == upstream]
                swap.last_routed = max(routed, default=0.0)
                swap.failed = sum(1 for e in entries if e.upstream == upstream and not 200 <= e.status < 400)
            result.failures = [(e.at - result.load_start, e.status) for e in entries if not 200 <= e.status < 400]
            results.append(result)
            stops = " ".join(f"{s.stop_seconds:.2f}" if s.stop_seconds is not None else "?" for s in swaps)
            log(
                f"  {variant.key:<23} {mode:<9} rollout {index + 1}: propagation {propagation:.2f} s, "
                f"{counts.requests:5d} requests, {counts.failed:4d} failed, stop {stops} s"
            )
    finally:
        if hey is not None:
            hey.kill()
        deployment.close()
        lb.stop()
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rollout",
        description="Rolling-restart benchmark: failed requests behind a real nginx, for each init.",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument(
        "--propagation",
        default="2",
        help="seconds from SIGTERM to endpoint removal: a number, or LOW-HIGH for a uniform draw per rollout,"
        " the same sequence for every variant (default 2)",
    )
    parser.add_argument("--seed", type=int, default=11, help="seed of the propagation draws (default 11)")
    parser.add_argument("--delay", type=float, help="pyinit's fixed --pre-stop-delay (default the worst case + 1)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas in the deployment (default 2)")
    parser.add_argument("--rollouts", type=int, default=3, help="consecutive rollouts per variant (default 3)")
    parser.add_argument(
        "--modes", default="keepalive,close", help="load modes: keepalive, close (default both, comma-separated)"
    )
    parser.add_argument(
        "--variants",
        default="all",
        help="comma-separated: none, tini, dumb-init, pyinit, pyinit-delay, pyinit-rewrite, dumb-init-rewrite,"
        " pyinit-delay-short, pyinit-adaptive, pyinit-adaptive-rewrite; or 'drain' for the last three and"
        " pyinit-delay (default: all)",
    )
    parser.add_argument("--work-ms", type=float, default=20.0, help="time the app takes per request (default 20)")
    parser.add_argument("--lead", type=float, default=1.0, help="seconds of load before a rollout (default 1)")
    parser.add_argument("--tail", type=float, default=1.0, help="seconds of load after a rollout (default 1)")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "rollout.png"), help="PNG timeline to write")
    parser.add_argument(
        "--drain-plot",
        default=str(ROOT / "docs" / "drain.png"),
        help="PNG of stop time against propagation for the delayed pyinit variants",
    )
    parser.add_argument("--no-plot", action="store_true", help="draw neither plot")
    parser.add_argument("--json", help="also write every measurement to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (nginx and replica logs)")
    args = parser.parse_args(argv)
    match = re.fullmatch(r"(\d+(?:\.\d*)?)(?:-(\d+(?:\.\d*)?))?", args.propagation.strip())
    if not match:
        parser.error(f"--propagation {args.propagation!r}: a number of seconds, or LOW-HIGH")
    low = float(match.group(1))
    high = float(match.group(2) or low)
    if high < low:
        parser.error(f"--propagation {args.propagation!r}: LOW is above HIGH")
    draw = random.Random(args.seed)
    args.propagations = [draw.uniform(low, high) if high > low else low for _ in range(args.rollouts)]
    args.worst = high
    if args.delay is None:
        args.delay = high + 1.0
    if args.rate <= 0 or args.replicas < 1 or args.rollouts < 1 or args.delay < 0:
        parser.error("--rate, --replicas and --rollouts must be positive, --delay not negative")
    all_variants = {v.key: v for v in variants(args.delay)}
    named = {"all": ",".join(all_variants), "drain": DRAIN_VARIANTS}.get(args.variants, args.variants)
    keys = [k.strip() for k in named.split(",") if k.strip()]
    unknown = [k for k in keys if k not in all_variants]
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    args.chosen = [all_variants[k] for k in keys]
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.mode_list or any(m not in MODES for m in args.mode_list):
        parser.error(f"--modes takes {', '.join(MODES)}")
    return args


def _interrupt(number: int, frame: Any) -> None:
    """The first TERM or INT stops the run; later ones are ignored so that the cleanup completes."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {number}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_tools()
    if missing:
        print(f"missing: install the Debian package(s) {' '.join(missing)}", file=sys.stderr)
        return 2
    inits = missing_inits(args.chosen)
    if inits:
        print(f"missing init(s): {', '.join(inits)} (Debian: apt-get install {' '.join(inits)})", file=sys.stderr)
        return 2
    # so that every finally: runs and every process this started is ended
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    def log(line: str) -> None:
        print(line, flush=True)

    base = Path(tempfile.mkdtemp(prefix="rollout-"))
    results: list[Rollout] = []
    started = time.time()
    log(
        f"rollout benchmark: {args.replicas} replicas, {args.rollouts} rollouts per variant, "
        f"{args.rate:g} req/s, propagation {args.propagation} s "
        f"({', '.join(f'{p:.2f}' for p in args.propagations)}), fixed pre-stop delay {args.delay:g}s"
    )
    try:
        for mode in args.mode_list:
            for variant in args.chosen:
                results += measure(variant, mode, args, base, log)
    except KeyboardInterrupt:
        print("interrupted: every nginx, init and replica of this run has been stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            log(f"logs kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    log(f"measured in {time.time() - started:.0f}s\n")
    summary = report.summarize(results, args)
    print(report.render(summary, args))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "args": {k: v for k, v in vars(args).items() if k != "chosen"},
                    "variants": [asdict(v) for v in args.chosen],
                    "rollouts": [dict(asdict(r), failed=r.failed, requests=r.counts.requests) for r in results],
                    "summary": summary,
                },
                indent=1,
                default=str,
            )
        )
    if not args.no_plot:
        log(f"\ntimeline: {report.plot(results, args)}")
        if any(v.delay for v in args.chosen):
            log(f"stop time against propagation: {report.plot_drain(results, args)}")
    return 0 if summary["held"] else 1
