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
from typing import Any

import pytest
from helpers.harness import (
    FAMILY,
    JSON,
    LONG_DELAY,
    SIGPRINT,
    SLACK,
    alive,
    cmdline,
    descendants,
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


def reached(event: dict[str, Any], pid: str) -> bool:
    """Whether a signalling event names (namespace) pid ``pid`` among those it reached (numbers, in JSON)."""
    return int(pid) in event["pids"]


# -- the whole sequence -------------------------------------------------------------------------


def test_full_sequence_in_order_with_timing_json(start, tmp_path, gate):
    ready, seen, post, gpid_file = (tmp_path / name for name in ("ready", "seen", "post", "gpid"))
    hook = gate("hook")
    init = start(
        [
            *JSON,
            "--ready-file",
            str(ready),
            "--pre-stop",
            f"if test -e {ready}; then echo present; else echo absent; fi > {seen}; {hook.command}",
            "--pre-stop-delay",
            "0.5",
            "--kill-timeout",
            "10",
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
    wait_for(ready.exists, "the ready file")
    init.kill(signal.SIGTERM)
    hook.reached()
    init.expect_event("delay_over")  # the hook holds the stop back past the delay...
    hook.release()  # ...until now
    assert init.wait() == 0

    names = init.names
    expected = [
        "stop_requested",
        "delay_over",
        "pre_stop_done",
        "signal_forwarded",
        "kill_deadline",
        "child_exited",
        "leftovers_term",
        "leftovers_kill",
        "post_stop",
        "exit",
    ]
    assert [name for name in names if name in expected] == expected, names
    log = init.events
    at = {event["event"]: event for event in reversed(log)}  # the first of each

    # Every event from T0 on carries an offset, and they never go back in time.
    after_t0 = log[names.index("stop_requested") :]
    offsets = [event["offset"] for event in after_t0]
    assert all(isinstance(value, (int, float)) for value in offsets), after_t0
    assert offsets == sorted(offsets)

    assert at["stop_requested"]["offset"] < at["delay_over"]["offset"]  # readiness off at T0, not after the delay
    assert at["stop_requested"]["signal"] == "SIGTERM"
    assert at["stop_requested"]["delay"] == 0.5
    assert at["delay_over"]["offset"] >= 0.5 - SLACK
    assert at["signal_forwarded"]["signal"] == "SIGTERM"
    assert at["child_exited"]["offset"] >= at["signal_forwarded"]["offset"] + 0.3 - SLACK  # the 0.3 s drain
    assert at["child_exited"]["code"] == 0
    # The escaped grandchild ignores TERM: KILL comes after the short leftover deadline.
    assert at["leftovers_kill"]["offset"] - at["leftovers_term"]["offset"] >= 0.5
    assert at["exit"]["code"] == 0

    # Readiness was already off when the pre-stop hook looked; the child got
    # nothing before the hook was done; the post-stop hook ran after the sweep.
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
    assert first.offset is not None and first.offset < offset_of(init.err, "pre-stop delay over")
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
    init = start(
        [*JSON, "--pre-stop-delay", str(delay), "--pre-stop", f"sleep {hook}", *SIGPRINT, "--exit-on", "TERM:0"]
    )
    init.expect("ready pid=")
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGTERM")
    assert time.monotonic() - sent >= max(delay, hook) - SLACK
    assert init.wait() == 0
    assert init.offset("signal_forwarded", signal="SIGTERM") >= max(delay, hook) - SLACK
    assert init.offset("delay_over") >= delay - SLACK
    assert init.offset("pre_stop_done") >= hook - SLACK


def test_no_delay_forwards_at_once(start):
    init = start([*JSON, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    names = init.names
    assert names[names.index("stop_requested") + 1] == "signal_forwarded", names
    assert "delay_over" not in names


# -- during the delay ---------------------------------------------------------------------------
# A delay of 60 s that the test cuts short once it has seen what it came for: whatever
# happens before that happens during the delay, however slow the machine.


@pytest.mark.parametrize("how", ["forwarded-signal", "killed-from-outside"])
def test_child_exiting_during_the_delay_ends_it(start, tmp_path, how):
    post = tmp_path / "post"
    init = start([*JSON, *LONG_DELAY, "--post-stop", f"touch {post}", *SIGPRINT, "--exit-on", "USR1:3"])
    init.expect("ready pid=")
    child = init.child_pid()
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")
    if how == "forwarded-signal":
        init.kill(signal.SIGUSR1)
        expected = 3
    else:
        os.kill(child, signal.SIGKILL)
        expected = 128 + signal.SIGKILL
    assert init.wait() == expected
    assert "signal SIGTERM" not in init.out
    names = init.names
    assert "delay_over" not in names and "delay_cut" not in names, names
    assert not [e for e in init.events if e["event"] == "signal_forwarded" and e["signal"] == "SIGTERM"]
    assert init.event("child_exited")["code"] == expected
    assert names.index("child_exited") < names.index("post_stop")
    assert post.exists()  # straight to step 6, post-stop hooks included


@pytest.mark.parametrize("waiting_on", [LONG_DELAY, ["--pre-stop", "sleep 60.1"]], ids=["delay", "pre-stop-hook"])
def test_second_stop_signal_cuts_the_delay_short(start, waiting_on):
    init = start([*JSON, *waiting_on, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")
    init.kill(signal.SIGUSR2)  # a marker: pyinit has handled the first stop signal and goes on forwarding
    init.expect("signal SIGUSR2")
    init.cut_the_delay_short()
    assert init.wait() == 0
    assert init.out.count("signal SIGTERM") == 1
    names = init.names
    assert names.index("delay_cut") < names.index("child_exited")
    assert init.offset("signal_forwarded", signal="SIGTERM") >= init.offset("delay_cut")
    assert "delay_over" not in names and "pre_stop_done" not in names, names


def test_rewrite_is_applied_at_the_end_of_the_delay(start):
    init = start([*JSON, "--rewrite", "TERM:USR1", "--pre-stop-delay", "0.5", *SIGPRINT, "--exit-on", "USR1:0"])
    pgid = fields(init.expect("ready pid="))["pgid"]
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGUSR1")
    assert time.monotonic() - sent >= 0.5 - SLACK
    assert init.wait() == 0
    assert "signal SIGTERM" not in init.out
    forwarded = init.event("signal_forwarded")
    assert forwarded["signal"] == "SIGUSR1"
    assert forwarded["message"] == f"forwarded SIGUSR1 to process group {pgid} (rewritten from SIGTERM)"
    assert forwarded["offset"] >= 0.5 - SLACK
    stop = init.event("stop_requested")
    assert (stop["signal"], stop["delay"]) == ("SIGTERM", 0.5)


def test_other_signals_are_forwarded_during_the_delay(start):
    init = start([*JSON, *LONG_DELAY, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")
    others = (signal.SIGHUP, signal.SIGUSR2, signal.SIGWINCH)
    for number in others:
        init.kill(number)
        init.expect(f"signal {signal.Signals(number).name}")
    init.cut_the_delay_short()
    assert init.wait() == 0
    # During the delay, forwarding is part of the timeline.
    forwarded = [e["signal"] for e in init.events if e["event"] == "signal_forwarded" and "offset" in e]
    assert forwarded == [*(signal.Signals(number).name for number in others), "SIGTERM"]
    assert init.out.index("signal SIGWINCH") < init.out.index("signal SIGTERM")


def test_zombies_are_reaped_during_the_delay(start):
    # The hook leaves an orphan behind: pyinit must reap it while it waits.
    init = start([*JSON, "-w", *LONG_DELAY, "--on", "USR2:sleep 0.2 &", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGUSR2")
    init.expect_event("zombie_reaped")
    assert zombies_under(init.pid) == []
    init.cut_the_delay_short()
    assert init.wait() == 0


def test_custom_stop_signal_starts_the_sequence_and_term_is_just_forwarded(start):
    init = start([*JSON, "-v", "--stop-signal", "USR2", "--pre-stop-delay", "0.4", *SIGPRINT, "--exit-on", "USR2:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    init.expect_event("signal_forwarded", signal="SIGTERM")  # not a stop signal here: forwarded at once
    assert "stop_requested" not in init.names
    sent = time.monotonic()
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGUSR2")
    assert time.monotonic() - sent >= 0.4 - SLACK
    assert init.wait() == 0
    assert init.event("stop_requested")["signal"] == "SIGUSR2"
    assert init.offset("signal_forwarded", signal="SIGUSR2") >= 0.4 - SLACK


# -- the stop command -----------------------------------------------------------------------------


def test_stop_command_runs_instead_of_forwarding(start, tmp_path):
    record = tmp_path / "stop"
    command = f'echo "$PYINIT_SIGNAL $PYINIT_CHILD_PID" > {record}; kill -USR1 "$PYINIT_CHILD_PID"'
    init = start([*JSON, "--pre-stop-delay", "0.3", "--stop-command", command, *SIGPRINT, "--exit-on", "USR1:4"])
    pid = fields(init.expect("ready pid="))["pid"]
    sent = time.monotonic()
    init.kill(signal.SIGTERM)
    init.expect("signal SIGUSR1")
    assert time.monotonic() - sent >= 0.3 - SLACK
    assert init.wait() == 4
    assert "signal SIGTERM" not in init.out
    assert record.read_text().split() == ["SIGTERM", pid]
    assert "signal_forwarded" not in init.names
    assert init.offset("stop_command") >= 0.3 - SLACK
    assert init.event("exit")["code"] == 4


# -- the kill deadline ------------------------------------------------------------------------------


def test_child_ignoring_term_is_killed_at_the_deadline(start):
    init = start([*JSON, "--kill-timeout", "0.5", *SIGPRINT, "--ignore", "TERM"])
    pid = fields(init.expect("ready pid="))["pid"]
    child = init.child_pid()
    init.kill(signal.SIGTERM)
    assert init.wait() == 128 + signal.SIGKILL
    assert not alive(child)
    assert init.event("kill_deadline")["message"] == "waiting up to 0.5s for the child to exit"
    killed = init.event("killed")
    assert reached(killed, pid), killed
    assert killed["offset"] - init.offset("signal_forwarded", signal="SIGTERM") >= 0.5 - SLACK
    assert init.offset("child_exited", code=137) >= killed["offset"]
    assert init.event("exit")["code"] == 137


def test_kill_reaches_a_grandchild_that_escaped_with_setsid(start, tmp_path):
    init = start(
        [*JSON, "--kill-timeout", "0.5", *FAMILY, "--setsid", "--ignore-term", *SIGPRINT, "--ignore", "TERM"],
    )
    grand = fields(init.expect("grandchild pid="))
    child = fields(init.expect("ready pid="))
    assert grand["sid"] != child["sid"] and grand["pgid"] != child["pgid"]  # it really escaped
    grandchild = grandchild_host_pid(init)
    init.kill(signal.SIGTERM)
    killed = init.expect_event("killed")
    assert reached(killed, grand["pid"]) and reached(killed, child["pid"]), killed
    assert init.wait() == 128 + signal.SIGKILL
    assert not alive(grandchild)
    # Both were killed at the deadline: the grandchild ignores TERM, so had it been left to
    # the leftover sweep, that would have needed its own SIGKILL a second later.
    assert "leftovers_kill" not in init.names, init.stderr


def _stop_child_leaving_a_setsid_grandchild(start, *family_flags: str):
    """The child exits 0 on TERM; its grandchild left the session. Returns the log and the grandchild's pid."""
    init = start([*JSON, *FAMILY, "--setsid", *family_flags, *SIGPRINT, "--exit-on", "TERM:0"])
    grand = fields(init.expect("grandchild pid="))
    init.expect("ready pid=")
    grandchild = grandchild_host_pid(init)
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert not alive(grandchild)
    return init, grand["pid"]


def test_setsid_grandchild_that_ignores_term_is_killed_after_the_child_exits(start):
    init, grand = _stop_child_leaving_a_setsid_grandchild(start, "--ignore-term")
    term, kill = init.event("leftovers_term"), init.event("leftovers_kill")
    assert reached(term, grand) and reached(kill, grand), (term, kill)
    assert kill["offset"] - term["offset"] >= 0.5
    assert init.offset("exit") >= kill["offset"]


def test_leftover_that_obeys_term_is_not_killed(start):
    init, grand = _stop_child_leaving_a_setsid_grandchild(start)
    assert reached(init.event("leftovers_term"), grand)
    assert "leftovers_kill" not in init.names and "killed" not in init.names, init.stderr


def test_without_a_kill_timeout_or_grace_period_pyinit_waits_indefinitely(start):
    init = start([*JSON, *SIGPRINT, "--ignore", "TERM"])
    init.expect("ready pid=")
    child = init.child_pid()
    init.kill(signal.SIGTERM)
    init.expect_event("signal_forwarded", signal="SIGTERM")
    # A deadline is announced as it is set, with the stop signal: had one been set,
    # its line would come before that of a signal forwarded after the stop.
    init.kill(signal.SIGUSR2)
    init.expect_event("signal_forwarded", signal="SIGUSR2")
    assert "kill_deadline" not in init.names, init.stderr
    assert init.proc.poll() is None and alive(child)


@pytest.mark.parametrize("remap,code", [([], 5), (["--remap-exit", "5:9"], 9)], ids=["as-is", "remapped"])
def test_exit_code_is_the_childs_after_shutdown(start, remap, code):
    init = start([*JSON, *remap, "--rewrite", "TERM:USR1", "--pre-stop-delay", "0.2", *SIGPRINT, "--exit-on", "USR1:5"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == code
    assert init.event("child_exited")["code"] == 5
    assert isinstance(init.event("exit", code=code)["offset"], float)


def test_stop_signal_with_nothing_running_in_the_group_still_exits(start):
    # The whole tree is gone before the deadline: the kill timer must not fire afterwards.
    init = start([*JSON, "--kill-timeout", "0.5", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert "killed" not in init.names, init.stderr
