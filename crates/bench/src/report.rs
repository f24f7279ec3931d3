//! The report: a table of kiroku's figures beside the targets and the figures Loki 3.7.6
//! and VictoriaLogs 1.26 reached on the same kind of data (from the issue), or JSON.

use std::time::Duration;

use crate::queries::Timing;

/// What the ingest measured.
#[derive(Debug, Clone)]
pub struct Ingest {
    pub lines: usize,
    pub streams: usize,
    pub raw_bytes: u64,
    pub body_bytes: u64,
    pub requests: usize,
    pub retries: usize,
    pub clients: usize,
    pub ready: Duration,
    pub idle_rss: u64,
    pub push_time: Duration,
    pub flush_time: Duration,
    /// Server CPU time while pushing, and while pushing and flushing.
    pub cpu_push_s: f64,
    pub cpu_s: f64,
    pub peak_rss: u64,
    pub disk_bytes: u64,
}

impl Ingest {
    pub fn cpu_per_million(&self) -> f64 {
        self.cpu_s / (self.lines as f64 / 1e6)
    }
    pub fn lines_per_s(&self) -> f64 {
        self.lines as f64 / (self.push_time + self.flush_time).as_secs_f64()
    }
    pub fn bytes_per_line(&self) -> f64 {
        self.disk_bytes as f64 / self.lines as f64
    }
}

pub struct Report {
    pub ingest: Option<Ingest>,
    pub queries: Vec<Timing>,
    /// The server's peak RSS over the whole run, queries included.
    pub peak_rss_end: u64,
    /// The flags the server ran with that shape the figures (`--fsync`, retention).
    pub server_flags: Vec<String>,
    /// Where the data set was kept, when it was.
    pub data_dir: Option<std::path::PathBuf>,
    /// `kiroku bench query` on a kept data set: the server's start on it.
    pub reopened: Option<Reopened>,
}

/// A server started on the data set an earlier run left.
#[derive(Debug, Clone, Copy)]
pub struct Reopened {
    /// From spawning to the first 200 from `/ready`.
    pub ready: Duration,
    /// RSS a second after ready, before any query.
    pub idle_rss: u64,
}

/// Target, Loki's and VictoriaLogs' figure for each query (seconds).
fn query_refs(name: &str) -> (Option<f64>, Option<f64>, Option<f64>) {
    match name {
        "needle" => (Some(0.003), Some(0.847), Some(0.0038)),
        "rate-all" => (None, Some(2.06), Some(0.014)),
        "json-level-count" => (None, Some(0.11), Some(0.021)),
        "json-status-filter" => (None, Some(0.10), Some(0.047)),
        "logfmt-p99" => (None, Some(0.19), Some(0.10)),
        "topk-bytes" => (None, Some(3.55), Some(0.14)),
        "regex-ci-count" => (None, Some(0.34), Some(1.01)),
        _ => (None, None, None),
    }
}

const MIB: f64 = 1048576.0;

