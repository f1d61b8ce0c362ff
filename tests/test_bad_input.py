"""Bad input: exit 2, ONE line on stderr that names the bad value, nothing on stdout, nothing spawned.

Every case gives pyinit a command that would create a marker file; the file
must not exist afterwards. Every case runs as PID 1 and as a plain child.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.harness import helper, one_line_error, run_pyinit


@dataclass(frozen=True)
class Bad:
    """One bad input. ``{tmp}`` stands for the test's tmp_path and ``{port}`` for a taken port."""

    args: list[str]
    named: list[str]
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


def hooks_dir_with_a_bad_hook(phase: str, mode: int) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        folder = root / "hooks" / f"{phase}.d"
        folder.mkdir(parents=True)
        for name, bits in (("10-ok", 0o755), ("20-hook", mode)):
            (folder / name).write_text("#!/bin/sh\ntrue\n")
            (folder / name).chmod(bits)

    return setup


HUGE = "9" * 400
CANNOT_WORK = (("KILL", "cannot be caught"), ("STOP", "cannot be caught"), ("CHLD", "pyinit's own"))
#: Each option that takes a signal, with how a signal goes into its value.
SIGNAL_OPTIONS = (
    ("stop-signal", "--stop-signal", "{}"),
    ("pdeathsig", "-p", "{}"),
    ("rewrite", "--rewrite", "{}:TERM"),
    ("on", "--on", "{}:true"),
)

