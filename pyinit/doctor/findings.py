"""What the doctor reports: findings, each about one field, grouped by the workload they concern."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyinit.doctor.load import Where

ERROR, WARNING, NOTE = "error", "warning", "note"
SEVERITIES = (ERROR, WARNING, NOTE)


@dataclass(frozen=True)
class Finding:
    severity: str
    #: A stable name for the kind of finding, for scripts reading --format json.
    code: str
    #: What it is about: a workload's container, an Ingress, an image.
    subject: str
    field: str
    where: Where
    #: What goes wrong at shutdown, in one sentence.
    problem: str
    fix: str


@dataclass
class Group:
    """One workload (or Ingress, or image checked on its own) and what was found about it."""

    title: str
    where: Where
    #: One line per container: what it runs and how it stops.
    summaries: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
