//! How `kiroku logs` prints a line: `stern`'s `pod container line`, the pod in a colour of
//! its own and the container in the same hue, the namespace first when several can match.

use std::io::{self, Write};

use crate::colour::{self, BOLD_RED, RESET};
use crate::output::{Format, Precision, Timezone, format_time, write_jsonl};
use crate::paging::LogLine;

/// The start of the line the agent writes when a container ends (see docs/agent.md).
pub const TERMINATION: &str = "kiroku_event=container_terminated";

pub struct PodPrinter {
    pub format: Format,
    pub colour: bool,
    pub tz: Timezone,
    /// `--timestamps`: the entry's time before the line, as `kubectl logs` prints it.
    pub timestamps: bool,
    /// Whether the namespace is shown (when `-n` does not name exactly one).
    pub namespace: bool,
}

impl PodPrinter {
    pub fn lines(&self, out: &mut impl Write, lines: &[LogLine]) -> io::Result<()> {
        for l in lines {
            self.line(out, l)?;
        }
        Ok(())
    }

    fn line(&self, out: &mut impl Write, l: &LogLine) -> io::Result<()> {
        if self.format == Format::Jsonl {
            return write_jsonl(out, l, self.tz);
        }
        if self.format == Format::Default {
            let ns = l.labels.get("namespace").unwrap_or_default();
            let pod = l.labels.get("pod").unwrap_or_default();
            let container = l.labels.get("container").unwrap_or_default();
            let (pod_colour, container_colour) = if self.colour {
                colour::pick(&format!("{ns}/{pod}"))
            } else {
                ("", "")
            };
            let reset = if self.colour { RESET } else { "" };
            if self.namespace && !ns.is_empty() {
                write!(out, "{pod_colour}{ns}{reset} ")?;
            }
            if !pod.is_empty() {
                write!(out, "{pod_colour}{pod}{reset} ")?;
            }
            if !container.is_empty() {
                write!(out, "{container_colour}{container}{reset} ")?;
            }
        }
        if self.timestamps {
            write!(out, "{} ", format_time(l.ts, self.tz, Precision::Nanos))?;
        }
        if self.colour && self.format == Format::Default && l.line.starts_with(TERMINATION) {
            write!(out, "{BOLD_RED}{}{RESET}", l.line)?;
        } else {
            out.write_all(l.line.as_bytes())?;
        }
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Labels;
    use std::sync::Arc;

    fn line(labels: &[(&str, &str)], text: &str) -> LogLine {
        LogLine {
            ts: 1_714_557_600_000_000_001,
            labels: Arc::new(Labels::from_pairs(labels.iter().copied())),
            line: text.to_string(),
        }
    }

    fn print(p: &PodPrinter, l: &LogLine) -> String {
        let mut out = Vec::new();
        p.lines(&mut out, std::slice::from_ref(l)).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn printer(format: Format, colour: bool) -> PodPrinter {
        PodPrinter {
            format,
            colour,
            tz: Timezone::Utc,
            timestamps: false,
            namespace: false,
        }
    }

    #[test]
    fn stern_prefix_with_and_without_colour() {
        let l = line(
            &[
                ("namespace", "shop"),
                ("pod", "web-1"),
                ("container", "app"),
            ],
            "hello",
        );
        assert_eq!(
            print(&printer(Format::Default, false), &l),
            "web-1 app hello\n"
        );
        let (p, c) = colour::pick("shop/web-1");
        assert_eq!(
            print(&printer(Format::Default, true), &l),
            format!("{p}web-1{RESET} {c}app{RESET} hello\n")
        );
        let mut with_ns = printer(Format::Default, false);
        with_ns.namespace = true;
        with_ns.timestamps = true;
        assert_eq!(
            print(&with_ns, &l),
            "shop web-1 app 2024-05-01T10:00:00.000000001Z hello\n"
        );
    }

    #[test]
    fn raw_is_the_line_and_terminations_stand_out() {
        let l = line(
            &[("pod", "web-1")],
            "kiroku_event=container_terminated reason=OOMKilled",
        );
        assert_eq!(
            print(&printer(Format::Raw, true), &l),
            "kiroku_event=container_terminated reason=OOMKilled\n"
        );
        assert!(print(&printer(Format::Default, true), &l).contains(BOLD_RED));
        assert!(!print(&printer(Format::Default, false), &l).contains('\x1b'));
    }
}
