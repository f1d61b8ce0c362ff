"""pyinit-doctor (issue 12): every finding, multi-document files, directories, JSON, exit codes, bad input.

Each test writes manifests into a temporary directory and runs the real
program (``python -m pyinit.doctor``, what the ``pyinit-doctor`` script runs)
as a process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from textwrap import dedent

import pytest
from doctor_support import ROOT, Report, codes, run_doctor, write


def deployment(
    container: str = "",
    pod: str = "",
    spec: str = "",
    name: str = "web",
    replicas: int = 1,
    labels: str = "{app: web}",
    annotations: str = "",
) -> str:
    """A Deployment with one container ``app``; the extra fields are YAML indented as they sit."""
    return TEMPLATE.format(
        name=name, replicas=replicas, labels=labels, spec=spec, annotations=annotations, pod=pod, container=container
    )


TEMPLATE = dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {name}
    spec:
      replicas: {replicas}
      selector:
        matchLabels: {labels}
    {spec}
      template:
        metadata:
          labels: {labels}
          annotations: {{{annotations}}}
        spec:
    {pod}
          containers:
            - name: app
              image: registry.example.com/{name}:1
    {container}
    """
)


def indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line if line.strip() else line for line in dedent(text).splitlines())


def container(text: str) -> str:
    return indent(text, 10)


def pod(text: str) -> str:
    return indent(text, 6)


def line_of(text: str, needle: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), 1) if needle in line)


def check(tmp_path: Path, *files: tuple[str, str], args: tuple[str, ...] = ()) -> Report:
    for name, text in files:
        write(tmp_path, name, text)
    report = run_doctor("--format", "json", *args, *(name for name, _ in files), cwd=tmp_path)
    assert report.code in (0, 1), report.err
    return report


def finding(report: Report, code: str) -> dict[str, object]:
    matching = [f for f in report.findings() if f["code"] == code]
    assert matching, (code, report.out)
    return matching[0]


PYINIT = 'command: ["pyinit", "--"]\nargs: ["gunicorn", "app:app"]\nports: [{containerPort: 8000}]\n'


def env(**values: str) -> str:
    return "env:\n" + "".join(f"  - name: {name}\n    value: {value!r}\n" for name, value in values.items())


# -- the delay and the budget ---------------------------------------------------


def test_no_delay_before_the_stop_signal_is_an_error_with_the_502_window(tmp_path: Path) -> None:
    report = check(tmp_path, ("d.yaml", deployment(container(PYINIT), replicas=3)))
    found = finding(report, "no-delay")
    assert found["severity"] == "error" and report.code == 1
    assert "1-5 s" in str(found["problem"]) and "1/3 of the traffic" in str(found["problem"])
    assert "PYINIT_PRE_STOP_DELAY" in str(found["fix"])


def test_a_delay_from_env_or_flag_or_prestop_is_enough(tmp_path: Path) -> None:
    by_env = deployment(container(PYINIT + env(PYINIT_PRE_STOP_DELAY="5")), name="a")
    by_flag = deployment(
        container('command: ["pyinit", "--pre-stop-delay", "5s", "--", "app"]\nports: [{containerPort: 80}]'), name="b"
    )
    by_sleep = deployment(
        container('command: ["app"]\nports: [{containerPort: 80}]\nlifecycle:\n  preStop:\n    sleep: {seconds: 5}'),
        name="c",
    )
    report = check(tmp_path, ("a.yaml", by_env), ("b.yaml", by_flag), ("c.yaml", by_sleep))
    assert "no-delay" not in codes(report.json())


def test_the_doctors_own_environment_never_counts(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment(container(PYINIT)))
    report = run_doctor("--format", "json", "d.yaml", cwd=tmp_path, env={"PYINIT_PRE_STOP_DELAY": "20"})
    assert "no-delay" in codes(report.json())


def test_dumb_init_reads_only_its_own_variables(tmp_path: Path) -> None:
    text = container(
        'command: ["dumb-init", "--", "app"]\nports: [{containerPort: 80}]\n' + env(PYINIT_PRE_STOP_DELAY="5")
    )
    report = check(tmp_path, ("d.yaml", deployment(text)))
    assert "no-delay" in codes(report.json())


