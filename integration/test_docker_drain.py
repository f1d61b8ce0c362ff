"""The traffic-aware drain (issue 11) in a container, with the example image's own settings.

pyinit runs as the container's PID 1 and reads the kernel's socket table from
inside it. Under `docker stop` it passes SIGTERM on once the app's port has
been quiet for PYINIT_DRAIN_QUIET, not at the end of PYINIT_PRE_STOP_DELAY,
which is now the maximum; and its timeline says when the traffic stopped.
"""

from __future__ import annotations

import http.client
import re
import threading
import time

from integration.dockerkit import free_port, http_get, wait_http
from tests.helpers.harness import wait_for


def test_docker_stop_passes_on_once_the_traffic_has_stopped(run, example_image) -> None:
    settings = dict(item.split("=", 1) for item in example_image.attrs["Config"]["Env"] if item.startswith("PYINIT_"))
    quiet, maximum = float(settings["PYINIT_DRAIN_QUIET"]), float(settings["PYINIT_PRE_STOP_DELAY"])
    app, ready = free_port(), free_port()
    box = run(
        ["python3", "/apps/web.py", str(app)],
        environment={**settings, "PYINIT_READY_PORT": f"127.0.0.1:{ready}"},
    )
    wait_http(app, "/")
    wait_http(ready, "/ready")

    def still_ready() -> bool:
        try:
            return http_get(ready, "/ready")[0] == 200
        except (OSError, http.client.HTTPException):
            return False

    # The load balancer's traffic: a new connection every 50 ms, until half a second after /ready
    # turned 503 (at T0, on pyinit's side, however long `docker stop` took to get the signal there).
    sent: list[float] = []
    answered: list[float] = []

    def traffic() -> None:
        until = float("inf")
        while time.time() < until:
            connection = http.client.HTTPConnection("127.0.0.1", app, timeout=10)
            sent.append(time.time())
            connection.request("GET", "/", headers={"Connection": "close"})
            connection.getresponse().read()
            answered.append(time.time())
            connection.close()
            if until == float("inf") and not still_ready():
                until = time.time() + 0.5
            time.sleep(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    wait_for(lambda: len(answered) >= 5, "five answered requests")
    stopper = threading.Thread(target=box.stop, args=(int(settings["PYINIT_GRACE_PERIOD"]),), daemon=True)
    stopper.start()
    sender.join(20)
    assert not sender.is_alive() and len(answered) == len(sent), "the client's requests did not all get answers"
    stopper.join(30)
    assert not stopper.is_alive(), "docker stop did not return"

    logs = box.logs()
    arrived = float(re.search(r"got SIGTERM at ([0-9.]+)", logs).group(1))
    # never while requests still arrive (the container shares the host's clock)...
    assert arrived >= sent[-1] + quiet - 0.05, logs

    def offset_ms(pattern: str) -> int:
        """A ``+S.mmms ...`` offset from T0 in pyinit's log, in whole milliseconds."""
        found = re.search(r"\+(\d+\.\d{3})s " + pattern, logs)
        assert found, f"no {pattern!r} in:\n{logs}"
        return round(float(found.group(1)) * 1000)

    # ...and, on pyinit's own clock, passed on a quiet window after the last request (each offset
    # is rounded to the millisecond), and before the maximum: not because the maximum ran out
    last = max(
        offset_ms(rf"last new connection on :{app} \(from 127\.0\.0\.1; \d+ since T0\)"),
        offset_ms("last data received"),
    )
    forwarded = offset_ms("forwarded SIGTERM")
    assert forwarded - last >= round(quiet * 1000) - 1, logs
    assert forwarded < round(maximum * 1000), logs
    assert "traffic had been quiet for" in logs, logs
    assert box.wait() == 0
