//! Loki's parser hints, seen from outside: the same queries over lines that break the
//! parsers answer differently depending on which labels the query needs, exactly as
//! Grafana Loki 3.7 answers them. Each case states what Loki does and why (its
//! `NewParserHint`, `ShouldContinueParsingLine` and `__preserve_error__` rules).

use kiroku_logql::{
    Direction, Engine, InstantQuery, Limits, MemoryEntry, MemorySource, QueryError, RangeQuery,
};
use protocol::Labels;
use protocol::response::{QueryResponse, QueryResult};

const T0: i64 = 1_795_168_800_000_000_000;
const SEC: i64 = 1_000_000_000;

/// One stream `{app="api", pod="p1"}` with these lines, a second apart.
fn source(lines: &[&str]) -> MemorySource {
    let mut src = MemorySource::new();
    src.push(
        Labels::from_pairs([("app", "api"), ("pod", "p1")]),
        lines.iter().enumerate().map(|(i, l)| MemoryEntry {
            ts: T0 + i as i64 * SEC,
            line: l.to_string(),
            metadata: vec![],
        }),
    );
    src
}

/// An instant query at the end of the data, over a 5m range.
fn instant(src: &MemorySource, query: &str) -> Result<QueryResponse, QueryError> {
    Engine::new(Limits::default()).query_instant(
        src,
        &InstantQuery {
            query,
            time: T0 + 60 * SEC,
            limit: 100,
            direction: Direction::Backward,
            categorize_labels: false,
        },
    )
}

