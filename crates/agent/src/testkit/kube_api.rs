//! A Kubernetes API server for tests: real HTTP on a real socket, real list/watch JSON
//! (`resourceVersion`, `watch=true` streams of `{"type":"ADDED","object":{…}}` lines, a
//! `410 Gone` Status event for a version older than it keeps), the pod log endpoint with
//! `follow`, `timestamps`, `sinceTime` and `previous`, `coordination.k8s.io/v1` Leases
//! (get, create, update with the optimistic concurrency of `resourceVersion`: a stale
//! update or a second create gets `409`), and ways to misbehave: answer errors, drop
//! connections, refuse Leases (403), lose update races.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

mod lease;
use lease::{lease_create, lease_get, lease_replace};

/// A pod as tests describe it.
#[derive(Debug, Clone, Default)]
pub struct FakePod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub containers: Vec<FakeContainer>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeContainer {
    pub name: String,
    pub restart_count: i32,
    pub state: FakeState,
    pub last_terminated: Option<FakeTerminated>,
}

#[derive(Debug, Clone, Default)]
pub enum FakeState {
    #[default]
    Waiting,
    Running {
        started_at: String,
    },
    Terminated(FakeTerminated),
}

#[derive(Debug, Clone, Default)]
pub struct FakeTerminated {
    pub reason: String,
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    pub container_id: String,
}

impl FakeTerminated {
    fn json(&self) -> Value {
        let mut v = json!({
            "exitCode": self.exit_code, "reason": self.reason,
            "startedAt": self.started_at, "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(s) = self.signal {
            v["signal"] = json!(s);
        }
        v
    }
}

impl FakePod {
    fn json(&self, rv: u64) -> Value {
        let map = |kv: &[(String, String)]| {
            Value::Object(kv.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
        };
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let state = match &c.state {
                    FakeState::Waiting => json!({"waiting": {"reason": "ContainerCreating"}}),
                    FakeState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
                    FakeState::Terminated(t) => json!({"terminated": t.json()}),
                };
                let last = match &c.last_terminated {
                    Some(t) => json!({"terminated": t.json()}),
                    None => json!({}),
                };
                json!({
                    "name": c.name, "ready": matches!(c.state, FakeState::Running { .. }),
                    "restartCount": c.restart_count, "image": "registry.example/app:1",
                    "imageID": "registry.example/app@sha256:00", "started": matches!(c.state, FakeState::Running { .. }),
                    "containerID": format!("containerd://{}-{}", self.uid, c.name),
                    "state": state, "lastState": last,
                })
            })
            .collect();
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "name": self.name, "namespace": self.namespace, "uid": self.uid,
                "resourceVersion": rv.to_string(), "creationTimestamp": "2024-05-01T09:59:00Z",
                "labels": map(&self.labels), "annotations": map(&self.annotations),
            },
            "spec": {
                "nodeName": self.node,
                "containers": self.containers.iter().map(|c| json!({"name": c.name, "image": "registry.example/app:1"})).collect::<Vec<_>>(),
            },
            "status": {"phase": "Running", "containerStatuses": statuses},
        })
    }
}

/// A `core/v1` Event as tests describe it.
#[derive(Debug, Clone, Default)]
pub struct FakeEvent {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub type_: String,
    pub reason: String,
    pub kind: String,
    pub object_name: String,
    pub message: String,
    pub count: i32,
    pub last_timestamp: String,
    /// The reporting node; empty for an event a controller reported (no node).
    pub host: String,
}

impl FakeEvent {
    /// With a `host` the kubelet of that node reported it, without one a controller.
    fn json(&self, rv: u64) -> Value {
        let component = if self.host.is_empty() {
            "replicaset-controller"
        } else {
            "kubelet"
        };
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                         "resourceVersion": rv.to_string(), "creationTimestamp": self.last_timestamp},
            "involvedObject": {"kind": self.kind, "name": self.object_name, "namespace": self.namespace, "apiVersion": "v1"},
            "reason": self.reason, "message": self.message, "type": self.type_, "count": self.count,
            "source": {"component": component, "host": self.host},
            "firstTimestamp": self.last_timestamp, "lastTimestamp": self.last_timestamp,
            "reportingComponent": component, "reportingInstance": self.host,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pods,
    Events,
}

struct Change {
    rv: u64,
    kind: Kind,
    typ: &'static str,
    obj: Value,
}

