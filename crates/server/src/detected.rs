//! `detected_fields` and `detected_field/{name}/values`, for Grafana's Logs Drilldown: the
//! fields of the most recent lines of a query (up to `line_limit`, default 1000), as Loki
//! finds them. Structured metadata counts as fields without a parser; each line is run
//! through LogQL's own `json` parser when it looks like a JSON object, else `logfmt`, so
//! field names are exactly the labels those parsers give. Each field gets a type (`int`,
//! `float`, `boolean`, `duration`, `bytes` or `string`) from its values, its parsers, its
//! number of distinct values and, for JSON, the path to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use logql::Direction;
use logql::ast::{Parser, Stage};
use logql::engine::{QueryError, RangeQuery};
use logql::pipeline::{Category, Pipeline};
use protocol::response::QueryResult;
use serde::Serialize;

use crate::app::App;
use crate::config::ByteSize;
use crate::error::ApiError;
use crate::params::Params;
use crate::query::{answer, now_nanos, to_json};
use crate::tenant;

const DEFAULT_LIMIT: u32 = 1000;

/// `GET|POST /loki/api/v1/detected_fields`.
pub async fn fields(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(detect(&app, p, None).await)
}

/// `GET|POST /loki/api/v1/detected_field/{name}/values`.
pub async fn values(State(app): State<Arc<App>>, Path(name): Path<String>, p: Params) -> Response {
    answer(detect(&app, p, Some(name)).await)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum FieldType {
    Int,
    Float,
    Boolean,
    Duration,
    Bytes,
    String,
}

/// Loki's order of guesses for a value's type.
fn type_of(v: &str) -> FieldType {
    if v.parse::<i64>().is_ok() {
        FieldType::Int
    } else if v.parse::<f64>().is_ok() {
        FieldType::Float
    } else if matches!(
        v,
        "t" | "T" | "TRUE" | "true" | "True" | "f" | "F" | "FALSE" | "false" | "False"
    ) {
        FieldType::Boolean
    } else if protocol::time::parse_go_duration(v).is_some() {
        FieldType::Duration
    } else if v.ends_with(|c: char| c.is_ascii_alphabetic()) && ByteSize::from_str(v).is_ok() {
        FieldType::Bytes
    } else {
        FieldType::String
    }
}

/// The type of a field whose values have types `a` and `b`: numbers widen to float,
/// anything else mixed is a string.
fn merge(a: FieldType, b: FieldType) -> FieldType {
    use FieldType::*;
    match (a, b) {
        (x, y) if x == y => x,
        (Int, Float) | (Float, Int) => Float,
        _ => String,
    }
}

#[derive(Default)]
struct Field {
    values: BTreeSet<String>,
    ty: Option<FieldType>,
    parsers: BTreeSet<&'static str>,
    json_path: Option<Vec<String>>,
}

impl Field {
    fn add(&mut self, value: &str, parser: Option<&'static str>) {
        let t = type_of(value);
        self.ty = Some(self.ty.map_or(t, |old| merge(old, t)));
        if !self.values.contains(value) {
            self.values.insert(value.to_string());
        }
        if let Some(p) = parser {
            self.parsers.insert(p);
        }
    }
}

#[derive(Serialize)]
struct DetectedField {
    label: String,
    #[serde(rename = "type")]
    ty: FieldType,
    cardinality: u64,
    parsers: Option<Vec<&'static str>>,
    #[serde(rename = "jsonPath", skip_serializing_if = "Option::is_none")]
    json_path: Option<Vec<String>>,
}

#[derive(Serialize)]
struct FieldsAnswer {
    fields: Vec<DetectedField>,
    limit: u32,
}

#[derive(Serialize)]
struct ValuesAnswer {
    values: Vec<String>,
    limit: u32,
}

async fn detect(app: &Arc<App>, p: Params, only: Option<String>) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let line_limit = p.positive("line_limit", DEFAULT_LIMIT)?;
    let limit = match p.get("limit") {
        Some(_) => p.positive("limit", DEFAULT_LIMIT)?,
        None => p.positive("field_limit", DEFAULT_LIMIT)?,
    };
    let query = p.get("query").unwrap_or_default().to_string();
    app.run_query(move |app| {
        let reader = app.store.reader(&tenants);
        let resp = app.engine.query_range(
            &reader,
            &RangeQuery {
                query: &query,
                start,
                end,
                step: None,
                interval: None,
                limit: line_limit.min(u32::try_from(app.config.max_entries_limit_per_query).unwrap_or(u32::MAX)),
                direction: Direction::Backward,
                categorize_labels: true,
            },
        )?;
        let QueryResult::Streams(streams) = resp.result else {
            return Err(QueryError::BadRequest(
                "detected fields need a log query: give a stream selector and, optionally, a pipeline".into(),
            ));
        };
        let fields = collect(&streams)?;
        match &only {
            Some(name) => {
                let values = fields
                    .get(name)
                    .map(|f| f.values.iter().take(limit as usize).cloned().collect())
                    .unwrap_or_default();
                to_json(&ValuesAnswer { values, limit })
            }
            None => to_json(&FieldsAnswer {
                fields: fields
                    .into_iter()
                    .take(limit as usize)
                    .map(|(label, f)| DetectedField {
                        label,
                        ty: f.ty.unwrap_or(FieldType::String),
                        cardinality: f.values.len() as u64,
                        parsers: (!f.parsers.is_empty()).then(|| f.parsers.into_iter().collect()),
                        json_path: f.json_path,
                    })
                    .collect(),
                limit,
            }),
        }
    })
    .await
}

