"""Property-based tests (issue 13): the real parser against arbitrary input, and the clock.

The parser: exit 0 or 2, never a traceback.

Hypothesis builds command lines from every option pyinit has, with values that
are arbitrary bytes (decoded the way Python decodes argv, so undecodable bytes
arrive as surrogates), arbitrary text, or values that broke pyinit before, and
sets ``PYINIT_*`` and the tini/dumb-init variables the same way.

The click command runs in-process (``standalone_mode=False``), which is what
``cli.run`` calls: the only allowed outcomes are a Config (pyinit would run),
0 (``--help``, ``--version``) or a ClickException (the one line and exit 2).
Anything else would be a traceback. A sample also runs as the real process,
with only options that cannot run anything or touch the network. Both use a
derandomized profile: the same examples every run, so it cannot be flaky.

The clock (``pyinit.timers``) gets any float as a delay, as a bug upstream of
it could hand one over: the wait it gives sigtimedwait stays a finite number
that call takes.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator

import click
from helpers.harness import one_line_error, run_pyinit
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyinit.cli import command
from pyinit.config import Config
from pyinit.timers import Timers

#: Values each kind of option takes, so that most examples get as far as the one value that is not.
VALID = {
    "duration": ["1", "0.5", "250ms", "2m", "0"],
    "signal": ["TERM", "USR1", "15", "SIGHUP"],
    "rewrite": ["TERM:USR1", "USR1:0", "HUP:TERM"],
    "remap": ["143:0", "1:2", "3"],
    "on": ["USR1:true", "HUP:echo hi"],
    "user": ["nobody", "0", "65534:65534", "nobody:nogroup"],
    "address": ["8080", "127.0.0.1:8080", "[::1]:8080"],
    "url": ["http://127.0.0.1:8080/healthz", "https://[::1]/", "http://localhost/"],
    "path": ["/tmp", "/tmp/ready"],
    "number": ["0", "1", "2"],
    "format": ["json", "text"],
    "any": ["true", "echo hi"],
}
#: Values that broke pyinit once, or sit on an edge of what it accepts, by kind.
EDGES = {
    "duration": ["-1", "9" * 400, "1e999", "inf", "nan", "10000000000", "160000000m", "31536001", "525600m", ".5"],
    "signal": ["0", "64", "KILL", "STOP", "CHLD", "TSTP", "SIGTERM", "term", "\u00b2", "\u0661\u0662"],
    "rewrite": ["TERM:0", "KILL:TERM", "CHLD:USR1", "15:10", "TERM:STOP", ":x", "1:2:3", "TERM:\u00b2"],
    "remap": ["256", "143:256", "\u00b2:0", "-1", "1:2:3"],
    "on": ["TERM:true", "KILL:true", "CHLD:true", "USR1:", ":x"],
    "user": ["4294967295", "4294967294", "0:4294967295", "99999999999", "0:99999999999", ":0", "\u00b2"],
    "address": ["[::1]:80", "[::]:1", "::1:80", "[::zz]:80", "h\u00f6st:80", "a" * 300 + ":80", "localhost:0"],
    "url": [
        "http://[::1]:70000/",
        "http://127.0.0.1:0/",
        "http://u@h/",
        "http://[::1/",
        "http:///x",
        "http://h\u00f6/",
    ],
    "path": ["/", "/proc", "/nonexistent/x", "relative", "r" * 300, "/tmp/" + "r" * 300],
    "number": ["3", "99", "\u00b2", "\u0661", "-1", "0x10"],
    "format": ["JSON", "yaml"],
    "any": ["", " ", "\t", "\n", "\udcff", "0", "65536", "70000"],
}
KIND = {
    **dict.fromkeys(("pre_stop_delay", "kill_timeout", "grace_period", "hook_timeout"), "duration"),
    **dict.fromkeys(("stop_signal", "pdeathsig"), "signal"),
    **dict.fromkeys(("hooks_dir", "ready_file"), "path"),
    **dict.fromkeys(("TINI_VERBOSITY", "DUMB_INIT_SETSID", "DUMB_INIT_DEBUG", "TINI_SUBREAPER"), "number"),
    "rewrite": "rewrite",
    "remap_exit": "remap",
    "on": "on",
    "user": "user",
    "ready_port": "address",
    "ready_check": "url",
    "log_format": "format",
}
OPTIONS = [param for param in command.params if isinstance(param, click.Option)]
VARIABLES = (
    {f"PYINIT_{param.name.upper()}": param.name for param in OPTIONS if param.name}
    | {name: name for name in ("TINI_VERBOSITY", "TINI_SUBREAPER", "TINI_KILL_PROCESS_GROUP", "DUMB_INIT_SETSID")}
    | {"DUMB_INIT_DEBUG": "DUMB_INIT_DEBUG"}
)
EVERY_EDGE = [edge for edges in EDGES.values() for edge in edges]


def values(name: str | None) -> st.SearchStrategy[str]:
    """Text for an option or variable: mostly what it takes, else its edges, any edge, arbitrary argv bytes."""
    kind = KIND.get(name or "", "any")
    return st.one_of(
        st.sampled_from(VALID[kind]),
        st.sampled_from(VALID[kind]),
        st.sampled_from(EDGES[kind]),
        st.sampled_from(EVERY_EDGE),
        st.binary(max_size=24).map(os.fsdecode),
        st.text(max_size=16),
    ).filter(lambda value: "\0" not in value)  # neither argv nor the environment can hold a NUL


@st.composite
def command_lines(draw: st.DrawFn, options: list[click.Option]) -> list[str]:
    argv: list[str] = []
    for option in draw(st.lists(st.sampled_from(options), max_size=5)):
        argv.append(draw(st.sampled_from(option.opts)))
        if not option.is_flag and not option.count:
            argv.append(draw(values(option.name)))
    tail = draw(st.sampled_from([[], ["--", "true"], ["true"], ["--"]]))
    return argv + tail


@st.composite
def environments(draw: st.DrawFn, names: list[str]) -> dict[str, str]:
    chosen = draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    return {name: draw(values(VARIABLES[name])) for name in chosen}


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name in VARIABLES}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in variables:
            os.environ.pop(name, None)
        os.environ.update(saved)


def parse(argv: list[str], variables: dict[str, str]) -> int:
    """What ``cli.run`` would exit with before anything runs: 0 to go on (or after --help), 2 for bad input."""
    with environment(variables), contextlib.redirect_stdout(io.StringIO()):
        try:
            result = command.main(args=argv, prog_name="pyinit", standalone_mode=False)
        except click.ClickException:
            return 2
    assert isinstance(result, Config) or result == 0, result
    return 0


PROFILE = settings(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(PROFILE, max_examples=600)
@given(argv=command_lines(OPTIONS), variables=environments(list(VARIABLES)))
# What broke the parser before, always among the examples whatever the generator draws:
@example(argv=["--user", "0:99999999999", "true"], variables={})
@example(argv=["true"], variables={"PYINIT_USER": "0:4294967295"})
@example(argv=["true"], variables={"TINI_VERBOSITY": "\u00b2"})
@example(argv=["--remap-exit", "\u00b2", "true"], variables={})
def test_the_parser_answers_every_input_with_a_config_or_one_error(argv, variables):
    parse(argv, variables)  # 0 or 2 by construction: the checks are inside


#: Options that start, create and bind nothing, and leave the exit code alone: safe with any value
#: for a real pyinit running ``true`` (the others would run arbitrary text or resolve arbitrary names).
ACTIVE = ("pre_start", "pre_stop", "post_stop", "on", "stop_command", "hooks_dir", "ready_file", "ready_port")
INERT = [param for param in OPTIONS if param.name not in (*ACTIVE, "ready_check", "remap_exit")]
INERT_VARIABLES = [name for name, option in VARIABLES.items() if option not in (*ACTIVE, "ready_check", "remap_exit")]


@settings(PROFILE, max_examples=12)
@given(argv=command_lines(INERT), variables=environments(INERT_VARIABLES))
def test_the_real_process_exits_0_or_2_in_one_line(argv, variables):
    result = run_pyinit(argv, env={**os.environ, **variables})
    assert "Traceback" not in result.stderr, result
    assert result.returncode in (0, 2), result
    if result.returncode == 2:
        one_line_error(result)


#: The longest wait sigtimedwait converts without OverflowError: 2**63 nanoseconds, about 292 years.
SIGTIMEDWAIT_LIMIT = 2**63 / 1e9


@settings(PROFILE, max_examples=300)
@given(delays=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=4))
@example(delays=[float("inf")])
@example(delays=[1e10, float("nan")])
def test_the_clock_takes_any_delay_and_waits_a_number_the_kernel_takes(delays):
    timers = Timers()
    for index, delay in enumerate(delays):
        timers.set(f"t{index}", delay, lambda: None)
    timeout = timers.timeout()
    assert timeout is not None and 0 <= timeout < SIGTIMEDWAIT_LIMIT
    timers.fire_due()
