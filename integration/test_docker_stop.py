"""`docker stop` against pyinit as PID 1: the delay, the derived kill, the Passenger case."""

from __future__ import annotations

import http.client
import re
import threading
import time

import pytest

from integration.dockerkit import free_port, http_get, wait_http
from tests.helpers.harness import wait_for


class Stopper(threading.Thread):
    """`docker stop -t timeout` in the background, timed on the host's clock."""

    def __init__(self, box, timeout: int) -> None:
        super().__init__(daemon=True)
        self.box, self.timeout = box, timeout
        self.began = self.ended = 0.0

    def run(self) -> None:
        self.began = time.time()
        self.box.container.stop(timeout=self.timeout)
        self.ended = time.time()

    def start_and_mark(self) -> float:
        self.start()
        return wait_for(lambda: self.began, "docker stop to begin", interval=0.001)

    def finish(self, timeout: float = 60.0) -> float:
        self.join(timeout)
        assert not self.is_alive(), "docker stop did not return"
        return self.ended - self.began


@pytest.mark.parametrize(
    ("on_term", "remap", "code"),
    [("exit0", [], 0), ("default", [], 143), ("default", ["--remap-exit", "143:0"], 0)],
    ids=["app-exits-0", "app-dies-143", "143-remapped-to-0"],
)
def test_stop_under_pre_stop_delay_keeps_serving_then_stops(run, on_term: str, remap: list[str], code: int) -> None:
    delay, engine_timeout = 3.0, 20
    app, ready = free_port(), free_port()
    box = run(
        ["python3", "/apps/web.py", str(app), "--on-term", on_term],
        flags=["--pre-stop-delay", f"{delay:g}", "--ready-port", f"127.0.0.1:{ready}", *remap],
    )
    wait_http(app, "/")
    wait_http(ready, "/ready")

    stopper = Stopper(box, engine_timeout)
    began = stopper.start_and_mark()
    samples: list[tuple[str, float, float, int]] = []  # path, sent and answered (after `began`), status
    while stopper.is_alive() and time.time() - began < engine_timeout + 10:
        for port, path in ((app, "/"), (ready, "/ready")):
            sent = time.time() - began
            try:
                status, _ = http_get(port, path, timeout=2.0)
            except (OSError, http.client.HTTPException):
                status = 0
            samples.append((path, sent, time.time() - began, status))
        time.sleep(0.1)
    took = stopper.finish()
    logs = box.logs()
    # When the stop reached the app, on the same clock (the container shares the host's).
    arrived = float(re.search(r"got SIGTERM at ([0-9.]+)", logs).group(1)) - began

    # Readiness turned off before the app got SIGTERM, and the app served all the while: every
    # request answered before SIGTERM got a 200, and so did one sent after readiness was off.
    first_503 = min(
        (answered for path, _, answered, status in samples if path == "/ready" and status == 503), default=1e9
    )
    assert first_503 < arrived, samples
    assert all(status == 200 for path, _, answered, status in samples if path == "/" and answered < arrived), samples
    assert any(status == 200 for path, sent, _, status in samples if path == "/" and sent > first_503), samples

    # The stop signal reached the app at the end of the delay, not before.
    assert arrived >= delay - 0.05, (arrived, logs)
    assert f"pre-stop delay {delay:g}s" in logs
    assert "forwarded SIGTERM" in logs

    # The container exited by itself, as configured: the engine's SIGKILL would have made it 137.
    assert box.wait() == code, logs
    assert f"exiting {code}" in logs
    assert took >= delay, took


def test_stop_t_with_a_term_ignoring_app_derived_kill_fires_first(run) -> None:
    grace = 6  # docker stop -t 6, and pyinit told the same
    box = run(
        ["python3", "/apps/sigprint.py", "--ignore", "TERM"],
        flags=[
            "--grace-period",
            str(grace),
            "--hook-timeout",
            "1",
            "--post-stop",
            'echo "post-stop hook ran: child exit $PYINIT_EXIT_CODE"',
        ],
    )
    box.expect("ready pid=")
    took = box.stop(timeout=grace)
    logs = box.logs()
    code = box.wait()

    # budget: 6 - (2 leftover sweeps x 1.25s + 1 hook x 1s + 0.5s exit margin) = 2s to exit.
    assert "waiting up to 2s for the child to exit" in logs
    assert "kill timeout passed: sent SIGKILL to" in logs
    # The hook ran and pyinit exited by itself: the engine's SIGKILL would have
    # cut both off. Its 137 is the child's, killed by pyinit.
    assert "post-stop hook ran: child exit 137" in logs
    assert "exiting 137" in logs
    assert code == 137
    assert took < grace, (took, logs)
    assert not box.state()["OOMKilled"]


@pytest.mark.parametrize("rewrite", [True, False], ids=["rewrite-TERM-to-USR1", "no-rewrite-control"])
def test_passenger_loses_no_in_flight_request_across_docker_stop(run, rewrite: bool) -> None:
    port, clients, seconds = free_port(), 4, 3
    flags = ["--rewrite", "TERM:USR1"] if rewrite else []
    box = run(["python3", "/apps/passenger.py", str(port), str(seconds)], flags=flags)
    box.expect("serving on")
    wait_http(port, "/inflight")

    results: dict[int, object] = {}

    def request(n: int) -> None:
        try:
            results[n] = http_get(port, f"/slow/{n}", timeout=30)
        except (OSError, http.client.HTTPException) as exc:
            results[n] = exc

    threads = [threading.Thread(target=request, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while http_get(port, "/inflight")[1].strip() != str(clients):
        assert time.monotonic() < deadline, "the requests never got in flight"
        time.sleep(0.05)

    took = box.stop(timeout=30)
    for thread in threads:
        thread.join(30)
    logs = box.logs()
    completed = {n: r for n, r in results.items() if isinstance(r, tuple) and r == (200, f"done /slow/{n}\n")}
    if rewrite:
        assert len(completed) == clients, (results, logs)
        assert "forwarded SIGUSR1 to process group" in logs and "(rewritten from SIGTERM)" in logs
        assert f"SIGUSR1: draining {clients} request(s)" in logs and "drained" in logs
        assert box.wait() == 0
        assert took < 30 - 2
    else:
        # The control: plain forwarding is what loses them, so the test above can fail.
        assert not completed, (results, logs)
        assert f"SIGTERM: dropping {clients} request(s)" in logs
        assert box.wait() == 1
