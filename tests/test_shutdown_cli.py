"""The grace budget (issue 4): a plan that fits runs, and without --kill-timeout the deadline is derived.

The derived deadline leaves room for what follows the kill, so pyinit kills,
and exits, before the platform would. (A plan that cannot fit is bad input:
test_bad_input.py.) Every case runs as PID 1 and as a plain child.
"""

from __future__ import annotations

import re
import signal

import pytest
from helpers.harness import SIGPRINT, SLACK
from helpers.shutdown_support import step


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
