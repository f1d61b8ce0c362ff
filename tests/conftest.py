"""Fixtures over the harness (tests/helpers/harness.py), which holds everything else.

The ``mode`` fixture runs a test both ways: pyinit as PID 1 of a fresh PID
namespace, and as a plain child.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.harness import MODES, NAMESPACE, Gate, Pyinit


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    if request.param == "pid1" and NAMESPACE is None:
        pytest.skip("cannot create a PID namespace here: neither root nor user namespaces work")
    return request.param


@pytest.fixture
def start(mode: str) -> Iterator[Callable[..., Pyinit]]:
    """``start(args, **kw)`` runs pyinit in the test's mode; everything is killed afterwards."""
    running: list[Pyinit] = []

    def _start(args: list[str], **kw: Any) -> Pyinit:
        instance = Pyinit(args, mode=mode, **kw)
        running.append(instance)
        return instance

    yield _start
    for instance in running:
        instance.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Callable[[str], Gate]]:
    """``gate(name)``: a fresh Gate in tmp_path; any still held is let go afterwards."""
    made: list[Gate] = []

    def _gate(name: str) -> Gate:
        made.append(Gate(tmp_path / name))
        return made[-1]

    yield _gate
    for each in made:
        each.close()
