//! The HTTP side of the client: Loki's read endpoints, called with GET as logcli does, the
//! answers read with [`protocol::response`], and every failure turned into a
//! [`ClientError`] that names the fix.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use protocol::Labels;
use protocol::response::{DataResponse, QueryResponse};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};

use crate::connection::{Auth, Endpoint};
use crate::error::{BadQuery, ClientError, refused_hint};
use crate::range::TimeRange;

/// Which end of the window a log query starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forward,
    /// Newest first (Loki's default).
    Backward,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Backward => "backward",
        }
    }
}

/// A `query_range` request.
#[derive(Debug, Clone)]
pub struct RangeRequest<'a> {
    pub query: &'a str,
    pub range: TimeRange,
    pub limit: usize,
    pub direction: Direction,
    /// Passed through as given (`30s`, `60`); Loki picks one from the range when absent.
    pub step: Option<&'a str>,
}

/// A parsed answer and the bytes it came from (`--output raw` prints metric answers as
/// the server sent them).
#[derive(Debug)]
pub struct Answer {
    pub response: QueryResponse,
    pub body: Vec<u8>,
}

/// A client for one server, with its credentials and TLS settings.
pub struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    /// Tenant, credentials and user agent: sent with every request, the tail's included.
    headers: HeaderMap,
}

