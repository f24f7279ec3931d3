//! Loki's legacy read API under `/api/prom/`, which Loki 3 still serves for old clients:
//! `query` (log queries only), `label`, `label/{name}/values`, `series` and `tail`.
//!
//! They take the parameters of their `/loki/api/v1/` counterparts, plus `regexp`: a
//! regular expression added as a last `|~` stage to the query's pipeline (the tail takes
//! it on both paths, as Loki's does). Their answers have the old shapes: log lines as
//! `{"streams":[{"labels":"{...}","entries":[{"ts":"<RFC 3339>","line":"..."}]}],...}`
//! and label lists as `{"values":[...]}`; `series` answers as the current one does.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use logql::ast::Expr;
use logql::engine::QueryError;
use protocol::quote::quote_into;
use protocol::response::{QueryResponse, QueryResult, Stream};
use protocol::time::format_rfc3339_nano;
use serde::Serialize;
use serde::ser::SerializeStruct;

use crate::app::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::query::{answer, run_range, to_json};
use crate::tail;

/// Loki's answer to a metric query on a legacy endpoint.
const ONLY_STREAMS: &str = "legacy endpoints only support streams result type";

/// `GET|POST /api/prom/query`: a range query for log lines.
pub async fn query(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(log_query(&app, p).await)
}

async fn log_query(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let query = query_with_regexp(&p)?;
    if let Ok(Expr::Sample(_)) = logql::parse(&query) {
        return Err(ApiError::bad_request(ONLY_STREAMS));
    }
    // The old shape has nowhere to put categorized labels: they stay in the stream's.
    run_range(app, &p, query, false, encode_query).await
}

/// The `query` parameter with the `regexp` parameter, when there is one, added to its
/// pipeline as a line filter.
pub fn query_with_regexp(p: &Params) -> Result<String, ApiError> {
    let query = p.get("query").unwrap_or_default();
    let Some(regexp) = p.get("regexp") else {
        return Ok(query.to_string());
    };
    match logql::parse(query) {
        Ok(Expr::Log(_)) => {
            let mut q = format!("{query} |~ ");
            quote_into(&mut q, regexp);
            Ok(q)
        }
        Ok(Expr::Sample(_)) => Err(ApiError::bad_request(format!(
            "regexp filters only log queries, and {query:?} is a metric query"
        ))),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

fn encode_query(r: &QueryResponse) -> Result<Bytes, QueryError> {
    let QueryResult::Streams(streams) = &r.result else {
        return Err(QueryError::BadRequest(ONLY_STREAMS.to_string()));
    };
    let empty = serde_json::Value::Object(Default::default());
    to_json(&LegacyQuery {
        streams: LegacyStreams(streams),
        stats: r.stats.as_ref().unwrap_or(&empty),
    })
}

/// The legacy query answer.
#[derive(Serialize)]
struct LegacyQuery<'a> {
    streams: LegacyStreams<'a>,
    stats: &'a serde_json::Value,
}

/// Streams in the legacy shape: labels as one string, entries as objects with an RFC 3339
/// time. Structured metadata and parsed labels are in the stream's labels, as in the
/// current shape without `categorize-labels`.
pub struct LegacyStreams<'a>(pub &'a [Stream]);

impl Serialize for LegacyStreams<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(LegacyStream))
    }
}

struct LegacyStream<'a>(&'a Stream);

impl Serialize for LegacyStream<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Stream", 2)?;
        st.serialize_field("labels", &self.0.labels.to_string())?;
        st.serialize_field(
            "entries",
            &self
                .0
                .entries
                .iter()
                .map(|e| LegacyEntry {
                    ts: format_rfc3339_nano(e.ts),
                    line: &e.line,
                })
                .collect::<Vec<_>>(),
        )?;
        st.end()
    }
}

#[derive(Serialize)]
struct LegacyEntry<'a> {
    ts: String,
    line: &'a str,
}

/// `GET /api/prom/tail`: the live tail, in legacy frames.
pub async fn tail(
    State(app): State<Arc<App>>,
    ws: axum::extract::ws::WebSocketUpgrade,
    p: Params,
) -> Response {
    tail::serve(app, ws, p, true)
}
