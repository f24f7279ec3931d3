"""deploy/kubernetes/kiroku.yaml is what `kubectl apply -f` users get: it must be exactly
the chart's default rendering, so the two installs never drift apart."""

from __future__ import annotations

import difflib
import unittest

import yaml

import chart


class PlainManifest(unittest.TestCase):
    def test_equals_the_default_rendering(self):
        want = chart.manifest_text()
        have = chart.MANIFEST.read_text() if chart.MANIFEST.exists() else ""
        if have != want:
            diff = "".join(difflib.unified_diff(
                have.splitlines(keepends=True), want.splitlines(keepends=True),
                "deploy/kubernetes/kiroku.yaml", "default rendering", n=2))
            self.fail("deploy/kubernetes/kiroku.yaml is out of date with the chart: run "
                      "`deploy/tests/run update` and commit it\n" + diff[:6000])

    def test_applies_in_dependency_order_with_every_object(self):
        docs = [d for d in yaml.safe_load_all(chart.MANIFEST.read_text()) if d]
        self.assertEqual(docs, chart.render())
        order = [chart.INSTALL_ORDER.index(d["kind"]) for d in docs]
        self.assertEqual(order, sorted(order))
        self.assertEqual({d["metadata"].get("namespace") for d in docs
                          if d["kind"] not in ("ClusterRole", "ClusterRoleBinding")}, {"default"})


if __name__ == "__main__":
    unittest.main()
