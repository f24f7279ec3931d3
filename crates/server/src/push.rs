//! `POST /loki/api/v1/push` (and `/api/prom/push`): Loki's push API.
//!
//! One request goes: tenant → body (bounded, decompressed) → decode in place (protobuf or
//! JSON) → per stream, its label string from the [`labels::LabelCache`] → per entry, the
//! limits and a `detected_level` the labels or metadata name (the store derives the rest)
//! → one `store.append` of every valid stream → 204. Streams and entries that break a rule
//! are left out and named in a 400 answer; the rest of the same request is stored, as Loki
//! does.
//!
//! Cost: a handful of vectors per request, none per line; lines and metadata stay borrowed
//! from the decoded buffer until the store has them.

pub mod body;
pub mod enrich;
pub mod labels;
pub mod limits;

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use protocol::push::PushRequestRef;
use protocol::push_json::JsonPush;
use store::{WriteEntry, WriteStream};

use crate::app::App;
use crate::error::ApiError;
use crate::tail::{TailBatch, TailEntry, TailStream};
use crate::tenant;
use body::{BodyError, Format};
use labels::StreamLabels;
use limits::{Rejections, reason};

/// Bodies larger than this are decompressed, decoded and validated off the async workers
/// (`block_in_place`). Smaller ones, which includes the 1 MiB batches of Promtail and
/// Alloy, are handled on the worker: a few milliseconds of work, and handing a worker's
/// tasks to a new thread for each push spreads the pushes' buffers over a dozen threads,
/// each keeping the memory it freed in its own glibc heap (peak RSS in the ingest bench
/// 119–124 MiB against 111–115 with the batches handled in place, the CPU the same).
pub(crate) const INLINE_BODY_BYTES: usize = 2 << 20;

/// The push handler.
pub async fn handle(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    match push(&app, &headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Everything the push path does before the store (decompress, decode, labels, limits,
/// enrichment), for the benchmark that tells the server's share from the store's.
/// Returns the number of entries that would be stored.
#[doc(hidden)]
pub fn prepare_without_storing(
    app: &App,
    headers: &HeaderMap,
    raw: Bytes,
) -> Result<usize, ApiError> {
    let format = body::format(headers);
    let payload = body::decode(headers, raw, format, app.max_request_bytes())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let json;
    let req = match format {
        Format::Protobuf => {
            PushRequestRef::decode(&payload).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
        Format::Json => {
            json = JsonPush::decode(&payload).map_err(|e| ApiError::bad_request(e.to_string()))?;
            json.as_request()
        }
    };
    let batch = Batch::build(app, tenant::SINGLE_TENANT, &req);
    Ok(batch.entries.len())
}

/// The whole push path for one request, for the handler and the benchmark.
pub async fn push_body(app: &App, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    push(app, headers, body).await
}

async fn push(app: &App, headers: &HeaderMap, body: Body) -> Result<(), ApiError> {
    let tenant = tenant::write_tenant(app.config.auth, headers)?;
    let limit = app.max_request_bytes();
    let raw = read_body(body, headers, limit)
        .await
        .map_err(|e| app.body_error(&tenant, e, sent_bytes(headers, limit)))?;
    let format = body::format(headers);
    let sent = raw.len() as u64;
    let payload = if raw.len() > INLINE_BODY_BYTES {
        tokio::task::block_in_place(|| body::decode(headers, raw, format, limit))
    } else {
        body::decode(headers, raw, format, limit)
    }
    .map_err(|e| app.body_error(&tenant, e, sent))?;
    ingest(app, &tenant, format, &payload).await
}

/// Reads the whole body, refusing more than `limit` bytes (from `Content-Length` before
/// reading anything, else as the bytes arrive).
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared
        && n > limit as u64
    {
        return Err(BodyError::TooLarge { size: n, limit });
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge {
            size: limit as u64 + 1,
            limit,
        }),
        Err(e) => Err(BodyError::Corrupt {
            encoding: "HTTP",
            message: format!("the request body could not be read: {e}"),
        }),
    }
}

/// Decodes, validates and stores one payload.
async fn ingest(app: &App, tenant: &str, format: Format, payload: &[u8]) -> Result<(), ApiError> {
    let json;
    let req = match format {
        Format::Protobuf => PushRequestRef::decode(payload).map_err(|e| {
            app.invalid_body(tenant, payload.len());
            ApiError::bad_request(format!(
                "{e}: the body is not a snappy-compressed logproto.PushRequest; send Content-Type: application/json for JSON"
            ))
        })?,
        Format::Json => {
            json = JsonPush::decode(payload).map_err(|e| {
                app.invalid_body(tenant, payload.len());
                ApiError::bad_request(e.to_string())
            })?;
            json.as_request()
        }
    };
    if req.streams.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error at least one valid stream is required for ingestion",
        ));
    }
    store_request(app, tenant, &req, payload.len() > INLINE_BODY_BYTES).await
}

