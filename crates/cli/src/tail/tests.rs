//! The tail client against a WebSocket server on a real socket that speaks Loki's frames:
//! headers and parameters, reconnection from the newest line with repeats dropped, and
//! refusals reported at once.

use std::sync::{Arc, Mutex};

use futures::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::*;
use crate::connection::Connection;

const S0: i64 = 1_714_557_600_000_000_000;
const SEC: i64 = 1_000_000_000;

fn client(port: u16) -> Client {
    Client::new(
        Connection {
            addr: Some(format!("http://127.0.0.1:{port}")),
            org_id: Some("team-a".into()),
            ..Default::default()
        }
        .endpoint()
        .unwrap(),
    )
    .unwrap()
}

fn frame(entries: &[(i64, &str)]) -> Message {
    let values: Vec<_> = entries
        .iter()
        .map(|(ts, l)| serde_json::json!([ts.to_string(), l]))
        .collect();
    Message::text(
        serde_json::json!({"streams":[{"stream":{"app":"a"},"values":values}]}).to_string(),
    )
}

/// Accepts one WebSocket connection and returns it with its request's URI and tenant.
#[allow(clippy::result_large_err)] // tungstenite's callback signature, not ours
async fn accept(
    l: &TcpListener,
) -> (
    tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    String,
    String,
) {
    let (tcp, _) = l.accept().await.unwrap();
    let seen = Arc::new(Mutex::new((String::new(), String::new())));
    let s = Arc::clone(&seen);
    let ws = tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, resp: Response| {
        let org = req
            .headers()
            .get("X-Scope-OrgID")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        *s.lock().unwrap() = (req.uri().to_string(), org);
        Ok(resp)
    })
    .await
    .unwrap();
    let (uri, org) = seen.lock().unwrap().clone();
    (ws, uri, org)
}

fn param(uri: &str, name: &str) -> Option<String> {
    let q = uri.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| {
            v.replace("%7B", "{")
                .replace("%7D", "}")
                .replace("%3D", "=")
                .replace("%22", "\"")
        })
    })
}

#[tokio::test]
async fn follows_reconnects_from_the_newest_line_and_prints_each_line_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut ws, uri, org) = accept(&listener).await;
        assert!(uri.starts_with("/loki/api/v1/tail?"), "{uri}");
        assert_eq!(param(&uri, "query").as_deref(), Some("{app=\"a\"}"));
        assert_eq!(param(&uri, "start"), Some(S0.to_string()));
        assert_eq!(org, "team-a");
        ws.send(frame(&[(S0 + SEC, "one"), (S0 + 10 * SEC, "two")]))
            .await
            .unwrap();
        ws.send(Message::text(
            r#"{"streams":[],"dropped_entries":[{"labels":{"app":"a"},"timestamp":"1"}]}"#,
        ))
        .await
        .unwrap();
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "restarting".into(),
        })))
        .await
        .unwrap();
        drop(ws);
        // The client comes back from five seconds before its newest line.
        let (mut ws, uri, _) = accept(&listener).await;
        assert_eq!(param(&uri, "start"), Some((S0 + 5 * SEC).to_string()));
        ws.send(frame(&[(S0 + 10 * SEC, "two"), (S0 + 11 * SEC, "three")]))
            .await
            .unwrap();
        // Keep the connection open until the client hangs up.
        while let Some(Ok(_)) = ws.next().await {}
    });
    let c = client(port);
    let mut printed = Vec::new();
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: S0,
        limit: 100,
        delay_for: 0,
    };
    let r = follow(&c, req, Seen::new(S0), |lines| {
        printed.extend(lines.iter().map(|l| l.line.clone()));
        if printed.len() >= 3 {
            return Err(ClientError::NotFound("enough".into()));
        }
        Ok(())
    })
    .await;
    assert!(
        matches!(r, Err(ClientError::NotFound(ref m)) if m == "enough"),
        "{r:?}"
    );
    assert_eq!(printed, ["one", "two", "three"]);
    server.await.unwrap();
}

#[tokio::test]
async fn lines_already_printed_before_the_tail_are_not_repeated() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut ws, _, _) = accept(&listener).await;
        ws.send(frame(&[(S0 + SEC, "history"), (S0 + 2 * SEC, "new")]))
            .await
            .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let c = client(port);
    let mut seen = Seen::new(S0);
    seen.add(&LogLine {
        ts: S0 + SEC,
        labels: Arc::new(Labels::from_pairs([("app", "a")])),
        line: "history".into(),
    });
    let mut printed = Vec::new();
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: S0,
        limit: 100,
        delay_for: 0,
    };
    let r = follow(&c, req, seen, |lines| {
        printed.extend(lines.iter().map(|l| l.line.clone()));
        Err(ClientError::NotFound("stop".into()))
    })
    .await;
    assert!(r.is_err());
    assert_eq!(printed, ["new"]);
    server.await.unwrap();
}

#[tokio::test]
async fn a_refused_handshake_is_reported_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = tcp.read(&mut buf).await.unwrap();
        tcp.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno org id\n")
            .await
            .unwrap();
    });
    let c = client(port);
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: S0,
        limit: 100,
        delay_for: 0,
    };
    let r = follow(&c, req, Seen::new(S0), |_| Ok(())).await;
    assert!(matches!(r, Err(ClientError::NoTenant { .. })), "{r:?}");
    server.await.unwrap();
}

#[tokio::test]
async fn an_error_message_instead_of_frames_is_reported_with_the_query() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut ws, _, _) = accept(&listener).await;
        ws.send(Message::text(
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        ))
        .await
        .unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });
    let c = client(port);
    let req = TailRequest {
        query: r#"{app="a""#,
        start: S0,
        limit: 100,
        delay_for: 0,
    };
    let r = follow(&c, req, Seen::new(S0), |_| Ok(())).await;
    let Err(ClientError::BadQuery(b)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(b.query, r#"{app="a""#);
    assert_eq!(b.position, Some((1, 11)));
    server.await.unwrap();
}

#[tokio::test]
async fn nothing_listening_is_no_server() {
    let port = crate::testkit::free_port().unwrap();
    let c = client(port);
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: S0,
        limit: 100,
        delay_for: 0,
    };
    let r = follow(&c, req, Seen::new(S0), |_| Ok(())).await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("connection refused"), "{e}");
}

#[test]
fn frames_with_metadata_and_without_streams() {
    let f = parse_frame(
        br#"{"streams":[{"stream":{"app":"a"},"values":[["5","x",{"structuredMetadata":{"t":"1"}}]]}]}"#,
    )
    .unwrap();
    assert_eq!(f.streams[0].entries[0].line, "x");
    assert_eq!(f.streams[0].entries[0].ts, 5);
    assert_eq!(
        parse_frame(br#"{"streams":null}"#).unwrap(),
        Frame::default()
    );
    assert!(parse_frame(br#"{"streams":[{"stream":{},"values":[[5,"x"]]}]}"#).is_err());
}
