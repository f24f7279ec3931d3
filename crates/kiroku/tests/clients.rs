//! Real Loki clients push to the real binary: python-logging-loki (both of its wire
//! versions). `scripts/test` installs them in a virtualenv and names its Python in
//! `KIROKU_TEST_PYTHON`; without it (a bare `cargo test`) these tests say so and pass.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, now_ns};

const S: i64 = 1_000_000_000;

fn python() -> Option<String> {
    match std::env::var("KIROKU_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            eprintln!("KIROKU_TEST_PYTHON is not set: run scripts/test to test with real clients");
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