def test_delay_kill_timeout_and_hooks_over_the_grace_period_give_the_numbers(tmp_path: Path) -> None:
    text = deployment(
        container(PYINIT + env(PYINIT_PRE_STOP_DELAY="20", PYINIT_KILL_TIMEOUT="15")),
        pod=pod("terminationGracePeriodSeconds: 30"),
    )
    report = check(tmp_path, ("d.yaml", text))
    found = finding(report, "budget")
    problem = str(found["problem"])
    assert "terminationGracePeriodSeconds 30" in problem and "15s" in problem and "20s" in problem
    assert found["field"] == "spec.template.spec.terminationGracePeriodSeconds"
    assert found["where"] == {"path": "d.yaml", "line": line_of(text, "terminationGracePeriodSeconds")}


def test_pyinit_planning_in_a_grace_period_the_prestop_already_used(tmp_path: Path) -> None:
    """pyinit's clock starts after the preStop hook: PYINIT_GRACE_PERIOD = terminationGracePeriodSeconds is too long."""
    text = container(
        PYINIT + env(PYINIT_PRE_STOP_DELAY="10", PYINIT_GRACE_PERIOD="45") + "lifecycle:\n  preStop:\n    exec:\n"
        '      command: ["sh", "-c", "sleep 15"]'
    )
    report = check(tmp_path, ("d.yaml", deployment(text, pod=pod("terminationGracePeriodSeconds: 45"))))
    assert "budget" in codes(report.json())
    assert "PYINIT_GRACE_PERIOD=30" in str(finding(report, "budget")["fix"])
    assert "double-delay" in codes(report.json())


def test_a_prestop_sleep_as_long_as_the_grace_period(tmp_path: Path) -> None:
    text = container('command: ["app"]\nlifecycle:\n  preStop:\n    exec:\n      command: ["sleep", "30"]')
    report = check(tmp_path, ("d.yaml", deployment(text)))  # the default grace period, 30 s
    assert "(the default)" in str(finding(report, "budget")["problem"])


def test_pyinit_without_a_grace_period_is_told_the_pods(tmp_path: Path) -> None:
    text = container(PYINIT + env(PYINIT_PRE_STOP_DELAY="5", PYINIT_POST_STOP="echo bye", PYINIT_HOOK_TIMEOUT="2"))
    found = finding(check(tmp_path, ("d.yaml", deployment(text))), "no-grace-period")
    assert found["severity"] == "warning" and "PYINIT_GRACE_PERIOD=30" in str(found["fix"])


def test_pyinit_refusing_to_start_points_at_the_variable(tmp_path: Path) -> None:
    text = deployment(container(PYINIT + env(PYINIT_PRE_STOP_DELAY="-3")))
    found = finding(check(tmp_path, ("d.yaml", text)), "init-refuses")
    assert "'-3'" in str(found["problem"])
    assert found["where"] == {"path": "d.yaml", "line": line_of(text, "name: PYINIT_PRE_STOP_DELAY")}
    text = container(PYINIT + env(PYINIT_PRE_STOP_DELAY="20", PYINIT_GRACE_PERIOD="10"))
    assert "10s" in str(finding(check(tmp_path, ("e.yaml", deployment(text))), "init-refuses")["problem"])


def test_dumb_init_given_a_pyinit_option_refuses(tmp_path: Path) -> None:
    text = container('command: ["dumb-init", "--pre-stop-delay", "5", "--", "app"]')
    found = finding(check(tmp_path, ("d.yaml", deployment(text))), "init-refuses")
    assert "dumb-init has no option --pre-stop-delay" in str(found["problem"])


# -- readiness ------------------------------------------------------------------


def test_no_readiness_probe(tmp_path: Path) -> None:
    assert "no-readiness-probe" in codes(check(tmp_path, ("d.yaml", deployment(container(PYINIT)))).json())


def test_a_probe_on_the_app_while_pyinit_serves_ready(tmp_path: Path) -> None:
    probe = "readinessProbe:\n  httpGet: {path: /healthz, port: http}\n"
    text = container(
        'command: ["pyinit", "--ready-port", "8081", "--pre-stop-delay", "5", "--", "app"]\n'
        "ports: [{name: http, containerPort: 8000}, {name: pyinit, containerPort: 8081}]\n" + probe
    )
    found = finding(check(tmp_path, ("d.yaml", deployment(text))), "probe-stays-ready")
    assert "port 8081" in str(found["fix"])


