//! Sending batches: `POST /loki/api/v1/push` with a snappy protobuf body, to kiroku or any
//! Loki. Network errors, 429 and 5xx are retried with exponential backoff (honouring
//! `Retry-After`) for as long as it takes — the disk buffer holds what waits meanwhile;
//! any other 4xx means the server will never take the batch, or some of its lines: it is
//! logged and not sent again, and the lines refused are counted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT,
};

use crate::metrics::{ErrorKind, Metrics};

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A server asking for longer than this is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("push URL {0:?} is not a valid http(s) URL")]
    Url(String),
    #[error("cannot read {what} file {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "TLS CA file {path} holds no usable PEM certificate ({why}): give the CA's certificate \
         as PEM (-----BEGIN CERTIFICATE-----)"
    )]
    Ca { path: PathBuf, why: String },
    #[error(
        "TLS client certificate {cert} with key {key} is not usable: {why}; give a PEM \
         certificate and its PEM private key (PKCS#8, PKCS#1 or SEC1)"
    )]
    ClientCert {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("--org-id {0:?} is not a valid header value")]
    OrgId(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Where and how to push.
#[derive(Debug, Clone, Default)]
pub struct PushConfig {
    pub url: String,
    pub org_id: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<(String, PathBuf)>,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_insecure_skip_verify: bool,
    /// Client certificate and key files (PEM), for servers that ask for one.
    pub tls_client: Option<(PathBuf, PathBuf)>,
}

/// What became of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Refused for good (a 4xx other than 429 and those of a misconfigured agent).
    Rejected,
    /// The agent is stopping; the batch stays in the buffer.
    Stopped,
}

enum Attempt {
    Retry {
        after: Option<Duration>,
        why: String,
    },
    Reject {
        status: StatusCode,
        why: String,
        /// Entries the answer says were refused; `None` when it does not say.
        refused: Option<u64>,
    },
}

pub struct Pusher {
    client: reqwest::Client,
    url: String,
    config: PushConfig,
    metrics: Arc<Metrics>,
}

impl Pusher {
    pub fn new(config: PushConfig, metrics: Arc<Metrics>) -> Result<Pusher, PushError> {
        // One crypto provider for the whole process (kube uses the same ring-based rustls).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = push_url(&config.url)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("kiroku-agent/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some(org) = &config.org_id {
            let v = HeaderValue::from_str(org).map_err(|_| PushError::OrgId(org.clone()))?;
            headers.insert("X-Scope-OrgID", v);
        }
        let mut b = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(2);
        if let Some(path) = &config.tls_ca_file {
            let pem = std::fs::read(path).map_err(|source| PushError::File {
                what: "TLS CA",
                path: path.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| PushError::Ca {
                    path: path.clone(),
                    why: chain(&source),
                })?;
            // A file with no PEM block at all parses as an empty bundle.
            if certs.is_empty() {
                return Err(PushError::Ca {
                    path: path.clone(),
                    why: "no certificate in it".into(),
                });
            }
            b = b.tls_certs_merge(certs);
        }
        if let Some((cert, key)) = &config.tls_client {
            let mut pem = std::fs::read(cert).map_err(|source| PushError::File {
                what: "TLS client certificate",
                path: cert.clone(),
                source,
            })?;
            pem.push(b'\n');
            pem.extend(std::fs::read(key).map_err(|source| PushError::File {
                what: "TLS client key",
                path: key.clone(),
                source,
            })?);
            let identity =
                reqwest::Identity::from_pem(&pem).map_err(|source| PushError::ClientCert {
                    cert: cert.clone(),
                    key: key.clone(),
                    why: chain(&source),
                })?;
            b = b.identity(identity);
        }
        if config.tls_insecure_skip_verify {
            tracing::warn!("--tls-insecure-skip-verify: the server's certificate is not checked");
            b = b.tls_danger_accept_invalid_certs(true);
        }
        // Read the secrets once now so a wrong path fails at start, not at the first push.
        if let Some(p) = &config.bearer_token_file {
            read_secret("bearer token", p)?;
        }
        if let Some((_, p)) = &config.basic_auth {
            read_secret("password", p)?;
        }
        Ok(Pusher {
            client: b.build().map_err(PushError::Client)?,
            url,
            config,
            metrics,
        })
    }

