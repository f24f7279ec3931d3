//! Loki's live tail over a real WebSocket: the history since `start` first, then entries
//! as they are pushed, filtered by the selector; bad queries refused before the upgrade.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Server, encode, now_ns};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// A WebSocket client just big enough for the test: handshake, then read text frames.
struct Ws {
    r: BufReader<TcpStream>,
}

impl Ws {
    /// Opens `path`; returns the HTTP status and, on 101, the socket.
    fn open(addr: &str, path: &str) -> (u16, Option<Ws>) {
        Ws::open_with(addr, path, "")
    }

    /// Like [`Ws::open`] with more header lines (each ending in `\r\n`).
    fn open_with(addr: &str, path: &str, headers: &str) -> (u16, Option<Ws>) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut status_line = String::new();
        r.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        (status, (status == 101).then_some(Ws { r }))
    }

    /// The next text frame as JSON (unmasked, unfragmented, as the server sends them).
    fn frame(&mut self) -> Value {
        loop {
            let mut h = [0u8; 2];
            self.r
                .read_exact(&mut h)
                .expect("a frame before the timeout");
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.r.read_exact(&mut b).unwrap();
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.r.read_exact(&mut b).unwrap();
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.r.read_exact(&mut payload).unwrap();
            match h[0] & 0x0f {
                1 => return serde_json::from_slice(&payload).expect("a JSON frame"),
                8 => panic!(
                    "server closed the tail: {}",
                    String::from_utf8_lossy(&payload)
                ),
                _ => continue, // ping, pong
            }
        }
    }
}

