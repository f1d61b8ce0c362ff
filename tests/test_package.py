"""The distribution a user installs: built, checked, installed into a fresh venv, run.

``scripts/test`` builds the sdist and wheel into dist/ and runs ``twine check``
on them; this test installs that wheel (or builds one, when run on its own)
into an empty venv, so a missing module, dependency or entry point in the
package shows here and not on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from helpers.harness import ROOT

DIST = ROOT / "dist"


def _wheel(tmp_path: Path) -> Path:
    built = sorted(DIST.glob("pyinit_containers-*.whl"))
    if built:
        return built[-1]
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)], check=True)
    return next(out.glob("pyinit_containers-*.whl"))


def test_the_wheel_installs_by_its_distribution_name_and_runs_a_command(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    # A user's fresh venv: not this checkout on PYTHONPATH, whose build left pyinit's metadata
    # (pyinit_containers.egg-info) behind for pip to take for an installed copy.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, env=env)
    shown = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "show", "pyinit-containers"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert "Name: pyinit-containers" in shown.stdout
    pyinit = env_dir / "bin" / "pyinit"
    assert subprocess.run([str(pyinit), "--", "true"], timeout=60, env=env).returncode == 0
    failed = subprocess.run(
        [str(pyinit), "--", "sh", "-c", "exit 7"], timeout=60, capture_output=True, text=True, env=env
    )
    assert failed.returncode == 7, failed.stderr
