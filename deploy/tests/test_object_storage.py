"""The chart's object storage values (`storage.*`): they reach the server's config file and
its environment (credentials only from a Secret, never the ConfigMap), the objects stay
valid Kubernetes, mistakes fail the install, the default rendering has none of it, and the
real server runs with the rendered config against a real S3 server (Garage, when
`scripts/test` started one: KIROKU_TEST_S3_*)."""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

import chart
from chart import container, one, render
from test_binary import BIN, Process, built, free_port, get, poll

GARAGE_LIKE = {
    "storage": {
        "url": "s3://logs/kiroku",
        "endpoint": "http://garage.storage.svc:3900",
        "region": "garage",
        "allowHttp": True,
        "credentialsSecret": "kiroku-s3",
        "cacheMaxBytes": "2GiB",
    }
}


def config(objs) -> dict:
    return yaml.safe_load(one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"])


def server(objs) -> dict:
    return container(one(objs, "StatefulSet"), "server")


class ObjectStorage(unittest.TestCase):
    def test_values_reach_the_config_file_and_credentials_come_from_the_secret(self):
        objs = render(GARAGE_LIKE)
        c = config(objs)
        self.assertEqual(c["storage_url"], "s3://logs/kiroku")
        self.assertEqual(c["storage_endpoint"], "http://garage.storage.svc:3900")
        self.assertEqual(c["storage_region"], "garage")
        self.assertIs(c["storage_allow_http"], True)
        self.assertEqual(c["cache_max_bytes"], "2GiB")
        self.assertNotIn("storage_addressing", c, "path addressing is the server's default")
        s = server(objs)
        self.assertEqual(s["envFrom"], [{"secretRef": {"name": "kiroku-s3"}}])
        self.assertNotIn("env", s)
        # The config (a ConfigMap anyone with read access sees) names no credential.
        text = one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"].lower()
        for word in ("secret", "access_key", "password", "token"):
            self.assertNotIn(word, text)

    def test_virtual_hosted_addressing_and_aws_without_endpoint(self):
        c = config(render({"storage": {"url": "s3://logs", "region": "eu-west-1",
                                       "addressing": "virtual-hosted"}}))
        self.assertEqual(c["storage_addressing"], "virtual-hosted")
        self.assertNotIn("storage_endpoint", c)
        self.assertNotIn("storage_allow_http", c)

    def test_a_changed_bucket_rolls_the_pod(self):
        def checksum(values):
            return one(render(values), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        self.assertNotEqual(checksum({}), checksum(GARAGE_LIKE))

    def test_default_rendering_has_no_object_storage(self):
        objs = render()
        self.assertFalse([k for k in config(objs) if k.startswith("storage") or k == "cache_max_bytes"])
        self.assertNotIn("envFrom", server(objs))

    def test_objects_validate_against_kubernetes_schemas(self):
        for obj in render(GARAGE_LIKE):
            for version in chart.KUBE_VERSIONS:
                with self.subTest(obj=f"{obj['kind']}/{obj['metadata']['name']}", version=version):
                    kubernetes_validate.validate(obj, version, strict=True)

    def test_schema_rejects_storage_values_that_would_be_ignored(self):
        bad = {
            "endpoint without a url": {"storage": {"endpoint": "http://minio:9000"}},
            "secret without a url": {"storage": {"credentialsSecret": "s3"}},
            "region without a url": {"storage": {"region": "eu-west-1"}},
            "unknown scheme": {"storage": {"url": "minio://logs"}},
            "no bucket": {"storage": {"url": "s3://"}},
            "addressing typo": {"storage": {"url": "s3://logs", "addressing": "virtual"}},
            "endpoint without a scheme": {"storage": {"url": "s3://logs", "endpoint": "minio:9000"}},
            "unknown key": {"storage": {"url": "s3://logs", "bucket": "logs"}},
            "unreadable cache size": {"storage": {"url": "s3://logs", "cacheMaxBytes": "lots"}},
            "extraConfig shadowing storage.url": {"server": {"extraConfig": {"storage_url": "s3://x"}}},
        }
        for why, values in bad.items():
            with self.subTest(why), self.assertRaises(helm.HelmValuesError, msg=why):
                render(values)


def garage() -> dict | None:
    names = ("ENDPOINT", "BUCKET", "ACCESS_KEY", "SECRET_KEY")
    got = {n: os.environ.get(f"KIROKU_TEST_S3_{n}", "") for n in names + ("REGION",)}
    return got if all(got[n] for n in names) else None


def garage_missing() -> str | None:
    if garage():
        return None
    why = "KIROKU_TEST_S3_* are not set (scripts/test starts Garage)"
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{why}; under CI=true the object storage test must run")
    return why


@unittest.skipIf(built(), f"the binary is not testable yet: {built()}")
@unittest.skipIf(garage_missing(), garage_missing() or "")
class ObjectStorageAgainstTheBinary(unittest.TestCase):
    def test_server_runs_with_the_rendered_storage_config_and_secret(self):
        g = garage()
        tmp = pathlib.Path(tempfile.mkdtemp(prefix="kiroku-deploy-s3-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        values = {"storage": {"url": f"s3://{g['BUCKET']}/deploy-tests-{os.getpid()}",
                              "endpoint": g["ENDPOINT"], "region": g["REGION"] or "garage",
                              "allowHttp": True, "credentialsSecret": "kiroku-s3"}}
        objs = render(values)
        s = server(objs)
        conf = tmp / "config.yaml"
        conf.write_text(one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"])
        port = free_port()
        argv = [str(BIN)] + [str(conf) if a == "/etc/kiroku/config.yaml" else a for a in s["args"]]
        argv += ["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp / "data")]
        # What the kubelet makes of envFrom: the Secret's keys as variables.
        secret = {"AWS_ACCESS_KEY_ID": g["ACCESS_KEY"], "AWS_SECRET_ACCESS_KEY": g["SECRET_KEY"]}
        env = {"PATH": os.environ.get("PATH", ""), **secret}
        p = Process(argv, tmp / "server.log", env=env)
        self.addCleanup(p.stop)
        base = f"http://127.0.0.1:{port}"
        poll("server /ready", lambda: get(base + "/ready")[0] == 200, p.proc, p.log)
        status, body = get(base + "/config")
        self.assertEqual(status, 200, body)
        effective = yaml.safe_load(body)
        self.assertEqual(effective["storage_url"], values["storage"]["url"])
        self.assertEqual(effective["storage_endpoint"], g["ENDPOINT"])

        # With a wrong secret key the server refuses to start, and says what to set.
        p2 = Process(argv[:-4] + ["--listen", f"127.0.0.1:{free_port()}", "--data-dir", str(tmp / "d2")],
                     tmp / "refused.log", env={"PATH": os.environ.get("PATH", ""),
                                               "AWS_ACCESS_KEY_ID": g["ACCESS_KEY"],
                                               "AWS_SECRET_ACCESS_KEY": "0" * 64})
        self.addCleanup(p2.stop)
        p2.proc.wait(timeout=60)
        self.assertNotEqual(p2.proc.returncode, 0)
        self.assertIn("AWS_SECRET_ACCESS_KEY", (tmp / "refused.log").read_text())


if __name__ == "__main__":
    unittest.main()
