//! `GET /loki/api/v1/tail`: Loki's live tail over a WebSocket.
//!
//! The push path publishes every stored batch to a [`TailHub`] (a broadcast channel, only
//! copied into when someone is tailing). A tail first sends the newest `limit` entries
//! since `start` (through the query engine, oldest first, as Loki reads them backward and
//! reverses them), then every new entry whose stream matches the selector and passes the
//! pipeline, in frames of Loki's shape:
//! `{"streams":[{"stream":{...},"values":[["<ns>","<line>"]]}],"dropped_entries":null}`.
//! With `X-Loki-Response-Encoding-Flags: categorize-labels`, `stream` holds the stream's
//! own labels, each value a third element with its structured metadata and parsed labels,
//! and the frame `"encodingFlags":["categorize-labels"]`, as in query answers.
//! `/api/prom/tail` is the same tail in the legacy frames of [`crate::legacy`]; both take
//! Loki's `regexp` parameter.
//! A tail that cannot keep up loses batches rather than slowing pushes; the loss is logged.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use logql::Direction;
use logql::ast::{Expr, LogExpr};
use logql::engine::RangeQuery;
use logql::pipeline::Pipeline;
use protocol::Labels;
use protocol::response::{Entry, QueryResult, Stream};
use serde_json::json;
use tokio::sync::broadcast;

use crate::app::App;
use crate::error::ApiError;
use crate::legacy::{self, LegacyStreams};
use crate::params::Params;
use crate::query::now_nanos;
use crate::tenant;

/// Batches a slow tail may fall behind by before it loses some.
const HUB_CAPACITY: usize = 1024;
/// How often buffered live entries are sent.
const FRAME_INTERVAL: Duration = Duration::from_millis(250);
/// Loki's largest `delay_for`, in seconds.
const MAX_DELAY_FOR: u32 = 5;
/// The label that names each stream's tenant when a tail reads several.
const TENANT_LABEL: &str = "__tenant_id__";

/// Stored entries, as the push path hands them to tails.
pub struct TailBatch {
    pub tenant: String,
    pub streams: Vec<TailStream>,
}

pub struct TailStream {
    pub labels: Labels,
    pub entries: Vec<TailEntry>,
}

