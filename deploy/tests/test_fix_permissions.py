"""The chart's fix-permissions init script, run for real on this machine (as root, like
the init container) against data directories in the states volumes arrive in: root-owned
(hostPath, minikube's provisioner), world-writable (kind's local-path), already 10001's.
It must make the first writable for uid 10001 and leave the others exactly as they were."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import chart

DATA_DIR = "/var/lib/kiroku"


def script() -> str:
    sts = chart.one(chart.render(), "StatefulSet")
    return chart.container(sts, "fix-permissions", init=True)["command"][-1]


def run(directory: pathlib.Path) -> str:
    text = script()
    assert f"dir={DATA_DIR}\n" in text, "the script must name the data directory once"
    text = text.replace(f"dir={DATA_DIR}\n", f"dir={directory}\n")
    out = subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"init script failed ({out.returncode}): {out.stdout}{out.stderr}")
    return out.stdout


def writable_by_10001(directory: pathlib.Path) -> bool:
    probe = directory / "probe-10001"
    r = subprocess.run(["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", "--",
                        "/bin/sh", "-c", f': > "{probe}"'], capture_output=True, timeout=30)
    if r.returncode == 0:
        probe.unlink()
    return r.returncode == 0


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                     "needs root and setpriv (util-linux), as in the init container")
class FixPermissions(unittest.TestCase):
    def setUp(self):
        self.parent = pathlib.Path(tempfile.mkdtemp(prefix="kiroku-fixperm-"))
        os.chmod(self.parent, 0o755)  # uid 10001 must be able to reach the volume, as in a pod
        self.data = self.parent / "data"
        self.data.mkdir()

    def tearDown(self):
        shutil.rmtree(self.parent)

    def test_root_owned_volume_becomes_writable_for_10001(self):
        os.chown(self.data, 0, 0)
        os.chmod(self.data, 0o755)
        (self.data / "wal").mkdir()
        (self.data / "wal" / "00001").write_text("x")
        self.assertFalse(writable_by_10001(self.data))
        out = run(self.data)
        self.assertIn("not writable by uid 10001", out)
        self.assertTrue(writable_by_10001(self.data))
        for p in (self.data, self.data / "wal", self.data / "wal" / "00001"):
            st = p.stat()
            self.assertEqual((st.st_uid, st.st_gid), (10001, 10001), p)

    def test_world_writable_volume_is_left_alone(self):
        os.chown(self.data, 0, 0)
        os.chmod(self.data, 0o777)
        (self.data / "part").write_text("x")
        out = run(self.data)
        self.assertIn("left as it is", out)
        st = self.data.stat()
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o777))
        self.assertEqual((self.data / "part").stat().st_uid, 0)
        self.assertEqual(sorted(p.name for p in self.data.iterdir()), ["part"], "no probe file left behind")

    def test_volume_already_10001s_is_left_alone(self):
        os.chown(self.data, 10001, 10001)
        os.chmod(self.data, 0o700)
        (self.data / "part").write_text("x")  # root's file inside: must not be chowned
        out = run(self.data)
        self.assertIn("left as it is", out)
        self.assertEqual((self.data / "part").stat().st_uid, 0)

    def test_fsgroup_volume_is_left_alone(self):
        # What the kubelet makes of a volume that honours fsGroup: group 10001, setgid, g+rwx.
        os.chown(self.data, 0, 10001)
        os.chmod(self.data, 0o2775)
        run(self.data)
        st = self.data.stat()
        self.assertEqual((st.st_uid, st.st_gid), (0, 10001))


if __name__ == "__main__":
    unittest.main()
