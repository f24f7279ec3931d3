//! Kubernetes events (`core/v1` Events) as a log stream, labelled like Grafana's
//! eventhandler integration so existing dashboards find them:
//! `{job="integrations/kubernetes/eventhandler", namespace="…", source="kubernetes-events"}`
//! with logfmt lines `type=Warning reason=BackOff kind=Pod name=web-1 count=5
//! component=kubelet msg="Back-off restarting failed container"`.
//!
//! The resource version reached is a position: a restart watches on from it, or, when the
//! API no longer has it, lists and skips events at or before the last one sent.
//!
//! In a DaemonSet the events are split between agents by a rule that needs only the event
//! itself, so that every event has exactly one collector whatever each agent knows: an
//! event reported from a node (by its kubelet: `source.host`) is that node's agent's; an
//! event no node reports (a ReplicaSet's `FailedCreate`, a Deployment scaling, the
//! scheduler's `FailedScheduling`, the node controller's `NodeNotReady`) is collected by
//! the one agent holding the Lease ([`super::lease`]), whose position lives in the Lease.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use protocol::Labels;
use tokio::sync::{mpsc, watch};

use super::lease::Term;
use super::{Change, list_watch, logfmt_pair, nanos};
use crate::deliver::MARK_ONLY;
use crate::entry::{Entry, Mark, Stream};
use crate::metrics::Metrics;
use crate::positions::EventsPos;

const SEEN_KEPT: usize = 10_000;

/// Which events a watch collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every event (one agent for the cluster).
    All,
    /// Events reported from this node.
    Node(String),
    /// Events no node reports, by the leader of this term; its marks are
    /// [`Mark::ClusterEvents`].
    Cluster { term: i64 },
}

pub struct EventWatch {
    scope: Scope,
    metrics: Arc<Metrics>,
    /// Events at or before this time were sent by a previous run.
    sent_until: Option<i64>,
    last_ts: i64,
    seen: HashSet<String>,
    order: VecDeque<String>,
    streams: HashMap<String, Arc<Stream>>,
    mark_stream: Arc<Stream>,
}

impl EventWatch {
    pub fn new(scope: Scope, metrics: Arc<Metrics>, pos: Option<&EventsPos>) -> EventWatch {
        EventWatch {
            scope,
            metrics,
            sent_until: pos.map(|p| p.ts),
            last_ts: pos.map(|p| p.ts).unwrap_or(0),
            seen: HashSet::new(),
            order: VecDeque::new(),
            streams: HashMap::new(),
            mark_stream: Stream::new(&Labels::new(), Vec::new()),
        }
    }

    pub async fn run(
        mut self,
        client: kube::Client,
        start_rv: Option<String>,
        tx: mpsc::Sender<Entry>,
    ) {
        let api: Api<Event> = Api::all(client);
        let metrics = self.metrics.clone();
        list_watch(api, "events", None, start_rv, &metrics, &tx, |c| {
            self.change(c)
        })
        .await;
    }

    fn change(&mut self, c: Change<Event>) -> Vec<Entry> {
        let mut out = Vec::new();
        match c {
            Change::Listed(evs) => {
                let mut evs: Vec<(i64, Event)> =
                    evs.into_iter().map(|e| (event_ts(&e), e)).collect();
                evs.sort_by_key(|(ts, _)| *ts);
                for (ts, e) in evs {
                    if self.sent_until.is_some_and(|s| ts <= s) {
                        continue;
                    }
                    self.event(ts, &e, false, &mut out);
                }
                self.sent_until = None;
            }
            Change::Applied(e) => self.event(event_ts(&e), &e, true, &mut out),
            Change::Deleted(_) => {}
            Change::Reached(rv) => out.push(Entry {
                stream: self.mark_stream.clone(),
                ts: MARK_ONLY,
                line: String::new(),
                mark: Some(self.mark(rv)),
            }),
        }
        out
    }

