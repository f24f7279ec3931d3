//! Every way a client command can fail, each with a message that says what happened and
//! what to do. The server's answers are classified here: no server, authentication, a bad
//! query (shown with a caret under the position the server reported), a refused request.

use std::fmt;
use std::path::PathBuf;

/// Why a client command failed. `kiroku` prints the message and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no Loki-compatible server at {addr} ({why}): start one with 'kiroku server' or pass --addr"
    )]
    NoServer { addr: String, why: String },
    #[error("lost the connection to {addr}: {why}")]
    Network { addr: String, why: String },
    #[error(
        "TLS with {addr} failed: {why}: pass --tls-ca-file with the CA that signed the server's certificate, or --tls-skip-verify to not check it"
    )]
    Tls { addr: String, why: String },
    #[error(
        "the server at {addr} answered in plain HTTP, not TLS: use http:// in --addr instead of https://"
    )]
    NotTls { addr: String },
    #[error(
        "the server at {addr} needs a tenant ({status}: {message}): pass --org-id or set LOKI_ORG_ID"
    )]
    NoTenant {
        addr: String,
        status: u16,
        message: String,
    },
    #[error(
        "the server at {addr} requires authentication ({status}: {message}): pass --bearer-token or --bearer-token-file, or --username and --password"
    )]
    AuthRequired {
        addr: String,
        status: u16,
        message: String,
    },
    #[error(
        "the server at {addr} refused the credentials given ({status}: {message}): check --bearer-token, --username/--password and --org-id"
    )]
    AuthRefused {
        addr: String,
        status: u16,
        message: String,
    },
    #[error("{0}")]
    BadQuery(BadQuery),
    #[error("the server refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    #[error(
        "the server at {addr} has no {path} ({status}): is it a Loki-compatible server, and does --addr include its path prefix?"
    )]
    NoEndpoint {
        addr: String,
        path: String,
        status: u16,
    },
    #[error("the server at {addr} failed ({status}): {message}")]
    Server {
        addr: String,
        status: u16,
        message: String,
    },
    #[error(
        "the server at {addr} answered {path} with something that is not Loki's JSON ({why}): is --addr a Loki-compatible server?"
    )]
    Decode {
        addr: String,
        path: String,
        why: String,
    },
    #[error("invalid address {addr:?}: {why}: pass --addr like http://127.0.0.1:3100")]
    Address { addr: String, why: String },
    #[error("cannot read the {what} file {path}: {error}")]
    File {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// Nothing matched, said in the domain's words (no such pod, no previous container).
    #[error("{0}")]
    NotFound(String),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

// Not `#[from]`: that would also make the error its own source, and `kiroku: {e:#}` would
// print the cause twice.
impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> ClientError {
        ClientError::Output(e)
    }
}

/// A query the server could not parse, with the position it reported (1-based line and
/// column, in characters), shown as the query line with a caret under the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery {
    pub query: String,
    /// The server's message without the `parse error at line L, col C:` prefix.
    pub message: String,
    pub position: Option<(usize, usize)>,
}

impl BadQuery {
    /// Reads Loki's `parse error at line 1, col 5: syntax error: …` or `parse error : …`.
    /// Returns `None` for messages that are not parse errors.
    pub fn from_message(query: &str, message: &str) -> Option<BadQuery> {
        let message = message.trim();
        let rest = message.strip_prefix("parse error")?;
        if let Some(rest) = rest.strip_prefix(" at line ") {
            let (line, rest) = rest.split_once(", col ")?;
            let (col, msg) = rest.split_once(':')?;
            let line: usize = line.trim().parse().ok()?;
            let col: usize = col.trim().parse().ok()?;
            return Some(BadQuery {
                query: query.to_string(),
                message: msg.trim().to_string(),
                position: Some((line, col)),
            });
        }
        let msg = rest.trim_start().strip_prefix(':').unwrap_or(rest).trim();
        Some(BadQuery {
            query: query.to_string(),
            message: msg.to_string(),
            position: None,
        })
    }
}

