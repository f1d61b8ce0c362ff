"""How many pods stop at once: the rolling update's maxUnavailable, and a PodDisruptionBudget for evictions."""

from __future__ import annotations

from collections.abc import Iterator

from pyinit.doctor.findings import WARNING, Finding
from pyinit.doctor.manifest import Inventory, Workload, max_unavailable

#: Up to this many replicas, each pod carries at least a quarter of the traffic.
FEW = 4


def check(workload: Workload, inventory: Inventory) -> Iterator[Finding]:
    count = workload.replicas or 0
    strategy_field = "spec.strategy"
    if workload.kind == "Deployment" and workload.strategy == "Recreate":
        yield Finding(
            WARNING,
            "recreate",
            workload.title,
            f"{strategy_field}.type",
            workload.strategy_where,
            "The Recreate strategy stops every pod before a new one starts: each rollout is an outage.",
            "Use type: RollingUpdate with maxUnavailable: 0 and maxSurge: 1.",
        )
    elif workload.kind == "Deployment" and count and count <= FEW:
        stopped = max_unavailable(workload)
        if stopped:
            share = min(100, round(100 * stopped / count))
            yield Finding(
                WARNING,
                "max-unavailable",
                workload.title,
                f"{strategy_field}.rollingUpdate.maxUnavailable",
                workload.strategy_where,
                f"A rolling update may stop {stopped} of the {count} pods before their replacements are Ready: "
                f"{share}% of the capacity goes at once, and the pods left take its traffic.",
                "Set maxUnavailable: 0 with maxSurge: 1, so a new pod is Ready before an old one stops.",
            )
    if workload.kind in ("Deployment", "StatefulSet") and count >= 2 and inventory.budget_of(workload) is None:
        labels = ", ".join(f"{k}: {v}" for k, v in workload.labels.items()) or "the pod's labels"
        yield Finding(
            WARNING,
            "no-pdb",
            workload.title,
            "PodDisruptionBudget",
            workload.replicas_where,
            f"No PodDisruptionBudget among the inputs selects its pods: a node drain or a cluster upgrade may evict "
            f"all {count} ({workload.replicas_from}) at once, each through the shutdown race, with none left to serve.",
            f"Add a PodDisruptionBudget with maxUnavailable: 1 and selector.matchLabels {{{labels}}}.",
        )
