"""Rendering the chart and reading what it rendered, shared by the deploy tests.

`render` runs Helm 4's own template engine (helm-python-sdk bundles Helm's Go library), so
what the tests see is what `helm install` would send to the API server. The helpers below
answer the questions the tests ask of the objects: which pod spec, which container, how
much CPU is requested, does a toleration tolerate a taint, does a pod meet the
"restricted" Pod Security Standard.
"""

from __future__ import annotations

import copy
import pathlib
import re
from typing import Any, Iterable

import helm_python as helm
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "kiroku"
MANIFEST = ROOT / "deploy" / "kubernetes" / "kiroku.yaml"
RELEASE = "kiroku"
NAMESPACE = "default"

# The Kubernetes releases every rendering is validated against: the brief's 1.33 and the
# newest whose schemas kubernetes-validate ships.
KUBE_VERSIONS = ("1.33.0", "1.37.0")

# Helm's install order (pkg/release/util/kind_sorter.go), so the plain manifest applies in
# one pass: namespaced identities and RBAC before the workloads that use them.
INSTALL_ORDER = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
    "PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
    "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
    "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
    "APIService",
]

_chart = None


def load() -> helm.Chart:
    global _chart
    if _chart is None:
        _chart = helm.Chart.load(str(CHART))
    return _chart


def render_files(values: dict | None = None, *, name: str = RELEASE,
                 namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, NOTES.txt included."""
    return load().render(copy.deepcopy(values or {}), name=name, namespace=namespace,
                         is_install=True)


def chunks(files: dict[str, str]) -> list[tuple[str, str, dict]]:
    """(template path, text, object) for every rendered object, in Helm's install order."""
    out = []
    for path, text in files.items():
        if path.endswith("NOTES.txt"):
            continue
        for part in re.split(r"(?m)^---\s*$", text):
            obj = yaml.safe_load(part)
            if obj:
                out.append((path, part.strip("\n"), obj))
    out.sort(key=lambda c: (INSTALL_ORDER.index(c[2]["kind"]), c[2]["metadata"]["name"]))
    return out


def render(values: dict | None = None, **kw) -> list[dict]:
    """The rendered objects, in install order."""
    return [obj for _, _, obj in chunks(render_files(values, **kw))]


def notes(values: dict | None = None, **kw) -> str:
    files = render_files(values, **kw)
    return next(t for p, t in files.items() if p.endswith("NOTES.txt"))


def manifest_text() -> str:
    """The plain manifest: the default rendering as one file for `kubectl apply -f`."""
    header = (
        "# kiroku for `kubectl apply -f` without Helm: deploy/helm/kiroku rendered with its\n"
        f"# default values as release \"{RELEASE}\" in namespace \"{NAMESPACE}\".\n"
        "# Generated: do not edit. Change the chart, then run `deploy/tests/run update`;\n"
        "# deploy/tests fails while this file differs from the chart's default rendering.\n"
    )
    body = "".join(f"---\n# Source: {path}\n{text}\n"
                   for path, text, _ in chunks(render_files()))
    return header + body


def one(objs: Iterable[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0]


def kinds(objs: Iterable[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict, name: str, init: bool = False) -> dict:
    key = "initContainers" if init else "containers"
    for c in pod_spec(workload).get(key, []):
        if c["name"] == name:
            return c
    raise AssertionError(f"{workload['kind']} {workload['metadata']['name']} has no {key[:-1]} {name}")


def volume(workload: dict, name: str) -> dict:
    for v in pod_spec(workload).get("volumes", []):
        if v["name"] == name:
            return v
    raise AssertionError(f"{workload['metadata']['name']} has no volume {name}")


def arg(c: dict, flag: str) -> str | None:
    """The value after `flag` in a container's args, None when absent."""
    args = c.get("args", [])
    for i, a in enumerate(args):
        if a == flag:
            return args[i + 1]
    return None


def cpu(q: str | int | None) -> float:
    if q is None:
        return 0.0
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


_MEM = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def memory(q: str | int | None) -> int:
    if q is None:
        return 0
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    if not m or m.group(2) not in _MEM:
        raise AssertionError(f"unreadable memory quantity {q!r}")
    return int(float(m.group(1)) * _MEM[m.group(2)])


def effective_security(pod: dict, c: dict) -> dict:
    """A container's security settings with the pod's as fallback, as the kubelet applies them."""
    eff = dict(pod.get("securityContext") or {})
    eff.pop("fsGroup", None)
    eff.update(c.get("securityContext") or {})
    return eff


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if op == "Equal" and t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(pod: dict) -> list[str]:
    """Why a pod spec breaks the "restricted" Pod Security Standard (empty when it meets it)."""
    why = []
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(k):
            why.append(f"{k} is set")
    for v in pod.get("volumes", []):
        kind = next(k for k in v if k != "name")
        if kind not in RESTRICTED_VOLUMES:
            why.append(f"volume {v['name']} is a {kind}")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        sc = effective_security(pod, c)
        n = c["name"]
        if (sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            why.append(f"{n} has no RuntimeDefault seccomp profile")
        if sc.get("privileged"):
            why.append(f"{n} is privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            why.append(f"{n} allows privilege escalation")
        if sc.get("runAsNonRoot") is not True:
            why.append(f"{n} is not runAsNonRoot")
        if sc.get("runAsUser") == 0:
            why.append(f"{n} runs as uid 0")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            why.append(f"{n} does not drop ALL capabilities")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            why.append(f"{n} adds capabilities {sorted(extra)}")
        for p in c.get("ports", []):
            if p.get("hostPort"):
                why.append(f"{n} uses hostPort {p['hostPort']}")
    return why


def leaves(values: Any, prefix: str = "") -> dict[str, Any]:
    """Every settable leaf of values.yaml by dotted path; maps and lists count as leaves
    when they are free-form (empty by default, or lists)."""
    out = {}
    if isinstance(values, dict) and values and not _free_form(prefix):
        for k, v in values.items():
            out.update(leaves(v, f"{prefix}.{k}" if prefix else k))
    else:
        out[prefix] = values
    return out


# Maps whose keys are the user's (labels, resources, ...): one knob each, not one per key.
FREE_FORM = {"commonLabels", "server.resources", "agent.resources", "grafanaDatasource.labels"}


def _free_form(path: str) -> bool:
    return path in FREE_FORM


def default_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def set_path(values: dict, path: str, value: Any) -> dict:
    out = copy.deepcopy(values)
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return out
