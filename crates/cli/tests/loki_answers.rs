//! The client reads what Grafana Loki itself answers: every `query_range`, `query`,
//! `labels`, label values and `series` answer recorded from Loki 3.7.6 in the conformance
//! cases goes through the client's decoding and every output format, and every recorded
//! parse error gets its caret inside the query.

use std::path::PathBuf;

use kiroku_cli::error::BadQuery;
use kiroku_cli::output::{Format, QueryPrinter, Timezone};
use kiroku_cli::paging::flatten;
use kiroku_cli::table::{samples_table, write_samples_jsonl};
use protocol::Labels;
use protocol::response::{DataResponse, QueryResponse, QueryResult};

struct Case {
    id: String,
    path: String,
    query: Option<String>,
    status: u64,
    body: serde_json::Value,
}

fn cases() -> Vec<Case> {
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance/cases.jsonl");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let query = v["params"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p[0] == "query")
                .and_then(|p| p[1].as_str())
                .map(str::to_string);
            Case {
                id: v["id"].as_str().unwrap().to_string(),
                path: v["path"].as_str().unwrap().to_string(),
                query,
                status: v["status"].as_u64().unwrap(),
                body: v["body"].clone(),
            }
        })
        .collect()
}

#[test]
fn every_recorded_query_answer_prints_in_every_format() {
    let mut seen = 0;
    for c in cases() {
        if c.status != 200 || !(c.path.ends_with("/query_range") || c.path.ends_with("/query")) {
            continue;
        }
        let r: QueryResponse =
            serde_json::from_value(c.body.clone()).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        match r.result {
            QueryResult::Streams(streams) => {
                let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
                let lines = flatten(streams, kiroku_cli::client::Direction::Backward);
                assert_eq!(lines.len(), entries, "{}", c.id);
                for format in [Format::Default, Format::Raw, Format::Jsonl] {
                    let mut out = Vec::new();
                    QueryPrinter::new(format, true, Timezone::Utc, false)
                        .page(&mut out, &lines)
                        .unwrap();
                    let text = String::from_utf8(out).unwrap();
                    // A line may hold newlines of its own; count at least one per entry.
                    assert!(text.matches('\n').count() >= entries, "{} {format:?}", c.id);
                    if format == Format::Jsonl {
                        assert_eq!(text.lines().count(), entries, "{}", c.id);
                        for l in text.lines() {
                            serde_json::from_str::<serde_json::Value>(l).unwrap();
                        }
                    }
                }
            }
            result => {
                let samples = match &result {
                    QueryResult::Matrix(m) => m.iter().map(|s| s.values.len()).sum(),
                    QueryResult::Vector(v) => v.len(),
                    QueryResult::Scalar(_) => 1,
                    QueryResult::Streams(_) => unreachable!(),
                };
                let table = samples_table(&result, Timezone::Utc).unwrap();
                assert_eq!(table.rows.len(), samples, "{}", c.id);
                let mut out = Vec::new();
                table.write(&mut out).unwrap();
                let mut out = Vec::new();
                write_samples_jsonl(&mut out, &result, Timezone::Utc).unwrap();
                assert_eq!(
                    String::from_utf8(out).unwrap().lines().count(),
                    samples,
                    "{}",
                    c.id
                );
            }
        }
        seen += 1;
    }
    assert!(seen >= 100, "only {seen} recorded answers");
}

#[test]
fn recorded_labels_and_series_answers_decode() {
    let mut seen = 0;
    for c in cases().into_iter().filter(|c| c.status == 200) {
        if c.path.ends_with("/labels") || c.path.starts_with("/loki/api/v1/label/") {
            let r: DataResponse<Option<Vec<String>>> =
                serde_json::from_value(c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
            assert_eq!(r.status, "success");
            seen += 1;
        } else if c.path.ends_with("/series") {
            let r: DataResponse<Option<Vec<Labels>>> =
                serde_json::from_value(c.body).unwrap_or_else(|e| panic!("{}: {e}", c.id));
            assert!(!r.data.unwrap_or_default().is_empty(), "{}", c.id);
            seen += 1;
        }
    }
    assert!(seen >= 6, "{seen}");
}

#[test]
fn every_recorded_parse_error_gets_a_caret_inside_the_query() {
    let mut with_position = 0;
    for c in cases().into_iter().filter(|c| c.status == 400) {
        let (Some(query), Some(message)) = (c.query.as_deref(), c.body.as_str()) else {
            continue;
        };
        let Some(b) = BadQuery::from_message(query, message) else {
            assert!(!message.starts_with("parse error"), "{}: {message}", c.id);
            continue;
        };
        let text = b.to_string();
        assert!(text.starts_with("bad query: "), "{}", c.id);
        if let Some((_, col)) = b.position {
            with_position += 1;
            let caret = text.lines().last().unwrap();
            assert!(caret.ends_with('^'), "{}: {text}", c.id);
            assert_eq!(caret.chars().count(), 2 + col, "{}: {text}", c.id);
            assert!(col <= query.chars().count() + 1, "{}", c.id);
        }
    }
    assert!(with_position >= 3, "{with_position}");
}
