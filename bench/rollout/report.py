"""The table, the targets and the timeline plot, all from one run's measurements."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.rollout.controller import QUIET, SHORT_DELAY, Rollout, Swap

#: errors less than this far apart belong to the same burst
BURST_GAP = 0.25
#: what pyinit may add to a replica's stop time on top of its configured delay
STOP_SLACK = 0.2
#: the app each delayed pyinit variant is compared with for stop time: the same app, no delay
BASELINE = {"pyinit-delay": "none", "pyinit-rewrite": "dumb-init-rewrite", "pyinit-delay-short": "none"}
MODE_TITLES = {"keepalive": "keep-alive", "close": "no keep-alive"}
#: the variants that must lose nothing, and the rollouts each target asks for
ZERO_FAILURES = {"pyinit-delay": 3, "pyinit-rewrite": 3, "pyinit-adaptive": 10, "pyinit-adaptive-rewrite": 10}
#: the adaptive variants; each must stop faster than every fixed delay that lost nothing
ADAPTIVE = ("pyinit-adaptive", "pyinit-adaptive-rewrite")
#: how close the adaptive stop must follow the propagation: median stop <= median propagation + quiet + this
ADAPTIVE_SLACK = 0.5
#: the mean error allowed between pyinit's measured propagation and the controller's
MEASURE_ERROR = 0.3


def longest_burst(times: Sequence[float]) -> float:
    """Seconds from the first to the last error of the longest run without a BURST_GAP pause."""
    best, start, last = 0.0, None, None
    for at in sorted(times):
        if last is None or at - last > BURST_GAP:
            start = at
        last = at
        assert start is not None
        best = max(best, last - start)
    return best


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(results: Sequence[Rollout], args: argparse.Namespace) -> dict[str, Any]:
    labels = {v.key: v for v in args.chosen}
    modes: dict[str, list[dict[str, Any]]] = {}
    for mode in args.mode_list:
        rows = []
        for variant in args.chosen:
            runs = [r for r in results if r.mode == mode and r.variant == variant.key]
            if not runs:
                continue
            statuses: dict[int, int] = {}
            for run in runs:
                for code, n in run.counts.statuses.items():
                    statuses[code] = statuses.get(code, 0) + n
            stops = [s.stop_seconds for run in runs for s in run.swaps if s.stop_seconds is not None]
            unstopped = sum(1 for run in runs for s in run.swaps if s.stop_seconds is None)
            rows.append(
                {
                    "variant": variant.key,
                    "label": variant.label,
                    "delay": variant.delay,
                    "rollouts": len(runs),
                    "requests": sum(r.counts.requests for r in runs),
                    "failed": sum(r.failed for r in runs),
                    "failed_per_rollout": [r.failed for r in runs],
                    "502": statuses.get(502, 0),
                    "504": statuses.get(504, 0),
                    "other": sum(n for c, n in statuses.items() if not 200 <= c < 400 and c not in (502, 504)),
                    "connection_errors": sum(r.counts.connection_errors for r in runs),
                    "error_messages": sorted({m for r in runs for m in r.counts.errors}),
                    "burst": max(longest_burst([t for t, _ in r.failures]) for r in runs),
                    "stops": stops,
                    "unstopped": unstopped,
                    "stop_median": _median(stops),
                    "stop_max": max(stops) if stops else None,
                    "logged": sum(r.logged for r in runs),
                }
            )
        modes[mode] = rows

    targets: list[dict[str, Any]] = []
    conditions = []
    if args.rate < 200:
        conditions.append(f"{args.rate:g} req/s, the target asks for 200")
    if args.worst < 2:
        conditions.append(f"{args.propagation}s propagation, the target asks for 2s")
    for key, wanted in ZERO_FAILURES.items():
        if key not in labels:
            continue
        rows = [row for rows in modes.values() for row in rows if row["variant"] == key]
        failed = sum(row["failed"] for row in rows)
        per_mode = ", ".join(f"{MODE_TITLES[m]} {'/'.join(map(str, per))}" for m, per in _rows_of(modes, key))
        short = [f"{args.rollouts} rollout(s), the target asks for {wanted}"] if args.rollouts < wanted else []
        note = f" (at {'; '.join(short + conditions)})" if short or conditions else ""
        targets.append(
            {
                "name": f"{labels[key].label}: 0 failed requests over {args.rollouts} consecutive rollouts"
                f" at {args.rate:g} req/s, {args.propagation}s propagation{note}",
                "held": failed == 0,
                "detail": f"{failed} failed ({per_mode})",
            }
        )
    undelayed = [v for v in args.chosen if v.delay == 0]
    if undelayed:
        misses = [
            f"{row['label']} ({MODE_TITLES[mode]}): {row['failed_per_rollout']}"
            for mode, rows in modes.items()
            for row in rows
            if row["delay"] == 0 and min(row["failed_per_rollout"]) == 0
        ]
        targets.append(
            {
                "name": "every variant without a delay shows failures, in every rollout",
                "held": not misses,
                "detail": "no failure in a rollout of " + "; ".join(misses) if misses else "all did",
            }
        )
    for key, base in BASELINE.items():
        if key not in labels:
            continue
        delay = labels[key].delay
        for mode, rows in modes.items():
            row = next((r for r in rows if r["variant"] == key), None)
            if row is None:
                continue
            base_row = next((r for r in rows if r["variant"] == base), None)
            baseline = base_row["stop_median"] if base_row and base_row["stop_median"] is not None else 0.0
            added = [s - baseline for s in row["stops"]]
            worst = max(added) if added else None
            held = worst is not None and worst <= delay + STOP_SLACK and row["unstopped"] == 0
            against = f"{base_row['label']}'s median {baseline:.3f}s" if base_row else "0 (no baseline measured)"
            targets.append(
                {
                    "name": f"{labels[key].label} ({MODE_TITLES[mode]}): adds at most {delay:g}s + {STOP_SLACK:g}s"
                    " to each replica's stop time",
                    "held": held,
                    "detail": f"worst added {worst:.3f}s over {against}" if worst is not None else "no replica stopped",
                }
            )
    drain = drain_rows(results, args)
    targets += drain_targets(drain)
    return {"modes": modes, "drain": drain, "targets": targets, "held": all(t["held"] for t in targets)}


# -- issue 11: the adaptive drain against fixed delays --------------------------------------------


def _swaps(results: Sequence[Rollout], mode: str, key: str) -> list[Swap]:
    return [swap for run in results if run.mode == mode and run.variant == key for swap in run.swaps]


def measure_error(swap: Swap) -> float | None:
    """How far pyinit's measured propagation (its last data received) is from the controller's removal.

    Only where pyinit could see the whole window: it was still watching when the endpoint went
    (a fixed delay shorter than the propagation stops before the traffic does).
    """
    if swap.measured is None or swap.stop_seconds is None:
        return None
    real = swap.removed - swap.t0
    if swap.stop_seconds < real:
        return None
    return swap.measured - real


def drain_rows(results: Sequence[Rollout], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Per mode, one row per delayed pyinit variant: failures by rollout speed, stop times, pyinit's measurement."""
    out: dict[str, list[dict[str, Any]]] = {}
    for mode in args.mode_list:
        rows = []
        for variant in args.chosen:
            swaps = _swaps(results, mode, variant.key)
            if not (swaps and variant.delay and variant.init and "pyinit" in variant.key):
                continue
            stops = [s.stop_seconds for s in swaps if s.stop_seconds is not None]
            errors = [e for e in map(measure_error, swaps) if e is not None]
            slow = [s for s in swaps if s.propagation > SHORT_DELAY]
            rows.append(
                {
                    "variant": variant.key,
                    "label": variant.label,
                    "adaptive": variant.quiet is not None,
                    "swaps": len(swaps),
                    "failed": sum(s.failed for s in swaps),
                    "slow": len(slow),
                    "slow_failed": sum(1 for s in slow if s.failed),
                    "fast_failed": sum(1 for s in swaps if s.failed and s.propagation <= SHORT_DELAY),
                    "stop_median": _median(stops),
                    "propagation_median": _median([s.propagation for s in swaps]),
                    "measured": len(errors),
                    "error_mean": statistics.mean(abs(e) for e in errors) if errors else None,
                    "error_max": max(errors, key=abs) if errors else None,
                }
            )
        out[mode] = rows
    return out


