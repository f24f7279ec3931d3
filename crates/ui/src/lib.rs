//! kiroku's web UI, embedded in the binary and served by `kiroku server` at `/`.
//!
//! The UI is a TypeScript single-page app built by Vite into `ui/dist`, which is committed,
//! so `cargo build` never needs Node. This crate embeds that folder with `rust-embed` (in
//! every profile: a debug binary is as self-contained as a release one) and hands the
//! server an axum [`router`] that serves it: each client page (`/`, `/kubernetes`, ...)
//! answers with `index.html`, hashed assets are cached forever, everything is sent
//! gzipped when the client accepts it (the build writes a `.gz` beside each text file).
//!
//! It does not serve anything else: there is no catch-all, so the router can never shadow
//! the API (`/loki/*`, `/otlp/*`, `/api/*`, `/metrics`, `/ready`, `/config`, `/flush`), and
//! merging it into the server's router panics at startup, not at request time, if a path
//! were ever claimed twice. Start reading from [`router`] and [`PAGES`].

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "../../ui/dist"]
struct Dist;

/// The UI's client-side pages: each is served `index.html` and the page reads its path.
/// One segment deep, so the page's relative asset paths work under any proxy prefix;
/// `ui/src/route.ts` holds the same list.
pub const PAGES: &[&str] = &["/", "/explore", "/kubernetes", "/labels"];

/// Hashed file names (`assets/index-B-UXOpWM.js`) never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is revalidated, so a new kiroku version is seen at once.
const REVALIDATE: &str = "no-cache";

/// Log lines are untrusted input shown in this page: the UI builds DOM nodes, never HTML
/// from strings, and this policy stops any script not shipped with the binary. Styles may
/// be inline because CodeMirror and uPlot set them at run time.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'";

/// The UI's routes, to merge into the server's router:
/// `server_router.merge(ui::router())`. Generic over the state so it merges before the
/// server's `.with_state(..)`.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut r = Router::new();
    for page in PAGES {
        r = r.route(page, get(index));
    }
    // Top-level files of the build other than index.html (favicon.svg), each by its name.
    for name in Dist::iter() {
        if name.contains('/') || name.ends_with(".gz") || name == "index.html" {
            continue;
        }
        let path = name.to_string();
        r = r.route(
            &format!("/{name}"),
            get(move |h: HeaderMap| async move { serve(&path, &h) }),
        );
    }
    r.route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("assets/{path}"), &headers)
}

/// Answers with one embedded file: its type, caching rules, ETag (304 when the client has
/// it) and the gzip copy when the client accepts gzip.
fn serve(path: &str, req: &HeaderMap) -> Response {
    let Some(file) = Dist::get(path) else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    let hash = file.metadata.sha256_hash();
    let etag = format!("\"{}\"", hex16(&hash));
    let cache = if path.starts_with("assets/") {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let gz = Dist::get(&format!("{path}.gz"));
    if gz.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    if etag_matches(req, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    let body = match gz {
        Some(gz) if accepts_gzip(req) => {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz.data
        }
        _ => file.data,
    };
    (StatusCode::OK, headers, Body::from(body.into_owned())).into_response()
}

fn hex16(hash: &[u8; 32]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(32);
    for b in &hash[..16] {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `If-None-Match` holding our ETag (or `*`), in a list or alone, weak or strong.
fn etag_matches(req: &HeaderMap, etag: &str) -> bool {
    req.get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// `Accept-Encoding` naming gzip (or `*`) without `q=0`.
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests;
