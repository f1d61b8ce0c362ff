"""What a run needs before it measures: the C helpers, the pyinit commands, the machine's description."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from bench.core.records import Machine
from bench.core.session import BenchError

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "helpers"
CHECKOUT = HERE.parent.parent
INSTALL_HINT = "apt-get install -y tini dumb-init gcc"


def missing_tools() -> list[str]:
    return [tool for tool in ("tini", "dumb-init", "gcc", "unshare") if not shutil.which(tool)]


def build_helpers(workdir: Path) -> dict[str, str]:
    built = {}
    for name in ("sigecho", "burst"):
        out = workdir / name
        cmd = ["gcc", "-O2", "-Wall", "-o", str(out), str(HELPERS / f"{name}.c")]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"compiling {name}.c failed:\n{result.stderr}")
        built[name] = str(out)
    return built


def default_pyinit() -> list[str]:
    """The console script installed for this interpreter, else whatever PATH has."""
    script = Path(sysconfig.get_path("scripts")) / "pyinit"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("pyinit")
    if found:
        return [found]
    return [sys.executable, "-m", "pyinit"]


def inits(pyinit: list[str]) -> dict[str, list[str]]:
    """The three inits, in the order of the report's columns."""
    return {
        "tini": [shutil.which("tini") or "tini"],
        "dumb-init": [shutil.which("dumb-init") or "dumb-init"],
        "pyinit": pyinit,
    }


def clean_venv(workdir: Path) -> list[str] | None:
    """pyinit installed the ordinary way (not editable) in a venv with nothing else in it.

    The interpreter this runs under may load .pth files at every start (an
    editable install's finder, whatever else site-packages holds); a container
    image has none of that. The checkout is copied first, so the build writes
    nothing into it. Returns the venv's ``pyinit``, or None (with a note on
    stderr) when it cannot be built, e.g. with no package index.
    """
    src, venv = workdir / "src", workdir / "venv"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (CHECKOUT / name).is_file():
            shutil.copy2(CHECKOUT / name, src / name)
    shutil.copytree(CHECKOUT / "pyinit", src / "pyinit", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q"]
    steps = [
        [sys.executable, "-m", "venv", "--without-pip", str(venv)],
        [*pip, "--disable-pip-version-check", "--no-warn-script-location", str(src)],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True)
        if result.returncode != 0:
            why = result.stderr.strip()[-300:]
            print(f"note: no clean-venv rows: {shlex.join(step)} failed: {why}", file=sys.stderr)
            return None
    return [str(venv / "bin" / "pyinit")]


def version(cmd: Sequence[str]) -> str:
    out = subprocess.run([*cmd, "--version"], capture_output=True, text=True)
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def describe(inits: dict[str, list[str]]) -> Machine:
    return Machine(
        kernel=platform.release(),
        cpus=os.cpu_count(),
        python=f"{platform.python_version()} ({sys.executable})",
        versions={name: version(cmd) for name, cmd in inits.items()},
        pyinit_command=shlex.join(inits["pyinit"]),
        pyinit_on_path=shutil.which("pyinit"),
    )
