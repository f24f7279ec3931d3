//! Wiring: loads positions and the disk buffer, connects to the Kubernetes API when it
//! can, starts the sources, the batcher and the sender, serves `/metrics` and `/ready`,
//! and on SIGINT/SIGTERM stops reading, stores what was read and saves positions.

use std::fs::{File, TryLockError};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{mpsc, watch};

use crate::args::{Args, EventsScope, Mode};
use crate::buffer::Buffer;
use crate::deliver::{self, Shared};
use crate::files::{FileSource, FilesConfig};
use crate::kube::events::{EventWatch, Scope};
use crate::kube::lease::{Elector, LeaseConfig};
use crate::kube::logs::ApiLogs;
use crate::kube::pods::PodWatch;
use crate::metrics::{self, Metrics};
use crate::pods::PodCache;
use crate::positions::Positions;
use crate::push::{PushConfig, Pusher};

/// How long a stopping agent keeps pushing what is buffered before it leaves the rest for
/// the next start.
const DRAIN_ON_STOP: Duration = Duration::from_secs(3);
/// How long a stopping agent waits to store what it read before leaving it to be read again.
const STORE_ON_STOP: Duration = Duration::from_secs(5);

/// How long a stopping leader tries to hand the events Lease over.
const RELEASE_ON_STOP: Duration = Duration::from_secs(3);

pub struct Agent;

/// Locks the file `lock` (created, with its directory, when missing) for this process,
/// or fails naming `flag` and its value `state` when another agent holds it. The
/// operating system drops the lock when the process ends, however it ends.
fn hold_lock(lock: &Path, flag: &str, state: &Path) -> anyhow::Result<File> {
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("cannot create the directory of {flag} {}", state.display())
        })?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .with_context(|| format!("cannot open {}, the lock of {flag}", lock.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(TryLockError::WouldBlock) => anyhow::bail!(
            "{flag} {} is in use by another kiroku agent (it holds {}): give each agent its own --buffer-dir and --positions",
            state.display(),
            lock.display()
        ),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}, the lock of {flag}", lock.display()))
        }
    }
}

