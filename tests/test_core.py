"""The core: a correct PID 1 that spawns, forwards and rewrites signals, reaps and exits like its child.

Every test drives the real ``python -m pyinit`` from outside and reads /proc,
the way dumb-init's test suite drives its binary.
"""

from __future__ import annotations

import concurrent.futures
import grp
import json
import os
import pty
import pwd
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.harness import (
    NAMESPACE,
    PY,
    REALTIME,
    SIGPRINT,
    WAIT,
    Pyinit,
    fields,
    helper,
    job_stop_handled,
    proc_status,
    run_pyinit,
    signal_label,
    state,
    wait_for,
    zombies_under,
)
from helpers.shutdown_support import free_port

# Signals whose default action ends a process: a child killed by one exits 128+N.
TERMINATING = sorted(
    set(range(1, 32))
    - {signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH, signal.SIGSTOP, signal.SIGTSTP}
    - {signal.SIGTTIN, signal.SIGTTOU}
)
JOB_STOPS = {signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU}
FORWARDABLE = sorted(set(range(1, 32)) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD} | set(REALTIME))


# -- forwarding -------------------------------------------------------------------------------


def test_every_forwardable_signal_reaches_the_child(start, mode):
    init = start(["-c", "--", *SIGPRINT])
    init.expect("ready")
    # TERM last: it starts the shutdown sequence (still forwarded, with no delay configured).
    for number in sorted(FORWARDABLE, key=lambda n: n == signal.SIGTERM):
        init.kill(number)
        init.expect(f"signal {signal_label(number)}")
        if number in JOB_STOPS and mode == "child":  # pyinit stopped itself after forwarding: wake it
            job_stop_handled(init, init.child_pid())
            init.kill(signal.SIGCONT)


def test_signals_go_to_the_whole_process_group_by_default(start):
    init = start(["--", *SIGPRINT, "--fork"])
    init.expect("kid ready")
    init.kill(signal.SIGUSR1)
    init.expect("kid signal SIGUSR1")
    wait_for(lambda: "signal SIGUSR1" in init.lines, "the direct child to get it too")


def test_child_leads_its_own_session(start):
    init = start(["--", *SIGPRINT])
    ready = init.expect("ready")
    ids = fields(ready)
    assert ids["pid"] == ids["pgid"] == ids["sid"]


@pytest.mark.parametrize("how", [["-c"], ["--single-child"], "DUMB_INIT_SETSID=0"])
def test_single_child_forwards_to_the_child_only(start, how):
    args, env = (how, {}) if isinstance(how, list) else ([], dict([how.split("=")]))
    init = start([*args, "--", *SIGPRINT, "--fork"], env=env)
    init.expect("kid ready")
    init.expect("ready pid")
    init.kill(signal.SIGUSR1)
    init.expect("signal SIGUSR1")
    init.kill(signal.SIGUSR2)  # a marker: once it arrived, USR1 would have too
    init.expect("signal SIGUSR2")
    assert not any(line.startswith("kid signal") for line in init.lines)
    ready = next(line for line in init.lines if line.startswith("ready"))
    ids = fields(ready)
    assert ids["sid"] != ids["pid"], "no setsid in single-child mode"


# -- rewriting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,env",
    [
        (["-r", "USR1:USR2", "-r", "HUP:0"], {}),
        (["--rewrite", "SIGUSR1:sigusr2", "--rewrite", "1:0"], {}),
        ([], {"PYINIT_REWRITE": "usr1:USR2, HUP:0"}),
    ],
)
def test_rewrite_and_drop(start, args, env):
    init = start([*args, "--", *SIGPRINT], env=env)
    init.expect("ready")
    init.kill(signal.SIGUSR1)
    init.expect("signal SIGUSR2")
    init.kill(signal.SIGHUP)
    init.kill(signal.SIGWINCH)  # marker after the dropped HUP
    init.expect("signal SIGWINCH")
    assert "signal SIGUSR1" not in init.lines
    assert "signal SIGHUP" not in init.lines


def test_seed_rewrite_term_to_usr1_for_passenger(start):
    """dumb-init --rewrite 15:10 -- bundle exec passenger start: TERM arrives as USR1."""
    init = start(["--rewrite", "15:10", "--", *SIGPRINT, "--exit-on", "USR1:0"])
    init.expect("ready")
    init.kill(signal.SIGTERM)
    init.expect("signal SIGUSR1")
    assert init.wait() == 0
    assert "signal SIGTERM" not in init.lines


