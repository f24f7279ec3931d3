//! A Loki push endpoint on a real socket that records what it is sent, and can be told to
//! fail, for tests and the benchmark; over plain HTTP or HTTPS with a given certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use protocol::push::{PushRequestRef, decompress_snappy};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// One line as the receiver got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub labels: String,
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Default)]
struct State {
    lines: Mutex<Vec<Received>>,
    headers: Mutex<Option<HeaderMap>>,
    /// 0: accept; otherwise the status to answer with.
    fail_with: AtomicU16,
    /// Count only, do not keep lines (the benchmark).
    count_only: std::sync::atomic::AtomicBool,
    count: AtomicU64,
    requests: AtomicU64,
    /// TLS handshakes that failed (e.g. the client refused the certificate).
    handshake_failures: AtomicU64,
}

/// Runs on its own thread and runtime; stops when dropped.
pub struct PushReceiver {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PushReceiver {
    pub fn start() -> std::io::Result<PushReceiver> {
        Self::start_on("127.0.0.1:0")
    }

    /// Listens on a given address (to come back on the same port after [`Self::stop`]).
    pub fn start_on(addr: &str) -> std::io::Result<PushReceiver> {
        Self::serve(addr, None)
    }

    /// Serves HTTPS with this certificate chain (leaf first) and key; [`Self::url`] is
    /// then `https://localhost:<port>`, so the certificate must name `localhost`.
    pub fn start_tls(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> std::io::Result<PushReceiver> {
        Self::start_tls_with_client_ca(chain, key, None)
    }

    /// [`Self::start_tls`] that, given `client_ca`, completes only handshakes in which the
    /// client presents a certificate signed by that CA (mutual TLS).
    pub fn start_tls_with_client_ca(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: Option<CertificateDer<'static>>,
    ) -> std::io::Result<PushReceiver> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca).map_err(std::io::Error::other)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(std::io::Error::other)?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(std::io::Error::other)?;
        Self::serve(
            "127.0.0.1:0",
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn serve(addr: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> std::io::Result<PushReceiver> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new()
                    .route("/loki/api/v1/push", axum::routing::post(push))
                    .with_state(st.clone());
                let stop = async {
                    let _ = rx.await;
                };
                let _ = match tls {
                    None => {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stop)
                            .await
                    }
                    Some(acceptor) => {
                        let listener = TlsListener {
                            tcp: listener,
                            acceptor,
                            state: st,
                        };
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stop)
                            .await
                    }
                };
            });
        });
        Ok(PushReceiver {
            addr,
            scheme,
            state,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`, or `https://localhost:<port>` when serving TLS.
    pub fn url(&self) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}", self.addr.port()),
            _ => format!("http://{}", self.addr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answer every push with `status` (e.g. 503; a 429 says `Retry-After: 2`), or accept
    /// again with `None`.
    pub fn fail_with(&self, status: Option<u16>) {
        self.state
            .fail_with
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    /// Keep only a count of lines, not the lines (for the benchmark).
    pub fn count_only(&self) {
        self.state.count_only.store(true, Ordering::SeqCst);
    }

    pub fn lines(&self) -> Vec<Received> {
        self.state.lines.lock().clone()
    }

    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed, such as a client refusing the certificate.
    pub fn handshake_failures(&self) -> u64 {
        self.state.handshake_failures.load(Ordering::SeqCst)
    }

    /// Headers of the last push.
    pub fn last_headers(&self) -> Option<HeaderMap> {
        self.state.headers.lock().clone()
    }

    /// Stops listening (the port is closed: pushes fail with a connection error).
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for PushReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts TCP connections and completes the TLS handshake before handing them to axum;
/// a failed handshake is counted and the connection dropped.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            match tokio::time::timeout(std::time::Duration::from_secs(5), handshake).await {
                Ok(Ok(tls)) => return (tls, addr),
                _ => {
                    self.state.handshake_failures.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn push(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    st.requests.fetch_add(1, Ordering::SeqCst);
    *st.headers.lock() = Some(headers);
    let fail = st.fail_with.load(Ordering::SeqCst);
    if fail != 0 {
        let status = StatusCode::from_u16(fail).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let mut h = HeaderMap::new();
        if status == StatusCode::TOO_MANY_REQUESTS {
            h.insert("retry-after", axum::http::HeaderValue::from_static("2"));
        }
        return (status, h, "told to fail\n".into());
    }
    let raw = match decompress_snappy(&body, 64 << 20) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, HeaderMap::new(), format!("{e}\n")),
    };
    let req = match PushRequestRef::decode(&raw) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, HeaderMap::new(), format!("{e}\n")),
    };
    if st.count_only.load(Ordering::SeqCst) {
        st.count
            .fetch_add(req.entries.len() as u64, Ordering::SeqCst);
        return (StatusCode::NO_CONTENT, HeaderMap::new(), String::new());
    }
    let mut out = Vec::with_capacity(req.entries.len());
    for s in &req.streams {
        let labels = String::from_utf8_lossy(s.labels).into_owned();
        for e in &req.entries[s.entries.clone()] {
            out.push(Received {
                labels: labels.clone(),
                ts: e.ts,
                line: String::from_utf8_lossy(e.line).into_owned(),
                metadata: req.metadata[e.metadata.clone()]
                    .iter()
                    .map(|(n, v)| {
                        (
                            String::from_utf8_lossy(n).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    st.count.fetch_add(out.len() as u64, Ordering::SeqCst);
    st.lines.lock().extend(out);
    (StatusCode::NO_CONTENT, HeaderMap::new(), String::new())
}
