//! `kiroku logs [-n ns] <pod> [-c container]`: the lines of pods from the store, so a pod
//! that was deleted or a container that crashed still has its logs. Oldest first like
//! `kubectl logs`, one colour per pod like `stern`; `--previous` shows the container
//! instance before the last restart, `-f` follows.
//!
//! Built on the labels kiroku's agent gives every pod stream (`namespace`, `pod`,
//! `container`) and the line it writes when a container ends (see [`print::TERMINATION`]),
//! so it works on any Loki whose streams carry those labels.

mod previous;
mod print;

use std::io::{self, BufWriter, Write};

use protocol::response::QueryResult;

use crate::client::{Client, Direction, RangeRequest};
use crate::colour::ColorChoice;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::output::{Format, Timezone};
use crate::paging::{LogLine, Pager, Seen};
use crate::progress::Progress;
use crate::query::{follow_after, follow_start};
use crate::range::{Bounds, TimeRange, now_nanos};
use crate::selector::{Pattern, PodSelector};
use crate::tail::{self, TailRequest};

pub use print::PodPrinter;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pod name, or a regular expression matched against whole pod names ('web-.*')
    pub pod: String,
    /// Namespace, or a regular expression; all namespaces when not given
    #[arg(short, long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Container, or a regular expression; all containers when not given
    #[arg(short, long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// The previous instance of each container: its lines up to its last termination
    #[arg(short, long, conflicts_with = "follow")]
    pub previous: bool,
    /// After the existing lines, keep printing new lines as they arrive
    #[arg(short, long)]
    pub follow: bool,
    /// How far back to look, from --to or now: 30m, 1h, 2d
    #[arg(long, default_value = "48h", value_name = "DURATION")]
    pub since: String,
    #[command(flatten)]
    pub bounds: Bounds,
    /// Only the last N lines of the window
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Print each line's time (RFC 3339 with nanoseconds) before it
    #[arg(long)]
    pub timestamps: bool,
    /// Output format: default (`pod container`, then the line), raw (the line alone, as
    /// kubectl logs prints it) or jsonl (one JSON object per line)
    #[arg(short, long, value_enum, default_value_t, hide_possible_values = true)]
    pub output: Format,
    /// Time zone of --timestamps and jsonl times
    #[arg(short = 'z', long, value_enum, default_value_t = Timezone::Utc)]
    pub timezone: Timezone,
    /// Colour each pod's prefix
    #[arg(long, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorChoice,
    /// Lines asked for per request (the page size)
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// With --follow: seconds the server waits for late lines before sending (0 to 5)
    #[arg(long, default_value_t = 0, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=5))]
    pub delay_for: u64,
    /// No progress indicator on stderr
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(a: Args) -> Result<(), ClientError> {
    let client = Client::new(a.connection.endpoint()?)?;
    let range = a.bounds.resolve(&a.since, now_nanos())?;
    let sel = PodSelector {
        namespace: a.namespace.clone(),
        pod: a.pod.clone(),
        container: a.container.clone(),
    };
    let selector = sel.to_logql()?;
    let one_namespace = match &a.namespace {
        Some(ns) => Pattern::read("-n", ns)? == Pattern::Name,
        None => false,
    };
    let printer = PodPrinter {
        format: a.output,
        colour: a.output == Format::Default && a.color.enabled(),
        tz: a.timezone,
        timestamps: a.timestamps,
        namespace: !one_namespace,
    };
    let progress = Progress::new(
        &format!("reading logs from {}", client.endpoint().display),
        a.quiet,
    );
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if a.previous {
        let job = previous::Previous {
            client: &client,
            sel: &sel,
            selector: &selector,
            range,
            batch: a.batch as usize,
            tail: a.tail,
            window: window_words(&a),
        };
        return job.run(&printer, &mut out, &progress).await;
    }
    let (dir, limit) = match a.tail {
        Some(n) => (Direction::Backward, Some(n)),
        None => (Direction::Forward, None),
    };
    let mut pager = Pager::new(range, dir, limit, a.batch as usize);
    let mut seen = Seen::new(follow_start(range));
    let mut held: Vec<LogLine> = Vec::new();
    let mut printed = 0usize;
    while let Some(req) = pager.next_request() {
        let answer = {
            let _busy = progress.busy();
            client
                .query_range(&RangeRequest {
                    query: &selector,
                    range: req.range,
                    limit: req.limit,
                    direction: dir,
                    step: None,
                })
                .await?
        };
        let QueryResult::Streams(streams) = answer.response.result else {
            return Err(ClientError::Decode {
                addr: client.endpoint().display.clone(),
                path: "/loki/api/v1/query_range".into(),
                why: "a log query was answered with samples".into(),
            });
        };
        let page = pager.accept(streams);
        progress.add_page(page.lines.len());
        if let Some(w) = &page.warning {
            eprintln!("kiroku: {w}");
        }
        printed += page.lines.len();
        if a.follow {
            for l in &page.lines {
                seen.add(l);
            }
        }
        if dir == Direction::Backward {
            held.extend(page.lines);
        } else {
            printer.lines(&mut out, &page.lines)?;
            out.flush()?;
        }
    }
    held.reverse();
    printer.lines(&mut out, &held)?;
    out.flush()?;
    if a.follow {
        drop(progress);
        let req = TailRequest {
            query: &selector,
            start: follow_after(range, limit, &held),
            limit: a.batch as usize,
            delay_for: a.delay_for,
        };
        return tail::follow(&client, req, seen, |lines| {
            printer.lines(&mut out, lines)?;
            out.flush()?;
            Ok(())
        })
        .await;
    }
    if printed == 0 {
        let _busy = progress.busy();
        return explain_nothing(&client, &sel, range, &window_words(&a)).await;
    }
    Ok(())
}