const APP: &str = concat!("kiroku/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Client, ClientError> {
        let tls = crate::tls::client_config(&endpoint)?;
        let headers = request_headers(&endpoint)?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .default_headers(headers.clone())
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3));
        // HTTP(S)_PROXY is honoured, but never for this machine, as Go's clients (logcli)
        // behave: a proxy cannot reach the user's own loopback.
        if is_loopback(&endpoint.base) {
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| ClientError::Tls {
            addr: endpoint.display.clone(),
            why: e.to_string(),
        })?;
        Ok(Client {
            http,
            endpoint,
            tls,
            headers,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.tls
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// `GET /loki/api/v1/query_range`.
    pub async fn query_range(&self, r: &RangeRequest<'_>) -> Result<Answer, ClientError> {
        let mut params = vec![
            ("query", r.query.to_string()),
            ("start", r.range.start.to_string()),
            ("end", r.range.end.to_string()),
            ("limit", r.limit.to_string()),
            ("direction", r.direction.as_str().to_string()),
        ];
        if let Some(step) = r.step {
            params.push(("step", step.to_string()));
        }
        let path = "loki/api/v1/query_range";
        let body = self.get(path, &params, Some(r.query)).await?;
        Ok(Answer {
            response: self.decode(path, &body)?,
            body,
        })
    }

    /// `GET /loki/api/v1/query`: a query at one instant.
    pub async fn query_instant(
        &self,
        query: &str,
        time: i64,
        limit: usize,
        direction: Direction,
    ) -> Result<Answer, ClientError> {
        let params = [
            ("query", query.to_string()),
            ("time", time.to_string()),
            ("limit", limit.to_string()),
            ("direction", direction.as_str().to_string()),
        ];
        let path = "loki/api/v1/query";
        let body = self.get(path, &params, Some(query)).await?;
        Ok(Answer {
            response: self.decode(path, &body)?,
            body,
        })
    }

    /// `GET /loki/api/v1/labels`, or `/label/<name>/values` when `name` is given.
    pub async fn labels(
        &self,
        name: Option<&str>,
        range: TimeRange,
        query: Option<&str>,
    ) -> Result<Vec<String>, ClientError> {
        let path = match name {
            None => "loki/api/v1/labels".to_string(),
            Some(n) => format!("loki/api/v1/label/{}/values", encode_path_segment(n)),
        };
        let mut params = vec![
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
        ];
        if let Some(q) = query {
            params.push(("query", q.to_string()));
        }
        let body = self.get(&path, &params, query).await?;
        let r: DataResponse<Option<Vec<String>>> = self.decode(&path, &body)?;
        Ok(r.data.unwrap_or_default())
    }

    /// `GET /loki/api/v1/series`; no matcher asks for every stream in the window.
    pub async fn series(
        &self,
        matchers: &[String],
        range: TimeRange,
    ) -> Result<Vec<Labels>, ClientError> {
        let mut params: Vec<(&str, String)> =
            matchers.iter().map(|m| ("match[]", m.clone())).collect();
        params.push(("start", range.start.to_string()));
        params.push(("end", range.end.to_string()));
        let path = "loki/api/v1/series";
        let query = (matchers.len() == 1).then(|| matchers[0].as_str());
        let body = self.get(path, &params, query).await?;
        let r: DataResponse<Option<Vec<Labels>>> = self.decode(path, &body)?;
        Ok(r.data.unwrap_or_default())
    }

    /// The full URL of an API path with its parameters.
    pub fn url(&self, path: &str, params: &[(&str, String)]) -> Result<Url, ClientError> {
        let mut url = self
            .endpoint
            .base
            .join(path)
            .map_err(|e| ClientError::Address {
                addr: self.endpoint.display.clone(),
                why: e.to_string(),
            })?;
        if !params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn get(
        &self,
        path: &str,
        params: &[(&str, String)],
        query: Option<&str>,
    ) -> Result<Vec<u8>, ClientError> {
        let url = self.url(path, params)?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| self.send_error(&e))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(self.status_error(status.as_u16(), &body, path, query))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Decode {
            addr: self.endpoint.display.clone(),
            path: format!("/{path}"),
            why: e.to_string(),
        })
    }

    /// Classifies an error answer. `query` is the LogQL the request carried, for the caret.
    pub fn status_error(
        &self,
        status: u16,
        body: &[u8],
        path: &str,
        query: Option<&str>,
    ) -> ClientError {
        let message = error_text(body);
        let addr = self.endpoint.display.clone();
        match status {
            400 | 422 => {
                if let Some(q) = query
                    && let Some(b) = BadQuery::from_message(q, &message)
                {
                    return ClientError::BadQuery(b);
                }
                let message = match refused_hint(&message) {
                    Some(h) => format!("{message}: {h}"),
                    None => message,
                };
                ClientError::Refused { status, message }
            }
            401 | 403 => {
                if message.to_ascii_lowercase().contains("org id") {
                    ClientError::NoTenant {
                        addr,
                        status,
                        message,
                    }
                } else if self.endpoint.auth == Auth::None {
                    ClientError::AuthRequired {
                        addr,
                        status,
                        message,
                    }
                } else {
                    ClientError::AuthRefused {
                        addr,
                        status,
                        message,
                    }
                }
            }
            404 | 405 => ClientError::NoEndpoint {
                addr,
                path: format!("/{}", path.trim_start_matches('/')),
                status,
            },
            _ => ClientError::Server {
                addr,
                status,
                message,
            },
        }
    }

    /// Classifies a failure to get an answer at all.
    pub fn send_error(&self, e: &reqwest::Error) -> ClientError {
        let addr = self.endpoint.display.clone();
        let mut why = None;
        let mut source: Option<&dyn std::error::Error> = Some(e);
        let mut innermost = e.to_string();
        while let Some(s) = source {
            if let Some(tls) = find_tls_error(s) {
                return tls_failure(addr, tls);
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                why = why.or(match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => Some("connection refused".to_string()),
                    std::io::ErrorKind::TimedOut => Some("connection timed out".to_string()),
                    _ => None,
                });
            }
            innermost = s.to_string();
            source = s.source();
        }
        if innermost.contains("dns error") || innermost.contains("failed to lookup address") {
            why = why.or(Some(format!("cannot resolve the host name: {innermost}")));
        }
        if e.is_timeout() {
            why = why.or(Some("timed out".to_string()));
        }
        match why {
            Some(why) => ClientError::NoServer { addr, why },
            None if e.is_connect() => ClientError::NoServer {
                addr,
                why: innermost,
            },
            None => ClientError::Network {
                addr,
                why: innermost,
            },
        }
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A failed TLS handshake with `addr`. A server that answers in plain HTTP fails it with
/// a record of no TLS content type, and no certificate flag can help with that.
pub(crate) fn tls_failure(addr: String, e: &rustls::Error) -> ClientError {
    match e {
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            ClientError::NotTls { addr }
        }
        e => ClientError::Tls {
            addr,
            why: e.to_string(),
        },
    }
}

/// rustls' error inside `e`. TLS failures arrive as I/O errors wrapping I/O errors wrapping
/// it, and an I/O error's `source()` skips the error it wraps, so look inside each.
pub(crate) fn find_tls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return find_tls_error(inner);
    }
    None
}

