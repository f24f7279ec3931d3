//! kiroku's HTTP server. (Skeleton: being built.)

/// `kiroku server` options.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("kiroku server is not built yet")
}