/// Validates, enriches and stores a decoded request (of any wire format); `large` moves
/// the per-entry work off the async worker. Ok when everything was stored; a 400 naming
/// what was left out otherwise (the rest is stored).
pub(crate) async fn store_request(
    app: &App,
    tenant: &str,
    req: &PushRequestRef<'_>,
    large: bool,
) -> Result<(), ApiError> {
    let batch = if large {
        tokio::task::block_in_place(|| Batch::build(app, tenant, req))
    } else {
        Batch::build(app, tenant, req)
    };
    let meta: Vec<(&str, &str)> = batch
        .meta
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .collect();
    let entries: Vec<WriteEntry<'_>> = batch
        .entries
        .iter()
        .map(|e| WriteEntry {
            ts: e.ts,
            line: e.line,
            metadata: &meta[e.meta.clone()],
        })
        .collect();
    let streams: Vec<WriteStream<'_>> = batch
        .streams
        .iter()
        .map(|(s, r)| WriteStream {
            labels: &s.labels,
            entries: &entries[r.clone()],
        })
        .collect();
    let mut rejections = batch.rejections;
    if !streams.is_empty() {
        let report = app.store.append(tenant, &streams).await.map_err(|e| {
            tracing::error!(tenant, error = %e, "push not stored");
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            ApiError::new(status, format!("push not stored: {e}"))
        })?;
        // The store re-checks retention; an entry can only fail it here when the clock
        // moved past its edge since the window was computed.
        for r in &report.rejected {
            let store::RejectReason::TooOld { oldest_acceptable } = r.reason;
            let (s, range) = &batch.streams[r.stream];
            let e = &batch.entries[range.start + r.entry];
            let w = limits::Window {
                oldest: Some(oldest_acceptable),
                newest: i64::MAX,
            };
            if let Err(rej) = app.limits.check_entry(&w, &s.text, e.ts, 0, 0, 0) {
                app.metrics
                    .discarded(tenant, rej.reason, 1, e.line.len() as u64);
                rejections.add(rej, 1, true);
            }
        }
        let rejected_bytes: u64 = report
            .rejected
            .iter()
            .map(|r| {
                batch.entries[batch.streams[r.stream].1.start + r.entry]
                    .line
                    .len() as u64
            })
            .sum();
        app.metrics.received(
            tenant,
            report.accepted,
            batch.accepted_bytes.saturating_sub(rejected_bytes),
        );
        if app.tail.active() {
            app.tail
                .publish(tail_batch(tenant, &batch.streams, &streams));
        }
    }
    if rejections.is_empty() {
        return Ok(());
    }
    for (r, n) in rejections.iter() {
        tracing::debug!(tenant, reason = r.reason, entries = n, message = %r.message, "push entries rejected");
    }
    Err(ApiError::bad_request(rejections.message()))
}

/// The valid part of a request, ready for the store.
struct Batch<'a> {
    streams: Vec<(Arc<StreamLabels>, Range<usize>)>,
    entries: Vec<BatchEntry<'a>>,
    /// Every accepted entry's structured metadata, back to back, `detected_level` included.
    meta: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    accepted_bytes: u64,
    rejections: Rejections,
}

struct BatchEntry<'a> {
    ts: i64,
    line: &'a [u8],
    meta: Range<usize>,
}