/// The tenant, credentials and user agent as headers.
fn request_headers(ep: &Endpoint) -> Result<HeaderMap, ClientError> {
    let mut h = HeaderMap::new();
    h.insert(USER_AGENT, HeaderValue::from_static(APP));
    if let Some(org) = &ep.org_id {
        let v = HeaderValue::from_str(org).map_err(|_| {
            ClientError::Usage(format!(
                "--org-id {org:?} cannot be sent in a header: use printable ASCII"
            ))
        })?;
        h.insert("X-Scope-OrgID", v);
    }
    let auth = match &ep.auth {
        Auth::None => None,
        Auth::Bearer(t) => Some(format!("Bearer {t}")),
        Auth::Basic { username, password } => Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
        )),
    };
    if let Some(a) = auth {
        let mut v = HeaderValue::from_str(&a).map_err(|_| {
            ClientError::Usage(
                "the credentials cannot be sent in a header: use printable ASCII".into(),
            )
        })?;
        v.set_sensitive(true);
        h.insert(AUTHORIZATION, v);
    }
    Ok(h)
}

/// The text of an error answer: Loki sends plain text; some proxies send JSON or HTML.
fn error_text(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s)
        && let Some(m) = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
    {
        return m.to_string();
    }
    const MAX: usize = 1000;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None if s.is_empty() => "(no message)".to_string(),
        None => s.to_string(),
    }
}

/// Percent-encodes one path segment (a label name is `[a-zA-Z_][a-zA-Z0-9_]*`, but the
/// user may type anything).
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;

    fn client(auth: Auth) -> Client {
        let mut ep = Connection {
            addr: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        }
        .endpoint()
        .unwrap();
        ep.auth = auth;
        Client::new(ep).unwrap()
    }

    #[test]
    fn status_answers_become_actionable_errors() {
        let c = client(Auth::None);
        let e = c.status_error(401, b"no org id\n", "loki/api/v1/labels", None);
        assert!(matches!(e, ClientError::NoTenant { .. }), "{e}");
        let e = c.status_error(401, b"Unauthorized", "loki/api/v1/labels", None);
        assert!(matches!(e, ClientError::AuthRequired { .. }), "{e}");
        let c2 = client(Auth::Bearer("t".into()));
        let e = c2.status_error(403, b"forbidden", "loki/api/v1/labels", None);
        assert!(matches!(e, ClientError::AuthRefused { .. }), "{e}");
        let e = c.status_error(
            400,
            b"parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
            "loki/api/v1/query_range",
            Some(r#"{app="api""#),
        );
        assert!(matches!(e, ClientError::BadQuery(_)), "{e}");
        let e = c.status_error(
            400,
            b"pipeline error: 'JSONParserErr' for series: '{app=\"api\"}'",
            "loki/api/v1/query_range",
            Some("x"),
        );
        assert!(e.to_string().contains("__error__"), "{e}");
        let e = c.status_error(404, b"404 page not found", "loki/api/v1/tail", None);
        assert!(e.to_string().contains("/loki/api/v1/tail"), "{e}");
        let e = c.status_error(500, b"", "loki/api/v1/labels", None);
        assert!(e.to_string().contains("(no message)"), "{e}");
    }

    #[test]
    fn headers_carry_tenant_and_credentials() {
        let mut ep = Connection {
            addr: Some("x:1".into()),
            org_id: Some("team-a".into()),
            ..Default::default()
        }
        .endpoint()
        .unwrap();
        ep.auth = Auth::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let h = request_headers(&ep).unwrap();
        assert_eq!(h["X-Scope-OrgID"], "team-a");
        assert_eq!(h[AUTHORIZATION], "Basic dTpw");
        ep.org_id = Some("a\nb".into());
        assert!(request_headers(&ep).is_err());
    }

    #[test]
    fn loopback_addresses_bypass_proxies() {
        for (a, want) in [
            ("http://localhost:3100", true),
            ("http://127.0.0.1:3100", true),
            ("http://[::1]:3100", true),
            ("http://loki.example.com", false),
            ("http://10.0.0.1:3100", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(a).unwrap()), want, "{a}");
        }
    }

    #[test]
    fn label_names_are_escaped_in_paths() {
        assert_eq!(encode_path_segment("pod"), "pod");
        assert_eq!(encode_path_segment("a/b c"), "a%2Fb%20c");
    }
}