@pytest.mark.parametrize(("path", "code"), [("/live", "probe-stays-ready"), ("/health", "probe-404"), ("/ready", None)])
def test_a_probe_on_pyinits_port(tmp_path: Path, path: str, code: str | None) -> None:
    text = container(
        PYINIT
        + env(PYINIT_READY_PORT="8081", PYINIT_PRE_STOP_DELAY="5")
        + f"readinessProbe:\n  httpGet: {{path: {path}, port: pyinit}}\n  periodSeconds: 2\n  failureThreshold: 1\n"
        + "ports: [{name: pyinit, containerPort: 8081}]"
    )
    found = codes(check(tmp_path, ("d.yaml", deployment(text))).json())
    assert not {"probe-stays-ready", "probe-404", "probe-slow"} - {code} & found if code is None else code in found


def test_a_probe_slower_than_the_delay(tmp_path: Path) -> None:
    text = container(
        PYINIT
        + env(PYINIT_READY_PORT="8081", PYINIT_PRE_STOP_DELAY="5")
        + "readinessProbe:\n  httpGet: {path: /ready, port: 8081}\n"  # the defaults: 10 s x 3
    )
    found = finding(check(tmp_path, ("d.yaml", deployment(text))), "probe-slow")
    assert "10 x failureThreshold 3 = 30s" in str(found["problem"])


# -- rollout --------------------------------------------------------------------


def test_max_unavailable_on_few_replicas_and_no_pdb(tmp_path: Path) -> None:
    spec = "  strategy:\n    rollingUpdate: {maxUnavailable: 1}"
    report = check(tmp_path, ("d.yaml", deployment(container(PYINIT), spec=spec, replicas=2)))
    assert "1 of the 2 pods" in str(finding(report, "max-unavailable")["problem"])
    assert "app: web" in str(finding(report, "no-pdb")["fix"])


def test_the_default_strategy_on_three_replicas_rounds_to_zero(tmp_path: Path) -> None:
    report = check(tmp_path, ("d.yaml", deployment(container(PYINIT), replicas=3)))
    assert "max-unavailable" not in codes(report.json())


def test_recreate(tmp_path: Path) -> None:
    report = check(tmp_path, ("d.yaml", deployment(container(PYINIT), spec="  strategy: {type: Recreate}")))
    assert "recreate" in codes(report.json())


PDB = """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  maxUnavailable: 1
  selector:
    matchExpressions: [{key: app, operator: In, values: [web]}]
"""


def test_a_pdb_in_another_document_of_the_same_file(tmp_path: Path) -> None:
    text = (
        deployment(container(PYINIT), replicas=3)
        + "---\n"
        + PDB
        + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
    )
    report = check(tmp_path, ("d.yaml", text))
    assert "no-pdb" not in codes(report.json())
    assert report.json()["summary"]["skipped"] == {"ConfigMap": 1}
    assert "skipped, not checked: 1 ConfigMap" in report.json()["summary"]["line"]


def test_replicas_from_the_autoscaler(tmp_path: Path) -> None:
    hpa = (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  minReplicas: 3\n"
    )
    text = deployment(container(PYINIT)).replace("  replicas: 1\n", "")
    report = check(tmp_path, ("d.yaml", text), ("h.yaml", hpa))
    assert "minReplicas" in str(finding(report, "no-pdb")["problem"])


# -- the entrypoint -------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ('["sh", "-c", "python app.py"]', "shell-pid1"),
        ('["/bin/bash", "-c", "./migrate && python app.py"]', "shell-pid1"),
        ('["sh", "-c", "./migrate && exec pyinit --pre-stop-delay 5 -- python app.py"]', None),
        ('["sh", "-c", "trap \'sleep 5; kill $PID\' TERM; python app.py & PID=$!; wait"]', None),
        ('["tini", "--", "sh", "-c", "python app.py"]', "shell-child"),
        ('["tini", "-g", "--", "sh", "-c", "python app.py"]', None),
        ('["pyinit", "--pre-stop-delay", "5", "--", "sh", "-c", "python app.py"]', None),
        ('["pyinit", "-c", "--pre-stop-delay", "5", "--", "sh", "-c", "python app.py"]', "shell-child"),
    ],
)
def test_shells_between_the_platform_and_the_app(tmp_path: Path, command: str, code: str | None) -> None:
    found = codes(check(tmp_path, ("d.yaml", deployment(container(f"command: {command}")))).json())
    assert ({"shell-pid1", "shell-child"} & found) == ({code} if code else set()), found


