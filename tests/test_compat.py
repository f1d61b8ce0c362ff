"""Drop-in without surprises: each scenario runs under tini or dumb-init and under pyinit, and must look the same.

The peers are Debian's tini and dumb-init, run exactly as pyinit is run (as
PID 1 of a fresh PID namespace, and as a plain child). A scenario records what
can be seen from outside (what the child read, wrote and accepted, which
signals it printed, process states in /proc, exit codes) and the test compares
the records. Where pyinit differs by design (docs/compatibility.md), the
difference is pinned here too, so that it stays a decision and not an accident.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers.harness import (
    PY,
    PYINIT,
    REALTIME,
    SIGPRINT,
    WAIT,
    Pyinit,
    alive,
    children_of,
    helper,
    job_stop_handled,
    signal_label,
    state,
    wait_for,
)
from helpers.shutdown_support import free_port

PEERS = {"tini": ("tini", "-s", "-g"), "dumb-init": ("dumb-init",)}
INITS = {"pyinit": PYINIT, **PEERS}

#: On each test that runs a peer: the ones that run pyinit alone run without them.
needs_peers = pytest.mark.skipif(
    not all(shutil.which(peer) for peer in PEERS), reason="needs Debian's tini and dumb-init"
)

Start = Callable[..., Pyinit]


def launch(
    start: Start, init: str, options: Sequence[str], command: Sequence[str], *, launcher: Sequence[str] = (), **kw: Any
) -> Pyinit:
    """Run ``command`` under ``init`` (tini, dumb-init or pyinit) with ``options``, in the test's mode."""
    return start([*options, "--", *command], program=[*launcher, *INITS[init]], **kw)


def open_fds(pid: int) -> set[str]:
    """What ``pid``'s descriptors refer to, skipping any closed while they are read."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            pass
    return found


def running(pid: int) -> str:
    """``T`` for stopped, ``run`` for sleeping or running (the same thing to a shell waiting on it)."""
    return "T" if state(pid) == "T" else "run"


# -- inherited descriptors ------------------------------------------------------------------------


def _descriptors(start: Start, init: str, folder: Path, options: Sequence[str] = ()) -> dict[str, Any]:
    """A pipe, a file and a listening socket at fds 3, 5 and 200; the child lists, reads, writes, accepts."""
    folder.mkdir()
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)  # a status flag that must reach the child as it is
    log = os.open(folder / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    listener = socket.create_server(("127.0.0.1", 0))
    kinds = {os.readlink(f"/proc/self/fd/{fd}"): kind for fd, kind in ((read_end, "pipe"), (log, "file"))}
    kinds[os.readlink(f"/proc/self/fd/{listener.fileno()}")] = "socket"
    sources = {read_end: 3, log: 5, listener.fileno(): 200}
    try:
        proc = launch(
            start,
            init,
            options,
            [PY, helper("fdreport.py"), "child", "--use"],
            launcher=[PY, helper("handfds.py"), *(f"{fd}:{to}" for fd, to in sources.items()), "--"],
            pass_fds=tuple(sources),
        )
        child = json.loads(proc.expect("child fds ").split(" ", 2)[2])
        # The init's own sockets, while it runs: none of them may be among the child's.
        own_sockets = {target for target in open_fds(proc.pid) if target.startswith("socket:") and target not in kinds}
        os.write(write_end, b"ping\n")
        with socket.create_connection(listener.getsockname(), timeout=WAIT) as client:
            answer = client.makefile().readline()
        proc.expect("child used")
        code = proc.wait()
    finally:
        for fd in (read_end, write_end, log):
            os.close(fd)
        listener.close()
    hooks = [json.loads(line.split(" ", 2)[2]) for line in proc.out if line.startswith("hook fds ")]
    return {
        "child": {fd: {**seen, "target": kinds.get(seen["target"], seen["target"])} for fd, seen in child.items()},
        "hooks": [
            {fd: {**seen, "target": kinds.get(seen["target"], seen["target"])} for fd, seen in hook.items()}
            for hook in hooks
        ],
        "answer": answer,
        "written": (folder / "log").read_text(),
        "exit": code,
        "own_sockets_in_child": own_sockets & {seen["target"] for seen in child.values()},
        "own_sockets": own_sockets,
    }


@needs_peers
@pytest.mark.parametrize("peer", PEERS)
def test_inherited_descriptors_pass_through_unchanged(start, mode, peer, tmp_path):
    theirs = _descriptors(start, peer, tmp_path / peer)
    hook = f"{PY} {helper('fdreport.py')} hook"
    ours = _descriptors(
        start, "pyinit", tmp_path / "pyinit", ["--ready-port", f"127.0.0.1:{free_port()}", "--pre-start", hook]
    )
    expected = {"3": ("pipe", "04000"), "5": ("file", None), "200": ("socket", None)}
    assert {fd: seen["target"] for fd, seen in theirs["child"].items()} == {
        fd: kind for fd, (kind, _) in expected.items()
    }
    assert theirs["child"]["3"]["flags"] == "04000"  # O_NONBLOCK, as the pipe was handed over
    assert ours["child"] == theirs["child"], "same numbers, same objects, same flags, nothing else"
    assert (ours["answer"], ours["written"], ours["exit"]) == (theirs["answer"], theirs["written"], 0)
    assert theirs["answer"] == "ping\n" and theirs["written"] == "written by child\n"
    assert ours["own_sockets"], "pyinit's readiness socket is open in pyinit"
    assert ours["own_sockets_in_child"] == set(), "and not in the child"
    assert ours["hooks"] == [ours["child"]], "a hook gets what the child gets"


# -- socket activation ------------------------------------------------------------------------------


def _activated(
    start: Start,
    init: str | None,
    options: Sequence[str] = (),
    *,
    activate: bool = True,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The app behind a systemd-style launcher (``init`` None: the launcher starts the app itself)."""
    listener = socket.create_server(("127.0.0.1", 0))
    launcher = [PY, helper("handfds.py"), *(["--activate", "web"] if activate else []), f"{listener.fileno()}:3", "--"]
    app = [PY, helper("activated.py")]
    try:
        if init is None:
            proc = start(app[1:], program=[*launcher, PY], pass_fds=(listener.fileno(),), env=env)
        else:
            proc = launch(start, init, options, app, launcher=launcher, pass_fds=(listener.fileno(),), env=env)
        first = wait_for(
            lambda: next((line for line in proc.out if line.startswith(("serving", "refused"))), None),
            "the app to decide whether the sockets are its own",
        )
        answer = None
        if first.startswith("serving"):
            with socket.create_connection(listener.getsockname(), timeout=WAIT) as client:
                answer = client.makefile().readline().split(" from ")[0]
    finally:
        listener.close()
    return {"first": first, "answer": answer, "proc": proc}


