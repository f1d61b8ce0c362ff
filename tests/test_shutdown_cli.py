"""The grace budget (issue 4): a plan that fits runs, and without --kill-timeout the deadline is derived.

The derived deadline leaves room for what follows the kill, so pyinit kills,
and exits, before the platform would. (A plan that cannot fit is bad input:
test_bad_input.py.) Every case runs as PID 1 and as a plain child.
"""

from __future__ import annotations

import re
import signal

import pytest
from helpers.harness import JSON, SIGPRINT, SLACK


def derived_kill_timeout(init) -> float:
    """The kill timeout pyinit announced when it sent the stop signal (the event carries it in words only)."""
    message = init.event("kill_deadline")["message"]
    match = re.fullmatch(r"waiting up to (\d+(?:\.\d+)?)s for the child to exit", message)
    assert match, message
    return float(match.group(1))


def test_a_plan_that_fits_runs(start):
    init = start(
        [
            *JSON,
            "--grace-period",
            "10",
            "--pre-stop-delay",
            "0.2",
            "--kill-timeout",
            "2",
            *SIGPRINT,
            "--exit-on",
            "TERM:0",
        ]
    )
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert init.event("kill_deadline")["message"] == "waiting up to 2s for the child to exit"


@pytest.mark.parametrize("grace,delay", [(4.0, 0.0), (4.0, 0.5)], ids=["no-delay", "with-delay"])
def test_kill_timeout_is_derived_from_the_grace_period(start, grace, delay):
    init = start(
        [*JSON, "--grace-period", f"{grace:g}", "--pre-stop-delay", f"{delay:g}", *SIGPRINT, "--ignore", "TERM"]
    )
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    derived = derived_kill_timeout(init)
    # It leaves room for what follows the kill: strictly less than what the delay leaves.
    assert 0 < derived < grace - delay
    killed = init.offset("killed")
    assert killed >= delay + derived - SLACK
    # pyinit's own clock: it killed, and finished, before the platform would have.
    assert killed < grace
    assert init.offset("exit", code=137) < grace


def test_derived_kill_timeout_leaves_room_for_the_post_stop_hooks(start, tmp_path):
    post = tmp_path / "post"
    grace = 6.0
    init = start(
        [
            *JSON,
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
    derived = derived_kill_timeout(init)
    assert 0 < derived <= grace - 0.5  # at least the post-stop hook's own timeout is kept free
    assert post.read_text().strip() == "ran"
    assert init.offset("exit", code=137) < grace


def test_given_kill_timeout_is_used_as_is_within_the_grace_period(start):
    init = start([*JSON, "--grace-period", "30", "--kill-timeout", "0.5", *SIGPRINT, "--ignore", "TERM"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    assert derived_kill_timeout(init) == 0.5