def test_a_shell_form_entrypoint_in_the_dockerfile(tmp_path: Path) -> None:
    report = check(tmp_path, ("Dockerfile", "FROM python:3.12\nENTRYPOINT pyinit -- python app.py\nCMD --debug\n"))
    found = finding(report, "shell-pid1")
    assert found["field"] == "ENTRYPOINT" and found["where"] == {"path": "Dockerfile", "line": 2}
    assert "$0" in str(found["problem"]) and "exec form" in str(found["fix"])


def test_no_init_as_pid_1(tmp_path: Path) -> None:
    report = check(tmp_path, ("d.yaml", deployment(container('command: ["python", "app.py"]'))))
    assert finding(report, "no-init")["severity"] == "warning"
    shared = deployment(container('command: ["python", "app.py"]'), pod=pod("shareProcessNamespace: true"))
    assert "no-init" not in codes(check(tmp_path, ("e.yaml", shared)).json())


def test_stopsignal_and_stop_signal_disagreeing(tmp_path: Path) -> None:
    dockerfile = (
        'FROM python:3.12\nSTOPSIGNAL SIGQUIT\nENTRYPOINT ["pyinit", "--pre-stop-delay", "5", "--"]\nCMD ["app"]\n'
    )
    found = finding(check(tmp_path, ("Dockerfile", dockerfile)), "stop-signal")
    assert found["where"] == {"path": "Dockerfile", "line": 2} and "PYINIT_STOP_SIGNAL=QUIT" in str(found["fix"])
    agreeing = dockerfile.replace('"5", "--"', '"5", "--stop-signal", "QUIT", "--"')
    assert "stop-signal" not in codes(check(tmp_path, ("Dockerfile", agreeing)).json())


@pytest.mark.parametrize(
    ("command", "flagged"),
    [
        ('["pyinit", "--pre-stop-delay", "5", "--", "bundle", "exec", "passenger", "start"]', True),
        ('["pyinit", "--rewrite", "TERM:USR1", "--pre-stop-delay", "5", "--", "passenger", "start"]', False),
        ('["pyinit", "--pre-stop-delay", "5", "--stop-command", "passenger stop", "--", "passenger", "start"]', False),
        ('["dumb-init", "-r", "15:10", "--", "passenger", "start"]', False),
        ('["passenger", "start"]', True),
        ('["pyinit", "--pre-stop-delay", "5", "--", "nginx", "-g", "daemon off;"]', True),
    ],
)
def test_servers_that_drain_on_another_signal(tmp_path: Path, command: str, flagged: bool) -> None:
    found = codes(check(tmp_path, ("d.yaml", deployment(container(f"command: {command}")))).json())
    assert ("drain-signal" in found) is flagged, found


def test_the_image_of_the_container_comes_from_the_dockerfile(tmp_path: Path) -> None:
    dockerfile = (
        'FROM python:3.12\nENV PYINIT_PRE_STOP_DELAY=5\nENTRYPOINT ["pyinit", "--"]\nCMD ["python", "app.py"]\n'
    )
    text = deployment(container("ports: [{containerPort: 80}]\nargs: [gunicorn, app:app]"))
    report = check(tmp_path, ("web/Dockerfile", dockerfile), ("d.yaml", text))
    assert "no-delay" not in codes(report.json()) and report.json()["summary"]["images"] == 1
    (line,) = report.json()["groups"][0]["containers"]
    assert "pyinit -> gunicorn app:app" in line and "5s delay" in line
    # Without the Dockerfile the entrypoint is unknown and said to be.
    report = check(tmp_path, ("e.yaml", text))
    assert "entrypoint-unknown" in codes(report.json())


