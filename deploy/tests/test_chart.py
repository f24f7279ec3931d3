"""What a user relies on when they `helm install` the chart: it validates against real
Kubernetes schemas, fits a one-node kind cluster, runs without root where it can, mounts
host paths read-only, asks for no more RBAC than it needs, and wires its parts together
(Service -> pod port, agent -> Service, Grafana -> Service, config -> mounts)."""

from __future__ import annotations

import re
import unittest

import kubernetes_validate
import yaml

import chart
from chart import arg, container, cpu, memory, one, pod_spec, render, volume

# Every documented option set, rendered and validated like the defaults.
CASES = {
    "defaults": {},
    "agent in API mode": {"agent": {"mode": "api"}},
    "multi-tenant": {"auth": "header", "tenant": "team-a"},
    "no init step": {"persistence": {"fixPermissions": False}},
    "no persistence": {"persistence": {"enabled": False}},
    "restricted namespace": {"agent": {"mode": "api"}, "persistence": {"fixPermissions": False}},
    "storage class and size": {"persistence": {"storageClass": "fast", "size": "50Gi"}},
    "server only": {"agent": {"enabled": False}, "grafanaDatasource": {"enabled": False}},
    "grafana elsewhere": {"grafanaDatasource": {"namespace": "monitoring", "name": "Logs", "isDefault": True}},
    "push credentials": {"agent": {"url": "https://logs.example.com", "bearerToken": {"secretName": "loki-token"}}},
    "basic auth in API mode": {"agent": {"mode": "api", "url": "https://logs.example.com",
                                         "basicAuth": {"username": "kiroku", "passwordSecretName": "loki-pw"}}},
    "retention": {"server": {"retention": "30d", "retentionMaxDisk": "50GiB"}},
    "scheduling": {
        "server": {"nodeSelector": {"disk": "ssd"},
                   "tolerations": [{"key": "logs", "operator": "Exists", "effect": "NoSchedule"}],
                   "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                       "nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}}},
        "agent": {"nodeSelector": {"kubernetes.io/os": "linux"}, "priorityClassName": "system-node-critical"},
    },
    "extras": {
        "commonLabels": {"team": "platform"},
        "imagePullSecrets": [{"name": "regcred"}],
        "image": {"repository": "registry.example.com/kiroku", "tag": "dev", "pullPolicy": "Always"},
        "server": {"extraArgs": ["--log-format", "json"], "extraEnv": [{"name": "TZ", "value": "UTC"}],
                   "extraConfig": {"max_query_series": 1000}, "podAnnotations": {"a": "b"}},
        "agent": {"extraArgs": ["--events", "off"], "extraEnv": [{"name": "TZ", "value": "UTC"}],
                  "url": "https://loki.example.com", "podAnnotations": {"a": "b"}},
        "service": {"type": "NodePort", "port": 8080, "annotations": {"a": "b"}},
    },
}

KIND_BUDGET_CPU = 0.100
KIND_BUDGET_MEMORY = 128 * 2**20
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


AGENT_SRC = chart.ROOT / "crates" / "agent" / "src"
RESOURCE_OF = {"Pod": "pods", "Event": "events", "Node": "nodes", "Namespace": "namespaces",
               "Service": "services", "Endpoints": "endpoints", "ReplicaSet": "replicasets",
               "Lease": "leases"}
# Granted by the namespaced Role in the release's namespace, never cluster-wide.
NAMESPACED = {"leases"}


def agent_api_resources() -> set[str] | None:
    """The API resources the agent's code reads (`Api<Pod>`, `.log_stream(`), from its source."""
    files = [p for p in AGENT_SRC.rglob("*.rs") if "testkit" not in p.parts and p.name != "testkit.rs"]
    used = set()
    for path in files:
        text = path.read_text().split("#[cfg(test)]")[0]
        for kind in re.findall(r"\bApi<(\w+)>", text):
            if kind in RESOURCE_OF:
                used.add(RESOURCE_OF[kind])
            elif len(kind) > 1:
                raise AssertionError(f"{path}: the agent reads {kind}: add it to RESOURCE_OF and the ClusterRole")
        if re.search(r"\.(log_stream|logs)\(", text):
            used.add("pods/log")
    return used or None


def server(objs):
    return one(objs, "StatefulSet")


def agent(objs):
    return one(objs, "DaemonSet")


