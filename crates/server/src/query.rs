//! `query_range`, `query` and `format_query`: parameters read as Loki reads them, the
//! query run by [`logql::engine`] on a blocking thread under the query timeout, the answer
//! in Loki's JSON, errors as Loki sends them (plain text, the engine's status).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use logql::engine::{InstantQuery, QueryError, RangeQuery};
use protocol::response::{DataResponse, QueryResponse};
use protocol::time::format_go_duration;

use crate::app::App;
use crate::error::ApiError;
use crate::params::Params;
use crate::tenant;

/// `GET|POST /loki/api/v1/query_range`.
pub async fn query_range(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(range(&app, p).await)
}

async fn range(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let query = p.get("query").unwrap_or_default().to_string();
    run_range(app, &p, query, p.categorize_labels(), to_json).await
}

/// Runs the range query `query` with the other parameters of `p`, the answer written by
/// `encode`.
pub async fn run_range(
    app: &Arc<App>,
    p: &Params,
    query: String,
    categorize_labels: bool,
    encode: fn(&QueryResponse) -> Result<Bytes, QueryError>,
) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.bounds(now_nanos())?;
    let limit = p.limit()?;
    let direction = p.direction()?;
    let step = p.step()?;
    let interval = p.interval()?;
    app.check_query_length(start, end)?;
    app.run_query(move |app| {
        let reader = app.store.reader(&tenants);
        let q = RangeQuery {
            query: &query,
            start,
            end,
            step,
            interval,
            limit,
            direction,
            categorize_labels,
        };
        let resp = app.engine.query_range(&reader, &q)?;
        encode(&resp)
    })
    .await
}

/// `GET|POST /loki/api/v1/query`.
pub async fn query_instant(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(instant(&app, p).await)
}

async fn instant(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let time = p.time(now_nanos())?;
    let limit = p.limit()?;
    let direction = p.direction()?;
    let categorize_labels = p.categorize_labels();
    let query = p.get("query").unwrap_or_default().to_string();
    app.run_query(move |app| {
        let reader = app.store.reader(&tenants);
        let q = InstantQuery {
            query: &query,
            time,
            limit,
            direction,
            categorize_labels,
        };
        let resp = app.engine.query_instant(&reader, &q)?;
        to_json(&resp)
    })
    .await
}

/// `GET|POST /loki/api/v1/format_query`: the query printed the way Loki prints it.
pub async fn format_query(p: Params) -> Response {
    let q = p.get("query").unwrap_or_default();
    match logql::format_query(q) {
        Ok(s) => answer(to_json(&DataResponse::success(s)).map_err(ApiError::from)),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

/// A JSON body, or the error.
pub fn answer(r: Result<Bytes, ApiError>) -> Response {
    match r {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<Bytes, QueryError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| QueryError::Storage(format!("cannot write the answer: {e}")))
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

impl App {
    /// Runs `f` on a blocking thread, at most `query_concurrency` at once, and gives up
    /// waiting after the query timeout (the engine stops itself at the same deadline).
    pub async fn run_query<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&App) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let timeout = self.config.query_timeout.as_std();
        let app = Arc::clone(self);
        let run = async move {
            let _permit = app
                .query_slots
                .acquire()
                .await
                .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
            let app2 = Arc::clone(&app);
            tokio::task::spawn_blocking(move || f(&app2))
                .await
                .map_err(|e| ApiError::internal(format!("query failed: {e}")))?
                .map_err(ApiError::from)
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(QueryError::Timeout.into()),
        }
    }

    /// Loki's `max_query_length`: a range longer than the limit is refused.
    pub fn check_query_length(&self, start: i64, end: i64) -> Result<(), ApiError> {
        let max = self.config.max_query_length.nanos();
        let len = end.saturating_sub(start);
        if max > 0 && len > max {
            return Err(ApiError::bad_request(format!(
                "the query time range exceeds the limit (query length: {}, limit: {}): shorten the range or raise max_query_length",
                format_go_duration(len),
                format_go_duration(max)
            )));
        }
        Ok(())
    }
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
