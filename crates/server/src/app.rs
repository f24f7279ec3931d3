//! The router and the state every handler shares, and serving it until a signal.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use logql::engine::{Engine, Limits};
use store::Store;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::push::labels::LabelCache;
use crate::push::limits::IngestLimits;
use crate::tail::TailHub;
use crate::{
    detected, drilldown, legacy, metadata, otlp, patterns, push, query, status, tail, volume,
};

/// Label strings remembered by the push path; a few MiB at most.
const LABEL_CACHE_STREAMS: usize = 16_384;

/// Everything a handler needs.
pub struct App {
    pub config: Config,
    pub limits: IngestLimits,
    pub store: Store,
    pub label_cache: LabelCache,
    pub metrics: Metrics,
    pub engine: Engine,
    /// Queries running at once on blocking threads; the rest wait their turn.
    pub query_slots: Semaphore,
    /// Live tails listen here for stored batches.
    pub tail: TailHub,
}

impl App {
    pub fn new(config: Config, store: Store) -> App {
        App {
            limits: IngestLimits::from_config(&config),
            store,
            label_cache: LabelCache::new(LABEL_CACHE_STREAMS),
            metrics: Metrics::new(),
            engine: Engine::new(Limits {
                max_entries: u32::try_from(config.max_entries_limit_per_query).unwrap_or(u32::MAX),
                max_series: config.max_query_series,
                timeout: config.query_timeout.as_std(),
                ..Limits::default()
            }),
            query_slots: Semaphore::new(query_concurrency()),
            tail: TailHub::default(),
            config,
        }
    }

    pub fn max_request_bytes(&self) -> usize {
        usize::try_from(self.config.max_request_bytes.0).unwrap_or(usize::MAX)
    }
}

/// Queries at once: each uses a core while it runs.
fn query_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 16)
}

/// Every route of the API.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(push::handle))
        .route("/api/prom/push", post(push::handle))
        .route("/otlp/v1/logs", post(otlp::handle))
        .route(
            "/loki/api/v1/query_range",
            get(query::query_range).post(query::query_range),
        )
        .route(
            "/loki/api/v1/query",
            get(query::query_instant).post(query::query_instant),
        )
        .route(
            "/loki/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/loki/api/v1/labels",
            get(metadata::labels).post(metadata::labels),
        )
        .route(
            "/loki/api/v1/label",
            get(metadata::labels).post(metadata::labels),
        )
        .route(
            "/loki/api/v1/label/{name}/values",
            get(metadata::label_values).post(metadata::label_values),
        )
        .route(
            "/loki/api/v1/series",
            get(metadata::series).post(metadata::series),
        )
        .route(
            "/loki/api/v1/index/stats",
            get(metadata::index_stats).post(metadata::index_stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(volume::instant).post(volume::instant),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(volume::range).post(volume::range),
        )
        .route("/loki/api/v1/tail", get(tail::handle))
        .route(
            "/loki/api/v1/detected_fields",
            get(detected::fields).post(detected::fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detected::values).post(detected::values),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(metadata::detected_labels).post(metadata::detected_labels),
        )
        .route(
            "/loki/api/v1/patterns",
            get(patterns::handle).post(patterns::handle),
        )
        .route("/loki/api/v1/drilldown-limits", get(drilldown::limits))
        .route("/api/prom/query", get(legacy::query).post(legacy::query))
        .route(
            "/api/prom/label",
            get(metadata::legacy_labels).post(metadata::legacy_labels),
        )
        .route(
            "/api/prom/label/{name}/values",
            get(metadata::legacy_label_values).post(metadata::legacy_label_values),
        )
        .route(
            "/api/prom/series",
            get(metadata::series).post(metadata::series),
        )
        .route("/api/prom/tail", get(legacy::tail))
        .route("/ready", get(status::ready))
        .route("/loki/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/metrics", get(status::metrics))
        .route("/config", get(status::config))
        .route("/flush", post(status::flush))
        .merge(ui::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .with_state(app)
}

/// Go's answer for an unknown path, which Loki clients expect.
async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

/// Counts each request by its route pattern (not its path, so label values stay few).
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    app.metrics
        .observe_request(&route, resp.status().as_u16(), start.elapsed());
    resp
}
