//! Grafana against the real binary: the requests Grafana's Loki data source and Logs
//! Drilldown send, in the order they send them, with their parameter formats (Go's and
//! the browser's query encoding with `+` for spaces, nanosecond times from the data
//! source's backend, ISO-8601 times from Drilldown's resource calls, `step` as `<n>ms` or
//! a Grafana interval), each answer checked for the shape and values Grafana reads.
//!
//! The data: 2,000 lines of a real sshd log (loghub's OpenSSH sample) and 600 logfmt
//! lines of an API service, one second apart from 2026-11-20T10:00:00Z.

mod common;

use common::{Response, Server, encode_form};
use serde_json::{Value, json};

const T0: i64 = 1_795_168_800; // 2026-11-20T10:00:00Z
const NS: i64 = 1_000_000_000;
const API_LINES: usize = 600;
/// The minute every API line falls in: [T0, T0 + 40 min) covers both streams.
const START_ISO: &str = "2026-11-20T10:00:00.000Z";
const END_ISO: &str = "2026-11-20T10:40:00.000Z";

fn ssh_lines() -> Vec<&'static str> {
    include_str!("../../../testdata/loghub/OpenSSH_2k.log")
        .lines()
        .collect()
}

/// The API's lines: level, method, path, status and duration cycle through fixed values.
fn api_line(i: usize) -> (String, &'static str) {
    let level = ["info", "info", "info", "warn", "error"][i % 5];
    let method = ["GET", "POST", "GET"][i % 3];
    let path = ["/api/orders", "/api/users", "/healthz", "/api/cart"][i % 4];
    let status = match level {
        "error" => 500,
        "warn" => 429,
        _ => 200,
    };
    (
        format!(
            "level={level} msg=\"request done\" method={method} path={path} status={status} duration={}ms",
            5 + i % 50
        ),
        level,
    )
}

fn push_data(srv: &Server) {
    let ssh: Vec<Value> = ssh_lines()
        .iter()
        .enumerate()
        .map(|(i, l)| json!([((T0 + i as i64) * NS).to_string(), l]))
        .collect();
    let api: Vec<Value> = (0..API_LINES)
        .map(|i| json!([((T0 + i as i64) * NS).to_string(), api_line(i).0]))
        .collect();
    let body = json!({"streams": [
        {"stream": {"app": "sshd", "namespace": "auth", "host": "labsz"}, "values": ssh},
        {"stream": {"app": "api", "namespace": "shop"}, "values": api},
    ]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 204, "{}", r.text());
}

/// A GET as Grafana's backend sends it (resource calls included), with its headers.
fn grafana_get(srv: &Server, path: &str, params: &[(&str, &str)], tags: &str) -> Response {
    let url = if params.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", encode_form(params))
    };
    srv.request(
        "GET",
        &url,
        &[
            ("User-Agent", "Grafana/12.2.0"),
            ("X-Query-Tags", tags),
            ("Accept-Encoding", "identity"),
        ],
        b"",
    )
}

fn ok_json(r: &Response, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{what}: content type {ct}"
    );
    r.json()
}

