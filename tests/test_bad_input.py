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
from helpers.harness import helper, run_pyinit


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
    # exit codes and users
    "remap-out-of-range": Bad(["-e", "256"], ["256"]),
    "remap-not-a-number": Bad(["-e", "x:1"], ["x:1"]),
    "user": Bad(["-u", "no-such-user-here"], ["no-such-user-here"]),
    "group": Bad(["-u", "nobody:no-such-group"], ["no-such-group"]),
    # missing directories and bad hook files
    "hooks-dir-missing": Bad(["--hooks-dir", "{tmp}/missing"], ["missing"]),
    "hooks-dir-from-env": Bad([], ["/no/such/hooks"], {"PYINIT_HOOKS_DIR": "/no/such/hooks"}),
    "hooks-dir-is-a-file": Bad(["--hooks-dir", helper("sigprint.py")], ["sigprint.py"]),
    "ready-file-is-a-directory": Bad(["--ready-file", "{tmp}"], ["{tmp}"]),
    "ready-file-parent-missing": Bad(["--ready-file", "{tmp}/no/ready"], ["no/ready"]),
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
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("[pyinit] error:"), lines[0]
    for text in map(fill, case.named):
        assert text in lines[0], (text, lines[0])
    assert result.stdout == ""
    assert not marker.exists()


def test_missing_command_is_a_usage_error(mode):
    result = run_pyinit([], mode=mode)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
