//! `POST /otlp/v1/logs`: OpenTelemetry's OTLP/HTTP logs, protobuf or JSON, mapped to Loki
//! streams as Loki 3.x maps them ([`mapping`]) and stored through the same validation,
//! enrichment and store path as a Loki push.
//!
//! Answers follow OTLP/HTTP: 200 with an empty `ExportLogsServiceResponse` in the
//! request's encoding; errors carry a `google.rpc.Status` (protobuf) or `{"code",
//! "message"}` (JSON) with Loki's statuses and messages.

pub mod base64;
pub mod json;
pub mod mapping;
pub mod proto;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use protocol::push::{EntryRef, PushRequestRef, StreamRef};

use crate::app::App;
use crate::error::ApiError;
use crate::push::body::{self, Format};
use crate::push::{INLINE_BODY_BYTES, read_body, sent_bytes, store_request};
use crate::query::now_nanos;
use crate::tenant;

/// The OTLP logs handler.
pub async fn handle(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let is_json = body::format(&headers) == Format::Json;
    match logs(&app, &headers, body, is_json).await {
        Ok(()) if is_json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
        Ok(()) => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Vec::<u8>::new(),
        )
            .into_response(),
        Err(e) => error(e, is_json),
    }
}

async fn logs(app: &App, headers: &HeaderMap, body: Body, is_json: bool) -> Result<(), ApiError> {
    let tenant = tenant::write_tenant(app.config.auth, headers)?;
    let limit = app.max_request_bytes();
    let raw = read_body(body, headers, limit)
        .await
        .map_err(|e| app.body_error(&tenant, e, sent_bytes(headers, limit)))?;
    // OTLP has no snappy framing of its own: only Content-Encoding is undone.
    let sent = raw.len() as u64;
    let payload = body::decode(headers, raw, Format::Json, limit)
        .map_err(|e| app.body_error(&tenant, e, sent))?;
    let req = if is_json {
        json::decode(&payload).map_err(|e| {
            app.invalid_body(&tenant, payload.len());
            ApiError::bad_request(format!("invalid OTLP/JSON logs request: {e}"))
        })?
    } else {
        proto::ExportLogsServiceRequest::decode(&payload[..]).map_err(|e| {
            app.invalid_body(&tenant, payload.len());
            ApiError::bad_request(format!(
                "invalid OTLP protobuf logs request: {e}; send an ExportLogsServiceRequest, or Content-Type: application/json for OTLP/JSON"
            ))
        })?
    };
    let streams = mapping::map(req, now_nanos());
    if streams.is_empty() {
        return Ok(());
    }
    // Lay the mapped streams out as a decoded push request and store it like one.
    let label_text: Vec<String> = streams.iter().map(|s| s.labels.to_string()).collect();
    let mut push = PushRequestRef::default();
    for (s, text) in streams.iter().zip(&label_text) {
        let start = push.entries.len();
        for e in &s.entries {
            let mstart = push.metadata.len();
            push.metadata
                .extend(e.metadata.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
            push.entries.push(EntryRef {
                ts: e.ts,
                line: e.line.as_bytes(),
                metadata: mstart..push.metadata.len(),
            });
        }
        push.streams.push(StreamRef {
            labels: text.as_bytes(),
            entries: start..push.entries.len(),
        });
    }
    store_request(app, &tenant, &push, payload.len() > INLINE_BODY_BYTES).await
}

/// An OTLP error answer in the request's encoding.
fn error(e: ApiError, is_json: bool) -> Response {
    // gRPC codes by HTTP status, as OTLP maps them.
    let code = match e.status {
        StatusCode::BAD_REQUEST
        | StatusCode::PAYLOAD_TOO_LARGE
        | StatusCode::UNPROCESSABLE_ENTITY => 3,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 13,
    };
    if is_json {
        let body = serde_json::json!({"code": code, "message": e.message}).to_string();
        return (e.status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let body = proto::Status {
        code,
        message: e.message,
    }
    .encode_to_vec();
    (
        e.status,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        body,
    )
        .into_response()
}