fn collect(streams: &[protocol::response::Stream]) -> Result<BTreeMap<String, Field>, QueryError> {
    let pipeline = |stage: Parser| {
        Pipeline::new(&[Stage::Parser(stage)], None)
            .map_err(|e| QueryError::Pipeline(e.to_string()))
    };
    let json = pipeline(Parser::Json { params: Vec::new() })?;
    let logfmt = pipeline(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        params: Vec::new(),
    })?;
    let mut fields: BTreeMap<String, Field> = BTreeMap::new();
    for s in streams {
        let mut json_sp = json.for_stream(&s.labels);
        let mut logfmt_sp = logfmt.for_stream(&s.labels);
        for e in &s.entries {
            if let Some(c) = &e.categories {
                for l in &c.structured_metadata {
                    fields
                        .entry(l.name.clone())
                        .or_default()
                        .add(&l.value, None);
                }
            }
            let is_json = e.line.trim_start().starts_with('{');
            let (sp, parser) = if is_json {
                (&mut json_sp, "json")
            } else {
                (&mut logfmt_sp, "logfmt")
            };
            let Some(out) = sp.process(e.ts, e.line.as_bytes(), std::iter::empty()) else {
                continue;
            };
            if out.labels.get("__error__").is_some() {
                continue;
            }
            let mut paths = None;
            for (name, value, cat) in out.labels.iter() {
                if cat != Category::Parsed || name.starts_with("__") {
                    continue;
                }
                let f = fields.entry(name.to_string()).or_default();
                f.add(value, Some(parser));
                if is_json && f.json_path.is_none() {
                    let paths = paths.get_or_insert_with(|| json_paths(&e.line));
                    let key = name.strip_suffix("_extracted").unwrap_or(name);
                    f.json_path = paths.get(key).cloned();
                }
            }
        }
    }
    Ok(fields)
}

/// Each leaf of a JSON object by the name LogQL's `json` parser gives it (keys joined
/// with `_`, other characters made `_`), with the keys that lead to it.
fn json_paths(line: &str) -> HashMap<String, Vec<String>> {
    fn walk(
        v: &serde_json::Value,
        name: &str,
        path: &mut Vec<String>,
        out: &mut HashMap<String, Vec<String>>,
    ) {
        if let serde_json::Value::Object(m) = v {
            for (k, inner) in m {
                let part = crate::push::sanitize_name(k.as_bytes());
                let full = if name.is_empty() {
                    part.into_owned()
                } else {
                    format!("{name}_{part}")
                };
                path.push(k.clone());
                match inner {
                    serde_json::Value::Object(_) => walk(inner, &full, path, out),
                    serde_json::Value::Array(_) => {}
                    _ => {
                        out.insert(full, path.clone());
                    }
                }
                path.pop();
            }
        }
    }
    let mut out = HashMap::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        walk(&v, "", &mut Vec::new(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_like_loki() {
        assert_eq!(type_of("200"), FieldType::Int);
        assert_eq!(type_of("638.935"), FieldType::Float);
        assert_eq!(type_of("true"), FieldType::Boolean);
        assert_eq!(type_of("18.5s"), FieldType::Duration);
        assert_eq!(type_of("708B"), FieldType::Bytes);
        assert_eq!(type_of("10KiB"), FieldType::Bytes);
        assert_eq!(type_of("carol"), FieldType::String);
        assert_eq!(merge(FieldType::Int, FieldType::Float), FieldType::Float);
        assert_eq!(merge(FieldType::Int, FieldType::String), FieldType::String);
    }

    #[test]
    fn json_paths_follow_the_parser_names() {
        let p = json_paths(
            r#"{"user":{"id":1,"roles":["a"]},"request":{"headers":{"user-agent":"x"}}}"#,
        );
        assert_eq!(p["user_id"], ["user", "id"]);
        assert_eq!(
            p["request_headers_user_agent"],
            ["request", "headers", "user-agent"]
        );
        assert!(!p.contains_key("user_roles"));
    }
}
