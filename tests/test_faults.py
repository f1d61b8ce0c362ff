"""Hostile input and faults of the environment (issue 13): none may cost a drain.

Each section is one numbered item of the issue. A bad value is exit 2 with one
line naming it, before anything is spawned; a fault at run time is one log
line while the shutdown goes on: the child still gets its stop signal and
pyinit still exits with the child's code, never 70, never a traceback. Every
scene is real: a read-only mount, a planted symlink, a FIFO, an exhausted pids
cgroup, closed descriptors, a deleted working directory, a process without
capabilities.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.harness import (
    FAMILY,
    LONG_DELAY,
    PY,
    PYINIT,
    SIGPRINT,
    WAIT,
    alive,
    cmdline,
    descendants,
    events,
    one_line_error,
    run_pyinit,
    state,
    wait_for,
)
from helpers.shutdown_support import App, free_port, http_get, step, wait_for_status

from bench.trickle import Tricklers

#: A child any user can run (this interpreter may be readable by root alone); it exits 0 on TERM.
SH_CHILD = ["sh", "-c", 'trap "echo signal SIGTERM; exit 0" TERM; echo "ready pid=$$"; while :; do sleep 0.05; done']
NOBODY = pwd.getpwnam("nobody")
#: pyinit as root without a single capability: as an unprivileged user would be, but able to read this tree.
WITHOUT_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", *PYINIT]

#: pyinit started in a working directory that is gone: the shell removes it, then execs pyinit there.
REMOVE_CWD = ["sh", "-c", 'rmdir "$PWD" && exec "$@"', "sh", *PYINIT]
#: Each test of section 8 once per way of starting pyinit with stdio closed.
EACH_CLOSED_STDIO = pytest.mark.parametrize("fds", ["0", "1", "2", "0 1 2"], ids=["stdin", "stdout", "stderr", "all"])

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="setting the scene needs root")
needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")


def closing(fds: str) -> list[str]:
    """pyinit, started with descriptors closed (``"2"``, ``"0 1 2"``)."""
    redirections = " ".join(f"{fd}>&-" for fd in fds.split())
    return ["sh", "-c", f'exec "$@" {redirections}', "sh", *PYINIT]


def assert_clean(init) -> None:
    text = "\n".join(init.lines)
    assert "Traceback" not in text and "internal error" not in text, text


def assert_drains(init, code: int = 0) -> None:
    """TERM reaches the child (sigprint, ``--exit-on TERM:code``) and pyinit exits with its code."""
    init.kill(signal.SIGTERM)
    init.expect("signal SIGTERM")
    assert init.wait() == code
    assert_clean(init)


def errors(init) -> list[str]:
    return [line for line in init.err if "error:" in line]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that other users can reach (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="pyinit-faults-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- 1. the ready file's removal ----------------------------------------------------------------------


@needs_root
def test_ready_file_on_a_read_only_filesystem_is_one_line_and_the_drain_goes_on(start, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    read_only = ["unshare", "--mount", "sh", "-c", f'mount -t tmpfs -o ro tmpfs {mount} && exec "$@"', "sh", *PYINIT]
    init = start(["--ready-file", str(mount / "ready"), *SIGPRINT, "--exit-on", "TERM:0"], program=read_only)
    init.expect("ready pid=")
    init.expect("cannot create --ready-file")
    assert_drains(init)
    assert len(errors(init)) == 1, init.err  # nothing more at T0: there was no file to remove


def test_ready_file_replaced_by_a_directory_is_one_line_and_the_drain_goes_on(start, tmp_path):
    ready = tmp_path / "ready"
    app = f'until test -f {ready}; do sleep 0.01; done; rm {ready}; mkdir {ready}; exec "$@"'
    init = start(["--ready-file", str(ready), "sh", "-c", app, "sh", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    assert_drains(init)
    (line,) = errors(init)
    assert f"cannot remove --ready-file {ready}: Is a directory" in line, line
    assert ready.is_dir()


# -- 2. a planted symlink ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_user", [False, True], ids=["as-root", "as-user"])
def test_a_planted_symlink_is_never_followed(start, shared_dir, as_user):
    if as_user and os.geteuid() != 0:
        pytest.skip("--user needs root")
    precious = shared_dir / "precious"
    precious.write_text("keep me\n")
    appdir = shared_dir / "app"
    appdir.mkdir()
    os.chown(appdir, NOBODY.pw_uid, NOBODY.pw_gid)
    (appdir / "ready").symlink_to(precious)
    user = ["--user", "nobody"] if as_user else []
    init = start([*user, "--ready-file", str(appdir / "ready"), *SH_CHILD])
    init.expect("ready pid=")
    line = init.expect("cannot create --ready-file")
    assert "not a plain file" in line, line
    assert precious.read_text() == "keep me\n"
    assert_drains(init)
    assert precious.read_text() == "keep me\n"
    assert (appdir / "ready").is_symlink()  # not pyinit's: left alone


@needs_root
def test_ready_file_is_created_and_removed_as_the_user(start, shared_dir):
    appdir = shared_dir / "app"
    appdir.mkdir()
    os.chown(appdir, NOBODY.pw_uid, NOBODY.pw_gid)
    ready = appdir / "ready"
    init = start(["--user", "nobody", "--ready-file", str(ready), *SH_CHILD])
    init.expect("ready pid=")
    wait_for(ready.exists, "the ready file")
    assert (ready.stat().st_uid, ready.stat().st_gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    assert_drains(init)
    assert not ready.exists()
    assert errors(init) == []


@needs_root
def test_ready_file_where_only_root_may_write_is_refused_to_the_user(start, shared_dir):
    ready = shared_dir / "ready"  # root's 0755 directory: nobody cannot create in it
    init = start(["--user", "nobody", "--ready-file", str(ready), *SH_CHILD])
    init.expect("ready pid=")
    line = init.expect("cannot create --ready-file")
    assert "Permission denied" in line, line
    assert not ready.exists()
    assert_drains(init)


def test_a_plain_file_already_there_is_kept_untouched_and_removed_at_t0(start, tmp_path):
    ready = tmp_path / "ready"
    ready.write_text("left from the last run\n")
    init = start(["--ready-file", str(ready), *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    assert ready.read_text() == "left from the last run\n"  # never opened, so never truncated
    assert_drains(init)
    assert not ready.exists()
    assert errors(init) == []


# -- 3. a FIFO at the ready-file path ---------------------------------------------------------------------


def test_a_fifo_at_the_ready_file_path_never_blocks_the_loop(start, tmp_path):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    port = free_port()
    args = ["--ready-file", str(fifo), "--ready-port", f"127.0.0.1:{port}", *LONG_DELAY]
    init = start([*args, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    assert "not a plain file" in init.expect("cannot create --ready-file")
    init.kill(signal.SIGUSR1)
    init.expect("signal SIGUSR1")  # the loop forwards: it is not stuck in open()
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    assert http_get(port, "/ready") == 503
    assert http_get(port, "/live") == 200
    init.cut_the_delay_short()
    assert init.wait() == 0
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert_clean(init)


# -- 4. the probe server after a process shortage ---------------------------------------------------------


def pids_hierarchy() -> Path | None:
    """Where this machine's pids controller lives (cgroup v1 or v2), or None."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        mount_point, fs_type = fields[4], fields[fields.index("-") + 1]
        if fs_type == "cgroup" and "pids" in fields[-1].split(","):
            return Path(mount_point)
        if fs_type == "cgroup2" and "pids" in (Path(mount_point) / "cgroup.controllers").read_text().split():
            return Path(mount_point)
    return None


