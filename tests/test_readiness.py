"""Readiness that flips off at T0 (issue 4): --ready-file, --ready-port and --ready-check.

Probes are real HTTP requests to the port pyinit serves; --ready-check is
pointed at a real HTTP server the test runs. Malformed requests and slow
clients go over raw sockets. Every case runs with pyinit as PID 1 and as a
plain child (the PID namespace shares the network, so 127.0.0.1 reaches it).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers.harness import SIGPRINT, wait_for
from helpers.shutdown_support import App, free_port, http_get, wait_for_status

# -- the file ---------------------------------------------------------------------------------------


def test_ready_file_exists_while_running_and_is_removed_at_t0(start, tmp_path):
    ready, before = tmp_path / "ready", tmp_path / "before"
    init = start(
        [
            "--ready-file",
            str(ready),
            "--pre-start",
            f"if test -e {ready}; then echo present; else echo absent; fi > {before}",
            "--pre-stop-delay",
            "1",
            *SIGPRINT,
            "--exit-on",
            "TERM:0",
        ]
    )
    init.expect("ready pid=")
    assert ready.exists()
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")  # logged just after readiness went off
    assert not ready.exists()
    assert "signal SIGTERM" not in init.out  # still inside the delay: the child is serving
    assert init.wait() == 0
    assert not ready.exists()
    assert before.read_text().strip() == "absent"  # not created before the child is spawned


def test_ready_file_is_removed_when_the_child_exits_on_its_own(start, tmp_path):
    ready = tmp_path / "ready"
    init = start(["--ready-file", str(ready), *SIGPRINT, "--exit-on", "USR1:0"])
    init.expect("ready pid=")
    assert ready.exists()
    init.kill(signal.SIGUSR1)
    assert init.wait() == 0
    assert not ready.exists()


def test_relative_ready_file_is_taken_from_the_callers_directory(start, tmp_path):
    stray = Path("/ready-pyinit-test")
    assert not stray.exists()
    try:
        init = start(["--ready-file", stray.name, *SIGPRINT, "--exit-on", "TERM:0"], cwd=str(tmp_path))
        init.expect("ready pid=")
        time.sleep(0.1)
        assert (tmp_path / stray.name).exists(), f"not in the caller's directory (in /: {stray.exists()})"
        init.kill(signal.SIGTERM)
        assert init.wait() == 0
        assert not (tmp_path / stray.name).exists()
    finally:
        if stray.exists():
            stray.unlink()


# -- the HTTP endpoint --------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1:{}", "{}"], ids=["host-and-port", "port-only"])
def test_ready_port_flips_to_503_at_t0_and_live_stays_200(start, address):
    port = free_port()
    init = start(["--ready-port", address.format(port), "--pre-stop-delay", "1.5", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    assert http_get(port, "/live") == 200
    assert http_get(port, "/ready?probe=1") == 200
    assert http_get(port, "/elsewhere") == 404
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    assert http_get(port, "/ready") == 503  # from T0 on, with no wait
    assert http_get(port, "/live") == 200
    assert "signal SIGTERM" not in init.out  # the child is still serving during the delay
    init.expect("signal SIGTERM")
    assert init.wait() == 0
    with pytest.raises(OSError):
        http_get(port, "/live", timeout=2)


def test_ready_port_is_503_before_the_child_is_spawned(start, tmp_path):
    port = free_port()
    started = tmp_path / "started"
    init = start(["--ready-port", f"127.0.0.1:{port}", "--pre-start", f"touch {started}; sleep 1.5", *SIGPRINT])
    wait_for(started.exists, "the pre-start hook")
    wait_for_status(port, "/live", 200)
    assert http_get(port, "/ready") == 503
    init.expect("ready pid=")
    assert http_get(port, "/ready") == 200


def test_live_stays_200_and_ready_503_while_post_stop_hooks_run(start, tmp_path):
    port = free_port()
    running = tmp_path / "post-stop-running"
    init = start(
        [
            "--ready-port",
            f"127.0.0.1:{port}",
            "--post-stop",
            f"touch {running}; sleep 1.5",
            *SIGPRINT,
            "--exit-on",
            "TERM:0",
        ]
    )
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    init.kill(signal.SIGTERM)
    wait_for(running.exists, "the post-stop hook")
    assert http_get(port, "/live") == 200
    assert http_get(port, "/ready") == 503
    assert init.wait() == 0


# -- --ready-check ---------------------------------------------------------------------------------------


@pytest.fixture
def app():
    server = App()
    yield server
    server.stop()


def test_ready_check_passes_the_apps_answer_through_until_t0(start, app):
    port = free_port()
    init = start(
        [
            "--ready-port",
            f"127.0.0.1:{port}",
            "--ready-check",
            app.url,
            "--pre-stop-delay",
            "1.5",
            *SIGPRINT,
            "--exit-on",
            "TERM:0",
        ]
    )
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    assert app.hits >= 1  # really asked the app
    app.status = 500
    assert http_get(port, "/ready") == 500
    app.status = 429
    assert http_get(port, "/ready") == 429
    app.status = 200
    assert http_get(port, "/ready") == 200
    assert http_get(port, "/live") == 200
    init.kill(signal.SIGTERM)
    init.expect("SIGTERM received")
    assert http_get(port, "/ready") == 503  # the app still says 200: shutdown wins
    assert init.wait() == 0


@pytest.mark.parametrize("how", ["refused", "too-slow"])
def test_ready_check_is_503_when_the_app_does_not_answer(start, app, how):
    port = free_port()
    if how == "refused":
        url = f"http://127.0.0.1:{free_port()}/healthz"
    else:
        app.delay = 3.0  # beyond the 1 s check timeout
        url = app.url
    init = start(["--ready-port", f"127.0.0.1:{port}", "--ready-check", url, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/live", 200)
    assert http_get(port, "/ready", timeout=10) == 503
    assert http_get(port, "/live") == 200
    init.kill(signal.SIGTERM)
    assert init.wait() == 0


# -- abuse of the port --------------------------------------------------------------------------------------

MALFORMED = {
    "garbage": b"\x00\xff\xfe garbage\r\n\r\n",
    "binary": bytes(range(256)) * 8,
    "bad-version": b"GET /ready HTTP/9.9\r\n\r\n",
    "no-version": b"GET\r\n\r\n",
    "huge-line": b"GET /" + b"a" * 100_000 + b" HTTP/1.0\r\n\r\n",
    "huge-headers": b"GET /ready HTTP/1.0\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
    "half-then-close": b"GET /rea",
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_requests_do_not_break_pyinit(start, payload):
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/live", 200)
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                sock.recv(4096)
            except OSError:
                pass  # pyinit may hang up on us: that is fine
    init.kill(signal.SIGHUP)
    init.expect("signal SIGHUP")
    assert http_get(port, "/ready") == 200
    assert init.proc.poll() is None
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
    assert not any("Traceback" in line for line in init.lines), init.lines


def test_slow_clients_and_a_flood_do_not_stall_signals_or_exit(start):
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", "--pre-stop-delay", "0.3", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/live", 200)
    held = []
    try:
        for _ in range(64):  # more than any sane connection cap
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(sock)
        for number in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            init.kill(number)
            init.expect(f"signal {signal.Signals(number).name}")
        # Slow clients time out, and the endpoint answers again while they still hang on.
        wait_for_status(port, "/live", 200)
        init.kill(signal.SIGTERM)
        init.expect("signal SIGTERM")
        assert init.wait() == 0  # the held connections do not keep pyinit from exiting
    finally:
        for sock in held:
            sock.close()


def test_trickling_clients_cannot_hold_the_probe_off(start):
    """A byte every half second keeps each recv alive; only a deadline per request frees the slot."""
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", *SIGPRINT])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    trickle_for = 15.0
    clients = []
    for _ in range(40):  # more than the connection cap, each accepted before the next
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        clients[-1].send(b"G")
        time.sleep(0.02)
    stop = threading.Event()

    def trickle() -> None:
        end = time.monotonic() + trickle_for
        while not stop.is_set() and time.monotonic() < end:
            for sock in clients:
                try:
                    sock.send(b"G")
                except OSError:
                    pass  # pyinit closed it: that is the point
            stop.wait(0.5)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        began = time.monotonic()
        wait_for_status(port, "/ready", 200, timeout=trickle_for - 5)
        assert time.monotonic() - began < trickle_for - 2, "answered only once the trickling stopped"
    finally:
        stop.set()
        thread.join()
        for sock in clients:
            sock.close()


def test_readiness_thread_does_not_take_signals_meant_for_the_loop(start):
    # Many probes while signals arrive: every signal is still forwarded, in order of arrival.
    port = free_port()
    init = start(["--ready-port", f"127.0.0.1:{port}", *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    for count in range(1, 11):
        assert http_get(port, "/ready") == 200
        init.kill(signal.SIGUSR1)
        wait_for(lambda count=count: init.out.count("signal SIGUSR1") == count, f"USR1 number {count}")
    init.kill(signal.SIGTERM)
    assert init.wait() == 0