pub struct TailEntry {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// Where stored batches are announced.
pub struct TailHub {
    tx: broadcast::Sender<Arc<TailBatch>>,
}

impl Default for TailHub {
    fn default() -> Self {
        TailHub {
            tx: broadcast::channel(HUB_CAPACITY).0,
        }
    }
}

impl TailHub {
    /// Whether anyone is tailing: the push path builds a [`TailBatch`] only then.
    pub fn active(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, b: TailBatch) {
        let _ = self.tx.send(Arc::new(b));
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<TailBatch>> {
        self.tx.subscribe()
    }
}

/// A validated tail request.
struct Tail {
    query: String,
    log: LogExpr,
    tenants: Vec<String>,
    start: i64,
    limit: u32,
    categorize: bool,
    legacy: bool,
}

/// The WebSocket handler.
pub async fn handle(State(app): State<Arc<App>>, ws: WebSocketUpgrade, p: Params) -> Response {
    serve(app, ws, p, false)
}

/// Checks the parameters before the upgrade, so a bad query is an ordinary 400, then
/// tails; `legacy`: in the frames of `/api/prom/tail`.
pub fn serve(app: Arc<App>, ws: WebSocketUpgrade, p: Params, legacy: bool) -> Response {
    match request(&app, &p, legacy) {
        Ok(t) => ws.on_upgrade(move |socket| run(app, socket, t)),
        Err(e) => e.into_response(),
    }
}

fn request(app: &App, p: &Params, legacy: bool) -> Result<Tail, ApiError> {
    // Browsers cannot set headers on a WebSocket: the tenant may come as `orgId`.
    let mut headers = p.headers.clone();
    if let Some(org) = p.get("orgId")
        && !headers.contains_key("x-scope-orgid")
        && let Ok(v) = org.parse()
    {
        headers.insert("x-scope-orgid", v);
    }
    let tenants = tenant::read_tenants(app.config.auth, &headers)?;
    let query = legacy::query_with_regexp(p)?;
    let log = match logql::parse(&query) {
        Ok(Expr::Log(l)) => l,
        Ok(Expr::Sample(_)) => {
            return Err(ApiError::bad_request(
                "only log queries can be tailed: give a stream selector and a pipeline",
            ));
        }
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    };
    Pipeline::new(&log.pipeline, None).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (start, _) = p.bounds(now_nanos())?;
    let limit = p.limit()?;
    let delay = p
        .positive("delay_for", 0)
        .or_else(|_| match p.get("delay_for") {
            Some("0") => Ok(0),
            _ => Err(ApiError::bad_request(
                "delay_for must be a whole number of seconds",
            )),
        })?;
    if delay > MAX_DELAY_FOR {
        return Err(ApiError::bad_request(format!(
            "delay_for can't be greater than {MAX_DELAY_FOR}"
        )));
    }
    Ok(Tail {
        query,
        log,
        tenants,
        start,
        limit,
        categorize: !legacy && p.categorize_labels(),
        legacy,
    })
}

async fn run(app: Arc<App>, mut socket: WebSocket, t: Tail) {
    // Subscribe before reading the history, so nothing stored meanwhile is missed.
    let mut rx = app.tail.subscribe();
    let end = now_nanos();
    let history = {
        let (query, tenants, start, limit) = (t.query.clone(), t.tenants.clone(), t.start, t.limit);
        let categorize_labels = t.categorize;
        app.run_query(move |app| {
            let reader = app.store.reader(&tenants);
            app.engine.query_range(
                &reader,
                &RangeQuery {
                    query: &query,
                    start,
                    end,
                    step: None,
                    interval: None,
                    limit,
                    direction: Direction::Backward,
                    categorize_labels,
                },
            )
        })
        .await
    };
    match history {
        Ok(resp) => {
            if let QueryResult::Streams(mut streams) = resp.result
                && !streams.is_empty()
            {
                for s in &mut streams {
                    s.entries.reverse();
                }
                if send(&mut socket, &streams, &t).await.is_err() {
                    return;
                }
            }
        }
        Err(e) => {
            let _ = socket.send(Message::Text(e.message.into())).await;
            return;
        }
    }
    let Ok(pipeline) = Pipeline::new(&t.log.pipeline, None) else {
        return;
    };
    let mut pending: Vec<Stream> = Vec::new();
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    loop {
        tokio::select! {
            batch = rx.recv() => match batch {
                Ok(b) => collect(&t, &pipeline, &b, &mut pending),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(batches = n, query = %t.query, "a live tail fell behind and skipped batches");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                if !pending.is_empty() {
                    if send(&mut socket, &pending, &t).await.is_err() {
                        break;
                    }
                    pending.clear();
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Adds the entries of `b` that the tail wants to `out`, grouped by their labels after
/// the pipeline: stream labels, structured metadata and parsed labels merged, as Loki
/// shows them without `categorize-labels`; with it, by the stream's labels, each entry
/// carrying the other two kinds.
fn collect(t: &Tail, pipeline: &Pipeline, b: &TailBatch, out: &mut Vec<Stream>) {
    if !t.tenants.contains(&b.tenant) {
        return;
    }
    for s in &b.streams {
        let mut labels = s.labels.clone();
        if t.tenants.len() > 1 {
            labels.set(TENANT_LABEL, &b.tenant);
        }
        if !t
            .log
            .selector
            .iter()
            .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
        {
            continue;
        }
        let mut sp = pipeline.for_stream(&labels);
        for e in &s.entries {
            let md = e.metadata.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let Some(p) = sp.process(e.ts, e.line.as_bytes(), md) else {
                continue;
            };
            let (result_labels, categories) = p.labels.answer_labels(t.categorize);
            let entry = Entry {
                ts: e.ts,
                line: String::from_utf8_lossy(p.line).into_owned(),
                categories,
            };
            match out.iter_mut().find(|x| x.labels == result_labels) {
                Some(x) => x.entries.push(entry),
                None => out.push(Stream {
                    labels: result_labels,
                    entries: vec![entry],
                }),
            }
        }
    }
}

async fn send(socket: &mut WebSocket, streams: &[Stream], t: &Tail) -> Result<(), axum::Error> {
    let streams = if t.legacy {
        json!(LegacyStreams(streams))
    } else {
        json!(streams)
    };
    let mut frame = json!({
        "streams": streams,
        "dropped_entries": null,
    });
    if t.categorize {
        frame["encodingFlags"] = json!(["categorize-labels"]);
    }
    socket.send(Message::Text(frame.to_string().into())).await
}
