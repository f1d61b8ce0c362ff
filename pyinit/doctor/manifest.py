"""The Kubernetes objects the doctor checks, read into a model that keeps where each field is.

Workloads (Deployment, StatefulSet, DaemonSet, Pod) carry their pod's
containers; Services, Ingresses, PodDisruptionBudgets, HorizontalPodAutoscalers
and ConfigMaps are read to connect and complete them. A field of the wrong type
is bad input: the API server would refuse the object, so no finding about it
could be right.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyinit.doctor.load import Document, InputError, Where, YamlList, YamlMap, find_placeholder, unrendered
from pyinit.doctor.shell import sleep_seconds

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")
#: Read to connect and complete the workloads; ConfigMaps and autoscalers are not themselves checked.
CONNECTING = ("Service", "Ingress", "PodDisruptionBudget")
HELPERS = ("ConfigMap", "HorizontalPodAutoscaler")
DEFAULT_GRACE = 30
#: An annotation with the app's own keep-alive timeout, for apps whose command line does not show it.
KEEP_ALIVE_ANNOTATION = "pyinit-doctor/keep-alive-timeout"


class Node:
    """A YAML mapping of one document, with typed access that names the field and line when it is wrong."""

    def __init__(self, document: Document, body: YamlMap, path: str) -> None:
        self.document = document
        self.body = body
        self.path = path

    def where(self, key: str | None = None) -> Where:
        return self.document.where(self.body.lines.get(key) if key else self.body.line)

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _bad(self, key: str, expected: str) -> InputError:
        value = self.body.get(key)
        return InputError(
            self.document.path, self.where(key).line, f"{self.field(key)}: expected {expected}, got {value!r}"
        )

    def has(self, key: str) -> bool:
        return self.body.get(key) is not None

    def node(self, key: str) -> Node:
        value = self.body.get(key)
        if value is None:
            return Node(self.document, YamlMap(self.where(key).line), self.field(key))
        if not isinstance(value, YamlMap):
            raise self._bad(key, "a mapping")
        return Node(self.document, value, self.field(key))

    def nodes(self, key: str) -> list[Node]:
        value = self.body.get(key)
        if value is None:
            return []
        if not isinstance(value, YamlList) or not all(isinstance(item, YamlMap) for item in value):
            raise self._bad(key, "a list of mappings")
        return [
            Node(self.document, item, f"{self.field(key)}[{index}]")
            for index, item in enumerate(value)
            if isinstance(item, YamlMap)
        ]

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, (YamlMap, YamlList)):
            raise self._bad(key, "a string")
        return str(value)

    def integer(self, key: str, default: int | None = None) -> int | None:
        value = self.body.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "a whole number")
        return value

    def words(self, key: str) -> tuple[str, ...] | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, YamlList) or any(isinstance(item, (YamlMap, YamlList)) for item in value):
            raise self._bad(key, "a list of strings")
        return tuple(str(item) for item in value)

    def strings(self, key: str) -> dict[str, str]:
        """A map of strings, such as labels or annotations."""
        return {str(k): str(v) for k, v in self.node(key).body.items()}

    def int_or_percent(self, key: str) -> int | str | None:
        value = self.body.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        if isinstance(value, str) and re.fullmatch(r"\d+%", value):
            return value
        raise self._bad(key, "a whole number or a percentage")


@dataclass(frozen=True)
class Probe:
    handler: str  # httpGet, tcpSocket, exec or grpc
    port: int | str | None
    path: str | None
    period: int
    failures: int
    where: Where
    field: str


@dataclass(frozen=True)
class PreStop:
    #: How long it holds SIGTERM back; None when that is unknown (an HTTP call, a script).
    seconds: float | None
    what: str
    where: Where
    field: str


@dataclass
class Container:
    name: str
    image: str
    command: tuple[str, ...] | None
    args: tuple[str, ...] | None
    env: dict[str, str]
    env_where: dict[str, Where]
    #: Variables whose value comes from a Secret, a field or a ConfigMap not given.
    unknown_env: list[str]
    ports: dict[str, int]
    readiness: Probe | None
    pre_stop: PreStop | None
    stop_signal: str | None
    where: Where
    field: str
    command_where: Where | None
    args_where: Where | None


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str
    where: Where
    pod_field: str
    labels: dict[str, str]
    annotations: dict[str, str]
    replicas: int | None
    replicas_where: Where
    replicas_from: str
    strategy: str | None
    max_unavailable: int | str | None
    max_surge: int | str | None
    strategy_where: Where
    grace: int
    grace_set: bool
    grace_where: Where
    share_pids: bool
    containers: list[Container]

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    selector: dict[str, str]
    where: Where


@dataclass(frozen=True)
class Ingress:
    name: str
    namespace: str
    annotations: dict[str, str]
    annotation_where: dict[str, Where]
    services: tuple[str, ...]
    nginx: bool
    where: Where


@dataclass(frozen=True)
class Selector:
    labels: dict[str, str]
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.labels.items()):
            return False
        for key, operator, values in self.expressions:
            if (
                (operator == "In" and labels.get(key) not in values)
                or (operator == "NotIn" and labels.get(key) in values)
                or (operator == "Exists" and key not in labels)
                or (operator == "DoesNotExist" and key in labels)
            ):
                return False
        return bool(self.labels or self.expressions)


@dataclass(frozen=True)
class Disruption:
    name: str
    namespace: str
    selector: Selector
    where: Where


@dataclass
class Inventory:
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    ingresses: list[Ingress] = field(default_factory=list)
    budgets: list[Disruption] = field(default_factory=list)
    config_maps: dict[tuple[str, str], Node] = field(default_factory=dict)
    #: Kinds read but not checked, and how many of each.
    skipped: Counter[str] = field(default_factory=Counter)

    def services_of(self, workload: Workload) -> list[Service]:
        return [
            service
            for service in self.services
            if service.namespace == workload.namespace
            and service.selector
            and all(workload.labels.get(k) == v for k, v in service.selector.items())
        ]

    def workloads_of(self, ingress: Ingress) -> list[Workload]:
        names = set(ingress.services)
        return [
            workload
            for workload in self.workloads
            if any(service.name in names for service in self.services_of(workload))
            and workload.namespace == ingress.namespace
        ]

    def budget_of(self, workload: Workload) -> Disruption | None:
        return next(
            (b for b in self.budgets if b.namespace == workload.namespace and b.selector.matches(workload.labels)),
            None,
        )

    def nginx_settings(self) -> dict[str, tuple[str, Where]]:
        """The ingress-nginx controller's ConfigMap, when it is among the inputs: its global settings."""
        for (_, name), node in self.config_maps.items():
            labels = node.node("metadata").strings("labels")
            if name in ("ingress-nginx-controller", "nginx-configuration") or (
                labels.get("app.kubernetes.io/name") == "ingress-nginx"
            ):
                data = node.node("data")
                return {str(key): (str(value), data.where(str(key))) for key, value in data.body.items()}
        return {}


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(NAME)`` references in command, args and env values; ``$$`` escapes."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: env.get(m.group(1), m.group(0)) if m.group(1) else "$", text
    )