def test_seed_rewrite_term_to_nothing(start):
    """dumb-init --rewrite 15:0: TERM is swallowed, the child keeps running."""
    init = start(["--rewrite", "15:0", "--", *SIGPRINT])
    init.expect("ready")
    init.kill(signal.SIGTERM)
    init.kill(signal.SIGUSR2)
    init.expect("signal SIGUSR2")
    assert "signal SIGTERM" not in init.lines
    assert init.proc.poll() is None


# -- job control ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", sorted(JOB_STOPS))
def test_suspend_and_resume(start, mode, number):
    init = start(["--", *SIGPRINT])
    init.expect("ready")
    child = init.child_pid()
    init.kill(number)
    wait_for(lambda: state(child) == "T", "the child to stop")
    job_stop_handled(init, child)  # as a plain child pyinit follows its child; PID 1 cannot stop itself
    init.kill(signal.SIGCONT)
    wait_for(lambda: state(child) in "SR", "the child to resume")
    init.expect("signal SIGCONT")
    assert state(init.pid) in "SR"
    assert f"signal {signal_label(number)}" not in init.lines, "session mode turns it into SIGSTOP"


@pytest.mark.parametrize("number", sorted(JOB_STOPS))
def test_single_child_forwards_job_control_signals_as_they_are_then_stops_itself(start, mode, number):
    """dumb-init's rule in -c mode too: no rewrite to STOP, but the init suspends after forwarding."""
    init = start(["-c", "--", *SIGPRINT])
    init.expect("ready")
    child = init.child_pid()
    init.kill(number)
    init.expect(f"signal {signal_label(number)}")
    job_stop_handled(init, child)
    assert state(child) in "SR", "the child handled it and was not stopped"
    init.kill(signal.SIGCONT)
    init.expect("signal SIGCONT")
    wait_for(lambda: state(init.pid) in "SR", "pyinit to resume")


# -- exit codes -------------------------------------------------------------------------------


def _exit_with(mode: str, script: str, *args: str) -> int:
    return run_pyinit([*args, "--", "sh", "-c", script], mode=mode).returncode


def test_exit_codes_0_to_255(mode):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = dict(zip(range(256), pool.map(lambda n: _exit_with(mode, f"exit {n}"), range(256))))
    assert codes == {n: n for n in range(256)}


def test_killed_by_signal_exits_128_plus_n(mode):
    script = "ulimit -c 0; kill -{} $$"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = dict(zip(TERMINATING, pool.map(lambda n: _exit_with(mode, script.format(n)), TERMINATING)))
    assert codes == {n: 128 + n for n in TERMINATING}


@pytest.mark.parametrize(
    "args,env,script,expected",
    [
        (["-e", "143"], {}, "kill -TERM $$", 0),
        (["--remap-exit", "3:4"], {}, "exit 3", 4),
        (["-e", "3:4"], {}, "exit 5", 5),
        ([], {"PYINIT_REMAP_EXIT": "1:0 7:9"}, "exit 7", 9),
    ],
)
def test_remap_exit(mode, args, env, script, expected):
    result = run_pyinit([*args, "--", "sh", "-c", script], mode=mode, env={**os.environ, **env})
    assert result.returncode == expected


def test_command_not_found_exits_127(mode):
    result = run_pyinit(["--", "/doesnotexist"], mode=mode)
    assert result.returncode == 127
    assert "[pyinit] error: /doesnotexist: No such file or directory" in result.stderr.splitlines()
    result = run_pyinit(["--", "no-such-command-anywhere"], mode=mode)
    assert result.returncode == 127
    assert "no-such-command-anywhere" in result.stderr


