"""The delay before the app's stop signal, and whether the whole shutdown fits the grace period.

The endpoint removal takes seconds to reach kube-proxy and the ingress: the app
has to keep serving that long after T0 (a preStop sleep, or pyinit's delay),
then drain, all before the kubelet's SIGKILL at terminationGracePeriodSeconds.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyinit.budget import seconds
from pyinit.doctor.findings import ERROR, NOTE, WARNING, Finding
from pyinit.doctor.target import Target, pyinit_fix

#: How long the endpoint removal takes to reach kube-proxy and ingress-nginx, by the seeds' accounts.
PROPAGATION = "1-5 s"


def check(target: Target) -> Iterator[Finding]:
    proc, line = target.process, target.timeline
    if proc.argv is not None and proc.refused:
        return
    yield from _delay(target)
    workload = target.workload
    if workload is None or line.grace is None:
        return
    grace_field = f"{workload.pod_field}.terminationGracePeriodSeconds"
    default = "" if workload.grace_set else " (the default)"
    pre_stop = line.pre_stop or 0.0
    config = proc.pyinit
    left = line.grace - pre_stop
    after = f" - the preStop sleep {seconds(pre_stop)}" if pre_stop else ""
    over = None
    if left <= 0:
        over = (
            f"The preStop hook sleeps {seconds(pre_stop)} but the kubelet SIGKILLs at terminationGracePeriodSeconds "
            f"{line.grace:g}{default}: the stop signal is never sent and every request in flight is cut.",
            f"Make terminationGracePeriodSeconds larger than the sleep plus the drain, e.g. {pre_stop + 30:g}.",
        )
    elif config is not None and line.over_budget:
        over = (
            f"terminationGracePeriodSeconds {line.grace:g}{default}{after} leaves pyinit {seconds(left)}, and by "
            f"pyinit's own rule, planned in that, {line.over_budget}: the kubelet's SIGKILL comes before pyinit's "
            "shutdown ends, mid-drain.",
            "Raise terminationGracePeriodSeconds, or shorten the delay, the hooks or the kill timeout; "
            f"PYINIT_GRACE_PERIOD={left:g} makes pyinit plan inside the real limit.",
        )
    if over is not None:
        yield Finding(ERROR, "budget", target.subject, grace_field, workload.grace_where, *over)
    elif config is not None and config.grace_period is None and config.kill_timeout is None:
        cut = ", and the post-stop hooks never run" if config.post_stop else ""
        yield Finding(
            WARNING if config.post_stop else NOTE,
            "no-grace-period",
            target.subject,
            proc.where_of("grace_period")[1],
            proc.where_of("grace_period")[0],
            f"pyinit does not know the pod's limit, so it sets no kill deadline of its own: the kubelet's SIGKILL at "
            f"{line.grace:g}s ends the drain{cut}.",
            f"Set PYINIT_GRACE_PERIOD={left:g} (terminationGracePeriodSeconds{after}).",
        )
    if config is not None and pre_stop and config.pre_stop_delay:
        where, field = proc.where_of("pre_stop_delay")
        yield Finding(
            WARNING,
            "double-delay",
            target.subject,
            field,
            where,
            f"The preStop sleep ({seconds(pre_stop)}) runs before SIGTERM reaches pyinit, whose delay "
            f"({seconds(config.pre_stop_delay)}) only starts then: the app gets its stop signal "
            f"{seconds(pre_stop + config.pre_stop_delay)} after T0, and both come out of the grace period.",
            "Keep one: drop the preStop hook (pyinit's delay does the same and turns /ready off at T0), "
            "or set PYINIT_PRE_STOP_DELAY=0.",
        )


def _delay(target: Target) -> Iterator[Finding]:
    proc, line = target.process, target.timeline
    if line.pre_stop != 0.0 or proc.delay or target.served is False:
        return
    workload = target.workload
    replicas = workload.replicas if workload else None
    share = f"about 1/{replicas} of the traffic" if replicas else "its share of the traffic"
    share = "all of the traffic" if replicas == 1 else share
    app = f"`{' '.join(proc.app)}`" if proc.app else "The app"
    if proc.pyinit is not None:
        where, field = proc.where_of("pre_stop_delay")
        fix = "Set PYINIT_PRE_STOP_DELAY=5 (the propagation delay plus a margin; more on a large cluster)."
    elif workload is not None:
        where, field = target.where, target.label("lifecycle.preStop")
        fix = (
            "Run the app under pyinit --pre-stop-delay 5 (which also turns /ready off at T0), "
            "or add lifecycle.preStop.sleep.seconds: 5."
        )
    else:
        where, field = proc.origin.where, proc.origin.field
        fix = f"Run the app under pyinit with a delay: {pyinit_fix(target, '--pre-stop-delay', '5')}."
    problem = (
        f"{app} gets the stop signal at T0, while the endpoint removal takes {PROPAGATION} to reach kube-proxy and "
        f"the ingress: requests still routed to it in that window are refused (502), {share}, at each pod a rollout "
        "replaces."
    )
    if not target.served:
        problem = f"If it serves traffic: {problem[0].lower()}{problem[1:]}"
    yield Finding(ERROR if target.served else WARNING, "no-delay", target.subject, field, where, problem, fix)
