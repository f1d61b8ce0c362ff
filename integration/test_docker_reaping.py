"""Zombies: orphans leaked inside a container are reaped, by pyinit as PID 1 or beneath `--init`."""

from __future__ import annotations

import re
import time

LEAK_SECONDS = 10


def leaked(logs: str) -> int:
    return int(re.search(r"leaked (\d+) orphans", logs).group(1))


def wait_no_zombies(box, timeout: float = 20.0) -> None:
    """Zero zombies in `docker exec ps`, twice, a second apart."""
    deadline = time.monotonic() + timeout
    clean = 0
    while clean < 2:
        zombies = box.zombies()
        clean = clean + 1 if not zombies else 0
        assert time.monotonic() < deadline, f"zombies left: {zombies}"
        time.sleep(1.0)


def test_an_app_leaking_orphans_for_10s_leaves_no_zombie(run) -> None:
    box = run(["python3", "/apps/zombies.py", str(LEAK_SECONDS)], flags=["--warn-on-reap"], network_mode="none")
    # While it leaks, pyinit keeps up: at most the odd one not yet reaped.
    time.sleep(LEAK_SECONDS / 2)
    assert len(box.zombies()) <= 3, box.zombies()
    logs = box.expect("leaked", timeout=LEAK_SECONDS + 30)
    count = leaked(logs)
    assert count >= 20, logs
    wait_no_zombies(box)
    # Every orphan was re-parented to pyinit and reaped by it.
    assert box.logs().count("reaped zombie pid") == count
    assert box.stop(timeout=10) < 10
    assert box.wait() == 143


def test_without_an_init_the_same_app_leaves_zombies(run) -> None:
    """The control: the app as PID 1 itself never reaps its orphans."""
    box = run(["/apps/zombies.py", "2"], entrypoint=["python3"], network_mode="none")
    count = leaked(box.expect("leaked", timeout=30))
    time.sleep(1.0)
    zombies = box.zombies()
    assert len(zombies) == count, (count, zombies)


def test_docker_run_init_with_pyinit_beneath_still_reaps(run) -> None:
    """`docker run --init`: the engine's tini is PID 1, pyinit becomes a subreaper under it."""
    box = run(["python3", "/apps/zombies.py", "3"], flags=["--warn-on-reap"], init=True, network_mode="none")
    count = leaked(box.expect("leaked", timeout=30))
    processes = {p["pid"]: p for p in box.processes()}
    assert "docker-init" in processes["1"]["args"], processes
    (pyinit,) = [p for p in processes.values() if p["ppid"] == "1"]
    assert "pyinit" in pyinit["args"], processes
    (app,) = [p for p in processes.values() if p["ppid"] == pyinit["pid"]]
    assert "zombies.py" in app["args"], processes
    assert app["ppid"] == pyinit["pid"], processes

    wait_no_zombies(box)
    # pyinit, not tini, adopted and reaped them: it logs each one.
    assert box.logs().count("reaped zombie pid") == count
    # The stop goes tini -> pyinit -> app.
    assert box.stop(timeout=10) < 10
    logs = box.logs()
    assert "SIGTERM received" in logs and "forwarded SIGTERM" in logs
    assert box.wait() == 143
