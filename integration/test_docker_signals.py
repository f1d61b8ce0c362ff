"""`docker kill -s SIG` reaches the app through pyinit, rewritten or dropped as configured."""

from __future__ import annotations


def test_docker_kill_signals_are_forwarded_rewritten_and_dropped(run) -> None:
    box = run(
        ["python3", "/apps/sigprint.py"],
        flags=["-v", "--rewrite", "HUP:0", "--rewrite", "WINCH:USR1"],
        network_mode="none",
    )
    box.expect("ready pid=")

    for name in ("SIGUSR2", "SIGUSR1", "SIGINT", "SIGQUIT", "SIGCONT"):
        box.container.kill(signal=name)
        box.expect(f"signal {name}")

    # HUP:0 drops it: the next signal shows up, HUP never does.
    box.container.kill(signal="SIGHUP")
    box.container.kill(signal="SIGUSR2")
    logs = box.expect("signal SIGUSR2", count=2)
    assert "signal SIGHUP" not in logs
    assert "SIGHUP dropped (rewritten to 0)" in logs

    # WINCH:USR1 sends USR1 instead.
    box.container.kill(signal="SIGWINCH")
    logs = box.expect("signal SIGUSR1", count=2)
    assert "signal SIGWINCH" not in logs
    assert "forwarded SIGUSR1 to process group" in logs and "(rewritten from SIGWINCH)" in logs

    # Still running: none of those was taken for a stop.
    assert box.state()["Running"]
    box.container.kill(signal="SIGTERM")
    box.expect("signal SIGTERM")
    box.container.kill(signal="SIGKILL")