@pytest.fixture
def pids_cgroup() -> Iterator[Path]:
    root = pids_hierarchy() if os.geteuid() == 0 else None
    if root is None:
        pytest.skip("needs root and a pids cgroup controller")
    group = root / f"pyinit-faults-{os.getpid()}"
    group.mkdir()
    yield group
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            (root / "cgroup.procs").write_text(pid)
        except OSError:
            pass  # it exited meanwhile
    wait_for(lambda: not (group / "cgroup.procs").read_text().split(), "the test cgroup to empty")
    group.rmdir()


def test_probes_answer_while_the_app_holds_every_pid(start, pids_cgroup):
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", "--on", "USR1:true", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    (pids_cgroup / "cgroup.procs").write_text(str(init.pid))
    (pids_cgroup / "pids.max").write_text((pids_cgroup / "pids.current").read_text().strip())
    init.kill(signal.SIGUSR1)  # its --on hook cannot start: the shortage is real, and logged
    assert "Resource temporarily unavailable" in init.expect("on-signal hook 'true'")
    init.expect("signal SIGUSR1")
    for number in range(3 * 32):  # past the 32 slots that a failed thread start used to leak
        assert http_get(port, "/live" if number % 2 else "/ready") == 200
    (pids_cgroup / "pids.max").write_text("max")
    assert http_get(port, "/ready") == 200
    assert_drains(init)


