//! `kiroku query '<logql>'`: log lines newest first like logcli (`--forward` for oldest
//! first), paged past the server's per-request limit; samples of metric queries as a table;
//! `--follow` carries on with the tail WebSocket.

use std::io::{self, BufWriter, Write};

use protocol::response::QueryResult;

use crate::client::{Client, Direction, RangeRequest};
use crate::colour::ColorChoice;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::output::{Change, Format, QueryPrinter, Timezone};
use crate::paging::{LogLine, Pager, Seen, flatten};
use crate::progress::Progress;
use crate::range::{Bounds, TimeRange, now_nanos};
use crate::table::{samples_table, write_samples_jsonl};
use crate::tail::{self, OVERLAP, TailRequest};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The LogQL query: a log query prints lines, a metric query prints samples
    pub query: String,
    /// How far back to look, from --to or now: 30m, 1h, 2d, 1h30m
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub since: String,
    #[command(flatten)]
    pub bounds: Bounds,
    /// Lines to print in all; 0 prints every line in the window
    #[arg(long, default_value_t = 30, value_name = "N")]
    pub limit: usize,
    /// Lines asked for per request (the page size); the server refuses more than its own
    /// limit, 5,000 by default
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Oldest lines first (by default newest first, as logcli prints them)
    #[arg(long)]
    pub forward: bool,
    /// Step of a metric query over the window: 30s, 1m, or seconds [default: chosen by the
    /// server from the window]
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,
    /// Evaluate a metric query at one instant (--to, or now) instead of over the window
    #[arg(long, conflicts_with_all = ["follow", "step"])]
    pub instant: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Format,
    /// After the window's last lines (oldest first), keep printing new lines as they arrive
    /// (also `-t`/`--tail`, logcli's names)
    #[arg(short = 'f', long, alias = "tail", short_alias = 't')]
    pub follow: bool,
    /// With --follow: seconds the server waits for late lines before sending (0 to 5)
    #[arg(long, default_value_t = 0, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=5))]
    pub delay_for: u64,
    /// Print the time and the line only, no labels
    #[arg(long)]
    pub no_labels: bool,
    /// Nothing on stderr but errors: no common labels, no progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Time zone of printed times
    #[arg(short = 'z', long, value_enum, default_value_t)]
    pub timezone: Timezone,
    /// Colour the labels of each stream
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(a: Args) -> Result<(), ClientError> {
    let client = Client::new(a.connection.endpoint()?)?;
    let range = a.bounds.resolve(&a.since, now_nanos())?;
    let progress = Progress::new(&format!("querying {}", client.endpoint().display), a.quiet);
    let mut printer = QueryPrinter::new(
        a.output,
        a.output == Format::Default && a.color.enabled(),
        a.timezone,
        a.no_labels,
    );
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if a.instant {
        let answer = {
            let _busy = progress.busy();
            let limit = if a.limit == 0 {
                a.batch as usize
            } else {
                a.limit
            };
            client
                .query_instant(&a.query, range.end, limit, direction(&a))
                .await?
        };
        drop(progress);
        let mut result = answer.response.result;
        if let QueryResult::Streams(streams) = result {
            let lines = flatten(streams, direction(&a));
            printer.page(&mut out, &lines)?;
            return out.flush().map_err(Into::into);
        }
        // Loki stamps a scalar with a time of its own making (year 2262 and thereabouts):
        // it is the value at the query's time.
        if let QueryResult::Scalar(p) = &mut result {
            p.t_ms = range.end.div_euclid(1_000_000);
        }
        return print_samples(&mut out, &result, &answer.body, &a).map_err(Into::into);
    }
    // Following prints the window's last lines oldest first, then the new ones: read all
    // of the window forward, or its newest lines backward and print them reversed.
    let dir = match (a.follow, a.forward) {
        (true, _) if a.limit == 0 => Direction::Forward,
        (true, _) => Direction::Backward,
        (false, true) => Direction::Forward,
        (false, false) => Direction::Backward,
    };
    // `--limit 0`: every line of the window.
    let limit = (a.limit > 0).then_some(a.limit);
    let mut pager = Pager::new(range, dir, limit, a.batch as usize);
    let mut held: Vec<LogLine> = Vec::new();
    let mut seen = Seen::new(follow_start(range));
    while let Some(req) = pager.next_request() {
        let answer = {
            let _busy = progress.busy();
            client
                .query_range(&RangeRequest {
                    query: &a.query,
                    range: req.range,
                    limit: req.limit,
                    direction: dir,
                    step: a.step.as_deref(),
                })
                .await?
        };
        let QueryResult::Streams(streams) = answer.response.result else {
            drop(progress);
            if a.follow {
                return Err(ClientError::Usage(
                    "--follow needs a log query: a metric query has no lines to follow".into(),
                ));
            }
            return print_samples(&mut out, &answer.response.result, &answer.body, &a)
                .map_err(Into::into);
        };
        let page = pager.accept(streams);
        progress.add_page(page.lines.len());
        if let Some(w) = &page.warning {
            eprintln!("kiroku: {w}");
        }
        if a.follow {
            for l in &page.lines {
                seen.add(l);
            }
            if dir == Direction::Backward {
                // Printed oldest first once the window is read.
                held.extend(page.lines);
                continue;
            }
        }
        announce_common(&mut printer, &page.lines, a.quiet);
        printer.page(&mut out, &page.lines)?;
        out.flush()?;
    }
    drop(progress);
    if !a.follow {
        return Ok(());
    }
    held.reverse();
    announce_common(&mut printer, &held, a.quiet);
    printer.page(&mut out, &held)?;
    out.flush()?;
    let req = TailRequest {
        query: &a.query,
        start: follow_after(range, limit, &held),
        limit: a.batch as usize,
        delay_for: a.delay_for,
    };
    tail::follow(&client, req, seen, |lines| {
        announce_common(&mut printer, lines, a.quiet);
        printer.page(&mut out, lines)?;
        out.flush()?;
        Ok(())
    })
    .await
}

