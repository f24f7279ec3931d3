//! OTLP logs to Loki streams, as Loki 3.x maps them (`otlpToLokiPushRequest`): the
//! resource attributes of Loki's default list become index labels (names with `.` turned
//! into `_`), every other resource, scope and log attribute becomes structured metadata
//! (maps flattened to `parent_child`), and so do the record's fields (`severity_text`,
//! `severity_number`, `trace_id`, `span_id`, `flags`, `observed_timestamp`, the scope's
//! `scope_name` and `scope_version`). The body becomes the line. A record's level comes
//! from its severity when nothing else names one.

use std::collections::BTreeMap;

use logql::detect::{self, LEVEL_FIELDS, level};
use protocol::Labels;

use super::proto::{AnyValue, KeyValue, LogRecord, Value};
use crate::push::sanitize_name;

/// Resource attributes Loki indexes by default
/// (`distributor.otlp.default_resource_attributes_as_index_labels`).
pub const INDEXED_RESOURCE_ATTRIBUTES: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// One stream of the mapped request.
#[derive(Debug, Default, PartialEq)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

#[derive(Debug, PartialEq)]
pub struct Entry {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// Maps a request; records of resources with the same index labels share a stream.
/// `now` stamps records that carry no time at all.
pub fn map(req: super::proto::ExportLogsServiceRequest, now: i64) -> Vec<Stream> {
    let mut streams: BTreeMap<Labels, Vec<Entry>> = BTreeMap::new();
    for rl in req.resource_logs {
        let attrs = rl.resource.map(|r| r.attributes).unwrap_or_default();
        let mut labels = Labels::new();
        let mut resource_meta = Vec::new();
        for kv in &attrs {
            if INDEXED_RESOURCE_ATTRIBUTES.contains(&kv.key.as_str()) {
                let mut pairs = Vec::new();
                flatten(kv, "", &mut pairs);
                for (n, v) in pairs {
                    labels.set(&n, &v);
                }
            } else {
                flatten(kv, "", &mut resource_meta);
            }
        }
        // Loki gives every OTLP stream a service_name: service.name (already indexed),
        // else the first discovery label present, else unknown_service.
        if labels.get(detect::SERVICE_NAME).is_none_or(str::is_empty)
            && let Some(s) = detect::service_name(&labels).map(str::to_string)
        {
            labels.set(detect::SERVICE_NAME, &s);
        }
        let entries = streams.entry(labels.clone()).or_default();
        for sl in rl.scope_logs {
            let mut scope_meta = Vec::new();
            if let Some(scope) = &sl.scope {
                for kv in &scope.attributes {
                    flatten(kv, "", &mut scope_meta);
                }
                if !scope.name.is_empty() {
                    scope_meta.push(("scope_name".to_string(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_meta.push(("scope_version".to_string(), scope.version.clone()));
                }
                if scope.dropped_attributes_count != 0 {
                    scope_meta.push((
                        "scope_dropped_attributes_count".to_string(),
                        scope.dropped_attributes_count.to_string(),
                    ));
                }
            }
            for rec in sl.log_records {
                entries.push(entry(rec, &labels, &resource_meta, &scope_meta, now));
            }
        }
    }
    streams
        .into_iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(labels, entries)| Stream { labels, entries })
        .collect()
}

fn entry(
    rec: LogRecord,
    labels: &Labels,
    resource_meta: &[(String, String)],
    scope_meta: &[(String, String)],
    now: i64,
) -> Entry {
    let mut md =
        Vec::with_capacity(rec.attributes.len() + resource_meta.len() + scope_meta.len() + 8);
    for kv in &rec.attributes {
        flatten(kv, "", &mut md);
    }
    if rec.time_unix_nano != 0 && rec.observed_time_unix_nano != 0 {
        md.push((
            "observed_timestamp".into(),
            rec.observed_time_unix_nano.to_string(),
        ));
    }
    if rec.severity_number != 0 {
        md.push(("severity_number".into(), rec.severity_number.to_string()));
    }
    if !rec.severity_text.is_empty() {
        md.push(("severity_text".into(), rec.severity_text.clone()));
    }
    if rec.dropped_attributes_count != 0 {
        md.push((
            "dropped_attributes_count".into(),
            rec.dropped_attributes_count.to_string(),
        ));
    }
    if rec.flags != 0 {
        md.push(("flags".into(), rec.flags.to_string()));
    }
    if !rec.trace_id.is_empty() && rec.trace_id.iter().any(|b| *b != 0) {
        md.push(("trace_id".into(), hex(&rec.trace_id)));
    }
    if !rec.span_id.is_empty() && rec.span_id.iter().any(|b| *b != 0) {
        md.push(("span_id".into(), hex(&rec.span_id)));
    }
    md.extend_from_slice(resource_meta);
    md.extend_from_slice(scope_meta);
    // Loki reads the level from a level field first, then from severity_number, then from
    // the line; the push path does the first and the last.
    let has_level_field = md.iter().any(|(n, _)| LEVEL_FIELDS.contains(&n.as_str()))
        || LEVEL_FIELDS.iter().any(|f| labels.get(f).is_some());
    if !has_level_field && rec.severity_number != 0 {
        md.push((
            detect::DETECTED_LEVEL.into(),
            level_of(rec.severity_number).into(),
        ));
    }
    let ts = match (rec.time_unix_nano, rec.observed_time_unix_nano) {
        (0, 0) => now,
        (0, o) => i64::try_from(o).unwrap_or(i64::MAX),
        (t, _) => i64::try_from(t).unwrap_or(i64::MAX),
    };
    Entry {
        ts,
        line: rec.body.as_ref().map(as_string).unwrap_or_default(),
        metadata: md,
    }
}

/// OpenTelemetry's severity number ranges (1-4 trace ... 21-24 fatal).
fn level_of(n: i32) -> &'static str {
    match n {
        1..=4 => level::TRACE,
        5..=8 => level::DEBUG,
        9..=12 => level::INFO,
        13..=16 => level::WARN,
        17..=20 => level::ERROR,
        21..=24 => level::FATAL,
        _ => level::UNKNOWN,
    }
}

/// An attribute as `name=value` pairs: maps become one pair per leaf, `parent_child`.
fn flatten(kv: &KeyValue, prefix: &str, out: &mut Vec<(String, String)>) {
    let key = if prefix.is_empty() {
        sanitize_name(kv.key.as_bytes()).into_owned()
    } else {
        sanitize_name(format!("{prefix}_{}", kv.key).as_bytes()).into_owned()
    };
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::Kvlist(l)) => {
            for inner in &l.values {
                flatten(inner, &key, out);
            }
        }
        _ => out.push((key, kv.value.as_ref().map(as_string).unwrap_or_default())),
    }
}

