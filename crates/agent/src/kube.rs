//! The Kubernetes API side: connecting (explicit kubeconfig, in-cluster, `~/.kube/config`,
//! or none), and a list-then-watch loop that survives errors, closed connections and
//! `410 Gone` (resource version too old: list again).
//!
//! On top of it: [`pods`] (metadata and termination reports), [`events`] (core/v1 Events
//! as a log stream), [`lease`] (which agent of a DaemonSet collects the events no node
//! reports) and [`logs`] (`--mode api`: container logs streamed by the API).

pub mod events;
pub mod lease;
pub mod logs;
pub mod pods;

use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::de::DeserializeOwned;

use crate::entry::Entry;
use crate::metrics::{ErrorKind, Metrics};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("cannot read kubeconfig {}: {why}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("cannot build a Kubernetes client: {0}")]
    Client(kube::Error),
}

/// A kubeconfig that cannot be used, said once: kube's errors repeat their cause in their
/// own text, so only the innermost one is kept.
fn kubeconfig_error(path: &Path, e: &(dyn std::error::Error + 'static)) -> KubeError {
    let mut inner = e;
    while let Some(s) = inner.source() {
        inner = s;
    }
    KubeError::Kubeconfig {
        path: path.to_owned(),
        why: inner.to_string(),
    }
}

/// The API client: from `--kubeconfig`, else in-cluster, else `$KUBECONFIG` or
/// `~/.kube/config`; `None` when there is no way to reach a cluster.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Option<kube::Client>, KubeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = if let Some(path) = kubeconfig {
        let kc = Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(path, &e))?;
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| kubeconfig_error(path, &e))?
    } else if let Ok(c) = kube::Config::incluster() {
        c
    } else if let Ok(c) = kube::Config::from_kubeconfig(&KubeConfigOptions::default()).await {
        c
    } else {
        return Ok(None);
    };
    kube::Client::try_from(config)
        .map(Some)
        .map_err(KubeError::Client)
}

/// What a list/watch loop reports.
pub enum Change<K> {
    /// A full list (at start, and after the watch fell too far behind).
    Listed(Vec<K>),
    /// Added or modified.
    Applied(K),
    Deleted(K),
    /// The resource version the loop has reached (after a list or a watch event).
    Reached(String),
}

/// Lists and watches `api` for ever, calling `on` for each change. With `start_rv` the
/// first list is skipped and the watch resumes from that version (falling back to a list
/// when the API no longer has it). Errors are logged, counted and retried with backoff.
pub async fn list_watch<K, F>(
    api: Api<K>,
    what: &'static str,
    fields: Option<String>,
    start_rv: Option<String>,
    metrics: &Metrics,
    tx: &mpsc::Sender<Entry>,
    mut on: F,
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: FnMut(Change<K>) -> Vec<Entry> + Send,
{
    // Entries go out in order; a closed channel means the agent is stopping.
    macro_rules! emit {
        ($change:expr) => {
            for e in on($change) {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
        };
    }
    let mut rv = start_rv;
    let mut backoff = Duration::from_millis(500);
    loop {
        let version = match rv.clone() {
            Some(v) => v,
            None => {
                let mut lp = ListParams::default();
                if let Some(f) = &fields {
                    lp = lp.fields(f);
                }
                match api.list(&lp).await {
                    Ok(list) => {
                        let v = list.metadata.resource_version.clone().unwrap_or_default();
                        emit!(Change::Listed(list.items));
                        emit!(Change::Reached(v.clone()));
                        backoff = Duration::from_millis(500);
                        v
                    }
                    Err(e) => {
                        metrics.error(ErrorKind::KubeApi);
                        tracing::warn!(resource = what, error = %e, retry_in_ms = backoff.as_millis() as u64,
                            "cannot list from the Kubernetes API; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                }
            }
        };
        rv = Some(version.clone());
        let mut wp = WatchParams::default().timeout(290);
        if let Some(f) = &fields {
            wp = wp.fields(f);
        }
        let stream = match api.watch(&wp, &version).await {
            Ok(s) => s,
            Err(e) => {
                if is_gone(&e) {
                    tracing::info!(resource = what, "resource version too old; listing again");
                    rv = None;
                } else {
                    metrics.error(ErrorKind::KubeApi);
                    tracing::warn!(resource = what, error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "cannot watch the Kubernetes API; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(WatchEvent::Added(o)) | Ok(WatchEvent::Modified(o)) => {
                    let v = o.meta().resource_version.clone();
                    emit!(Change::Applied(o));
                    if let Some(v) = v {
                        emit!(Change::Reached(v.clone()));
                        rv = Some(v);
                    }
                    backoff = Duration::from_millis(500);
                }
                Ok(WatchEvent::Deleted(o)) => {
                    let v = o.meta().resource_version.clone();
                    emit!(Change::Deleted(o));
                    if let Some(v) = v {
                        rv = Some(v);
                    }
                }
                Ok(WatchEvent::Bookmark(b)) => {
                    rv = Some(b.metadata.resource_version);
                }
                Ok(WatchEvent::Error(s)) => {
                    if s.code == 410 {
                        tracing::info!(resource = what, "watch expired (410 Gone); listing again");
                        rv = None;
                    } else {
                        metrics.error(ErrorKind::KubeApi);
                        tracing::warn!(resource = what, code = s.code, message = %s.message,
                            "the Kubernetes API reported a watch error; watching again");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                    break;
                }
                Err(e) => {
                    metrics.error(ErrorKind::KubeApi);
                    tracing::warn!(resource = what, error = %e, "watch stream broke; watching again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    break;
                }
            }
        }
    }
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 410)
}

/// `Time` of k8s-openapi as Unix nanoseconds.
pub fn nanos(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> i64 {
    t.0.as_nanosecond() as i64
}

/// Quotes a logfmt value when it needs it.
pub fn logfmt_value(out: &mut String, v: &str) {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && c != '\u{7f}');
    if plain {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends ` key=value` (no leading space for the first pair).
pub fn logfmt_pair(out: &mut String, k: &str, v: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(k);
    out.push('=');
    logfmt_value(out, v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_what_needs_it() {
        let mut s = String::new();
        logfmt_pair(&mut s, "reason", "OOMKilled");
        logfmt_pair(&mut s, "msg", "Back-off \"x\"\nnext");
        logfmt_pair(&mut s, "empty", "");
        assert_eq!(s, r#"reason=OOMKilled msg="Back-off \"x\"\nnext" empty="""#);
    }
}