type LogKey = (String, String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    pods: BTreeMap<String, Value>,
    events: BTreeMap<String, Value>,
    history: Vec<Change>,
    /// Watches from before this version get 410 Gone.
    oldest: u64,
    logs: HashMap<LogKey, Vec<(i64, String)>>,
    previous_logs: HashMap<LogKey, Vec<(i64, String)>>,
    ended: std::collections::HashSet<LogKey>,
    /// How often each container restarted: a follow stream belongs to one instance.
    restarts: HashMap<LogKey, u32>,
    fail_next: u32,
    fail_logs: u32,
    requests: Vec<String>,
    leases: BTreeMap<(String, String), Value>,
    lease_conflicts: u32,
    forbid_leases: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    /// Bumped to drop every open watch and log stream.
    cut: watch::Sender<u64>,
}

/// Runs on its own thread and runtime; stops when dropped.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKube {
    pub fn start() -> std::io::Result<FakeKube> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 100,
                ..Inner::default()
            }),
            changed: watch::channel(0).0,
            cut: watch::channel(0).0,
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = shared.clone();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new()
                    .route("/api/v1/pods", axum::routing::get(list_or_watch_pods))
                    .route("/api/v1/events", axum::routing::get(list_or_watch_events))
                    .route(
                        "/api/v1/namespaces/{ns}/pods/{pod}/log",
                        axum::routing::get(pod_log),
                    )
                    .route(
                        "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                        axum::routing::post(lease_create),
                    )
                    .route(
                        "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                        axum::routing::get(lease_get).put(lease_replace),
                    )
                    .fallback(|| async {
                        (
                            StatusCode::NOT_FOUND,
                            status_json(404, "NotFound", "no such path"),
                        )
                    })
                    .with_state(st);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(FakeKube {
            addr,
            shared,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig pointing at this server into `dir` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let path = dir.join("kubeconfig.yaml");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: default\ncurrent-context: fake\nusers:\n- name: tester\n  user:\n    token: fake-token\n",
                self.url()
            ),
        )?;
        Ok(path)
    }

    fn change(&self, kind: Kind, typ: &'static str, uid: &str, make: impl FnOnce(u64) -> Value) {
        let mut g = self.shared.inner.lock();
        g.rv += 1;
        let rv = g.rv;
        let obj = make(rv);
        let map = match kind {
            Kind::Pods => &mut g.pods,
            Kind::Events => &mut g.events,
        };
        if typ == "DELETED" {
            map.remove(uid);
        } else {
            map.insert(uid.to_string(), obj.clone());
        }
        g.history.push(Change { rv, kind, typ, obj });
        drop(g);
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// Creates or updates a pod (ADDED or MODIFIED).
    pub fn apply_pod(&self, pod: &FakePod) {
        let exists = self.shared.inner.lock().pods.contains_key(&pod.uid);
        let typ = if exists { "MODIFIED" } else { "ADDED" };
        self.change(Kind::Pods, typ, &pod.uid, |rv| pod.json(rv));
    }

    pub fn delete_pod(&self, pod: &FakePod) {
        self.change(Kind::Pods, "DELETED", &pod.uid, |rv| pod.json(rv));
    }

    pub fn add_event(&self, ev: &FakeEvent) {
        let exists = self.shared.inner.lock().events.contains_key(&ev.uid);
        let typ = if exists { "MODIFIED" } else { "ADDED" };
        self.change(Kind::Events, typ, &ev.uid, |rv| ev.json(rv));
    }

    /// Forgets history: watches from any version before now get `410 Gone`.
    pub fn compact(&self) {
        let mut g = self.shared.inner.lock();
        g.oldest = g.rv + 1;
        g.history.clear();
    }

    /// The next `n` requests are answered with 500 and a Status body.
    pub fn fail_requests(&self, n: u32) {
        self.shared.inner.lock().fail_next = n;
    }

    /// The next `n` pod log requests are answered with 500 (lists and watches work).
    pub fn fail_log_requests(&self, n: u32) {
        self.shared.inner.lock().fail_logs = n;
    }

    /// Drops every open watch and log stream (clients see the connection end).
    pub fn close_connections(&self) {
        self.shared.cut.send_modify(|v| *v += 1);
    }

    /// Paths and queries of the requests received so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().requests.clone()
    }

    /// The Lease `ns/name` as stored, with its `resourceVersion`.
    pub fn lease(&self, ns: &str, name: &str) -> Option<Value> {
        self.shared
            .inner
            .lock()
            .leases
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// The Lease's `spec.holderIdentity` (`None` when there is no Lease or no holder).
    pub fn lease_holder(&self, ns: &str, name: &str) -> Option<String> {
        self.lease(ns, name)?["spec"]["holderIdentity"]
            .as_str()
            .map(str::to_string)
    }

    /// Writes a Lease as another client would (a new `resourceVersion`).
    pub fn put_lease(&self, ns: &str, name: &str, spec: Value, annotations: Value) {
        let mut g = self.shared.inner.lock();
        g.rv += 1;
        let lease = json!({
            "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "uid": format!("lease-{ns}-{name}"),
                         "resourceVersion": g.rv.to_string(), "creationTimestamp": "2024-05-01T09:59:00Z",
                         "annotations": annotations},
            "spec": spec,
        });
        g.leases.insert((ns.to_string(), name.to_string()), lease);
    }

    /// The next `n` Lease updates lose a race: `409 Conflict` as if another agent had
    /// written first.
    pub fn conflict_lease_updates(&self, n: u32) {
        self.shared.inner.lock().lease_conflicts = n;
    }

    /// Answers every Lease request with `403 Forbidden` (no RBAC for leases) while set.
    pub fn forbid_leases(&self, forbid: bool) {
        self.shared.inner.lock().forbid_leases = forbid;
    }

    /// Appends a line to a container's current log (`ts` in Unix nanoseconds).
    pub fn append_log(&self, ns: &str, pod: &str, container: &str, ts: i64, msg: &str) {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        self.shared
            .inner
            .lock()
            .logs
            .entry(key)
            .or_default()
            .push((ts, msg.to_string()));
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// The container stopped: follow streams end after its last line.
    pub fn end_log(&self, ns: &str, pod: &str, container: &str) {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        self.shared.inner.lock().ended.insert(key);
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// The container restarted: its log becomes the `previous=true` log and a new one
    /// begins.
    pub fn restart_log(&self, ns: &str, pod: &str, container: &str) {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        let mut g = self.shared.inner.lock();
        let cur = g.logs.remove(&key).unwrap_or_default();
        g.previous_logs.insert(key.clone(), cur);
        g.ended.remove(&key);
        *g.restarts.entry(key).or_default() += 1;
        drop(g);
        self.shared.changed.send_modify(|v| *v += 1);
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.close_connections();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status_json(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
}

/// Counts the request; answers 500 when told to fail.
fn gate(st: &Shared, what: String) -> Option<Response> {
    let mut g = st.inner.lock();
    g.requests.push(what);
    if g.fail_next > 0 {
        g.fail_next -= 1;
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "application/json")],
                status_json(500, "InternalError", "etcd is having a bad day"),
            )
                .into_response(),
        );
    }
    None
}

