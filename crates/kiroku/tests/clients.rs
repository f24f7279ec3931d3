//! Real clients push to the real binary: python-logging-loki (both of its wire versions)
//! and the OpenTelemetry SDK's OTLP/HTTP log exporter (every compression it offers). `scripts/test` installs them in a virtualenv and names its Python in
//! `KIROKU_TEST_PYTHON`; without it (a bare `cargo test`) these tests say so and pass, except
//! under `CI=true`, where they fail.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, now_ns};

const S: i64 = 1_000_000_000;

fn python() -> Option<String> {
    match std::env::var("KIROKU_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            let msg = "KIROKU_TEST_PYTHON is not set: run scripts/test to test with real clients";
            // In CI a skipped test would hide a broken setup.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{msg}; under CI=true these tests must run"
            );
            eprintln!("{msg}");
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

fn run(py: &str, args: &[&str]) {
    let out = Command::new(py).args(args).output().expect("run python");
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn lines(srv: &Server, query: &str, since: i64) -> Vec<(serde_json::Value, String)> {
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", query),
            ("start", &since.to_string()),
            ("end", &(now_ns() + 60 * S).to_string()),
            ("direction", "forward"),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        for e in s["values"].as_array().unwrap() {
            out.push((s["stream"].clone(), e[1].as_str().unwrap().to_string()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

#[test]
fn python_logging_loki_pushes_in_both_versions() {
    let Some(py) = python() else { return };
    let srv = Server::start(&[]);
    let base = format!("http://{}", srv.addr);
    let since = now_ns() - 60 * S;
    for version in ["0", "1"] {
        let run_id = format!("v{version}");
        run(
            &py,
            &[
                script("logging_loki_push.py").to_str().unwrap(),
                &base,
                version,
                &run_id,
            ],
        );
        let got = lines(
            &srv,
            &format!(r#"{{app="pyclient", run="{run_id}"}}"#),
            since,
        );
        let texts: Vec<&str> = got.iter().map(|l| l.1.as_str()).collect();
        assert_eq!(
            texts,
            ["python says hello", "something broke: disk on fire"],
            "version {version}"
        );
        // The handler's own labels, and Loki's enrichment.
        let (warn, err) = (&got[0].0, &got[1].0);
        assert_eq!(warn["severity"], "warning");
        assert_eq!(warn["logger"], "kiroku-e2e");
        assert_eq!(warn["attempt"], "1");
        assert_eq!(warn["service_name"], "pyclient");
        assert_eq!(err["severity"], "error");
        assert_eq!(err["detected_level"], "error");
    }
}

#[test]
fn opentelemetry_exporter_pushes_otlp_logs() {
    let Some(py) = python() else { return };
    let srv = Server::start(&[]);
    let base = format!("http://{}", srv.addr);
    let since = now_ns() - 60 * S;
    for compression in ["none", "gzip", "deflate"] {
        run(
            &py,
            &[
                script("otlp_push.py").to_str().unwrap(),
                &base,
                compression,
                compression,
            ],
        );
        // Loki's default resource attributes are index labels; service.name is service_name.
        let got = lines(
            &srv,
            r#"{service_name="py-otel", k8s_namespace_name="shop"}"#,
            since,
        );
        let mine: Vec<&(serde_json::Value, String)> = got
            .iter()
            .filter(|l| l.0["run_id"] == compression)
            .collect();
        let texts: Vec<&str> = mine.iter().map(|l| l.1.as_str()).collect();
        assert_eq!(
            texts,
            ["otel failure", "otel says hello"],
            "{compression}: {got:?}"
        );
        let (err, warn) = (&mine[0].0, &mine[1].0);
        // Everything else arrives as structured metadata, names with `_` for `.`.
        assert_eq!(warn["host_name"], "node-1");
        assert_eq!(warn["order_id"], "42");
        assert_eq!(warn["severity_text"], "WARN");
        assert_eq!(warn["severity_number"], "13");
        assert_eq!(warn["scope_name"], "otel-e2e");
        assert_eq!(warn["detected_level"], "warn");
        assert_eq!(err["detected_level"], "error");
    }
    // Stream labels are only the indexed attributes (the SDK adds a random
    // service.instance.id per process, which Loki indexes too).
    let r = srv.get_query(
        "/loki/api/v1/series",
        &[
            ("match[]", r#"{service_name="py-otel"}"#),
            ("start", &since.to_string()),
        ],
        &[],
    );
    let series = r.json()["data"].as_array().unwrap().clone();
    assert_eq!(series.len(), 3, "one per process: {series:?}");
    for s in series {
        let mut names: Vec<&String> = s.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(
            names,
            ["k8s_namespace_name", "service_instance_id", "service_name"]
        );
    }
}
