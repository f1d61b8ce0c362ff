"""The shutdown options' bad input and the grace budget (issue 4).

Bad input: exit 2, ONE line on stderr that names the bad value, and nothing
spawned (the command would create a marker file; it must not exist). The
grace budget: a plan that cannot fit is refused at startup naming the numbers,
and without --kill-timeout the deadline is derived so that pyinit kills before
the platform does. Every case runs as PID 1 and as a plain child.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from pathlib import Path

import pytest
from helpers.harness import SIGPRINT, SLACK, helper, run_pyinit
from helpers.shutdown_support import step


def hooks_dir(root: Path, phase: str, mode: int) -> Path:
    folder = root / "hooks" / f"{phase}.d"
    folder.mkdir(parents=True)
    (folder / "10-ok").write_text("#!/bin/sh\ntrue\n")
    (folder / "10-ok").chmod(0o755)
    (folder / "20-hook").write_text("#!/bin/sh\ntrue\n")
    (folder / "20-hook").chmod(mode)
    return root / "hooks"


# Each case: (args given tmp_path and a taken port, extra environment, what the one line must name;
# ``{port}`` stands for the taken port, ``{tmp}`` for tmp_path).
BAD = {
    # negative or non-numeric durations
    "delay-negative": (lambda t, p: ["--pre-stop-delay", "-1"], {}, ["-1"]),
    "delay-negative-unit": (lambda t, p: ["--pre-stop-delay", "-500ms"], {}, ["-500ms"]),
    "delay-words": (lambda t, p: ["--pre-stop-delay", "soon"], {}, ["soon"]),
    "delay-empty": (lambda t, p: ["--pre-stop-delay", ""], {}, ["--pre-stop-delay"]),
    "kill-timeout-negative": (lambda t, p: ["--kill-timeout", "-2"], {}, ["-2"]),
    "kill-timeout-words": (lambda t, p: ["--kill-timeout", "ten"], {}, ["ten"]),
    "grace-negative": (lambda t, p: ["--grace-period", "-30"], {}, ["-30"]),
    "grace-words": (lambda t, p: ["--grace-period", "30x"], {}, ["30x"]),
    "hook-timeout-negative": (lambda t, p: ["--hook-timeout", "-1"], {}, ["-1"]),
    "hook-timeout-nan": (lambda t, p: ["--hook-timeout", "nan"], {}, ["nan"]),
    "delay-from-env": (lambda t, p: [], {"PYINIT_PRE_STOP_DELAY": "-3"}, ["-3"]),
    # a delay (or a plan) that does not fit the grace period
    "delay-over-grace": (lambda t, p: ["--grace-period", "2", "--pre-stop-delay", "5"], {}, ["2s", "5s"]),
    "delay-equals-grace": (lambda t, p: ["--grace-period", "5", "--pre-stop-delay", "5"], {}, ["5s"]),
    "delay-leaves-no-post-stop-margin": (
        lambda t, p: ["--grace-period", "5", "--pre-stop-delay", "4.9"],
        {},
        ["5s", "4.9s"],
    ),
    "kill-timeout-over-grace": (
        lambda t, p: ["--grace-period", "5", "--pre-stop-delay", "1", "--kill-timeout", "4"],
        {},
        ["5s", "4s"],
    ),
    "grace-zero": (lambda t, p: ["--grace-period", "0"], {}, ["--grace-period", "0s"]),
    "hook-timeouts-over-grace": (
        lambda t, p: ["--grace-period", "3", "--hook-timeout", "2", "--pre-stop", "true", "--post-stop", "true"],
        {},
        ["3s"],
    ),
    "grace-from-env": (lambda t, p: [], {"PYINIT_GRACE_PERIOD": "1", "PYINIT_PRE_STOP_DELAY": "3"}, ["1s", "3s"]),
    # unknown signals
    "stop-signal-name": (lambda t, p: ["--stop-signal", "SIGFOO"], {}, ["SIGFOO"]),
    "stop-signal-number": (lambda t, p: ["--stop-signal", "65"], {}, ["65"]),  # 64 is SIGRTMAX
    "stop-signal-zero": (lambda t, p: ["--stop-signal", "0"], {}, ["'0'"]),
    "stop-signal-from-env": (lambda t, p: [], {"PYINIT_STOP_SIGNAL": "NOPE"}, ["NOPE"]),
    "rewrite-target": (lambda t, p: ["--rewrite", "TERM:BOGUS"], {}, ["BOGUS"]),
    "rewrite-source": (lambda t, p: ["--rewrite", "BOGUS:USR1"], {}, ["BOGUS"]),
    "on-signal": (lambda t, p: ["--on", "WHAT:echo hi"], {}, ["WHAT"]),
    "on-without-command": (lambda t, p: ["--on", "TERM"], {}, ["TERM"]),
    # missing directories and bad hook files
    "hooks-dir-missing": (lambda t, p: ["--hooks-dir", str(t / "missing")], {}, ["missing"]),
    "hooks-dir-from-env": (lambda t, p: [], {"PYINIT_HOOKS_DIR": "/no/such/hooks"}, ["/no/such/hooks"]),
    "hooks-dir-is-a-file": (lambda t, p: ["--hooks-dir", helper("sigprint.py")], {}, ["sigprint.py"]),
    "ready-file-is-a-directory": (lambda t, p: ["--ready-file", str(t)], {}, ["{tmp}"]),
    "ready-file-parent-missing": (lambda t, p: ["--ready-file", str(t / "no" / "ready")], {}, ["no/ready"]),
    "pre-start-hook-not-executable": (
        lambda t, p: ["--hooks-dir", str(hooks_dir(t, "pre-start", 0o644))],
        {},
        ["pre-start.d/20-hook"],
    ),
    "pre-stop-hook-not-executable": (
        lambda t, p: ["--hooks-dir", str(hooks_dir(t, "pre-stop", 0o644))],
        {},
        ["pre-stop.d/20-hook"],
    ),
    "post-stop-hook-not-executable": (
        lambda t, p: ["--hooks-dir", str(hooks_dir(t, "post-stop", 0o600))],
        {},
        ["post-stop.d/20-hook"],
    ),
    # ports and URLs
    "port-taken": (lambda t, p: ["--ready-port", f"127.0.0.1:{p}"], {}, ["{port}"]),
    "port-out-of-range": (lambda t, p: ["--ready-port", "70000"], {}, ["70000"]),
    "port-not-a-number": (lambda t, p: ["--ready-port", "localhost:http"], {}, ["localhost:http"]),
    "ready-check-not-http": (
        lambda t, p: ["--ready-port", "127.0.0.1:1", "--ready-check", "ftp://example/health"],
        {},
        ["ftp://example/health"],
    ),
    "ready-check-without-port": (
        lambda t, p: ["--ready-check", "http://127.0.0.1:1/health"],
        {},
        ["--ready-check", "--ready-port"],
    ),
    "stop-command-empty": (lambda t, p: ["--stop-command", " "], {}, ["--stop-command"]),
    # the traffic-aware drain (issue 11)
    "drain-quiet-without-delay": (lambda t, p: ["--drain-quiet", "1"], {}, ["--drain-quiet", "--pre-stop-delay"]),
    "drain-quiet-zero": (lambda t, p: ["--pre-stop-delay", "5", "--drain-quiet", "0"], {}, ["--drain-quiet"]),
    "drain-quiet-words": (lambda t, p: ["--pre-stop-delay", "5", "--drain-quiet", "soon"], {}, ["soon"]),
    "drain-quiet-from-env": (lambda t, p: [], {"PYINIT_DRAIN_QUIET": "1"}, ["--drain-quiet", "--pre-stop-delay"]),
    "drain-min-negative": (lambda t, p: ["--drain-min", "-1"], {}, ["-1"]),
    "drain-port-out-of-range": (lambda t, p: ["--drain-ports", "70000"], {}, ["70000"]),
    "drain-ports-from-env": (lambda t, p: [], {"PYINIT_DRAIN_PORTS": "8000,http"}, ["http"]),
    "drain-port-is-the-ready-port": (
        lambda t, p: ["--ready-port", "8000", "--drain-ports", "8000"],
        {},
        ["8000", "--ready-port"],
    ),
    "drain-ignore-not-a-network": (lambda t, p: ["--drain-ignore", "10.0.0.0/33"], {}, ["10.0.0.0/33"]),
    "drain-ignore-from-env": (lambda t, p: [], {"PYINIT_DRAIN_IGNORE": "10.0.0.0/8 probe"}, ["probe"]),
}


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_input_exits_2_with_one_line_naming_it_and_spawns_nothing(mode, tmp_path, taken_port, case):
    build, extra_env, named = case
    marker = tmp_path / "spawned"
    args = build(tmp_path, taken_port)
    env = {**os.environ, **extra_env}
    result = run_pyinit([*args, "sh", "-c", f"touch {marker}"], mode=mode, env=env)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("[pyinit] error:"), lines[0]
    for text in named:
        text = text.replace("{port}", str(taken_port)).replace("{tmp}", str(tmp_path))
        assert text in lines[0], (text, lines[0])
    assert result.stdout == ""
    assert not marker.exists()


def test_the_budget_message_names_every_number(mode, tmp_path):
    marker = tmp_path / "spawned"
    result = run_pyinit(
        ["--grace-period", "5", "--pre-stop-delay", "2", "--kill-timeout", "3", "touch", str(marker)], mode=mode
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    for number in ("--grace-period 5s", "2s", "--kill-timeout 3s"):
        assert number in line, line
    assert not marker.exists()


# -- a plan that fits -----------------------------------------------------------------------------------


def test_a_plan_that_fits_runs(start):
    init = start(
        ["--grace-period", "10", "--pre-stop-delay", "0.2", "--kill-timeout", "2", *SIGPRINT, "--exit-on", "TERM:0"]
    )
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert step(init.err, "waiting up to").message == "waiting up to 2s for the child to exit"


@pytest.mark.parametrize("grace,delay", [(4.0, 0.0), (4.0, 0.5)], ids=["no-delay", "with-delay"])
def test_kill_timeout_is_derived_from_the_grace_period(start, grace, delay):
    init = start(["--grace-period", f"{grace:g}", "--pre-stop-delay", f"{delay:g}", *SIGPRINT, "--ignore", "TERM"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    waiting = step(init.err, "waiting up to")
    match = re.fullmatch(r"waiting up to (\d+(?:\.\d+)?)s for the child to exit", waiting.message)
    assert match, waiting.message
    derived = float(match.group(1))
    # It leaves room for what follows the kill: strictly less than what the delay leaves.
    assert 0 < derived < grace - delay
    killed = step(init.err, "kill timeout passed")
    assert killed.offset >= delay + derived - SLACK
    # pyinit's own clock: it killed, and finished, before the platform would have.
    assert killed.offset < grace
    assert step(init.err, "exiting 137").offset < grace


def test_derived_kill_timeout_leaves_room_for_the_post_stop_hooks(start, tmp_path):
    post = tmp_path / "post"
    grace = 6.0
    init = start(
        [
            "--grace-period",
            f"{grace:g}",
            "--hook-timeout",
            "0.5",
            "--post-stop",
            f"echo ran > {post}",
            *SIGPRINT,
            "--ignore",
            "TERM",
        ]
    )
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    derived = float(re.search(r"waiting up to (\S+)s", step(init.err, "waiting up to").message).group(1))
    assert 0 < derived <= grace - 0.5  # at least the post-stop hook's own timeout is kept free
    assert post.read_text().strip() == "ran"
    assert step(init.err, "exiting 137").offset < grace


def test_given_kill_timeout_is_used_as_is_within_the_grace_period(start):
    init = start(["--grace-period", "30", "--kill-timeout", "0.5", *SIGPRINT, "--ignore", "TERM"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    assert step(init.err, "waiting up to").message == "waiting up to 0.5s for the child to exit"
