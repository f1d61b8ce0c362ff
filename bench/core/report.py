"""The markdown report of a run: one table row per metric, a paragraph on the setup, a verdict."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.records import MODULE, VENV, Run

MIB = 1024 * 1024
RSS_TARGET_MIB = 16
STARTUP_TARGET_MS = 120
COLUMNS = ("tini", "dumb-init", "pyinit")
HEADER = ("metric", *COLUMNS, "pyinit/tini", "target", "held?")
#: RSS and startup are judged on pyinit as an image installs it (`pip install .`
#: into a fresh venv) when that was built: the developers' interpreter loads its
#: own .pth files at every start, which is not pyinit's weight.
CONTEXT = "context: dev interpreter"

Values = tuple[float | None, float | None, float | None]  # tini, dumb-init, pyinit


@dataclass(frozen=True)
class Row:
    metric: str
    values: Values
    target: str = "—"
    held: bool | None = None  #: None: not judged
    fmt: str = "{:.1f}"
    ratio: bool = True  #: show pyinit/tini

    def cells(self) -> list[str]:
        tini, mine = self.values[0], self.values[2]
        ratio = f"{mine / tini:.2f}x" if self.ratio and tini and mine is not None else "—"
        held = "—" if self.held is None else "yes" if self.held else "**no**"
        values = ["—" if v is None else self.fmt.format(v) for v in self.values]
        return [self.metric, *values, ratio, self.target, held]


def report(run: Run) -> str:
    found = rows(run)
    return "\n\n".join([table(found), setup(run), verdict(missed(found))])


def rows(run: Run) -> list[Row]:
    return [*forwarding_rows(run), *reaping_rows(run), idle_row(run), *weight_rows(run), *venv_rows(run)]


def forwarding_rows(run: Run) -> list[Row]:
    n = len(run.latency["pyinit"].raw)
    return [
        against_tini(f"forwarding latency p50, µs ({n} signals)", {k: r.p50 for k, r in run.latency.items()}, 1.5),
        against_tini(f"forwarding latency p99, µs ({n} signals)", {k: r.p99 for k, r in run.latency.items()}, 2),
    ]


def reaping_rows(run: Run) -> list[Row]:
    zombies, bursts = run.settings.zombies, run.settings.bursts
    return [
        against_tini(
            f"burst of {zombies:,} orphaned zombies, exit to none left, ms (median of {bursts})",
            {k: r.burst_ms for k, r in run.bursts.items()},
            1.5,
        ),
        against_tini(
            f"reaping alone: {zombies:,} zombies already waiting, ms (median of {bursts})",
            {k: r.reap_ms for k, r in run.bursts.items()},
            1.5,
        ),
    ]


def against_tini(metric: str, values: dict[str, float], factor: float) -> Row:
    """A row whose target is pyinit within ``factor`` times tini."""
    held = values["pyinit"] <= factor * values["tini"]
    return Row(metric, _per_init([values[name] for name in COLUMNS]), f"≤ {factor:g}x tini", held)


def idle_row(run: Run) -> Row:
    return Row(
        f"idle voluntary context switches in {run.settings.idle:g} s",
        _per_init([run.idle[name].switches for name in COLUMNS]),
        "0",
        run.idle["pyinit"].switches == 0,
        fmt="{:.0f}",
        ratio=False,
    )


def weight_rows(run: Run) -> list[Row]:
    """RSS and startup of the pyinit the run was given: judged only when there is no clean venv."""
    judged = VENV not in run.idle
    rss = run.idle["pyinit"].rss
    ns = _started(run, "ns")
    runs = run.settings.startup_runs
    return [
        Row(
            "RSS while the child sleeps, MiB",
            _per_init([run.idle[name].rss / MIB for name in COLUMNS]),
            f"≤ {RSS_TARGET_MIB} MiB" if judged else CONTEXT,
            rss <= RSS_TARGET_MIB * MIB if judged else None,
        ),
        Row(
            f"startup `INIT -- true` as PID 1, ms (median of {runs})",
            ns,
            f"≤ {STARTUP_TARGET_MS} ms" if judged else CONTEXT,
            ns[2] is not None and ns[2] <= STARTUP_TARGET_MS if judged else None,
        ),
        Row(f"startup `INIT -- true` plain, ms (median of {runs})", _started(run, "plain")),
    ]


def venv_rows(run: Run) -> list[Row]:
    """The ↳ rows: the clean-venv pyinit and ``python -m pyinit``, beside tini."""
    found = []
    tini_ns, tini_plain = run.startup.get("tini|ns"), run.startup.get("tini|plain")
    if VENV in run.idle:
        rss = run.idle[VENV].rss
        values = (run.idle["tini"].rss / MIB, None, rss / MIB)
        found.append(
            Row("↳ pyinit from a clean venv: RSS, MiB", values, f"≤ {RSS_TARGET_MIB} MiB", rss <= RSS_TARGET_MIB * MIB)
        )
    venv_ns = run.startup.get(f"{VENV}|ns")
    if venv_ns is not None:
        metric = "↳ pyinit from a clean venv: startup as PID 1, ms"
        found.append(Row(metric, (tini_ns, None, venv_ns), f"≤ {STARTUP_TARGET_MS} ms", venv_ns <= STARTUP_TARGET_MS))
        venv_plain = run.startup.get(f"{VENV}|plain")
        found.append(Row("↳ pyinit from a clean venv: startup plain, ms", (tini_plain, None, venv_plain)))
    module_ns = run.startup.get(f"{MODULE}|ns")
    if module_ns is not None:
        found.append(Row("↳ `python -m pyinit`: startup as PID 1, ms", (tini_ns, None, module_ns)))
    return found


def _per_init(values: list[float]) -> Values:
    return values[0], values[1], values[2]


def _started(run: Run, mode: str) -> Values:
    tini, dumb_init, pyinit = (run.startup.get(f"{name}|{mode}") for name in COLUMNS)
    return tini, dumb_init, pyinit


def missed(found: list[Row]) -> list[str]:
    return [row.metric for row in found if row.held is False]


def table(found: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join([" --- "] + [" ---: "] * 4 + [" --- "] * 2) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in found]
    return "\n".join(lines)


def setup(run: Run) -> str:
    """How and where the numbers were taken, with the baselines to read them against."""
    m, startup = run.machine, run.startup
    lost = {name: r.lost for name, r in run.latency.items() if r.lost}
    left = {name: r.leftover for name, r in run.bursts.items() if r.leftover}
    baseline = f"`python -c pass` takes {startup['python -c pass|plain']:.1f} ms with this interpreter"
    if "venv python -c pass|plain" in startup:
        baseline += f", {startup['venv python -c pass|plain']:.1f} ms in the clean venv"
    venv = " (the venv rows: installed with `pip install .` into a fresh venv)" if VENV in run.idle else ""
    return (
        f"Linux {m.kernel}, {m.cpus} CPUs; Python {m.python}; {', '.join(m.versions.values())}. "
        f"pyinit ran as `{m.pyinit_command}`{venv}. "
        "Each init ran as PID 1 of its own PID namespace (`unshare --pid --fork --mount-proc`), with its "
        "default forwarding (tini: to the child; dumb-init and pyinit: to its process group); the inits took "
        "turns signal by signal, burst by burst and run by run. "
        f"`unshare --pid --fork --mount-proc true` alone takes {startup['unshare|ns']:.1f} ms; {baseline}. "
        f"Lost signals: {lost or 'none'}; zombies left after a burst: {left or 'none'}. "
        f"Whole run: {run.elapsed:.0f} s."
    )


def verdict(names: list[str]) -> str:
    return "All targets held." if not names else f"Missed: {'; '.join(names)}."
