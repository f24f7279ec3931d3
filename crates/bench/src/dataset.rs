//! The benchmark's data set: 100 streams of realistic Kubernetes-style labels whose lines
//! come from the 12 loghub samples, with fresh timestamps and varied numbers.
//!
//! - 60 *text* streams (5 per loghub system) replay their system's lines in order, each
//!   from its own starting line, with the line's own timestamp text rewritten to the
//!   entry's time in the system's format.
//! - 20 *JSON* streams (namespace `shop`) and 20 *logfmt* streams (namespace `infra`) wrap
//!   loghub messages in the fields their queries read: `level`, `status`, `method`,
//!   `path`, `duration_ms` (JSON); `level`, `status`, `duration` as a Go duration
//!   (logfmt).
//! - Numbers vary: the last three digits of every run of digits in a loghub message are
//!   random (ids and counters drift, their magnitude stays).
//! - Entry timestamps are nanoseconds, increasing per stream, spread evenly over the
//!   span with random gaps (agents stamp lines when they read them).
//! - Exactly one line, in the middle of one text stream, ends with [`NEEDLE`].
//!
//! Everything comes from one seeded generator: the same seed, line count and start time
//! give the same bytes.

mod lines;
mod timestamp;

use std::fmt::Write as _;

pub use lines::Rng;
use lines::{Source, Template};

/// The unique token of the needle search; it occurs in exactly one line.
pub const NEEDLE: &str = "kq7zx9vwpj3m";

/// The loghub samples, in the order their streams are laid out.
const SYSTEMS: [(&str, &str, &str, &str); 12] = [
    // file, namespace, app, container
    ("HDFS", "data", "hdfs-datanode", "datanode"),
    ("Hadoop", "data", "hadoop-mapreduce", "appmaster"),
    ("Spark", "data", "spark-executor", "executor"),
    ("Zookeeper", "data", "zookeeper", "zookeeper"),
    ("BGL", "hpc", "bgl-ras", "ras-collector"),
    ("HPC", "hpc", "hpc-nodes", "node-monitor"),
    ("Apache", "edge", "apache", "httpd"),
    ("OpenSSH", "edge", "openssh", "sshd"),
    ("Linux", "edge", "linux-syslog", "syslog"),
    ("Proxifier", "edge", "proxifier", "proxy"),
    ("Android", "mobile", "android-system", "system-server"),
    ("HealthApp", "mobile", "healthapp", "app"),
];
/// JSON apps (namespace `shop`) and the loghub system their messages come from.
const JSON_APPS: [(&str, &str); 5] = [
    ("checkout", "Hadoop"),
    ("cart", "Zookeeper"),
    ("payments", "OpenSSH"),
    ("catalog", "Spark"),
    ("frontend", "Apache"),
];
/// logfmt apps (namespace `infra`) and the loghub system their messages come from.
const LOGFMT_APPS: [(&str, &str); 4] = [
    ("ingress-gateway", "Proxifier"),
    ("auth", "Linux"),
    ("scheduler", "HDFS"),
    ("object-gateway", "BGL"),
];
const TEXT_REPLICAS: usize = 5;
const JSON_REPLICAS: usize = 4;
const LOGFMT_REPLICAS: usize = 5;
/// Streams in the data set.
pub const STREAMS: usize = 100;

/// What a stream's lines look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Json,
    Logfmt,
}

/// One stream: its labels and how its lines are made.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub namespace: &'static str,
    pub app: &'static str,
    pub pod: String,
    pub container: &'static str,
    pub kind: Kind,
    /// Index into the loaded loghub systems.
    system: usize,
    /// The line of its system the stream starts replaying at.
    offset: usize,
}

impl StreamSpec {
    /// The label set in Loki's push notation.
    pub fn labels(&self) -> String {
        format!(
            r#"{{namespace="{}", app="{}", pod="{}", container="{}"}}"#,
            self.namespace, self.app, self.pod, self.container
        )
    }
}

/// The whole data set's plan: generated stream by stream with [`DataSet::stream`].
#[derive(Debug, Clone)]
pub struct DataSet {
    pub lines: usize,
    pub seed: u64,
    /// First and last possible entry timestamps (nanoseconds).
    pub start: i64,
    pub end: i64,
    pub streams: Vec<StreamSpec>,
    /// Where the needle is: stream index and entry index.
    pub needle_at: (usize, usize),
    systems: Vec<Source>,
}

/// One stream's generated entries, columnar.
#[derive(Debug, Default)]
pub struct Entries {
    pub timestamps: Vec<i64>,
    pub data: String,
    /// `data[offsets[i]..offsets[i + 1]]` is line `i`.
    pub offsets: Vec<usize>,
}

impl Entries {
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    pub fn line(&self, i: usize) -> &str {
        &self.data[self.offsets[i]..self.offsets[i + 1]]
    }
}

/// Why the data set could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "cannot read the loghub sample {path}: {source}; pass --loghub with the directory of the 12 *_2k.log files"
    )]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--lines must be at least {min} (one line per stream)")]
    TooFew { min: usize },
}

