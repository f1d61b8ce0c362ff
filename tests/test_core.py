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
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers.harness import (
    JSON,
    NAMESPACE,
    PY,
    REALTIME,
    SIGPRINT,
    WAIT,
    Pyinit,
    Watched,
    children_of,
    cmdline,
    descendants,
    events,
    fields,
    helper,
    job_stop_handled,
    kill_tree,
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
    ready = init.expect_line(lambda line: line if line.startswith("ready ") else None, "the child's own ready")
    init.kill(signal.SIGUSR1)
    init.expect("signal SIGUSR1")
    init.kill(signal.SIGUSR2)  # a marker: once it arrived, USR1 would have too
    init.expect("signal SIGUSR2")
    assert not any(line.startswith("kid signal") for line in init.lines)
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
    # The shell exits 3 when told (USR1, sent to it alone), leaving sigprint behind in its group.
    script = f"trap 'exit 3' USR1; {shlex.join(SIGPRINT)} --exit-on TERM:0 & wait"
    init = start([*JSON, "--", "sh", "-c", script])
    init.expect("ready")
    os.kill(init.child_pid(), signal.SIGUSR1)
    init.expect("signal SIGTERM")
    assert init.wait() == 3
    init.event("leftovers_term")


# -- reaping ----------------------------------------------------------------------------------


def test_storm_of_orphaned_zombies_is_reaped(start):
    count = 1000
    init = start(["-w", "--", PY, helper("orphans.py"), str(count)])
    init.expect(f"orphans {count}", timeout=60)
    wait_for(lambda: sum("reaped zombie" in line for line in init.lines) >= count, "every orphan to be reaped", 60)
    assert zombies_under(init.pid) == []
    assert sum("reaped zombie" in line for line in init.lines) == count


@pytest.mark.parametrize("flag", [[], ["-s"], ["--subreaper"]])
def test_orphans_are_adopted_and_reaped_by_pyinit(start, mode, flag):
    """As PID 1 by the kernel's rule; as a plain child because pyinit makes itself a subreaper (-s is a no-op)."""
    init = start([*JSON, *flag, "-w", "--", PY, helper("orphan_parent.py")])
    line = init.expect("adopted-by")
    assert int(line.split()[1]) == (1 if mode == "pid1" else init.pid)
    assert init.wait() == 0
    init.event("zombie_reaped", pid=int(fields(line)["pid"]))


# -- terminal hand-off ------------------------------------------------------------------------

PROMPT = "P-$((6*7))> "  # bash shows it as P-42>, which the echo of typed text never contains


class Terminal:
    """A program on a fresh pty as its session leader, typed at like a keyboard."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.seen = b""
        self._mark = 0  # where the last expected text ended
        self._reaped = False

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False at EOF (every process holding the pty is gone)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:  # EIO
                return False
            if not chunk:
                return False
            self.seen += chunk
        return True

    def expect(self, text: bytes) -> None:
        """Wait for ``text`` after the previous expectation's match."""
        deadline = time.monotonic() + WAIT
        while text not in self.seen[self._mark :]:
            if time.monotonic() > deadline or not self._read(0.2):
                raise AssertionError(f"never saw {text!r} in {self.seen.decode(errors='replace')!r}")
        self._mark = self.seen.index(text, self._mark) + len(text)

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def foreground(self) -> int:
        """The terminal's foreground process group (as seen from here)."""
        return os.tcgetpgrp(self.fd)

    def group(self, pgid: int) -> list[int]:
        """The processes beneath the terminal's leader in process group ``pgid``."""
        found = []
        for pid in descendants(self.pid):
            try:
                if os.getpgid(pid) == pgid and state(pid) != "Z":
                    found.append(pid)
            except (ProcessLookupError, FileNotFoundError):
                pass
        return found

    def exit_code(self) -> int:
        """Read to EOF, then the leader's exit code."""
        deadline = time.monotonic() + WAIT
        while self._read(0.2):
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal never closed: {self.seen.decode(errors='replace')!r}")

        def exited() -> tuple[int] | None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            return (os.waitstatus_to_exitcode(status),) if done else None

        (code,) = wait_for(exited, "the terminal's leader to exit")
        self._reaped = True
        return code

    def close(self) -> None:
        os.close(self.fd)
        if not self._reaped:  # a pid reaped may be someone else's by now
            kill_tree(self.pid)
            os.waitpid(self.pid, 0)


@pytest.mark.parametrize("where", ["child", "pid1"])
def test_bash_gets_the_terminal_and_job_control(where):
    if where == "pid1" and NAMESPACE is None:
        pytest.skip("cannot create a PID namespace here")
    # Under unshare, `setsid --ctty` makes pyinit (PID 1) lead a session that owns the pty, as in `docker run -t`.
    prefix = [*NAMESPACE, "setsid", "--ctty"] if where == "pid1" else []
    argv = [*prefix, PY, "-m", "pyinit", "--", "bash", "--norc", "--noprofile", "-m", "-i"]
    term = Terminal(argv, {**os.environ, "PS1": PROMPT, "HISTFILE": ""})
    try:
        term.expect(b"P-42> ")
        bash = wait_for(lambda: next((p for p in descendants(term.pid) if cmdline(p)[:1] == ["bash"]), None), "bash")
        shell = os.getpgid(bash)
        assert term.foreground() == shell, "bash owns the terminal"

        term.type(b"sh -c 'echo RUN''NING; exec sleep 60'\n")  # a foreground job
        term.expect(b"RUNNING")
        job = term.foreground()
        assert job != shell and term.group(job), "the job got the terminal"

        term.type(b"\x1a")  # Ctrl-Z: the terminal stops the foreground group
        term.expect(b"Stopped")
        term.expect(b"P-42> ")
        wait_for(lambda: all(state(pid) == "T" for pid in term.group(job)), "the job to stop")
        assert term.foreground() == shell, "bash took the terminal back"

        term.type(b"fg\n")
        wait_for(lambda: term.foreground() == job, "the job to get the terminal back")
        wait_for(lambda: all(state(pid) in "SR" for pid in term.group(job)), "the job to run again")
        term.type(b"\x03")  # Ctrl-C: SIGINT to the foreground group ends the job
        term.expect(b"P-42> ")
        assert term.group(job) == [] and term.foreground() == shell

        term.type(b"exit 7\n")
        code = term.exit_code()
    finally:
        term.close()
    output = term.seen.decode(errors="replace")
    assert code == 7, output
    assert "no job control" not in output
    assert "Hangup" not in output


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
def test_parent_death_signal(spec, number):
    """tini -p: pyinit gets the signal when its parent dies, and forwards it like any other."""
    # The parent, a shell, exits once the test closes its stdin: after the child's "ready",
    # so after pyinit set its parent-death signal (before it spawned the child).
    init = [PY, "-m", "pyinit", *JSON, "-v", "-p", spec, "--", *SIGPRINT, "--exit-on", f"{number}:0"]
    parent = subprocess.Popen(
        ["sh", "-c", f"{shlex.join(init)} & read _"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert parent.stdin is not None and parent.stdout is not None and parent.stderr is not None
    err: list[str] = []
    watched = Watched(parent, [(parent.stdout, []), (parent.stderr, err)])
    pyinit = wait_for(lambda: next(iter(children_of(parent.pid)), None), "pyinit to start")
    try:
        watched.expect("ready")
        parent.stdin.close()
        parent.wait(timeout=WAIT)
        watched.expect(f"signal {signal_label(number)}")
        watched.drained()  # pyinit and its child are gone
    except BaseException:
        kill_tree(pyinit)  # only here, on a failure: after a pass it is gone, and its pid may be reused
        parent.kill()
        raise
    logged = events(err)
    assert [e["signal"] for e in logged if e["event"] == "signal_forwarded"] == [signal_label(number)], watched.text
    assert logged[-1]["event"] == "exit" and logged[-1]["code"] == 0, watched.text


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
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    return [pid for pid in pids if argument in cmdline(pid)]


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