def test_env_from_a_configmap_given_and_from_a_secret_not(tmp_path: Path) -> None:
    config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {PYINIT_PRE_STOP_DELAY: '5'}\n"
    text = container(
        PYINIT + "envFrom: [{configMapRef: {name: settings}}]\n"
        "env:\n  - name: PYINIT_KILL_TIMEOUT\n    valueFrom: {secretKeyRef: {name: s, key: k}}"
    )
    report = check(tmp_path, ("d.yaml", deployment(text) + "---\n" + config_map))
    assert "no-delay" not in codes(report.json())
    assert "PYINIT_KILL_TIMEOUT" in str(finding(report, "env-unknown")["problem"])


def test_a_hooks_dir_is_not_looked_for_here(tmp_path: Path) -> None:
    text = container(PYINIT + env(PYINIT_HOOKS_DIR="/etc/pyinit", PYINIT_PRE_STOP_DELAY="5"))
    report = check(tmp_path, ("d.yaml", deployment(text)))
    assert "init-refuses" not in codes(report.json()) and "hooks-dir" in codes(report.json())


# -- ingress-nginx ----------------------------------------------------------------

SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n"


def ingress(annotations: str) -> str:
    return dedent(
        f"""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
          annotations: {{{annotations}}}
        spec:
          ingressClassName: nginx
          defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}
        """
    )


def front(tmp_path: Path, text: str, annotations: str, *extra: str) -> Report:
    return check(
        tmp_path, ("all.yaml", "---\n".join([deployment(container(text)), SERVICE, ingress(annotations), *extra]))
    )


def test_retrying_non_idempotent_requests(tmp_path: Path) -> None:
    annotation = 'nginx.ingress.kubernetes.io/proxy-next-upstream: "error timeout non_idempotent"'
    report = front(tmp_path, PYINIT + env(PYINIT_PRE_STOP_DELAY="5"), annotation)
    assert "retry-non-idempotent" in codes(report.json())


def test_no_retry_and_no_delay(tmp_path: Path) -> None:
    annotation = 'nginx.ingress.kubernetes.io/proxy-next-upstream: "off"'
    assert "next-upstream-off" in codes(front(tmp_path, PYINIT, annotation).json())
    delayed = front(tmp_path, PYINIT + env(PYINIT_PRE_STOP_DELAY="5"), annotation)
    assert "next-upstream-off" not in codes(delayed.json())


