"""Every check, run over the model, one family per module.

``entry``, ``shutdown`` and ``probes`` look at one target (a container, or a
Dockerfile on its own); ``rollout`` at a workload; ``ingress`` at an Ingress
and the targets behind it. The findings are grouped by workload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyinit.doctor import target as targeting
from pyinit.doctor.checks import entry, ingress, probes, rollout, shutdown
from pyinit.doctor.dockerfile import Image
from pyinit.doctor.findings import Finding, Group
from pyinit.doctor.manifest import Inventory
from pyinit.doctor.target import Target

Check = Callable[[Target], Iterable[Finding]]


def run(inventory: Inventory, images: list[Image]) -> list[Group]:
    groups: list[Group] = []
    used: set[str] = set()
    by_workload: dict[int, list[Target]] = {}
    for workload in inventory.workloads:
        group = Group(workload.title, workload.where)
        targets = []
        for container in workload.containers:
            image = targeting.image_for(container, images)
            if image is not None:
                used.add(image.path)
            target = targeting.for_container(workload, container, image, inventory)
            targets.append(target)
            group.summaries.append(targeting.summary(target))
            group.findings += _each(target, (entry.check, shutdown.check, probes.check))
        group.findings += rollout.check(workload, inventory)
        by_workload[id(workload)] = targets
        groups.append(group)
    for item in inventory.ingresses:
        workloads = inventory.workloads_of(item)
        title = f"Ingress/{item.name}" + (f" -> {', '.join(w.title for w in workloads)}" if workloads else "")
        behind = [target for workload in workloads for target in by_workload[id(workload)]]
        groups.append(Group(title, item.where, [], list(ingress.check(item, behind, inventory))))
    for image in images:
        if image.path not in used:
            target = targeting.for_image(image)
            groups.append(
                Group(
                    f"image {image.path}",
                    image.where,
                    [targeting.summary(target)],
                    _each(target, (entry.check, shutdown.check)),
                )
            )
    return groups


def _each(target: Target, checks: Iterable[Check]) -> list[Finding]:
    return [finding for check in checks for finding in check(target)]
