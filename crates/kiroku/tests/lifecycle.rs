//! The server as an operator meets it: configuration from flags, environment and file,
//! startup errors that say what to do, the operational endpoints, and a graceful
//! shutdown that keeps every acknowledged entry.

mod common;

use std::process::Command;

use common::{Server, now_ns};
use serde_json::json;

const S: i64 = 1_000_000_000;

/// Runs `kiroku server` expecting it to refuse to start; returns its stderr.
fn refuses_to_start(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kiroku"))
        .arg("server")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("KIROKU_CONFIG")
        .output()
        .expect("run kiroku");
    assert!(!out.status.success(), "started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn startup_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = refuses_to_start(&["--data-dir", file.to_str().unwrap()]);
    assert!(err.contains("is not a directory"), "{err}");

    let cfg = tmp.path().join("kiroku.yaml");
    std::fs::write(&cfg, "listen: 127.0.0.1:0\nmax_lien_size: 1KiB\n").unwrap();
    let err = refuses_to_start(&["--config", cfg.to_str().unwrap()]);
    assert!(err.contains("max_lien_size"), "{err}");
    assert!(err.contains(cfg.to_str().unwrap()), "{err}");

    std::fs::write(&cfg, "retention: forever\n").unwrap();
    let err = refuses_to_start(&["--config", cfg.to_str().unwrap()]);
    assert!(err.contains("is not a duration"), "{err}");

    let err = refuses_to_start(&["--config", "/no/such/kiroku.yaml"]);
    assert!(
        err.contains("cannot read config file /no/such/kiroku.yaml"),
        "{err}"
    );

    let err = refuses_to_start(&["--retention-max-disk", "lots"]);
    assert!(err.contains("is not a disk budget"), "{err}");

    // The address is taken: name it and the flag.
    let srv = Server::start(&[]);
    let data = tmp.path().join("d2");
    let out = Command::new(env!("CARGO_BIN_EXE_kiroku"))
        .args([
            "server",
            "--listen",
            &srv.addr,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env_remove("KIROKU_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on {}", srv.addr)) && err.contains("--listen"),
        "{err}"
    );
}

#[test]
fn flag_beats_env_beats_file_and_config_shows_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("kiroku.yaml");
    std::fs::write(
        &cfg,
        "max_line_size: 2KiB\nmax_query_series: 42\nretention: 30d\nauth: header\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let srv = Server::start_with(
        &data,
        &["--config", cfg.to_str().unwrap(), "--retention", "14d"],
        &[("KIROKU_MAX_LINE_SIZE", "3KiB"), ("KIROKU_RETENTION", "1d")],
    );
    let r = srv.get("/config");
    assert_eq!(r.status, 200);
    let c = r.text();
    assert!(c.contains("max_line_size: 3KiB"), "env over file:\n{c}");
    assert!(c.contains("retention: 14d"), "flag over env:\n{c}");
    assert!(
        c.contains("max_query_series: 42"),
        "file over default:\n{c}"
    );
    assert!(c.contains("auth: header"), "{c}");
    assert!(
        c.contains("max_label_names_per_series: 15"),
        "default:\n{c}"
    );
    // The file's setting is in force, not just printed.
    let r = srv.push_json(r#"{"streams":[]}"#);
    assert_eq!(r.status, 401);
}

#[test]
fn operational_endpoints() {
    let srv = Server::start(&[]);
    let r = srv.get("/ready");
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    // The web UI is served at / beside the API.
    let r = srv.get("/");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let v = srv.get("/loki/api/v1/status/buildinfo").json();
    assert!(
        v["version"].as_str().is_some_and(|s| s.starts_with('3')),
        "{v}"
    );
    let t = now_ns();
    let body =
        json!({"streams": [{"stream": {"app": "m"}, "values": [[t.to_string(), "counted"]]}]});
    assert_eq!(srv.push_json(&body.to_string()).status, 204);
    let m = srv.get("/metrics");
    assert!(
        m.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let m = m.text();
    for want in [
        r#"kiroku_http_requests_total{route="/loki/api/v1/push",status="204"} 1"#,
        r#"kiroku_ingest_lines_received_total{tenant="fake"} 1"#,
        "kiroku_http_request_duration_seconds_bucket{route=\"/ready\",status=\"200\",le=\"+Inf\"} 2",
        "kiroku_store_entries_appended_total 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(m.contains(want), "metrics lack {want:?}:\n{m}");
    }
    assert_eq!(srv.request("POST", "/flush", &[], b"").status, 204);
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="m"}"#),
            ("start", &(t - S).to_string()),
            ("end", &(t + S).to_string()),
        ],
        &[],
    );
    assert_eq!(
        r.json()["data"]["result"][0]["values"][0][1],
        "counted",
        "after /flush"
    );
}

#[test]
fn sigterm_stops_cleanly_and_keeps_everything() {
    let mut srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    for i in 0..50 {
        let body = json!({"streams": [{"stream": {"app": "term"}, "values": [[(t + i).to_string(), format!("line {i}")]]}]});
        assert_eq!(srv.push_json(&body.to_string()).status, 204);
    }
    let status = srv.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        srv.log()
    );
    assert!(srv.log().contains("kiroku server stopped"), "{}", srv.log());
    srv.restart();
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="term"}"#),
            ("start", &(t - S).to_string()),
            ("end", &(t + S).to_string()),
            ("limit", "1000"),
        ],
        &[],
    );
    let n: usize = r.json()["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 50);
}
