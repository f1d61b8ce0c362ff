"""Run pyinit where users run it: a real Docker Engine, driven through the docker SDK.

Images (each built once per session, the slow ones cached by the engine):

- the base: a debootstrapped Debian bookworm with python3, ``docker import``-ed
  by ``build_base.sh`` and tagged after that script's hash, so only a changed
  script builds it again (about a minute);
- the example: the top-level ``Dockerfile.example`` itself, built with its
  ``BASE_IMAGE`` argument pointed at the base, with pyinit installed from a
  wheel of this checkout (plus click and psutil wheels), without an index;
- the test image: the example plus the apps in ``integration/apps`` and
  ``tests/helpers/sigprint.py``, with the example's ``PYINIT_*`` settings
  blanked so that each test states its own.

No image is pulled; builds use the host network and containers run with
``network_mode="host"`` (their servers bind 127.0.0.1 ports picked free here)
or ``"none"``. The engine is whatever the docker SDK reaches: start one with
``integration/engine.sh start``. Without one every test here skips, loudly,
unless PYINIT_REQUIRE_DOCKER=1, which makes them fail instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Whatever pytest's import mode: the checkout, so that ``integration`` (and ``tests.helpers``) import.
if str(Path(__file__).resolve().parent.parent) not in sys.path:
    sys.path.append(str(Path(__file__).resolve().parent.parent))

from integration.dockerkit import (
    APPS,
    DOCKERFILE,
    EXAMPLE_TAG,
    HERE,
    LABEL,
    REQUIRE,
    ROOT,
    TEST_TAG,
    Box,
    build,
    derive,
)
from tests.helpers.harness import helper


def _engine() -> tuple[Any, str | None]:
    """(client, None) when an engine answers, else (None, why not)."""
    try:
        import docker
    except ImportError as exc:
        return None, f"the docker SDK is not installed ({exc})"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        return None, f"no Docker Engine answers ({type(exc).__name__}: {exc})"
    return client, None


_CLIENT, _NO_ENGINE = _engine()


def pytest_report_header(config: pytest.Config) -> str:
    if _CLIENT is not None:
        version = _CLIENT.version()
        return f"docker engine: {version.get('Version')} (API {version.get('ApiVersion')})"
    verdict = "the integration tests FAIL" if REQUIRE else "the integration tests are SKIPPED"
    return (
        f"!!! docker engine: {_NO_ENGINE}: {verdict}."
        " Start one with `integration/engine.sh start`; PYINIT_REQUIRE_DOCKER=1 turns skips into failures. !!!"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _CLIENT is None:
        verdict = "FAILED (PYINIT_REQUIRE_DOCKER=1)" if REQUIRE else "SKIPPED"
        terminalreporter.write_sep("!", f"Docker integration tests {verdict}: {_NO_ENGINE}", red=True, bold=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _CLIENT is not None or REQUIRE:
        return
    reason = (
        f"NO DOCKER ENGINE: {_NO_ENGINE}. Start one with `integration/engine.sh start`,"
        " or set PYINIT_REQUIRE_DOCKER=1 to fail instead of skipping"
    )
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def client() -> Any:
    if _CLIENT is None:
        pytest.fail(f"PYINIT_REQUIRE_DOCKER=1 but {_NO_ENGINE}: start one with `integration/engine.sh start`")
    # Containers left by an earlier run that was killed before its cleanup.
    for stale in _CLIENT.containers.list(all=True, filters={"label": LABEL}):
        stale.remove(force=True)
    return _CLIENT


# -- images -------------------------------------------------------------------


@pytest.fixture(scope="session")
def base_image(client: Any) -> str:
    script = HERE / "build_base.sh"
    tag = f"pyinit-base:bookworm-{hashlib.sha256(script.read_bytes()).hexdigest()[:12]}"
    subprocess.run(["bash", str(script), tag], check=True, timeout=1200)
    return tag


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of wheels: pyinit built from this checkout, click and psutil."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE", "pyinit"):
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif path.exists():
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheels")
    # A fixed timestamp makes the wheel the same bytes when the code is the
    # same, so the image layer that installs it stays cached.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", str(source), "--wheel-dir", str(out)],
        check=True,
        env=env,
        timeout=600,
    )
    names = sorted(path.name for path in out.iterdir())
    assert any(name.startswith("pyinit_containers-") for name in names), names
    return out


@pytest.fixture(scope="session")
def example_image(client: Any, base_image: str, wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The top-level Dockerfile.example, built as a user would, on the local base."""
    context = tmp_path_factory.mktemp("example-context")
    shutil.copytree(wheels, context / "wheels")
    return build(
        client,
        path=str(context),
        dockerfile=str(DOCKERFILE),
        buildargs={"BASE_IMAGE": base_image},
        tag=EXAMPLE_TAG,
    )


@pytest.fixture(scope="session")
def image(client: Any, example_image: Any) -> str:
    """The example image plus the test apps; the example's PYINIT_* settings blanked."""
    settings = [item.split("=", 1)[0] for item in example_image.attrs["Config"]["Env"] if item.startswith("PYINIT_")]
    files = {f"apps/{path.name}": path for path in sorted(APPS.glob("*.py"))}
    files["apps/sigprint.py"] = Path(helper("sigprint.py"))
    lines = ["COPY apps/ /apps/", "HEALTHCHECK NONE"]
    if settings:
        lines.append("ENV " + " ".join(f"{name}=" for name in settings))
    derive(client, EXAMPLE_TAG, TEST_TAG, lines, files)
    return TEST_TAG


# -- containers -----------------------------------------------------------------


@pytest.fixture
def run(client: Any, image: str) -> Iterator:
    """``run(command, flags=[...], **docker_run_kwargs)``: a detached container of the test image.

    ``flags`` go to pyinit (the entrypoint becomes ``pyinit FLAGS --``); with
    ``entrypoint=`` given instead, pyinit is not involved unless named.
    """
    started: list[Any] = []

    def _run(command: list[str] | None = None, *, flags: list[str] | None = None, **kwargs: Any) -> Box:
        if flags is not None:
            kwargs["entrypoint"] = ["pyinit", *flags, "--"]
        kwargs.setdefault("network_mode", "host")
        kwargs.setdefault("image", image)
        kwargs.setdefault("name", f"pyinit-it-{uuid.uuid4().hex[:10]}")
        container = client.containers.create(command=command, labels={LABEL: "1"}, **kwargs)
        started.append(container)
        container.start()
        return Box(container)

    yield _run
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True)