KEEPALIVE_CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data: {upstream-keepalive-timeout: "%s"}
"""


def test_an_upstream_keep_alive_not_shorter_than_the_apps(tmp_path: Path) -> None:
    gunicorn = 'command: ["pyinit", "--pre-stop-delay", "5", "--", "gunicorn", "--keep-alive", "30", "app:app"]'
    found = finding(front(tmp_path, gunicorn, ""), "keep-alive")  # nginx's default is 60 s
    assert "60s" in str(found["problem"]) and "30s" in str(found["problem"])
    assert "keep-alive" not in codes(front(tmp_path, gunicorn, "", KEEPALIVE_CONFIG % 25).json())
    assert "keep-alive" in codes(front(tmp_path, gunicorn, "", KEEPALIVE_CONFIG % 30).json())
    # Without the app's own timeout there is nothing to compare.
    assert "keep-alive" not in codes(front(tmp_path, PYINIT + env(PYINIT_PRE_STOP_DELAY="5"), "").json())


def test_proxy_timeouts_longer_than_the_drain(tmp_path: Path) -> None:
    text = PYINIT + env(PYINIT_PRE_STOP_DELAY="5", PYINIT_KILL_TIMEOUT="10")
    found = finding(front(tmp_path, text, 'nginx.ingress.kubernetes.io/proxy-read-timeout: "30"'), "proxy-timeout")
    assert "30s" in str(found["problem"]) and "10s after its stop signal" in str(found["problem"])
    short = front(tmp_path, text, 'nginx.ingress.kubernetes.io/proxy-read-timeout: "10"')
    assert "proxy-timeout" not in codes(short.json())


# -- inputs, output, exit codes ----------------------------------------------------


def test_directories_are_walked_and_connected(tmp_path: Path) -> None:
    write(
        tmp_path, "k8s/app/deployment.yml", deployment(container(PYINIT + env(PYINIT_PRE_STOP_DELAY="5")), replicas=3)
    )
    write(tmp_path, "k8s/policy/pdb.yaml", PDB)
    write(tmp_path, "k8s/.hidden/broken.yaml", "a: [")
    write(tmp_path, "k8s/README.md", "not a manifest")
    report = run_doctor("--format", "json", "k8s", cwd=tmp_path)
    assert report.code == 0, report.out + report.err
    assert "no-pdb" not in codes(report.json()) and report.json()["summary"]["workloads"] == 1


def test_a_list_and_documents_that_are_not_objects(tmp_path: Path) -> None:
    items = indent(deployment(container(PYINIT + env(PYINIT_PRE_STOP_DELAY="5"))), 2).replace(
        "  apiVersion", "- apiVersion", 1
    )
    text = f"apiVersion: v1\nkind: List\nitems:\n{items}\n---\nreplicaCount: 3\n---\n"
    report = check(tmp_path, ("list.yaml", text))
    assert report.json()["summary"]["workloads"] == 1 and report.json()["summary"]["other_documents"] == 1


def test_text_output_groups_per_workload_with_a_summary_line(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment(container(PYINIT)) + "---\n" + SERVICE + "---\n" + ingress(""))
    report = run_doctor("d.yaml", cwd=tmp_path)
    assert report.code == 1
    lines = report.out.splitlines()
    assert lines[0] == "Deployment/web  (d.yaml:1)"
    assert any(line.startswith("  error    container app: ") and "(d.yaml:" in line for line in lines)
    assert any(line.startswith("Ingress/web -> Deployment/web") for line in lines)
    assert lines[-1].startswith("1 workload, 1 Ingress, 0 Dockerfiles checked: 1 error, ")


def test_json_output(tmp_path: Path) -> None:
    report = check(tmp_path, ("d.yaml", deployment(container(PYINIT))))
    document = report.json()
    assert document["exit"] == report.code == 1
    assert set(document["summary"]) >= {"workloads", "ingresses", "images", "errors", "warnings", "notes", "skipped"}
    for item in report.findings():
        assert set(item) == {"severity", "code", "subject", "field", "where", "problem", "fix"}
        assert item["severity"] in ("error", "warning", "note") and item["where"]["path"] == "d.yaml"
    assert document["summary"]["errors"] == len([f for f in report.findings() if f["severity"] == "error"])


def test_exit_codes(tmp_path: Path) -> None:
    clean = deployment(
        container(
            PYINIT
            + env(PYINIT_PRE_STOP_DELAY="5", PYINIT_GRACE_PERIOD="30", PYINIT_READY_PORT="8081")
            + "readinessProbe:\n  httpGet: {path: /ready, port: 8081}\n  periodSeconds: 1\n  failureThreshold: 2"
        )
    )
    assert check(tmp_path, ("ok.yaml", clean)).code == 0
    warned = check(tmp_path, ("warned.yaml", deployment(container(PYINIT + env(PYINIT_PRE_STOP_DELAY="5")))))
    assert warned.code == 0 and warned.findings()
    assert check(tmp_path, ("bad.yaml", deployment(container(PYINIT)))).code == 1


def test_stdin(tmp_path: Path) -> None:
    report = run_doctor("--format", "json", "-", cwd=tmp_path, stdin=deployment(container(PYINIT)))
    assert report.code == 1 and report.findings()[0]["where"]["path"] == "<stdin>"


HELM = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
spec:
  {{- if not .Values.autoscaling.enabled }}
  replicas: {{ .Values.replicaCount }}
  {{- end }}
"""


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("broken.yaml", "kind: Deployment\nspec:\n  replicas: [1\n", "broken.yaml:4: not valid YAML"),
        ("helm.yaml", HELM, 'helm.yaml:4: an unrendered template placeholder {{ include "web.fullname" . }}'),
        (
            "quoted.yaml",
            deployment().replace("registry.example.com/web:1", '"{{ .Values.image }}"'),
            "quoted.yaml:18: an unrendered template placeholder {{ .Values.image }}",
        ),
        (
            "type.yaml",
            deployment().replace("replicas: 1", "replicas: three"),
            "type.yaml:6: spec.replicas: expected a whole number, got 'three'",
        ),
        (
            "shape.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: {app: x}\n",
            "shape.yaml:5: spec.containers: expected a list of mappings",
        ),
        (
            "signal.yaml",
            deployment(container("lifecycle: {stopSignal: SIGNOPE}")),
            "signal.yaml:17: lifecycle.stopSignal: 'SIGNOPE' is not a known signal name",
        ),
        ("kind.yaml", "apiVersion: v1\nkind: [Pod]\n", "kind.yaml:2: kind: expected a string, got ['Pod']"),
        ("Dockerfile", "FROM x\nRUNN echo\n", "Dockerfile:2: unknown instruction 'RUNN'"),
        ("Dockerfile", "# no FROM here\n", "Dockerfile: no FROM: not a Dockerfile"),
        ("Dockerfile", "FROM x\nSTOPSIGNAL NOPE\n", "Dockerfile:2: STOPSIGNAL: 'NOPE' is not a known signal name"),
        ("latin1.yaml", "kind: Pod\nname: caf\xe9\n", "latin1.yaml: not UTF-8 text"),
        ("missing.yaml", None, "missing.yaml: no such file or directory"),
        ("empty", "", "empty: no Kubernetes YAML (*.yaml, *.yml) or Dockerfile in this directory"),
    ],
)
def test_unreadable_input_exits_2_naming_file_and_line(tmp_path: Path, name: str, text: str | None, line: str) -> None:
    if name == "latin1.yaml":
        (tmp_path / name).write_bytes(text.encode("latin-1"))  # type: ignore[union-attr]
    elif name == "empty":
        (tmp_path / name).mkdir()
    elif text is not None:
        write(tmp_path, name, text)
    report = run_doctor(name, cwd=tmp_path)
    assert report.code == 2 and report.out == ""
    (only,) = report.err.splitlines()
    assert only.startswith(f"[pyinit-doctor] error: {line}"), only


