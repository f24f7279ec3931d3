"""The image, read from deploy/Dockerfile with Docker's own parser (no Docker engine runs
here, so the image is not built in CI): a multi-stage build of the locked workspace, a
small Debian runtime that carries what the chart's init step runs, non-root, kiroku as
the entrypoint, and a build context that keeps the sources and drops build output."""

from __future__ import annotations

import fnmatch
import re
import unittest

import dockerfile

import chart

DOCKERFILE = chart.ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = chart.ROOT / ".dockerignore"


def stages():
    out = []
    for cmd in dockerfile.parse_file(str(DOCKERFILE)):
        if cmd.cmd == "FROM":
            out.append({"from": cmd.value[0], "name": cmd.value[2] if len(cmd.value) > 2 else None, "cmds": []})
        elif out:
            out[-1]["cmds"].append(cmd)
    return out


class Image(unittest.TestCase):
    def test_builds_the_locked_workspace_in_a_rust_builder(self):
        build, runtime = stages()
        self.assertRegex(build["from"], r"^rust:\$\{RUST_VERSION\}-bookworm$")
        args = [c for c in dockerfile.parse_file(str(DOCKERFILE)) if c.cmd == "ARG"]
        self.assertIn("RUST_VERSION=1.95", [a.value[0] for a in args])
        runs = " ".join(c.value[0] for c in build["cmds"] if c.cmd == "RUN")
        self.assertIn("cargo build --release --locked -p kiroku", runs)
        self.assertNotIn("npm", runs, "the UI is embedded by the Rust build; no Node step")

    def test_runtime_is_small_non_root_with_kiroku_as_entrypoint(self):
        build, runtime = stages()
        # Debian slim, same release as the builder (glibc), with /bin/sh and setpriv for
        # the chart's fix-permissions init container.
        self.assertEqual(runtime["from"], "debian:bookworm-slim")
        users = [c.value[0] for c in runtime["cmds"] if c.cmd == "USER"]
        self.assertEqual(users, ["10001:10001"])
        last_user_at = max(i for i, c in enumerate(runtime["cmds"]) if c.cmd == "USER")
        self.assertFalse([c for c in runtime["cmds"][last_user_at:] if c.cmd == "RUN"],
                         "nothing may run after dropping to 10001 that needs root")
        [entry] = [c for c in runtime["cmds"] if c.cmd == "ENTRYPOINT"]
        self.assertTrue(entry.json, "exec form, so signals reach kiroku")
        self.assertEqual(entry.value, ("/usr/bin/kiroku",))
        copies = [c for c in runtime["cmds"] if c.cmd == "COPY"]
        self.assertEqual([(c.flags, c.value) for c in copies],
                         [(("--from=build",), ("/out/kiroku", "/usr/bin/kiroku"))])
        self.assertEqual(build["name"], "build")
        exposed = {p for c in runtime["cmds"] if c.cmd == "EXPOSE" for p in c.value}
        self.assertEqual(exposed, {"3100", "3101"})
        [cmd] = [c for c in runtime["cmds"] if c.cmd == "CMD"]
        self.assertEqual(cmd.value[0], "server")

    def test_runtime_has_ca_certificates_and_owned_data_dirs(self):
        _, runtime = stages()
        runs = " ".join(c.value[0] for c in runtime["cmds"] if c.cmd == "RUN")
        self.assertIn("ca-certificates", runs)
        self.assertIn("rm -rf /var/lib/apt/lists/*", runs)
        self.assertRegex(runs, r"install -d -o 10001 -g 10001 .*/var/lib/kiroku\b")

    def test_chart_image_is_this_image(self):
        text = DOCKERFILE.read_text()
        meta = chart.load().metadata
        values = chart.default_values()
        self.assertIn(f"-t {values['image']['repository']}:{meta['appVersion']} .", text)

    def test_build_context_keeps_sources_and_drops_build_output(self):
        patterns = [l.strip() for l in DOCKERIGNORE.read_text().splitlines()
                    if l.strip() and not l.startswith("#")]

        def ignored(path):
            return any(fnmatch.fnmatch(path, p.lstrip("/")) or fnmatch.fnmatch(path.split("/")[0], p.lstrip("/"))
                       or (p.startswith("**/") and p[3:] in path.split("/")) for p in patterns)

        for kept in ("Cargo.toml", "Cargo.lock", "crates/kiroku/src/main.rs", "ui/dist/index.html",
                     "testdata/loghub/x.log"):
            self.assertFalse(ignored(kept), f".dockerignore drops {kept}, which the build needs")
        for dropped in ("target", ".git", "ui/node_modules"):
            self.assertTrue(ignored(dropped), f".dockerignore sends {dropped} to the builder")


class Versions(unittest.TestCase):
    def test_app_version_is_the_workspace_version(self):
        cargo = (chart.ROOT / "Cargo.toml").read_text()
        m = re.search(r'(?ms)^\[workspace\.package\].*?^version\s*=\s*"([^"]+)"', cargo)
        self.assertEqual(chart.load().metadata["appVersion"], m.group(1),
                         "the chart deploys the image of the kiroku it ships with")


if __name__ == "__main__":
    unittest.main()