async fn list_or_watch_pods(
    State(st): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_or_watch(st, Kind::Pods, q).await
}

async fn list_or_watch_events(
    State(st): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    list_or_watch(st, Kind::Events, q).await
}

fn matches(obj: &Value, selector: Option<&String>) -> bool {
    let Some(sel) = selector else { return true };
    sel.split(',').all(|term| match term.split_once('=') {
        Some(("spec.nodeName", v)) => obj["spec"]["nodeName"].as_str() == Some(v),
        _ => true,
    })
}

async fn list_or_watch(st: Arc<Shared>, kind: Kind, q: HashMap<String, String>) -> Response {
    let what = format!("{kind:?} {}", serde_json::to_string(&q).unwrap_or_default());
    if let Some(r) = gate(&st, what) {
        return r;
    }
    let selector = q.get("fieldSelector");
    if q.get("watch").map(String::as_str) != Some("true") {
        let g = st.inner.lock();
        let (map, list_kind) = match kind {
            Kind::Pods => (&g.pods, "PodList"),
            Kind::Events => (&g.events, "EventList"),
        };
        let items: Vec<&Value> = map.values().filter(|o| matches(o, selector)).collect();
        let body = json!({"kind": list_kind, "apiVersion": "v1",
                          "metadata": {"resourceVersion": g.rv.to_string()}, "items": items});
        return ([("content-type", "application/json")], body.to_string()).into_response();
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let selector = selector.cloned();
    let mut changed = st.changed.subscribe();
    let mut cut = st.cut.subscribe();
    cut.borrow_and_update();
    tokio::spawn(async move {
        let mut cursor = from;
        {
            let g = st.inner.lock();
            if from < g.oldest {
                let ev = json!({"type": "ERROR", "object": serde_json::from_str::<Value>(&status_json(410, "Expired",
                    &format!("too old resource version: {from} ({})", g.oldest))).unwrap_or_default()});
                let _ = tx.try_send(Bytes::from(format!("{ev}\n")));
                return;
            }
        }
        loop {
            changed.borrow_and_update();
            let batch: Vec<String> = {
                let g = st.inner.lock();
                let out = g
                    .history
                    .iter()
                    .filter(|c| {
                        c.rv > cursor && c.kind == kind && matches(&c.obj, selector.as_ref())
                    })
                    .map(|c| format!("{}\n", json!({"type": c.typ, "object": c.obj})))
                    .collect();
                cursor = g.rv;
                out
            };
            for line in batch {
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = cut.changed() => return,
            }
        }
    });
    stream_response(rx, "application/json")
}

fn stream_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn pod_log(
    State(st): State<Arc<Shared>>,
    UrlPath((ns, pod)): UrlPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let what = format!(
        "log {ns}/{pod} {}",
        serde_json::to_string(&q).unwrap_or_default()
    );
    if let Some(r) = gate(&st, what) {
        return r;
    }
    {
        let mut g = st.inner.lock();
        if g.fail_logs > 0 {
            g.fail_logs -= 1;
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                status_json(500, "InternalError", "kubelet unreachable"),
            )
                .into_response();
        }
    }
    let container = q.get("container").cloned().unwrap_or_default();
    let key = (ns.clone(), pod.clone(), container);
    let follow = q.get("follow").map(String::as_str) == Some("true");
    let previous = q.get("previous").map(String::as_str) == Some("true");
    let timestamps = q.get("timestamps").map(String::as_str) == Some("true");
    let since = q
        .get("sinceTime")
        .and_then(|s| protocol::time::parse_rfc3339(s))
        .unwrap_or(i64::MIN);
    let instance = {
        let g = st.inner.lock();
        let exists = g
            .pods
            .values()
            .any(|p| p["metadata"]["namespace"] == ns && p["metadata"]["name"] == pod);
        if !exists {
            return (
                StatusCode::NOT_FOUND,
                status_json(404, "NotFound", &format!("pods \"{pod}\" not found")),
            )
                .into_response();
        }
        if previous && !g.previous_logs.contains_key(&key) {
            return (
                StatusCode::BAD_REQUEST,
                status_json(400, "BadRequest", "previous terminated container not found"),
            )
                .into_response();
        }
        g.restarts.get(&key).copied().unwrap_or(0)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut changed = st.changed.subscribe();
    let mut cut = st.cut.subscribe();
    cut.borrow_and_update();
    tokio::spawn(async move {
        let mut sent = 0usize;
        loop {
            changed.borrow_and_update();
            let (lines, ended) = {
                let g = st.inner.lock();
                // Like the kubelet's, a follow stream ends with its container instance:
                // after a restart it sends the rest of the instance it began on, never
                // the new one.
                let restarts = g.restarts.get(&key).copied().unwrap_or(0);
                let (src, ended) = if previous || restarts == instance + 1 {
                    (g.previous_logs.get(&key), true)
                } else if restarts == instance {
                    (g.logs.get(&key), g.ended.contains(&key))
                } else {
                    (None, true)
                };
                let all = src.map(|v| v.as_slice()).unwrap_or_default();
                let lines: Vec<String> = all
                    .iter()
                    .skip(sent)
                    .filter(|(ts, _)| *ts >= since)
                    .map(|(ts, m)| {
                        if timestamps {
                            format!("{} {m}\n", protocol::time::format_rfc3339_nano(*ts))
                        } else {
                            format!("{m}\n")
                        }
                    })
                    .collect();
                sent = all.len();
                (lines, ended)
            };
            for l in lines {
                if tx.send(Bytes::from(l)).await.is_err() {
                    return;
                }
            }
            if !follow || ended {
                return;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = cut.changed() => return,
            }
        }
    });
    stream_response(rx, "text/plain")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A follow stream ends with the container instance it began on: it sends that
    /// instance's last lines and never a line of the instance after a restart.
    #[tokio::test]
    async fn a_follow_stream_ends_with_its_container_instance() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kube = FakeKube::start().unwrap();
        kube.apply_pod(&FakePod {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u".into(),
            containers: vec![FakeContainer {
                name: "c".into(),
                ..FakeContainer::default()
            }],
            ..FakePod::default()
        });
        kube.append_log("ns", "p", "c", 1, "first");
        let url = format!(
            "{}/api/v1/namespaces/ns/pods/p/log?container=c&follow=true",
            kube.url()
        );
        let mut resp = reqwest::get(&url).await.unwrap();
        let chunk = resp.chunk().await.unwrap().unwrap();
        assert_eq!(&chunk[..], b"first\n");
        kube.append_log("ns", "p", "c", 2, "last words");
        kube.restart_log("ns", "p", "c");
        kube.append_log("ns", "p", "c", 3, "reborn");
        let rest = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
            .await
            .expect("the follow stream ends when its container restarts")
            .unwrap();
        assert_eq!(&rest[..], b"last words\n");
    }
}
