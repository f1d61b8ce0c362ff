"""The files users copy: the Kubernetes Deployment and the Procfile.

- examples/kubernetes/deployment.yaml must fit its shutdown inside the pod's
  terminationGracePeriodSeconds by the very rule pyinit applies at startup
  (pyinit.budget.plan_kill_timeout), and point its probes at pyinit.
- examples/Procfile's pyinit flags, run under honcho (a real Procfile runner,
  where pyinit is not PID 1), must forward, rewrite and reap.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml
from helpers.harness import PY, ROOT, SIGPRINT, WAIT, Watched, wait_for

from pyinit import budget
from pyinit.cli import DurationType, command

DEPLOYMENT = ROOT / "examples" / "kubernetes" / "deployment.yaml"
PROCFILE = ROOT / "examples" / "Procfile"
ORPHAN = ["sleep", "61.3"]  # a duration nothing else here sleeps: the test ends it


# -- Kubernetes ---------------------------------------------------------------


def seconds(value: str) -> float:
    return DurationType().convert(value, None, None)


def lines(value: str | None) -> list[str]:
    return [line for line in (value or "").splitlines() if line.strip()]


@pytest.fixture
def deployment() -> dict:
    (document,) = [doc for doc in yaml.safe_load_all(DEPLOYMENT.read_text()) if doc]
    return document


def pod_of(deployment: dict) -> tuple[dict, dict, dict[str, str]]:
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {item["name"]: str(item["value"]) for item in container.get("env", [])}
    return pod, container, env


def plan(env: dict[str, str], grace_period: float) -> float | None:
    """The kill timeout pyinit would plan with this environment inside ``grace_period``."""
    hook_timeout = env.get("PYINIT_HOOK_TIMEOUT")
    kill_timeout = env.get("PYINIT_KILL_TIMEOUT")
    return budget.plan_kill_timeout(
        grace_period=grace_period,
        pre_stop_delay=seconds(env.get("PYINIT_PRE_STOP_DELAY", "0")),
        pre_stop_hooks=len(lines(env.get("PYINIT_PRE_STOP"))),
        post_stop_hooks=len(lines(env.get("PYINIT_POST_STOP"))),
        hook_timeout=None if hook_timeout is None else seconds(hook_timeout),
        kill_timeout=None if kill_timeout is None else seconds(kill_timeout),
    )


def test_deployment_shutdown_fits_in_the_termination_grace_period(deployment: dict) -> None:
    pod, _, env = pod_of(deployment)
    limit = float(pod["terminationGracePeriodSeconds"])
    assert deployment["kind"] == "Deployment"
    assert "PYINIT_GRACE_PERIOD" in env, "pyinit must know the pod's limit to plan inside it"
    # pyinit plans against a limit no later than the kubelet's SIGKILL...
    assert seconds(env["PYINIT_GRACE_PERIOD"]) <= limit
    # ...and the whole sequence fits the kubelet's own limit by pyinit's rule.
    kill_timeout = plan(env, limit)
    assert kill_timeout is not None and kill_timeout > 0
    # Counted here by the README's rule, not by the function under test: the delay or the pre-stop
    # hooks (whichever is longer), the kill timeout, a sweep, the post-stop hooks, a second sweep if
    # there are any, and the exit margin.
    per_hook = seconds(env.get("PYINIT_HOOK_TIMEOUT", "0"))
    post_stop = len(lines(env.get("PYINIT_POST_STOP")))
    before_stop = max(seconds(env.get("PYINIT_PRE_STOP_DELAY", "0")), len(lines(env.get("PYINIT_PRE_STOP"))) * per_hook)
    after_exit = (2 if post_stop else 1) * budget.SWEEP + post_stop * per_hook + budget.EXIT_MARGIN
    assert before_stop + kill_timeout + after_exit <= limit


def test_pyinit_accepts_the_deployment_environment_at_startup(
    deployment: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check, by pyinit's own command line: it would start, with this kill timeout."""
    _, _, env = pod_of(deployment)
    for name in [name for name in os.environ if name.startswith("PYINIT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = command.main(args=["true"], standalone_mode=False)  # parses only: nothing is bound
    assert config.grace_period == seconds(env["PYINIT_GRACE_PERIOD"])
    assert config.kill_timeout == plan(env, config.grace_period)
    assert config.pre_stop_delay == seconds(env["PYINIT_PRE_STOP_DELAY"])


def test_a_too_short_grace_period_would_be_caught(deployment: dict) -> None:
    """The budget test has teeth: the same env in a pod with half the time fails it."""
    pod, _, env = pod_of(deployment)
    with pytest.raises(budget.BudgetError):
        plan(env, float(pod["terminationGracePeriodSeconds"]) / 2)


def test_deployment_probes_and_rollout(deployment: dict) -> None:
    _, container, env = pod_of(deployment)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    port = int(env["PYINIT_READY_PORT"].rpartition(":")[2])
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": port}
    assert port in [p["containerPort"] for p in container["ports"]]
    # pyinit is the entrypoint: the image's (no `command` here) or named in it.
    assert "command" not in container or Path(container["command"][0]).name == "pyinit"


# -- Procfile (honcho) ----------------------------------------------------------


def example_flags() -> list[str]:
    """pyinit's flags on the example Procfile's web line, read with honcho's own parser."""
    from honcho.environ import parse_procfile

    argv = shlex.split(parse_procfile(PROCFILE.read_text()).processes["web"])
    assert Path(argv[0]).name == "pyinit", argv
    flags = argv[1 : argv.index("--")]
    assert "--rewrite" in flags and "15:10" in flags, flags
    return flags


class Honcho(Watched):
    def __init__(self, procfile: Path) -> None:
        proc = subprocess.Popen(
            [PY, "-m", "honcho", "-f", str(procfile), "-d", str(ROOT), "start", "--no-colour"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        super().__init__(proc, [(proc.stdout, [])])

    def close(self) -> None:
        """SIGKILL honcho and whatever it started that is still running, each by PID."""
        try:
            left = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            left = []
        for process in [*reversed(left)]:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def first(processes: list[psutil.Process], accept: Callable[[list[str]], bool]) -> psutil.Process | None:
    """The first of ``processes`` whose command line ``accept`` takes."""
    for process in processes:
        try:
            if accept(process.cmdline()):
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def child_running(parent: psutil.Process, argv: list[str]) -> psutil.Process:
    """The direct child of ``parent`` running ``argv``."""
    return wait_for(lambda: first(parent.children(), lambda found: found == argv), f"a child running {argv}")


def find_pyinit(honcho: Honcho) -> psutil.Process:
    """The pyinit honcho started for web.1 (its shell may have exec'd it, or not)."""
    below = psutil.Process(honcho.proc.pid)
    return wait_for(
        lambda: first(below.children(recursive=True), lambda found: found[1:3] == ["-m", "pyinit"]),
        "pyinit to start under honcho",
    )


@pytest.mark.parametrize("exec_", [False, True], ids=["as-in-the-example", "with-exec"])
def test_procfile_under_honcho_forwards_rewrites_and_reaps(tmp_path: Path, exec_: bool) -> None:
    """honcho runs each line with ``sh -c``; Debian's dash stays in between unless told ``exec``."""
    flags = example_flags()
    # The example's pyinit flags on a stand-in app; the shell leaves an orphan
    # (`sleep`, its parent gone at once) for pyinit to adopt and reap.
    app = f"({shlex.join(ORPHAN)} &); exec {shlex.join(SIGPRINT)} --drain USR1:1"
    pyinit = [PY, "-m", "pyinit", *flags, "--warn-on-reap", "--", "sh", "-c", app]
    procfile = tmp_path / "Procfile"
    procfile.write_text(f"web: {'exec ' if exec_ else ''}{shlex.join(pyinit)}\n")

    honcho = Honcho(procfile)
    try:
        honcho.expect("ready pid=")
        init = find_pyinit(honcho)
        started = int(re.search(r"web\.1 started \(pid=(\d+)\)", honcho.expect("web.1 started")).group(1))
        shell_between = started != init.pid  # dash does not exec a lone command; bash does
        assert not (exec_ and shell_between)
        child = child_running(init, [*SIGPRINT, "--drain", "USR1:1"])

        # Reaping: the orphaned sleep was re-parented to pyinit (a subreaper, not
        # PID 1), which reaps it once it is ended.
        orphan = child_running(init, ORPHAN)
        orphan.terminate()
        honcho.expect(f"reaped zombie pid {orphan.pid}")
        assert not [p for p in init.children() if p.status() == psutil.STATUS_ZOMBIE]

        # Forwarding: any signal sent to pyinit reaches the app.
        os.kill(init.pid, signal.SIGUSR2)
        honcho.expect("signal SIGUSR2")

        # Rewriting: honcho stops its processes with SIGTERM (on Ctrl-C, or a
        # SIGTERM of its own); pyinit hands the app SIGUSR1 instead (15:10).
        os.kill(honcho.proc.pid, signal.SIGTERM)
        honcho.expect("sending SIGTERM to web.1")
        honcho.expect("signal SIGUSR1")
        honcho.expect("drained")
        honcho.expect("[pyinit] +")  # the shutdown timeline
        honcho.expect("exiting 0")
        # honcho reports the status of the process it started: pyinit's own
        # when the shell exec'd it; else the shell's, which the same SIGTERM
        # killed (-15), while pyinit, in that group too, drained and exited 0.
        honcho.expect(f"web.1 stopped (rc={-15 if shell_between else 0})")
        assert honcho.proc.wait(timeout=WAIT) == 143  # honcho's own code for its SIGTERM
        out = honcho.text
        assert "signal SIGTERM" not in out
        assert "forwarded SIGUSR1" in out and "(rewritten from SIGTERM)" in out
        assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    finally:
        honcho.close()