impl Report {
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.json());
        } else {
            print!("{}", self.table());
        }
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "server: kiroku server {}\n",
            self.server_flags.join(" ")
        ));
        if let Some(d) = &self.data_dir {
            s.push_str(&format!("data:   {}\n", d.display()));
        }
        let mut row = |a: &str, b: String, c: &str, d: &str, e: &str| {
            s.push_str(&format!("{a:<34} {b:>14} {c:>10} {d:>10} {e:>10}\n"));
        };
        row("", "kiroku".into(), "target", "Loki", "VictoriaL");
        if let Some(i) = &self.ingest {
            row(
                &format!("lines ({} streams)", i.streams),
                i.lines.to_string(),
                "",
                "",
                "",
            );
            row(
                "raw bytes per line",
                format!("{:.1}", i.raw_bytes as f64 / i.lines as f64),
                "",
                "142",
                "142",
            );
            row(
                &format!("push: {} clients, requests", i.clients),
                format!("{} ({} retried)", i.requests, i.retries),
                "",
                "",
                "",
            );
            row(
                "ready after start (s)",
                format!("{:.3}", i.ready.as_secs_f64()),
                "0.1",
                "15.6",
                "",
            );
            row(
                "idle RSS (MiB)",
                format!("{:.1}", i.idle_rss as f64 / MIB),
                "16",
                "",
                "",
            );
            row(
                "lines/s (push + flush)",
                format!("{:.0}", i.lines_per_s()),
                "",
                "",
                "",
            );
            row(
                "push / flush time (s)",
                format!(
                    "{:.2} / {:.2}",
                    i.push_time.as_secs_f64(),
                    i.flush_time.as_secs_f64()
                ),
                "",
                "",
                "",
            );
            row(
                "server CPU-s per million lines",
                format!("{:.2}", i.cpu_per_million()),
                "1.0",
                "4.9",
                "4.4",
            );
            row(
                "server CPU-s: push / flush",
                format!("{:.2} / {:.2}", i.cpu_push_s, i.cpu_s - i.cpu_push_s),
                "",
                "",
                "",
            );
            row(
                "bytes on disk per line",
                format!("{:.1}", i.bytes_per_line()),
                "24",
                "40",
                "32",
            );
            row(
                "peak RSS during ingest (MiB)",
                format!("{:.1}", i.peak_rss as f64 / MIB),
                "128",
                "631",
                "380",
            );
        }
        if let Some(r) = &self.reopened {
            row(
                "ready, started on the data (s)",
                format!("{:.3}", r.ready.as_secs_f64()),
                "0.1",
                "15.6",
                "",
            );
            row(
                "idle RSS on the data (MiB)",
                format!("{:.1}", r.idle_rss as f64 / MIB),
                "16",
                "",
                "",
            );
        }
        if self.peak_rss_end > 0 {
            row(
                "peak RSS incl. queries (MiB)",
                format!("{:.1}", self.peak_rss_end as f64 / MIB),
                "",
                "",
                "",
            );
        }
        let secs = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x}"));
        for t in &self.queries {
            let (target, loki, vl) = query_refs(t.query.name);
            let target = target.or_else(|| match (loki, vl) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            });
            row(
                &format!("{} (s, median)", t.query.name),
                format!("{:.4}", t.median().as_secs_f64()),
                &secs(target),
                &secs(loki),
                &secs(vl),
            );
            row(
                &format!("  min / max, {} results", t.results),
                format!(
                    "{:.4} / {:.4}",
                    t.min().as_secs_f64(),
                    t.max().as_secs_f64()
                ),
                "",
                "",
                "",
            );
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "server_flags": self.server_flags });
        if let Some(d) = &self.data_dir {
            v["data_dir"] = d.display().to_string().into();
        }
        if let Some(i) = &self.ingest {
            v["ingest"] = serde_json::json!({
                "lines": i.lines,
                "streams": i.streams,
                "raw_bytes": i.raw_bytes,
                "raw_bytes_per_line": i.raw_bytes as f64 / i.lines as f64,
                "request_body_bytes": i.body_bytes,
                "requests": i.requests,
                "retries": i.retries,
                "clients": i.clients,
                "ready_s": i.ready.as_secs_f64(),
                "idle_rss_bytes": i.idle_rss,
                "push_s": i.push_time.as_secs_f64(),
                "flush_s": i.flush_time.as_secs_f64(),
                "lines_per_s": i.lines_per_s(),
                "cpu_s": i.cpu_s,
                "cpu_push_s": i.cpu_push_s,
                "cpu_s_per_million_lines": i.cpu_per_million(),
                "peak_rss_bytes": i.peak_rss,
                "disk_bytes": i.disk_bytes,
                "disk_bytes_per_line": i.bytes_per_line(),
            });
        }
        if let Some(r) = &self.reopened {
            v["reopened"] = serde_json::json!({
                "ready_s": r.ready.as_secs_f64(),
                "idle_rss_bytes": r.idle_rss,
            });
        }
        v["peak_rss_bytes_incl_queries"] = self.peak_rss_end.into();
        v["queries"] = self
            .queries
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.query.name,
                    "query": t.query.logql,
                    "over": t.query.over,
                    "results": t.results,
                    "median_s": t.median().as_secs_f64(),
                    "min_s": t.min().as_secs_f64(),
                    "max_s": t.max().as_secs_f64(),
                    "runs_s": t.runs.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>()
            .into();
        v
    }
}
