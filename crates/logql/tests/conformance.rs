//! Replays every recorded `/loki/api/v1/query`, `/query_range` and `/format_query` case
//! through the engine in-process, over the recorded data set enriched at ingest exactly
//! as Loki enriches it, and compares each answer with Loki's.

use conformance::{Case, compare};
use kiroku_logql::detect;
use kiroku_logql::{
    Direction, Engine, InstantQuery, Limits, MemoryEntry, MemorySource, QueryError, RangeQuery,
};
use protocol::Labels;

fn source() -> MemorySource {
    let mut src = MemorySource::new();
    for s in conformance::push_data().expect("the recorded data set loads") {
        let mut labels = Labels::from_pairs(s.labels.iter().cloned());
        if let Some(name) = detect::service_name(&labels).map(str::to_string) {
            labels.set(detect::SERVICE_NAME, &name);
        }
        let entries: Vec<MemoryEntry> = s
            .entries
            .iter()
            .map(|e| {
                let meta: Vec<(&str, &str)> = e
                    .metadata
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let level = detect::detected_level(&labels, &meta, &e.line).into_owned();
                let mut metadata: Vec<(String, String)> = e
                    .metadata
                    .iter()
                    .filter(|(n, _)| n != detect::DETECTED_LEVEL)
                    .cloned()
                    .collect();
                metadata.push((detect::DETECTED_LEVEL.to_string(), level));
                MemoryEntry {
                    ts: e.ts,
                    line: e.line.clone(),
                    metadata,
                }
            })
            .collect();
        src.push(labels, entries);
    }
    src
}

fn error_body(e: &QueryError) -> (u16, String) {
    (e.status(), e.to_string())
}

/// What the server would answer, as status and body.
fn answer(engine: &Engine, src: &MemorySource, c: &Case) -> (u16, String) {
    let query = c.param("query").unwrap_or("");
    let ts = |name: &str| c.param(name).map(protocol::time::parse_timestamp);
    let categorize = c
        .header("X-Loki-Response-Encoding-Flags")
        .is_some_and(|v| v.contains("categorize-labels"));
    let direction = match c.param("direction") {
        Some("forward") => Direction::Forward,
        _ => Direction::Backward,
    };
    let limit: u32 = c.param("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let result = match c.path.as_str() {
        "/loki/api/v1/format_query" => {
            return match kiroku_logql::format_query(query) {
                Ok(f) => (
                    200,
                    serde_json::json!({"status": "success", "data": f}).to_string(),
                ),
                Err(e) => (
                    400,
                    serde_json::json!({"status": "invalid-query", "error": e.to_string()})
                        .to_string(),
                ),
            };
        }
        "/loki/api/v1/query" => {
            let time = match ts("time") {
                Some(Ok(t)) => t,
                Some(Err(e)) => return (400, e.to_string()),
                None => 0,
            };
            engine.query_instant(
                src,
                &InstantQuery {
                    query,
                    time,
                    limit,
                    direction,
                    categorize_labels: categorize,
                },
            )
        }
        _ => {
            let (start, end) = match (ts("start"), ts("end")) {
                (Some(Ok(s)), Some(Ok(e))) => (s, e),
                _ => return (400, "bad start or end".into()),
            };
            let step = match c
                .param("step")
                .map(protocol::time::parse_seconds_or_duration)
            {
                Some(Ok(s)) => Some(s),
                Some(Err(e)) => return (400, e.to_string()),
                None => None,
            };
            engine.query_range(
                src,
                &RangeQuery {
                    query,
                    start,
                    end,
                    step,
                    interval: None,
                    limit,
                    direction,
                    categorize_labels: categorize,
                },
            )
        }
    };
    match result {
        Ok(r) => (200, serde_json::to_string(&r).expect("responses serialize")),
        Err(e) => error_body(&e),
    }
}

#[test]
fn loki_conformance_cases() {
    let src = source();
    let engine = Engine::new(Limits::default());
    let cases = conformance::cases().expect("the recorded cases load");
    let mut failures = Vec::new();
    let mut ran = 0;
    for c in cases.iter().filter(|c| {
        matches!(
            c.path.as_str(),
            "/loki/api/v1/query" | "/loki/api/v1/query_range" | "/loki/api/v1/format_query"
        )
    }) {
        ran += 1;
        let (status, body) = answer(&engine, &src, c);
        if let Err(why) = compare(c, status, &body) {
            failures.push(format!("{}: {why}", c.id));
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!("{} of {ran} conformance cases pass", ran - failures.len());
    assert!(failures.is_empty(), "{} cases fail", failures.len());
}
