"""The readiness probe: whether it exists, and whether it takes the pod out during the drain.

pyinit's ``/ready`` (``--ready-port``) turns 503 at T0 while the app keeps
serving, so a probe on it takes the pod out of rotation even when the endpoint
removal is slow. A probe on the app itself stays green until the app stops.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyinit.budget import seconds
from pyinit.doctor.findings import ERROR, WARNING, Finding
from pyinit.doctor.target import Target


def check(target: Target) -> Iterator[Finding]:
    container, proc = target.container, target.process
    if container is None or proc.refused:
        return
    config = proc.pyinit
    ready_port = None if config is None or config.ready_port is None else config.ready_port[1]
    probe = container.readiness
    if probe is None:
        if target.served:
            on = (
                f" on port {ready_port}, pyinit's"
                if ready_port
                else "; pyinit's --ready-port serves one that turns 503 at T0"
            )
            yield Finding(
                WARNING,
                "no-readiness-probe",
                target.subject,
                target.label("readinessProbe"),
                container.where,
                "Without a readiness probe a new pod gets traffic as soon as it starts, before it listens, and a "
                "stopping pod leaves the rotation only by the slow endpoint removal: both ends of a rollout 502.",
                f"Add a readinessProbe: httpGet /ready{on}.",
            )
        return
    if ready_port is None:
        return
    port = container.ports.get(probe.port, None) if isinstance(probe.port, str) else probe.port
    on_pyinit = probe.handler == "httpGet" and port == ready_port
    if on_pyinit and probe.path not in ("/ready", "/live"):
        yield Finding(
            ERROR,
            "probe-404",
            target.subject,
            f"{probe.field}.httpGet.path",
            probe.where,
            f"pyinit answers {probe.path} on port {ready_port} with 404, so the pod never becomes Ready "
            "and the rollout never goes on.",
            "Use path: /ready.",
        )
        return
    if not on_pyinit or probe.path == "/live":
        what = "pyinit's /live, which stays 200 until pyinit exits" if on_pyinit else f"{probe.handler} on the app"
        yield Finding(
            WARNING,
            "probe-stays-ready",
            target.subject,
            probe.field,
            probe.where,
            f"The readiness probe checks {what}: it keeps passing during the delay, so the pod stays Ready "
            f"until the endpoint removal, while pyinit's /ready on port {ready_port} would have turned 503 at T0.",
            f"Point the readinessProbe at httpGet /ready, port {ready_port}.",
        )
        return
    noticed = probe.period * probe.failures
    if proc.delay and noticed > proc.delay:
        yield Finding(
            WARNING,
            "probe-slow",
            target.subject,
            probe.field,
            probe.where,
            f"The probe needs periodSeconds {probe.period} x failureThreshold {probe.failures} = {seconds(noticed)} "
            f"to mark the pod unready, longer than pyinit's {seconds(proc.delay)} delay: the pod is still Ready "
            "when the app gets its stop signal.",
            f"Make periodSeconds x failureThreshold at most {seconds(proc.delay)} (e.g. periodSeconds: "
            f"{max(1, int(proc.delay) // 2)}, failureThreshold: 1), or lengthen the delay.",
        )
