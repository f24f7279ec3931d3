//! Kubernetes events (`core/v1` Events) as a log stream, labelled like Grafana's
//! eventhandler integration so existing dashboards find them:
//! `{job="integrations/kubernetes/eventhandler", namespace="…", source="kubernetes-events"}`
//! with logfmt lines `type=Warning reason=BackOff kind=Pod name=web-1 count=5
//! component=kubelet msg="Back-off restarting failed container"`.
//!
//! The resource version reached is a position: a restart watches on from it, or, when the
//! API no longer has it, lists and skips events at or before the last one sent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use protocol::Labels;
use tokio::sync::mpsc;

use super::{Change, list_watch, logfmt_pair, nanos};
use crate::deliver::MARK_ONLY;
use crate::entry::{Entry, Mark, Stream};
use crate::metrics::Metrics;
use crate::pods::PodCache;
use crate::positions::EventsPos;

const SEEN_KEPT: usize = 10_000;

pub struct EventWatch {
    cache: Arc<PodCache>,
    /// Only events about this node and its pods; `None`: all events.
    node: Option<String>,
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
    pub fn new(
        cache: Arc<PodCache>,
        node: Option<String>,
        metrics: Arc<Metrics>,
        pos: Option<&EventsPos>,
    ) -> EventWatch {
        EventWatch {
            cache,
            node,
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
                mark: Some(Mark::Events {
                    resource_version: rv,
                    ts: self.last_ts,
                }),
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
        let mark =
            e.metadata
                .resource_version
                .clone()
                .filter(|_| watched)
                .map(|resource_version| Mark::Events {
                    resource_version,
                    ts: self.last_ts,
                });
        out.push(Entry {
            stream,
            ts,
            line: event_line(e),
            mark,
        });
    }

    /// In node scope: events about this node, its pods (also recently deleted ones), or
    /// reported from it.
    fn wanted(&self, e: &Event) -> bool {
        let Some(node) = &self.node else { return true };
        let o = &e.involved_object;
        let name = o.name.as_deref().unwrap_or("");
        match o.kind.as_deref() {
            Some("Node") => name == node,
            Some("Pod") => {
                let ns = o.namespace.as_deref().unwrap_or("");
                match self.cache.find(ns, name) {
                    Some(p) => p.node.as_deref() == Some(node.as_str()),
                    None => {
                        e.source.as_ref().and_then(|s| s.host.as_deref()) == Some(node.as_str())
                    }
                }
            }
            _ => {
                e.source.as_ref().and_then(|s| s.host.as_deref()) == Some(node.as_str())
                    || e.reporting_instance.as_deref() == Some(node.as_str())
            }
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
            PodCache::new(),
            None,
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
        let mut node_only =
            EventWatch::new(PodCache::new(), Some("node-b".into()), Metrics::new(), None);
        assert!(
            node_only
                .change(Change::Applied(ev("c", "13", "2024-05-01T10:00:02Z")))
                .is_empty()
        );
    }
}