def _probe(node: Node) -> Probe | None:
    if not node.body:
        return None
    for handler in ("httpGet", "tcpSocket", "grpc", "exec"):
        if node.has(handler):
            action = node.node(handler)
            port = action.body.get("port")
            return Probe(
                handler,
                port if isinstance(port, (int, str)) and not isinstance(port, bool) else None,
                action.text("path", "/") if handler == "httpGet" else None,
                node.integer("periodSeconds", 10) or 10,
                node.integer("failureThreshold", 3) or 3,
                node.where(),
                node.path,
            )
    return None


def _pre_stop(lifecycle: Node) -> PreStop | None:
    if not lifecycle.has("preStop"):
        return None
    hook = lifecycle.node("preStop")
    where, path = lifecycle.where("preStop"), hook.path
    if hook.has("sleep"):
        seconds = hook.node("sleep").integer("seconds")
        return PreStop(None if seconds is None else float(seconds), f"sleep {seconds}", where, path)
    if hook.has("exec"):
        command = hook.node("exec").words("command") or ()
        return PreStop(sleep_seconds(command), " ".join(command), where, path)
    return PreStop(None, "an HTTP call" if hook.has("httpGet") else "a hook", where, path)


def _container(node: Node, namespace: str, inventory: Inventory) -> Container:
    name = node.text("name") or "?"
    env: dict[str, str] = {}
    env_where: dict[str, Where] = {}
    unknown: list[str] = []
    for source in node.nodes("envFrom"):
        ref = source.node("configMapRef")
        config_map = inventory.config_maps.get((namespace, ref.text("name") or ""))
        if config_map is None:
            unknown.append(f"{source.path} (envFrom)")
            continue
        data = config_map.node("data")
        for key, value in data.body.items():
            env[f"{source.text('prefix', '')}{key}"] = str(value)
            env_where[f"{source.text('prefix', '')}{key}"] = data.where(str(key))
    for item in node.nodes("env"):
        var = item.text("name") or ""
        if item.has("valueFrom"):
            ref = item.node("valueFrom").node("configMapKeyRef")
            config_map = inventory.config_maps.get((namespace, ref.text("name") or ""))
            value = None if config_map is None else config_map.node("data").text(ref.text("key") or "")
            if value is None:
                unknown.append(var)
                continue
            env[var] = value
        else:
            env[var] = _expand(item.text("value", "") or "", env)
        env_where[var] = item.where()
    ports = {}
    for index, port in enumerate(node.nodes("ports")):
        number = port.integer("containerPort")
        if number is not None:
            ports[port.text("name") or f"#{index}"] = number
    lifecycle = node.node("lifecycle")
    command, args = node.words("command"), node.words("args")
    return Container(
        name=name,
        image=node.text("image", "") or "",
        command=None if command is None else tuple(_expand(word, env) for word in command),
        args=None if args is None else tuple(_expand(word, env) for word in args),
        env=env,
        env_where=env_where,
        unknown_env=unknown,
        ports=ports,
        readiness=_probe(node.node("readinessProbe")),
        pre_stop=_pre_stop(lifecycle),
        stop_signal=lifecycle.text("stopSignal"),
        where=node.where(),
        field=node.path,
        command_where=node.where("command") if command is not None else None,
        args_where=node.where("args") if args is not None else None,
    )


