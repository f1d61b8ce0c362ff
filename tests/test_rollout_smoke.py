"""Smoke test of bench/rollout: one replica swap behind a real nginx, with and without pyinit's delay.

It runs the benchmark's own command (``python -m bench.rollout``) at 50 req/s
with a 2 s propagation delay, and checks that the benchmark can see the race:
pyinit without a delay loses requests, pyinit with ``--pre-stop-delay 3`` loses
none while nginx keeps routing to the old replica for the whole window.
Needs the Debian packages nginx-light and hey (``.ci/run`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from helpers.harness import ROOT

PROPAGATION = 2.0
DELAY = 3.0


def _missing() -> list[str]:
    missing = []
    if shutil.which("nginx") is None and not os.access("/usr/sbin/nginx", os.X_OK):
        missing.append("nginx-light")
    if shutil.which("hey") is None:
        missing.append("hey")
    return missing


MISSING = _missing()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"the rollout smoke test needs nginx and hey: apt-get install {' '.join(MISSING)}"
)


@pytest.fixture(scope="module")
def rollout(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("rollout") / "rollout.json"
    command = [
        sys.executable,
        "-m",
        "bench.rollout",
        "--replicas=1",
        "--rollouts=1",
        "--rate=50",
        f"--propagation={PROPAGATION:g}",
        f"--delay={DELAY:g}",
        "--variants=pyinit,pyinit-delay",
        "--modes=keepalive",
        "--lead=1",
        "--tail=1",
        "--no-plot",
        f"--json={out}",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the benchmark ends nginx and every replica on its way out
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail(f"the benchmark did not finish in 90s:\n{output}")
    assert proc.returncode in (0, 1), f"the benchmark failed ({proc.returncode}):\n{output}"
    data = json.loads(out.read_text())
    data["output"] = output
    return data


def _run(data: dict, variant: str) -> dict:
    runs = [r for r in data["rollouts"] if r["variant"] == variant]
    assert len(runs) == 1, data["output"]
    run = runs[0]
    assert len(run["swaps"]) == 1, data["output"]
    swap = run["swaps"][0]
    # the load ran before the SIGTERM and after the endpoint removal: the whole window was under load
    assert run["load_start"] < swap["t0"] - 0.5, data["output"]
    assert run["load_end"] > swap["removal_sent"] + 0.5, data["output"]
    assert swap["removal_sent"] - swap["t0"] >= PROPAGATION - 0.05, data["output"]
    assert run["requests"] >= 100, f"too little load reached nginx:\n{data['output']}"
    return run


def test_without_a_delay_the_benchmark_sees_failed_requests(rollout: dict) -> None:
    run = _run(rollout, "pyinit")
    assert run["failed"] >= 1, rollout["output"]
    # they are nginx's 502s for the stopped replica, inside the propagation window
    assert run["failures"], rollout["output"]
    swap = run["swaps"][0]
    assert swap["stop_seconds"] is not None and swap["stop_seconds"] < PROPAGATION, rollout["output"]


def test_with_the_delay_no_request_fails(rollout: dict) -> None:
    run = _run(rollout, "pyinit-delay")
    assert run["failed"] == 0, rollout["output"]
    swap = run["swaps"][0]
    # nginx really kept sending to the old replica after its SIGTERM, and it answered them all
    assert swap["last_routed"] > swap["t0"] + PROPAGATION / 2, rollout["output"]
    assert swap["stop_seconds"] is not None and swap["stop_seconds"] >= DELAY, rollout["output"]
    assert swap["returncode"] == 0, rollout["output"]