/// Prints logcli's `Common labels: {…}` on stderr before the first lines, and again when
/// lines of a stream without one of them arrive later.
fn announce_common(printer: &mut QueryPrinter, lines: &[LogLine], quiet: bool) {
    let change = printer.update_common(lines);
    if quiet {
        return;
    }
    match (change, printer.common()) {
        (Some(_), Some(c)) => eprintln!("Common labels: {c}"),
        (Some(Change::Narrowed), None) => eprintln!("Common labels: {{}}"),
        _ => {}
    }
}

/// Where the tail starts: a little before the window's end, for lines that arrive late.
pub(crate) fn follow_start(range: TimeRange) -> i64 {
    range.end.saturating_sub(OVERLAP).max(range.start)
}

/// Where following starts once the window's newest `limit` lines are printed: as
/// [`follow_start`], but when the limit cut the window, after the oldest line printed:
/// the lines before it were left out on purpose, as `kubectl logs -f --tail` and
/// `logcli query --tail --limit` leave them out.
pub(crate) fn follow_after(range: TimeRange, limit: Option<usize>, printed: &[LogLine]) -> i64 {
    let start = follow_start(range);
    match (limit, printed.iter().map(|l| l.ts).min()) {
        (Some(n), Some(oldest)) if printed.len() >= n => start.max(oldest.saturating_add(1)),
        _ => start,
    }
}

fn direction(a: &Args) -> Direction {
    if a.forward {
        Direction::Forward
    } else {
        Direction::Backward
    }
}

fn print_samples(
    out: &mut impl Write,
    result: &QueryResult,
    body: &[u8],
    a: &Args,
) -> io::Result<()> {
    match a.output {
        Format::Raw => {
            out.write_all(body)?;
            if !body.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
        }
        Format::Jsonl => write_samples_jsonl(out, result, a.timezone)?,
        Format::Default => match samples_table(result, a.timezone) {
            Some(t) if !t.rows.is_empty() => t.write(out)?,
            _ => {}
        },
    }
    out.flush()
}
