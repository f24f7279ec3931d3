//! `kiroku series [selector]`: the streams of the window, one label set per line, or with
//! `--analyze-labels` a table of how many values each label has (what makes cardinality).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Write};

use protocol::Labels;

use crate::client::Client;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::progress::{Progress, thousands};
use crate::range::{Bounds, now_nanos};
use crate::table::Table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stream selectors, like {app="api"}; several are OR-ed; none lists every stream
    pub selectors: Vec<String>,
    /// How far back to look, from --to or now: 30m, 1h, 2d
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    #[command(flatten)]
    pub bounds: Bounds,
    /// Print per label name how many values it has and in how many streams it appears
    #[arg(long)]
    pub analyze_labels: bool,
    /// No progress indicator on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(a: Args) -> Result<(), ClientError> {
    let client = Client::new(a.connection.endpoint()?)?;
    let range = a.bounds.resolve(&a.since, now_nanos())?;
    let mut series = {
        let progress = Progress::new(&format!("asking {}", client.endpoint().display), a.quiet);
        let _busy = progress.busy();
        // Loki wants at least one matcher; `{}` asks for every stream.
        let selectors = if a.selectors.is_empty() {
            vec!["{}".to_string()]
        } else {
            a.selectors.clone()
        };
        client.series(&selectors, range).await?
    };
    series.sort();
    series.dedup();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if a.analyze_labels {
        analyze(&series).write(&mut out)?;
    } else {
        for s in &series {
            writeln!(out, "{s}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// One row per label name, most values first: name, distinct values, streams with it.
pub fn analyze(series: &[Labels]) -> Table {
    let mut by_name: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
    for s in series {
        for l in s {
            let e = by_name.entry(&l.name).or_default();
            e.0.insert(&l.value);
            e.1 += 1;
        }
    }
    let mut rows: Vec<(&str, usize, usize)> = by_name
        .into_iter()
        .map(|(n, (values, streams))| (n, values.len(), streams))
        .collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Table {
        header: vec!["LABEL".into(), "VALUES".into(), "STREAMS".into()],
        rows: rows
            .into_iter()
            .map(|(n, v, s)| vec![n.to_string(), thousands(v), thousands(s)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_counts_values_and_streams() {
        let s = [
            Labels::from_pairs([("app", "api"), ("pod", "api-1")]),
            Labels::from_pairs([("app", "api"), ("pod", "api-2")]),
            Labels::from_pairs([("app", "web"), ("pod", "web-1"), ("zone", "a")]),
        ];
        let mut out = Vec::new();
        analyze(&s).write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "LABEL  VALUES  STREAMS\npod    3       3\napp    2       3\nzone   1       1\n"
        );
    }
}
