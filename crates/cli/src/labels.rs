//! `kiroku labels [name]`: the label names of the window, or the values of one label, one
//! per line, sorted.

use std::io::{self, BufWriter, Write};

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::progress::Progress;
use crate::range::{Bounds, now_nanos};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A label whose values to list; without it, the label names are listed
    pub name: Option<String>,
    /// Only labels of the streams this selector matches, like {namespace="shop"}
    #[arg(long, value_name = "SELECTOR")]
    pub query: Option<String>,
    /// How far back to look, from --to or now: 30m, 1h, 2d
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    #[command(flatten)]
    pub bounds: Bounds,
    /// No progress indicator on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(a: Args) -> Result<(), ClientError> {
    let client = Client::new(a.connection.endpoint()?)?;
    let range = a.bounds.resolve(&a.since, now_nanos())?;
    let mut values = {
        let progress = Progress::new(&format!("asking {}", client.endpoint().display), a.quiet);
        let _busy = progress.busy();
        client
            .labels(a.name.as_deref(), range, a.query.as_deref())
            .await?
    };
    values.sort();
    values.dedup();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for v in &values {
        out.write_all(v.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