/// "in the last 48h" or "between … and …", for messages.
fn window_words(a: &Args) -> String {
    match (&a.bounds.from, &a.bounds.to) {
        (None, None) => format!("in the last {}", a.since),
        (Some(f), Some(t)) => format!("between {f} and {t}"),
        (Some(f), None) => format!("since {f}"),
        (None, Some(t)) => format!("in the {} before {t}", a.since),
    }
}

/// Nothing was printed: say whether the pod is unknown (and which pods look like it) or
/// the container is, instead of exiting silently.
async fn explain_nothing(
    client: &Client,
    sel: &PodSelector,
    range: TimeRange,
    window: &str,
) -> Result<(), ClientError> {
    let pods_only = PodSelector {
        container: None,
        ..sel.clone()
    }
    .to_logql()?;
    let streams = client.series(&[pods_only], range).await?;
    let in_ns = match &sel.namespace {
        Some(ns) => format!(" in namespace {ns:?}"),
        None => String::new(),
    };
    if streams.is_empty() {
        let scope = match &sel.namespace {
            Some(_) => Some(
                PodSelector {
                    pod: ".+".into(),
                    container: None,
                    ..sel.clone()
                }
                .to_logql()?,
            ),
            None => None,
        };
        let pods = client.labels(Some("pod"), range, scope.as_deref()).await?;
        let similar = similar_names(&sel.pod, &pods);
        let mut msg = format!("no pod matching {:?}{in_ns} has lines {window}", sel.pod);
        if similar.is_empty() {
            msg.push_str(": widen the window with --since or --from, or check -n");
        } else {
            msg.push_str(&format!(
                "; pods with similar names: {}. A name matches one pod exactly; a pattern like '{}-.*' matches a deployment's pods",
                similar.join(", "),
                sel.pod
            ));
        }
        return Err(ClientError::NotFound(msg));
    }
    if let Some(c) = &sel.container {
        let mut containers: Vec<&str> = streams.iter().filter_map(|s| s.get("container")).collect();
        containers.sort_unstable();
        containers.dedup();
        return Err(ClientError::NotFound(format!(
            "pods matching {:?}{in_ns} have no container matching {c:?} with lines {window}; their containers: {}",
            sel.pod,
            containers.join(", ")
        )));
    }
    Ok(())
}

/// Up to eight pod names that contain the pattern (or, for a regex, that it finds in).
fn similar_names(pattern: &str, pods: &[String]) -> Vec<String> {
    let re = regex::Regex::new(pattern).ok();
    let lower = pattern.to_lowercase();
    let mut out: Vec<String> = pods
        .iter()
        .filter(|p| p.to_lowercase().contains(&lower) || re.as_ref().is_some_and(|r| r.is_match(p)))
        .take(8)
        .cloned()
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_names_find_a_deployments_pods() {
        let pods: Vec<String> = ["api-7c9d8-x2zq", "api-7c9d8-b4kd", "web-1", "rapid-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            similar_names("api", &pods),
            vec!["api-7c9d8-b4kd", "api-7c9d8-x2zq", "rapid-1"]
        );
        assert!(similar_names("nothing", &pods).is_empty());
        assert_eq!(similar_names("web-\\d", &pods), vec!["web-1"]);
    }
}
