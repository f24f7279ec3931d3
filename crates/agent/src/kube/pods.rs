//! Watches the pods (this node's, when the node is known): keeps [`PodCache`] current for
//! labels, and reports each container termination once, as a logfmt line in the
//! container's stream:
//!
//! ```text
//! kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=3
//!   started_at=2024-05-01T10:00:00Z finished_at=2024-05-01T10:05:00Z container=app
//!   pod=web-1 namespace=shop container_id=containerd://4f1c… message="…"
//! ```
//!
//! stamped with the container's finish time. This line is a contract with the web UI
//! (documented in docs/agent.md): add keys at the end, never rename.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use kube::api::Api;
use tokio::sync::mpsc;

use super::{Change, list_watch, logfmt_pair, nanos};
use crate::entry::{Entry, Mark};
use crate::metrics::Metrics;
use crate::pods::{ContainerInfo, ContainerRef, PodCache, PodMeta, container_stream};

const TERMINATED_KEPT: usize = 10_000;

pub struct PodWatch {
    pub cache: Arc<PodCache>,
    pub node: Option<String>,
    /// `Some("stderr")` in files mode: termination lines join the container's stderr
    /// stream. `None` in API mode, whose streams have no `stream` label.
    pub output: Option<&'static str>,
    pub metrics: Arc<Metrics>,
    reported: HashSet<String>,
    order: VecDeque<String>,
}

impl PodWatch {
    pub fn new(
        cache: Arc<PodCache>,
        node: Option<String>,
        output: Option<&'static str>,
        metrics: Arc<Metrics>,
        already_reported: &VecDeque<String>,
    ) -> PodWatch {
        PodWatch {
            cache,
            node,
            output,
            metrics,
            reported: already_reported.iter().cloned().collect(),
            order: already_reported.clone(),
        }
    }

    pub async fn run(mut self, client: kube::Client, tx: mpsc::Sender<Entry>) {
        let api: Api<Pod> = Api::all(client);
        let fields = self.node.as_ref().map(|n| format!("spec.nodeName={n}"));
        let metrics = self.metrics.clone();
        list_watch(api, "pods", fields, None, &metrics, &tx, |c| self.change(c)).await;
    }

    fn change(&mut self, c: Change<Pod>) -> Vec<Entry> {
        let mut out = Vec::new();
        match c {
            Change::Listed(pods) => {
                let mut live = HashSet::new();
                for p in &pods {
                    if let Some(m) = pod_meta(p) {
                        live.insert(m.uid.clone());
                        self.cache.upsert(m);
                        self.terminations(p, &mut out);
                    }
                }
                self.cache.retain_live(&live);
                if !self.cache.synced() {
                    tracing::info!(
                        pods = pods.len(),
                        "pod metadata loaded from the Kubernetes API"
                    );
                }
                self.cache.set_synced();
            }
            Change::Applied(p) => {
                if let Some(m) = pod_meta(&p) {
                    self.cache.upsert(m);
                    self.terminations(&p, &mut out);
                }
            }
            Change::Deleted(p) => {
                if let Some(m) = pod_meta(&p) {
                    self.cache.upsert(m.clone());
                    self.terminations(&p, &mut out);
                    self.cache.mark_deleted(&m.uid);
                }
            }
            Change::Reached(_) => {}
        }
        out
    }

    fn terminations(&mut self, pod: &Pod, out: &mut Vec<Entry>) {
        let Some(meta) = pod_meta(pod) else { return };
        let Some(status) = &pod.status else { return };
        let all = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in all {
            let states = [
                cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()),
                cs.state.as_ref().and_then(|s| s.terminated.as_ref()),
            ];
            for t in states.into_iter().flatten() {
                let when = t
                    .finished_at
                    .as_ref()
                    .map(|f| nanos(f).to_string())
                    .or_else(|| t.container_id.clone())
                    .unwrap_or_default();
                let key = format!("{}/{}/{}", meta.uid, cs.name, when);
                if !self.reported.insert(key.clone()) {
                    continue;
                }
                self.order.push_back(key.clone());
                while self.order.len() > TERMINATED_KEPT {
                    if let Some(old) = self.order.pop_front() {
                        self.reported.remove(&old);
                    }
                }
                let c = ContainerRef {
                    namespace: meta.namespace.clone(),
                    pod: meta.name.clone(),
                    uid: meta.uid.clone(),
                    container: cs.name.clone(),
                };
                let stream = container_stream(&c, self.output, self.node.as_deref(), Some(&meta));
                let line = termination_line(&meta, cs, t);
                tracing::info!(namespace = %meta.namespace, pod = %meta.name, container = %cs.name,
                    reason = t.reason.as_deref().unwrap_or(""), exit_code = t.exit_code, "container terminated");
                self.metrics.terminations.inc();
                self.metrics.lines_read.inc();
                out.push(Entry {
                    stream,
                    ts: t
                        .finished_at
                        .as_ref()
                        .map(nanos)
                        .unwrap_or_else(crate::files::tail::now_nanos),
                    line,
                    mark: Some(Mark::Terminated { key }),
                });
            }
        }
    }
}

