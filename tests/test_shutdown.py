"""Graceful shutdown (issue 4): the sequence from the stop signal (T0) to pyinit's exit.

    T0 readiness off -> pre-stop hooks -> delay -> stop signal (after --rewrite)
       -> kill deadline -> child exit -> leftovers TERM/KILL -> post-stop hooks -> exit

Every test drives the real ``python -m pyinit``, as PID 1 of a fresh PID
namespace and as a plain child, with real signals. Lower time bounds are
asserted tightly-ish (a step must not come early), upper bounds loosely (a
step must come, on a noisy machine, eventually).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from helpers.harness import (
    FAMILY,
    SIGPRINT,
    SLACK,
    WAIT,
    alive,
    cmdline,
    descendants,
    events,
    fields,
    wait_for,
    zombies_under,
)
from helpers.shutdown_support import offset_of, step, timeline


def grandchild_host_pid(init) -> int:
    """The host pid of the family.py grandchild under ``init`` (the child itself exec'd sigprint)."""

    def find() -> int | None:
        for pid in descendants(init.pid):
            argv = cmdline(pid)
            if any(arg.endswith("family.py") for arg in argv):
                return pid
        return None

    return wait_for(find, "the grandchild to appear")


# -- the whole sequence -------------------------------------------------------------------------


def test_full_sequence_in_order_with_timing_json(start, tmp_path):
    ready, seen, post, gpid_file = (tmp_path / name for name in ("ready", "seen", "post", "gpid"))
    init = start(
        [
            "--log-format",
            "json",
            "--ready-file",
            str(ready),
            "--pre-stop",
            f"sleep 0.3; if test -e {ready}; then echo present; else echo absent; fi > {seen}",
            "--pre-stop-delay",
            "0.5",
            "--kill-timeout",
            "5",
            "--post-stop",
            f"if kill -0 $(cat {gpid_file}) 2>/dev/null; then echo alive; else echo dead; fi > {post}",
            *FAMILY,
            "--setsid",
            "--ignore-term",
            "--pidfile",
            str(gpid_file),
            *SIGPRINT,
            "--drain",
            "TERM:0.3",
        ]
    )
    init.expect("ready pid=")
    assert ready.exists()
    init.kill(signal.SIGTERM)
    assert init.wait() == 0

    log = events(init.err)
    assert log, init.err
    names = [event["event"] for event in log]
    expected = [
        "stop_requested",
        "pre_stop_done",
        "delay_over",
        "signal_forwarded",
        "kill_deadline",
        "child_exited",
        "leftovers_term",
        "leftovers_kill",
        "exit",
    ]
    assert [name for name in names if name in expected] == expected, names
    at = {event["event"]: event for event in reversed(log)}  # the first of each

    # Every event from T0 on carries an offset, and they never go back in time.
    after_t0 = log[names.index("stop_requested") :]
    offsets = [event["offset"] for event in after_t0]
    assert all(isinstance(value, (int, float)) for value in offsets), after_t0
    assert offsets == sorted(offsets)

    assert at["stop_requested"]["offset"] < 0.2
    assert at["stop_requested"]["signal"] == "SIGTERM"
    assert at["pre_stop_done"]["offset"] >= 0.3 - SLACK  # the hook sleeps 0.3 s
    assert at["delay_over"]["offset"] >= 0.5 - SLACK
    assert at["signal_forwarded"]["offset"] >= 0.5 - SLACK
    assert at["signal_forwarded"]["signal"] == "SIGTERM"
    assert at["child_exited"]["offset"] >= 0.8 - SLACK  # 0.5 s delay + 0.3 s drain
    assert at["child_exited"]["code"] == 0
    # The escaped grandchild ignores TERM: KILL comes after the short leftover deadline.
    assert at["leftovers_kill"]["offset"] - at["leftovers_term"]["offset"] >= 0.5
    assert at["exit"]["code"] == 0

    # Readiness was already off when the pre-stop hook looked; the child got
    # nothing before the delay was over; the post-stop hook ran after the sweep.
    assert seen.read_text().strip() == "absent"
    assert not ready.exists()
    assert [line for line in init.out if line.startswith("signal ")] == ["signal SIGTERM"]
    assert post.read_text().strip() == "dead"


def test_timeline_is_logged_as_text_at_default_verbosity(start):
    init = start(["--pre-stop-delay", "0.5", *SIGPRINT, "--drain", "TERM:0.2"])
    pgid = fields(init.expect("ready pid="))["pgid"]
    init.kill(signal.SIGTERM)
    assert init.wait() == 0

    steps = timeline(init.err)
    assert all(line.startswith("[pyinit] ") for line in init.err), init.err
    first = step(init.err, "SIGTERM received")
    assert first.message.startswith("SIGTERM received: readiness off, pre-stop delay 0.5s"), first.message
    assert first.offset is not None and first.offset < 0.2
    assert offset_of(init.err, f"forwarded SIGTERM to process group {pgid}") >= 0.5 - SLACK
    assert offset_of(init.err, "child exited 0") >= 0.7 - SLACK
    assert step(init.err, "exiting 0").offset is not None
    # One line per step, each after the previous one.
    after = [item.offset for item in steps[steps.index(first) :]]
    assert None not in after and after == sorted(after)


@pytest.mark.parametrize(
    "delay,hook", [(0.8, 0.2), (0.2, 0.8)], ids=["delay-longer-than-hooks", "hooks-longer-than-delay"]
)
def test_stop_waits_for_both_the_delay_and_the_pre_stop_hooks(start, delay, hook):
    init = start(["--pre-stop-delay", str(delay), "--pre-stop", f"sleep {hook}", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGTERM")
    assert time.monotonic() - sent >= max(delay, hook) - SLACK
    assert init.wait() == 0
    assert offset_of(init.err, "forwarded SIGTERM") >= max(delay, hook) - SLACK
    assert offset_of(init.err, "pre-stop delay over") >= delay - SLACK
    assert offset_of(init.err, "pre-stop hooks done") >= hook - SLACK


def test_no_delay_forwards_at_once(start):
    init = start([*SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert offset_of(init.err, "forwarded SIGTERM") < 0.5
    assert "pre-stop delay over" not in init.stderr


# -- during the delay ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["forwarded-signal", "killed-from-outside"])
def test_child_exiting_during_the_delay_ends_it(start, tmp_path, how):
    post = tmp_path / "post"
    init = start(["--pre-stop-delay", "60", "--post-stop", f"touch {post}", *SIGPRINT, "--exit-on", "USR1:3"])
    init.expect("ready pid=")
    child = init.child_pid()
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    if how == "forwarded-signal":
        init.kill(signal.SIGUSR1)
        expected = 3
    else:
        os.kill(child, signal.SIGKILL)
        expected = 128 + signal.SIGKILL
    assert init.wait() == expected
    assert time.monotonic() - sent < 15  # not the 60 s delay
    assert "signal SIGTERM" not in init.out
    log = init.stderr
    assert "forwarded SIGTERM" not in log and "pre-stop delay over" not in log
    assert offset_of(init.err, f"child exited {expected}") < 15
    assert post.exists()  # straight to step 6, post-stop hooks included


@pytest.mark.parametrize(
    "waiting_on", [["--pre-stop-delay", "60"], ["--pre-stop", "sleep 60.1"]], ids=["delay", "pre-stop-hook"]
)
def test_second_stop_signal_cuts_the_delay_short(start, waiting_on):
    init = start([*waiting_on, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    time.sleep(0.2)
    assert "signal SIGTERM" not in init.out
    init.kill(signal.SIGTERM)
    init.expect("cutting the pre-stop delay short")
    init.expect("signal SIGTERM")
    assert init.wait() == 0
    assert time.monotonic() - sent < 15
    assert init.out.count("signal SIGTERM") == 1
    cut = offset_of(init.err, "cutting the pre-stop delay short")
    assert cut >= 0.2 - SLACK
    assert offset_of(init.err, "forwarded SIGTERM") >= cut


def test_rewrite_is_applied_at_the_end_of_the_delay(start):
    init = start(["--rewrite", "TERM:USR1", "--pre-stop-delay", "0.5", *SIGPRINT, "--exit-on", "USR1:0"])
    pgid = fields(init.expect("ready pid="))["pgid"]
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGUSR1")
    assert time.monotonic() - sent >= 0.4
    assert init.wait() == 0
    assert "signal SIGTERM" not in init.out
    line = step(init.err, "forwarded SIGUSR1").message
    assert line == f"forwarded SIGUSR1 to process group {pgid} (rewritten from SIGTERM)"
    assert offset_of(init.err, "forwarded SIGUSR1") >= 0.5 - SLACK
    assert step(init.err, "SIGTERM received").message.startswith("SIGTERM received: readiness off, pre-stop delay 0.5s")


def test_other_signals_are_forwarded_during_the_delay(start):
    init = start(["--pre-stop-delay", "3", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    for number in (signal.SIGHUP, signal.SIGUSR2, signal.SIGWINCH):
        init.kill(number)
        init.expect(f"signal {signal.Signals(number).name}")
    assert "signal SIGTERM" not in init.out
    assert init.wait() == 0
    over = offset_of(init.err, "pre-stop delay over")
    assert over >= 3 - SLACK
    for name in ("SIGHUP", "SIGUSR2", "SIGWINCH"):
        # During the delay, forwarding is part of the timeline.
        assert offset_of(init.err, f"forwarded {name}") < over
    assert init.out.index("signal SIGWINCH") < init.out.index("signal SIGTERM")


def test_zombies_are_reaped_during_the_delay(start):
    # The hook leaves an orphan that exits 0.2 s later: pyinit must reap it while it waits.
    init = start(["-w", "--pre-stop-delay", "3", "--on", "USR2:sleep 0.2 &", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGUSR2")
    init.expect("reaped zombie pid")
    assert zombies_under(init.pid) == []
    assert "signal SIGTERM" not in init.out
    assert init.wait() == 0
    assert offset_of(init.err, "reaped zombie pid") < offset_of(init.err, "pre-stop delay over")


def test_custom_stop_signal_starts_the_sequence_and_term_is_just_forwarded(start):
    init = start(["--stop-signal", "USR2", "--pre-stop-delay", "0.4", *SIGPRINT, "--exit-on", "USR2:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect("signal SIGTERM")  # not a stop signal here: forwarded at once, no delay
    assert "received: readiness off" not in init.stderr
    sent = time.monotonic()
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGUSR2")
    assert time.monotonic() - sent >= 0.4 - SLACK
    assert init.wait() == 0
    assert step(init.err, "SIGUSR2 received").message.startswith("SIGUSR2 received: readiness off")


# -- the stop command -----------------------------------------------------------------------------


def test_stop_command_runs_instead_of_forwarding(start, tmp_path):
    record = tmp_path / "stop"
    command = f'echo "$PYINIT_SIGNAL $PYINIT_CHILD_PID" > {record}; kill -USR1 "$PYINIT_CHILD_PID"'
    init = start(["--pre-stop-delay", "0.3", "--stop-command", command, *SIGPRINT, "--exit-on", "USR1:4"])
    pid = fields(init.expect("ready pid="))["pid"]
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGUSR1")
    assert time.monotonic() - sent >= 0.3 - SLACK
    assert init.wait() == 4
    assert "signal SIGTERM" not in init.out
    assert record.read_text().split() == ["SIGTERM", pid]
    log = init.stderr
    assert "forwarded SIGTERM" not in log
    assert offset_of(init.err, "running stop command") >= 0.3 - SLACK
    assert "exiting 4" in log


# -- the kill deadline ------------------------------------------------------------------------------


def test_child_ignoring_term_is_killed_at_the_deadline(start):
    init = start(["--kill-timeout", "0.5", *SIGPRINT, "--ignore", "TERM"])
    pid = fields(init.expect("ready pid="))["pid"]
    child = init.child_pid()
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    assert not alive(child)
    assert step(init.err, "waiting up to").message == "waiting up to 0.5s for the child to exit"
    killed = step(init.err, "kill timeout passed")
    assert f"pid {pid} " in killed.message + " "
    forwarded = offset_of(init.err, "forwarded SIGTERM")
    assert killed.offset is not None and killed.offset - forwarded >= 0.5 - SLACK
    assert step(init.err, "child exited 137").offset >= killed.offset
    assert "exiting 137" in init.stderr


def test_kill_reaches_a_grandchild_that_escaped_with_setsid(start, tmp_path):
    init = start(
        ["--kill-timeout", "0.5", *FAMILY, "--setsid", "--ignore-term", *SIGPRINT, "--ignore", "TERM"],
    )
    grand = fields(init.expect("grandchild pid="))
    child = fields(init.expect("ready pid="))
    assert grand["sid"] != child["sid"] and grand["pgid"] != child["pgid"]  # it really escaped
    grandchild = grandchild_host_pid(init)
    init.kill(signal.SIGTERM)
    killed = init.expect("kill timeout passed")
    assert f"pid {grand['pid']} (" in killed and f"pid {child['pid']} (" in killed, killed
    assert init.wait() == 128 + signal.SIGKILL
    assert not alive(grandchild)
    # Both were killed at the deadline: the grandchild ignores TERM, so had it been left to
    # the leftover sweep, that would have needed its own SIGKILL a second later.
    assert "SIGKILL to leftover" not in init.stderr, init.stderr


def _stop_child_leaving_a_setsid_grandchild(start, *family_flags: str):
    """The child exits 0 on TERM; its grandchild left the session. Returns the log and the grandchild's pid."""
    init = start([*FAMILY, "--setsid", *family_flags, *SIGPRINT, "--exit-on", "TERM:0"])
    grand = fields(init.expect("grandchild pid="))
    init.expect("ready pid=")
    grandchild = grandchild_host_pid(init)
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert not alive(grandchild)
    return init, grand


def test_setsid_grandchild_that_ignores_term_is_killed_after_the_child_exits(start):
    init, grand = _stop_child_leaving_a_setsid_grandchild(start, "--ignore-term")
    term = step(init.err, "sent SIGTERM to leftover")
    kill = step(init.err, "sent SIGKILL to leftover")
    assert f"pid {grand['pid']} (" in term.message and f"pid {grand['pid']} (" in kill.message
    assert kill.offset - term.offset >= 0.5
    assert offset_of(init.err, "exiting 0") >= kill.offset


def test_leftover_that_obeys_term_is_not_killed(start):
    init, grand = _stop_child_leaving_a_setsid_grandchild(start)
    assert f"pid {grand['pid']} (" in step(init.err, "sent SIGTERM to leftover").message
    assert "SIGKILL" not in init.stderr


def test_without_a_kill_timeout_or_grace_period_pyinit_waits_indefinitely(start):
    init = start([*SIGPRINT, "--ignore", "TERM"])
    init.expect("ready pid=")
    child = init.child_pid()
    init.kill(signal.SIGTERM)
    init.expect("forwarded SIGTERM")
    time.sleep(1.5)
    assert init.proc.poll() is None and alive(child)
    log = init.stderr
    assert "waiting up to" not in log and "SIGKILL" not in log


@pytest.mark.parametrize("remap,code", [([], 5), (["--remap-exit", "5:9"], 9)], ids=["as-is", "remapped"])
def test_exit_code_is_the_childs_after_shutdown(start, remap, code):
    init = start([*remap, "--rewrite", "TERM:USR1", "--pre-stop-delay", "0.2", *SIGPRINT, "--exit-on", "USR1:5"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == code
    assert "child exited 5" in init.stderr
    assert step(init.err, f"exiting {code}").offset is not None


def test_stop_signal_with_nothing_running_in_the_group_still_exits(start):
    # The whole tree is gone before the deadline: the kill timer must not fire afterwards.
    init = start(["--kill-timeout", "0.5", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait(timeout=WAIT) == 0
    assert "kill timeout passed" not in init.stderr
