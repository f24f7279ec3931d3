//! kiroku's collector. (Skeleton: being built.)

/// `kiroku agent` options.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("kiroku agent is not built yet")
}
