//! `--mode api`: container logs streamed through the Kubernetes API
//! (`/api/v1/namespaces/{ns}/pods/{pod}/log?follow=true&timestamps=true&sinceTime=…`), for
//! clusters that allow no hostPath. One task per container. After a disconnect a stream
//! resumes from the last line's timestamp (lines at or before it are skipped); when the
//! container restarted meanwhile, the end of the dead instance is read first with
//! `previous=true`.
//!
//! The API merges stdout and stderr, so these streams have no `stream` label.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, LogParams};
use tokio::sync::mpsc;

use crate::entry::{Entry, Mark, line_from_bytes};
use crate::metrics::{ErrorKind, Metrics};
use crate::pods::{ContainerRef, PodCache, container_stream};

#[derive(Clone)]
pub struct ApiLogs {
    pub client: kube::Client,
    pub cache: Arc<PodCache>,
    pub node: Option<String>,
    pub metrics: Arc<Metrics>,
    pub max_line: usize,
}

impl ApiLogs {
    /// Starts a follower for every container that has run, as pods appear.
    pub async fn run(self, resume: BTreeMap<String, i64>, tx: mpsc::Sender<Entry>) {
        let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            if tx.is_closed() {
                return;
            }
            tasks.retain(|_, t| !t.is_finished());
            for pod in self.cache.live_uids() {
                for c in pod.containers.iter().filter(|c| c.started) {
                    let key = format!("{}/{}", pod.uid, c.name);
                    if tasks.contains_key(&key) {
                        continue;
                    }
                    let cref = ContainerRef {
                        namespace: pod.namespace.clone(),
                        pod: pod.name.clone(),
                        uid: pod.uid.clone(),
                        container: c.name.clone(),
                    };
                    let this = self.clone();
                    let since = resume.get(&key).copied();
                    let tx = tx.clone();
                    tasks.insert(
                        key.clone(),
                        tokio::spawn(async move { this.follow(cref, key, since, tx).await }),
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow(
        self,
        c: ContainerRef,
        key: String,
        mut last_ts: Option<i64>,
        tx: mpsc::Sender<Entry>,
    ) {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &c.namespace);
        let info = |cache: &PodCache| {
            let pod = cache.get(&c.uid);
            let live = cache.is_live(&c.uid);
            let ci = pod.and_then(|p| p.containers.iter().find(|x| x.name == c.container).cloned());
            (live, ci)
        };
        // With a saved position and a container that has restarted, the end of an earlier
        // instance may be unread: `previous` covers it (older lines are skipped).
        let mut restarts = if last_ts.is_some() {
            -1
        } else {
            info(&self.cache).1.map(|i| i.restart_count).unwrap_or(0)
        };
        let mut backoff = Duration::from_millis(500);
        loop {
            let (live, ci) = info(&self.cache);
            let rc = ci.as_ref().map(|i| i.restart_count).unwrap_or(0);
            if rc > restarts && rc > 0 && last_ts.is_some() {
                // Until the dead instance's end is read, reading the new one would move
                // `last_ts` past it: retry from here instead.
                match self.read(&api, &c, &key, &mut last_ts, true, &tx).await {
                    Ok(()) | Err(Failure::NoInstance) => restarts = rc,
                    Err(Failure::Stopped) => return,
                    Err(Failure::Api(e)) => {
                        self.failed(&c, &e, true);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
            restarts = restarts.max(rc);
            match self.read(&api, &c, &key, &mut last_ts, false, &tx).await {
                Ok(()) | Err(Failure::NoInstance) => backoff = Duration::from_millis(500),
                Err(Failure::Stopped) => return,
                Err(Failure::Api(e)) => {
                    self.failed(&c, &e, false);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
            if !live {
                return; // the pod is gone and its log was read to the end
            }
            // Follow ended: the container stopped (or the connection closed). Wait for it
            // to run again, or for the pod to go.
            loop {
                let (live, ci) = info(&self.cache);
                let running = ci.as_ref().is_some_and(|i| i.running);
                let rc = ci.as_ref().map(|i| i.restart_count).unwrap_or(0);
                if !live || running || rc != restarts || tx.is_closed() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    fn failed(&self, c: &ContainerRef, e: &str, previous: bool) {
        self.metrics.error(ErrorKind::LogStream);
        tracing::warn!(namespace = %c.namespace, pod = %c.pod, container = %c.container, previous, error = %e,
            "pod log stream failed; reconnecting from the last line read");
    }

    /// Reads one log stream to its end, sending lines newer than `last_ts`.
    async fn read(
        &self,
        api: &Api<Pod>,
        c: &ContainerRef,
        key: &str,
        last_ts: &mut Option<i64>,
        previous: bool,
        tx: &mpsc::Sender<Entry>,
    ) -> Result<(), Failure> {
        let lp = LogParams {
            container: Some(c.container.clone()),
            follow: !previous,
            previous,
            timestamps: true,
            // The API takes whole seconds (and rounds): ask from a second earlier and skip
            // what was already sent.
            since_time: last_ts.and_then(|ts| {
                let secs = ts.div_euclid(1_000_000_000) - 1;
                Timestamp::from_second(secs).ok()
            }),
            ..LogParams::default()
        };
        tracing::debug!(pod = %c.pod, container = %c.container, previous, since = ?lp.since_time, "opening pod log stream");
        let reader = api.log_stream(&c.pod, &lp).await.map_err(|e| match &e {
            // The API has no such instance (any more): nothing to read.
            kube::Error::Api(s) if previous && matches!(s.code, 400 | 404) => Failure::NoInstance,
            _ => Failure::Api(e.to_string()),
        })?;
        let mut reader = std::pin::pin!(reader);
        let meta = self.cache.get(&c.uid);
        let stream = container_stream(c, None, self.node.as_deref(), meta.as_deref());
        let mut buf = Vec::with_capacity(1024);
        loop {
            buf.clear();
            let (got, truncated) = read_line_capped(&mut reader, &mut buf, self.max_line + 64)
                .await
                .map_err(|e| Failure::Api(e.to_string()))?;
            if !got {
                tracing::debug!(pod = %c.pod, container = %c.container, previous, "pod log stream ended");
                return Ok(());
            }
            let (ts, msg) = split_timestamp(&buf);
            let Some(ts) = ts else {
                self.metrics.error(ErrorKind::Parse);
                continue;
            };
            if last_ts.is_some_and(|l| ts <= l) {
                continue;
            }
            let msg = &msg[..msg.len().min(self.max_line)];
            if truncated || msg.len() == self.max_line {
                self.metrics.lines_truncated.inc();
            }
            self.metrics.lines_read.inc();
            self.metrics.bytes_read.add(msg.len() as u64);
            *last_ts = Some(ts);
            let e = Entry {
                stream: stream.clone(),
                ts,
                line: line_from_bytes(msg, &self.metrics),
                mark: Some(Mark::ApiLog {
                    container: key.to_string(),
                    ts,
                }),
            };
            if tx.send(e).await.is_err() {
                return Err(Failure::Stopped);
            }
        }
    }
}

enum Failure {
    Stopped,
    Api(String),
    /// `previous=true` found no terminated instance.
    NoInstance,
}

/// `2024-05-01T10:00:00.123456789Z message` → (timestamp, message).
fn split_timestamp(line: &[u8]) -> (Option<i64>, &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match memchr::memchr(b' ', line) {
        Some(i) => (crate::format::parse_time(&line[..i]), &line[i + 1..]),
        None => (crate::format::parse_time(line), &b""[..]),
    }
}

/// Reads up to a newline, keeping at most `max` bytes of the line (the rest is skipped,
/// never held). Returns whether a line was read, and whether it was cut.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(bool, bool)> {
    let mut any = false;
    let mut truncated = false;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok((any, truncated));
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i, Some(i + 1)),
            None => (avail.len(), None),
        };
        let room = max.saturating_sub(buf.len());
        if take > room {
            truncated = true;
        }
        buf.extend_from_slice(&avail[..take.min(room)]);
        let consumed = done.unwrap_or(take);
        r.consume_unpin(consumed);
        if done.is_some() {
            return Ok((true, truncated));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_timestamps() {
        let (ts, msg) = split_timestamp(b"2024-05-01T10:00:00.5Z hello there");
        assert_eq!(ts, Some(1_714_557_600_500_000_000));
        assert_eq!(msg, b"hello there");
        assert_eq!(split_timestamp(b"garbage").0, None);
    }

    #[test]
    fn caps_long_lines() {
        let data = [vec![b'a'; 100], b"\nshort\n".to_vec()].concat();
        let mut r = futures::io::Cursor::new(data);
        let mut buf = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            assert_eq!(
                read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
                (true, true)
            );
            assert_eq!(buf, vec![b'a'; 10]);
            buf.clear();
            assert_eq!(
                read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
                (true, false)
            );
            assert_eq!(buf, b"short");
            buf.clear();
            assert_eq!(
                read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
                (false, false)
            );
        });
    }
}
