//! What the agent knows about pods: the kubelet's log paths, the metadata the Kubernetes
//! API adds (kept a while after a pod is deleted so its last lines are still labelled), and
//! the labels and structured metadata of a container's streams.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use protocol::Labels;

use crate::entry::Stream;

/// A pod log directory, `<namespace>_<pod>_<uid>`, and the container directory below it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
}

impl ContainerRef {
    /// Reads `<pods_dir>/<ns>_<pod>_<uid>/<container>/<file>`. Namespaces and pod names
    /// cannot hold `_` (they are DNS names), so the split is unambiguous.
    pub fn from_path(pods_dir: &Path, file: &Path) -> Option<ContainerRef> {
        let rel = file.strip_prefix(pods_dir).ok()?;
        let mut parts = rel.iter();
        let pod_dir = parts.next()?.to_str()?;
        let container = parts.next()?.to_str()?;
        parts.next()?;
        let mut it = pod_dir.splitn(3, '_');
        let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
        if ns.is_empty() || pod.is_empty() || uid.is_empty() || container.is_empty() {
            return None;
        }
        Some(ContainerRef {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            uid: uid.to_string(),
            container: container.to_string(),
        })
    }
}

/// A pod as the API describes it, reduced to what labels need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodMeta {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `resource.opentelemetry.io/service.name`
    pub service_name_annotation: Option<String>,
    /// `k8s.grafana.com/logs.job`
    pub job_annotation: Option<String>,
    /// Containers (init containers first) and their states, for `--mode api`.
    pub containers: Vec<ContainerInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInfo {
    pub name: String,
    pub restart_count: i32,
    pub running: bool,
    /// Has run at all (running now, or terminated): it has logs to read.
    pub started: bool,
}

/// A pod and when it was deleted, if it was.
type Known = (Arc<PodMeta>, Option<Instant>);

/// Pod metadata by uid, shared by the sources and the pod watcher.
#[derive(Debug, Default)]
pub struct PodCache {
    pods: RwLock<HashMap<String, Known>>,
    /// Bumped on every change so readers can keep derived labels until it moves.
    generation: AtomicU64,
    /// The API is reachable and the first list has arrived.
    synced: AtomicBool,
    /// Metadata comes from the API at all.
    enabled: AtomicBool,
}