def _workload(document: Document, kind: str, inventory: Inventory, replicas: dict[tuple[str, str], int]) -> Workload:
    top = Node(document, document.body, "")
    meta = top.node("metadata")
    name, namespace = meta.text("name") or "?", meta.text("namespace") or ""
    spec = top.node("spec")
    template = spec if kind == "Pod" else spec.node("template")
    pod = spec if kind == "Pod" else template.node("spec")
    pod_meta = meta if kind == "Pod" else template.node("metadata")
    strategy = spec.node("updateStrategy" if kind in ("StatefulSet", "DaemonSet") else "strategy")
    rolling = strategy.node("rollingUpdate")
    count: int | None = None
    counted_from = "spec.replicas"
    if kind in ("Deployment", "StatefulSet"):
        count = spec.integer("replicas", 1)
        if (kind, name) in replicas and not spec.has("replicas"):
            count, counted_from = replicas[kind, name], "the HorizontalPodAutoscaler's minReplicas"
    elif kind == "Pod":
        count = 1
    return Workload(
        kind=kind,
        name=name,
        namespace=namespace,
        where=document.where(),
        pod_field=pod.path,
        labels=pod_meta.strings("labels"),
        annotations={**meta.strings("annotations"), **pod_meta.strings("annotations")},
        replicas=count,
        replicas_where=spec.where("replicas") if spec.has("replicas") else spec.where(),
        replicas_from=counted_from,
        strategy=strategy.text("type", "RollingUpdate" if kind != "Pod" else None),
        max_unavailable=rolling.int_or_percent("maxUnavailable"),
        max_surge=rolling.int_or_percent("maxSurge"),
        strategy_where=spec.where("strategy") if spec.has("strategy") else spec.where(),
        grace=pod.integer("terminationGracePeriodSeconds", DEFAULT_GRACE) or 0,
        grace_set=pod.has("terminationGracePeriodSeconds"),
        grace_where=pod.where("terminationGracePeriodSeconds"),
        share_pids=pod.body.get("shareProcessNamespace") is True,
        containers=[_container(node, namespace, inventory) for node in pod.nodes("containers")],
    )