    /// `watched`: the event came from the watch, so its own resource version is a
    /// position to resume from, carried by its line (in the same batch as the line).
    fn event(&mut self, ts: i64, e: &Event, watched: bool, out: &mut Vec<Entry>) {
        let key = format!(
            "{}/{}",
            e.metadata.uid.as_deref().unwrap_or(""),
            e.metadata.resource_version.as_deref().unwrap_or("")
        );
        if !self.seen.insert(key.clone()) {
            return;
        }
        self.order.push_back(key);
        while self.order.len() > SEEN_KEPT {
            if let Some(k) = self.order.pop_front() {
                self.seen.remove(&k);
            }
        }
        if !self.wanted(e) {
            return;
        }
        let namespace = e
            .metadata
            .namespace
            .clone()
            .or_else(|| e.involved_object.namespace.clone())
            .unwrap_or_else(|| "default".into());
        let stream = self
            .streams
            .entry(namespace.clone())
            .or_insert_with(|| {
                Stream::new(
                    &Labels::from_pairs([
                        ("job", "integrations/kubernetes/eventhandler"),
                        ("namespace", namespace.as_str()),
                        ("source", "kubernetes-events"),
                    ]),
                    Vec::new(),
                )
            })
            .clone();
        self.last_ts = self.last_ts.max(ts);
        self.metrics.events.inc();
        self.metrics.lines_read.inc();
        let mark = e
            .metadata
            .resource_version
            .clone()
            .filter(|_| watched)
            .map(|rv| self.mark(rv));
        out.push(Entry {
            stream,
            ts,
            line: event_line(e),
            mark,
        });
    }

    fn mark(&self, resource_version: String) -> Mark {
        match self.scope {
            Scope::Cluster { term } => Mark::ClusterEvents {
                resource_version,
                ts: self.last_ts,
                term,
            },
            _ => Mark::Events {
                resource_version,
                ts: self.last_ts,
            },
        }
    }

    fn wanted(&self, e: &Event) -> bool {
        match &self.scope {
            Scope::All => true,
            Scope::Node(node) => reporting_node(e) == Some(node.as_str()),
            Scope::Cluster { .. } => reporting_node(e).is_none(),
        }
    }
}

/// The node an event was reported from: the kubelet's `source.host` (also set by
/// kube-proxy), or the `reportingInstance` of an event the kubelet wrote through the
/// newer events API. `None` for events of controllers and the scheduler, which run on no
/// particular node as far as the event says.
pub fn reporting_node(e: &Event) -> Option<&str> {
    let host = e.source.as_ref().and_then(|s| s.host.as_deref());
    host.filter(|h| !h.is_empty()).or_else(|| {
        e.reporting_instance
            .as_deref()
            .filter(|i| !i.is_empty() && e.reporting_component.as_deref() == Some("kubelet"))
    })
}

/// Collects the events no node reports during each term this agent leads, from the
/// position the Lease carried; stops collecting when the term ends.
pub async fn follow_terms(
    client: kube::Client,
    metrics: Arc<Metrics>,
    mut terms: watch::Receiver<Option<Term>>,
    tx: mpsc::Sender<Entry>,
) {
    struct AbortOnDrop(tokio::task::JoinHandle<()>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut running: Option<AbortOnDrop> = None;
    loop {
        let term = terms.borrow_and_update().clone();
        drop(running.take());
        if let Some(t) = term {
            let w = EventWatch::new(
                Scope::Cluster { term: t.number },
                metrics.clone(),
                t.position.as_ref(),
            );
            let rv = t.position.map(|p| p.resource_version);
            running = Some(AbortOnDrop(tokio::spawn(w.run(
                client.clone(),
                rv,
                tx.clone(),
            ))));
        }
        if terms.changed().await.is_err() {
            return;
        }
    }
}

fn event_ts(e: &Event) -> i64 {
    e.last_timestamp
        .as_ref()
        .map(nanos)
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_nanosecond() as i64))
        .or_else(|| e.first_timestamp.as_ref().map(nanos))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(nanos))
        .unwrap_or_else(crate::files::tail::now_nanos)
}

