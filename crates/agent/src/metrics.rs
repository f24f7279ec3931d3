//! The agent's own counters, served as Prometheus text on `/metrics`, with `/ready`.
//! Every counted event is also logged where it happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::StatusCode;
use axum::response::IntoResponse;

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Kinds of errors the agent survives and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file could not be opened or read.
    FileRead,
    /// A path where a log file was expected is not a regular file.
    NotAFile,
    /// A line was not in its file's format (it is sent as is).
    Parse,
    /// The Kubernetes API answered with an error or closed a connection.
    KubeApi,
    /// A pod log stream (API mode) failed.
    LogStream,
    /// The positions file could not be read or written.
    Positions,
    /// The disk buffer could not be read or written.
    Buffer,
    /// A push failed for a reason that will be retried (network, 429, 5xx).
    Push,
    /// The cluster events Lease could not be read or written (other than losing a race).
    Lease,
}

const ERROR_KINDS: [(ErrorKind, &str); 9] = [
    (ErrorKind::FileRead, "file_read"),
    (ErrorKind::NotAFile, "not_a_file"),
    (ErrorKind::Parse, "parse"),
    (ErrorKind::KubeApi, "kube_api"),
    (ErrorKind::LogStream, "log_stream"),
    (ErrorKind::Positions, "positions"),
    (ErrorKind::Buffer, "buffer"),
    (ErrorKind::Push, "push"),
    (ErrorKind::Lease, "lease"),
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub lines_sent: Counter,
    pub bytes_sent: Counter,
    pub batches_sent: Counter,
    /// Lines the server refused with a 4xx other than 429: not retried.
    pub lines_dropped: Counter,
    pub push_retries: Counter,
    pub buffer_bytes: Counter,
    pub lines_truncated: Counter,
    pub invalid_utf8: Counter,
    pub files_open: Counter,
    pub terminations: Counter,
    pub events: Counter,
    /// 1 while this agent holds the Lease and collects the cluster's events.
    pub events_leader: Counter,
    /// Times this agent became the leader.
    pub events_leader_terms: Counter,
    errors: [Counter; 9],
    ready: AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind as usize].inc();
    }

    pub fn errors(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize].get()
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, &Counter); 14] = [
            (
                "kiroku_agent_lines_read_total",
                "Log lines read from all sources.",
                &self.lines_read,
            ),
            (
                "kiroku_agent_bytes_read_total",
                "Bytes of log lines read.",
                &self.bytes_read,
            ),
            (
                "kiroku_agent_lines_sent_total",
                "Log lines the server acknowledged.",
                &self.lines_sent,
            ),
            (
                "kiroku_agent_bytes_sent_total",
                "Compressed push bytes the server acknowledged.",
                &self.bytes_sent,
            ),
            (
                "kiroku_agent_batches_sent_total",
                "Push requests the server acknowledged.",
                &self.batches_sent,
            ),
            (
                "kiroku_agent_lines_dropped_total",
                "Log lines the server refused with a 4xx other than 429.",
                &self.lines_dropped,
            ),
            (
                "kiroku_agent_push_retries_total",
                "Push attempts retried after a network error, 429 or 5xx.",
                &self.push_retries,
            ),
            (
                "kiroku_agent_lines_truncated_total",
                "Log lines cut to --max-line-bytes.",
                &self.lines_truncated,
            ),
            (
                "kiroku_agent_invalid_utf8_lines_total",
                "Log lines whose invalid UTF-8 was replaced with U+FFFD.",
                &self.invalid_utf8,
            ),
            (
                "kiroku_agent_terminations_total",
                "Container terminations reported.",
                &self.terminations,
            ),
            (
                "kiroku_agent_events_total",
                "Kubernetes events collected.",
                &self.events,
            ),
            (
                "kiroku_agent_events_leader",
                "1 while this agent holds the Lease and collects the events no node reports.",
                &self.events_leader,
            ),
            (
                "kiroku_agent_events_leader_terms_total",
                "Times this agent became the leader for the cluster's events.",
                &self.events_leader_terms,
            ),
            (
                "kiroku_agent_files_open",
                "Log files being tailed.",
                &self.files_open,
            ),
        ];
        for (name, help, c) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                c.get()
            );
        }
        let _ = writeln!(
            out,
            "# HELP kiroku_agent_buffer_bytes Bytes in the disk buffer not yet acknowledged.\n# TYPE kiroku_agent_buffer_bytes gauge\nkiroku_agent_buffer_bytes {}",
            self.buffer_bytes.get()
        );
        let _ = writeln!(
            out,
            "# HELP kiroku_agent_errors_total Errors the agent survived, by kind.\n# TYPE kiroku_agent_errors_total counter"
        );
        for (kind, name) in ERROR_KINDS {
            let _ = writeln!(
                out,
                "kiroku_agent_errors_total{{kind=\"{name}\"}} {}",
                self.errors(kind)
            );
        }
        out
    }
}

/// Serves `/metrics` and `/ready` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let m1 = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = m1.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        )
        .route(
            "/ready",
            axum::routing::get(move || {
                let m = metrics.clone();
                async move {
                    if m.is_ready() {
                        (StatusCode::OK, "ready\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
                    }
                }
            }),
        );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "metrics endpoint stopped");
    }
}
