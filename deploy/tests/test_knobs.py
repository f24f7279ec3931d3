"""Only ship values that work: every value in values.yaml must change the rendered objects,
and each change is the one the value promises. A value added to values.yaml without a line
in KNOBS fails `test_every_value_is_covered`, so no knob can be accepted and ignored."""

from __future__ import annotations

import unittest

import yaml

import chart
from chart import arg, container, one, pod_spec, volume


def sts(objs):
    return one(objs, "StatefulSet")


def ds(objs):
    return one(objs, "DaemonSet")


def config(objs):
    return yaml.safe_load(one(objs, "ConfigMap", "kiroku-config")["data"]["config.yaml"])


def datasource(objs):
    cm = one(objs, "ConfigMap", "kiroku-grafana-datasource")
    return cm, yaml.safe_load(cm["data"]["kiroku-datasource.yaml"])["datasources"][0]


# path -> (values that set it, what the rendering must then show)
KNOBS = {
    "image.repository": ({"image": {"repository": "registry.example.com/kiroku"}},
                         lambda o: container(sts(o), "server")["image"] == "registry.example.com/kiroku:0.1.0"
                         and container(ds(o), "agent")["image"] == "registry.example.com/kiroku:0.1.0"),
    "image.tag": ({"image": {"tag": "dev"}},
                  lambda o: container(sts(o), "server")["image"].endswith(":dev")
                  and container(sts(o), "fix-permissions", init=True)["image"].endswith(":dev")),
    "image.pullPolicy": ({"image": {"pullPolicy": "Always"}},
                         lambda o: container(ds(o), "agent")["imagePullPolicy"] == "Always"),
    "imagePullSecrets": ({"imagePullSecrets": [{"name": "regcred"}]},
                         lambda o: pod_spec(sts(o))["imagePullSecrets"] == [{"name": "regcred"}]
                         and pod_spec(ds(o))["imagePullSecrets"] == [{"name": "regcred"}]),
    "nameOverride": ({"nameOverride": "logs"},
                     lambda o: sts(o)["metadata"]["name"] == "kiroku-logs"),
    "fullnameOverride": ({"fullnameOverride": "logstore"},
                         lambda o: one(o, "Service", "logstore") and sts(o)["metadata"]["name"] == "logstore"),
    "commonLabels": ({"commonLabels": {"team": "platform"}},
                     lambda o: all(x["metadata"]["labels"]["team"] == "platform" for x in o)
                     and sts(o)["spec"]["template"]["metadata"]["labels"]["team"] == "platform"),
    "auth": ({"auth": "header", "tenant": "team-a"},
             lambda o: config(o)["auth"] == "header"),
    "tenant": ({"auth": "header", "tenant": "team-b"},
               lambda o: arg(container(ds(o), "agent"), "--org-id") == "team-b"),
    "server.retention": ({"server": {"retention": "30d"}}, lambda o: config(o)["retention"] == "30d"),
    "server.retentionMaxDisk": ({"server": {"retentionMaxDisk": "20%"}},
                                lambda o: config(o)["retention_max_disk"] == "20%"),
    "server.extraConfig": ({"server": {"extraConfig": {"log_format": "json"}}},
                           lambda o: config(o)["log_format"] == "json"),
    "server.extraArgs": ({"server": {"extraArgs": ["--log-level", "debug"]}},
                         lambda o: container(sts(o), "server")["args"][-2:] == ["--log-level", "debug"]),
    "server.extraEnv": ({"server": {"extraEnv": [{"name": "TZ", "value": "UTC"}]}},
                        lambda o: container(sts(o), "server")["env"] == [{"name": "TZ", "value": "UTC"}]),
    "server.resources": ({"server": {"resources": {"requests": {"cpu": "10m"}}}},
                         lambda o: container(sts(o), "server")["resources"]["requests"]["cpu"] == "10m"),
    "server.nodeSelector": ({"server": {"nodeSelector": {"disk": "ssd"}}},
                            lambda o: pod_spec(sts(o))["nodeSelector"] == {"disk": "ssd"}),
    "server.tolerations": ({"server": {"tolerations": [{"key": "logs", "operator": "Exists"}]}},
                           lambda o: pod_spec(sts(o))["tolerations"] == [{"key": "logs", "operator": "Exists"}]),
    "server.affinity": ({"server": {"affinity": {"podAffinity": {}}}},
                        lambda o: pod_spec(sts(o))["affinity"] == {"podAffinity": {}}),
    "server.podAnnotations": ({"server": {"podAnnotations": {"a": "b"}}},
                              lambda o: sts(o)["spec"]["template"]["metadata"]["annotations"]["a"] == "b"),
    "persistence.enabled": ({"persistence": {"enabled": False}},
                            lambda o: "emptyDir" in volume(sts(o), "data")),
    "persistence.size": ({"persistence": {"size": "1Gi"}},
                         lambda o: sts(o)["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"),
    "persistence.storageClass": ({"persistence": {"storageClass": "local-path"}},
                                 lambda o: sts(o)["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "local-path"),
    "persistence.fixPermissions": ({"persistence": {"fixPermissions": False}},
                                   lambda o: "initContainers" not in pod_spec(sts(o))),
    # Object storage (more in test_object_storage.py): each needs storage.url to apply.
    "storage.url": ({"storage": {"url": "s3://logs/kiroku"}},
                    lambda o: config(o)["storage_url"] == "s3://logs/kiroku"),
    "storage.endpoint": ({"storage": {"url": "s3://logs", "endpoint": "http://minio:9000", "allowHttp": True}},
                         lambda o: config(o)["storage_endpoint"] == "http://minio:9000"),
    "storage.region": ({"storage": {"url": "s3://logs", "region": "eu-west-1"}},
                       lambda o: config(o)["storage_region"] == "eu-west-1"),
    "storage.addressing": ({"storage": {"url": "s3://logs", "addressing": "virtual-hosted"}},
                           lambda o: config(o)["storage_addressing"] == "virtual-hosted"),
    "storage.allowHttp": ({"storage": {"url": "s3://logs", "allowHttp": True}},
                          lambda o: config(o)["storage_allow_http"] is True),
    "storage.credentialsSecret": ({"storage": {"url": "s3://logs", "credentialsSecret": "kiroku-s3"}},
                                  lambda o: container(sts(o), "server")["envFrom"]
                                  == [{"secretRef": {"name": "kiroku-s3"}}]),
    "storage.cacheMaxBytes": ({"storage": {"url": "s3://logs", "cacheMaxBytes": "5GiB"}},
                              lambda o: config(o)["cache_max_bytes"] == "5GiB"),
    "service.type": ({"service": {"type": "NodePort"}},
                     lambda o: one(o, "Service", "kiroku")["spec"]["type"] == "NodePort"),
    "service.port": ({"service": {"port": 8080}},
                     lambda o: one(o, "Service", "kiroku")["spec"]["ports"][0]["port"] == 8080
                     and arg(container(ds(o), "agent"), "--url") == "http://kiroku.default.svc:8080"
                     and datasource(o)[1]["url"] == "http://kiroku.default.svc:8080"),
    "service.annotations": ({"service": {"annotations": {"a": "b"}}},
                            lambda o: one(o, "Service", "kiroku")["metadata"]["annotations"] == {"a": "b"}),
    "agent.enabled": ({"agent": {"enabled": False}},
                      lambda o: not chart.kinds(o, "DaemonSet") and not chart.kinds(o, "ClusterRole")),
    "agent.mode": ({"agent": {"mode": "api"}},
                   lambda o: arg(container(ds(o), "agent"), "--mode") == "api"),
    "agent.url": ({"agent": {"url": "https://loki.example.com"}},
                  lambda o: arg(container(ds(o), "agent"), "--url") == "https://loki.example.com"),
    "agent.bearerToken.secretName": ({"agent": {"bearerToken": {"secretName": "loki-token"}}},
                                     lambda o: volume(ds(o), "bearer-token")["secret"]["secretName"] == "loki-token"
                                     and arg(container(ds(o), "agent"), "--bearer-token-file")
                                     == "/etc/kiroku-agent/bearer-token/token"),
    "agent.bearerToken.secretKey": ({"agent": {"bearerToken": {"secretName": "t", "secretKey": "jwt"}}},
                                    lambda o: arg(container(ds(o), "agent"), "--bearer-token-file")
                                    == "/etc/kiroku-agent/bearer-token/jwt"
                                    and volume(ds(o), "bearer-token")["secret"]["items"] == [{"key": "jwt", "path": "jwt"}]),
    "agent.basicAuth.username": ({"agent": {"basicAuth": {"username": "kiroku", "passwordSecretName": "pw"}}},
                                 lambda o: arg(container(ds(o), "agent"), "--username") == "kiroku"),
    "agent.basicAuth.passwordSecretName": ({"agent": {"basicAuth": {"username": "u", "passwordSecretName": "loki-pw"}}},
                                           lambda o: volume(ds(o), "basic-auth")["secret"]["secretName"] == "loki-pw"
                                           and arg(container(ds(o), "agent"), "--password-file")
                                           == "/etc/kiroku-agent/basic-auth/password"),
    "agent.basicAuth.passwordSecretKey": ({"agent": {"basicAuth": {"username": "u", "passwordSecretName": "pw",
                                                                   "passwordSecretKey": "pass"}}},
                                          lambda o: arg(container(ds(o), "agent"), "--password-file")
                                          == "/etc/kiroku-agent/basic-auth/pass"),
    "agent.stateHostPath": ({"agent": {"stateHostPath": "/data/kiroku-agent"}},
                            lambda o: volume(ds(o), "state")["hostPath"]["path"] == "/data/kiroku-agent/default.kiroku"),
    "agent.resources": ({"agent": {"resources": {"requests": {"cpu": "5m"}}}},
                        lambda o: container(ds(o), "agent")["resources"]["requests"]["cpu"] == "5m"),
    "agent.nodeSelector": ({"agent": {"nodeSelector": {"kubernetes.io/os": "linux"}}},
                           lambda o: pod_spec(ds(o))["nodeSelector"] == {"kubernetes.io/os": "linux"}),
    "agent.tolerations": ({"agent": {"tolerations": []}},
                          lambda o: "tolerations" not in pod_spec(ds(o))),
    "agent.affinity": ({"agent": {"affinity": {"nodeAffinity": {}}}},
                       lambda o: pod_spec(ds(o))["affinity"] == {"nodeAffinity": {}}),
    "agent.priorityClassName": ({"agent": {"priorityClassName": "system-node-critical"}},
                                lambda o: pod_spec(ds(o))["priorityClassName"] == "system-node-critical"),
    "agent.podAnnotations": ({"agent": {"podAnnotations": {"a": "b"}}},
                             lambda o: ds(o)["spec"]["template"]["metadata"]["annotations"] == {"a": "b"}),
    "agent.extraArgs": ({"agent": {"extraArgs": ["--events", "off"]}},
                        lambda o: container(ds(o), "agent")["args"][-2:] == ["--events", "off"]),
    "agent.extraEnv": ({"agent": {"extraEnv": [{"name": "TZ", "value": "UTC"}]}},
                       lambda o: container(ds(o), "agent")["env"][-1] == {"name": "TZ", "value": "UTC"}),
    "grafanaDatasource.enabled": ({"grafanaDatasource": {"enabled": False}},
                                  lambda o: not [x for x in o if x["metadata"]["name"].endswith("grafana-datasource")]),
    "grafanaDatasource.name": ({"grafanaDatasource": {"name": "Cluster logs"}},
                               lambda o: datasource(o)[1]["name"] == "Cluster logs"),
    "grafanaDatasource.namespace": ({"grafanaDatasource": {"namespace": "monitoring"}},
                                    lambda o: datasource(o)[0]["metadata"]["namespace"] == "monitoring"),
    "grafanaDatasource.labels": ({"grafanaDatasource": {"labels": {"grafana_datasource": "kiroku"}}},
                                 lambda o: datasource(o)[0]["metadata"]["labels"]["grafana_datasource"] == "kiroku"),
    "grafanaDatasource.isDefault": ({"grafanaDatasource": {"isDefault": True}},
                                    lambda o: datasource(o)[1]["isDefault"] is True),
}


class Knobs(unittest.TestCase):
    def test_every_value_is_covered(self):
        declared = set(chart.leaves(chart.default_values()))
        self.assertEqual(sorted(declared - set(KNOBS)), [], "values.yaml keys with no check in KNOBS")
        self.assertEqual(sorted(set(KNOBS) - declared), [], "KNOBS entries values.yaml no longer has")

    def test_every_value_changes_the_rendering_as_promised(self):
        default = chart.render()
        for path, (values, promise) in KNOBS.items():
            with self.subTest(path):
                objs = chart.render(values)
                self.assertNotEqual(objs, default, f"{path} changes nothing")
                self.assertTrue(promise(objs), f"{path} does not do what it promises")

    def test_every_value_is_in_the_schema(self):
        schema = chart.load().schema
        for path in KNOBS:
            node = schema
            for key in path.split("."):
                node = node["properties"][key]


if __name__ == "__main__":
    unittest.main()
