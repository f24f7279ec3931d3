//! Aligned text tables, and the samples of metric queries as tables or JSON lines.
//!
//! A metric answer becomes one row per sample with a column per label name, so that
//! `sum by (pod) (rate(...))` reads like `kubectl get`: `TIME  pod  VALUE`.

use std::io::{self, Write};

use protocol::Labels;
use protocol::response::{Point, QueryResult};
use protocol::time::format_sample_value;
use serde::Serialize;

use crate::output::{Precision, Timezone, format_time};

/// Rows of cells printed in columns two spaces apart; the last column is not padded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut line = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            line.clear();
            for (i, c) in r.iter().enumerate().take(n) {
                line.push_str(c);
                if i + 1 < n {
                    let pad = widths[i] - c.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.write_all(line.trim_end().as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

/// The samples of a metric answer as a table; `None` for log answers.
pub fn samples_table(result: &QueryResult, tz: Timezone) -> Option<Table> {
    let t = |p: &Point| format_time(p.t_ms.saturating_mul(1_000_000), tz, Precision::Millis);
    let names = |metrics: &mut dyn Iterator<Item = &Labels>| {
        let mut names: Vec<String> = metrics
            .flat_map(|m| m.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let cells = |names: &[String], m: &Labels| -> Vec<String> {
        names
            .iter()
            .map(|n| m.get(n).unwrap_or_default().to_string())
            .collect()
    };
    let table = match result {
        QueryResult::Streams(_) => return None,
        QueryResult::Matrix(series) => {
            let names = names(&mut series.iter().map(|s| &s.metric));
            let mut rows = Vec::new();
            for s in series {
                let labels = cells(&names, &s.metric);
                for p in &s.values {
                    let mut r = Vec::with_capacity(names.len() + 2);
                    r.push(t(p));
                    r.extend(labels.iter().cloned());
                    r.push(format_sample_value(p.v));
                    rows.push(r);
                }
            }
            Table {
                header: header(Some("TIME"), names),
                rows,
            }
        }
        QueryResult::Vector(samples) => {
            let names = names(&mut samples.iter().map(|s| &s.metric));
            let rows = samples
                .iter()
                .map(|s| {
                    let mut r = cells(&names, &s.metric);
                    r.push(format_sample_value(s.point.v));
                    r
                })
                .collect();
            Table {
                header: header(None, names),
                rows,
            }
        }
        QueryResult::Scalar(p) => Table {
            header: header(Some("TIME"), Vec::new()),
            rows: vec![vec![t(p), format_sample_value(p.v)]],
        },
    };
    Some(table)
}

fn header(time: Option<&str>, names: Vec<String>) -> Vec<String> {
    time.map(str::to_string)
        .into_iter()
        .chain(names)
        .chain(["VALUE".to_string()])
        .collect()
}

/// One sample of `--output jsonl`. Finite values are numbers; NaN and ±Inf, which JSON
/// numbers cannot hold, are Loki's strings `"NaN"`, `"+Inf"`, `"-Inf"`.
#[derive(Serialize)]
struct JsonSample<'a> {
    metric: &'a Labels,
    timestamp: String,
    value: serde_json::Value,
}

pub fn write_samples_jsonl(
    out: &mut impl Write,
    result: &QueryResult,
    tz: Timezone,
) -> io::Result<()> {
    let empty = Labels::new();
    let mut one = |m: &Labels, p: &Point| -> io::Result<()> {
        let value = serde_json::Number::from_f64(p.v)
            .map(serde_json::Value::Number)
            .unwrap_or_else(|| serde_json::Value::String(format_sample_value(p.v)));
        let s = JsonSample {
            metric: m,
            timestamp: format_time(p.t_ms.saturating_mul(1_000_000), tz, Precision::Exact),
            value,
        };
        serde_json::to_writer(&mut *out, &s).map_err(io::Error::other)?;
        out.write_all(b"\n")
    };
    match result {
        QueryResult::Streams(_) => {}
        QueryResult::Matrix(series) => {
            for s in series {
                for p in &s.values {
                    one(&s.metric, p)?;
                }
            }
        }
        QueryResult::Vector(samples) => {
            for s in samples {
                one(&s.metric, &s.point)?;
            }
        }
        QueryResult::Scalar(p) => one(&empty, p)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::response::QueryResponse;

    /// A `sum by (...)` answer in Loki's shape: a label missing from one series, a
    /// fractional timestamp, a NaN.
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"level":"error"},"values":[[1795168800,"2"],[1795169100.5,"0.25"]]},
        {"metric":{"level":"info","pod":"api-1"},"values":[[1795168800,"NaN"]]}]}}"#;

    #[test]
    fn matrix_reads_as_a_table() {
        let r: QueryResponse = serde_json::from_str(MATRIX).unwrap();
        let t = samples_table(&r.result, Timezone::Utc).unwrap();
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TIME                      level  pod    VALUE\n\
             2026-11-20T10:00:00.000Z  error         2\n\
             2026-11-20T10:05:00.500Z  error         0.25\n\
             2026-11-20T10:00:00.000Z  info   api-1  NaN\n"
        );
    }

    #[test]
    fn vector_and_scalar() {
        let r: QueryResponse = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"app":"api"},"value":[1795168800,"12"]}]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        samples_table(&r.result, Timezone::Utc)
            .unwrap()
            .write(&mut out)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "app  VALUE\napi  12\n");
        let r: QueryResponse = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1795168800,"3.5"]}}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        samples_table(&r.result, Timezone::Utc)
            .unwrap()
            .write(&mut out)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "TIME                      VALUE\n2026-11-20T10:00:00.000Z  3.5\n"
        );
    }

    #[test]
    fn jsonl_samples() {
        let r: QueryResponse = serde_json::from_str(MATRIX).unwrap();
        let mut out = Vec::new();
        write_samples_jsonl(&mut out, &r.result, Timezone::Utc).unwrap();
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            r#"{"metric":{"level":"error"},"timestamp":"2026-11-20T10:00:00Z","value":2.0}"#
        );
        assert_eq!(
            lines[2],
            r#"{"metric":{"level":"info","pod":"api-1"},"timestamp":"2026-11-20T10:00:00Z","value":"NaN"}"#
        );
    }
}