def test_socket_activation_reaches_the_app_as_if_it_were_started_directly(start, mode):
    """LISTEN_PID names the init (podman: 1; systemd: the pid it execs); the app must see its own pid there."""
    direct = _activated(start, None)
    hook = 'echo "hook LISTEN_PID=$LISTEN_PID parent=$PPID fds=$LISTEN_FDS"'
    ours = _activated(start, "pyinit", ["--pre-start", hook])
    assert direct["first"] == "serving fds=1 names=web" and direct["answer"] == "hello"
    assert (ours["first"], ours["answer"]) == (direct["first"], direct["answer"])
    hook_line = ours["proc"].expect("hook LISTEN_PID=")
    seen = dict(part.split("=") for part in hook_line.split()[1:])
    assert seen["LISTEN_PID"] == seen["parent"] and seen["fds"] == "1", "hooks keep pyinit's LISTEN_PID: not theirs"


@needs_peers
@pytest.mark.parametrize("peer", PEERS)
def test_socket_activation_differs_from_the_peers_by_design(start, mode, peer):
    """tini and dumb-init pass LISTEN_PID as it is, so an activated app under them refuses its sockets."""
    theirs = _activated(start, peer)
    assert theirs["first"].startswith("refused LISTEN_PID=") and theirs["answer"] is None


@needs_peers
@pytest.mark.parametrize("peer", PEERS)
def test_a_listen_pid_naming_someone_else_is_passed_as_it_is(start, mode, peer):
    env = {"LISTEN_PID": "999999", "LISTEN_FDS": "1"}  # e.g. pyinit under `docker run --init`: not for it
    theirs = _activated(start, peer, activate=False, env=env)
    ours = _activated(start, "pyinit", activate=False, env=env)
    assert theirs["first"].split()[:2] == ours["first"].split()[:2] == ["refused", "LISTEN_PID=999999"]