/// The vector of an instant query as `(labels, value)`, sorted.
fn vector(src: &MemorySource, query: &str) -> Vec<(String, f64)> {
    let r = instant(src, query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let QueryResult::Vector(v) = r.result else {
        panic!("{query}: not a vector");
    };
    let mut out: Vec<(String, f64)> = v
        .into_iter()
        .map(|s| (s.metric.to_string(), s.point.v))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn error(src: &MemorySource, query: &str) -> (u16, String) {
    match instant(src, query) {
        Ok(_) => panic!("{query}: answered, Loki fails"),
        Err(e) => (e.status(), e.to_string()),
    }
}

/// Log query lines returned, newest first.
fn lines(src: &MemorySource, query: &str) -> Vec<(String, Option<String>)> {
    let r = Engine::new(Limits::default())
        .query_range(
            src,
            &RangeQuery {
                query,
                start: T0,
                end: T0 + 60 * SEC,
                step: None,
                interval: None,
                limit: 100,
                direction: Direction::Backward,
                categorize_labels: false,
            },
        )
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    let QueryResult::Streams(streams) = r.result else {
        panic!("{query}: not streams");
    };
    let mut out: Vec<(i64, String, Option<String>)> = streams
        .iter()
        .flat_map(|s| {
            s.entries.iter().map(|e| {
                (
                    e.ts,
                    e.line.clone(),
                    s.labels.get("__error__").map(str::to_string),
                )
            })
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.into_iter().map(|(_, l, e)| (l, e)).collect()
}

const NOT_JSON: &str = "plain text, not json";
const BROKEN_AFTER_LEVEL: &str = r#"{"level":"info","status":200, oops"#;

#[test]
fn no_label_needed_means_the_parser_never_runs() {
    let src = source(&[r#"{"level":"info"}"#, NOT_JSON, BROKEN_AFTER_LEVEL]);
    // Loki: `sum` with no grouping pushes `by ()` down; nothing is needed from the line,
    // so `json` does not run and no line gets an error.
    assert_eq!(
        vector(&src, r#"sum(count_over_time({app="api"} | json [5m]))"#),
        vec![("{}".into(), 3.0)]
    );
    assert_eq!(
        vector(&src, r#"sum by () (rate({app="api"} | json [5m]))"#),
        vec![("{}".into(), 0.01)]
    );
    // absent_over_time needs no labels either: the stream is present, no error.
    assert_eq!(
        vector(&src, r#"absent_over_time({app="api"} | json [5m])"#),
        vec![]
    );
    // Without a grouping to push down, every label is extracted and the error fails the
    // query.
    let (status, msg) = error(&src, r#"count_over_time({app="api"} | json [5m])"#);
    assert_eq!(status, 400);
    assert!(msg.contains("JSONParserErr"), "{msg}");
    // `max` is not pushed down.
    let (status, _) = error(&src, r#"max(count_over_time({app="api"} | json [5m]))"#);
    assert_eq!(status, 400);
}

#[test]
fn a_grouping_extracts_only_its_labels_and_stops_there() {
    // The broken line has `level` before the break: parsing stops once `level` is
    // extracted, so the break is never seen.
    let src = source(&[r#"{"level":"info"}"#, BROKEN_AFTER_LEVEL]);
    assert_eq!(
        vector(
            &src,
            r#"sum by (level) (count_over_time({app="api"} | json [5m]))"#
        ),
        vec![(r#"{level="info"}"#.into(), 2.0)]
    );
    // A line that is not JSON at all still fails the query.
    let src = source(&[r#"{"level":"info"}"#, NOT_JSON]);
    let (status, msg) = error(
        &src,
        r#"sum by (level) (count_over_time({app="api"} | json [5m]))"#,
    );
    assert_eq!(status, 400);
    assert!(msg.contains("pipeline error: 'JSONParserErr'"), "{msg}");
    // Labels read by later stages are needed too: `status` would come after the break
    // on this line, so the parser reaches the break and fails.
    let src = source(&[r#"{"level":"info", oops, "status":200}"#]);
    assert_eq!(
        vector(
            &src,
            r#"sum by (level) (count_over_time({app="api"} | json [5m]))"#
        ),
        vec![(r#"{level="info"}"#.into(), 1.0)]
    );
    let (status, _) = error(
        &src,
        r#"sum by (level) (count_over_time({app="api"} | json | line_format "{{.status}}" [5m]))"#,
    );
    assert_eq!(status, 400);
    // Both found before the break: no error.
    let src = source(&[r#"{"status":503,"level":"error", oops"#]);
    assert_eq!(
        vector(
            &src,
            r#"sum by (level) (count_over_time({app="api"} | json | status >= 500 [5m]))"#
        ),
        vec![(r#"{level="error"}"#.into(), 1.0)]
    );
}

#[test]
fn unwrapped_labels_are_needed() {
    // `sum(sum_over_time(... | unwrap duration_ms))`: only `duration_ms` is needed.
    let src = source(&[r#"{"duration_ms":12,"level":"info", oops"#]);
    assert_eq!(
        vector(
            &src,
            r#"sum(sum_over_time({app="api"} | json | unwrap duration_ms [5m]))"#
        ),
        vec![("{}".into(), 12.0)]
    );
    // With a `by` grouping on the range aggregation, its labels and the unwrapped one.
    let src = source(&[r#"{"duration_ms":12,"path":"/a", oops"#]);
    assert_eq!(
        vector(
            &src,
            r#"max_over_time({app="api"} | json | unwrap duration_ms [5m]) by (path)"#
        ),
        vec![(r#"{path="/a"}"#.into(), 12.0)]
    );
    // Without one, everything is extracted and the break is an error.
    let (status, _) = error(
        &src,
        r#"max_over_time({app="api"} | json | unwrap duration_ms [5m])"#,
    );
    assert_eq!(status, 400);
}

#[test]
fn a_grouping_that_names_the_error_preserves_it() {
    let src = source(&[r#"{"level":"info"}"#, NOT_JSON]);
    // Loki marks the error `__preserve_error__` and answers with it as a series.
    assert_eq!(
        vector(
            &src,
            r#"sum by (level, __error__) (count_over_time({app="api"} | json [5m]))"#
        ),
        vec![
            (r#"{__error__="JSONParserErr"}"#.into(), 1.0),
            (r#"{level="info"}"#.into(), 1.0),
        ]
    );
    // A label filter on `__error__` needs it too, even with no grouping: the parser runs.
    assert_eq!(
        vector(
            &src,
            r#"sum(count_over_time({app="api"} | json | __error__!="" [5m]))"#
        ),
        vec![("{}".into(), 1.0)]
    );
}

#[test]
fn single_label_filters_run_as_soon_as_their_label_is_parsed() {
    // An `ip()` filter lets lines with errors through; Loki runs it as soon as `addr` is
    // parsed, drops the line there, and never sees the break after it.
    let src = source(&[
        r#"{"addr":"192.168.1.1", oops"#,
        r#"{"addr":"10.1.2.3", oops"#,
        r#"{"addr":"10.1.2.4"}"#,
    ]);
    let got = lines(&src, r#"{app="api"} | json | addr = ip("10.0.0.0/8")"#);
    assert_eq!(
        got,
        vec![
            (r#"{"addr":"10.1.2.4"}"#.into(), None),
            (
                r#"{"addr":"10.1.2.3", oops"#.into(),
                Some("JSONParserErr".into())
            ),
        ]
    );
    // Loki pairs names with filters in order, but a filter that reads no label takes a
    // filter slot without a name: here `c` is checked with `b`'s filter, before `b` is
    // parsed, and the line is dropped although it passes every filter.
    let src = source(&[r#"{"c":"y","b":"x"}"#, r#"{"b":"x","c":"y"}"#]);
    assert_eq!(
        lines(&src, r#"{app="api"} | json | x=~".*" | b="x" | c="y""#),
        vec![(r#"{"b":"x","c":"y"}"#.into(), None)]
    );
    // Without the filter that reads nothing, both lines pass.
    assert_eq!(
        lines(&src, r#"{app="api"} | json | b="x" | c="y""#).len(),
        2
    );
}
