//! Container log file formats: the CRI format the kubelet's runtimes write
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`) and Docker's json-file format
//! (`{"log":"...\n","stream":"stdout","time":"..."}`), and the joining of partial lines.
//!
//! Parsers borrow from the line they are given (Docker's unescaped text goes into a buffer
//! the caller reuses), so reading a file allocates nothing per line until a line is handed
//! over to be sent.

pub mod cri;
pub mod docker;

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    Stdout,
    Stderr,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Stdout => "stdout",
            Output::Stderr => "stderr",
        }
    }

    fn parse(s: &[u8]) -> Option<Output> {
        match s {
            b"stdout" => Some(Output::Stdout),
            b"stderr" => Some(Output::Stderr),
            _ => None,
        }
    }
}

/// One physical line of a container log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Unix nanoseconds, as the runtime wrote it.
    pub ts: i64,
    pub output: Output,
    /// The line continues in the next record of the same output.
    pub partial: bool,
    pub msg: &'a [u8],
}

/// Why a line of a container log file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("line is not in the CRI format `<RFC3339Nano> <stdout|stderr> <P|F> <msg>`: {0}")]
    Cri(&'static str),
    #[error("line is not a Docker json-file record: {0}")]
    Docker(&'static str),
}

/// How a file's lines are written, told from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cri,
    Docker,
    /// Any other file (`--files`): each line is a message, stamped when read.
    Plain,
}

impl Format {
    /// Container log files are Docker's when they start with `{`, CRI otherwise.
    pub fn detect(first_line: &[u8]) -> Format {
        if first_line.first() == Some(&b'{') {
            Format::Docker
        } else {
            Format::Cri
        }
    }
}

/// A complete logical line, after joining partial records.
#[derive(Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub ts: i64,
    pub output: Output,
    pub msg: &'a [u8],
    /// Part of the message was cut off at the size limit.
    pub truncated: bool,
}

/// Joins partial records (`P` in CRI, a `log` without its trailing newline in Docker) into
/// lines of at most `max` bytes, per output. A line keeps the timestamp of its first part.
#[derive(Debug)]
pub struct Assembler {
    parts: [Pending; 2],
    max: usize,
}

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    ts: i64,
    active: bool,
    truncated: bool,
}

impl Assembler {
    pub fn new(max: usize) -> Assembler {
        Assembler {
            parts: [Pending::default(), Pending::default()],
            max,
        }
    }

    /// Whether a partial line is waiting for its end: a read position taken now would
    /// split it.
    pub fn pending(&self) -> bool {
        self.parts.iter().any(|p| p.active)
    }

    /// Forgets pending parts (the file was truncated or replaced).
    pub fn reset(&mut self) {
        for p in &mut self.parts {
            p.buf.clear();
            p.active = false;
            p.truncated = false;
        }
    }

    /// Feeds one record; `emit` is called when it completes a line.
    pub fn feed(&mut self, rec: Record<'_>, mut emit: impl FnMut(Line<'_>)) {
        let max = self.max;
        let p = &mut self.parts[rec.output as usize];
        if !p.active && !rec.partial {
            let truncated = rec.msg.len() > max;
            emit(Line {
                ts: rec.ts,
                output: rec.output,
                msg: &rec.msg[..rec.msg.len().min(max)],
                truncated,
            });
            return;
        }
        if !p.active {
            p.active = true;
            p.ts = rec.ts;
            p.truncated = false;
            p.buf.clear();
        }
        let room = max.saturating_sub(p.buf.len());
        if rec.msg.len() > room {
            p.truncated = true;
        }
        p.buf.extend_from_slice(&rec.msg[..rec.msg.len().min(room)]);
        if !rec.partial {
            emit(Line {
                ts: p.ts,
                output: rec.output,
                msg: &p.buf,
                truncated: p.truncated,
            });
            p.active = false;
            p.buf.clear();
            // A 10 MiB line must not pin 10 MiB for the life of the file.
            if p.buf.capacity() > 64 * 1024 {
                p.buf.shrink_to(64 * 1024);
            }
        }
    }
}

/// Parses `2024-05-01T10:00:00.123456789Z` (or with an offset) to Unix nanoseconds.
pub(crate) fn parse_time(s: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(s).ok()?;
    protocol::time::parse_rfc3339(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(output: Output, partial: bool, msg: &[u8]) -> Record<'_> {
        Record {
            ts: 7,
            output,
            partial,
            msg,
        }
    }

    proptest::proptest! {
        #[test]
        fn any_split_into_partials_joins_back(msg in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                              cuts in proptest::collection::vec(0usize..300, 0..6),
                                              max in 1usize..400) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(msg.len())).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut parts = Vec::new();
            let mut prev = 0;
            for c in cuts {
                parts.push(&msg[prev..c]);
                prev = c;
            }
            parts.push(&msg[prev..]);
            let mut a = Assembler::new(max);
            let mut out = Vec::new();
            let n = parts.len();
            for (i, p) in parts.into_iter().enumerate() {
                a.feed(rec(Output::Stdout, i + 1 < n, p), |l| out.push((l.msg.to_vec(), l.truncated)));
            }
            proptest::prop_assert_eq!(out.len(), 1);
            proptest::prop_assert_eq!(&out[0].0[..], &msg[..msg.len().min(max)]);
            proptest::prop_assert_eq!(out[0].1, msg.len() > max);
            proptest::prop_assert!(!a.pending());
        }
    }

    #[test]
    fn joins_partials_per_output_and_caps_them() {
        let mut a = Assembler::new(8);
        let mut out = Vec::new();
        let mut collect = |l: Line<'_>| out.push((l.output, l.msg.to_vec(), l.truncated));
        a.feed(rec(Output::Stdout, true, b"abc"), &mut collect);
        a.feed(rec(Output::Stderr, false, b"err"), &mut collect);
        a.feed(rec(Output::Stdout, true, b"def"), &mut collect);
        a.feed(rec(Output::Stdout, false, b"ghi"), &mut collect);
        a.feed(rec(Output::Stdout, false, b"0123456789"), &mut collect);
        assert_eq!(
            out,
            vec![
                (Output::Stderr, b"err".to_vec(), false),
                (Output::Stdout, b"abcdefgh".to_vec(), true),
                (Output::Stdout, b"01234567".to_vec(), true),
            ]
        );
        assert!(!a.pending());
    }
}