class Validation(unittest.TestCase):
    def test_every_case_validates_against_kubernetes_schemas(self):
        for case, values in CASES.items():
            objs = render(values)
            self.assertTrue(objs, case)
            for version in chart.KUBE_VERSIONS:
                for obj in objs:
                    with self.subTest(case=case, version=version, obj=f"{obj['kind']}/{obj['metadata']['name']}"):
                        try:
                            kubernetes_validate.validate(obj, version, strict=True)
                        except kubernetes_validate.ValidationError as e:
                            self.fail(f"{case}: {obj['kind']} {obj['metadata']['name']} is invalid "
                                      f"for Kubernetes {version}: {e.message} at {list(e.path)}")

    def test_helm_lint_is_clean(self):
        import helm_python as helm
        report = helm.lint(str(chart.CHART), strict=True)
        self.assertEqual(report["errors"], [])
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        self.assertEqual(problems, [], "helm lint warnings or errors")

    def test_schema_rejects_what_the_chart_would_ignore(self):
        import helm_python as helm
        bad = {
            "unknown top-level key": {"retention": "7d"},
            "unknown server key": {"server": {"replicas": 3}},
            "agent mode typo": {"agent": {"mode": "file"}},
            "auth mode typo": {"auth": "multi"},
            "header mode without a tenant": {"auth": "header"},
            "tenant without header mode": {"tenant": "team-a"},
            "unparseable retention": {"server": {"retention": "a week"}},
            "unparseable disk bound": {"server": {"retentionMaxDisk": "lots"}},
            "unparseable size": {"persistence": {"size": "ten gigs"}},
            "extraConfig shadowing a chart value": {"server": {"extraConfig": {"data_dir": "/tmp"}}},
            "basic auth without a password": {"agent": {"basicAuth": {"username": "kiroku"}}},
            "password without a user": {"agent": {"basicAuth": {"passwordSecretName": "pw"}}},
            "two kinds of credentials": {"agent": {"bearerToken": {"secretName": "t"},
                                                   "basicAuth": {"username": "u", "passwordSecretName": "pw"}}},
        }
        for why, values in bad.items():
            with self.subTest(why), self.assertRaises(helm.HelmValuesError, msg=why):
                render(values)