impl Agent {
    pub async fn run(mut args: Args) -> anyhow::Result<()> {
        if args.node_name.is_none() {
            args.node_name = std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty());
        }
        let metrics = Metrics::new();
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| {
                format!(
                    "cannot listen on --listen {} for /metrics and /ready",
                    args.listen
                )
            })?;
        tokio::spawn(metrics::serve(listener, metrics.clone()));

        let pusher = Pusher::new(
            PushConfig {
                url: args.url.clone(),
                org_id: args.org_id.clone(),
                bearer_token_file: args.bearer_token_file.clone(),
                basic_auth: args.username.clone().zip(args.password_file.clone()),
                tls_ca_file: args.tls_ca_file.clone(),
                tls_insecure_skip_verify: args.tls_insecure_skip_verify,
                tls_client: args.tls_cert_file.clone().zip(args.tls_key_file.clone()),
            },
            metrics.clone(),
        )?;
        // Held until the agent exits: a second agent given the same state fails here instead
        // of interleaving its batches and positions with this one's.
        let mut positions_lock = args.positions.clone().into_os_string();
        positions_lock.push(".lock");
        let _locks = (
            hold_lock(
                &args.buffer_dir.join("lock"),
                "--buffer-dir",
                &args.buffer_dir,
            )?,
            hold_lock(Path::new(&positions_lock), "--positions", &args.positions)?,
        );
        let mut acked = Positions::load(&args.positions)?;
        // The Lease, not this file, says where the cluster's events resume: a position of
        // an earlier run's term must never be written back into it.
        acked.cluster_events = None;
        // Fail now, not at the first save, if the positions file cannot be written.
        acked.save(&args.positions)?;
        let (buffer, buffered) = Buffer::open(&args.buffer_dir, args.buffer_max_bytes)?;
        let mut read = acked.clone();
        for b in &buffered {
            for m in &b.marks {
                read.apply(m);
            }
        }
        if !buffered.is_empty() {
            tracing::info!(
                batches = buffered.len(),
                bytes = buffer.pending_bytes(),
                "sending batches left in the disk buffer by the last run"
            );
        }
        drop(buffered);

        let cache = PodCache::new();
        let client = crate::kube::connect(args.kubeconfig.as_deref()).await?;
        match &client {
            Some(_) => cache.enable(),
            None if args.mode == Mode::Api => anyhow::bail!(
                "--mode api needs the Kubernetes API: run in a pod with a service account, or pass --kubeconfig"
            ),
            None => tracing::warn!(
                "no Kubernetes API access (no in-cluster config, no kubeconfig): metadata enrichment is off; \
                 namespace, pod, uid and container come from the log file paths, and no events or termination reasons are collected"
            ),
        }

        let (tx, rx) = mpsc::channel(2048);
        let shared = Shared::new(buffer, metrics.clone());
        let (stop_tx, stop_rx) = watch::channel(false);
        let (cluster_acked_tx, cluster_acked) = watch::channel(None);
        let batcher = tokio::spawn(deliver::batcher(
            rx,
            shared.clone(),
            args.batch_size,
            args.batch_wait,
        ));
        let sender = tokio::spawn(deliver::sender(
            shared.clone(),
            pusher,
            acked,
            args.positions.clone(),
            stop_rx,
            cluster_acked_tx,
        ));

        let mut kube_tasks = Vec::new();
        let mut election = None;
        if let Some(client) = client {
            let node = args.node_name.clone();
            let output = if args.mode == Mode::Files {
                Some("stderr")
            } else {
                None
            };
            let pw = PodWatch::new(
                cache.clone(),
                node.clone(),
                output,
                metrics.clone(),
                &read.terminated,
            );
            kube_tasks.push(tokio::spawn(pw.run(client.clone(), tx.clone())));
            // A DaemonSet runs one agent per node: each reports its node's events, and
            // the one holding the Lease those no node reports.
            let scope = args.events.unwrap_or(if node.is_some() {
                EventsScope::NodeAndCluster
            } else {
                EventsScope::All
            });
            let node_scope = || {
                node.clone().map(Scope::Node).context(
                    "--events node and node-and-cluster need the node name: pass --node-name or set NODE_NAME",
                )
            };
            let local_scope = match scope {
                EventsScope::Off => None,
                EventsScope::All => Some(Scope::All),
                EventsScope::Node | EventsScope::NodeAndCluster => Some(node_scope()?),
            };
            if let Some(scope) = local_scope {
                let ew = EventWatch::new(scope, metrics.clone(), read.events.as_ref());
                let rv = read.events.as_ref().map(|e| e.resource_version.clone());
                kube_tasks.push(tokio::spawn(ew.run(client.clone(), rv, tx.clone())));
            }
            if scope == EventsScope::NodeAndCluster {
                let (namespace, name) = args.events_lease.clone();
                // The agent's own namespace: the flag, else the downward API's
                // POD_NAMESPACE, else the service account's (in-cluster) or the
                // kubeconfig context's.
                let namespace = namespace
                    .or_else(|| {
                        std::env::var("POD_NAMESPACE")
                            .ok()
                            .filter(|n| !n.is_empty())
                    })
                    .unwrap_or_else(|| client.default_namespace().to_string());
                let cfg = LeaseConfig {
                    namespace,
                    name,
                    identity: crate::kube::lease::identity(node.as_deref()),
                    duration: args.events_lease_duration,
                };
                tracing::info!(lease = %format!("{}/{}", cfg.namespace, cfg.name), identity = %cfg.identity,
                    "taking part in the election for the events no node reports");
                let (terms_tx, terms) = watch::channel(None);
                kube_tasks.push(tokio::spawn(crate::kube::events::follow_terms(
                    client.clone(),
                    metrics.clone(),
                    terms,
                    tx.clone(),
                )));
                let mut elector = Elector::new(client.clone(), cfg, metrics.clone());
                let (stop_election, mut stop) = watch::channel(false);
                let acked = cluster_acked.clone();
                let task = tokio::spawn(async move {
                    elector.run(&terms_tx, &acked, &mut stop).await;
                    elector
                });
                election = Some((task, stop_election));
            }
            if args.mode == Mode::Api {
                let api = ApiLogs {
                    client: client.clone(),
                    cache: cache.clone(),
                    node: node.clone(),
                    metrics: metrics.clone(),
                    max_line: args.max_line_bytes as usize,
                };
                kube_tasks.push(tokio::spawn(api.run(read.api.clone(), tx.clone())));
            }
            let c = cache.clone();
            let retention = args.metadata_retention;
            kube_tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                    c.expire(retention);
                }
            }));
        }

        let stop_files = Arc::new(AtomicBool::new(false));
        let files_thread = if args.mode == Mode::Files || !args.files.is_empty() {
            let cfg = FilesConfig {
                pods_dir: (args.mode == Mode::Files).then(|| args.pods_dir.clone()),
                globs: args.files.clone(),
                static_labels: args.labels.clone(),
                node: args.node_name.clone(),
                max_line: args.max_line_bytes as usize,
                poll: args.poll_interval,
            };
            let source = FileSource::new(cfg, read.clone(), cache.clone(), metrics.clone());
            let (tx, stop) = (tx.clone(), stop_files.clone());
            Some(
                std::thread::Builder::new()
                    .name("kiroku-files".into())
                    .spawn(move || source.run(tx, stop))
                    .context("cannot start the file reader thread")?,
            )
        } else {
            None
        };
        drop(tx);
        metrics.set_ready();
        tracing::info!(url = %args.url, mode = ?args.mode, node = args.node_name.as_deref().unwrap_or(""),
            listen = %args.listen, "kiroku agent started");

        shutdown_signal().await;
        tracing::info!("stopping: storing what was read, then saving positions");
        stop_files.store(true, Ordering::SeqCst);
        for t in &kube_tasks {
            t.abort();
        }
        for t in kube_tasks {
            let _ = t.await;
        }
        // With the disk buffer full, the batcher waits for room and the file thread for
        // the batcher. Lines not yet stored can be dropped safely: positions only cover
        // stored batches, so the next start reads them again.
        let mut batcher = batcher;
        if let Some(t) = files_thread {
            let mut join = tokio::task::spawn_blocking(move || t.join());
            if tokio::time::timeout(STORE_ON_STOP, &mut join)
                .await
                .is_err()
            {
                tracing::warn!(
                    "disk buffer full at stop: lines read but not stored will be read again at the next start"
                );
                batcher.abort();
                let _ = join.await;
            }
        }
        if tokio::time::timeout(STORE_ON_STOP, &mut batcher)
            .await
            .is_err()
        {
            tracing::warn!(
                "disk buffer full at stop: the last batch is read again at the next start"
            );
            batcher.abort();
        }
        let until = Instant::now() + DRAIN_ON_STOP;
        while Instant::now() < until && !shared.buffer.lock().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = stop_tx.send(true);
        let final_positions = sender.await.ok();
        // Only now that the last push is done: the next leader resumes from here.
        if let Some((task, stop)) = election {
            let _ = stop.send(true);
            if let Ok(mut elector) = task.await {
                let pos = final_positions.and_then(|p| p.cluster_events);
                let _ = tokio::time::timeout(RELEASE_ON_STOP, elector.release(pos)).await;
            }
        }
        Ok(())
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
