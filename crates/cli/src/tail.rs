//! `--follow`: Loki's tail WebSocket, `GET /loki/api/v1/tail?query=…&start=…` upgraded to a
//! WebSocket whose text frames are
//!
//! ```json
//! {"streams":[{"stream":{"app":"api"},"values":[["1714557600000000000","a line"]]}],
//!  "dropped_entries":[{"labels":{"app":"api"},"timestamp":"1714557600000000000"}]}
//! ```
//!
//! Connected with the same TLS settings and headers as every other request. Lines reach
//! the server late (an agent batches them), so the tail starts a few seconds before the
//! lines already printed end and drops what it already printed ([`Seen`]); a dropped
//! connection is opened again the same way. After several failures in a row the command
//! gives up with the last reason.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::StreamExt;
use protocol::Labels;
use protocol::response::{Entry, Stream};
use reqwest::Url;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::client::{Client, Direction, find_tls_error, tls_failure};
use crate::error::{BadQuery, ClientError};
use crate::paging::{LogLine, Seen, flatten};

const PATH: &str = "loki/api/v1/tail";
/// Consecutive failed connections before giving up.
const MAX_FAILURES: u32 = 5;
/// How far before the newest printed line a (re)connected tail starts: lines that arrive
/// this late are still shown, once.
pub const OVERLAP: i64 = 5_000_000_000;

/// What to follow.
#[derive(Debug, Clone, Copy)]
pub struct TailRequest<'a> {
    pub query: &'a str,
    /// Unix nanoseconds: lines from here on (Loki first sends those already stored, up to
    /// `limit`).
    pub start: i64,
    pub limit: usize,
    /// Loki's `delay_for`: seconds the server waits for late lines (0–5).
    pub delay_for: u64,
}

/// Follows until interrupted, handing each frame's new lines (oldest first) to `sink`.
/// `seen` holds the lines already printed from `req.start` on, which are not printed again.
pub async fn follow(
    client: &Client,
    req: TailRequest<'_>,
    mut seen: Seen,
    mut sink: impl FnMut(&[LogLine]) -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    let mut failures = 0u32;
    let mut connected_once = false;
    seen.advance(req.start);
    loop {
        let reason = match connect(client, req, seen.from()).await {
            Ok(ws) => {
                connected_once = true;
                let mut got_frames = false;
                let reason =
                    read_frames(client, req.query, ws, &mut seen, &mut sink, &mut got_frames)
                        .await?;
                if got_frames {
                    failures = 0;
                }
                reason
            }
            // The first connection's failure is about the address, credentials or query:
            // say so at once rather than retrying.
            Err(e) if !connected_once || is_fatal(&e) => return Err(e),
            Err(e) => e.to_string(),
        };
        failures += 1;
        if failures >= MAX_FAILURES {
            return Err(ClientError::Network {
                addr: client.endpoint().display.clone(),
                why: format!("the tail closed {failures} times in a row, last: {reason}"),
            });
        }
        eprintln!("kiroku: the tail closed ({reason}); reconnecting");
        tokio::time::sleep(backoff(failures)).await;
    }
}

fn is_fatal(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::BadQuery(_)
            | ClientError::Refused { .. }
            | ClientError::AuthRequired { .. }
            | ClientError::AuthRefused { .. }
            | ClientError::NoTenant { .. }
            | ClientError::NoEndpoint { .. }
            | ClientError::Tls { .. }
            | ClientError::NotTls { .. }
    )
}

fn backoff(failures: u32) -> Duration {
    Duration::from_millis(250u64.saturating_mul(1 << failures.min(5))).min(Duration::from_secs(5))
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Ws = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// The tail's `ws://` or `wss://` URL.
pub fn tail_url(client: &Client, req: TailRequest<'_>, start: i64) -> Result<Url, ClientError> {
    let mut url = client.url(
        PATH,
        &[
            ("query", req.query.to_string()),
            ("start", start.to_string()),
            ("limit", req.limit.to_string()),
            ("delay_for", req.delay_for.to_string()),
        ],
    )?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    // http→ws and https→wss are allowed scheme changes; the error arm cannot happen.
    url.set_scheme(scheme).map_err(|()| ClientError::Address {
        addr: client.endpoint().display.clone(),
        why: "cannot make a WebSocket address from it".into(),
    })?;
    Ok(url)
}

async fn connect(client: &Client, req: TailRequest<'_>, start: i64) -> Result<Ws, ClientError> {
    let url = tail_url(client, req, start)?;
    let addr = client.endpoint().display.clone();
    let port = url.port_or_known_default().unwrap_or(80);
    let io_err = |e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
            _ => e.to_string(),
        };
        ClientError::NoServer {
            addr: addr.clone(),
            why,
        }
    };
    let host = url.host_str().unwrap_or_default();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let (tcp, server_name) = match ip {
        Some(ip) => (
            tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await,
            rustls::pki_types::ServerName::IpAddress(ip.into()),
        ),
        None => {
            let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                ClientError::Address {
                    addr: addr.clone(),
                    why: e.to_string(),
                }
            })?;
            (tokio::net::TcpStream::connect((host, port)).await, name)
        }
    };
    let tcp = tcp.map_err(io_err)?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if url.scheme() == "wss" {
        let connector = tokio_rustls::TlsConnector::from(client.tls().clone());
        let tls =
            connector
                .connect(server_name, tcp)
                .await
                .map_err(|e| match find_tls_error(&e) {
                    Some(tls) => tls_failure(addr.clone(), tls),
                    None => ClientError::Tls {
                        addr: addr.clone(),
                        why: e.to_string(),
                    },
                })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ClientError::Address {
            addr: addr.clone(),
            why: e.to_string(),
        })?;
    for (name, value) in client.headers() {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().unwrap_or_default();
            Err(client.status_error(resp.status().as_u16(), body, PATH, Some(req.query)))
        }
        Err(e) => Err(ClientError::Network {
            addr,
            why: format!("the tail WebSocket could not be opened: {e}"),
        }),
    }
}

