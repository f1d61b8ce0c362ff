"""Running the real pyinit-doctor as a process, and reading its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.harness import ROOT, WAIT

SEEDS = ROOT / "tests" / "doctor" / "seeds"


@dataclass
class Report:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)

    def findings(self) -> list[dict[str, Any]]:
        return [finding for group in self.json()["groups"] for finding in group["findings"]]


def run_doctor(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    python: list[str] | None = None,
) -> Report:
    """``python -m pyinit.doctor ARGS`` (what the pyinit-doctor script runs), checked for never a traceback."""
    command = python or [sys.executable, "-m", "pyinit.doctor"]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(
        [*command, *args], cwd=cwd, env=environment, input=stdin, capture_output=True, text=True, timeout=WAIT
    )
    assert "Traceback" not in done.stderr, done.stderr
    return Report(done.returncode, done.stdout, done.stderr)


def codes(report: dict[str, Any]) -> set[str]:
    return {finding["code"] for group in report["groups"] for finding in group["findings"]}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
