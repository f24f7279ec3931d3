"""The Kubernetes guides are followed blind (no cluster runs here to try them), so what
they quote is checked against the chart and the code it comes from: the notes Helm
prints, every `--set` they suggest, the image tag, the objects `kubectl apply` creates,
the resource figures, and the server's own error message."""

from __future__ import annotations

import re
import shlex
import unittest

import helm_python as helm

import chart

DOCS = chart.ROOT / "docs" / "kubernetes"
GUIDES = sorted(DOCS.glob("*.md"))
STARTUP = chart.ROOT / "crates" / "server" / "src" / "startup.rs"
# What the server prints when uid 10001 cannot write its volume (the contract between the
# server, the chart's persistence.fixPermissions and the troubleshooting guide).
NOT_WRITABLE = ("data directory /var/lib/kiroku is not writable by uid 10001: mount it with fsGroup 10001 "
                "or run the chart with persistence.fixPermissions=true")

# What kubectl prints before the name (`clusterrole.rbac.authorization.k8s.io/kiroku-agent`).
KUBECTL_KIND = {"ServiceAccount": "serviceaccount", "ConfigMap": "configmap", "Service": "service",
                "ClusterRole": "clusterrole.rbac.authorization.k8s.io",
                "ClusterRoleBinding": "clusterrolebinding.rbac.authorization.k8s.io",
                "Role": "role.rbac.authorization.k8s.io",
                "RoleBinding": "rolebinding.rbac.authorization.k8s.io",
                "DaemonSet": "daemonset.apps", "StatefulSet": "statefulset.apps"}


def commands(prefix: str):
    """Every `$ <prefix> …` console line in the guides, as (file, argv)."""
    for path in GUIDES:
        for line in path.read_text().splitlines():
            if line.startswith(f"$ {prefix} "):
                cmd = line[2:].split("  #")[0]
                for part in cmd.split(" && "):
                    if part.startswith(prefix + " "):
                        yield path.name, shlex.split(part)


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Guides(unittest.TestCase):
    def test_every_value_is_documented(self):
        text = (DOCS / "configuration.md").read_text()
        for path in chart.leaves(chart.default_values()):
            self.assertIn(f"`{path}`", text, f"configuration.md does not document {path}")

    def test_quick_starts_quote_the_notes_helm_prints(self):
        notes = chart.notes()
        for guide in ("kind.md", "minikube.md"):
            self.assertIn("NOTES:\n" + notes.rstrip("\n") + "\n```", (DOCS / guide).read_text(), guide)

    def test_every_suggested_helm_command_installs(self):
        seen = 0
        for name, argv in commands("helm"):
            if argv[1] not in ("install", "upgrade"):
                continue
            with self.subTest(f"{name}: {' '.join(argv)}"):
                self.assertEqual(argv[2:4], ["kiroku", "deploy/helm/kiroku"])
                values: dict = {}
                for i, a in enumerate(argv):
                    if a == "--set":
                        values = merge(values, helm.parse_set_string(argv[i + 1]))
                    elif a.startswith("--") and a != "--reuse-values":
                        self.fail(f"unexpected helm flag {a}")
                chart.render(values)  # raises on an unknown key or a bad value
                seen += 1
        self.assertGreaterEqual(seen, 12)

    def test_image_tags_are_the_chart_app_version(self):
        version = chart.load().metadata["appVersion"]
        repo = chart.default_values()["image"]["repository"]
        for path in GUIDES + [chart.ROOT / "deploy" / "Dockerfile"]:
            for tag in re.findall(re.escape(repo) + r":([0-9A-Za-z._-]+)", path.read_text()):
                self.assertEqual(tag, version, f"{path.name} names {repo}:{tag}")

    def test_kubectl_apply_output_lists_what_the_manifest_creates(self):
        text = (DOCS / "kind.md").read_text()
        want = "".join(f"{KUBECTL_KIND[o['kind']]}/{o['metadata']['name']} created\n" for o in chart.render())
        self.assertIn("$ kubectl apply -f deploy/kubernetes/kiroku.yaml\n" + want + "```", text)

    def test_resource_figures_match_the_defaults(self):
        objs = chart.render()
        total_cpu = total_mem = 0
        for w in (chart.one(objs, "StatefulSet"), chart.one(objs, "DaemonSet")):
            for c in chart.pod_spec(w)["containers"]:
                total_cpu += chart.cpu(c["resources"]["requests"]["cpu"])
                total_mem += chart.memory(c["resources"]["requests"]["memory"])
        figure = rf"{round(total_cpu * 1000)}m CPU\s+and\s+{total_mem // 2**20}Mi"
        for guide in ("kind.md", "configuration.md", "troubleshooting.md"):
            self.assertRegex((DOCS / guide).read_text(), figure, guide)

    def test_server_message_for_an_unwritable_volume_is_quoted_exactly(self):
        for guide in ("troubleshooting.md", "configuration.md"):
            self.assertIn(NOT_WRITABLE, (DOCS / guide).read_text(), guide)
        # The message names a chart value: it must exist.
        self.assertIn("fixPermissions", chart.default_values()["persistence"])
        if STARTUP.exists():  # the server's own wording, once it is in the tree
            m = re.search(r'"(data directory \{dir\} is not writable by uid \{uid\}:[^"]*)"', STARTUP.read_text())
            self.assertIsNotNone(m, "the server's NotWritable message moved: update this test and the docs")
            self.assertEqual(m.group(1).format(dir="/var/lib/kiroku", uid=10001, gid=10001), NOT_WRITABLE)

    def test_links_between_guides_resolve(self):
        for path in GUIDES:
            for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
                self.assertTrue((path.parent / target).exists(), f"{path.name} links to missing {target}")

    def test_troubleshooting_has_an_entry_per_trap(self):
        text = (DOCS / "troubleshooting.md").read_text()
        for symptom in ("no org id", "NoSuchBucket", "not writable by uid 10001", "chmod 777",
                        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory"):
            self.assertIn(symptom, text)
        self.assertGreaterEqual(text.count("**Why"), 4)
        self.assertGreaterEqual(text.count("**Fix"), 4)


if __name__ == "__main__":
    unittest.main()
