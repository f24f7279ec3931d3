//! kiroku's command-line client. (Skeleton: being built.)

/// The client subcommands: `query`, `labels`, `series`, `logs`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

pub fn run(_cmd: Command) -> anyhow::Result<()> {
    anyhow::bail!("the kiroku client is not built yet")
}
