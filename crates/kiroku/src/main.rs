//! The `kiroku` binary: parses the command line and hands over to the crate that does the
//! work. Nothing else lives here.

use clap::{Parser, Subcommand};

/// Log aggregation that speaks Grafana Loki's API: server, agent, web UI and CLI in one binary.
#[derive(Parser)]
#[command(name = "kiroku", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: push and query API, storage and the web UI.
    Server(server::Args),
    /// Run the collector: pod logs, Kubernetes events and files, pushed to a Loki API.
    Agent(agent::Args),
    #[command(flatten)]
    Client(cli::Command),
    /// Measure kiroku: ingest and query speed, resource use.
    #[command(subcommand)]
    Bench(Bench),
}

/// The benchmarks; each crate measures its own part through real processes.
#[derive(Subcommand)]
enum Bench {
    /// The agent's CPU and memory while it follows many files.
    Agent(agent::bench::Args),
    /// The server's ingest: CPU, memory, disk and speed while it takes the loghub-based
    /// data set over HTTP, then the query latencies (see docs/benchmarks.md).
    Ingest(bench::IngestArgs),
    /// Query latencies over the data set, reused between runs.
    Query(bench::QueryArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Server(a) => server::run(a),
        Command::Agent(a) => agent::run(a),
        Command::Client(c) => cli::run(c),
        Command::Bench(b) => match b {
            Bench::Agent(a) => agent::bench::run(a),
            Bench::Ingest(a) => bench::run_ingest(a),
            Bench::Query(a) => bench::run_query(a),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiroku: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and then each cause that its text does not already give: most of our
/// messages name their cause in place, with advice after it, and the chain would say the
/// cause a second time at the end.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_said_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = anyhow::Error::new(io()).context(format!("cannot read x: {}: check it", io()));
        assert_eq!(error_text(&e), format!("cannot read x: {}: check it", io()));
        let e = anyhow::Error::new(io()).context("cannot read x");
        assert_eq!(error_text(&e), format!("cannot read x: {}", io()));
    }
}