fn ns(secs: i64) -> String {
    (secs * NS).to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn grafana_and_logs_drilldown_sessions() {
    let srv = Server::start(&["--retention", "0", "--max-query-series", "250"]);
    push_data(&srv);
    let ssh = ssh_lines();
    let (start, end) = (ns(T0), ns(T0 + 2400));

    // --- Adding the data source: version detection, then "Save & test".
    let v = ok_json(
        &grafana_get(&srv, "/loki/api/v1/status/buildinfo", &[], "Source=grafana"),
        "buildinfo",
    );
    let version = v["version"].as_str().unwrap();
    assert!(
        version.starts_with("3."),
        "Grafana reads a Loki 3 version: {v}"
    );

    let r = grafana_get(
        &srv,
        "/loki/api/v1/query",
        &[
            ("direction", "backward"),
            ("limit", "1000"),
            ("query", "vector(1)+vector(1)"),
            ("time", "4000000000"),
        ],
        "",
    );
    let v = ok_json(&r, "save & test");
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    // Grafana means 4 s in nanoseconds; Loki reads a number of at most 10 digits as
    // seconds, and Grafana only checks the value.
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [4_000_000_000i64, "2"]}]),
        "one sample of 2: {v}"
    );

    // --- Explore's label browser: names, then values, then values under a selector.
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/labels",
            &[("start", &start), ("end", &end)],
            "",
        ),
        "labels",
    );
    assert_eq!(v["status"], "success");
    let names = strings(&v["data"]);
    for n in ["app", "host", "namespace", "service_name"] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "label names are sorted");
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/label/app/values",
            &[("start", &start), ("end", &end)],
            "",
        ),
        "label values",
    );
    assert_eq!(strings(&v["data"]), ["api", "sshd"]);
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/label/app/values",
            &[
                ("start", &start),
                ("end", &end),
                ("query", r#"{namespace="shop"}"#),
            ],
            "",
        ),
        "label values under a selector",
    );
    assert_eq!(strings(&v["data"]), ["api"]);

    // --- Explore runs a log query: the size hint, the logs volume histogram, the lines.
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/index/stats",
            &[
                ("query", r#"{app="api"}"#),
                ("start", &start),
                ("end", &end),
            ],
            "",
        ),
        "index/stats",
    );
    assert_eq!(v["streams"], 1, "{v}");
    assert_eq!(v["entries"], API_LINES, "{v}");
    assert!(v["bytes"].as_u64().unwrap() > 0, "{v}");
    let r = grafana_get(
        &srv,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward"),
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({app="api"} | drop __error__ [1m]))"#,
            ),
            ("start", &start),
            ("end", &end),
            ("step", "60000ms"),
        ],
        "Source=logvolhist",
    );
    let v = ok_json(&r, "logs volume");
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    let mut per_level: Vec<(String, i64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let total = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = p[0].as_i64().unwrap();
                    assert_eq!(t % 60, 0, "points on the step: {p}");
                    p[1].as_str().unwrap().parse::<f64>().unwrap() as i64
                })
                .sum::<i64>();
            (
                s["metric"]["detected_level"].as_str().unwrap().to_string(),
                total,
            )
        })
        .collect();
    per_level.sort();
    // Each line counts once per one-minute window it falls in: windows end on the step,
    // and the 600 lines span 10 whole minutes.
    assert_eq!(
        per_level,
        [
            ("error".to_string(), 120),
            ("info".to_string(), 360),
            ("warn".to_string(), 120)
        ],
        "{v}"
    );

    // With a parser in the query, `level` comes from the line as well.
    let r = grafana_get(
        &srv,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward"),
            (
                "query",
                r#"sum by (level, detected_level) (count_over_time({app="api"} | logfmt | drop __error__ [1m]))"#,
            ),
            ("start", &start),
            ("end", &end),
            ("step", "60000ms"),
        ],
        "Source=logvolhist",
    );
    let v = ok_json(&r, "logs volume with a parser");
    let mut metrics: Vec<String> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"].to_string())
        .collect();
    metrics.sort();
    assert_eq!(
        metrics,
        [
            r#"{"detected_level":"error","level":"error"}"#,
            r#"{"detected_level":"info","level":"info"}"#,
            r#"{"detected_level":"warn","level":"warn"}"#,
        ],
        "{v}"
    );

    let r = grafana_get(
        &srv,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward"),
            ("limit", "1000"),
            ("query", r#"{app="sshd"} |= "Failed password""#),
            ("start", &start),
            ("end", &end),
            ("step", "2000ms"),
        ],
        "Source=logsample",
    );
    let v = ok_json(&r, "log lines");
    assert_eq!(v["data"]["resultType"], "streams");
    let mut entries: Vec<(i64, String)> = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        assert_eq!(s["stream"]["app"], "sshd");
        assert_eq!(s["stream"]["service_name"], "sshd");
        for e in s["values"].as_array().unwrap() {
            let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
            entries.push((ts, e[1].as_str().unwrap().to_string()));
        }
    }
    let want: Vec<(i64, String)> = ssh
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("Failed password"))
        .map(|(i, l)| ((T0 + i as i64) * NS, l.to_string()))
        .rev()
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    assert_eq!(entries.len(), want.len());
    assert_eq!(entries, want, "every matching line, newest first");

    // --- Logs Drilldown opens: its limits, then the services (index volume), ISO times.
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/drilldown-limits",
            &[],
            "Source=grafana-lokiexplore-app",
        ),
        "drilldown-limits",
    );
    assert_eq!(
        v["pattern_ingester_enabled"], true,
        "the Patterns tab shows"
    );
    assert_eq!(v["version"], version, "the same version as buildinfo");
    let l = &v["limits"];
    assert_eq!(l["max_query_series"], 250, "the configured value");
    assert_eq!(l["max_entries_limit_per_query"], 5000);
    assert_eq!(
        l["retention_period"], "0s",
        "--retention 0 keeps everything"
    );
    assert_eq!(l["max_query_length"], "30d1h");
    assert_eq!(l["query_timeout"], "1m");
    assert_eq!(l["volume_enabled"], true);
    assert_eq!(l["discover_log_levels"], true);
    assert!(strings(&l["discover_service_name"]).contains(&"app".to_string()));
    assert!(strings(&l["log_level_fields"]).contains(&"level".to_string()));
    for k in [
        "max_line_size_truncate",
        "metric_aggregation_enabled",
        "pattern_persistence_enabled",
    ] {
        assert!(l[k].is_boolean(), "{k}: {l}");
    }

    let volume_params = [
        ("query", r#"{service_name=~".+"}"#),
        ("start", START_ISO),
        ("end", END_ISO),
        ("limit", "5000"),
    ];
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/index/volume",
            &volume_params,
            "Source=grafana-lokiexplore-app",
        ),
        "index/volume",
    );
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    let services: Vec<(String, f64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["metric"].as_object().unwrap().len(), 1, "{s}");
            (
                s["metric"]["service_name"].as_str().unwrap().to_string(),
                s["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["sshd", "api"], "biggest first: {v}");
    assert!(services.iter().all(|(_, b)| *b > 0.0));

    let mut range_params = volume_params.to_vec();
    range_params.push(("step", "600"));
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/index/volume_range",
            &range_params,
            "Source=grafana-lokiexplore-app",
        ),
        "index/volume_range",
    );
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    for s in series {
        for p in s["values"].as_array().unwrap() {
            let t = p[0].as_f64().unwrap_or_else(|| panic!("{p}"));
            assert!(
                (T0 as f64..=(T0 + 2400) as f64).contains(&t),
                "{p} within the range"
            );
        }
    }

    // --- A service page: its labels, its fields, the values of one field, its patterns.
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/detected_labels",
            &[
                ("query", r#"{service_name="sshd"}"#),
                ("start", START_ISO),
                ("end", END_ISO),
            ],
            "Source=grafana-lokiexplore-app",
        ),
        "detected_labels",
    );
    let labels: Vec<(String, i64)> = v["detectedLabels"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|l| {
            (
                l["label"].as_str().unwrap().to_string(),
                l["cardinality"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(labels.contains(&("namespace".into(), 1)), "{v}");
    assert!(labels.contains(&("host".into(), 1)), "{v}");
    // Drilldown's landing page asks with the empty selector `{}` written as ``.
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/detected_labels",
            &[("query", ""), ("start", START_ISO), ("end", END_ISO)],
            "Source=grafana-lokiexplore-app",
        ),
        "detected_labels without a selector",
    );
    let all: Vec<&str> = v["detectedLabels"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|l| l["label"].as_str().unwrap())
        .collect();
    assert!(all.contains(&"namespace"), "{v}");

    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/detected_fields",
            &[
                ("query", r#"{service_name="api"}"#),
                ("start", START_ISO),
                ("end", END_ISO),
            ],
            "Source=grafana-lokiexplore-app",
        ),
        "detected_fields",
    );
    let fields = v["fields"].as_array().unwrap_or_else(|| panic!("{v}"));
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["label"] == name)
            .unwrap_or_else(|| panic!("{name} in {v}"))
    };
    assert_eq!(field("method")["type"], "string");
    assert_eq!(field("method")["cardinality"], 2);
    assert_eq!(field("method")["parsers"], json!(["logfmt"]));
    assert_eq!(field("status")["type"], "int");
    assert_eq!(field("duration")["type"], "duration");
    assert_eq!(field("path")["cardinality"], 4);

    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/detected_field/path/values",
            &[
                ("query", r#"{service_name="api"}"#),
                ("start", START_ISO),
                ("end", END_ISO),
            ],
            "Source=grafana-lokiexplore-app",
        ),
        "detected_field values",
    );
    let mut paths = strings(&v["values"]);
    paths.sort();
    assert_eq!(
        paths,
        ["/api/cart", "/api/orders", "/api/users", "/healthz"]
    );

    patterns_tab(&srv);

    // --- The query editor's "Format query".
    let v = ok_json(
        &grafana_get(
            &srv,
            "/loki/api/v1/format_query",
            &[(
                "query",
                r#"sum(rate({app="api"}|="error"[5m]))by(namespace)"#,
            )],
            "",
        ),
        "format_query",
    );
    assert_eq!(v["status"], "success");
    let formatted = v["data"].as_str().unwrap();
    assert!(
        formatted.contains(r#"{app="api"} |= "error""#) && formatted.contains("[5m]"),
        "{formatted}"
    );
}