class Server(unittest.TestCase):
    def test_runs_as_uid_10001_with_fsgroup(self):
        sts = server(render())
        psc = pod_spec(sts)["securityContext"]
        self.assertEqual(psc["runAsUser"], 10001)
        self.assertEqual(psc["runAsGroup"], 10001)
        self.assertIs(psc["runAsNonRoot"], True)
        self.assertEqual(psc["fsGroup"], 10001)
        self.assertEqual(psc["fsGroupChangePolicy"], "OnRootMismatch")
        self.assertEqual(psc["seccompProfile"]["type"], "RuntimeDefault")
        sc = container(sts, "server")["securityContext"]
        self.assertNotIn("runAsUser", sc, "the server container must not override uid 10001")
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("add", sc["capabilities"])

    def test_one_replica_with_a_10gi_claim_on_the_default_storage_class(self):
        sts = server(render())
        self.assertEqual(sts["spec"]["replicas"], 1)
        [claim] = sts["spec"]["volumeClaimTemplates"]
        self.assertEqual(claim["metadata"]["name"], "data")
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "10Gi")
        self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteOnce"])
        self.assertNotIn("storageClassName", claim["spec"], "empty storageClass must mean the default class")
        mount = next(m for m in container(sts, "server")["volumeMounts"] if m["name"] == "data")
        self.assertEqual(mount["mountPath"], "/var/lib/kiroku")

    def test_storage_class_and_size(self):
        sts = server(render(CASES["storage class and size"]))
        [claim] = sts["spec"]["volumeClaimTemplates"]
        self.assertEqual(claim["spec"]["storageClassName"], "fast")
        self.assertEqual(claim["spec"]["resources"]["requests"]["storage"], "50Gi")

    def test_without_persistence_data_is_an_emptydir_and_notes_warn(self):
        values = CASES["no persistence"]
        sts = server(render(values))
        self.assertNotIn("volumeClaimTemplates", sts["spec"])
        self.assertIn("emptyDir", volume(sts, "data"))
        self.assertNotIn("initContainers", pod_spec(sts))
        self.assertIn("lost when the pod is deleted", chart.notes(values))

    def test_fix_permissions_init_step_is_on_by_default_and_narrow(self):
        sts = server(render())
        init = container(sts, "fix-permissions", init=True)
        sc = init["securityContext"]
        self.assertEqual(sc["runAsUser"], 0)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertLessEqual(set(sc["capabilities"]["add"]), {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"})
        self.assertEqual([m["mountPath"] for m in init["volumeMounts"]], ["/var/lib/kiroku"])
        script = init["command"][-1]
        self.assertIn("setpriv --reuid=10001 --regid=10001", script, "must test writability as uid 10001")
        self.assertIn("chown -R 10001:10001", script)
        self.assertEqual(init["image"], container(sts, "server")["image"], "one image to load into kind")

    def test_fix_permissions_false_removes_the_root_container(self):
        sts = server(render(CASES["no init step"]))
        self.assertNotIn("initContainers", pod_spec(sts))

    def test_probes_use_ready(self):
        c = container(server(render()), "server")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            self.assertEqual(c[probe]["httpGet"]["path"], "/ready", probe)
            self.assertEqual(c[probe]["httpGet"]["port"], "http", probe)
        self.assertEqual(c["ports"], [{"name": "http", "containerPort": 3100, "protocol": "TCP"}])

    def test_config_matches_the_pod(self):
        objs = render()
        cm = one(objs, "ConfigMap", "kiroku-config")
        config = yaml.safe_load(cm["data"]["config.yaml"])
        self.assertEqual(config, {"listen": "0.0.0.0:3100", "data_dir": "/var/lib/kiroku",
                                  "retention": "7d", "retention_max_disk": "10%", "auth": "none"})
        sts = server(objs)
        c = container(sts, "server")
        self.assertEqual(c["args"], ["server", "--config", "/etc/kiroku/config.yaml"])
        self.assertEqual(volume(sts, "config")["configMap"]["name"], "kiroku-config")
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        self.assertEqual(mounts["config"]["mountPath"], "/etc/kiroku")
        self.assertEqual(mounts["data"]["mountPath"], config["data_dir"])
        self.assertEqual(int(config["listen"].rsplit(":", 1)[1]), c["ports"][0]["containerPort"])

    def test_config_change_rolls_the_pod(self):
        a = server(render())["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        b = server(render(CASES["retention"]))["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        self.assertNotEqual(a, b)

    def test_retention_and_extra_config_reach_the_config_file(self):
        objs = render({"server": {"retention": "30d", "retentionMaxDisk": "50GiB",
                                  "extraConfig": {"max_query_series": 1000}}})
        config = yaml.safe_load(one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"])
        self.assertEqual(config["retention"], "30d")
        self.assertEqual(config["retention_max_disk"], "50GiB")
        self.assertEqual(config["max_query_series"], 1000)

    def test_server_has_no_api_token(self):
        objs = render()
        self.assertIs(pod_spec(server(objs))["automountServiceAccountToken"], False)
        self.assertIs(one(objs, "ServiceAccount", "kiroku")["automountServiceAccountToken"], False)


class ServiceAndNotes(unittest.TestCase):
    def test_service_kiroku_on_3100_selects_the_server_pod(self):
        objs = render()
        svc = one(objs, "Service", "kiroku")
        self.assertEqual(svc["spec"]["type"], "ClusterIP")
        self.assertEqual(svc["spec"]["ports"], [{"name": "http", "port": 3100, "targetPort": "http", "protocol": "TCP"}])
        pod_labels = server(objs)["spec"]["template"]["metadata"]["labels"]
        for k, v in svc["spec"]["selector"].items():
            self.assertEqual(pod_labels.get(k), v)
        agent_labels = agent(objs)["spec"]["template"]["metadata"]["labels"]
        self.assertFalse(all(agent_labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
                         "the Service must not send queries to agents")
        headless = one(objs, "Service", "kiroku-headless")
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertEqual(server(objs)["spec"]["serviceName"], "kiroku-headless")

    def test_notes_print_the_exact_port_forward_line(self):
        text = chart.notes()
        self.assertIn("kubectl --namespace default port-forward svc/kiroku 3100\n", text)
        self.assertIn("http://localhost:3100", text)
        text = chart.notes({"service": {"port": 8080}}, name="logs", namespace="observability")
        self.assertIn("kubectl --namespace observability port-forward svc/logs-kiroku 8080\n", text)


class Agent(unittest.TestCase):
    def test_runs_on_every_node_including_the_control_plane(self):
        ds = agent(render())
        self.assertTrue(chart.tolerates(pod_spec(ds)["tolerations"], CONTROL_PLANE_TAINT))
        self.assertNotIn("nodeSelector", pod_spec(ds))
        self.assertNotIn("affinity", pod_spec(ds))

    def test_files_mode_mounts_host_logs_read_only_and_keeps_state_on_the_host(self):
        ds = agent(render())
        pod = pod_spec(ds)
        c = container(ds, "agent")
        host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
        self.assertEqual(host["pods"], "/var/log/pods")
        self.assertTrue(host["state"].startswith("/var/lib/kiroku-agent/"), host["state"])
        for m in c["volumeMounts"]:
            if m["name"] in host and m["name"] != "state":
                self.assertIs(m.get("readOnly"), True, f"host mount {m['name']} must be read-only")
        state_mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "state")
        self.assertTrue(arg(c, "--positions").startswith(state_mount + "/"))
        self.assertTrue(arg(c, "--buffer-dir").startswith(state_mount + "/"))
        self.assertEqual(arg(c, "--pods-dir"), "/var/log/pods")
        self.assertEqual(arg(c, "--mode"), "files")
        self.assertFalse(pod.get("hostNetwork") or pod.get("hostPID"))

    def test_files_mode_keeps_root_powerless(self):
        ds = agent(render())
        sc = chart.effective_security(pod_spec(ds), container(ds, "agent"))
        self.assertNotEqual(sc.get("privileged"), True)
        self.assertIs(sc["allowPrivilegeEscalation"], False)
        self.assertIs(sc["readOnlyRootFilesystem"], True)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertNotIn("add", sc["capabilities"])

    def test_releases_do_not_share_positions(self):
        a = volume(agent(render()), "state")["hostPath"]["path"]
        b = volume(agent(render(name="other")), "state")["hostPath"]["path"]
        self.assertNotEqual(a, b)

    def test_api_mode_has_no_host_mounts_and_runs_as_non_root(self):
        ds = agent(render(CASES["agent in API mode"]))
        pod = pod_spec(ds)
        self.assertEqual([v["name"] for v in pod["volumes"] if "hostPath" in v], [])
        c = container(ds, "agent")
        self.assertEqual(arg(c, "--mode"), "api")
        self.assertIsNone(arg(c, "--pods-dir"))
        self.assertIs(pod["securityContext"]["runAsNonRoot"], True)
        self.assertEqual(pod["securityContext"]["runAsUser"], 10001)

    def test_pushes_to_the_service_with_its_node_name(self):
        objs = render()
        c = container(agent(objs), "agent")
        svc = one(objs, "Service", "kiroku")
        self.assertEqual(arg(c, "--url"), f"http://{svc['metadata']['name']}.default.svc:{svc['spec']['ports'][0]['port']}")
        self.assertEqual(arg(c, "--node-name"), "$(NODE_NAME)")
        env = {e["name"]: e for e in c["env"]}
        self.assertEqual(env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")
        self.assertIsNone(arg(c, "--org-id"), "single-tenant by default")

    def test_probes_and_metrics_port(self):
        c = container(agent(render()), "agent")
        self.assertEqual(arg(c, "--listen"), "0.0.0.0:3101")
        self.assertEqual(c["ports"][0]["containerPort"], 3101)
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(c[probe]["httpGet"]["path"], "/ready")
            self.assertEqual(c[probe]["httpGet"]["port"], c["ports"][0]["name"])

    def test_multi_tenant_mode_sends_the_tenant(self):
        objs = render(CASES["multi-tenant"])
        self.assertEqual(arg(container(agent(objs), "agent"), "--org-id"), "team-a")
        config = yaml.safe_load(one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"])
        self.assertEqual(config["auth"], "header")
        ds = yaml.safe_load(one(objs, "ConfigMap", "kiroku-grafana-datasource")["data"]["kiroku-datasource.yaml"])
        source = ds["datasources"][0]
        self.assertEqual(source["jsonData"]["httpHeaderName1"], "X-Scope-OrgID")
        self.assertEqual(source["secureJsonData"]["httpHeaderValue1"], "team-a")

    def test_credentials_are_mounted_read_only_from_secrets(self):
        for case, flag in (("push credentials", "--bearer-token-file"), ("basic auth in API mode", "--password-file")):
            ds = agent(render(CASES[case]))
            c = container(ds, "agent")
            path = arg(c, flag)
            mount = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
            self.assertIs(mount["readOnly"], True, case)
            secret = volume(ds, mount["name"])["secret"]
            self.assertEqual(secret["defaultMode"], 0o440, case)
            self.assertFalse([e for e in c["env"] if "secretKeyRef" in e.get("valueFrom", {})],
                             "credentials stay out of the environment")

    def test_disabled_agent_renders_nothing_of_it(self):
        objs = render(CASES["server only"])
        self.assertEqual([o for o in objs if o["metadata"]["labels"].get("app.kubernetes.io/component") == "agent"], [])


class Rbac(unittest.TestCase):
    READ = {"get", "list", "watch"}

    def rules(self, values=None):
        return one(render(values), "ClusterRole")["rules"]

    def test_files_mode_reads_metadata_only(self):
        granted = {}
        for rule in self.rules():
            self.assertEqual(rule["apiGroups"], [""])
            self.assertNotIn("*", rule["resources"])
            self.assertLessEqual(set(rule["verbs"]), self.READ)
            for r in rule["resources"]:
                granted.setdefault(r, set()).update(rule["verbs"])
        self.assertEqual(granted, {r: self.READ for r in ("pods", "events")})

    def test_pods_log_only_in_api_mode_and_only_get(self):
        rules = self.rules(CASES["agent in API mode"])
        logs = [r for r in rules if "pods/log" in r["resources"]]
        self.assertEqual(len(logs), 1)
        self.assertEqual(logs[0]["verbs"], ["get"])
        self.assertFalse(any("pods/log" in r["resources"] for r in self.rules()))
        for r in rules:
            self.assertLessEqual(set(r["verbs"]), self.READ)

    def test_grants_exactly_what_the_agent_code_uses(self):
        used = agent_api_resources()
        if used is None:
            self.skipTest("crates/agent has no Kubernetes client code yet")
        def granted(values):
            return {r for rule in self.rules(values) for r in rule["resources"]}
        self.assertEqual(granted(CASES["agent in API mode"]), used - NAMESPACED,
                         "the agent reads other API resources than its ClusterRole grants")
        self.assertEqual(granted(None), used - {"pods/log"} - NAMESPACED)
        role = {r for rule in one(render(), "Role")["rules"] for r in rule["resources"]}
        self.assertEqual(role, used & NAMESPACED, "the agent uses other namespaced resources than its Role grants")

    def test_leases_only_in_the_release_namespace_and_only_what_the_election_needs(self):
        leases = set()
        for release in ("kiroku", "other"):
            objs = render(name=release, namespace="logging")
            ds = agent(objs)
            c = container(ds, "agent")
            lease = arg(c, "--events-lease")
            self.assertEqual(lease, ds["metadata"]["name"], "named like its agents")
            leases.add(lease)
            # Nothing about leases cluster-wide.
            for rule in self.rules_of(objs, "ClusterRole"):
                self.assertNotIn("coordination.k8s.io", rule["apiGroups"])
                self.assertNotIn("leases", rule["resources"])
            role = one(objs, "Role")
            self.assertEqual(role["metadata"]["namespace"], "logging")
            self.assertEqual(ds["metadata"]["namespace"], "logging")
            verbs = {}
            for rule in role["rules"]:
                self.assertEqual(rule["apiGroups"], ["coordination.k8s.io"])
                self.assertEqual(rule["resources"], ["leases"])
                for v in rule["verbs"]:
                    # create cannot be limited to a name; everything else is this Lease's.
                    names = rule.get("resourceNames")
                    if v == "create":
                        self.assertIsNone(names)
                    else:
                        self.assertEqual(names, [lease], v)
                    verbs.setdefault(v, 0)
                    verbs[v] += 1
            self.assertEqual(set(verbs), {"get", "create", "update"}, "no list, watch, patch or delete")
            binding = one(objs, "RoleBinding")
            self.assertEqual(binding["metadata"]["namespace"], "logging")
            self.assertEqual(binding["roleRef"], {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                  "name": role["metadata"]["name"]})
            self.assertEqual(binding["subjects"], [{"kind": "ServiceAccount", "name": pod_spec(ds)["serviceAccountName"],
                                                    "namespace": "logging"}])
            # The agent finds the Lease in its own namespace, which the Role covers.
            env = {e["name"]: e for e in c["env"]}
            self.assertEqual(env["POD_NAMESPACE"]["valueFrom"], {"fieldRef": {"fieldPath": "metadata.namespace"}})
        self.assertEqual(len(leases), 2, "two releases in one namespace elect apart")

    @staticmethod
    def rules_of(objs, kind):
        return [rule for o in objs if o["kind"] == kind for rule in o["rules"]]

    def test_binding_names_the_agents_account_in_the_release_namespace(self):
        objs = render(namespace="logging")
        binding = one(objs, "ClusterRoleBinding")
        self.assertEqual(binding["roleRef"]["name"], one(objs, "ClusterRole")["metadata"]["name"])
        [subject] = binding["subjects"]
        self.assertEqual(subject, {"kind": "ServiceAccount", "name": "kiroku-agent", "namespace": "logging"})
        self.assertEqual(pod_spec(agent(objs))["serviceAccountName"], "kiroku-agent")


class KindBudget(unittest.TestCase):
    def requests(self, objs):
        total_cpu, total_mem = 0.0, 0
        for w in (server(objs), agent(objs)):
            pod = pod_spec(w)
            main_cpu = sum(cpu(c["resources"]["requests"].get("cpu")) for c in pod["containers"])
            main_mem = sum(memory(c["resources"]["requests"].get("memory")) for c in pod["containers"])
            # A pod's request is the larger of its init containers' and its containers' sum.
            init_cpu = max([cpu(c["resources"]["requests"].get("cpu")) for c in pod.get("initContainers", [])] or [0])
            init_mem = max([memory(c["resources"]["requests"].get("memory")) for c in pod.get("initContainers", [])] or [0])
            total_cpu += max(main_cpu, init_cpu)
            total_mem += max(main_mem, init_mem)
        return total_cpu, total_mem

    def test_server_and_one_agent_fit_a_one_node_kind_cluster(self):
        for case in ("defaults", "agent in API mode"):
            total_cpu, total_mem = self.requests(render(CASES[case]))
            self.assertLessEqual(total_cpu, KIND_BUDGET_CPU + 1e-9, case)
            self.assertLessEqual(total_mem, KIND_BUDGET_MEMORY, case)

    def test_every_container_has_requests_and_a_memory_limit(self):
        objs = render()
        for w in (server(objs), agent(objs)):
            pod = pod_spec(w)
            for c in pod.get("initContainers", []) + pod["containers"]:
                self.assertIn("cpu", c["resources"]["requests"], c["name"])
                self.assertIn("memory", c["resources"]["requests"], c["name"])
                self.assertIn("memory", c["resources"]["limits"], c["name"])


class PodSecurity(unittest.TestCase):
    def test_api_mode_without_init_step_meets_restricted(self):
        objs = render(CASES["restricted namespace"])
        for w in (server(objs), agent(objs)):
            self.assertEqual(chart.restricted_violations(pod_spec(w)), [], w["kind"])

    def test_defaults_break_restricted_only_where_documented(self):
        objs = render()
        self.assertEqual(chart.restricted_violations(pod_spec(server(objs))),
                         ["fix-permissions is not runAsNonRoot", "fix-permissions runs as uid 0",
                          "fix-permissions adds capabilities ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID']"])
        why = chart.restricted_violations(pod_spec(agent(objs)))
        self.assertIn("volume pods is a hostPath", why)
        self.assertFalse([w for w in why if "privilege" in w or "seccomp" in w or "ALL" in w], why)


class GrafanaDatasource(unittest.TestCase):
    def test_sidecar_label_and_a_loki_source_pointing_at_the_service(self):
        objs = render()
        cm = one(objs, "ConfigMap", "kiroku-grafana-datasource")
        self.assertEqual(cm["metadata"]["labels"]["grafana_datasource"], "1")
        doc = yaml.safe_load(cm["data"]["kiroku-datasource.yaml"])
        self.assertEqual(doc["apiVersion"], 1)
        [source] = doc["datasources"]
        self.assertEqual(source["type"], "loki")
        self.assertEqual(source["access"], "proxy")
        self.assertEqual(source["name"], "kiroku")
        self.assertEqual(source["url"], "http://kiroku.default.svc:3100")
        self.assertIs(source["isDefault"], False)
        self.assertNotIn("secureJsonData", source, "no tenant header in single-tenant mode")

    def test_can_live_in_grafanas_namespace_and_still_reach_the_server(self):
        cm = one(render(CASES["grafana elsewhere"]), "ConfigMap", "kiroku-grafana-datasource")
        self.assertEqual(cm["metadata"]["namespace"], "monitoring")
        [source] = yaml.safe_load(cm["data"]["kiroku-datasource.yaml"])["datasources"]
        self.assertEqual(source["url"], "http://kiroku.default.svc:3100")
        self.assertEqual(source["name"], "Logs")
        self.assertIs(source["isDefault"], True)


if __name__ == "__main__":
    unittest.main()