/// `type=… reason=… kind=… name=… [count=…] [component=…] msg=…`
pub fn event_line(e: &Event) -> String {
    let mut s = String::with_capacity(160);
    logfmt_pair(&mut s, "type", e.type_.as_deref().unwrap_or("Normal"));
    logfmt_pair(&mut s, "reason", e.reason.as_deref().unwrap_or(""));
    logfmt_pair(
        &mut s,
        "kind",
        e.involved_object.kind.as_deref().unwrap_or(""),
    );
    logfmt_pair(
        &mut s,
        "name",
        e.involved_object.name.as_deref().unwrap_or(""),
    );
    if let Some(c) = e.count.or(e.series.as_ref().and_then(|s| s.count)) {
        logfmt_pair(&mut s, "count", &c.to_string());
    }
    let component = e
        .source
        .as_ref()
        .and_then(|s| s.component.as_deref())
        .or(e.reporting_component.as_deref())
        .filter(|c| !c.is_empty());
    if let Some(c) = component {
        logfmt_pair(&mut s, "component", c);
    }
    logfmt_pair(&mut s, "msg", e.message.as_deref().unwrap_or("").trim_end());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(uid: &str, rv: &str, ts: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1.17a", "namespace": "shop", "uid": uid, "resourceVersion": rv},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
            "reason": "BackOff", "message": "Back-off restarting failed container app",
            "type": "Warning", "count": 5, "source": {"component": "kubelet", "host": "node-a"},
            "lastTimestamp": ts
        }))
        .unwrap()
    }

    #[test]
    fn event_lines_and_resume() {
        let mut w = EventWatch::new(
            Scope::All,
            Metrics::new(),
            Some(&EventsPos {
                resource_version: "10".into(),
                ts: 1_714_557_600_000_000_000,
            }),
        );
        let out = w.change(Change::Listed(vec![
            ev("a", "9", "2024-05-01T10:00:00Z"),
            ev("b", "11", "2024-05-01T10:00:01Z"),
        ]));
        assert_eq!(out.len(), 1, "the event already sent is skipped");
        assert_eq!(
            out[0].line,
            r#"type=Warning reason=BackOff kind=Pod name=web-1 count=5 component=kubelet msg="Back-off restarting failed container app""#
        );
        assert_eq!(
            out[0].stream.labels,
            r#"{job="integrations/kubernetes/eventhandler", namespace="shop", source="kubernetes-events"}"#
        );
        assert!(
            w.change(Change::Applied(ev("b", "11", "2024-05-01T10:00:01Z")))
                .is_empty()
        );
        let m = w.change(Change::Reached("12".into()));
        assert!(
            matches!(&m[0].mark, Some(Mark::Events { resource_version, .. }) if resource_version == "12")
        );
        let mut node_only = EventWatch::new(Scope::Node("node-b".into()), Metrics::new(), None);
        assert!(
            node_only
                .change(Change::Applied(ev("c", "13", "2024-05-01T10:00:02Z")))
                .is_empty()
        );
    }

    fn cluster_event(uid: &str, kind: &str, host: Option<&str>) -> Event {
        let mut v = serde_json::json!({
            "metadata": {"name": format!("x.{uid}"), "namespace": "shop", "uid": uid, "resourceVersion": "20"},
            "involvedObject": {"kind": kind, "name": "x", "namespace": "shop"},
            "reason": "R", "message": "m", "type": "Warning",
            "lastTimestamp": "2024-05-01T10:00:00Z"
        });
        if let Some(h) = host {
            v["source"] = serde_json::json!({"component": "kubelet", "host": h});
        } else {
            v["source"] = serde_json::json!({"component": "replicaset-controller"});
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_agents_and_the_leader_split_events_without_overlap_or_gap() {
        let nodes = ["node-a", "node-b"];
        let mut events = vec![
            cluster_event("1", "Pod", Some("node-a")),
            cluster_event("2", "Pod", Some("node-b")),
            cluster_event("3", "Node", Some("node-a")),
            cluster_event("4", "ReplicaSet", None),
            cluster_event("5", "Pod", None),
            cluster_event("6", "Node", None),
            cluster_event("7", "Deployment", Some("")),
        ];
        // Written through events.k8s.io by a kubelet: no source, a reporting instance.
        let mut v = serde_json::to_value(cluster_event("8", "Pod", None)).unwrap();
        v["source"] = serde_json::json!({});
        v["reportingComponent"] = "kubelet".into();
        v["reportingInstance"] = "node-b".into();
        events.push(serde_json::from_value(v).unwrap());
        // The scheduler's reporting instance is not a node.
        let mut v = serde_json::to_value(cluster_event("9", "Pod", None)).unwrap();
        v["reportingComponent"] = "default-scheduler".into();
        v["reportingInstance"] = "default-scheduler-node-a".into();
        events.push(serde_json::from_value(v).unwrap());

        let mut collectors: Vec<EventWatch> = nodes
            .iter()
            .map(|n| EventWatch::new(Scope::Node(n.to_string()), Metrics::new(), None))
            .collect();
        collectors.push(EventWatch::new(
            Scope::Cluster { term: 3 },
            Metrics::new(),
            None,
        ));
        let mut owners = Vec::new();
        for e in &events {
            let got: Vec<usize> = collectors
                .iter()
                .enumerate()
                .filter(|(_, c)| c.wanted(e))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got.len(), 1, "{e:?} is collected by {got:?}");
            owners.push(got[0]);
        }
        assert_eq!(owners, [0, 1, 0, 2, 2, 2, 2, 1, 2]);

        // The leader's marks carry its term.
        let leader = collectors.last_mut().unwrap();
        let out = leader.change(Change::Applied(events[3].clone()));
        assert!(matches!(
            &out[0].mark,
            Some(Mark::ClusterEvents { resource_version, term: 3, .. }) if resource_version == "20"
        ));
    }
}