/// Reads frames until the connection ends; returns why it ended. Errors only for what a
/// reconnection cannot fix: an answer that is not Loki's, a query error, output failing.
async fn read_frames(
    client: &Client,
    query: &str,
    mut ws: Ws,
    seen: &mut Seen,
    sink: &mut impl FnMut(&[LogLine]) -> Result<(), ClientError>,
    got_frames: &mut bool,
) -> Result<String, ClientError> {
    while let Some(msg) = ws.next().await {
        let data = match msg {
            Ok(Message::Text(t)) => t.as_bytes().to_vec(),
            Ok(Message::Binary(b)) => b.to_vec(),
            Ok(Message::Close(Some(f))) => {
                let reason = f.reason.as_str().trim();
                if f.code != CloseCode::Normal
                    && f.code != CloseCode::Away
                    && let Some(b) = BadQuery::from_message(query, reason)
                {
                    return Err(ClientError::BadQuery(b));
                }
                return Ok(if reason.is_empty() {
                    format!("closed by the server, code {}", u16::from(f.code))
                } else {
                    format!("closed by the server: {reason}")
                });
            }
            Ok(Message::Close(None)) => return Ok("closed by the server".to_string()),
            Ok(_) => continue,
            Err(e) => return Ok(e.to_string()),
        };
        let frame = match parse_frame(&data) {
            Ok(f) => f,
            // Loki (and kiroku) report a failing tail as a plain text message.
            Err(why) => {
                let text = String::from_utf8_lossy(&data);
                let text = text.trim();
                if text.starts_with('{') || text.is_empty() {
                    return Err(ClientError::Decode {
                        addr: client.endpoint().display.clone(),
                        path: format!("/{PATH}"),
                        why,
                    });
                }
                if let Some(b) = BadQuery::from_message(query, text) {
                    return Err(ClientError::BadQuery(b));
                }
                return Ok(format!("the server said: {text}"));
            }
        };
        *got_frames = true;
        if frame.dropped > 0 {
            eprintln!(
                "kiroku: the server dropped {} lines: the tail fell behind; narrow the query to keep up",
                frame.dropped
            );
        }
        let mut lines = flatten(frame.streams, Direction::Forward);
        seen.drop_seen(&mut lines);
        let mut newest = seen.from();
        for l in &lines {
            seen.add(l);
            newest = newest.max(l.ts);
        }
        seen.advance(newest.saturating_sub(OVERLAP));
        if !lines.is_empty() {
            sink(&lines)?;
        }
    }
    Ok("the connection ended".to_string())
}

/// One tail frame: its streams, and how many entries the server could not send.
#[derive(Debug, Default, PartialEq)]
pub struct Frame {
    pub streams: Vec<Stream>,
    pub dropped: usize,
}

/// Reads a tail frame. Entries are `[ts, line]` or `[ts, line, {metadata}]`.
pub fn parse_frame(data: &[u8]) -> Result<Frame, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        streams: Option<Vec<RawStream>>,
        #[serde(default)]
        dropped_entries: Option<Vec<serde_json::Value>>,
    }
    #[derive(Deserialize)]
    struct RawStream {
        stream: Labels,
        #[serde(default)]
        values: Vec<Vec<serde_json::Value>>,
    }
    let raw: Raw = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let mut streams = Vec::new();
    for s in raw.streams.unwrap_or_default() {
        let mut entries = Vec::with_capacity(s.values.len());
        for v in s.values {
            let ts = v
                .first()
                .and_then(|t| t.as_str())
                .and_then(|t| t.parse::<i64>().ok())
                .ok_or("an entry's timestamp is not a string of nanoseconds")?;
            let line = v
                .get(1)
                .and_then(|l| l.as_str())
                .ok_or("an entry's line is not a string")?;
            entries.push(Entry {
                ts,
                line: line.to_string(),
                categories: None,
            });
        }
        streams.push(Stream {
            labels: s.stream,
            entries,
        });
    }
    Ok(Frame {
        streams,
        dropped: raw.dropped_entries.map_or(0, |d| d.len()),
    })
}

#[cfg(test)]
mod tests;
