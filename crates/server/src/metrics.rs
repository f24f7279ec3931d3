//! The server's own figures in Prometheus' text format, for `GET /metrics`.
//!
//! Few enough series that a mutex per update is cheaper than a metrics library: requests
//! by route and status with a latency histogram, lines and bytes received per tenant, and
//! lines and bytes rejected per tenant and reason (Loki's `discarded_samples_total`
//! reasons). Every update is one lock of a small map, once per request, never per line.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Latency buckets in seconds (Prometheus' defaults, plus the query timeout range).
const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Latency {
    count: u64,
    sum: f64,
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
}

#[derive(Default, Clone, Copy)]
struct Volume {
    lines: u64,
    bytes: u64,
}

pub struct Metrics {
    started: Instant,
    start_unix: f64,
    requests: Mutex<BTreeMap<(String, u16), Latency>>,
    received: Mutex<BTreeMap<String, Volume>>,
    discarded: Mutex<BTreeMap<(String, &'static str), Volume>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let start_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Metrics {
            started: Instant::now(),
            start_unix,
            requests: Mutex::default(),
            received: Mutex::default(),
            discarded: Mutex::default(),
        }
    }

    pub fn observe_request(&self, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        let mut m = self.requests.lock();
        let l = match m.get_mut(&(route.to_string(), status)) {
            Some(l) => l,
            None => m.entry((route.to_string(), status)).or_default(),
        };
        l.count += 1;
        l.sum += secs;
        l.buckets[slot] += 1;
    }

    pub fn received(&self, tenant: &str, lines: u64, bytes: u64) {
        if lines == 0 {
            return;
        }
        let mut m = self.received.lock();
        let v = match m.get_mut(tenant) {
            Some(v) => v,
            None => m.entry(tenant.to_string()).or_default(),
        };
        v.lines += lines;
        v.bytes += bytes;
    }

    pub fn discarded(&self, tenant: &str, reason: &'static str, lines: u64, bytes: u64) {
        let mut m = self.discarded.lock();
        let v = m.entry((tenant.to_string(), reason)).or_default();
        v.lines += lines;
        v.bytes += bytes;
    }

    /// Lines discarded so far for a reason, all tenants: for tests and logs.
    pub fn discarded_lines(&self, reason: &str) -> u64 {
        self.discarded
            .lock()
            .iter()
            .filter(|((_, r), _)| *r == reason)
            .map(|(_, v)| v.lines)
            .sum()
    }

    /// Writes every figure. `extra` appends families from other parts (the store).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "kiroku_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status.",
        );
        let requests = self.requests.lock();
        for ((route, status), l) in requests.iter() {
            let _ = writeln!(
                out,
                "kiroku_http_requests_total{{route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                l.count
            );
        }
        family(
            &mut out,
            "kiroku_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by route and status.",
        );
        for ((route, status), l) in requests.iter() {
            let labels = format!("route=\"{}\",status=\"{status}\"", escape(route));
            let mut cum = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cum += l.buckets[i];
                let _ = writeln!(
                    out,
                    "kiroku_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cum}"
                );
            }
            cum += l.buckets[BUCKETS.len()];
            let _ = writeln!(
                out,
                "kiroku_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cum}"
            );
            let _ = writeln!(
                out,
                "kiroku_http_request_duration_seconds_sum{{{labels}}} {}",
                l.sum
            );
            let _ = writeln!(
                out,
                "kiroku_http_request_duration_seconds_count{{{labels}}} {}",
                l.count
            );
        }
        drop(requests);

        let received = self.received.lock();
        family(
            &mut out,
            "kiroku_ingest_lines_received_total",
            "counter",
            "Log lines accepted and stored, by tenant.",
        );
        for (t, v) in received.iter() {
            let _ = writeln!(
                out,
                "kiroku_ingest_lines_received_total{{tenant=\"{}\"}} {}",
                escape(t),
                v.lines
            );
        }
        family(
            &mut out,
            "kiroku_ingest_bytes_received_total",
            "counter",
            "Bytes of log lines accepted and stored, by tenant.",
        );
        for (t, v) in received.iter() {
            let _ = writeln!(
                out,
                "kiroku_ingest_bytes_received_total{{tenant=\"{}\"}} {}",
                escape(t),
                v.bytes
            );
        }
        drop(received);

        let discarded = self.discarded.lock();
        family(
            &mut out,
            "kiroku_ingest_lines_discarded_total",
            "counter",
            "Log lines rejected, by tenant and reason (Loki's reasons).",
        );
        for ((t, r), v) in discarded.iter() {
            let _ = writeln!(
                out,
                "kiroku_ingest_lines_discarded_total{{tenant=\"{}\",reason=\"{r}\"}} {}",
                escape(t),
                v.lines
            );
        }
        family(
            &mut out,
            "kiroku_ingest_bytes_discarded_total",
            "counter",
            "Bytes of log lines rejected, by tenant and reason.",
        );
        for ((t, r), v) in discarded.iter() {
            let _ = writeln!(
                out,
                "kiroku_ingest_bytes_discarded_total{{tenant=\"{}\",reason=\"{r}\"}} {}",
                escape(t),
                v.bytes
            );
        }
        drop(discarded);

        family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", self.start_unix);
        family(
            &mut out,
            "kiroku_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        let _ = writeln!(
            out,
            "kiroku_uptime_seconds {}",
            self.started.elapsed().as_secs_f64()
        );
        if let Some(rss) = resident_bytes() {
            family(
                &mut out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out.push_str(extra);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident set size from `/proc/self/status` (Linux); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.observe_request("/loki/api/v1/push", 204, Duration::from_millis(3));
        m.observe_request("/loki/api/v1/push", 204, Duration::from_millis(300));
        m.received("fake", 10, 1000);
        m.discarded("fake", "line_too_long", 1, 300000);
        let t = m.render("");
        assert!(
            t.contains("kiroku_http_requests_total{route=\"/loki/api/v1/push\",status=\"204\"} 2"),
            "{t}"
        );
        assert!(t.contains("kiroku_http_request_duration_seconds_bucket{route=\"/loki/api/v1/push\",status=\"204\",le=\"0.005\"} 1"), "{t}");
        assert!(t.contains("le=\"+Inf\"} 2"), "{t}");
        assert!(
            t.contains("kiroku_ingest_lines_received_total{tenant=\"fake\"} 10"),
            "{t}"
        );
        assert!(
            t.contains(
                "kiroku_ingest_lines_discarded_total{tenant=\"fake\",reason=\"line_too_long\"} 1"
            ),
            "{t}"
        );
        assert_eq!(m.discarded_lines("line_too_long"), 1);
    }
}