# -- real-time signals ---------------------------------------------------------------------------------


def _realtime(start: Start, init: str) -> Counter[str]:
    proc = launch(start, init, [], SIGPRINT)
    proc.expect("ready")
    for number in REALTIME:  # a burst: real-time signals queue, so every one must arrive
        proc.kill(number)
    for number in REALTIME:
        proc.expect(f"signal {signal_label(number)}")
    proc.kill(signal.SIGWINCH)  # a marker: lower numbers are handled first, so nothing is still pending
    proc.expect("signal SIGWINCH")
    return Counter(line for line in proc.out if line.startswith("signal SIGRT"))


@needs_peers
@pytest.mark.parametrize("peer", PEERS)
def test_realtime_signals_are_forwarded_like_the_peers_do(start, peer):
    theirs = _realtime(start, peer)
    assert theirs == Counter(f"signal {signal_label(number)}" for number in REALTIME)
    assert _realtime(start, "pyinit") == theirs


def test_realtime_names_and_numbers_in_every_signal_option(start):
    init = start(
        [
            "--rewrite", "RTMIN+3:USR1",
            "--rewrite", "SIGRTMAX-2:0",
            "--rewrite", "USR2:rtmin",
            "--on", "RTMAX:echo on-hook $PYINIT_SIGNAL",
            "--stop-signal", "SIGRTMIN+5",
            "--", *SIGPRINT, "--exit-on", f"{signal.SIGRTMIN + 5}:0",
        ]
    )  # fmt: skip
    init.expect("ready")
    init.kill(signal.SIGRTMIN + 3)
    init.expect("signal SIGUSR1")
    init.kill(signal.SIGRTMAX - 2)  # dropped
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGRTMIN+0")
    init.kill(signal.SIGRTMAX)
    init.expect("on-hook SIGRTMAX")
    init.expect(f"signal {signal_label(signal.SIGRTMAX)}")
    init.kill(signal.SIGRTMIN + 5)
    assert "SIGRTMIN+5 received: readiness off" in init.expect("received: readiness off")
    assert init.wait() == 0
    assert f"signal {signal_label(signal.SIGRTMAX - 2)}" not in init.out
    assert f"signal {signal_label(signal.SIGRTMIN + 3)}" not in init.out


# Real-time names outside the range are bad input: test_bad_input.py's "realtime-*" cases.


# -- job control -----------------------------------------------------------------------------------------

# (options, the signal sent, what dumb-init's handle_signal makes the child get)
JOB_CONTROL = [
    ([], signal.SIGTSTP, "STOP"),
    ([], signal.SIGTTIN, "STOP"),
    ([], signal.SIGTTOU, "STOP"),
    (["-c"], signal.SIGTSTP, "SIGTSTP"),
    (["-c"], signal.SIGTTIN, "SIGTTIN"),
    (["-c"], signal.SIGTTOU, "SIGTTOU"),
    (["-r", "20:1"], signal.SIGTSTP, "SIGHUP"),
    (["-r", "20:0"], signal.SIGTSTP, None),
    (["-c", "-r", "21:10"], signal.SIGTTIN, "SIGUSR1"),
]


def _job_control(start: Start, init: str, options: list[str], number: int, gets: str | None) -> dict[str, Any]:
    proc = launch(start, init, options, SIGPRINT)
    proc.expect("ready")
    child = proc.child_pid()
    proc.kill(number)
    if gets == "STOP":
        wait_for(lambda: running(child) == "T", "the child to stop")
    elif gets:
        proc.expect(f"signal {gets}")
    job_stop_handled(proc, child)  # as PID 1 a self-SIGSTOP has no effect, under any init
    after_stop = {"child": running(child), "init": running(proc.pid)}
    proc.kill(signal.SIGCONT)
    proc.expect("signal SIGCONT")
    wait_for(lambda: running(child) == running(proc.pid) == "run", "both to run again")
    proc.kill(signal.SIGWINCH)  # a marker: whatever was forwarded before it has been printed
    proc.expect("signal SIGWINCH")
    # The markers are the test's, not the scenario's: job_stop_handled's SIGURG, pending in
    # the stopped child, is printed before or after SIGWINCH under either init.
    markers = {"signal SIGWINCH", "signal SIGURG"}
    printed = sorted({line for line in proc.out if line.startswith("signal")} - markers)
    return {"after stop": after_stop, "printed": printed}


