//! The metadata endpoints: `labels`, `label/{name}/values`, `series` and `index/stats`,
//! answered from the store's label index and block summaries in Loki's shapes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use logql::ast::{Expr, Matcher};
use logql::engine::QueryError;
use serde::Serialize;

use crate::app::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::query::{answer, now_nanos, to_json};
use crate::tenant;

/// The stream selector of a `query` or `match[]` parameter; a pipeline after it is allowed
/// and ignored, as Loki does.
pub fn selector(q: &str) -> Result<Vec<Matcher>, ApiError> {
    match logql::parse(q) {
        Ok(Expr::Log(l)) => Ok(l.selector),
        Ok(Expr::Sample(_)) => Err(ApiError::bad_request(format!(
            "{q:?} is a metric query: give a stream selector such as {{app=\"api\"}}"
        ))),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

fn optional_selector(p: &Params) -> Result<Option<Vec<Matcher>>, ApiError> {
    p.get("query").map(selector).transpose()
}

/// Loki's label answers leave `data` out when there is nothing.
#[derive(Serialize)]
struct LabelResponse {
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    data: Vec<String>,
}

/// The label answer of the legacy `/api/prom/label` endpoints: `{"values":[...]}`, and
/// `{}` when there is nothing.
#[derive(Serialize)]
struct LegacyLabelResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
}

fn label_answer(data: Vec<String>, legacy: bool) -> Result<Bytes, QueryError> {
    if legacy {
        to_json(&LegacyLabelResponse { values: data })
    } else {
        to_json(&LabelResponse {
            status: "success",
            data,
        })
    }
}

/// `GET|POST /loki/api/v1/labels` (and `/loki/api/v1/label`).
pub async fn labels(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(label_names(&app, p, false).await)
}

/// `GET|POST /api/prom/label`.
pub async fn legacy_labels(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(label_names(&app, p, true).await)
}

async fn label_names(app: &Arc<App>, p: Params, legacy: bool) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let sel = optional_selector(&p)?;
    app.run_query(move |app| {
        let data = app
            .store
            .reader(&tenants)
            .label_names(sel.as_deref(), start, end)
            .map_err(storage)?;
        label_answer(data, legacy)
    })
    .await
}

/// `GET|POST /loki/api/v1/label/{name}/values`.
pub async fn label_values(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    answer(values(&app, name, p, false).await)
}

/// `GET|POST /api/prom/label/{name}/values`.
pub async fn legacy_label_values(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    answer(values(&app, name, p, true).await)
}

async fn values(app: &Arc<App>, name: String, p: Params, legacy: bool) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let sel = optional_selector(&p)?;
    app.run_query(move |app| {
        let data = app
            .store
            .reader(&tenants)
            .label_values(&name, sel.as_deref(), start, end)
            .map_err(storage)?;
        label_answer(data, legacy)
    })
    .await
}

/// `GET|POST /loki/api/v1/series`: `match[]` (or `match`) may repeat; none, or a single
/// `{}`, means every stream.
pub async fn series(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(series_of(&app, p).await)
}

async fn series_of(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let mut groups: Vec<&str> = p.all("match[]").chain(p.all("match")).collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.len() == 1 && groups[0].replace(' ', "") == "{}" {
        groups.clear();
    }
    let selectors = if groups.is_empty() {
        vec![Vec::new()]
    } else {
        groups
            .into_iter()
            .map(selector)
            .collect::<Result<Vec<_>, _>>()?
    };
    app.run_query(move |app| {
        let series = app
            .store
            .reader(&tenants)
            .series(&selectors, start, end)
            .map_err(storage)?;
        to_json(&protocol::response::DataResponse::success(series))
    })
    .await
}

#[derive(Serialize, Default)]
struct IndexStats {
    streams: u64,
    chunks: u64,
    bytes: u64,
    entries: u64,
}

/// `GET|POST /loki/api/v1/index/stats`: streams, chunks (blocks), bytes and entries of
/// the matching streams over the range.
pub async fn index_stats(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(stats(&app, p).await)
}

async fn stats(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let sel = selector(p.get("query").unwrap_or_default())?;
    app.run_query(move |app| {
        let list = app
            .store
            .reader(&tenants)
            .stream_stats(&sel, start, end)
            .map_err(storage)?;
        let mut s = IndexStats::default();
        for st in &list {
            s.streams += 1;
            s.chunks += st.chunks;
            s.bytes += st.bytes;
            s.entries += st.entries;
        }
        to_json(&s)
    })
    .await
}

pub fn storage(e: store::StoreError) -> QueryError {
    QueryError::Storage(e.to_string())
}

/// `GET|POST /loki/api/v1/detected_labels`: the stream labels of the matching streams
/// with their number of values, for Grafana's Logs Drilldown. As Loki does, labels whose
/// values are all IDs (numbers, UUIDs) are left out, except the ones that name where
/// logs come from (`cluster`, `namespace`, `instance`, `pod`).
pub async fn detected_labels(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(detected(&app, p).await)
}

#[derive(Serialize)]
struct DetectedLabel {
    label: String,
    cardinality: u64,
}

#[derive(Serialize)]
struct DetectedLabels {
    #[serde(rename = "detectedLabels")]
    detected_labels: Vec<DetectedLabel>,
}

async fn detected(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let sel = optional_selector(&p)?;
    app.run_query(move |app| {
        let reader = app.store.reader(&tenants);
        let mut out = Vec::new();
        for name in reader
            .label_names(sel.as_deref(), start, end)
            .map_err(storage)?
        {
            let values = reader
                .label_values(&name, sel.as_deref(), start, end)
                .map_err(storage)?;
            let located = matches!(name.as_str(), "cluster" | "namespace" | "instance" | "pod");
            if (located && !values.is_empty()) || !all_ids(&values) {
                out.push(DetectedLabel {
                    label: name,
                    cardinality: values.len() as u64,
                });
            }
        }
        to_json(&DetectedLabels {
            detected_labels: out,
        })
    })
    .await
}

/// Loki's rule for labels not worth offering: no values, or only IDs (two values that
/// are `0`/`1` are a flag, not IDs).
fn all_ids(values: &[String]) -> bool {
    if values.is_empty() {
        return true;
    }
    if values.len() <= 2 && values.iter().all(|v| v == "0" || v == "1") {
        return false;
    }
    values
        .iter()
        .all(|v| v.parse::<f64>().is_ok() || is_uuid(v))
}

fn is_uuid(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn id_labels_like_loki() {
        assert!(all_ids(&[]));
        assert!(!all_ids(&v(&["api", "web"])));
        assert!(all_ids(&v(&["17", "42", "3.5"])));
        assert!(all_ids(&v(&["8fb5357f-b632-4505-81f8-b49308da0212"])));
        assert!(!all_ids(&v(&["0", "1"])));
        assert!(!all_ids(&v(&["8fb5357f-b632-4505-81f8-b49308da0212", "x"])));
    }
}
