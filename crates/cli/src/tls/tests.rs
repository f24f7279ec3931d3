//! TLS end to end on real sockets: a server with a certificate from a test CA, reached
//! over HTTPS and over the tail's `wss://`, trusted through `--tls-ca-file`, refused
//! without it, accepted blindly under `--tls-skip-verify`.

use std::path::PathBuf;
use std::sync::Arc;

use futures::SinkExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::paging::Seen;
use crate::range::TimeRange;
use crate::tail::{TailRequest, follow};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/tls")
        .join(name)
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(testdata("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(testdata("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Answers every HTTPS request with one label, `tls-ok`, until the test ends.
async fn https_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = acceptor();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: not an error here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = br#"{"status":"success","data":["tls-ok"]}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn try_client(addr: String, ca: bool, skip: bool) -> Result<Client, ClientError> {
    Client::new(
        Connection {
            addr: Some(addr),
            tls_ca_file: ca.then(|| testdata("ca.pem")),
            tls_skip_verify: skip,
            ..Default::default()
        }
        .endpoint()?,
    )
}

fn client(addr: String, ca: bool, skip: bool) -> Client {
    try_client(addr, ca, skip).unwrap()
}

const RANGE: TimeRange = TimeRange { start: 0, end: 1 };

#[tokio::test]
async fn https_is_trusted_with_the_ca_file_and_refused_without() {
    let port = https_server().await;
    for host in ["localhost", "127.0.0.1"] {
        let addr = format!("https://{host}:{port}");
        let c = client(addr.clone(), true, false);
        assert_eq!(
            c.labels(None, RANGE, None).await.unwrap(),
            ["tls-ok"],
            "{host}"
        );
        // Refused when the request is made, or sooner on a machine without system roots.
        let e = match try_client(addr.clone(), false, false) {
            Ok(c) => c.labels(None, RANGE, None).await.unwrap_err(),
            Err(e) => e,
        };
        assert!(matches!(e, ClientError::Tls { .. }), "{host}: {e}");
        assert!(e.to_string().contains("--tls-ca-file"), "{e}");
        let c = client(addr, false, true);
        assert_eq!(
            c.labels(None, RANGE, None).await.unwrap(),
            ["tls-ok"],
            "{host}"
        );
    }
}

#[tokio::test]
async fn the_tail_uses_the_same_trust_over_wss() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = acceptor();
    let server = tokio::spawn(async move {
        // The first client has no CA and gives up during the handshake.
        let (tcp, _) = listener.accept().await.unwrap();
        assert!(acceptor.accept(tcp).await.is_err());
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tls).await.unwrap();
        ws.send(Message::text(
            r#"{"streams":[{"stream":{"app":"a"},"values":[["5","over tls"]]}]}"#,
        ))
        .await
        .unwrap();
        while let Some(Ok(_)) = futures::StreamExt::next(&mut ws).await {}
    });
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: 0,
        limit: 10,
        delay_for: 0,
    };
    let addr = format!("https://localhost:{port}");
    let r = match try_client(addr.clone(), false, false) {
        Ok(c) => follow(&c, req, Seen::new(0), |_| Ok(())).await,
        Err(e) => {
            // No system roots here: the client never connects, so let the server go on.
            drop(std::net::TcpStream::connect(("127.0.0.1", port)));
            Err(e)
        }
    };
    assert!(matches!(r, Err(ClientError::Tls { .. })), "{r:?}");
    let mut got = Vec::new();
    let r = follow(&client(addr, true, false), req, Seen::new(0), |lines| {
        got.extend(lines.iter().map(|l| l.line.clone()));
        Err(ClientError::NotFound("stop".into()))
    })
    .await;
    assert!(matches!(r, Err(ClientError::NotFound(_))), "{r:?}");
    assert_eq!(got, ["over tls"]);
    server.await.unwrap();
}

#[tokio::test]
async fn https_to_a_plain_http_server_says_to_use_http() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            // What a plain HTTP server answers to a TLS greeting.
            let _ = tcp
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    // Certificates unchecked: no certificate flag is the answer here.
    let c = client(format!("https://127.0.0.1:{port}"), false, true);
    let e = c.labels(None, RANGE, None).await.unwrap_err();
    assert!(matches!(e, ClientError::NotTls { .. }), "{e}");
    assert!(e.to_string().contains("use http://"), "{e}");
    let req = TailRequest {
        query: r#"{app="a"}"#,
        start: 0,
        limit: 10,
        delay_for: 0,
    };
    let r = follow(&c, req, Seen::new(0), |_| Ok(())).await;
    assert!(matches!(r, Err(ClientError::NotTls { .. })), "{r:?}");
}

#[test]
fn a_missing_ca_file_is_an_error_over_http_too() {
    let with_ca = |path: PathBuf| {
        Client::new(
            Connection {
                addr: Some("http://127.0.0.1:1".into()),
                tls_ca_file: Some(path),
                ..Default::default()
            }
            .endpoint()
            .unwrap(),
        )
    };
    let e = with_ca(testdata("no-such-ca.pem")).err().expect("an error");
    assert!(matches!(e, ClientError::File { .. }), "{e}");
    assert!(with_ca(testdata("ca.pem")).is_ok());
}
