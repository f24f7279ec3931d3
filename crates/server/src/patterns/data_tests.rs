//! The miner on real data: the conformance data set's streams and loghub's logs. What a
//! Drilldown user relies on: each pattern, used as a `|>` filter, finds the lines it
//! counts; every mined line is counted once; familiar formats give few, readable patterns.

use std::time::{Duration, Instant};

use logql::ast::Expr;
use logql::pipeline::Pipeline;
use logql::{MemoryEntry, MemorySource};
use protocol::Labels;
use protocol::time::NANOS_PER_SECOND;

use super::{MAX_MINED_LINES, PatternSeries, Request, mine, series};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// One stream's lines with the `detected_level` the push path gives them.
fn stream(labels: Labels, lines: Vec<(i64, String)>) -> (MemorySource, Vec<(i64, String)>) {
    let mut src = MemorySource::new();
    src.push(
        labels.clone(),
        lines.iter().map(|(ts, line)| MemoryEntry {
            ts: *ts,
            line: line.clone(),
            metadata: vec![(
                "detected_level".into(),
                logql::detect::detected_level(&labels, &[], line).into_owned(),
            )],
        }),
    );
    (src, lines)
}

fn conformance_streams() -> Vec<(Labels, Vec<(i64, String)>)> {
    let text = std::fs::read_to_string(format!("{ROOT}/conformance/push.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    data["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels = Labels::from_pairs(
                s["stream"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
            );
            let lines = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    (
                        v[0].as_str().unwrap().parse::<i64>().unwrap(),
                        v[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (labels, lines)
        })
        .collect()
}

fn loghub(name: &str) -> (Labels, Vec<(i64, String)>) {
    let text = std::fs::read_to_string(format!("{ROOT}/loghub/{name}_2k.log")).unwrap();
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i as i64 * NANOS_PER_SECOND, l.to_string()))
        .collect();
    (Labels::from_pairs([("app", name)]), lines)
}

fn whole_range() -> Request {
    Request {
        matchers: Vec::new(),
        start: 0,
        end: i64::MAX / 2,
        step: 86_400 * NANOS_PER_SECOND,
    }
}

/// Mines one stream; the patterns with their totals, and the lines counted.
fn patterns_of(
    labels: Labels,
    lines: Vec<(i64, String)>,
) -> (Vec<PatternSeries>, u64, Vec<(i64, String)>) {
    let (src, lines) = stream(labels, lines);
    let r = whole_range();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mined = mine(&src, &r, lines.len() as u64, MAX_MINED_LINES, deadline).unwrap();
    let everything: u64 = mined.found.iter().map(|f| f.total).sum();
    assert_eq!(
        everything + mined.evicted_lines,
        mined.lines,
        "every mined line is in exactly one cluster"
    );
    (series(&r, mined), everything, lines)
}

fn total(p: &PatternSeries) -> i64 {
    p.samples.iter().map(|s| s[1]).sum()
}

/// How many of `lines` the `|>` filter of `pattern` keeps, through LogQL's own pipeline.
fn matching(pattern: &str, labels: &Labels, lines: &[(i64, String)]) -> i64 {
    let q = format!("{{a=\"b\"}} |> {}", protocol::quote::quote(pattern));
    let Ok(Expr::Log(l)) = logql::parse(&q) else {
        panic!("{pattern:?} is not a valid |> pattern");
    };
    let p = Pipeline::new(&l.pipeline, None).unwrap();
    let mut sp = p.for_stream(labels);
    lines
        .iter()
        .filter(|(ts, line)| {
            sp.process(*ts, line.as_bytes(), std::iter::empty())
                .is_some()
        })
        .count() as i64
}

fn check_filters(name: &str, labels: &Labels, found: &[PatternSeries], lines: &[(i64, String)]) {
    for p in found {
        let n = matching(&p.pattern, labels, lines);
        assert!(
            n >= total(p),
            "{name}: |> {:?} keeps {n} lines but counts {}",
            p.pattern,
            total(p)
        );
    }
}

#[test]
fn each_pattern_finds_the_lines_it_counts() {
    for (labels, lines) in conformance_streams() {
        let (found, _, lines) = patterns_of(labels.clone(), lines);
        assert!(!found.is_empty(), "{labels:?} has patterns");
        check_filters(&format!("{labels:?}"), &labels, &found, &lines);
    }
    for name in [
        "OpenSSH",
        "HDFS",
        "Zookeeper",
        "Apache",
        "Proxifier",
        "Hadoop",
        "Android",
    ] {
        let (labels, lines) = loghub(name);
        let (found, _, lines) = patterns_of(labels.clone(), lines);
        check_filters(name, &labels, &found, &lines);
    }
}

#[test]
fn nginx_access_logs_are_a_handful_of_patterns() {
    let (labels, lines) = conformance_streams()
        .into_iter()
        .find(|(l, _)| l.get("container") == Some("nginx"))
        .unwrap();
    let n = lines.len() as i64;
    let (found, counted, _) = patterns_of(labels, lines);
    assert_eq!(counted, n as u64, "every line has a pattern");
    assert!(found.len() <= 8, "{found:#?}");
    let shown: i64 = found.iter().map(total).sum();
    assert!(
        shown * 100 >= n * 98,
        "the patterns shown hold {shown} of {n} lines"
    );
    assert_eq!(
        found[0].pattern,
        r#"<_> - - [<_> +0000] "GET <_> HTTP/1.1" <_> <_> "-" "<_>" <_>"#
    );
    assert!(found.iter().all(|p| p.level == "unknown"));
}

#[test]
fn logfmt_json_and_text_read_like_their_messages() {
    let streams = conformance_streams();
    let of = |container: &str| {
        let (labels, lines) = streams
            .iter()
            .find(|(l, _)| l.get("container") == Some(container))
            .unwrap()
            .clone();
        patterns_of(labels, lines).0
    };
    let worker = of("worker");
    assert!(
        worker.iter().any(|p| p.level == "info"
            && p.pattern
                == r#"ts=<_> level=info caller=<_> msg="retrying job" queue=<_> attempt=<_> duration=<_> size=<_>"#),
        "{worker:#?}"
    );
    // JSON lines are mined by their `msg`, one pattern per message and level.
    let api = of("api");
    assert!(
        api.iter()
            .any(|p| p.pattern == "<_>cache miss<_>" && p.level == "error")
    );
    let postgres = of("postgres");
    assert_eq!(
        postgres[0].pattern,
        "2026-11-20 <_> UTC [<_>] LOG:  duration: <_> ms  statement: SELECT * FROM orders WHERE id = <_>"
    );
    // 2,000 sshd lines with varying times, pids, users, addresses and ports: a handful of
    // patterns that hold nearly all of them.
    let (labels, lines) = loghub("OpenSSH");
    let n = lines.len() as i64;
    let ssh = patterns_of(labels, lines).0;
    for want in [
        "Dec 10 <_> LabSZ sshd[<_>]: Failed password for <_> from <_> port <_> ssh2",
        "Dec 10 <_> LabSZ sshd[<_>]: Failed password for invalid user <_> from <_> port <_> ssh2",
        "Dec 10 <_> LabSZ sshd[<_>]: Invalid user <_> from <_>",
        "Dec 10 <_> LabSZ sshd[<_>]: Received disconnect from <_> 11: Bye Bye [preauth]",
    ] {
        assert!(
            ssh.iter().any(|p| p.pattern == want),
            "{want:?} in {ssh:#?}"
        );
    }
    assert!(ssh.len() <= 15, "{} patterns: {ssh:#?}", ssh.len());
    let shown: i64 = ssh.iter().map(total).sum();
    assert!(
        shown * 100 >= n * 95,
        "the patterns shown hold {shown} of {n} lines"
    );
}

#[test]
fn sampled_counts_stay_close() {
    let (labels, lines) = loghub("HDFS");
    let (src, lines) = stream(labels, lines);
    let n = lines.len() as u64;
    let r = whole_range();
    let deadline = Instant::now() + Duration::from_secs(60);
    let exact = series(&r, mine(&src, &r, n, MAX_MINED_LINES, deadline).unwrap());
    let sampled_mined = mine(&src, &r, n, 500, deadline).unwrap();
    assert_eq!(sampled_mined.every, 4);
    assert_eq!(sampled_mined.lines, n, "each mined line stands for 4");
    let sampled = series(&r, sampled_mined);
    // The same patterns are found, with counts within the noise of a 1-in-4 sample: four
    // binomial standard deviations of the sampled count, scaled back up.
    for p in exact.iter().filter(|p| total(p) >= 30) {
        let s = sampled
            .iter()
            .find(|s| s.pattern == p.pattern && s.level == p.level)
            .unwrap_or_else(|| panic!("{:?} not found when sampling: {sampled:#?}", p.pattern));
        let (e, s) = (total(p) as f64, total(s) as f64);
        let share = e / n as f64;
        let sigma = 4.0 * ((n / 4) as f64 * share * (1.0 - share)).sqrt();
        assert!(
            (e - s).abs() <= 4.0 * sigma,
            "{}: {e} exact, {s} sampled (sigma {sigma})",
            p.pattern
        );
    }
}
