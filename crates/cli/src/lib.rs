//! kiroku's command-line client: `kiroku query`, `labels`, `series` and `logs`. It speaks
//! only Loki's public HTTP API (`query_range`, `query`, `labels`, `series`, the `tail`
//! WebSocket), so it works against kiroku and against Grafana Loki alike.
//!
//! It reads and prints; it never writes to the server, evaluates LogQL or keeps state
//! between runs. Queries longer than the server's per-query limit are paged
//! ([`paging::Pager`]), `--follow` reads the tail WebSocket ([`tail`]), and `kiroku logs`
//! turns a pod name into a LogQL selector ([`selector`]) and prints lines with a colour per
//! pod, like `stern`.
//!
//! Start reading from:
//! - [`Command`]: the subcommands and their flags;
//! - [`client::Client`]: the HTTP client, and [`error::ClientError`], which turns every
//!   failure into a message that says what to do;
//! - [`paging::Pager`]: how a long log query becomes several requests without losing or
//!   repeating a line.

pub mod client;
pub mod colour;
pub mod connection;
pub mod error;
mod labels;
mod logs;
pub mod output;
pub mod paging;
pub mod progress;
mod query;
pub mod range;
pub mod selector;
mod series;
pub mod table;
pub mod tail;
#[doc(hidden)]
pub mod testkit;
mod tls;

/// The client subcommands: `query`, `labels`, `series`, `logs`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a LogQL query and print its log lines or samples (like logcli).
    Query(query::Args),
    /// List label names, or the values of one label.
    Labels(labels::Args),
    /// List the streams (label sets) that match a selector.
    Series(series::Args),
    /// Print the logs of pods, running or long gone, like `kubectl logs` and `stern`.
    Logs(logs::Args),
}

/// Runs one client subcommand to completion. Errors carry the message the user reads;
/// output already written to a closed pipe (`kiroku query … | head`) is not an error.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async {
        match cmd {
            Command::Query(a) => query::run(a).await,
            Command::Labels(a) => labels::run(a).await,
            Command::Series(a) => series::run(a).await,
            Command::Logs(a) => logs::run(a).await,
        }
    });
    match result {
        Err(error::ClientError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(anyhow::Error::from),
    }
}
