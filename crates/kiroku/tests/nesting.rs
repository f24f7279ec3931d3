//! Queries, templates and log lines nested deeper than any real one, through the real
//! binary: each gets a clear 400 or a correct answer, and the server keeps serving. A
//! parser or a JSON walk that recursed once per level used to overflow the thread's stack
//! and abort the whole process on a single request, or on every read of one stored line.

mod common;

use common::{Server, now_ns};
use serde_json::json;

/// The server still answers.
fn alive(srv: &Server) {
    let r = srv.get("/ready");
    assert_eq!(r.status, 200, "server log:\n{}", srv.log());
}

#[test]
fn queries_nested_too_deeply_get_a_400_on_every_endpoint() {
    let srv = Server::start(&[]);
    let deep = format!("{}vector(1){}", "(".repeat(5000), ")".repeat(5000));
    let selector = format!(
        "{{app=\"x\"}} | {}a=\"1\"{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let (start, end) = (
        (now_ns() - 3_600_000_000_000).to_string(),
        now_ns().to_string(),
    );
    for (path, q) in [
        ("/loki/api/v1/query", &deep),
        ("/loki/api/v1/query_range", &deep),
        ("/loki/api/v1/format_query", &deep),
        ("/loki/api/v1/query_range", &selector),
        ("/loki/api/v1/labels", &selector),
        ("/loki/api/v1/detected_fields", &selector),
        ("/loki/api/v1/index/stats", &selector),
        ("/loki/api/v1/patterns", &selector),
    ] {
        let r = srv.get_query(path, &[("query", q), ("start", &start), ("end", &end)], &[]);
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(
            r.text().contains("nested too deeply"),
            "{path}: {}",
            r.text()
        );
        alive(&srv);
    }
    // A form-encoded POST takes the same way.
    let body = common::encode_form(&[("query", &deep)]);
    let r = srv.request(
        "POST",
        "/loki/api/v1/query",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    alive(&srv);
}

#[test]
fn queries_just_under_the_limit_are_answered() {
    let srv = Server::start(&[]);
    let now = now_ns();
    let r = srv.push_json(
        &json!({"streams": [{"stream": {"app": "deep"},
            "values": [[now.to_string(), "a=1 b=2"]]}]})
        .to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let t = (now + 1).to_string();
    let instant = |q: &str| {
        let r = srv.get_query("/loki/api/v1/query", &[("query", q), ("time", &t)], &[]);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.json()["data"]["result"].clone()
    };
    // 120 aggregations around one range aggregation, 120 additions, 60 `or`s in a label
    // filter: the parser, the evaluator and the tree's drop all recurse per level.
    let sums = format!(
        "{}count_over_time({{app=\"deep\"}}[1m]){}",
        "sum(".repeat(120),
        ")".repeat(120)
    );
    assert_eq!(instant(&sums)[0]["value"][1], "1");
    let adds = format!("vector(1){}", " + vector(1)".repeat(120));
    assert_eq!(instant(&adds)[0]["value"][1], "121");
    let ors = format!(
        "count_over_time({{app=\"deep\"}} | logfmt | a=\"0\"{} [1m])",
        " or a=\"0\"".repeat(59) + " or b=\"2\""
    );
    assert_eq!(instant(&ors)[0]["value"][1], "1");
    // A line_format template 99 blocks deep runs; deeper ones are refused, as Go refuses
    // 10000.
    let ifs = |n: usize| {
        format!(
            "{{app=\"deep\"}} | logfmt | line_format `{}{{{{.a}}}}{}`",
            "{{if .b}}".repeat(n),
            "{{end}}".repeat(n)
        )
    };
    let start = (now - 1).to_string();
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[("query", &ifs(99)), ("start", &start), ("end", &t)],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["result"][0]["values"][0][1], "1");
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[("query", &ifs(150)), ("start", &start), ("end", &t)],
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("max expression depth exceeded"),
        "{}",
        r.text()
    );
    alive(&srv);
}

#[test]
fn a_stored_line_of_deeply_nested_json_is_read_without_crashing() {
    let srv = Server::start(&[]);
    // Past what a recursive walk survives on a server thread's stack in a debug build.
    let depth = 3000;
    let line = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let now = now_ns();
    let r = srv.push_json(
        &json!({"streams": [{"stream": {"app": "deep"},
            "values": [[now.to_string(), line]]}]})
        .to_string(),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let (start, end) = ((now - 60_000_000_000).to_string(), (now + 1).to_string());
    let range = [
        ("query", "{app=\"deep\"} | json"),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    // Before and after the line is flushed into a part.
    for _ in 0..2 {
        let r = srv.get_query("/loki/api/v1/query_range", &range, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        // As Loki's json parser: the keys joined with `_`.
        let labels = &r.json()["data"]["result"][0]["stream"];
        assert_eq!(labels[vec!["a"; depth].join("_")], "1", "{labels}");
        let r = srv.get_query("/loki/api/v1/detected_fields", &range, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        alive(&srv);
        assert_eq!(srv.request("POST", "/flush", &[], b"").status, 204);
    }
}
