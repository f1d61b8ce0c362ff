"""A container's shutdown laid out against its platform's limit, by pyinit's own budget rule.

At T0 the kubelet runs the preStop hook, then sends the stop signal, and
SIGKILLs at T0 + terminationGracePeriodSeconds, preStop included. pyinit's own
clock starts at the signal, so what it has is the grace period less the
preStop hook. ``pyinit.budget.plan_for``, the rule pyinit applies at startup,
says whether its delay, hooks and kill deadline fit in that.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyinit import budget
from pyinit.doctor.process import Process


@dataclass(frozen=True)
class Timeline:
    #: T0 to the platform's SIGKILL; None when the platform's limit is not known (a Dockerfile alone).
    grace: float | None
    #: How long the preStop hook holds the signal back: 0 without one, None when its length is unknown.
    pre_stop: float | None
    #: pyinit's delay after the signal, before the app gets it.
    delay: float
    #: Why pyinit's plan does not fit in what the platform leaves it (budget.plan_kill_timeout's words).
    over_budget: str | None
    #: pyinit's kill deadline after the app's signal, as planned.
    kill_timeout: float | None

    @property
    def left_for_init(self) -> float | None:
        """From the signal to the platform's SIGKILL."""
        return None if self.grace is None else self.grace - (self.pre_stop or 0.0)

    @property
    def before_app_signal(self) -> float:
        """From T0 to the app's stop signal, as far as known."""
        return (self.pre_stop or 0.0) + self.delay

    @property
    def drain(self) -> float | None:
        """From the app's stop signal to the SIGKILL that ends its drain, whichever comes first."""
        left = self.left_for_init
        platform = None if left is None else left - self.delay
        if self.kill_timeout is None:
            return platform
        return self.kill_timeout if platform is None else min(self.kill_timeout, platform)


def lay_out(process: Process, grace: float | None, pre_stop: float | None) -> Timeline:
    config = process.pyinit
    left = None if grace is None else grace - (pre_stop or 0.0)
    over = None
    if config is not None and left is not None:
        try:
            budget.plan_for(config, left)
        except budget.BudgetError as exc:
            over = str(exc)
    return Timeline(grace, pre_stop, process.delay, over, None if config is None else config.kill_timeout)