def test_command_not_executable_exits_126(mode, tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    result = run_pyinit(["--", str(script)], mode=mode)
    assert result.returncode == 126
    assert f"[pyinit] error: {script}: Permission denied" in result.stderr.splitlines()


def test_group_leftovers_get_term_when_the_child_exits(start):
    init = start(["--", "sh", "-c", f"{PY} {helper('sigprint.py')} --exit-on TERM:0 & sleep 1; exit 3"])
    init.expect("ready")
    init.expect("signal SIGTERM")
    assert init.wait() == 3


# -- reaping ----------------------------------------------------------------------------------


def test_storm_of_orphaned_zombies_is_reaped(start):
    count = 1000
    init = start(["-w", "--", PY, helper("orphans.py"), str(count)])
    init.expect(f"orphans {count}", timeout=60)
    wait_for(lambda: sum("reaped zombie" in line for line in init.lines) >= count, "every orphan to be reaped", 60)
    assert zombies_under(init.pid) == []
    assert sum("reaped zombie" in line for line in init.lines) == count


def test_orphans_are_adopted_by_pyinit(start, mode):
    """As PID 1 by the kernel's rule; as a plain child because pyinit makes itself a subreaper."""
    init = start(["--", "sh", "-c", f"{PY} {helper('orphan_parent.py')}; sleep 2"])
    line = init.expect("adopted-by")
    assert int(line.split()[1]) == (1 if mode == "pid1" else init.pid)
    assert init.wait() == 0
    assert zombies_under(init.pid) == [] if init.proc.poll() is None else True


@pytest.mark.parametrize("flag", [["-s"], ["--subreaper"], []])
def test_subreaper_flag_is_accepted(flag):
    result = run_pyinit([*flag, "--", "sh", "-c", f"{PY} {helper('orphan_parent.py')}; sleep 1"])
    assert result.returncode == 0
    assert "adopted-by" in result.stdout


# -- terminal hand-off ------------------------------------------------------------------------


def _interact(argv: list[str], script: list[tuple[bytes, bytes]], timeout: float = WAIT) -> tuple[bytes, int]:
    """Run argv on a fresh pty as its session leader; send each step and await its answer, then EOF."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    seen = b""
    deadline = time.monotonic() + timeout

    def read_until(done) -> bool:
        nonlocal seen
        while not done():
            if time.monotonic() > deadline:
                return False
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: every process holding the pty is gone
                    return True
                if not chunk:
                    return True
                seen += chunk
        return True

    try:
        for send, expect in script:
            os.write(fd, send)
            if not read_until(lambda expect=expect: expect in seen):
                raise AssertionError(f"never saw {expect!r} in {seen.decode(errors='replace')!r}")
        read_until(lambda: False)  # to EOF
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return seen, os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError(f"did not exit: {seen.decode(errors='replace')!r}")
    finally:
        os.close(fd)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.mark.parametrize("where", ["child", "pid1"])
def test_bash_gets_the_terminal_and_job_control(where):
    if where == "pid1" and NAMESPACE is None:
        pytest.skip("cannot create a PID namespace here")
    # Under unshare, `setsid --ctty` makes pyinit (PID 1) lead a session that owns the pty, as in `docker run -t`.
    prefix = [*NAMESPACE, "setsid", "--ctty"] if where == "pid1" else []
    argv = [*prefix, PY, "-m", "pyinit", "--", "bash", "--norc", "--noprofile", "-m", "-i"]
    env_prompt = b"export PS1='$ '; echo PROMPT-$((40+2))\n"
    output, code = _interact(
        argv,
        [
            (env_prompt, b"PROMPT-42"),
            (b"sh -c 'echo RUN''NING; exec sleep 60'\n", b"RUNNING"),  # a foreground job
            (b"\x1a", b"Stopped"),  # Ctrl-Z: only works if bash owns the terminal
            (b"jobs; echo JOBS-$((1+1))\n", b"JOBS-2"),
            (b"kill -9 %1; fg >/dev/null 2>&1; echo GONE-$((3+3))\n", b"GONE-6"),  # fg: waits for it, unlike wait
            (b"exit 7\n", b"exit"),
        ],
    )
    assert code == 7, output.decode(errors="replace")
    assert b"no job control" not in output
    assert b"Hangup" not in output


# -- working directories, descriptors, user --------------------------------------------------


def test_child_starts_in_the_callers_directory_and_pyinit_moves_to_root(start, tmp_path):
    init = start(["--", "sh", "-c", "pwd; sleep 30"], cwd=str(tmp_path))
    init.expect(str(tmp_path))
    wait_for(lambda: os.readlink(f"/proc/{init.pid}/cwd") == "/", "pyinit to move to / once the child runs")
    assert os.readlink(f"/proc/{init.child_pid()}/cwd") == str(tmp_path)


def test_no_descriptor_of_pyinit_leaks_into_the_child_or_hooks(mode):
    """pyinit's own (the readiness socket, Popen's pipes) stay in pyinit; inherited ones pass (test_compat)."""
    probe = "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
    result = run_pyinit(
        ["--ready-port", f"127.0.0.1:{free_port()}", "--pre-start", f'{PY} -c "{probe}"', "--", PY, "-c", probe],
        mode=mode,
        stdin=subprocess.DEVNULL,
    )
    # 3 is listdir's own handle on /proc/self/fd; the caller passed nothing beyond 0, 1 and 2.
    assert [json.loads(line) for line in result.stdout.splitlines()] == [[0, 1, 2, 3], [0, 1, 2, 3]], result.stderr


def _user_with_groups() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def test_user_runs_the_child_as_that_user_with_its_groups(start, mode):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    user = _user_with_groups()
    init = start(["-u", user.pw_name, "--", "sh", "-c", "echo ids $(id -u) $(id -g) $(id -G); sleep 30"])
    line = init.expect("ids ")
    uid, gid, *groups = (int(part) for part in line.split()[1:])
    assert (uid, gid) == (user.pw_uid, user.pw_gid)
    assert set(groups) == set(os.getgrouplist(user.pw_name, user.pw_gid))
    assert proc_status(init.pid)["Uid"].split()[0] == "0", "pyinit keeps its own privileges"


@pytest.mark.parametrize("spec", ["nobody:nogroup", "65534:65534", "4321:4321"])
def test_user_and_group_by_name_or_id(spec):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    result = run_pyinit(["--user", spec, "--", "sh", "-c", "echo $(id -u):$(id -g)"])
    user, group = spec.split(":")
    uid = user if user.isdigit() else str(pwd.getpwnam(user).pw_uid)
    gid = group if group.isdigit() else str(grp.getgrnam(group).gr_gid)
    assert result.stdout.strip() == f"{uid}:{gid}"


@pytest.mark.parametrize("spec,number", [("USR2", signal.SIGUSR2), ("RTMIN+2", 36), ("SIGRTMIN+2", 36), ("36", 36)])
def test_parent_death_signal(tmp_path, spec, number):
    """tini -p: pyinit gets the signal when its parent dies, and forwards it like any other."""
    out = tmp_path / "out"
    script = (
        f"{PY} -m pyinit -p {spec} -- {PY} {helper('sigprint.py')} --exit-on {number}:0 > {out} & "
        f"until grep -q ready {out} 2>/dev/null; do sleep 0.02; done"  # then this parent dies
    )
    subprocess.run(["sh", "-c", script], timeout=WAIT, check=True)
    wait_for(lambda: f"signal {signal_label(number)}" in out.read_text(), "pyinit to forward its parent-death signal")


# -- compatibility and logging ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args,env",
    [
        (["-c", "-v"], {}),
        (["-s", "-g", "-w", "-e", "143", "-p", "SIGTERM", "-vvv"], {}),
        ([], {"DUMB_INIT_SETSID": "0", "DUMB_INIT_DEBUG": "1"}),
        ([], {"TINI_SUBREAPER": "1", "TINI_KILL_PROCESS_GROUP": "1", "TINI_VERBOSITY": "3"}),
    ],
)
def test_dumb_init_and_tini_command_lines_work(mode, args, env):
    result = run_pyinit([*args, "--", "sh", "-c", "exit 5"], mode=mode, env={**os.environ, **env})
    assert result.returncode == 5, result.stderr


@pytest.mark.parametrize("env", [{"DUMB_INIT_DEBUG": "1"}, {"TINI_VERBOSITY": "2"}, {"PYINIT_VERBOSE": "1"}])
def test_verbosity_from_the_environment(env):
    result = run_pyinit(["--", "true"], env={**os.environ, **env})
    assert "[pyinit] started pid" in result.stderr


def test_quiet_hides_the_timeline(start):
    init = start(["-q", "--", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert init.err == []


def test_json_log_lines(start):
    init = start(["--log-format", "json", "-v", "--", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    events = [json.loads(line) for line in init.err]
    assert {"ts", "level", "event", "message"} <= set(events[0])
    names = [event["event"] for event in events]
    assert names.index("stop_requested") < names.index("signal_forwarded") < names.index("child_exited")


def test_version_and_help():
    assert run_pyinit(["--version"]).returncode == 0
    for flag in ("-h", "--help"):
        result = run_pyinit([flag])
        assert result.returncode == 0 and "--pre-stop-delay" in result.stdout


def _running_with(argument: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and argument in (entry / "cmdline").read_bytes().decode().split("\0"):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_no_children_left_behind_when_pyinit_exits(mode):
    marker = f"{os.getpid()}.{time.monotonic_ns() % 10**6}"  # a sleep duration unique to this test
    result = run_pyinit(["--", "sh", "-c", f"sleep {marker} & setsid sleep {marker} & exit 4"], mode=mode)
    assert result.returncode == 4
    assert _running_with(marker) == []


def test_children_die_with_pyinit_outside_a_pid_namespace():
    """If pyinit itself is SIGKILLed (a Procfile runner's last resort), its child must not run on unsupervised."""
    init = Pyinit(["--", *SIGPRINT], mode="child")
    try:
        init.expect("ready")
        child = init.child_pid()
        init.kill(signal.SIGKILL)
        init.wait()
        wait_for(lambda: not Path(f"/proc/{child}").exists() or state(child) == "Z", "the child to die with pyinit")
    finally:
        init.close()