def _ingress(document: Document) -> Ingress:
    top = Node(document, document.body, "")
    meta, spec = top.node("metadata"), top.node("spec")
    annotations = meta.strings("annotations")
    ann = meta.node("annotations")
    services: list[str] = []
    backends = [spec.node("defaultBackend"), spec.node("backend")]
    for rule in spec.nodes("rules"):
        backends += [path.node("backend") for path in rule.node("http").nodes("paths")]
    for backend in backends:
        name = backend.node("service").text("name") or backend.text("serviceName")
        if name:
            services.append(name)
    nginx = (
        spec.text("ingressClassName") == "nginx"
        or annotations.get("kubernetes.io/ingress.class") == "nginx"
        or any(key.startswith("nginx.ingress.kubernetes.io/") for key in annotations)
    )
    return Ingress(
        name=meta.text("name") or "?",
        namespace=meta.text("namespace") or "",
        annotations=annotations,
        annotation_where={key: ann.where(key) for key in annotations},
        services=tuple(services),
        nginx=nginx,
        where=document.where(),
    )


def _selector(node: Node) -> Selector:
    expressions = tuple(
        (item.text("key") or "", item.text("operator") or "", item.words("values") or ())
        for item in node.nodes("matchExpressions")
    )
    return Selector(node.strings("matchLabels"), expressions)


def build(documents: list[Document]) -> Inventory:
    inventory = Inventory()
    replicas: dict[tuple[str, str], int] = {}
    todo: list[tuple[Document, str]] = []
    for document in _expand_lists(documents):
        kind = str(document.body.get("kind"))
        top = Node(document, document.body, "")
        meta = top.node("metadata")
        if kind not in WORKLOADS + CONNECTING + HELPERS:
            inventory.skipped[kind] += 1
            continue
        placeholder = find_placeholder(document.body, document.body.line)
        if placeholder is not None:
            raise unrendered(document.path, *placeholder)
        if kind in HELPERS:
            inventory.skipped[kind] += 1
        if kind == "ConfigMap":
            inventory.config_maps[meta.text("namespace") or "", meta.text("name") or ""] = top
        elif kind == "HorizontalPodAutoscaler":
            spec = top.node("spec")
            target = spec.node("scaleTargetRef")
            replicas[target.text("kind") or "", target.text("name") or ""] = spec.integer("minReplicas", 1) or 1
        else:
            todo.append((document, kind))
    for document, kind in todo:  # after the ConfigMaps and autoscalers they may refer to
        top = Node(document, document.body, "")
        meta = top.node("metadata")
        name, namespace = meta.text("name") or "?", meta.text("namespace") or ""
        if kind in WORKLOADS:
            inventory.workloads.append(_workload(document, kind, inventory, replicas))
        elif kind == "Service":
            inventory.services.append(Service(name, namespace, top.node("spec").strings("selector"), document.where()))
        elif kind == "Ingress":
            inventory.ingresses.append(_ingress(document))
        else:
            inventory.budgets.append(
                Disruption(name, namespace, _selector(top.node("spec").node("selector")), document.where())
            )
    return inventory


def _expand_lists(documents: list[Document]) -> list[Document]:
    """``kind: List`` (what ``kubectl get -o yaml`` prints) holds its objects in ``items``."""
    out = []
    for document in documents:
        if document.body.get("kind") == "List":
            items = Node(document, document.body, "").nodes("items")
            out += [Document(document.path, item.body) for item in items if "kind" in item.body]
        else:
            out.append(document)
    return out


def max_unavailable(workload: Workload) -> int:
    """How many pods a rolling update may stop before their replacements are Ready (Kubernetes' rounding)."""
    count = workload.replicas or 0

    def resolve(value: int | str | None, default: str, up: bool) -> int:
        value = default if value is None else value
        if isinstance(value, int):
            return value
        share = int(value.rstrip("%")) * count / 100
        return math.ceil(share) if up else math.floor(share)

    surge = resolve(workload.max_surge, "25%", up=True)
    unavailable = resolve(workload.max_unavailable, "25%", up=False)
    return 1 if surge == 0 and unavailable == 0 else unavailable
