//! Where the server is and how to talk to it: the flags every client subcommand shares,
//! named like logcli's, with logcli's environment variables (`LOKI_ADDR`, `LOKI_ORG_ID`,
//! …) so an existing logcli setup works unchanged; `KIROKU_ADDR` wins over `LOKI_ADDR`.

use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::error::ClientError;

pub const DEFAULT_ADDR: &str = "http://127.0.0.1:3100";

/// The connection flags of `kiroku query`, `labels`, `series` and `logs`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Server address, with a path prefix if the API is served under one
    /// [env: KIROKU_ADDR, then LOKI_ADDR] [default: http://127.0.0.1:3100]
    #[arg(long, value_name = "URL")]
    pub addr: Option<String>,
    /// Tenant to read, sent as X-Scope-OrgID (`a|b` reads several on kiroku and Loki)
    #[arg(long, env = "LOKI_ORG_ID", value_name = "TENANT")]
    pub org_id: Option<String>,
    /// Bearer token for the Authorization header
    #[arg(
        long,
        env = "LOKI_BEARER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub bearer_token: Option<String>,
    /// File holding the bearer token
    #[arg(long, env = "LOKI_BEARER_TOKEN_FILE", value_name = "FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// User name for basic authentication
    #[arg(long, env = "LOKI_USERNAME", value_name = "USER")]
    pub username: Option<String>,
    /// Password for basic authentication
    #[arg(
        long,
        env = "LOKI_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<String>,
    /// CA certificate(s), PEM, to trust for the server's certificate besides the system's
    #[arg(
        long,
        env = "LOKI_CA_CERT_PATH",
        alias = "ca-cert",
        value_name = "FILE"
    )]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate, PEM, for mutual TLS
    #[arg(
        long,
        env = "LOKI_CLIENT_CERT_PATH",
        alias = "cert",
        value_name = "FILE"
    )]
    pub tls_cert_file: Option<PathBuf>,
    /// Client certificate's private key, PEM
    #[arg(long, env = "LOKI_CLIENT_KEY_PATH", alias = "key", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,
    /// Do not check the server's TLS certificate
    #[arg(long, env = "LOKI_TLS_SKIP_VERIFY")]
    pub tls_skip_verify: bool,
}

/// Credentials sent with every request.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in a debug dump.
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(…)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, …)"),
        }
    }
}

/// The connection flags checked and resolved: a parsed base URL, secrets read from files.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Always ends with `/`, so API paths join under a prefix.
    pub base: Url,
    /// The address as the user would write it, for messages.
    pub display: String,
    pub org_id: Option<String>,
    pub auth: Auth,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_identity: Option<(PathBuf, PathBuf)>,
    pub tls_skip_verify: bool,
}

impl Connection {
    /// Resolves the flags and the environment into an [`Endpoint`].
    pub fn endpoint(&self) -> Result<Endpoint, ClientError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let addr = self
            .addr
            .clone()
            .or_else(|| env("KIROKU_ADDR"))
            .or_else(|| env("LOKI_ADDR"))
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        let (base, display) = parse_addr(&addr)?;
        let bearer = match (&self.bearer_token, &self.bearer_token_file) {
            (Some(_), Some(_)) => {
                return Err(ClientError::Usage(
                    "--bearer-token and --bearer-token-file both given: pass one".into(),
                ));
            }
            (Some(t), None) => Some(t.trim().to_string()),
            (None, Some(p)) => Some(read_secret("bearer token", p)?),
            (None, None) => None,
        };
        let basic = match (&self.username, &self.password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (Some(_), None) => {
                return Err(ClientError::Usage(
                    "--username needs --password (or LOKI_PASSWORD)".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ClientError::Usage(
                    "--password needs --username (or LOKI_USERNAME)".into(),
                ));
            }
            (None, None) => None,
        };
        let auth = match (bearer, basic) {
            (Some(_), Some(_)) => {
                return Err(ClientError::Usage(
                    "both a bearer token and a username/password given: pass one kind of credentials".into(),
                ));
            }
            (Some(t), None) => Auth::Bearer(t),
            (None, Some((username, password))) => Auth::Basic { username, password },
            (None, None) => Auth::None,
        };
        let tls_identity = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => {
                return Err(ClientError::Usage(
                    "--tls-cert-file and --tls-key-file go together: pass both".into(),
                ));
            }
        };
        Ok(Endpoint {
            base,
            display,
            org_id: self.org_id.clone().filter(|o| !o.is_empty()),
            auth,
            tls_ca_file: self.tls_ca_file.clone(),
            tls_identity,
            tls_skip_verify: self.tls_skip_verify,
        })
    }
}

/// Reads `localhost:3100`, `http://loki:3100`, `https://logs.example.com/loki/` into a base
/// URL ending in `/` and the form to show in messages (no trailing `/`).
pub fn parse_addr(addr: &str) -> Result<(Url, String), ClientError> {
    let err = |why: &str| ClientError::Address {
        addr: addr.to_string(),
        why: why.to_string(),
    };
    let trimmed = addr.trim();
    if trimmed.is_empty() {
        return Err(err("it is empty"));
    }
    let full = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&full).map_err(|e| err(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(err("only http:// and https:// addresses are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err("it has no host"));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    let display = url.as_str().trim_end_matches('/').to_string();
    Ok((url, display))
}

fn read_secret(what: &'static str, path: &Path) -> Result<String, ClientError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|error| ClientError::File {
            what,
            path: path.to_owned(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let (u, d) = parse_addr("localhost:3100").unwrap();
        assert_eq!(u.as_str(), "http://localhost:3100/");
        assert_eq!(d, "http://localhost:3100");
        let (u, d) = parse_addr("https://logs.example.com/loki").unwrap();
        assert_eq!(
            u.join("loki/api/v1/labels").unwrap().as_str(),
            "https://logs.example.com/loki/loki/api/v1/labels"
        );
        assert_eq!(d, "https://logs.example.com/loki");
        let (u, _) = parse_addr("http://127.0.0.1:3100/").unwrap();
        assert_eq!(
            u.join("loki/api/v1/query_range").unwrap().as_str(),
            "http://127.0.0.1:3100/loki/api/v1/query_range"
        );
        assert!(parse_addr("ftp://x").is_err());
        assert!(parse_addr("").is_err());
        assert!(parse_addr("http://").is_err());
    }

    #[test]
    fn credentials_are_one_kind_and_complete() {
        let c = Connection {
            addr: Some("x:1".into()),
            username: Some("u".into()),
            ..Default::default()
        };
        assert!(matches!(c.endpoint(), Err(ClientError::Usage(_))));
        let c = Connection {
            addr: Some("x:1".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            bearer_token: Some("t".into()),
            ..Default::default()
        };
        assert!(matches!(c.endpoint(), Err(ClientError::Usage(_))));
        let c = Connection {
            addr: Some("x:1".into()),
            bearer_token: Some("t\n".into()),
            org_id: Some("".into()),
            ..Default::default()
        };
        let e = c.endpoint().unwrap();
        assert_eq!(e.auth, Auth::Bearer("t".into()));
        assert_eq!(e.org_id, None);
        assert_eq!(format!("{:?}", e.auth), "Bearer(…)");
    }

    #[test]
    fn a_missing_token_file_is_named() {
        let c = Connection {
            addr: Some("x:1".into()),
            bearer_token_file: Some("/nonexistent/token".into()),
            ..Default::default()
        };
        let e = c.endpoint().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/token"), "{e}");
    }
}
