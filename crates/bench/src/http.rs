//! The benchmark's HTTP client: plain HTTP/1.1 with keep-alive, status codes as values
//! rather than errors (the bench checks them itself).

use std::time::Duration;

/// A client agent; each pushing thread has its own, so connections are not shared.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

/// Reads a response body as text, at most 256 MiB.
pub fn text(resp: ureq::http::Response<ureq::Body>) -> anyhow::Result<String> {
    Ok(resp
        .into_body()
        .into_with_config()
        .limit(256 << 20)
        .read_to_string()?)
}
