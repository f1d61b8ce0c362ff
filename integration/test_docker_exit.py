"""Exit codes reach `docker wait`; `--user` runs the app as that user while pyinit stays PID 1."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("script", "flags", "code"),
    [
        ("exit 3", [], 3),
        ("exit 0", [], 0),
        ("kill -USR1 $$", [], 128 + 10),
        ("kill -KILL $$", [], 128 + 9),
        ("exit 3", ["--remap-exit", "3:0"], 0),
        ("exit 3", ["--remap-exit", "3"], 0),
        ("kill -TERM $$", ["--remap-exit", "143:42"], 42),
        ("exit 4", ["--remap-exit", "3:0"], 4),
    ],
)
def test_exit_codes_reach_docker_wait(run, script: str, flags: list[str], code: int) -> None:
    box = run(["sh", "-c", script], flags=flags, network_mode="none")
    assert box.wait() == code, box.logs()


def test_a_command_that_cannot_run_exits_127(run) -> None:
    box = run(["/no/such/app"], flags=[], network_mode="none")
    assert box.wait() == 127
    assert "/no/such/app" in box.logs()


@pytest.mark.parametrize(("user", "uid", "name"), [("nobody", "65534", "nobody"), ("4242:4242", "4242", None)])
def test_user_runs_the_app_as_that_user_and_pyinit_stays_pid_1(run, user: str, uid: str, name: str | None) -> None:
    box = run(
        ["python3", "/apps/sigprint.py"],
        flags=["--user", user, "--pre-start", 'echo "pre-start as $(id -u):$(id -g)"'],
        network_mode="none",
    )
    box.expect("ready pid=")
    processes = {p["pid"]: p for p in box.processes()}
    pid1 = processes["1"]
    assert "pyinit" in pid1["args"] and pid1["uid"] == "0", processes
    (app,) = [p for p in processes.values() if p["ppid"] == "1"]
    assert "sigprint.py" in app["args"], processes
    assert app["uid"] == uid, processes
    status = box.exec("cat", f"/proc/{app['pid']}/status")
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
    assert f"Gid:\t{uid}\t{uid}\t{uid}\t{uid}" in status
    logs = box.logs()
    assert f"pre-start as {uid}:{uid}" in logs
    if name:
        assert box.exec("ps", "-o", "user=", "-p", app["pid"]).strip() == name
    # Signals still reach the app across the user switch.
    box.container.kill(signal="SIGUSR1")
    box.expect("signal SIGUSR1")