/// The documented termination line (see the module comment).
pub fn termination_line(
    meta: &PodMeta,
    cs: &ContainerStatus,
    t: &ContainerStateTerminated,
) -> String {
    let mut s = String::with_capacity(256);
    logfmt_pair(&mut s, "kiroku_event", "container_terminated");
    logfmt_pair(&mut s, "reason", t.reason.as_deref().unwrap_or("Unknown"));
    logfmt_pair(&mut s, "exit_code", &t.exit_code.to_string());
    let signal = t
        .signal
        .filter(|s| *s > 0)
        .or((t.exit_code > 128 && t.exit_code < 128 + 65).then_some(t.exit_code - 128));
    if let Some(sig) = signal {
        logfmt_pair(&mut s, "signal", &sig.to_string());
    }
    logfmt_pair(&mut s, "restart_count", &cs.restart_count.to_string());
    if let Some(st) = &t.started_at {
        logfmt_pair(
            &mut s,
            "started_at",
            &protocol::time::format_rfc3339_nano(nanos(st)),
        );
    }
    if let Some(f) = &t.finished_at {
        logfmt_pair(
            &mut s,
            "finished_at",
            &protocol::time::format_rfc3339_nano(nanos(f)),
        );
    }
    logfmt_pair(&mut s, "container", &cs.name);
    logfmt_pair(&mut s, "pod", &meta.name);
    logfmt_pair(&mut s, "namespace", &meta.namespace);
    if let Some(id) = t.container_id.as_deref().filter(|i| !i.is_empty()) {
        logfmt_pair(&mut s, "container_id", id);
    }
    if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
        logfmt_pair(&mut s, "message", m);
    }
    s
}

pub fn pod_meta(p: &Pod) -> Option<PodMeta> {
    let uid = p.metadata.uid.clone()?;
    let annotations = p.metadata.annotations.as_ref();
    let annotation = |k: &str| annotations.and_then(|a| a.get(k)).cloned();
    let mut containers = Vec::new();
    if let Some(st) = &p.status {
        for cs in st
            .init_container_statuses
            .iter()
            .flatten()
            .chain(st.container_statuses.iter().flatten())
        {
            let state = cs.state.as_ref();
            let running = state.is_some_and(|s| s.running.is_some());
            let terminated = state.is_some_and(|s| s.terminated.is_some());
            containers.push(ContainerInfo {
                name: cs.name.clone(),
                restart_count: cs.restart_count,
                running,
                started: running || terminated || cs.restart_count > 0,
            });
        }
    }
    Some(PodMeta {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid,
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        labels: p.metadata.labels.clone().unwrap_or_default(),
        service_name_annotation: annotation("resource.opentelemetry.io/service.name"),
        job_annotation: annotation("k8s.grafana.com/logs.job"),
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn reports_each_termination_once() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "resourceVersion": "5",
                         "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"nodeName": "node-a", "containers": [{"name": "app"}]},
            "status": {"containerStatuses": [{
                "name": "app", "restartCount": 3, "ready": true, "image": "x", "imageID": "y",
                "state": {"running": {"startedAt": "2024-05-01T10:06:00Z"}},
                "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                    "startedAt": "2024-05-01T10:00:00Z", "finishedAt": "2024-05-01T10:05:00Z",
                    "containerID": "containerd://abc"}}
            }]}
        }));
        let mut w = PodWatch::new(
            PodCache::new(),
            Some("node-a".into()),
            Some("stderr"),
            Metrics::new(),
            &VecDeque::new(),
        );
        let out = w.change(Change::Applied(p.clone()));
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].line,
            "kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=3 started_at=2024-05-01T10:00:00Z finished_at=2024-05-01T10:05:00Z container=app pod=web-1 namespace=shop container_id=containerd://abc"
        );
        assert_eq!(out[0].ts, 1_714_557_900_000_000_000);
        assert!(out[0].stream.labels.contains(r#"stream="stderr""#));
        assert!(out[0].stream.labels.contains(r#"app="web""#));
        assert!(w.change(Change::Applied(p.clone())).is_empty());
        // A restarted agent that remembers the report does not repeat it.
        let mut w2 = PodWatch::new(
            PodCache::new(),
            None,
            None,
            Metrics::new(),
            &VecDeque::from([format!("u1/app/{}", 1_714_557_900_000_000_000i64)]),
        );
        assert!(w2.change(Change::Listed(vec![p])).is_empty());
        assert!(w2.cache.synced());
    }
}