/// A value as text, as OpenTelemetry's `AsString` writes it: strings as they are, numbers
/// in decimal, bytes in base64, arrays and maps as JSON.
pub fn as_string(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Int(i)) => i.to_string(),
        Some(Value::Double(d)) => protocol::time::format_sample_value(*d),
        Some(Value::Bytes(b)) => super::base64::encode(b),
        Some(Value::Array(_) | Value::Kvlist(_)) => to_json(v).to_string(),
    }
}

fn to_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        None => J::Null,
        Some(Value::String(s)) => J::String(s.clone()),
        Some(Value::Bool(b)) => J::Bool(*b),
        Some(Value::Int(i)) => J::from(*i),
        Some(Value::Double(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(Value::Bytes(b)) => J::String(super::base64::encode(b)),
        Some(Value::Array(a)) => J::Array(a.values.iter().map(to_json).collect()),
        Some(Value::Kvlist(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, to_json)))
                .collect(),
        ),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::super::proto::*;
    use super::*;

    fn s(v: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::String(v.into())),
        })
    }

    fn kv(k: &str, v: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: v,
        }
    }

    #[test]
    fn maps_like_loki() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("checkout")),
                        kv("k8s.namespace.name", s("shop")),
                        kv("host.name", s("node-1")),
                        kv(
                            "process",
                            Some(AnyValue {
                                value: Some(Value::Kvlist(KeyValueList {
                                    values: vec![kv(
                                        "pid",
                                        Some(AnyValue {
                                            value: Some(Value::Int(42)),
                                        }),
                                    )],
                                })),
                            }),
                        ),
                    ],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.logger".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 10,
                            observed_time_unix_nano: 11,
                            severity_number: 17,
                            body: s("payment failed"),
                            attributes: vec![kv(
                                "http.status_code",
                                Some(AnyValue {
                                    value: Some(Value::Int(502)),
                                }),
                            )],
                            trace_id: vec![0xab; 16],
                            span_id: vec![0xcd; 8],
                            ..Default::default()
                        },
                        LogRecord {
                            observed_time_unix_nano: 20,
                            severity_text: "Warning".into(),
                            body: Some(AnyValue {
                                value: Some(Value::Kvlist(KeyValueList {
                                    values: vec![kv("a", s("b"))],
                                })),
                            }),
                            ..Default::default()
                        },
                    ],
                }],
            }],
        };
        let out = map(req, 99);
        assert_eq!(out.len(), 1);
        let st = &out[0];
        assert_eq!(
            st.labels,
            Labels::from_pairs([("k8s_namespace_name", "shop"), ("service_name", "checkout")])
        );
        let e = &st.entries[0];
        assert_eq!((e.ts, e.line.as_str()), (10, "payment failed"));
        let md: BTreeMap<&str, &str> = e
            .metadata
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(md["http_status_code"], "502");
        assert_eq!(md["observed_timestamp"], "11");
        assert_eq!(md["severity_number"], "17");
        assert_eq!(md["trace_id"], "abababababababababababababababab");
        assert_eq!(md["span_id"], "cdcdcdcdcdcdcdcd");
        assert_eq!(md["host_name"], "node-1");
        assert_eq!(md["process_pid"], "42");
        assert_eq!(md["scope_name"], "app.logger");
        assert_eq!(md["scope_version"], "1.2");
        assert_eq!(md["detected_level"], "error");
        let e = &st.entries[1];
        assert_eq!((e.ts, e.line.as_str()), (20, r#"{"a":"b"}"#));
        // severity_text is a level field: the push path reads it.
        assert!(!e.metadata.iter().any(|(n, _)| n == "detected_level"));
    }

    #[test]
    fn streams_without_service_name_are_unknown_service() {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![LogRecord {
                        body: s("x"),
                        ..Default::default()
                    }],
                }],
            }],
        };
        let out = map(req, 7);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([("service_name", "unknown_service")])
        );
        assert_eq!(out[0].entries[0].ts, 7);
    }
}
