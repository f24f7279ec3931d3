use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use std::io::Read;
use tower::ServiceExt;

use super::*;

async fn call(
    router: Router,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), 64 << 20).await.unwrap().to_vec();
    (status, headers, body)
}

fn ui() -> Router {
    router::<()>()
}

/// The script and stylesheet index.html loads, e.g. `assets/index-abc.js`.
fn referenced_assets(html: &str) -> Vec<String> {
    html.split(['"', '\''])
        .filter_map(|s| s.strip_prefix("./"))
        .filter(|s| s.starts_with("assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_page_is_the_app() {
    for page in PAGES {
        let (status, h, body) = call(ui(), page, &[]).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(r#"<div id="app">"#), "{page}: {html}");
    }
}

#[tokio::test]
async fn the_assets_index_loads_exist_with_their_types_and_are_cached_forever() {
    let (_, _, body) = call(ui(), "/", &[]).await;
    let assets = referenced_assets(&String::from_utf8(body).unwrap());
    assert!(assets.iter().any(|a| a.ends_with(".js")), "{assets:?}");
    assert!(assets.iter().any(|a| a.ends_with(".css")), "{assets:?}");
    for a in assets {
        let (status, h, body) = call(ui(), &format!("/{a}"), &[]).await;
        assert_eq!(status, StatusCode::OK, "{a}");
        let ct = h[header::CONTENT_TYPE].to_str().unwrap();
        assert!(
            ct.starts_with(if a.ends_with(".js") {
                "text/javascript"
            } else {
                "text/css"
            }),
            "{a}: {ct}"
        );
        assert_eq!(h[header::CACHE_CONTROL], IMMUTABLE);
        assert!(h.get(header::CONTENT_ENCODING).is_none());
        assert!(!body.is_empty());
    }
}

#[tokio::test]
async fn gzip_is_sent_to_clients_that_accept_it_and_decodes_to_the_same_bytes() {
    let (_, _, body) = call(ui(), "/", &[]).await;
    let js = referenced_assets(&String::from_utf8(body).unwrap())
        .into_iter()
        .find(|a| a.ends_with(".js"))
        .unwrap();
    let path = format!("/{js}");
    let (_, plain_h, plain) = call(ui(), &path, &[]).await;
    let (status, h, gz) = call(ui(), &path, &[("accept-encoding", "br, gzip;q=0.8")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_ENCODING], "gzip");
    assert_eq!(h[header::VARY], "accept-encoding");
    assert_eq!(plain_h[header::ETAG], h[header::ETAG]);
    assert!(
        gz.len() < plain.len() / 2,
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    let mut decoded = Vec::new();
    gunzip(&gz, &mut decoded);
    assert_eq!(decoded, plain);

    let (_, h, _) = call(ui(), &path, &[("accept-encoding", "gzip;q=0, identity")]).await;
    assert!(h.get(header::CONTENT_ENCODING).is_none());
}

fn gunzip(gz: &[u8], out: &mut Vec<u8>) {
    flate2::read::GzDecoder::new(gz).read_to_end(out).unwrap();
}

#[tokio::test]
async fn a_known_etag_gets_not_modified() {
    let (_, h, _) = call(ui(), "/", &[]).await;
    let etag = h[header::ETAG].to_str().unwrap().to_string();
    let (status, h2, body) = call(
        ui(),
        "/kubernetes",
        &[("if-none-match", &format!("\"x\", {etag}"))],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(h2[header::ETAG], etag.as_str());
    assert!(body.is_empty());
    let (status, _, _) = call(ui(), "/", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn top_level_files_are_served_and_unknown_files_are_404() {
    let (status, h, _) = call(ui(), "/favicon.svg", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "image/svg+xml");
    let (status, _, body) = call(ui(), "/assets/nope.js", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, b"404 page not found\n");
}

/// The UI claims only its own paths: the API's paths are not routed, and merging the UI
/// into a router that has them keeps the API answering.
#[tokio::test]
async fn never_shadows_the_api() {
    for path in [
        "/loki/api/v1/query_range",
        "/loki/api/v1/push",
        "/otlp/v1/logs",
        "/api/prom/push",
        "/metrics",
        "/ready",
        "/config",
        "/flush",
        "/kubernetes/extra",
        "/index.html.gz",
    ] {
        let (status, _, _) = call(ui(), path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let api: Router = Router::new()
        .route("/ready", get(|| async { "ready" }))
        .route(
            "/loki/api/v1/push",
            post(|| async { StatusCode::NO_CONTENT }),
        )
        .route("/metrics", get(|| async { "m" }))
        .merge(ui());
    let (status, _, body) = call(api.clone(), "/ready", &[]).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ready".as_slice())
    );
    let (status, _, _) = call(api, "/", &[]).await;
    assert_eq!(status, StatusCode::OK);
}
