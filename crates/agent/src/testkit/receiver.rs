//! A Loki push endpoint on a real socket that records what it is sent, and can be told to
//! fail, for tests and the benchmark.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use protocol::push::{PushRequestRef, decompress_snappy};

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
}

/// Runs on its own thread and runtime; stops when dropped.
pub struct PushReceiver {
    addr: SocketAddr,
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
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
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
                    .with_state(st);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        });
        Ok(PushReceiver {
            addr,
            state,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
