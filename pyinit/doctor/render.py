"""The report: text for people (grouped per workload, one summary line), or JSON for scripts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from pyinit.doctor.findings import ERROR, NOTE, SEVERITIES, WARNING, Group
from pyinit.doctor.load import Inputs
from pyinit.doctor.manifest import Inventory


@dataclass(frozen=True)
class Report:
    groups: list[Group]
    inventory: Inventory
    inputs: Inputs
    images: int

    def counts(self) -> Counter[str]:
        return Counter(finding.severity for group in self.groups for finding in group.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.counts()[ERROR] else 0


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def summary_line(report: Report) -> str:
    counts = report.counts()
    inventory = report.inventory
    checked = ", ".join(
        (
            _plural(len(inventory.workloads), "workload"),
            _plural(len(inventory.ingresses), "Ingress", "Ingresses"),
            _plural(report.images, "Dockerfile"),
        )
    )
    found = ", ".join(_plural(counts[severity], severity) for severity in SEVERITIES)
    line = f"{checked} checked: {found}"
    skipped = [f"{count} {kind}" for kind, count in sorted(inventory.skipped.items())]
    if report.inputs.other_documents:
        skipped.append(_plural(report.inputs.other_documents, "YAML document") + " that is not a Kubernetes object")
    if skipped:
        line += "; skipped, not checked: " + ", ".join(skipped)
    return line + "."


def text(report: Report) -> str:
    lines: list[str] = []
    for group in report.groups:
        lines.append(f"{group.title}  ({group.where})")
        lines += [f"  {summary}" for summary in group.summaries]
        if not group.findings:
            lines.append("  ok")
        for finding in sorted(group.findings, key=lambda f: SEVERITIES.index(f.severity)):
            subject = finding.subject.removeprefix(group.title.split(" ->")[0]).strip()
            about = f"{subject}: {finding.field}" if subject else finding.field
            lines.append(f"  {finding.severity:<8} {about}  ({finding.where})")
            lines.append(f"           {finding.problem}")
            lines.append(f"           fix: {finding.fix}")
        lines.append("")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    counts = report.counts()
    inventory = report.inventory
    document = {
        "groups": [
            {
                "title": group.title,
                "where": {"path": group.where.path, "line": group.where.line},
                "containers": group.summaries,
                "findings": [
                    {
                        "severity": finding.severity,
                        "code": finding.code,
                        "subject": finding.subject,
                        "field": finding.field,
                        "where": {"path": finding.where.path, "line": finding.where.line},
                        "problem": finding.problem,
                        "fix": finding.fix,
                    }
                    for finding in group.findings
                ],
            }
            for group in report.groups
        ],
        "summary": {
            "workloads": len(inventory.workloads),
            "ingresses": len(inventory.ingresses),
            "images": report.images,
            "errors": counts[ERROR],
            "warnings": counts[WARNING],
            "notes": counts[NOTE],
            "skipped": dict(sorted(inventory.skipped.items())),
            "other_documents": report.inputs.other_documents,
            "line": summary_line(report),
        },
        "exit": report.exit_code,
    }
    return json.dumps(document, indent=2) + "\n"
