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
from pathlib import Path

import pytest
from helpers.harness import JSON, LONG_DELAY, SIGPRINT, wait_for
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
            *JSON,
            *LONG_DELAY,
            *SIGPRINT,
            "--exit-on",
            "TERM:0",
        ]
    )
    init.expect("ready pid=")
    wait_for(ready.exists, "the ready file")
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")  # logged just after readiness went off
    assert not ready.exists()
    init.cut_the_delay_short()
    assert init.wait() == 0
    assert not ready.exists()
    assert before.read_text().strip() == "absent"  # not created before the child is spawned


def test_ready_file_is_removed_when_the_child_exits_on_its_own(start, tmp_path):
    ready = tmp_path / "ready"
    init = start(["--ready-file", str(ready), *SIGPRINT, "--exit-on", "USR1:0"])
    init.expect("ready pid=")
    wait_for(ready.exists, "the ready file")
    init.kill(signal.SIGUSR1)
    assert init.wait() == 0
    assert not ready.exists()


def test_relative_ready_file_is_taken_from_the_callers_directory(start, tmp_path):
    stray = Path("/ready-pyinit-test")
    assert not stray.exists()
    try:
        init = start(["--ready-file", stray.name, *SIGPRINT, "--exit-on", "TERM:0"], cwd=str(tmp_path))
        init.expect("ready pid=")
        wait_for(lambda: (tmp_path / stray.name).exists() or stray.exists(), "the ready file")
        assert (tmp_path / stray.name).exists(), "not in the caller's directory but in /"
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
    init = start([*JSON, "--ready-port", address.format(port), *LONG_DELAY, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    assert http_get(port, "/live") == 200
    assert http_get(port, "/ready?probe=1") == 200
    assert http_get(port, "/elsewhere") == 404
    init.kill(signal.SIGTERM)
    init.expect_event("stop_requested")
    assert http_get(port, "/ready") == 503  # from T0 on, with no wait
    assert http_get(port, "/live") == 200
    init.cut_the_delay_short()
    assert init.wait() == 0
    with pytest.raises(OSError):
        http_get(port, "/live", timeout=2)


def test_ready_port_is_503_before_the_child_is_spawned(start, gate):
    port = free_port()
    hook = gate("pre-start")
    init = start(["--ready-port", f"127.0.0.1:{port}", "--pre-start", hook.command, *SIGPRINT])
    hook.reached()
    wait_for_status(port, "/live", 200)
    assert http_get(port, "/ready") == 503
    hook.release()
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)


def test_live_stays_200_and_ready_503_while_post_stop_hooks_run(start, gate):
    port = free_port()
    hook = gate("post-stop")
    init = start(["--ready-port", f"127.0.0.1:{port}", "--post-stop", hook.command, *SIGPRINT, "--exit-on", "TERM:0"])
    init.expect("ready pid=")
    wait_for_status(port, "/ready", 200)
    init.kill(signal.SIGTERM)
    hook.reached()
    assert http_get(port, "/live") == 200
    assert http_get(port, "/ready") == 503
    hook.release()
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
            *JSON,
            *LONG_DELAY,
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
    init.expect_event("stop_requested")
    assert http_get(port, "/ready") == 503  # the app still says 200: shutdown wins
    init.cut_the_delay_short()
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
    clients = []
    for _ in range(40):  # more than the connection cap
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        clients[-1].send(b"G")
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():  # for as long as the test waits: the probe must answer meanwhile
            for sock in clients:
                try:
                    sock.send(b"G")
                except OSError:
                    pass  # pyinit closed it: that is the point
            stop.wait(0.5)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        wait_for_status(port, "/ready", 200)
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
