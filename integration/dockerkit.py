"""What the integration tests share: containers, images and HTTP from the host.

Imported by conftest.py and the tests as ``integration.dockerkit``; what the
two suites share (``wait_for``, the helper programs) comes from the harness
of the black-box tests, ``tests/helpers/harness.py``.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.harness import ROOT

HERE = Path(__file__).resolve().parent
APPS = HERE / "apps"
DOCKERFILE = ROOT / "Dockerfile.example"
REQUIRE = os.environ.get("PYINIT_REQUIRE_DOCKER") == "1"
LABEL = "pyinit-integration"
DOCKER_WAIT = 30.0  # longer than the harness's WAIT: each step goes through the engine's API

EXAMPLE_TAG = "pyinit-example:test"
TEST_TAG = "pyinit-integration:test"


# -- images -------------------------------------------------------------------


def build(client: Any, **kwargs: Any) -> Any:
    """docker build --network host; the tag's previous image is removed when replaced."""
    import docker

    try:
        previous = client.images.get(kwargs["tag"]).id
    except docker.errors.ImageNotFound:
        previous = None
    try:
        image, _ = client.images.build(network_mode="host", rm=True, forcerm=True, **kwargs)
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream") or chunk.get("error") or "") for chunk in exc.build_log)
        pytest.fail(f"docker build failed: {exc}\n{log}")
    if previous and previous != image.id:
        REPLACED.append(previous)
    remove_replaced(client)
    return image


#: Images of ours that a build replaced under their tag, to remove once unused.
REPLACED: list[str] = []


def remove_replaced(client: Any) -> None:
    """Remove replaced images, children first; one still in use stays for a later try."""
    import docker

    for image_id in reversed(list(REPLACED)):
        try:
            client.images.remove(image_id)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError:
            continue  # the base of an image not yet rebuilt, or in use
        REPLACED.remove(image_id)


def derive(client: Any, base: str, tag: str, lines: list[str], files: dict[str, Path] | None = None) -> Any:
    """Build ``FROM base`` plus ``lines``, with ``files`` (name: path) in the context."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = "\n".join([f"FROM {base}", *lines]).encode() + b"\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        for name, path in (files or {}).items():
            tar.add(str(path), arcname=name)
    buffer.seek(0)
    return build(client, fileobj=buffer, custom_context=True, tag=tag)


# -- containers -----------------------------------------------------------------


class Box:
    """One container, with the few things the tests ask of it."""

    def __init__(self, container: Any) -> None:
        self.container = container

    @property
    def id(self) -> str:
        return self.container.id

    def logs(self) -> str:
        return self.container.logs(stdout=True, stderr=True).decode(errors="replace")

    def expect(self, text: str, timeout: float = DOCKER_WAIT, count: int = 1) -> str:
        """Wait until ``text`` is in the logs (``count`` times); return the logs."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.logs()
            if logs.count(text) >= count:
                return logs
            self.container.reload()
            if self.container.status in ("exited", "dead"):
                raise AssertionError(f"the container exited before {text!r} appeared:\n{logs}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {timeout}s:\n{logs}")
            time.sleep(0.1)

    def exec(self, *argv: str, user: str = "") -> str:
        code, output = self.container.exec_run(list(argv), user=user)
        text = output.decode(errors="replace")
        assert code == 0, f"{argv} exited {code}: {text}"
        return text

    def processes(self) -> list[dict[str, str]]:
        """Every process in the container, from `docker exec ps` (the ps itself left out)."""
        out = self.exec("ps", "-eo", "pid=,ppid=,uid=,stat=,args=")
        rows = []
        for line in out.splitlines():
            pid, ppid, uid, stat, args = line.split(None, 4)
            if args.startswith("ps -eo"):
                continue
            rows.append({"pid": pid, "ppid": ppid, "uid": uid, "stat": stat, "args": args})
        return rows

    def zombies(self) -> list[str]:
        """The zombies in the container, as `docker exec ps` sees them.

        Not `docker top`: the engine lists a container's processes from its
        cgroup, and an exited process leaves its cgroup before it is reaped,
        so `docker top` never shows a zombie on current kernels.
        """
        return [f"{p['pid']} {p['args']}" for p in self.processes() if "Z" in p["stat"]]

    def wait(self, timeout: float = DOCKER_WAIT) -> int:
        return self.container.wait(timeout=timeout)["StatusCode"]

    def stop(self, timeout: int) -> float:
        """`docker stop -t timeout`; returns how long it took."""
        began = time.monotonic()
        self.container.stop(timeout=timeout)
        return time.monotonic() - began

    def state(self) -> dict[str, Any]:
        self.container.reload()
        return self.container.attrs["State"]


# -- the host side --------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on now (containers share the host network)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    """GET http://127.0.0.1:port/path; raises OSError or HTTPException when it fails."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def wait_http(port: int, path: str = "/", status: int = 200, timeout: float = DOCKER_WAIT) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = http_get(port, path, timeout=2.0)
            if last[0] == status:
                return
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"http://127.0.0.1:{port}{path} did not answer {status} within {timeout}s: {last!r}")
