"""ingress-nginx in front of the pods: retries, idle upstream connections, and proxy timeouts against the drain.

A setting comes from the Ingress's annotation, else from the controller's
ConfigMap when it is among the inputs, else from ingress-nginx's default.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pyinit.budget import seconds
from pyinit.doctor.findings import ERROR, WARNING, Finding
from pyinit.doctor.load import Where
from pyinit.doctor.manifest import KEEP_ALIVE_ANNOTATION, Ingress, Inventory
from pyinit.doctor.target import Target

PREFIX = "nginx.ingress.kubernetes.io/"
DEFAULTS = {
    "proxy-next-upstream": "error timeout",
    "upstream-keepalive-timeout": "60",
    "upstream-keepalive-connections": "320",
    "proxy-read-timeout": "60",
    "proxy-send-timeout": "60",
}
#: Controller-wide settings that no annotation can change.
CONFIG_MAP_ONLY = ("upstream-keepalive-timeout", "upstream-keepalive-connections")


@dataclass(frozen=True)
class Setting:
    value: str
    where: Where
    field: str
    #: Set by the user (annotation or ConfigMap), not ingress-nginx's default.
    given: bool


class Settings:
    """One Ingress's effective ingress-nginx settings."""

    def __init__(self, ingress: Ingress, inventory: Inventory) -> None:
        self._ingress = ingress
        self._global = inventory.nginx_settings()

    def __getitem__(self, name: str) -> Setting:
        key = PREFIX + name
        ingress = self._ingress
        if key in ingress.annotations and name not in CONFIG_MAP_ONLY:
            return Setting(
                ingress.annotations[key], ingress.annotation_where[key], f"metadata.annotations[{key}]", True
            )
        if name in self._global:
            value, where = self._global[name]
            return Setting(value, where, f"ConfigMap data[{name}]", True)
        return Setting(DEFAULTS[name], ingress.where, f"ingress-nginx's {name} (default {DEFAULTS[name]})", False)


def _number(text: str) -> float | None:
    try:
        return float(text.rstrip("s"))
    except ValueError:
        return None


def check(ingress: Ingress, behind: list[Target], inventory: Inventory) -> Iterator[Finding]:
    if not ingress.nginx:
        return
    settings = Settings(ingress, inventory)
    subject = f"Ingress/{ingress.name}"
    retry = settings["proxy-next-upstream"]
    conditions = retry.value.split()
    if "non_idempotent" in conditions:
        yield Finding(
            WARNING,
            "retry-non-idempotent",
            subject,
            retry.field,
            retry.where,
            "proxy-next-upstream retries non-idempotent requests: a POST that a stopping pod had started is sent "
            "again to another pod, and its side effects happen twice.",
            'Drop non_idempotent (keep e.g. "error timeout http_502"), unless every handler is idempotent.',
        )
    undelayed = [target for target in behind if not target.timeline.before_app_signal and target.timeline.pre_stop == 0]
    if "off" in conditions and undelayed:
        yield Finding(
            ERROR,
            "next-upstream-off",
            subject,
            retry.field,
            retry.where,
            f"proxy-next-upstream is off and {undelayed[0].subject} has no delay before its stop signal: every "
            "request sent to a stopping pod before the endpoint removal arrives fails, with no retry on another pod.",
            'Give the pods a delay (PYINIT_PRE_STOP_DELAY), and set proxy-next-upstream to "error timeout".',
        )
    yield from _keep_alive(ingress, behind, settings, subject)
    for name in ("proxy-read-timeout", "proxy-send-timeout"):
        timeout_setting = settings[name]
        timeout = _number(timeout_setting.value)
        if not timeout_setting.given or timeout is None:
            continue
        for target in behind:
            drain = target.timeline.drain
            if drain is not None and drain < timeout:
                yield Finding(
                    WARNING,
                    "proxy-timeout",
                    subject,
                    timeout_setting.field,
                    timeout_setting.where,
                    f"nginx waits up to {seconds(timeout)} for {target.subject} ({name}), but the app is SIGKILLed "
                    f"{seconds(drain)} after its stop signal: a request that long, in flight at the stop, is cut "
                    "(502) instead of finishing.",
                    f"Give the drain at least {seconds(timeout)} (terminationGracePeriodSeconds, PYINIT_KILL_TIMEOUT), "
                    f"or lower {name} to what the drain allows.",
                )


def _keep_alive(ingress: Ingress, behind: list[Target], settings: Settings, subject: str) -> Iterator[Finding]:
    key = PREFIX + "upstream-keepalive-timeout"
    if key in ingress.annotations:
        yield Finding(
            WARNING,
            "ignored-annotation",
            subject,
            f"metadata.annotations[{key}]",
            ingress.annotation_where[key],
            "ingress-nginx has no upstream-keepalive-timeout annotation and ignores this one: idle upstream "
            "connections stay open for the controller's setting (60s by default).",
            "Set upstream-keepalive-timeout in the ingress-nginx controller's ConfigMap.",
        )
    idle = settings["upstream-keepalive-timeout"]
    nginx_idle = _number(idle.value)
    if settings["upstream-keepalive-connections"].value == "0" or nginx_idle is None:
        return
    for target in behind:
        app_idle = target.process.keep_alive
        if app_idle is None and target.workload is not None and KEEP_ALIVE_ANNOTATION in target.workload.annotations:
            app_idle = _number(target.workload.annotations[KEEP_ALIVE_ANNOTATION])
        if app_idle is not None and nginx_idle >= app_idle:
            yield Finding(
                ERROR,
                "keep-alive",
                subject,
                idle.field,
                idle.where,
                f"nginx keeps idle upstream connections open {seconds(nginx_idle)}, but {target.subject} closes them "
                f"after {seconds(app_idle)}: a request nginx sends on a connection the app is closing fails with 502.",
                f"Set upstream-keepalive-timeout below {seconds(app_idle)} in the ingress-nginx ConfigMap "
                f"(e.g. {max(1, app_idle - 5):g}), or raise the app's keep-alive above {seconds(nginx_idle)}.",
            )