impl<'a> Batch<'a> {
    fn build(app: &App, tenant: &str, req: &PushRequestRef<'a>) -> Batch<'a> {
        let limits = &app.limits;
        let window = limits.window(now_nanos());
        let mut b = Batch {
            streams: Vec::with_capacity(req.streams.len()),
            entries: Vec::with_capacity(req.entries.len()),
            meta: Vec::with_capacity(req.metadata.len() + req.entries.len()),
            accepted_bytes: 0,
            rejections: Rejections::default(),
        };
        for s in &req.streams {
            let entries = &req.entries[s.entries.clone()];
            if entries.is_empty() {
                continue;
            }
            let labels = match app
                .label_cache
                .get(s.labels, limits, enrich::add_service_name)
            {
                Ok(l) => l,
                Err(r) => {
                    let bytes = entries.iter().map(|e| e.line.len() as u64).sum();
                    app.metrics
                        .discarded(tenant, r.reason, entries.len() as u64, bytes);
                    b.rejections.add(r, entries.len() as u64, false);
                    continue;
                }
            };
            let start = b.entries.len();
            let mut last_rejected = false;
            for e in entries {
                let md = &req.metadata[e.metadata.clone()];
                let md_size = md.iter().map(|(n, v)| n.len() + v.len()).sum();
                if let Err(r) =
                    limits.check_entry(&window, &labels.text, e.ts, e.line.len(), md.len(), md_size)
                {
                    app.metrics
                        .discarded(tenant, r.reason, 1, e.line.len() as u64);
                    b.rejections.add(r, 1, last_rejected);
                    last_rejected = true;
                    continue;
                }
                last_rejected = false;
                let mstart = b.meta.len();
                for (n, v) in md {
                    b.meta.push((sanitize_name(n), utf8(v)));
                }
                if let Some(level) = enrich::stored_level(&labels, &b.meta[mstart..]) {
                    // A client's own detected_level is kept, normalised, rather than doubled.
                    match b.meta[mstart..]
                        .iter_mut()
                        .find(|(n, _)| n == enrich::DETECTED_LEVEL)
                    {
                        Some(pair) => pair.1 = level,
                        None => b.meta.push((Cow::Borrowed(enrich::DETECTED_LEVEL), level)),
                    }
                }
                b.accepted_bytes += e.line.len() as u64;
                b.entries.push(BatchEntry {
                    ts: e.ts,
                    line: e.line,
                    meta: mstart..b.meta.len(),
                });
            }
            if b.entries.len() > start {
                b.streams.push((labels, start..b.entries.len()));
            }
        }
        b
    }
}

/// An owned copy of what was stored, for live tails (made only while someone tails).
fn tail_batch(
    tenant: &str,
    labels: &[(Arc<StreamLabels>, Range<usize>)],
    streams: &[WriteStream<'_>],
) -> TailBatch {
    TailBatch {
        tenant: tenant.to_string(),
        streams: labels
            .iter()
            .zip(streams)
            .map(|((l, _), s)| TailStream {
                labels: l.labels.clone(),
                entries: s
                    .entries
                    .iter()
                    .map(|e| {
                        let mut metadata: Vec<(String, String)> = e
                            .metadata
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_string()))
                            .collect();
                        // What the store will add (see `enrich::stored_level`).
                        if !metadata.iter().any(|(n, _)| n == enrich::DETECTED_LEVEL) {
                            let level = logql::detect::line_level(e.line);
                            metadata.push((enrich::DETECTED_LEVEL.to_string(), level.to_string()));
                        }
                        TailEntry {
                            ts: e.ts,
                            line: String::from_utf8_lossy(e.line).into_owned(),
                            metadata,
                        }
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A structured-metadata name as Loki stores it: invalid characters (`.`, `-`, ...) become
/// `_`, and a leading digit gets a `key_` prefix, as the OpenTelemetry name translation does.
pub(crate) fn sanitize_name(raw: &[u8]) -> Cow<'_, str> {
    let s = utf8(raw);
    if protocol::labels::is_valid_label_name(&s) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 4);
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        out.push_str("key_");
    }
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    Cow::Owned(out)
}

/// Text as sent, borrowed when it is valid UTF-8 (the fast, common case), else with the
/// invalid bytes replaced, as Loki does.
pub(crate) fn utf8(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The size of a body refused while it was read: its `Content-Length`, else the limit it
/// went past.
pub(crate) fn sent_bytes(headers: &HeaderMap, limit: usize) -> u64 {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(limit as u64)
}

/// Counts a rejected body under Loki's reasons.
impl App {
    /// `bytes`: the body's size as sent (compressed), which Loki counts as discarded.
    pub(crate) fn body_error(&self, tenant: &str, e: BodyError, bytes: u64) -> ApiError {
        let reason = if e.is_too_large() {
            reason::REQUEST_BODY_TOO_LARGE
        } else {
            reason::INVALID_BODY
        };
        self.metrics.discarded(tenant, reason, 0, bytes);
        tracing::debug!(tenant, reason, error = %e, "push body refused");
        ApiError::bad_request(e.to_string())
    }

    pub(crate) fn invalid_body(&self, tenant: &str, bytes: usize) {
        self.metrics
            .discarded(tenant, reason::INVALID_BODY, 0, bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    /// A server state over a real store in a temporary directory.
    fn app() -> (tempfile::TempDir, Arc<App>) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config {
            data_dir: dir.path().to_path_buf(),
            retention: crate::config::Period(0),
            max_request_bytes: crate::config::ByteSize(1 << 20),
            ..Default::default()
        };
        let mut sc = store::StoreConfig::new(dir.path());
        sc.fsync = false;
        sc.retention = None;
        sc.retention_max_disk = store::DiskBudget::Unlimited;
        let store = store::Store::open(sc).unwrap();
        (dir, Arc::new(App::new(cfg, store)))
    }

    fn compress(enc: u8, b: &[u8]) -> (Option<&'static str>, Vec<u8>) {
        match enc % 5 {
            0 => (None, b.to_vec()),
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(b).unwrap();
                (Some("gzip"), e.finish().unwrap())
            }
            2 => {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(b).unwrap();
                (Some("deflate"), e.finish().unwrap())
            }
            3 => (
                Some("snappy"),
                snap::raw::Encoder::new().compress_vec(b).unwrap(),
            ),
            _ => (Some("gzip"), b.to_vec()), // claims gzip, is not
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever arrives, the handler answers (204 or a 4xx with a message) and never
        /// panics: random bytes, random bytes behind valid snappy (so the protobuf decoder
        /// sees them), JSON-like text, each under every Content-Encoding.
        #[test]
        fn random_bodies_never_panic_the_handler(
            raw in proptest::collection::vec(any::<u8>(), 0..512),
            jsonish in r#"\{("streams":\[(\{("stream":\{("[a-z]{1,3}":"[a-z]{0,3}",?){0,3}\},?)?("values":\[(\["[0-9]{1,20}","[^"]{0,10}"(,\{\})?\],?){0,3}\])?\},?){0,3}\])?\}"#,
            kind in 0u8..3,
            enc in 0u8..5,
            json in any::<bool>(),
        ) {
            let (_dir, app) = app();
            let payload: Vec<u8> = match kind {
                0 => raw,
                1 => snap::raw::Encoder::new().compress_vec(&raw).unwrap(),
                _ => jsonish.into_bytes(),
            };
            let (encoding, body) = compress(enc, &payload);
            let mut headers = HeaderMap::new();
            if json {
                headers.insert(axum::http::header::CONTENT_TYPE, "application/json".parse().unwrap());
            }
            if let Some(e) = encoding {
                headers.insert(axum::http::header::CONTENT_ENCODING, e.parse().unwrap());
            }
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            let result = rt.block_on(push(&app, &headers, Body::from(body)));
            if let Err(e) = result {
                prop_assert!(e.status.is_client_error(), "{} {}", e.status, e.message);
                prop_assert!(!e.message.is_empty());
            }
        }
    }

    #[test]
    fn metadata_names_are_sanitised_like_loki() {
        assert_eq!(sanitize_name(b"trace_id"), "trace_id");
        assert!(matches!(sanitize_name(b"trace_id"), Cow::Borrowed(_)));
        assert_eq!(sanitize_name(b"k8s.pod.name"), "k8s_pod_name");
        assert_eq!(sanitize_name(b"1st"), "key_1st");
    }
}
