"""One container as the checks see it: what it runs as PID 1, its shutdown, where each part is written.

A container's command line is its own ``command``, or its image's ENTRYPOINT
with its ``args`` (else the image's CMD); its environment is the image's ENV
under its own ``env``. The image is the one Dockerfile given, or the one named
like the container's image. A Dockerfile no container uses is a target itself.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from pyinit.budget import seconds
from pyinit.doctor import process, timeline
from pyinit.doctor.dockerfile import Image
from pyinit.doctor.load import InputError, Where
from pyinit.doctor.manifest import Container, Inventory, Workload
from pyinit.signals import parse_signal, signal_name


@dataclass(frozen=True)
class Target:
    subject: str
    process: process.Process
    timeline: timeline.Timeline
    workload: Workload | None
    container: Container | None
    image: Image | None
    #: True when something routes traffic to it; None when nothing says either way.
    served: bool | None
    #: The signal the platform stops it with, and whether that is known (not an unseen base image's).
    stop_signal: int
    stop_signal_known: bool
    stop_signal_where: Where | None
    where: Where
    field: str
    #: pyinit as the entrypoint is inferred from PYINIT_* variables, the image being unknown.
    assumed_pyinit: bool = False

    def label(self, name: str) -> str:
        return f"{self.field}.{name}" if self.field else name


def image_for(container: Container, images: list[Image]) -> Image | None:
    """The one Dockerfile given, or the one named like the image (Dockerfile.web, web/Dockerfile for .../web:1)."""
    if len(images) == 1:
        return images[0]
    repository = re.split(r"[@:]", os.path.basename(container.image))[0]
    return next((image for image in images if image.name == repository), None)


def for_container(workload: Workload, container: Container, image: Image | None, inventory: Inventory) -> Target:
    env = {**(image.env if image else {}), **container.env}
    env_where = {**(image.env_where if image else {}), **container.env_where}
    env_field = {name: f"ENV {name}" for name in (image.env if image else {})}
    env_field.update({name: f"{container.field}.env[{name}]" for name in container.env})
    assumed = False
    argv: tuple[str, ...] | None = None
    where, field = container.where, container.field
    if container.command is not None:
        argv = container.command + (container.args or ())
        where, field = container.command_where or where, f"{container.field}.command"
    elif image is not None and (image.entrypoint or image.cmd or image.base_known):
        entry = image.entrypoint.argv if image.entrypoint else ()
        argv = entry + (container.args if container.args is not None else (image.cmd.argv if image.cmd else ()))
        form = image.front
        if form is not None and (form is image.entrypoint or container.args is None):
            where, field = form.where, form.keyword
        elif container.args_where:
            where, field = container.args_where, f"{container.field}.args"
    elif container.args is not None and any(name.startswith("PYINIT_") for name in env):
        argv, assumed = ("pyinit", "--", *container.args), True
        where, field = container.args_where or where, f"{container.field}.args"
    origin = process.Origin(where, field, env_where, env_field)
    proc = process.work_out(argv, env, origin)
    signal_known, signal_where = True, None
    if container.stop_signal is not None:
        try:
            signal = parse_signal(container.stop_signal)
        except ValueError as exc:
            raise InputError(container.where.path, container.where.line, f"lifecycle.stopSignal: {exc}") from None
    elif image is not None and image.stop_signal is not None:
        signal, signal_where = image.stop_signal, image.stop_signal_where
    else:
        signal, signal_known = 15, image is not None and image.base_known
    probe = container.readiness
    served = bool(
        container.ports
        or (probe is not None and probe.handler != "exec")
        or inventory.services_of(workload)
        or (image is not None and image.exposed)
    )
    pre_stop = 0.0 if container.pre_stop is None else container.pre_stop.seconds
    return Target(
        subject=f"{workload.title} container {container.name}",
        process=proc,
        timeline=timeline.lay_out(proc, float(workload.grace), pre_stop),
        workload=workload,
        container=container,
        image=image,
        served=served or None,
        stop_signal=signal,
        stop_signal_known=signal_known,
        stop_signal_where=signal_where,
        where=container.where,
        field=container.field,
        assumed_pyinit=assumed,
    )


def for_image(image: Image) -> Target:
    form = image.front
    known = form is not None or image.base_known
    where, field = (form.where, form.keyword) if form is not None else (image.where, "FROM")
    origin = process.Origin(where, field, image.env_where, {name: f"ENV {name}" for name in image.env})
    proc = process.work_out(image.argv() if known else None, image.env, origin)
    grace = proc.pyinit.grace_period if proc.pyinit else None
    return Target(
        subject=f"image {image.path}",
        process=proc,
        timeline=timeline.lay_out(proc, grace, 0.0),
        workload=None,
        container=None,
        image=image,
        served=bool(image.exposed) or None,
        stop_signal=image.stop_signal or 15,
        stop_signal_known=image.stop_signal is not None or image.base_known,
        stop_signal_where=image.stop_signal_where,
        where=image.where,
        field="",
    )


def pyinit_fix(target: Target, *options: str) -> str:
    """The command line that puts pyinit in front, written where this target's is."""
    if target.container is not None:
        return f"command: {json.dumps(['pyinit', *options, '--'])[:-1]}, ...]"
    return f"ENTRYPOINT {json.dumps(['pyinit', *options, '--'])}"


def summary(target: Target) -> str:
    """One line: what runs, and what happens at the stop."""
    proc = target.process
    name = target.container.name if target.container else os.path.basename(target.image.path if target.image else "")
    if proc.argv is None:
        return f"{name}: the image's own entrypoint (not given)"
    parts = [" ".join(proc.app) or " ".join(proc.argv)]
    head = f"{name}: {proc.init or 'no init'}"
    if proc.shell:
        head = f"{name}: a shell ({proc.shell.text!r})"
    if proc.refused:
        return f"{head}, which refuses to start"
    config = proc.pyinit
    line = target.timeline
    steps = [f"preStop {seconds(line.pre_stop)}"] if line.pre_stop else []
    steps.append(f"{signal_name(target.stop_signal)}{'' if target.stop_signal_known else ' (assumed)'}")
    if proc.delay:
        if config is not None and config.drain_quiet is not None:
            steps.append(f"drain until {seconds(config.drain_quiet)} quiet, {seconds(proc.delay)} at most")
        else:
            steps.append(f"{seconds(proc.delay)} delay" + ("" if config else " (a trap's sleep)"))
    delivered = proc.delivered(target.stop_signal)
    if delivered is None:
        steps.append("the stop command")
    elif delivered != target.stop_signal:
        steps.append(f"{signal_name(delivered)} to the app" if delivered else "nothing to the app (dropped)")
    if config is not None and config.kill_timeout is not None:
        steps.append(f"SIGKILL {seconds(config.kill_timeout)} later")
    if line.grace is not None:
        steps.append(f"all within {seconds(line.grace)}")
    return f"{head} -> {parts[0]}; stop: {', '.join(steps)}"