fn lines(frame: &Value) -> Vec<String> {
    let mut out: Vec<String> = frame["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter())
        .map(|v| v[1].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn push(srv: &Server, app: &str, ts: i64, line: &str) {
    let body = json!({"streams": [{"stream": {"app": app}, "values": [[ts.to_string(), line]]}]});
    assert_eq!(srv.push_json(&body.to_string()).status, 204);
}

#[test]
fn tail_sends_history_then_live_entries() {
    let srv = Server::start(&[]);
    let t = now_ns();
    push(&srv, "tail", t - 30 * S, "before the tail");
    push(&srv, "other", t - 30 * S, "another stream");
    let q = encode(&[
        ("query", r#"{app="tail"}"#),
        ("start", &(t - 60 * S).to_string()),
    ]);
    let (status, ws) = Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}"));
    assert_eq!(status, 101);
    let mut ws = ws.unwrap();
    let first = ws.frame();
    assert_eq!(lines(&first), ["before the tail"]);
    assert_eq!(first["streams"][0]["stream"]["service_name"], "tail");

    push(&srv, "other", now_ns(), "not for this tail");
    push(&srv, "tail", now_ns(), "live one");
    push(&srv, "tail", now_ns(), "live two");
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(lines(&ws.frame()));
    }
    got.sort();
    assert_eq!(got, ["live one", "live two"]);
}

#[test]
fn the_history_is_the_newest_entries_and_labels_can_be_categorized() {
    let srv = Server::start(&[]);
    let t = now_ns();
    let values: Vec<Value> = (0..10)
        .map(|i| json!([(t - (50 - i) * S).to_string(), format!("level=info n={i}"), {"pod_uid": "u1"}]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": "hist"}, "values": values}]});
    assert_eq!(srv.push_json(&body.to_string()).status, 204);
    let q = encode(&[
        ("query", r#"{app="hist"} | logfmt"#),
        ("start", &(t - 60 * S).to_string()),
        ("limit", "3"),
    ]);
    let (status, ws) = Ws::open_with(
        &srv.addr,
        &format!("/loki/api/v1/tail?{q}"),
        "X-Loki-Response-Encoding-Flags: categorize-labels\r\n",
    );
    assert_eq!(status, 101);
    let mut ws = ws.unwrap();
    // As Loki: the last `limit` entries of the window, oldest first.
    let first = ws.frame();
    let history: Vec<&str> = first["streams"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        ["level=info n=7", "level=info n=8", "level=info n=9"]
    );
    // Structured metadata and parsed labels apart from the stream's, as in query answers.
    assert_eq!(first["encodingFlags"], json!(["categorize-labels"]));
    assert_eq!(
        first["streams"][0]["stream"],
        json!({"app": "hist", "service_name": "hist"})
    );
    assert_eq!(
        first["streams"][0]["values"][0][2],
        json!({"structuredMetadata": {"detected_level": "info", "pod_uid": "u1"},
               "parsed": {"level": "info", "n": "7"}})
    );
    push(&srv, "hist", now_ns(), "k=v");
    let live = ws.frame();
    assert_eq!(live["encodingFlags"], json!(["categorize-labels"]));
    assert_eq!(
        live["streams"][0]["stream"],
        json!({"app": "hist", "service_name": "hist"})
    );
    assert_eq!(
        live["streams"][0]["values"][0][2],
        json!({"structuredMetadata": {"detected_level": "unknown"}, "parsed": {"k": "v"}})
    );
}

/// `/api/prom/tail`, Loki's first tail: the same entries in the old frame shape, and a
/// `regexp` line filter (which the current tail takes too).
#[test]
fn the_legacy_tail_sends_old_frames_filtered_by_regexp() {
    let srv = Server::start(&[]);
    let t = now_ns() / S * S;
    push(&srv, "old", t - 30 * S, "kept 1");
    push(&srv, "old", t - 20 * S, "dropped 2");
    let q = encode(&[
        ("query", r#"{app="old"}"#),
        ("regexp", "^kept"),
        ("start", &(t - 60 * S).to_string()),
    ]);
    let (status, ws) = Ws::open(&srv.addr, &format!("/api/prom/tail?{q}"));
    assert_eq!(status, 101);
    let mut ws = ws.unwrap();
    let first = ws.frame();
    let labels = r#"{app="old", detected_level="unknown", service_name="old"}"#;
    assert_eq!(
        first["streams"],
        json!([{"labels": labels, "entries": [{"ts": protocol::time::format_rfc3339_nano(t - 30 * S), "line": "kept 1"}]}]),
        "{first}"
    );
    assert!(
        first["streams"][0]["entries"][0]["ts"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(first["dropped_entries"], Value::Null);
    push(&srv, "old", now_ns(), "dropped 3");
    push(&srv, "old", now_ns(), "kept 4");
    let live = ws.frame();
    assert_eq!(live["streams"][0]["labels"], labels);
    assert_eq!(live["streams"][0]["entries"][0]["line"], "kept 4");
    assert_eq!(live["streams"][0]["entries"].as_array().unwrap().len(), 1);

    let q = encode(&[("query", r#"{app="old"}"#), ("regexp", "^dropped")]);
    let (status, ws) = Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}"));
    assert_eq!(status, 101);
    assert_eq!(lines(&ws.unwrap().frame()), ["dropped 2", "dropped 3"]);
    let q = encode(&[("query", r#"{app="old"}"#), ("regexp", "(")]);
    assert_eq!(Ws::open(&srv.addr, &format!("/api/prom/tail?{q}")).0, 400);
}

#[test]
fn bad_tails_are_refused_before_the_upgrade() {
    let srv = Server::start(&["--auth", "header"]);
    let q = encode(&[("query", r#"{app="x"}"#)]);
    let (status, _) = Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}"));
    assert_eq!(status, 401, "no tenant");
    // Browsers cannot send X-Scope-OrgID on a WebSocket: orgId names the tenant.
    let q = encode(&[("query", r#"{app="x"}"#), ("orgId", "team-a")]);
    assert_eq!(
        Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}")).0,
        101
    );
    let q = encode(&[("query", r#"rate({app="x"}[1m])"#), ("orgId", "team-a")]);
    assert_eq!(
        Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}")).0,
        400
    );
    let q = encode(&[
        ("query", r#"{app="x"}"#),
        ("orgId", "team-a"),
        ("delay_for", "6"),
    ]);
    assert_eq!(
        Ws::open(&srv.addr, &format!("/loki/api/v1/tail?{q}")).0,
        400
    );
}