impl DataSet {
    /// Plans `lines` lines over `span_ns` ending at `end` (nanoseconds), from the loghub
    /// files in `loghub_dir`.
    pub fn new(
        loghub_dir: &std::path::Path,
        lines: usize,
        seed: u64,
        end: i64,
        span_ns: i64,
    ) -> Result<DataSet, DataError> {
        if lines < STREAMS {
            return Err(DataError::TooFew { min: STREAMS });
        }
        let mut systems = Vec::with_capacity(SYSTEMS.len());
        for (name, ..) in SYSTEMS {
            let path = loghub_dir.join(format!("{name}_2k.log"));
            let text = std::fs::read_to_string(&path).map_err(|source| DataError::Read {
                path: path.display().to_string(),
                source,
            })?;
            systems.push(Source::new(name, &text));
        }
        let system_of = |name: &str| SYSTEMS.iter().position(|s| s.0 == name).unwrap_or(0);
        let mut rng = Rng::new(seed);
        let mut streams = Vec::with_capacity(STREAMS);
        for (i, &(_, namespace, app, container)) in SYSTEMS.iter().enumerate() {
            for _ in 0..TEXT_REPLICAS {
                streams.push(StreamSpec {
                    namespace,
                    app,
                    pod: pod_name(app, &mut rng),
                    container,
                    kind: Kind::Text,
                    system: i,
                    offset: rng.below(systems[i].len() as u64) as usize,
                });
            }
        }
        for (namespace, kind, apps, replicas) in [
            ("shop", Kind::Json, &JSON_APPS[..], JSON_REPLICAS),
            ("infra", Kind::Logfmt, &LOGFMT_APPS[..], LOGFMT_REPLICAS),
        ] {
            for &(app, from) in apps {
                for _ in 0..replicas {
                    let system = system_of(from);
                    streams.push(StreamSpec {
                        namespace,
                        app,
                        pod: pod_name(app, &mut rng),
                        container: app,
                        kind,
                        system,
                        offset: rng.below(systems[system].len() as u64) as usize,
                    });
                }
            }
        }
        debug_assert_eq!(streams.len(), STREAMS);
        let text_streams = SYSTEMS.len() * TEXT_REPLICAS;
        let needle_stream = rng.below(text_streams as u64) as usize;
        let needle_entry = per_stream(lines, needle_stream) / 2;
        Ok(DataSet {
            lines,
            seed,
            start: end - span_ns,
            end,
            streams,
            needle_at: (needle_stream, needle_entry),
            systems,
        })
    }

    /// Entries of stream `i`: about `lines / 100`, in time order.
    pub fn stream(&self, i: usize) -> Entries {
        let spec = &self.streams[i];
        let n = per_stream(self.lines, i);
        // Each stream its own generator, so streams can be made in any order or in parallel.
        let mut rng = Rng::new(self.seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1)));
        let src = &self.systems[spec.system];
        // Entry k lands at a random point of the k-th of n equal slots of the span: strictly
        // increasing, never past the end, with irregular gaps as when an agent stamps lines.
        let span = (self.end - self.start).max(1) as u64;
        let step = (span / n as u64).max(1);
        let mut out = Entries {
            timestamps: Vec::with_capacity(n),
            data: String::with_capacity(n * 150),
            offsets: Vec::with_capacity(n + 1),
        };
        out.offsets.push(0);
        let mut t = Template::default();
        for k in 0..n {
            let ts = self.start + (k as u64 * step + rng.below(step)) as i64;
            let line = src.line((spec.offset + k) % src.len());
            match spec.kind {
                Kind::Text => t.text(src, line, ts, &mut rng, &mut out.data),
                Kind::Json => t.json(src, line, ts, &mut rng, &mut out.data),
                Kind::Logfmt => t.logfmt(src, spec.app, line, ts, &mut rng, &mut out.data),
            }
            if (i, k) == self.needle_at {
                let _ = write!(out.data, " {NEEDLE}");
            }
            out.timestamps.push(ts);
            out.offsets.push(out.data.len());
        }
        out
    }
}

/// Lines of stream `i` when `lines` are spread over [`STREAMS`] streams.
pub fn per_stream(lines: usize, i: usize) -> usize {
    lines / STREAMS + usize::from(i < lines % STREAMS)
}