def drain_targets(drain: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    targets = []
    failed: dict[str, int] = {}
    for rows in drain.values():
        for row in rows:
            failed[row["variant"]] = failed.get(row["variant"], 0) + row["failed"]
    for mode, rows in drain.items():
        by_key = {row["variant"]: row for row in rows}
        title = MODE_TITLES[mode]
        lossless = [r for r in rows if not r["adaptive"] and not failed[r["variant"]] and r["stop_median"]]
        for key in ADAPTIVE:
            if key not in by_key or by_key[key]["stop_median"] is None:
                continue
            row = by_key[key]
            bound = row["propagation_median"] + QUIET + ADAPTIVE_SLACK
            targets.append(
                {
                    "name": f"{row['label']} ({title}): median stop time <= median propagation + quiet"
                    f" {QUIET:g}s + {ADAPTIVE_SLACK:g}s",
                    "held": row["stop_median"] <= bound,
                    "detail": f"median stop {row['stop_median']:.2f}s, bound {bound:.2f}s",
                }
            )
            if not any(not r["adaptive"] for r in rows):
                continue  # no fixed delay in this run to compare with
            if lossless:
                best = min(lossless, key=lambda r: r["stop_median"])
                detail = f"{row['stop_median']:.2f}s against {best['label']}'s {best['stop_median']:.2f}s"
                held = row["stop_median"] < best["stop_median"]
            else:
                detail = "every fixed delay in this run lost requests"
                held = row["failed"] == 0
            targets.append(
                {
                    "name": f"{row['label']} ({title}): median stop time below that of every fixed delay"
                    " that lost nothing in this run",
                    "held": held,
                    "detail": detail,
                }
            )
        short = by_key.get("pyinit-delay-short")
        if short is not None:
            targets.append(
                {
                    "name": f"{short['label']} ({title}) is seen failing on the rollouts slower than {SHORT_DELAY:g}s",
                    "held": short["slow_failed"] > 0,
                    "detail": f"{short['slow_failed']} of {short['slow']} swaps slower than {SHORT_DELAY:g}s lost"
                    f" requests; {short['fast_failed']} of {short['swaps'] - short['slow']} faster ones did",
                }
            )
    errors = [row for rows in drain.values() for row in rows if row["measured"]]
    if errors:
        count = sum(row["measured"] for row in errors)
        mean = sum(row["error_mean"] * row["measured"] for row in errors) / count
        worst = max((row["error_max"] for row in errors), key=abs)
        targets.append(
            {
                "name": f"pyinit's measured propagation (last data received) against the controller's removal:"
                f" mean error < {MEASURE_ERROR:g}s",
                "held": mean < MEASURE_ERROR,
                "detail": f"mean |error| {mean:.3f}s over {count} swaps, worst {worst:+.3f}s",
            }
        )
    return targets


def drain_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"| variant | swaps | failed | swaps > {SHORT_DELAY:g}s propagation that failed | faster swaps that failed"
        " | stop time median, s | propagation median, s | measured propagation: mean error (worst) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        stop = f"{row['stop_median']:.2f}" if row["stop_median"] is not None else "-"
        error = f"{row['error_mean']:.3f} s ({row['error_max']:+.3f}, n={row['measured']})" if row["measured"] else "-"
        lines.append(
            f"| {row['label']} | {row['swaps']} | {row['failed']} | {row['slow_failed']} of {row['slow']}"
            f" | {row['fast_failed']} of {row['swaps'] - row['slow']} | {stop} | {row['propagation_median']:.2f}"
            f" | {error} |"
        )
    return "\n".join(lines)


def _rows_of(modes: dict[str, list[dict[str, Any]]], key: str) -> list[tuple[str, list[int]]]:
    return [(m, row["failed_per_rollout"]) for m, rows in modes.items() for row in rows if row["variant"] == key]


def _stop_cell(row: dict[str, Any]) -> str:
    if not row["stops"]:
        return "did not stop"
    cell = f"{row['stop_median']:.2f} ({min(row['stops']):.2f}-{row['stop_max']:.2f})"
    return cell + (f", {row['unstopped']} did not stop" if row["unstopped"] else "")


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "| variant | requests | failed (per rollout) | 502 | 504 | conn. errors | longest error burst"
        " | stop time, s: median (min-max) |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        per = "/".join(str(n) for n in row["failed_per_rollout"])
        other = f" + {row['other']} other" if row["other"] else ""
        lines.append(
            f"| {row['label']} | {row['requests']} | {row['failed']} ({per}){other} | {row['502']} | {row['504']}"
            f" | {row['connection_errors']} | {row['burst']:.2f} s | {_stop_cell(row)} |"
        )
    return "\n".join(lines)


def render(summary: dict[str, Any], args: argparse.Namespace) -> str:
    out = []
    for mode, rows in summary["modes"].items():
        out.append(
            f"### {MODE_TITLES[mode]} (client and upstream connections)\n"
            if mode == "keepalive"
            else f"### {MODE_TITLES[mode]} (a new connection per request, at both hops)\n"
        )
        out.append(table(rows))
        out.append("")
        out.append(medians(rows))
        out.append("")
        if summary["drain"].get(mode):
            out.append(f"Per swap, against the propagation ({args.propagation}s, seed {args.seed}):\n")
            out.append(drain_table(summary["drain"][mode]))
            out.append("")
    out.append("Targets:")
    for target in summary["targets"]:
        mark = "HELD    " if target["held"] else "NOT HELD"
        out.append(f"  [{mark}] {target['name']}: {target['detail']}")
    errors = sorted({m for rows in summary["modes"].values() for row in rows for m in row["error_messages"]})
    if errors:
        out.append("\nConnection errors seen by hey:")
        out += [f"  {m}" for m in errors[:10]]
    return "\n".join(out)


def medians(rows: Sequence[dict[str, Any]]) -> str:
    """Medians per rollout, and ratios to the app with no init, all from this run."""
    base = next((r for r in rows if r["variant"] == "none"), None)
    parts_failed, parts_stop = [], []
    for row in rows:
        failed = statistics.median(row["failed_per_rollout"])
        ratio = ""
        if base is not None and row is not base:
            base_failed = statistics.median(base["failed_per_rollout"])
            ratio = f" ({failed / base_failed:.2f}x)" if base_failed else ""
        parts_failed.append(f"{row['variant']} {failed:g}{ratio}")
        if row["stop_median"] is not None:
            stop_ratio = ""
            if base is not None and row is not base and base["stop_median"]:
                stop_ratio = f" ({row['stop_median'] / base['stop_median']:.1f}x)"
            parts_stop.append(f"{row['variant']} {row['stop_median']:.3f}s{stop_ratio}")
    return (
        "Median failed requests per rollout (ratio to no init): " + ", ".join(parts_failed) + "\n\n"
        "Median stop time (ratio to no init): " + ", ".join(parts_stop)
    )


def plot(results: Sequence[Rollout], args: argparse.Namespace) -> Path:
    """Errors per 100 ms for each variant's first rollout; T0 and endpoint removal marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = args.chosen
    modes = args.mode_list
    fig, axes = plt.subplots(
        len(chosen), len(modes), figsize=(6.5 * len(modes), 1.25 * len(chosen) + 1.2), sharex=True, squeeze=False
    )
    bin_size = 0.1
    ymax = max(1.0, args.rate * bin_size)
    firsts = {
        (r.mode, r.variant): r for r in results if r.index == 0 and r.swaps
    }  # each variant's first rollout; x = seconds since its first SIGTERM
    spans = [(r.load_start - r.swaps[0].t0, r.load_end - r.swaps[0].t0) for r in firsts.values()]
    left, right = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else (0.0, 1.0)
    for col, mode in enumerate(modes):
        for row, variant in enumerate(chosen):
            ax = axes[row][col]
            run = firsts.get((mode, variant.key))
            if run is None:
                ax.set_visible(False)
                continue
            origin = run.swaps[0].t0
            times = [run.load_start + t - origin for t, _ in run.failures]
            start, end = run.load_start - origin, run.load_end - origin
            edges = [start + i * bin_size for i in range(int((end - start) / bin_size) + 2)]
            ax.axvspan(start, end, color="#eafaf1", zorder=0)
            ax.hist(times, bins=edges, color="#c0392b", zorder=2)
            for i, swap in enumerate(run.swaps):
                exited = None if swap.stop_seconds is None else swap.t0 + swap.stop_seconds
                marks = (
                    (swap.t0, "SIGTERM (T0)", {"color": "black", "linestyle": "--", "linewidth": 1}),
                    (
                        swap.removal_sent,
                        "endpoint removal (nginx reload)",
                        {"color": "#2471a3", "linestyle": ":", "linewidth": 1.6},
                    ),
                    (exited, "old replica exited", {"color": "#7f8c8d", "linewidth": 1.2}),
                )
                for when, label, style in marks:
                    if when is not None:
                        ax.axvline(when - origin, label=label if i == 0 else None, **style)
            ax.set_ylim(0, ymax)
            ax.set_xlim(left, right)
            ax.text(
                0.005, 0.93, f"{variant.label}: {run.failed} failed", transform=ax.transAxes, va="top", fontsize=8.5
            )
            ax.tick_params(labelsize=8)
            if col == 0:
                ax.set_ylabel("errors\n/100 ms", fontsize=8)
            if row == 0:
                ax.set_title(
                    f"{MODE_TITLES[mode]}: {args.rate:g} req/s, {args.replicas} replicas, "
                    f"{args.propagation}s propagation",
                    fontsize=10,
                )
                if col == len(modes) - 1:
                    ax.legend(loc="upper right", fontsize=7.5)
        axes[-1][col].set_xlabel(
            "seconds since the first SIGTERM of the first rollout (green: load running; full height = every request)",
            fontsize=8,
        )
    fig.tight_layout()
    path = Path(args.plot)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_drain(results: Sequence[Rollout], args: argparse.Namespace) -> Path:
    """Each old replica's stop time against its rollout's propagation delay, fixed delays against
    the adaptive drain, one panel per load mode; a swap that lost requests is a red cross."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delayed = [v for v in args.chosen if v.delay and v.init and "pyinit" in v.key]
    modes = args.mode_list
    fig, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 5.2), sharey=True, squeeze=False)
    markers = "osD^v<>"
    low, high = min(args.propagations), max(args.propagations)
    for col, mode in enumerate(modes):
        ax = axes[0][col]
        xs = [low - 0.2, high + 0.2]
        ax.plot(xs, xs, color="#7f8c8d", linewidth=0.8, linestyle=":", label="stop = propagation")
        ax.plot(
            xs,
            [x + QUIET for x in xs],
            color="#27ae60",
            linewidth=0.8,
            linestyle="--",
            label=f"propagation + {QUIET:g}s",
        )
        for index, variant in enumerate(delayed):
            swaps = [s for s in _swaps(results, mode, variant.key) if s.stop_seconds is not None]
            ax.scatter(
                [s.propagation for s in swaps],
                [s.stop_seconds for s in swaps],
                marker=markers[index % len(markers)],
                s=28,
                alpha=0.8,
                label=variant.label,
            )
            bad = [s for s in swaps if s.failed]
            ax.scatter(
                [s.propagation for s in bad],
                [s.stop_seconds for s in bad],
                marker="x",
                s=80,
                color="#c0392b",
                label="that swap lost requests",
            )
        ax.set_title(
            f"{MODE_TITLES[mode]}: {args.rate:g} req/s, {args.rollouts} rollouts x {args.replicas} replicas",
            fontsize=10,
        )
        ax.set_xlabel("propagation delay of the rollout (SIGTERM to endpoint removal), s", fontsize=9)
        if col == 0:
            ax.set_ylabel("old replica's stop time (SIGTERM to exit), s", fontsize=9)
        ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(names, handles))
    fig.legend(unique.values(), unique.keys(), fontsize=8, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    path = Path(args.drain_plot)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
