//! kiroku's collector, `kiroku agent`: follows every container's log on a Kubernetes node
//! (or through the Kubernetes API, or plain files on any host), labels lines with the pod's
//! metadata, reports why containers died and what the cluster's events say, and pushes it
//! all to kiroku or any Loki with nothing lost when the server is away.
//!
//! It does not store or query logs, parse log contents or run pipelines: lines leave as
//! they were written, with their container's timestamps.
//!
//! Start reading from:
//! - [`agent::Agent`]: wiring of sources, batcher, disk buffer and sender;
//! - [`files::FileSource`] and [`files::tail::Tailer`]: pod log files (CRI and Docker),
//!   rotation, truncation, deletion;
//! - [`buffer::Buffer`] and [`deliver`]: batches on disk until the server acknowledges them,
//!   then [`positions::Positions`] advance;
//! - [`kube`]: pod metadata, termination reports, events (split between the agents of a
//!   DaemonSet, those no node reports going to the holder of a Lease: [`kube::lease`])
//!   and API-mode log streams.

pub mod agent;
pub mod args;
pub mod bench;
pub mod buffer;
pub mod deliver;
pub mod entry;
pub mod files;
pub mod format;
pub mod kube;
pub mod metrics;
pub mod pods;
pub mod positions;
pub mod push;
pub mod testkit;

pub use args::Args;

/// Runs `kiroku agent` until SIGINT or SIGTERM.
pub fn run(args: Args) -> anyhow::Result<()> {
    init_tracing(&args.log_level);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(agent::Agent::run(args))
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
