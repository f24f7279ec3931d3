//! `kiroku logs --previous`: the container instance before the last restart.
//!
//! kiroku's agent keeps every instance of a container in the same streams and writes one
//! line when an instance ends, stamped with its finish time:
//! `kiroku_event=container_terminated reason=OOMKilled exit_code=137 …`. The previous
//! instance is therefore the lines after the second-to-last such line up to and including
//! the last one (which says how it ended). Each matching container is shown in turn.

use std::collections::BTreeMap;
use std::io::Write;

use protocol::response::QueryResult;

use super::print::{PodPrinter, TERMINATION};
use crate::client::{Client, Direction, RangeRequest};
use crate::error::ClientError;
use crate::paging::{LogLine, Pager};
use crate::progress::Progress;
use crate::range::TimeRange;
use crate::selector::PodSelector;

pub struct Previous<'a> {
    pub client: &'a Client,
    pub sel: &'a PodSelector,
    /// `sel` as LogQL.
    pub selector: &'a str,
    pub range: TimeRange,
    pub batch: usize,
    /// `--tail`: only the last lines of each previous instance, as `kubectl logs -p --tail`.
    pub tail: Option<usize>,
    /// "in the last 48h", for messages.
    pub window: String,
}

/// One container: its namespace, pod and name.
type ContainerKey = (String, String, String);

impl Previous<'_> {
    pub async fn run(
        &self,
        printer: &PodPrinter,
        out: &mut impl Write,
        progress: &Progress,
    ) -> Result<(), ClientError> {
        let ends_query = format!("{} |= \"{TERMINATION}\"", self.selector);
        let mut ends: BTreeMap<ContainerKey, Vec<i64>> = BTreeMap::new();
        self.read(&ends_query, self.range, None, progress, |lines| {
            for l in lines.iter().filter(|l| is_termination(&l.line)) {
                let key = (
                    l.labels.get("namespace").unwrap_or_default().to_string(),
                    l.labels.get("pod").unwrap_or_default().to_string(),
                    l.labels.get("container").unwrap_or_default().to_string(),
                );
                ends.entry(key).or_default().push(l.ts);
            }
            Ok(())
        })
        .await?;
        if ends.is_empty() {
            return Err(ClientError::NotFound(format!(
                "no previous container: no container of pods matching {:?} ended {} (kiroku's agent records each end as a {TERMINATION} line)",
                self.sel.pod, self.window
            )));
        }
        for ((ns, pod, container), mut times) in ends {
            times.sort_unstable();
            times.dedup();
            let range = previous_instance(&times, self.range);
            let exact = PodSelector::exact(
                Some(ns.as_str()).filter(|s| !s.is_empty()),
                &pod,
                Some(container.as_str()).filter(|s| !s.is_empty()),
            );
            // The instance's last lines are read newest first, then printed oldest first.
            let mut held = Vec::new();
            self.read(&exact, range, self.tail, progress, |lines| {
                match self.tail {
                    Some(_) => held.extend_from_slice(lines),
                    None => {
                        printer.lines(out, lines)?;
                        out.flush()?;
                    }
                }
                Ok(())
            })
            .await?;
            held.reverse();
            printer.lines(out, &held)?;
            out.flush()?;
        }
        Ok(())
    }

    /// Reads the lines of `query` in `range` page by page: all of them oldest first, or
    /// with `last` the newest `last` of them, newest first.
    async fn read(
        &self,
        query: &str,
        range: TimeRange,
        last: Option<usize>,
        progress: &Progress,
        mut sink: impl FnMut(&[LogLine]) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let dir = match last {
            Some(_) => Direction::Backward,
            None => Direction::Forward,
        };
        let mut pager = Pager::new(range, dir, last, self.batch);
        while let Some(req) = pager.next_request() {
            let answer = {
                let _busy = progress.busy();
                self.client
                    .query_range(&RangeRequest {
                        query,
                        range: req.range,
                        limit: req.limit,
                        direction: dir,
                        step: None,
                    })
                    .await?
            };
            let QueryResult::Streams(streams) = answer.response.result else {
                return Ok(());
            };
            let page = pager.accept(streams);
            progress.add_page(page.lines.len());
            if let Some(w) = &page.warning {
                eprintln!("kiroku: {w}");
            }
            sink(&page.lines)?;
        }
        Ok(())
    }
}

fn is_termination(line: &str) -> bool {
    line.strip_prefix(TERMINATION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// The window of the instance that ended at the last termination: after the one before it
/// (or from the window's start), up to and including the last.
fn previous_instance(ends: &[i64], window: TimeRange) -> TimeRange {
    let last = ends.last().copied().unwrap_or(window.end);
    let start = match ends.len() {
        0 | 1 => window.start,
        n => ends[n - 2].saturating_add(1),
    };
    TimeRange {
        start: start.min(last),
        end: last.saturating_add(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_instance_ends_at_the_last_termination() {
        let w = TimeRange {
            start: 0,
            end: 1000,
        };
        assert_eq!(
            previous_instance(&[500], w),
            TimeRange { start: 0, end: 501 }
        );
        assert_eq!(
            previous_instance(&[100, 300, 500], w),
            TimeRange {
                start: 301,
                end: 501
            }
        );
    }

    #[test]
    fn only_the_agents_line_counts() {
        assert!(is_termination(
            "kiroku_event=container_terminated reason=Error exit_code=3"
        ));
        assert!(!is_termination(
            "user said kiroku_event=container_terminated"
        ));
        assert!(!is_termination("kiroku_event=container_terminatedX"));
    }
}
