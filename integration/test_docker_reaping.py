"""Zombies: orphans leaked inside a container are reaped, by pyinit as PID 1 or beneath `--init`."""

from __future__ import annotations

import re

from tests.helpers.harness import wait_for

LEAK_SECONDS = 10


def leaked(logs: str) -> int:
    return int(re.search(r"leaked (\d+) orphans", logs).group(1))


def all_reaped(box, count: int) -> None:
    """pyinit reaped each of the ``count`` orphans, and no zombie is left."""
    logs = box.expect("reaped zombie pid", count=count)
    assert box.zombies() == [], logs
    assert logs.count("reaped zombie pid") == count, logs


def test_an_app_leaking_orphans_for_10s_leaves_no_zombie(run) -> None:
    box = run(["python3", "/apps/zombies.py", str(LEAK_SECONDS)], flags=["--warn-on-reap"], network_mode="none")
    # While it leaks, zombies do not pile up: without an init, every orphan so far would be one.
    so_far = int(re.search(r"halfway: (\d+) orphans", box.expect("halfway", timeout=LEAK_SECONDS + 30)).group(1))
    assert so_far >= 10 and len(box.zombies()) < so_far / 2, (so_far, box.zombies())
    logs = box.expect("leaked", timeout=LEAK_SECONDS + 30)
    count = leaked(logs)
    assert count >= 20, logs
    # Every orphan was re-parented to pyinit and reaped by it.
    all_reaped(box, count)
    assert box.stop(timeout=10) < 10
    assert box.wait() == 143


def test_without_an_init_the_same_app_leaves_zombies(run) -> None:
    """The control: the app as PID 1 itself never reaps its orphans."""
    box = run(["/apps/zombies.py", "2"], entrypoint=["python3"], network_mode="none")
    count = leaked(box.expect("leaked", timeout=30))
    # The last orphans exit a moment after the count is printed; none is ever reaped.
    wait_for(lambda: len(box.zombies()) == count, f"{count} zombies", timeout=30)


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

    # pyinit, not tini, adopted and reaped them: it logs each one.
    all_reaped(box, count)
    # The stop goes tini -> pyinit -> app.
    assert box.stop(timeout=10) < 10
    logs = box.logs()
    assert "SIGTERM received" in logs and "forwarded SIGTERM" in logs
    assert box.wait() == 143