    /// Pushes `body` until the server takes it, refuses it for good, or `stop` is set.
    pub async fn push(
        &self,
        body: Bytes,
        lines: u32,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Outcome {
        let mut backoff = MIN_BACKOFF;
        loop {
            if *stop.borrow() {
                return Outcome::Stopped;
            }
            match self.attempt(body.clone()).await {
                Ok(()) => return Outcome::Sent,
                Err(Attempt::Reject {
                    status,
                    why,
                    refused,
                }) => {
                    let lines = u64::from(lines);
                    let refused = refused.map_or(lines, |n| n.min(lines));
                    self.metrics.lines_dropped.add(refused);
                    if refused < lines {
                        tracing::error!(status = status.as_u16(), refused, lines, reason = %why,
                            "server refused some lines of a batch and stored the rest; the refused lines are dropped (kiroku_agent_lines_dropped_total)");
                    } else {
                        tracing::error!(status = status.as_u16(), lines, reason = %why,
                            "server refused a batch; its lines are dropped (kiroku_agent_lines_dropped_total)");
                    }
                    return Outcome::Rejected;
                }
                Err(Attempt::Retry { after, why }) => {
                    self.metrics.push_retries.inc();
                    self.metrics.error(ErrorKind::Push);
                    let wait = after.unwrap_or(backoff).min(MAX_RETRY_AFTER);
                    tracing::warn!(url = %self.url, reason = %why, retry_in_ms = wait.as_millis() as u64,
                        "push failed; retrying (lines wait in the disk buffer)");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn attempt(&self, body: Bytes) -> Result<(), Attempt> {
        let mut req = self.client.post(&self.url).body(body);
        if let Some(p) = &self.config.bearer_token_file {
            let token = read_secret("bearer token", p).map_err(|e| Attempt::Retry {
                after: None,
                why: e.to_string(),
            })?;
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some((user, p)) = &self.config.basic_auth {
            let pw = read_secret("password", p).map_err(|e| Attempt::Retry {
                after: None,
                why: e.to_string(),
            })?;
            req = req.basic_auth(user, Some(pw));
        }
        let resp = req.send().await.map_err(|e| Attempt::Retry {
            after: None,
            why: send_error(&e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.text().await.unwrap_or_default();
        let why = format!(
            "{status}: {}",
            text.trim().chars().take(512).collect::<String>()
        );
        // A wrong URL or wrong credentials refuse every batch alike: the lines wait in the
        // disk buffer until the agent is set right, rather than being dropped meanwhile.
        let misconfigured = match status {
            StatusCode::NOT_FOUND => Some(
                "no push endpoint there: /loki/api/v1/push is added to --url only when it has no path",
            ),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(
                "the server wants other credentials: check --org-id, --bearer-token-file and --username/--password-file",
            ),
            _ => None,
        };
        if let Some(hint) = misconfigured {
            Err(Attempt::Retry {
                after: None,
                why: format!("{why} ({hint})"),
            })
        } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Attempt::Retry { after, why })
        } else {
            Err(Attempt::Reject {
                status,
                why,
                refused: refused_entries(&text),
            })
        }
    }
}

/// An error with its causes (reqwest's builder errors say only "builder error").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        let msg = err.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = err.source();
    }
    out
}

/// The whole chain of a failed send (reqwest's own message hides the cause), with what to
/// do when the server's certificate was refused.
fn send_error(e: &reqwest::Error) -> String {
    let mut why = chain(e);
    // rustls' refusal ("invalid peer certificate: UnknownIssuer") arrives wrapped in
    // hyper's and io's errors, and the platform verifier's own types: its message is
    // what stays the same.
    if why.contains("invalid peer certificate") || why.contains("certificate verify failed") {
        why.push_str(
            "; the server's TLS certificate was refused: pass --tls-ca-file with the CA that \
             signed it, or --tls-insecure-skip-verify to test without checking",
        );
    }
    why
}

fn read_secret(what: &'static str, path: &PathBuf) -> Result<String, PushError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| PushError::File {
            what,
            path: path.clone(),
            source,
        })
}

/// `http://host:3100` becomes `http://host:3100/loki/api/v1/push`; a URL with a path is
/// used as given.
pub fn push_url(url: &str) -> Result<String, PushError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| PushError::Url(url.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(PushError::Url(url.to_string()));
    }
    if parsed.path() == "/" || parsed.path().is_empty() {
        Ok(format!("{}/loki/api/v1/push", url.trim_end_matches('/')))
    } else {
        Ok(url.to_string())
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let now = chrono::Utc::now();
    (when.with_timezone(&chrono::Utc) - now).to_std().ok()
}

/// How many entries a 4xx answer says were refused. Loki and kiroku store the valid
/// streams of a push and answer 400 with the refused ones grouped by message:
/// `N errors like: <message>` joined with `; ` (kiroku may end with `; and N more rejected
/// entries`), or one bare message when a single entry was refused, which names its stream.
/// `None` when the answer says neither (a body refused whole, a proxy's error page).
///
/// Loki counts an error of a stream's labels once for all the stream's entries; such
/// answers count low. kiroku counts entries.
fn refused_entries(text: &str) -> Option<u64> {
    const GROUP: &str = " errors like: ";
    const REST: &str = "; and ";
    // Loki and kiroku end the answer with a newline.
    let text = text.trim_end();
    let mut total = 0u64;
    let mut found = false;
    for (at, _) in text.match_indices(GROUP) {
        let head = &text[..at];
        let digits = head.len() - head.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if let Ok(n) = head[head.len() - digits..].parse::<u64>() {
            total = total.saturating_add(n);
            found = true;
        }
    }
    if let Some(at) = text.rfind(REST)
        && let Some(n) = text[at + REST.len()..]
            .strip_suffix(" more rejected entries")
            .and_then(|n| n.parse::<u64>().ok())
    {
        total = total.saturating_add(n);
        found = true;
    }
    if found {
        Some(total)
    } else if text.contains("stream '") {
        Some(1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_retry_after() {
        assert_eq!(
            push_url("http://127.0.0.1:3100").unwrap(),
            "http://127.0.0.1:3100/loki/api/v1/push"
        );
        assert_eq!(
            push_url("https://logs.example.com/custom/push").unwrap(),
            "https://logs.example.com/custom/push"
        );
        assert!(push_url("ftp://x").is_err());
        assert!(push_url("not a url").is_err());
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert!(parse_retry_after("soon").is_none());
    }

    #[test]
    fn refused_entries_are_read_from_the_answer() {
        let one = "entry for stream '{app=\"a\"}' has timestamp too old: 2026-11-20T08:00:00Z, oldest acceptable timestamp is: 2026-11-20T09:00:00Z";
        assert_eq!(refused_entries(one), Some(1));
        let grouped = "3 errors like: max entry size '10' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '11' bytes; 12 errors like: entry for stream '{a=\"c\"}' has 16 label names; limit 15";
        assert_eq!(refused_entries(grouped), Some(15));
        let more = format!("{grouped}; and 40 more rejected entries\n");
        assert_eq!(refused_entries(&more), Some(55));
        assert_eq!(refused_entries("snappy: corrupt input"), None);
        assert_eq!(refused_entries(""), None);
        assert_eq!(refused_entries("<html>400 Bad Request</html>"), None);
    }
}