def test_a_prometheus_rule_with_its_own_braces_is_skipped_not_refused(tmp_path: Path) -> None:
    rule = (
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\n"
        "spec:\n  summary: '{{ $labels.service }}'\n"
    )
    report = check(tmp_path, ("rule.yaml", rule))
    assert report.code == 0 and report.json()["summary"]["skipped"] == {"PrometheusRule": 1}


@pytest.mark.parametrize("args", [["--frmat", "json", "."], ["--format", "xml", "."]])
def test_bad_options_exit_2_in_one_line(args: list[str]) -> None:
    report = run_doctor(*args)
    assert report.code == 2 and len(report.err.splitlines()) == 1 and report.err.startswith("[pyinit-doctor] error:")


def test_without_pyyaml_the_doctor_asks_for_it_in_one_line(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", deployment(container(PYINIT)))
    blocked = [
        sys.executable,
        "-c",
        "import sys; sys.modules['yaml'] = None; from pyinit.doctor.__main__ import main; main()",
    ]
    report = run_doctor("d.yaml", cwd=tmp_path, python=blocked)
    assert report.code == 2 and report.err == (
        "[pyinit-doctor] error: d.yaml: reading YAML needs PyYAML, the doctor extra: "
        "pip install 'pyinit-containers[doctor]'\n"
    )
    write(tmp_path, "Dockerfile", 'FROM x\nENTRYPOINT ["pyinit", "--pre-stop-delay", "3", "--"]\nCMD ["app"]\n')
    assert run_doctor("Dockerfile", cwd=tmp_path, python=blocked).code == 0  # Dockerfiles need no PyYAML


def test_the_console_script_entry_point() -> None:
    """pyproject's pyinit-doctor runs pyinit.doctor.__main__:main, as the generated script does."""
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["pyinit-doctor"].partition(":")
    script = [sys.executable, "-c", f"import sys; from {module} import {function}; sys.exit({function}())"]
    report = run_doctor("--help", python=script)
    assert report.code == 0 and "Usage: pyinit-doctor [OPTIONS] [PATH]..." in report.out
    assert scripts["pyinit"] == "pyinit.__main__:main"  # `pyinit doctor` stays a command named doctor
