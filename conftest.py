"""Suite-wide: under PYINIT_NO_SKIPS=1 (CI sets it) a skipped test is a failure.

Tests skip when this machine lacks something (a PID namespace, tini, a Docker
Engine, root). On CI everything is installed, so a skip there means a missing
install step that would otherwise pass as green.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("PYINIT_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and PYINIT_NO_SKIPS=1 forbids skips: {report.longrepr}"