def _job_id(value: object) -> str:
    if isinstance(value, list):
        return " ".join(value) or "session"
    if isinstance(value, int):
        return signal.Signals(value).name
    return f"child gets {value}"


@needs_peers
@pytest.mark.parametrize("options,number,gets", JOB_CONTROL, ids=_job_id)
def test_job_control_is_dumb_inits(start, mode, options, number, gets):
    theirs = _job_control(start, "dumb-init", options, number, gets)
    assert theirs["after stop"] == {
        "child": "T" if gets == "STOP" else "run",
        "init": "T" if mode == "child" else "run",
    }
    assert _job_control(start, "pyinit", options, number, gets) == theirs


# -- single-child mode: only the child, ever ---------------------------------------------------------------


def _leftover(
    start: Start,
    mode: str,
    init: str,
    options: Sequence[str],
    child_options: Sequence[str] = ("--exit-on", "USR1:3"),
    end: Callable[[Pyinit, int], None] = lambda proc, child: os.kill(child, signal.SIGUSR1),
) -> tuple[dict[str, Any], Pyinit]:
    """The child ends (by default: exits 3) and leaves a kid (same group, prints every signal): who signals it?"""
    proc = launch(start, init, options, [*SIGPRINT, "--fork", *child_options])
    proc.expect("kid ready")
    proc.expect("ready pid")
    child = proc.child_pid()
    kid = children_of(child)[0]
    outlived = None
    try:
        end(proc, child)
        code = proc.wait(drain=False)  # a kid that outlives the init holds the pipes
        if mode == "child":  # outside a namespace the kid can outlive the init; then nothing is pending for it
            outlived = alive(kid)
            if outlived:
                os.kill(kid, signal.SIGWINCH)  # handled after anything lower (TERM) that was pending
                proc.expect("kid signal SIGWINCH")
        if not outlived:
            proc.drained()
    finally:
        # Only a kid seen alive after the init is gone: no one else ends it, or reaps it before this.
        # Any other was reaped (its pid may be another's now), or goes with the init (Pyinit.close).
        if outlived:
            os.kill(kid, signal.SIGKILL)
    printed = [line for line in proc.out if line.startswith("kid signal") and line != "kid signal SIGWINCH"]
    return {"exit": code, "kid alive": outlived, "kid got": printed}, proc


@needs_peers
def test_single_child_mode_leaves_the_leftovers_alone(start, mode):
    theirs, _ = _leftover(start, mode, "dumb-init", ["-c"])
    assert theirs == {"exit": 3, "kid alive": True if mode == "child" else None, "kid got": []}
    assert _leftover(start, mode, "pyinit", ["-c"])[0] == theirs


@needs_peers
@pytest.mark.parametrize("mode", ["child"])  # as PID 1 the namespace's end kills the kid under any init
def test_session_mode_sweeps_the_leftovers_where_dumb_init_leaves_them(start, mode):
    """Both TERM the child's group when it exits; pyinit then KILLs what is left (docs/compatibility.md)."""
    assert _leftover(start, mode, "dumb-init", [])[0] == {
        "exit": 3,
        "kid alive": True,
        "kid got": ["kid signal SIGTERM"],
    }
    assert _leftover(start, mode, "pyinit", [])[0] == {"exit": 3, "kid alive": False, "kid got": ["kid signal SIGTERM"]}


def test_single_child_kill_deadline_kills_the_child_only(start, mode):
    """pyinit's own --kill-timeout, in -c mode: the child is SIGKILLed, the kid it left is not touched."""
    seen, proc = _leftover(
        start,
        mode,
        "pyinit",
        ["-c", "--kill-timeout", "0.2"],
        ["--ignore", "TERM"],
        lambda proc, child: proc.kill(signal.SIGTERM),
    )
    assert seen == {"exit": 128 + signal.SIGKILL, "kid alive": True if mode == "child" else None, "kid got": []}
    proc.expect("kill timeout passed: sent SIGKILL to pid")
