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

from integration.dockerkit import free_port, wait_http


def test_docker_stop_passes_on_once_the_traffic_has_stopped(run, example_image) -> None:
    settings = dict(item.split("=", 1) for item in example_image.attrs["Config"]["Env"] if item.startswith("PYINIT_"))
    quiet, maximum = float(settings["PYINIT_DRAIN_QUIET"]), float(settings["PYINIT_PRE_STOP_DELAY"])
    app, ready = free_port(), free_port()
    box = run(
        ["python3", "/apps/web.py", str(app)],
        environment={**settings, "PYINIT_READY_PORT": f"127.0.0.1:{ready}"},
    )
    wait_http(app, "/")

    # The load balancer's traffic: a new connection every 50 ms, until half a second after T0.
    sent: list[float] = []
    began = [0.0]

    def traffic() -> None:
        while not began[0] or time.time() < began[0] + 0.5:
            connection = http.client.HTTPConnection("127.0.0.1", app, timeout=10)
            sent.append(time.time())
            connection.request("GET", "/", headers={"Connection": "close"})
            connection.getresponse().read()
            connection.close()
            time.sleep(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    while len(sent) < 5:
        time.sleep(0.05)
    stopper = threading.Thread(target=box.stop, args=(int(settings["PYINIT_GRACE_PERIOD"]),), daemon=True)
    began[0] = time.time()
    stopper.start()
    sender.join(20)
    assert not sender.is_alive(), "the client's requests did not all get answers"
    stopper.join(30)
    assert not stopper.is_alive(), "docker stop did not return"

    logs = box.logs()
    arrived = float(re.search(r"got SIGTERM at ([0-9.]+)", logs).group(1))
    # never while requests still arrive, and well before the maximum
    assert arrived >= sent[-1] + quiet - 0.05, logs
    assert arrived < began[0] + maximum - 0.5, logs
    assert re.search(r"\+\d+\.\d{3}s last new connection on :\d+ \(from 127\.0\.0\.1; \d+ since T0\)", logs), logs
    assert "traffic had been quiet for" in logs, logs
    assert box.wait() == 0