/// Drilldown's Patterns tab: the patterns of a service over the range at a Grafana
/// interval, then a pattern included as a `|>` filter, as the tab builds it.
fn patterns_tab(srv: &Server) {
    let ssh = ssh_lines();
    let params = [
        ("query", r#"{service_name="sshd"}"#),
        ("start", START_ISO),
        ("end", END_ISO),
        ("step", "1m"),
    ];
    let r = grafana_get(
        srv,
        "/loki/api/v1/patterns",
        &params,
        "Source=grafana-lokiexplore-app",
    );
    let v = ok_json(&r, "patterns");
    assert_eq!(v["status"], "success");
    let data = v["data"].as_array().unwrap();
    assert!(
        (3..=15).contains(&data.len()),
        "2,000 sshd lines are a handful of patterns: {v}"
    );
    let mut counted = 0;
    let mut last_total = i64::MAX;
    for p in data {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "pattern, level, samples: {p}");
        assert!(p["pattern"].as_str().unwrap().contains("<_>"), "{p}");
        assert!(
            ["unknown", "error", "info", "warn", "debug"].contains(&p["level"].as_str().unwrap())
        );
        let mut total = 0;
        let mut prev = 0;
        for s in p["samples"].as_array().unwrap() {
            let (t, n) = (s[0].as_i64().unwrap(), s[1].as_i64().unwrap());
            assert_eq!(t % 60, 0, "buckets start on the step: {s}");
            assert!((T0..T0 + 2400).contains(&t), "{s} within the range");
            assert!(t > prev, "samples in time order: {p}");
            prev = t;
            total += n;
        }
        assert!(total <= last_total, "most lines first");
        last_total = total;
        counted += total;
    }
    assert!(
        counted * 100 >= ssh.len() as i64 * 95,
        "the patterns hold {counted} of {} lines",
        ssh.len()
    );
    let failed = data
        .iter()
        .find(|p| {
            p["pattern"]
                == "Dec 10 <_> LabSZ sshd[<_>]: Failed password for <_> from <_> port <_> ssh2"
        })
        .unwrap_or_else(|| panic!("the failed-password pattern: {v}"));
    let failed_total: i64 = failed["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_i64().unwrap())
        .sum();

    // Including it filters the lines with `|>`; every line it counted is found.
    let q = format!(
        r#"sum(count_over_time({{service_name="sshd"}} |> {} [40m]))"#,
        serde_json::to_string(failed["pattern"].as_str().unwrap()).unwrap()
    );
    let v = ok_json(
        &grafana_get(
            srv,
            "/loki/api/v1/query",
            &[("query", &q), ("time", &ns(T0 + 2400))],
            "",
        ),
        "a pattern as a filter",
    );
    let found: i64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .parse()
        .unwrap();
    assert!(
        found >= failed_total,
        "{found} lines match, {failed_total} counted"
    );
    let expected = ssh
        .iter()
        .filter(|l| l.contains(": Failed password for ") && l.ends_with(" ssh2"))
        .count() as i64;
    assert_eq!(found, expected, "{q}");

    // A short interval: Loki never counts patterns finer than 10 s.
    let v = ok_json(
        &grafana_get(
            srv,
            "/loki/api/v1/patterns",
            &[
                ("query", r#"{service_name="sshd"}"#),
                ("start", START_ISO),
                ("end", END_ISO),
                ("step", "500ms"),
            ],
            "",
        ),
        "patterns at 500ms",
    );
    let times: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["samples"].as_array().unwrap().iter())
        .map(|s| s[0].as_i64().unwrap())
        .collect();
    assert!(
        !times.is_empty() && times.iter().all(|t| t % 10 == 0),
        "{v}"
    );
    assert!(
        times.iter().any(|t| t % 60 != 0),
        "finer than the 1m step: {v}"
    );

    // POST with a form body, as Loki clients may send it: the same answer.
    let post = srv.request(
        "POST",
        "/loki/api/v1/patterns",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        encode_form(&params).as_bytes(),
    );
    assert_eq!(ok_json(&post, "patterns by POST"), ok_json(&r, "patterns"));

    // A service without lines in the range: no patterns.
    let v = ok_json(
        &grafana_get(
            srv,
            "/loki/api/v1/patterns",
            &[
                ("query", r#"{service_name="nothing"}"#),
                ("start", START_ISO),
                ("end", END_ISO),
            ],
            "",
        ),
        "patterns of nothing",
    );
    assert_eq!(v, json!({"status": "success", "data": []}));

    // Not a selector, or not LogQL: 400 with Loki's message.
    for (query, says) in [
        (
            r#"{service_name="sshd"} |= "Failed""#,
            "only label matchers are supported",
        ),
        (r#"{service_name="sshd""#, "parse error"),
    ] {
        let r = grafana_get(
            srv,
            "/loki/api/v1/patterns",
            &[("query", query), ("start", START_ISO), ("end", END_ISO)],
            "",
        );
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert!(r.text().contains(says), "{query}: {}", r.text());
    }
}