/// A Deployment pod's name: `<app>-<replicaset hash>-<5 chars>`.
fn pod_name(app: &str, rng: &mut Rng) -> String {
    const ALNUM: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut s = format!("{app}-{:010x}-", rng.next_u64() & 0xff_ffff_ffff);
    for _ in 0..5 {
        s.push(ALNUM[rng.below(ALNUM.len() as u64) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: i64 = 1_763_700_000_000_000_000;
    const HOUR: i64 = 3_600_000_000_000;

    fn loghub() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/loghub")
    }

    fn data(lines: usize, seed: u64) -> DataSet {
        DataSet::new(&loghub(), lines, seed, END, HOUR).unwrap()
    }

    #[test]
    fn a_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
        let (a, b, c) = (data(20_000, 7), data(20_000, 7), data(20_000, 8));
        for i in [0, 42, 61, 99] {
            let (x, y, z) = (a.stream(i), b.stream(i), c.stream(i));
            assert_eq!(x.data, y.data, "stream {i}");
            assert_eq!(x.timestamps, y.timestamps, "stream {i}");
            assert_eq!(a.streams[i].labels(), b.streams[i].labels());
            assert_ne!(x.data, z.data, "stream {i}");
            assert_ne!(a.streams[i].labels(), c.streams[i].labels());
        }
        assert_ne!(a.stream(0).data, a.stream(1).data);
    }

    #[test]
    fn lines_spread_over_100_distinct_streams_of_three_kinds() {
        let d = data(20_017, 1);
        assert_eq!(d.streams.len(), 100);
        let labels: std::collections::HashSet<String> =
            d.streams.iter().map(StreamSpec::labels).collect();
        assert_eq!(labels.len(), 100, "every stream has its own labels");
        let count = |k| d.streams.iter().filter(|s| s.kind == k).count();
        assert_eq!(
            (count(Kind::Text), count(Kind::Json), count(Kind::Logfmt)),
            (60, 20, 20)
        );
        let total: usize = (0..STREAMS).map(|i| d.stream(i).len()).sum();
        assert_eq!(total, 20_017);
        assert!(matches!(
            DataSet::new(&loghub(), 99, 1, END, HOUR),
            Err(DataError::TooFew { min: 100 })
        ));
    }

    #[test]
    fn timestamps_are_fresh_and_strictly_increasing_in_every_stream() {
        let d = data(30_000, 3);
        assert_eq!((d.start, d.end), (END - HOUR, END));
        for i in 0..STREAMS {
            let e = d.stream(i);
            assert!(
                e.timestamps.windows(2).all(|w| w[0] < w[1]),
                "stream {i} goes back or repeats a timestamp"
            );
            let (first, last) = (e.timestamps[0], e.timestamps[e.len() - 1]);
            assert!(
                first >= d.start && last <= d.end,
                "stream {i} leaves the span"
            );
            // The stream covers the hour, not a corner of it.
            assert!(
                first < d.start + HOUR / 100 && last > d.end - HOUR / 100,
                "stream {i}"
            );
        }
    }

    #[test]
    fn the_needle_occurs_exactly_once_in_a_text_stream() {
        let d = data(20_000, 7);
        let mut found = Vec::new();
        for i in 0..STREAMS {
            let e = d.stream(i);
            for k in 0..e.len() {
                if e.line(k).contains(NEEDLE) {
                    found.push((i, k));
                }
            }
        }
        assert_eq!(found, vec![d.needle_at]);
        assert_eq!(d.streams[d.needle_at.0].kind, Kind::Text);
    }

    #[test]
    fn json_lines_carry_level_status_and_duration() {
        let d = data(10_000, 1);
        let mut levels = std::collections::HashSet::new();
        let mut errors = 0;
        for (i, _) in d
            .streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == Kind::Json)
        {
            let e = d.stream(i);
            for k in 0..e.len() {
                let v: serde_json::Value = serde_json::from_str(e.line(k))
                    .unwrap_or_else(|err| panic!("{err}: {}", e.line(k)));
                let status = v["status"].as_u64().unwrap();
                assert!((200..600).contains(&status));
                errors += usize::from(status >= 500);
                assert!(v["duration_ms"].is_f64() && v["msg"].is_string());
                levels.insert(v["level"].as_str().unwrap().to_string());
            }
        }
        assert!(errors > 0, "no line for `status >= 500`");
        assert!(
            levels.contains("info") && levels.contains("error"),
            "{levels:?}"
        );
    }

    #[test]
    fn logfmt_lines_carry_a_go_duration() {
        let d = data(10_000, 1);
        let mut units = std::collections::HashSet::new();
        for (i, _) in d
            .streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == Kind::Logfmt)
        {
            let e = d.stream(i);
            for k in 0..e.len() {
                let l = e.line(k);
                assert!(l.starts_with("ts=20") && l.contains(" level="), "{l}");
                let dur = l.rsplit_once(" duration=").unwrap().1;
                let unit = dur.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
                assert!(["µs", "ms", "s"].contains(&unit), "{l}");
                units.insert(unit.to_string());
            }
        }
        assert!(
            units.len() >= 2,
            "durations of one magnitude only: {units:?}"
        );
    }

    #[test]
    fn text_lines_carry_their_entry_time_in_their_own_format() {
        let d = data(10_000, 1);
        // HDFS writes `yyMMdd HHmmss`.
        let e = d.stream(0);
        for k in [0, 3, e.len() - 1] {
            let text = chrono::DateTime::from_timestamp_nanos(e.timestamps[k])
                .format("%y%m%d %H%M%S")
                .to_string();
            assert!(e.line(k).starts_with(&text), "{} vs {text}", e.line(k));
        }
    }
}
