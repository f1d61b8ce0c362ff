"""Whether the stop signal reaches the app, as the signal it drains on.

A shell in between, no init at PID 1, a STOPSIGNAL pyinit does not take as its
stop, or a server that drains on another signal than the one it gets: each
makes a stop cut the requests in flight, or wait for the SIGKILL.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

from pyinit.doctor.findings import ERROR, NOTE, WARNING, Finding
from pyinit.doctor.load import Where
from pyinit.doctor.target import Target, pyinit_fix
from pyinit.signals import signal_name

#: Servers that stop at once on SIGTERM and drain on another signal (the first is the one to rewrite to).
GRACEFUL: dict[str, tuple[int, ...]] = {
    "passenger": (signal.SIGUSR1, signal.SIGQUIT),
    "nginx": (signal.SIGQUIT,),
    "php-fpm": (signal.SIGQUIT,),
    "unicorn": (signal.SIGQUIT,),
    "httpd": (signal.SIGWINCH,),
    "apache2": (signal.SIGWINCH,),
}


def _server(name: str) -> str | None:
    """``php-fpm8.2`` -> php-fpm, ``unicorn_rails`` -> unicorn, ``apache2-foreground`` -> apache2."""
    return next((known for known in GRACEFUL if re.fullmatch(rf"{known}([-_.0-9].*)?", name)), None)


def _named(target: Target, message: str) -> Where:
    """Where the option a refusal names is set (its PYINIT_* variable), else the command line."""
    match = re.search(r"--([a-z][a-z-]+)", message)
    name = f"PYINIT_{match.group(1).replace('-', '_').upper()}" if match else ""
    return target.process.origin.env_where.get(name, target.process.origin.where)


def check(target: Target) -> Iterator[Finding]:
    proc = target.process
    origin = proc.origin
    if proc.argv is None:
        yield Finding(
            NOTE,
            "entrypoint-unknown",
            target.subject,
            target.label("command"),
            target.where,
            "The container runs its image's ENTRYPOINT and CMD, which are not among the inputs, "
            "so what gets the stop signal is not checked.",
            "Pass the image's Dockerfile too (pyinit-doctor Dockerfile k8s/), or set command.",
        )
        return
    if target.assumed_pyinit:
        yield Finding(
            NOTE,
            "entrypoint-assumed",
            target.subject,
            origin.field,
            origin.where,
            "The image is not among the inputs; with PYINIT_* set, its ENTRYPOINT is taken to be `pyinit --`.",
            "Pass the image's Dockerfile to check the real one.",
        )
    if proc.refused:
        yield Finding(
            ERROR,
            "init-refuses",
            target.subject,
            origin.field,
            _named(target, proc.refused),
            f"{proc.init} refuses to start here ({proc.refused}), so the container exits at once "
            "and the rollout stalls on a crash loop.",
            "Correct the value named; pyinit checks the same at startup and exits 2.",
        )
        return
    yield from _shells(target)
    if proc.init is None and proc.shell is None and not (target.workload and target.workload.share_pids):
        yield Finding(
            WARNING,
            "no-init",
            target.subject,
            origin.field,
            origin.where,
            f"`{' '.join(proc.argv)}` runs as PID 1 with no init: the kernel gives PID 1 no default action "
            "for SIGTERM, so unless the app handles it the stop waits for the SIGKILL, and orphans are never reaped.",
            f"Run it under pyinit: {pyinit_fix(target, '--pre-stop-delay', '5')}.",
        )
    yield from _signals(target)
    config = proc.pyinit
    if config is not None and proc.hooks_dir:
        where, field = proc.where_of("hooks_dir")
        yield Finding(
            NOTE,
            "hooks-dir",
            target.subject,
            field,
            where,
            f"pyinit also runs the hooks in {proc.hooks_dir}, which is inside the image: "
            "the budget here counts only the hooks on the command line and in PYINIT_* variables.",
            "Check that those hooks are bounded by PYINIT_HOOK_TIMEOUT.",
        )
    container = target.container
    unknown = (
        [name for name in container.unknown_env if name.startswith("PYINIT_") or "(envFrom)" in name]
        if container
        else []
    )
    if unknown:
        yield Finding(
            NOTE,
            "env-unknown",
            target.subject,
            f"{target.field}.env",
            target.where,
            f"{', '.join(unknown)} come from a Secret, a field or a ConfigMap that is not among the inputs; "
            "the check goes without them.",
            "Pass the ConfigMap too, or set the PYINIT_* values in env.",
        )


def _shells(target: Target) -> Iterator[Finding]:
    proc = target.process
    origin = proc.origin
    image = target.image
    form = image.front if image and origin.field in ("ENTRYPOINT", "CMD") else None
    if proc.shell is not None and not proc.shell.traps_term:
        lone = " (bash would exec a lone command; dash, Debian's /bin/sh, does not)" if proc.shell.lone else ""
        ignored = ""
        passed = (image and image.cmd) or (target.container and target.container.args)
        if form is not None and form.shell_form and form.keyword == "ENTRYPOINT" and passed:
            ignored = " A shell-form ENTRYPOINT also makes CMD and args the shell's $0, $1..., unseen by the app."
        fix = (
            f'Write {form.keyword} in the exec form: {form.keyword} ["...", "..."].'
            if form is not None and form.shell_form
            else "Start the script's last command with exec, or run it under pyinit."
        )
        yield Finding(
            ERROR,
            "shell-pid1",
            target.subject,
            origin.field,
            origin.where,
            f"PID 1 is a shell running {proc.shell.text!r} without exec{lone}: it gets the stop signal and, as "
            "PID 1, ignores it, so the app never gets SIGTERM and is SIGKILLed mid-request at the end of the grace "
            f"period.{ignored}",
            fix,
        )
    if proc.app_shell is not None and not proc.app_shell.traps_term and not proc.group:
        yield Finding(
            ERROR,
            "shell-child",
            target.subject,
            origin.field,
            origin.where,
            f"{proc.init} signals only its child, the shell running {proc.app_shell.text!r}, "
            "which does not pass the signal on: the app it started never gets it.",
            "Start the script's last command with exec, or let the init signal the process group "
            "(pyinit's default; tini -g).",
        )


def _signals(target: Target) -> Iterator[Finding]:
    proc = target.process
    config = proc.pyinit
    sent = signal_name(target.stop_signal)
    where = target.stop_signal_where or proc.origin.where
    if config is not None and target.stop_signal_known and target.stop_signal != config.stop_signal:
        own = signal_name(config.stop_signal)
        yield Finding(
            ERROR,
            "stop-signal",
            target.subject,
            "STOPSIGNAL" if target.stop_signal_where else proc.where_of("stop_signal")[1],
            where,
            f"The platform stops the container with {sent}, but pyinit's --stop-signal is {own}: pyinit forwards "
            f"{sent} at once, so readiness stays on and the delay, the hooks and the kill deadline never happen.",
            f"Make them agree: STOPSIGNAL {own} in the Dockerfile, or PYINIT_STOP_SIGNAL={sent.removeprefix('SIG')}.",
        )
        return
    server = _server(proc.server)
    delivered = proc.delivered(target.stop_signal)
    if server is None or delivered is None or delivered == 0 or proc.shell is not None:
        return  # a shell at PID 1 passes nothing on: that is its own finding
    drains_on = GRACEFUL[server]
    if delivered in drains_on:
        return
    names = " or ".join(signal_name(number) for number in drains_on)
    rewrite = f"{signal_name(target.stop_signal)[3:]}:{signal_name(drains_on[0])[3:]}"
    if config is not None:
        fix = f"Add the rewrite: PYINIT_REWRITE={rewrite} (pyinit --rewrite {rewrite})."
    elif proc.init == "dumb-init":
        fix = (
            f"Add --rewrite {target.stop_signal}:{drains_on[0]}, or use pyinit --rewrite {rewrite} "
            "--pre-stop-delay 5, which also outwaits the endpoint removal."
        )
    else:
        fix = f"Run it under pyinit: {pyinit_fix(target, '--rewrite', rewrite, '--pre-stop-delay', '5')}."
    unless = "" if target.stop_signal_known else " (unless the base image sets a STOPSIGNAL)"
    yield Finding(
        ERROR if target.stop_signal_known else WARNING,
        "drain-signal",
        target.subject,
        proc.where_of("rewrite")[1] if config else proc.origin.field,
        proc.where_of("rewrite")[0] if config else proc.origin.where,
        f"{server} gets {signal_name(delivered)}{unless}, on which it stops at once and drops the requests in flight; "
        f"it drains only on {names}.",
        fix,
    )