impl fmt::Display for BadQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad query: {}", self.message)?;
        let Some((line_no, col)) = self.position else {
            return write!(f, "\n  {}", self.query.replace('\n', "\n  "));
        };
        let lines: Vec<&str> = self.query.split('\n').collect();
        let Some(line) = line_no.checked_sub(1).and_then(|i| lines.get(i)) else {
            return write!(f, "\n  {}", self.query.replace('\n', "\n  "));
        };
        if lines.len() > 1 {
            write!(f, " (line {line_no})")?;
        }
        // Keep tabs in the padding so the caret lines up however the terminal draws them.
        let pad: String = line
            .chars()
            .take(col.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let short = col.saturating_sub(1).saturating_sub(line.chars().count());
        write!(f, "\n  {line}\n  {pad}{}^", " ".repeat(short))
    }
}

/// A hint for errors whose fix is a query change the server's message does not spell out.
pub(crate) fn refused_hint(message: &str) -> Option<&'static str> {
    if message.starts_with("pipeline error") && !message.contains("__error__") {
        Some(
            "drop the lines the parser cannot read with `| __error__=\"\"`, or look at them with `| __error__!=\"\"`",
        )
    } else if message.starts_with("max entries limit per query exceeded") {
        Some("lower --batch (the page size); --limit can stay as high as you like")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_reported_column() {
        let q = r#"{app="api"} |= foo"#;
        let b = BadQuery::from_message(
            q,
            "parse error at line 1, col 16: syntax error: unexpected IDENTIFIER\n",
        )
        .unwrap();
        assert_eq!(b.position, Some((1, 16)));
        assert_eq!(
            b.to_string(),
            "bad query: syntax error: unexpected IDENTIFIER\n  {app=\"api\"} |= foo\n                 ^"
        );
    }

    #[test]
    fn caret_after_the_end_for_unexpected_end() {
        // Loki's answer to `{app="api"` (recorded in the conformance cases).
        let b = BadQuery::from_message(
            r#"{app="api""#,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        )
        .unwrap();
        let s = b.to_string();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1], "  {app=\"api\"");
        assert_eq!(lines[2], format!("  {}^", " ".repeat(10)));
    }

    #[test]
    fn multi_line_queries_mark_the_right_line_and_keep_tabs() {
        let q = "sum(\n\tcount_over_time({app=\"api\"}))";
        let b = BadQuery::from_message(
            q,
            "parse error at line 2, col 30: syntax error: unexpected )",
        )
        .unwrap();
        let s = b.to_string();
        assert!(
            s.starts_with("bad query: syntax error: unexpected ) (line 2)\n"),
            "{s}"
        );
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[1], "  \tcount_over_time({app=\"api\"}))");
        assert_eq!(lines[2], format!("  \t{}^", " ".repeat(28)));
        // The caret sits under the 30th character of the line.
        assert_eq!(lines[2].chars().count(), lines[1].chars().count());
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let b = BadQuery::from_message(
            "{app=\"日本\"} |= x",
            "parse error at line 1, col 16: syntax error: unexpected IDENTIFIER",
        )
        .unwrap();
        let s = b.to_string();
        let caret = s.lines().nth(2).unwrap();
        assert_eq!(caret.chars().count(), 2 + 16);
    }

    #[test]
    fn errors_without_a_position_show_the_query() {
        let b = BadQuery::from_message(
            r#"{app=~"("}"#,
            "parse error : error parsing regexp: missing closing ): `(`",
        )
        .unwrap();
        assert_eq!(b.position, None);
        assert_eq!(
            b.to_string(),
            "bad query: error parsing regexp: missing closing ): `(`\n  {app=~\"(\"}"
        );
        assert!(BadQuery::from_message("x", "max entries limit per query exceeded").is_none());
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = ClientError::NoServer {
            addr: "http://127.0.0.1:3100".into(),
            why: "connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "no Loki-compatible server at http://127.0.0.1:3100 (connection refused): start one with 'kiroku server' or pass --addr"
        );
        let e = ClientError::NoTenant {
            addr: "http://x".into(),
            status: 401,
            message: "no org id".into(),
        };
        assert!(e.to_string().contains("pass --org-id"), "{e}");
    }
}