BAD = {
    "unknown-option": Bad(["--bogus"], ["--bogus"]),
    "log-format": Bad(["--log-format", "xml"], ["xml"]),
    # durations
    "delay-negative": Bad(["--pre-stop-delay", "-1"], ["-1"]),
    "delay-negative-unit": Bad(["--pre-stop-delay", "-500ms"], ["-500ms"]),
    "delay-words": Bad(["--pre-stop-delay", "soon"], ["soon"]),
    "delay-empty": Bad(["--pre-stop-delay", ""], ["--pre-stop-delay"]),
    "kill-timeout-negative": Bad(["--kill-timeout", "-2"], ["-2"]),
    "kill-timeout-words": Bad(["--kill-timeout", "ten"], ["ten"]),
    "grace-negative": Bad(["--grace-period", "-30"], ["-30"]),
    "grace-words": Bad(["--grace-period", "30x"], ["30x"]),
    "hook-timeout-negative": Bad(["--hook-timeout", "-1"], ["-1"]),
    "hook-timeout-nan": Bad(["--hook-timeout", "nan"], ["nan"]),
    "delay-from-env": Bad([], ["-3"], {"PYINIT_PRE_STOP_DELAY": "-3"}),
    # durations past a year, and the ones that used to become inf (issue 13)
    **{
        f"{option}-{label}": Bad([f"--{option}", value], [value[:20]])
        for option in ("kill-timeout", "pre-stop-delay", "grace-period", "hook-timeout")
        for label, value in (("1e10", "10000000000"), ("minutes", "160000000m"), ("inf", HUGE), ("year+1", "31536001"))
    },
    "duration-from-env": Bad([], ["10000000000"], {"PYINIT_KILL_TIMEOUT": "10000000000"}),
    # a delay (or a plan) that does not fit the grace period
    "delay-over-grace": Bad(["--grace-period", "2", "--pre-stop-delay", "5"], ["2s", "5s"]),
    "delay-equals-grace": Bad(["--grace-period", "5", "--pre-stop-delay", "5"], ["5s"]),
    "delay-leaves-no-post-stop-margin": Bad(["--grace-period", "5", "--pre-stop-delay", "4.9"], ["5s", "4.9s"]),
    "kill-timeout-over-grace": Bad(
        ["--grace-period", "5", "--pre-stop-delay", "1", "--kill-timeout", "4"], ["5s", "4s"]
    ),
    "budget-names-every-number": Bad(
        ["--grace-period", "5", "--pre-stop-delay", "2", "--kill-timeout", "3"],
        ["--grace-period 5s", "2s", "--kill-timeout 3s"],
    ),
    "grace-zero": Bad(["--grace-period", "0"], ["--grace-period", "0s"]),
    "hook-timeouts-over-grace": Bad(
        ["--grace-period", "3", "--hook-timeout", "2", "--pre-stop", "true", "--post-stop", "true"], ["3s"]
    ),
    "grace-from-env": Bad([], ["1s", "3s"], {"PYINIT_GRACE_PERIOD": "1", "PYINIT_PRE_STOP_DELAY": "3"}),
    # signals
    "rewrite-name": Bad(["-r", "FOO:1"], ["FOO"]),
    "rewrite-no-target": Bad(["-r", "TERM"], ["TERM"]),
    "rewrite-number": Bad(["-r", "99:1"], ["99"]),
    "rewrite-target-number": Bad(["-r", "TERM:32"], ["32"]),
    "rewrite-target": Bad(["--rewrite", "TERM:BOGUS"], ["BOGUS"]),
    "rewrite-source": Bad(["--rewrite", "BOGUS:USR1"], ["BOGUS"]),
    "rewrite-from-env": Bad([], ["BOGUS"], {"PYINIT_REWRITE": "TERM:BOGUS"}),
    "pdeathsig": Bad(["-p", "NOPE"], ["NOPE"]),
    "stop-signal-name": Bad(["--stop-signal", "SIGFOO"], ["SIGFOO"]),
    "stop-signal-number": Bad(["--stop-signal", "65"], ["65"]),  # 64 is SIGRTMAX
    "stop-signal-zero": Bad(["--stop-signal", "0"], ["'0'"]),
    "stop-signal-from-env": Bad([], ["NOPE"], {"PYINIT_STOP_SIGNAL": "NOPE"}),
    "on-signal": Bad(["--on", "WHAT:echo hi"], ["WHAT"]),
    "on-without-command": Bad(["--on", "TERM"], ["TERM"]),
    # real-time signals outside SIGRTMIN..SIGRTMAX, in every option that takes a signal
    **{
        f"realtime-{name}-{spec}": Bad([option, value.format(spec)], [spec])
        for name, option, value in SIGNAL_OPTIONS
        for spec in ("RTMIN+31", "RTMAX-31", "33", "RTMIN-1")
    },
    # signals that can never work (issue 13)
    **{f"stop-signal-{name}": Bad(["--stop-signal", name], [name, why]) for name, why in CANNOT_WORK},
    **{f"rewrite-{name}": Bad(["--rewrite", f"{name}:TERM"], [name, why]) for name, why in CANNOT_WORK},
    **{f"on-{name}": Bad(["--on", f"{name}:true"], [name, why]) for name, why in CANNOT_WORK},
    "stop-signal-9": Bad(["--stop-signal", "9"], ["'9'", "cannot be caught"]),
    "stop-signal-TSTP": Bad(["--stop-signal", "TSTP"], ["SIGTSTP", "suspends itself"]),
    "stop-signal-TTOU-single-child": Bad(["-c", "--stop-signal", "TTOU"], ["SIGTTOU", "suspends itself"]),
    "stop-signal-rewritten-to-STOP": Bad(["--rewrite", "TERM:STOP"], ["SIGTERM", "SIGSTOP"]),
    "on-from-env": Bad([], ["KILL", "cannot be caught"], {"PYINIT_ON": "KILL:true"}),
    # exit codes and users
    "remap-out-of-range": Bad(["-e", "256"], ["256"]),
    "remap-not-a-number": Bad(["-e", "x:1"], ["x:1"]),
    "user": Bad(["-u", "no-such-user-here"], ["no-such-user-here"]),
    "group": Bad(["-u", "nobody:no-such-group"], ["no-such-group"]),
    "uid-too-big": Bad(["--user", "99999999999"], ["99999999999"]),
    "uid-minus-one": Bad(["--user", "4294967295"], ["4294967295"]),
    "gid-minus-one": Bad(["--user", "0:4294967295"], ["4294967295"]),
    "gid-too-big": Bad(["--user", "0:99999999999"], ["99999999999"]),
    # missing directories and bad hook files
    "hooks-dir-missing": Bad(["--hooks-dir", "{tmp}/missing"], ["missing"]),
    "hooks-dir-from-env": Bad([], ["/no/such/hooks"], {"PYINIT_HOOKS_DIR": "/no/such/hooks"}),
    "hooks-dir-is-a-file": Bad(["--hooks-dir", helper("sigprint.py")], ["sigprint.py"]),
    "ready-file-is-a-directory": Bad(["--ready-file", "{tmp}"], ["{tmp}"]),
    "ready-file-parent-missing": Bad(["--ready-file", "{tmp}/no/ready"], ["no/ready"]),
    "ready-file-name-too-long": Bad(["--ready-file", "{tmp}/" + "r" * 300], ["r" * 300, "longer than 255 bytes"]),
    "pre-start-hook-not-executable": Bad(
        ["--hooks-dir", "{tmp}/hooks"], ["pre-start.d/20-hook"], setup=hooks_dir_with_a_bad_hook("pre-start", 0o644)
    ),
    "pre-stop-hook-not-executable": Bad(
        ["--hooks-dir", "{tmp}/hooks"], ["pre-stop.d/20-hook"], setup=hooks_dir_with_a_bad_hook("pre-stop", 0o644)
    ),
    "post-stop-hook-not-executable": Bad(
        ["--hooks-dir", "{tmp}/hooks"], ["post-stop.d/20-hook"], setup=hooks_dir_with_a_bad_hook("post-stop", 0o600)
    ),
    # ports and URLs
    "port-taken": Bad(["--ready-port", "127.0.0.1:{port}"], ["{port}"]),
    "port-out-of-range": Bad(["--ready-port", "70000"], ["70000"]),
    "port-not-a-number": Bad(["--ready-port", "localhost:http"], ["localhost:http"]),
    "ready-check-not-http": Bad(
        ["--ready-port", "127.0.0.1:1", "--ready-check", "ftp://example/health"], ["ftp://example/health"]
    ),
    "ready-check-without-port": Bad(["--ready-check", "http://127.0.0.1:1/health"], ["--ready-check", "--ready-port"]),
    "ready-check-port-70000": Bad(
        ["--ready-port", "1", "--ready-check", "http://127.0.0.1:70000/"], ["http://127.0.0.1:70000/"]
    ),
    "ready-check-control-character": Bad(
        ["--ready-port", "1", "--ready-check", "http://127.0.0.1/a\x01b"], ["--ready-check"]
    ),
    "ready-check-bad-ipv6": Bad(["--ready-port", "1", "--ready-check", "http://[::zz]/"], ["[::zz]"]),
    "ready-port-non-ascii-host": Bad(["--ready-port", "h\u00f6st:8080"], ["h\u00f6st:8080"]),
    "ready-port-long-non-ascii-label": Bad(["--ready-port", "\u00f6" * 70 + ":8080"], ["\u00f6" * 70]),
    "ready-port-undecodable-host": Bad(["--ready-port", os.fsdecode(b"h\xffst:8080")], ["--ready-port", "8080"]),
    "ready-port-bare-ipv6": Bad(["--ready-port", "::1:8080"], ["::1:8080"]),
    "stop-command-empty": Bad(["--stop-command", " "], ["--stop-command"]),
    # the traffic-aware drain (issue 11)
    "drain-quiet-without-delay": Bad(["--drain-quiet", "1"], ["--drain-quiet", "--pre-stop-delay"]),
    "drain-quiet-zero": Bad(["--pre-stop-delay", "5", "--drain-quiet", "0"], ["--drain-quiet"]),
    "drain-quiet-words": Bad(["--pre-stop-delay", "5", "--drain-quiet", "soon"], ["soon"]),
    "drain-quiet-from-env": Bad([], ["--drain-quiet", "--pre-stop-delay"], {"PYINIT_DRAIN_QUIET": "1"}),
    "drain-min-negative": Bad(["--drain-min", "-1"], ["-1"]),
    "drain-port-out-of-range": Bad(["--drain-ports", "70000"], ["70000"]),
    "drain-ports-from-env": Bad([], ["http"], {"PYINIT_DRAIN_PORTS": "8000,http"}),
    "drain-port-is-the-ready-port": Bad(["--ready-port", "8000", "--drain-ports", "8000"], ["8000", "--ready-port"]),
    "drain-ignore-not-a-network": Bad(["--drain-ignore", "10.0.0.0/33"], ["10.0.0.0/33"]),
    "drain-ignore-from-env": Bad([], ["probe"], {"PYINIT_DRAIN_IGNORE": "10.0.0.0/8 probe"}),
}


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_input_exits_2_with_one_line_naming_it_and_spawns_nothing(mode, tmp_path, taken_port, case):
    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{port}", str(taken_port))

    if case.setup is not None:
        case.setup(tmp_path)
    marker = tmp_path / "spawned"
    env = {**os.environ, **{name: fill(value) for name, value in case.env.items()}}
    result = run_pyinit([*map(fill, case.args), "--", "touch", str(marker)], mode=mode, env=env)
    one_line_error(result, *map(fill, case.named))
    assert result.stdout == ""
    assert not marker.exists()


def test_missing_command_is_a_usage_error(mode):
    one_line_error(run_pyinit([], mode=mode))