def test_no_pid_left_even_for_the_probe_thread_is_logged_not_a_traceback(mode, pids_cgroup):
    """The cgroup is full before pyinit starts: neither its probe thread nor its child can be had."""
    (pids_cgroup / "pids.max").write_text("1")
    join = ["sh", "-c", f'echo $$ > {pids_cgroup / "cgroup.procs"} && exec "$@"', "sh", *PYINIT]
    result = run_pyinit(["--ready-port", f"127.0.0.1:{free_port()}", "--", "true"], mode=mode, program=join)
    assert result.returncode == 126, result  # the child could not be forked: the shell's "cannot execute"
    assert "cannot start the probe server" in result.stderr, result.stderr
    assert "Resource temporarily unavailable" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- 5. slow clients and IPv6 --------------------------------------------------------------------------------


def test_a_hundred_trickling_clients_cannot_keep_the_kubelets_probes_out(start):
    port = free_port()
    init = start(["--ready-port", str(port), *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    tricklers = Tricklers(port, 100, source="127.0.0.2")
    try:
        for number in range(30):
            assert http_get(port, "/live" if number % 2 else "/ready", timeout=WAIT) == 200, number
    finally:
        tricklers.close()
    assert_drains(init)


@pytest.mark.parametrize(
    "address,reachable",
    [("[::1]:{}", ["::1"]), ("[::]:{}", ["::1", "127.0.0.1"]), ("{}", ["::1", "127.0.0.1"])],
    ids=["ipv6-loopback", "ipv6-any", "port-only"],
)
def test_ready_port_over_ipv6(start, address, reachable):
    port = free_port()
    init = start(["--ready-port", address.format(port), *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    for host in reachable:
        wait_for_status(port, "/live", 200, host=host)
        assert http_get(port, "/ready", host=host) == 200
    assert_drains(init)


@pytest.fixture
def app6() -> Iterator[App]:
    app = App(host="::1")
    yield app
    app.stop()


def test_ready_check_over_ipv6(start, app6):
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", "--ready-check", app6.url, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    app6.status = 503
    assert http_get(port, "/ready") == 503
    app6.status = 200
    assert http_get(port, "/ready") == 200
    assert_drains(init)


@pytest.fixture
def app() -> Iterator[App]:
    server = App()
    yield server
    server.stop()


def test_ready_check_by_host_name_tries_each_address_it_resolves_to(start, app):
    """``localhost`` may resolve to ::1 first; the app listens on 127.0.0.1 only, and is still asked."""
    port = free_port()
    url = f"http://localhost:{app.port}/healthz"
    init = start(["--ready-port", f"127.0.0.1:{port}", "--ready-check", url, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    app.status = 503
    assert http_get(port, "/ready") == 503
    assert_drains(init)


@pytest.fixture
def tls_app(tmp_path) -> Iterator[tuple[App, Path]]:
    """An https app on 127.0.0.1 with a certificate from a throwaway CA, and the CA's file."""
    import ssl

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a certificate")

    def openssl(command: str) -> None:
        subprocess.run(["openssl", *command.split()], check=True, capture_output=True, cwd=tmp_path)

    key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    openssl(f"req -x509 {key} -keyout ca.key -out ca.pem -days 1 -subj /CN=ca")
    openssl(f"req {key} -keyout app.key -out app.csr -subj /CN=127.0.0.1")
    (tmp_path / "san").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509 -req -in app.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san -out app.pem")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "app.pem", tmp_path / "app.key")
    app = App(tls=context)
    yield app, tmp_path / "ca.pem"
    app.stop()


def test_ready_check_over_https_verifies_the_certificate(start, tls_app):
    app, ca = tls_app
    port = free_port()
    args = ["--ready-port", f"127.0.0.1:{port}", "--ready-check", app.url, *SIGPRINT, "--exit-on", "TERM:0"]
    trusted = start(args, env={"SSL_CERT_FILE": str(ca)})
    trusted.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    app.status = 500
    assert http_get(port, "/ready") == 500
    app.status = 200
    assert_drains(trusted)
    untrusted = start(args)  # the system's CAs do not know this one
    untrusted.expect("ready pid=")
    wait_for_status(port, "/live", 200)
    assert http_get(port, "/ready") == 503
    assert "certificate verify failed" in untrusted.expect("does not answer")
    assert_drains(untrusted)


def test_a_ready_check_that_stops_answering_is_logged_once_and_again_when_it_answers(start):
    with socket.socket() as app:  # bound, not yet listening: its port is ours and refuses connections
        app.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{app.getsockname()[1]}/healthz"
        port = free_port()
        init = start(["--ready-port", f"127.0.0.1:{port}", "--ready-check", url, *SIGPRINT, "--exit-on", "TERM:0"])
        init.expect("ready pid=")
        wait_for_status(port, "/live", 200)
        for _ in range(3):
            assert http_get(port, "/ready") == 503
        line = init.expect("does not answer")
        assert url in line and "Connection refused" in line, line
        app.listen()
        threading.Thread(target=_answer_once, args=(app,), daemon=True).start()
        assert http_get(port, "/ready") == 200
    init.expect("answers again")
    assert sum("does not answer" in line for line in init.err) == 1, init.err
    assert_drains(init)


def _answer_once(listener: socket.socket) -> None:
    connection, _ = listener.accept()
    with connection:
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


# -- 6. to 10. bad input: exit 2, one line naming the value, nothing spawned ------------------------------------
# The cases are in test_bad_input.py's table; here only what needs a scene of its own.


def test_the_longest_duration_is_a_year_and_is_accepted(mode):
    result = run_pyinit(["--kill-timeout", "31536000", "--pre-stop-delay", "525600m", "--", "true"], mode=mode)
    assert result.returncode == 0, result.stderr


# -- 7. users without the privilege to switch -----------------------------------------------------------------------


@needs_setpriv
def test_user_switch_without_the_capabilities_is_refused_at_startup(mode, tmp_path):
    marker = tmp_path / "spawned"
    result = run_pyinit(["--user", "1000", "sh", "-c", f"touch {marker}"], mode=mode, program=WITHOUT_CAPABILITIES)
    one_line_error(result, "'1000'", "needs root")
    assert not marker.exists()


# -- 8. closed stdio ----------------------------------------------------------------------------------------------


@EACH_CLOSED_STDIO
def test_closed_stdio_keeps_the_exit_code(mode, fds):
    result = run_pyinit(["--", "sh", "-c", "exit 3"], mode=mode, program=closing(fds))
    assert result.returncode == 3, result


@EACH_CLOSED_STDIO
def test_a_descriptor_closed_for_pyinit_is_closed_for_the_child_too(mode, tmp_path, fds):
    """pyinit fills the gap with /dev/null for itself only (close-on-exec): the child sees what tini's would."""
    report = tmp_path / "fds"
    look = (  # which of 0, 1 and 2 are open, looked at before the report's own open() takes a free number
        "import os; found = ' '.join(str(fd) for fd in (0, 1, 2) if os.path.exists(f'/proc/self/fd/{fd}'));"
        f" open({str(report)!r}, 'w').write(found)"
    )
    result = run_pyinit(["--", PY, "-c", look], mode=mode, program=closing(fds))
    assert result.returncode == 0, result
    assert report.read_text().split() == [fd for fd in "012" if fd not in fds.split()]


@EACH_CLOSED_STDIO
def test_closed_stdio_keeps_the_drain(start, tmp_path, fds):
    up, got = tmp_path / "up", tmp_path / "got"
    app = f"trap 'echo TERM > {got}; exit 7' TERM; echo up > {up}; while :; do sleep 0.05; done"
    init = start(["--pre-stop-delay", "0.2", "--", "sh", "-c", app], program=closing(fds))
    wait_for(up.exists, "the child to run")
    init.kill(signal.SIGTERM)
    assert init.wait() == 7
    assert got.read_text() == "TERM\n"
    assert_clean(init)


# -- 9. the startup environment ------------------------------------------------------------------------------------


def test_a_deleted_working_directory_is_inherited_as_tini_does(mode, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    result = run_pyinit(["--", "sh", "-c", "echo ran; exit 5"], mode=mode, cwd=gone, program=REMOVE_CWD)
    assert result.returncode == 5, result.stderr
    assert result.stdout.strip() == "ran"
    assert "Traceback" not in result.stderr


def test_a_relative_ready_file_in_a_deleted_working_directory_is_bad_input(mode, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    result = run_pyinit(["--ready-file", "ready", "true"], mode=mode, cwd=gone, program=REMOVE_CWD)
    one_line_error(result, "'ready'", "working directory is gone")


@needs_setpriv
def test_an_unreadable_hooks_directory_is_bad_input_without_privileges(mode, tmp_path):
    folder = tmp_path / "hooks" / "pre-start.d"
    folder.mkdir(parents=True)
    folder.chmod(0)
    try:
        result = run_pyinit(["--hooks-dir", str(tmp_path / "hooks"), "true"], mode=mode, program=WITHOUT_CAPABILITIES)
    finally:
        folder.chmod(0o755)
    one_line_error(result, "pre-start.d", "Permission denied")


def test_a_script_without_a_shebang_runs_with_bin_sh(mode, tmp_path):
    script = tmp_path / "plain"
    script.write_text('echo "plain $*"\nexit 4\n')
    script.chmod(0o755)
    result = run_pyinit(["--", str(script), "a", "b"], mode=mode)
    assert (result.returncode, result.stdout) == (4, "plain a b\n"), result
    on_path = run_pyinit(["--", "plain", "c"], mode=mode, env={**os.environ, "PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert (on_path.returncode, on_path.stdout) == (4, "plain c\n"), on_path


def test_a_hook_without_a_shebang_runs_with_bin_sh(mode, tmp_path):
    folder = tmp_path / "hooks" / "pre-start.d"
    folder.mkdir(parents=True)
    (folder / "10-plain").write_text(f"echo hook-ran > {tmp_path / 'ran'}\n")
    (folder / "10-plain").chmod(0o755)
    result = run_pyinit(["--hooks-dir", str(tmp_path / "hooks"), "--", "sh", "-c", "exit 6"], mode=mode)
    assert result.returncode == 6, result.stderr
    assert (tmp_path / "ran").read_text() == "hook-ran\n"


# -- 10. signals that do work --------------------------------------------------------------------------


def test_pdeathsig_kill_stays_valid(mode):
    result = run_pyinit(["--pdeathsig", "KILL", "--", "sh", "-c", "exit 4"], mode=mode)
    assert result.returncode == 4, result.stderr


def test_a_job_control_stop_is_a_fine_stop_signal_with_a_stop_command(start):
    """Nothing is forwarded then, so pyinit never suspends itself: TSTP starts the drain like any stop signal."""
    stop = "kill -TERM $PYINIT_CHILD_PID"
    init = start(["--stop-signal", "TSTP", "--stop-command", stop, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGTSTP)
    init.expect("signal SIGTERM")
    assert init.wait() == 0
    assert "signal SIGTSTP" not in init.out
    assert_clean(init)


# -- 11. the budget counts every sweep ------------------------------------------------------------------------------


def test_the_worst_case_the_budget_allows_ends_before_the_grace_period(start, tmp_path):
    """Every phase the rule counts, each as long as it can be made: pyinit still exits inside the grace period.

    The pre-stop hook and the post-stop hook both run into --hook-timeout; the
    child drains until just before the largest kill timeout the rule accepts,
    and leaves a grandchild that ignores TERM; the post-stop hook leaves one
    too. So both sweeps wait out their TERM and need a SIGKILL.
    """
    grace, hook_timeout = 10.0, 1.0  # a second for each hook: long enough to set its leftover up under load
    post_stop_leftover = "setsid sh -c 'trap \"\" TERM; exec sleep 60' & sleep 60"
    plan = [
        "--grace-period",
        f"{grace:g}",
        "--hook-timeout",
        f"{hook_timeout:g}",
        "--pre-stop-delay",
        f"{hook_timeout:g}",
        "--pre-stop",
        "sleep 60",
        "--post-stop",
        post_stop_leftover,
    ]
    asked = run_pyinit([*plan, "--kill-timeout", "1000", "true"])  # pyinit's rule tells what it leaves for the kill
    parts = re.search(r"pre-stop (\S+)s \+ post-stop (\S+)s", one_line_error(asked, "--kill-timeout 1000s"))
    assert parts, asked.stderr
    kill_timeout = grace - float(parts.group(1)) - float(parts.group(2))
    assert kill_timeout > 1
    drain = kill_timeout - 0.3  # exit just before the kill deadline, so the first sweep finds the grandchild
    init = start(
        [
            *plan,
            "--kill-timeout",
            f"{kill_timeout:g}",
            *FAMILY,
            "--setsid",
            "--ignore-term",
            *SIGPRINT,
            "--drain",
            f"TERM:{drain:g}",
        ]
    )
    init.expect("ready pid=")
    init.kill(signal.SIGTERM)
    assert init.wait(timeout=WAIT + grace) in (0, 128 + signal.SIGKILL)
    text = init.stderr
    assert text.count("timed out after") == 2, text  # the pre-stop and the post-stop hook
    assert text.count("sent SIGKILL to leftover") >= 1, text  # at least the post-stop hook's leftover
    assert step(init.err, "exiting").offset < grace
    assert_clean(init)


# -- 12. smaller truths -----------------------------------------------------------------------------------------------


def test_t0_is_when_the_loop_woke_for_the_stop_signal_not_when_its_turn_came(start):
    """Signals pending together are collected at once: TERM, queued behind seven --on hooks, keeps its T0."""
    early = ["HUP", "INT", "QUIT", "USR1", "USR2", "PIPE", "ALRM"]  # all numbered below TERM: handled first
    hooks = [arg for name in early for arg in ("--on", f"{name}:true")]
    ignored = [arg for name in early for arg in ("--ignore", name)]  # forwarded late, maybe as the child exits
    init = start([*hooks, *SIGPRINT, *ignored, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    init.kill(signal.SIGSTOP)
    wait_for(lambda: state(init.pid) == "T", "pyinit to be stopped")
    for name in [*early, "TERM"]:
        init.kill(signal.Signals[f"SIG{name}"])
    init.kill(signal.SIGCONT)
    init.expect("signal SIGTERM")
    assert init.wait() == 0
    # The seven hooks were spawned after the wake-up and before TERM's turn: T0 is older than its line.
    assert step(init.err, "SIGTERM received").offset >= 0.003, init.err


def mapped(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def test_psutil_is_loaded_when_the_kill_deadline_is_armed_not_when_it_fires(start):
    init = start(["--kill-timeout", "60", *SIGPRINT, "--ignore", "TERM", "--exit-on", "USR1:0"])
    init.expect("ready pid=")
    assert not mapped(init.pid, "_psutil_linux")  # startup stays light
    init.kill(signal.SIGTERM)
    init.expect("waiting up to 60s")
    wait_for(lambda: mapped(init.pid, "_psutil_linux"), "psutil to be loaded, 60 s before the kill")
    init.kill(signal.SIGUSR1)
    assert init.wait() == 0


def test_json_is_loaded_before_t0(start):
    init = start(["--log-format", "json", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    assert mapped(init.pid, "_json")
    assert_drains(init)


def test_json_pids_are_numbers(start, tmp_path):
    pidfile = tmp_path / "grandchild"
    family = [*FAMILY, "--setsid", "--pidfile", str(pidfile)]
    init = start(["--log-format", "json", *family, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    grandchild = int(pidfile.read_text())  # its own pid, as pyinit sees it too
    assert_drains(init)
    (swept,) = [event for event in events(init.err) if event["event"] == "leftovers_term"]
    assert swept["pids"] == [grandchild], swept
    assert all(isinstance(event.get("code", 0), int) for event in events(init.err))


def test_sigkill_of_pyinit_takes_the_child_and_as_pid_1_everything(start, mode):
    """What docs/reliability.md promises when pyinit itself is SIGKILLed (nothing can catch that)."""
    init = start([*FAMILY, "--setsid", *SIGPRINT])
    init.expect("ready pid=")
    child = init.child_pid()
    (grandchild,) = [pid for pid in descendants(init.pid) if any(arg.endswith("family.py") for arg in cmdline(pid))]
    init.kill(signal.SIGKILL)
    init.proc.wait(timeout=WAIT)
    wait_for(lambda: not alive(child), "the child to die with pyinit")
    if mode == "pid1":
        wait_for(lambda: not alive(grandchild), "the namespace to die with its init")
    else:
        # Outside a PID namespace only the child has a parent-death signal: its own children outlive it.
        assert alive(grandchild)
        os.kill(grandchild, signal.SIGKILL)
