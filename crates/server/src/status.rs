//! The operational endpoints: readiness, build information, metrics, the effective
//! configuration and Loki's `/flush`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::ApiError;

/// `GET /ready`: `ready` once the server answers at all (the store is open before the
/// listener is).
pub async fn ready() -> &'static str {
    "ready\n"
}

/// The Loki version whose API kiroku answers like; Grafana reads it to pick features.
pub const LOKI_API_VERSION: &str = "3.7.6";

/// `GET /loki/api/v1/status/buildinfo`, in Loki's (Prometheus') shape.
pub async fn buildinfo() -> Response {
    Json(serde_json::json!({
        "version": LOKI_API_VERSION,
        "revision": env!("CARGO_PKG_VERSION"),
        "branch": "kiroku",
        "buildUser": "kiroku",
        "buildDate": "",
        "goVersion": "",
        "kiroku": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(&store_metrics(&app.store.metrics())),
    )
        .into_response()
}

/// `GET /config`: the configuration in effect, as YAML that can be used as a config file.
pub async fn config(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        app.config.to_yaml(),
    )
        .into_response()
}

/// `POST /flush`: like Loki's, writes everything held in memory out to the data files
/// (acknowledged pushes are already durable in the WAL); 204 when done.
pub async fn flush(State(app): State<Arc<App>>) -> Response {
    match tokio::task::spawn_blocking(move || app.store.flush()).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => ApiError::internal(format!("flush failed: {e}")).into_response(),
        Err(e) => ApiError::internal(format!("flush failed: {e}")).into_response(),
    }
}

/// The store's figures in the text format.
fn store_metrics(m: &store::StoreMetrics) -> String {
    use std::fmt::Write;
    let counters: [(&str, &str, u64); 16] = [
        (
            "kiroku_store_appends_total",
            "Appends made durable.",
            m.appends,
        ),
        (
            "kiroku_store_entries_appended_total",
            "Entries made durable.",
            m.entries_appended,
        ),
        (
            "kiroku_store_bytes_appended_total",
            "Line bytes made durable.",
            m.bytes_appended,
        ),
        (
            "kiroku_store_entries_rejected_too_old_total",
            "Entries refused as older than the retention.",
            m.entries_rejected_too_old,
        ),
        (
            "kiroku_store_appends_failed_disk_full_total",
            "Appends refused because the disk or its budget was full.",
            m.appends_failed_disk_full,
        ),
        (
            "kiroku_store_wal_writes_total",
            "Group-commit writes to the WAL.",
            m.wal_writes,
        ),
        (
            "kiroku_store_wal_syncs_total",
            "fdatasync calls on the WAL.",
            m.wal_syncs,
        ),
        (
            "kiroku_store_wal_bytes_total",
            "Bytes written to the WAL.",
            m.wal_bytes,
        ),
        (
            "kiroku_store_wal_corrupt_records_total",
            "WAL records skipped as corrupt at replay.",
            m.wal_corrupt_records,
        ),
        (
            "kiroku_store_wal_replayed_records_total",
            "WAL records replayed at start.",
            m.wal_replayed_records,
        ),
        (
            "kiroku_store_flushes_total",
            "Memtables written out as parts.",
            m.flushes,
        ),
        (
            "kiroku_store_flush_failures_total",
            "Memtable write-outs that failed.",
            m.flush_failures,
        ),
        (
            "kiroku_store_parts_written_total",
            "Part files written.",
            m.parts_written,
        ),
        (
            "kiroku_store_part_bytes_written_total",
            "Bytes of part files written.",
            m.part_bytes_written,
        ),
        (
            "kiroku_store_parts_deleted_retention_total",
            "Part files deleted by retention.",
            m.parts_deleted_retention,
        ),
        (
            "kiroku_store_compactions_total",
            "Part compactions.",
            m.compactions,
        ),
    ];
    let gauges: [(&str, &str, u64); 7] = [
        (
            "kiroku_store_head_entries",
            "Entries held in memory.",
            m.head_entries,
        ),
        (
            "kiroku_store_head_bytes",
            "Line bytes held in memory.",
            m.head_bytes,
        ),
        ("kiroku_store_parts", "Part files.", m.parts),
        (
            "kiroku_store_part_bytes",
            "Bytes of part files.",
            m.part_bytes,
        ),
        (
            "kiroku_store_filter_cache_bytes",
            "Bytes of block filters kept in memory for queries.",
            m.filter_cache_bytes,
        ),
        ("kiroku_store_streams", "Streams known.", m.streams),
        ("kiroku_store_tenants", "Tenants with data.", m.tenants),
    ];
    let mut out = String::new();
    for (kind, list) in [("counter", &counters[..]), ("gauge", &gauges[..])] {
        for (name, help, v) in list {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }
    out
}