impl PodCache {
    pub fn new() -> Arc<PodCache> {
        Arc::new(PodCache::default())
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    pub fn set_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn get(&self, uid: &str) -> Option<Arc<PodMeta>> {
        self.pods.read().get(uid).map(|(m, _)| m.clone())
    }

    pub fn find(&self, namespace: &str, name: &str) -> Option<Arc<PodMeta>> {
        self.pods
            .read()
            .values()
            .filter(|(m, _)| m.namespace == namespace && m.name == name)
            .max_by_key(|(_, deleted)| deleted.is_none())
            .map(|(m, _)| m.clone())
    }

    pub fn upsert(&self, meta: PodMeta) {
        let mut pods = self.pods.write();
        let changed = pods
            .get(&meta.uid)
            .is_none_or(|(m, d)| **m != meta || d.is_some());
        if changed {
            pods.insert(meta.uid.clone(), (Arc::new(meta), None));
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The pod is gone from the API; keep it for `retention` more.
    pub fn mark_deleted(&self, uid: &str) {
        if let Some((_, d)) = self.pods.write().get_mut(uid) {
            d.get_or_insert_with(Instant::now);
        }
    }

    /// Every pod not in `live` is deleted (after a relist).
    pub fn retain_live(&self, live: &std::collections::HashSet<String>) {
        let now = Instant::now();
        for (uid, (_, d)) in self.pods.write().iter_mut() {
            if !live.contains(uid) && d.is_none() {
                *d = Some(now);
            }
        }
    }

    /// Forgets pods deleted longer than `retention` ago.
    pub fn expire(&self, retention: Duration) {
        let mut pods = self.pods.write();
        let before = pods.len();
        pods.retain(|_, (_, d)| d.is_none_or(|t| t.elapsed() < retention));
        if pods.len() != before {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Known and not deleted.
    pub fn is_live(&self, uid: &str) -> bool {
        self.pods.read().get(uid).is_some_and(|(_, d)| d.is_none())
    }

    pub fn live_uids(&self) -> Vec<Arc<PodMeta>> {
        self.pods
            .read()
            .values()
            .filter(|(_, d)| d.is_none())
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Builds the stream of one container output:
/// labels `namespace`, `pod`, `container`, `job`, `node`, `app`, `service_name`, `stream`;
/// structured metadata `pod_uid` and the pod's other labels (names made Loki-safe), which
/// would multiply streams if they were labels.
pub fn container_stream(
    c: &ContainerRef,
    output: Option<&str>,
    node: Option<&str>,
    meta: Option<&PodMeta>,
) -> Arc<Stream> {
    let mut labels: Vec<(&str, String)> = vec![
        ("namespace", c.namespace.clone()),
        ("pod", c.pod.clone()),
        ("container", c.container.clone()),
    ];
    let job = meta
        .and_then(|m| m.job_annotation.clone())
        .unwrap_or_else(|| format!("{}/{}", c.namespace, c.container));
    labels.push(("job", job));
    if let Some(n) = node.or(meta.and_then(|m| m.node.as_deref())) {
        labels.push(("node", n.to_string()));
    }
    let pod_labels = meta.map(|m| &m.labels);
    let label = |k: &str| pod_labels.and_then(|l| l.get(k)).filter(|v| !v.is_empty());
    if let Some(app) = label("app.kubernetes.io/name").or_else(|| label("app")) {
        labels.push(("app", app.clone()));
    }
    // The k8s-monitoring chart's order: the OpenTelemetry annotation, the
    // app.kubernetes.io/name label, the pod name, the container name.
    let service = meta
        .and_then(|m| m.service_name_annotation.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| label("app.kubernetes.io/name").cloned())
        .unwrap_or_else(|| {
            if c.pod.is_empty() {
                c.container.clone()
            } else {
                c.pod.clone()
            }
        });
    labels.push(("service_name", service));
    if let Some(o) = output {
        labels.push(("stream", o.to_string()));
    }
    let mut metadata = vec![("pod_uid".to_string(), c.uid.clone())];
    if let Some(l) = pod_labels {
        for (k, v) in l {
            let name = sanitize_label_name(k);
            if !matches!(
                name.as_str(),
                "pod_uid"
                    | "namespace"
                    | "pod"
                    | "container"
                    | "job"
                    | "node"
                    | "app"
                    | "service_name"
                    | "stream"
            ) {
                metadata.push((name, v.clone()));
            }
        }
    }
    Stream::new(&Labels::from_pairs(labels), metadata)
}

/// `app.kubernetes.io/name` becomes `app_kubernetes_io_name`.
pub fn sanitize_label_name(k: &str) -> String {
    let mut s: String = k
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubelet_paths() {
        let c = ContainerRef::from_path(
            Path::new("/var/log/pods"),
            Path::new("/var/log/pods/shop_web-7d4b9_1f2e3d4c-aaaa-bbbb/nginx/0.log"),
        )
        .unwrap();
        assert_eq!(c.namespace, "shop");
        assert_eq!(c.pod, "web-7d4b9");
        assert_eq!(c.uid, "1f2e3d4c-aaaa-bbbb");
        assert_eq!(c.container, "nginx");
        assert!(
            ContainerRef::from_path(
                Path::new("/var/log/pods"),
                Path::new("/var/log/pods/x/0.log")
            )
            .is_none()
        );
        assert!(
            ContainerRef::from_path(
                Path::new("/var/log/pods"),
                Path::new("/elsewhere/a_b_c/d/0.log")
            )
            .is_none()
        );
    }

    #[test]
    fn labels_with_and_without_metadata() {
        let c = ContainerRef {
            namespace: "shop".into(),
            pod: "web-1".into(),
            uid: "u1".into(),
            container: "nginx".into(),
        };
        let s = container_stream(&c, Some("stderr"), Some("node-a"), None);
        assert_eq!(
            s.labels,
            r#"{container="nginx", job="shop/nginx", namespace="shop", node="node-a", pod="web-1", service_name="web-1", stream="stderr"}"#
        );
        let meta = PodMeta {
            namespace: "shop".into(),
            name: "web-1".into(),
            uid: "u1".into(),
            node: Some("node-b".into()),
            labels: [
                ("app.kubernetes.io/name".to_string(), "web".to_string()),
                ("pod-template-hash".to_string(), "7d4b9".to_string()),
            ]
            .into(),
            ..PodMeta::default()
        };
        let s = container_stream(&c, Some("stdout"), None, Some(&meta));
        assert_eq!(
            s.labels,
            r#"{app="web", container="nginx", job="shop/nginx", namespace="shop", node="node-b", pod="web-1", service_name="web", stream="stdout"}"#
        );
        let md: Vec<_> = s
            .metadata
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            md,
            [
                ("pod_uid", "u1"),
                ("app_kubernetes_io_name", "web"),
                ("pod_template_hash", "7d4b9")
            ]
        );
    }

    #[test]
    fn keeps_deleted_pods_for_a_while() {
        let cache = PodCache::new();
        cache.upsert(PodMeta {
            uid: "u1".into(),
            ..PodMeta::default()
        });
        cache.mark_deleted("u1");
        cache.expire(Duration::from_secs(60));
        assert!(cache.get("u1").is_some());
        cache.expire(Duration::ZERO);
        assert!(cache.get("u1").is_none());
    }
}
