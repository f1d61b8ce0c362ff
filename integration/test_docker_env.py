"""Configuration through the image's environment alone, and Dockerfile.example as built."""

from __future__ import annotations

import io
import re
import tarfile
import time

import pytest

from integration.dockerkit import APPS, TEST_TAG, derive
from tests.helpers.harness import events

ENV_TAG = "pyinit-envonly:test"


def fetch(box, url: str) -> int:
    """The HTTP status of ``url`` asked from inside the container."""
    return int(box.exec("python3", "/apps/status.py", url).strip())


@pytest.fixture(scope="module")
def env_image(client, image: str) -> str:
    """An image whose Dockerfile sets pyinit up with ENV lines only: no flags anywhere."""
    derive(
        client,
        TEST_TAG,
        ENV_TAG,
        [
            'ENV PYINIT_REWRITE="HUP:0 WINCH:USR1" \\',
            "    PYINIT_PRE_STOP_DELAY=2 \\",
            "    PYINIT_GRACE_PERIOD=10 \\",
            "    PYINIT_HOOK_TIMEOUT=2 \\",
            '    PYINIT_POST_STOP="echo post-stop from the environment: \\$PYINIT_EXIT_CODE" \\',
            "    PYINIT_READY_PORT=127.0.0.1:8081 \\",
            "    PYINIT_REMAP_EXIT=143:0 \\",
            "    PYINIT_WARN_ON_REAP=1 \\",
            "    PYINIT_LOG_FORMAT=json",
            'CMD ["python3", "/apps/sigprint.py", "--exit-on", "TERM:143"]',
        ],
    )
    return ENV_TAG


def test_configuration_purely_through_env_in_the_image(run, env_image: str) -> None:
    # The image's own entrypoint and command; the container adds nothing. Its
    # own network namespace, so the fixed ready port cannot collide.
    box = run(image=env_image, network_mode="none")
    box.expect("ready pid=")
    assert box.container.attrs["Config"]["Entrypoint"] == ["pyinit", "--"]
    assert fetch(box, "http://127.0.0.1:8081/ready") == 200  # PYINIT_READY_PORT

    box.container.kill(signal="SIGHUP")  # PYINIT_REWRITE: dropped
    box.container.kill(signal="SIGWINCH")  # PYINIT_REWRITE: becomes USR1
    logs = box.expect("signal SIGUSR1")
    assert "signal SIGHUP" not in logs and "signal SIGWINCH" not in logs
    # An orphan from `docker exec` is the namespace init's, that is pyinit's, to reap.
    box.exec("sh", "-c", "(sleep 0.1 &)")
    box.expect('"event": "zombie_reaped"')  # PYINIT_WARN_ON_REAP, PYINIT_LOG_FORMAT

    before = time.monotonic()
    box.container.stop(timeout=10)
    took = time.monotonic() - before
    logs = box.logs()
    timeline = {event["event"]: event for event in events(logs.splitlines())}  # PYINIT_LOG_FORMAT=json
    assert timeline["stop_requested"]["delay"] == 2.0  # PYINIT_PRE_STOP_DELAY
    # PYINIT_GRACE_PERIOD with one post-stop hook of PYINIT_HOOK_TIMEOUT:
    # 10 - 2 (delay) - (2 sweeps x 1.25 + 2 hook + 0.5 margin) = 3s.
    assert "waiting up to 3s" in timeline["kill_deadline"]["message"]
    assert "post-stop from the environment: 143" in logs  # PYINIT_POST_STOP
    assert timeline["exit"]["code"] == 0  # PYINIT_REMAP_EXIT
    assert box.wait() == 0
    assert 2 <= took < 10


def test_dockerfile_example_as_built(run, example_image) -> None:
    """The example image with nothing changed: its ENV, HEALTHCHECK, entrypoint and CMD."""
    box = run(image=example_image.id, command=None, network_mode="none")
    box.container.put_archive("/", apps_tar("status.py", "balancer.py"))
    deadline = time.monotonic() + 60
    while fetch_or_zero(box, "http://127.0.0.1:8000/") != 200:
        assert time.monotonic() < deadline, box.logs()
        time.sleep(0.2)
    assert fetch(box, "http://127.0.0.1:8081/ready") == 200
    while box.state().get("Health", {}).get("Status") != "healthy":
        assert time.monotonic() < deadline, box.state()
        time.sleep(0.5)

    # A balancer keeps sending until /ready says 503, and for half a second after, then lets go.
    box.container.exec_run(
        ["python3", "/apps/balancer.py", "http://127.0.0.1:8081/ready", "http://127.0.0.1:8000/", "0.5"], detach=True
    )
    box.expect("balancer: sending")
    took = box.stop(10)  # docker stop's default timeout, as PYINIT_GRACE_PERIOD=10 says
    logs = box.logs()
    # Readiness turned off at once, and the app served everything the balancer still sent: it got
    # SIGTERM 1s after the last request (PYINIT_DRAIN_QUIET), before the 3s maximum.
    assert "pre-stop delay 3s at most, until traffic is quiet for 1s" in logs
    assert re.search(
        r"balancer: readiness 503 after \d+ requests; then [1-9]\d* requests in 0.5s, answered \[200\]", logs
    )
    last = float(re.search(r"\+([0-9.]+)s last new connection on :8000", logs).group(1))
    forwarded = float(re.search(r"\+([0-9.]+)s forwarded SIGTERM", logs).group(1))
    assert "traffic had been quiet for 1." in logs and forwarded - last >= 0.99, logs
    assert "waiting up to 2s" in logs  # 10 - 3 - (2 x 1.25 + 2 + 0.5)
    assert "app stopped with exit code 143" in logs
    assert "exiting 0 (child exited 143)" in logs
    assert box.wait() == 0
    assert 1 <= took < 10


def apps_tar(*names: str) -> bytes:
    """Files of integration/apps as a tar stream for /apps, for an image the tests did not build."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            tar.add(str(APPS / name), arcname=f"apps/{name}")
    return buffer.getvalue()


def fetch_or_zero(box, url: str) -> int:
    try:
        return fetch(box, url)
    except AssertionError:
        return 0
