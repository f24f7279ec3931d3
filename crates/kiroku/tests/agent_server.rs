//! `kiroku agent` → `kiroku server` → query: the real agent follows pod log files labelled
//! from a fake Kubernetes API and pushes to the real server; queries find each line with
//! the right labels, also after the server was down for a while.

mod common;

use std::path::Path;
use std::time::Duration;

use agent::testkit::{
    FakeContainer, FakeEvent, FakeKube, FakePod, FakeState, FakeTerminated, Process, TempDir,
    TestAgent, append, cri_line, http_get, rfc3339, wait_for,
};
use common::{Server, now_ns};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn start_agent(dir: &Path, url: &str, kubeconfig: &Path) -> (Process, String) {
    let kubeconfig = kubeconfig.to_string_lossy();
    let args = ["--kubeconfig", &kubeconfig, "--node-name", "node-a"];
    let a = TestAgent::start(
        Path::new(env!("CARGO_BIN_EXE_kiroku")),
        dir,
        url,
        &args,
        WAIT,
    );
    (a.proc, a.listen)
}

/// Every (stream labels, line) the server returns for `query`, oldest first.
fn query(
    srv: &Server,
    q: &str,
    start: i64,
    end: i64,
) -> Vec<(serde_json::Map<String, Value>, String)> {
    let (s, e) = (start.to_string(), end.to_string());
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", q),
            ("start", &s),
            ("end", &e),
            ("limit", "5000"),
            ("direction", "forward"),
        ],
        &[],
    );
    if r.status != 200 {
        return Vec::new();
    }
    let v = r.json();
    let mut out = Vec::new();
    for stream in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let labels = stream["stream"].as_object().cloned().unwrap_or_default();
        for val in stream["values"].as_array().cloned().unwrap_or_default() {
            let ts: i64 = val[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
            out.push((
                ts,
                labels.clone(),
                val[1].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out.sort_by_key(|(ts, _, _)| *ts);
    out.into_iter().map(|(_, l, line)| (l, line)).collect()
}

fn has(labels: &serde_json::Map<String, Value>, k: &str, v: &str) -> bool {
    labels.get(k).and_then(|x| x.as_str()) == Some(v)
}

#[test]
fn agent_to_server_every_line_queryable_with_labels_across_a_server_outage() {
    let dir = TempDir::new("agent-server");
    let mut srv = Server::start(&[]);
    let url = format!("http://{}", srv.addr);
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).unwrap();
    let pod = FakePod {
        namespace: "shop".into(),
        name: "web-1".into(),
        uid: "uid-web".into(),
        node: "node-a".into(),
        labels: vec![("app.kubernetes.io/name".into(), "web".into())],
        annotations: vec![],
        containers: vec![FakeContainer {
            name: "app".into(),
            restart_count: 0,
            state: FakeState::Running {
                started_at: "2024-05-01T10:00:00Z".into(),
            },
            last_terminated: None,
        }],
    };
    kube.apply_pod(&pod);
    let file = dir.path().join("pods/shop_web-1_uid-web/app/0.log");
    let t0 = now_ns() - 60_000_000_000;
    let write = |from: usize, to: usize| {
        let mut s = String::new();
        for i in from..to {
            let stream = if i % 10 == 0 { "stderr" } else { "stdout" };
            s.push_str(&cri_line(
                t0 + i as i64 * 1_000_000,
                stream,
                false,
                &format!("request {i:04} served"),
            ));
        }
        append(&file, &s);
    };
    write(0, 100);
    let (mut agent, listen) = start_agent(dir.path(), &url, &kubeconfig);
    let (start, end) = (t0 - 1_000_000_000, now_ns() + 600_000_000_000);
    let got = wait_for(WAIT, || {
        Some(query(
            &srv,
            r#"{namespace="shop", pod="web-1"}"#,
            start,
            end,
        ))
        .filter(|r| r.len() >= 100)
    });
    let got = got.unwrap_or_else(|| {
        panic!(
            "lines never became queryable\nagent:\n{}\nserver:\n{}",
            agent.output(),
            srv.log()
        )
    });
    let (labels, line) = &got[1];
    assert_eq!(line, "request 0001 served");
    for (k, v) in [
        ("namespace", "shop"),
        ("pod", "web-1"),
        ("container", "app"),
        ("app", "web"),
        ("job", "shop/app"),
        ("node", "node-a"),
        ("service_name", "web"),
        ("stream", "stdout"),
    ] {
        assert!(has(labels, k, v), "{k}={v} missing in {labels:?}");
    }
    let errs = query(&srv, r#"{namespace="shop", stream="stderr"}"#, start, end);
    assert_eq!(errs.len(), 10);

    // The container is OOM-killed and restarted; the kubelet reports it as an event. The
    // web UI reads both back from the server.
    let died = now_ns() - 30_000_000_000;
    kube.apply_pod(&FakePod {
        containers: vec![FakeContainer {
            name: "app".into(),
            restart_count: 1,
            state: FakeState::Running {
                started_at: rfc3339(died + 1_000_000_000),
            },
            last_terminated: Some(FakeTerminated {
                reason: "OOMKilled".into(),
                exit_code: 137,
                signal: None,
                started_at: rfc3339(t0),
                finished_at: rfc3339(died),
                container_id: "containerd://c1".into(),
            }),
        }],
        ..pod.clone()
    });
    kube.add_event(&FakeEvent {
        namespace: "shop".into(),
        name: "web-1.backoff".into(),
        uid: "ev-backoff".into(),
        type_: "Warning".into(),
        reason: "BackOff".into(),
        kind: "Pod".into(),
        object_name: "web-1".into(),
        message: "Back-off restarting failed container app in pod web-1".into(),
        count: 2,
        last_timestamp: rfc3339(died + 2_000_000_000),
        host: "node-a".into(),
    });
    let term = wait_for(WAIT, || {
        query(
            &srv,
            r#"{namespace="shop", pod="web-1", stream="stderr"}"#,
            start,
            end,
        )
        .into_iter()
        .find(|(_, l)| l.starts_with("kiroku_event=container_terminated"))
    })
    .unwrap_or_else(|| panic!("no termination line\nagent:\n{}", agent.output()));
    assert!(term.1.starts_with("kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=1"), "{}", term.1);
    assert!(
        has(&term.0, "app", "web") && has(&term.0, "container", "app"),
        "{:?}",
        term.0
    );
    let ev = wait_for(WAIT, || {
        query(
            &srv,
            r#"{job="integrations/kubernetes/eventhandler", source="kubernetes-events"}"#,
            start,
            end,
        )
        .into_iter()
        .find(|(_, l)| l.contains("reason=BackOff"))
    })
    .unwrap_or_else(|| panic!("no event line\nagent:\n{}", agent.output()));
    assert_eq!(
        ev.1,
        r#"type=Warning reason=BackOff kind=Pod name=web-1 count=2 component=kubelet msg="Back-off restarting failed container app in pod web-1""#
    );
    assert!(has(&ev.0, "namespace", "shop"), "{:?}", ev.0);

    // The server goes away; lines keep coming; it comes back on the same data and port.
    assert!(srv.terminate().success());
    write(100, 300);
    let retried = wait_for(WAIT, || {
        http_get(&format!("http://{listen}/metrics"))
            .ok()
            .and_then(|(_, b)| agent::testkit::metric(&b, "kiroku_agent_push_retries_total"))
            .filter(|n| *n > 0.0)
    });
    assert!(
        retried.is_some(),
        "the agent never retried while the server was down"
    );
    srv.restart();
    write(300, 400);
    let all = wait_for(WAIT, || {
        Some(query(
            &srv,
            r#"{namespace="shop", pod="web-1"}"#,
            start,
            end,
        ))
        .filter(|r| r.len() > 400)
    });
    assert!(
        all.is_some(),
        "lines missing after the outage\nagent:\n{}\nserver:\n{}",
        agent.output(),
        srv.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let all = query(&srv, r#"{namespace="shop", pod="web-1"}"#, start, end);
    let lines: Vec<&str> = all
        .iter()
        .map(|(_, l)| l.as_str())
        .filter(|l| l.starts_with("request"))
        .collect();
    let want: Vec<String> = (0..400).map(|i| format!("request {i:04} served")).collect();
    assert_eq!(lines, want, "every line exactly once, in order");
    assert!(
        agent
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
}

/// A push the server takes in part (lines over its `--max-line-size`): the agent counts as
/// dropped only the lines the server refused, and the others are stored.
#[test]
fn a_partly_refused_batch_counts_only_the_refused_lines() {
    let dir = TempDir::new("agent-partial");
    let srv = Server::start(&["--max-line-size", "64B"]);
    let log = dir.path().join("app.log");
    let long = "x".repeat(100);
    append(
        &log,
        &format!("short-1\n{long} 1\nshort-2\n{long} 2\nshort-3\n"),
    );
    let glob = log.to_string_lossy().into_owned();
    let start = now_ns() - 60_000_000_000;
    let agent = TestAgent::start(
        Path::new(env!("CARGO_BIN_EXE_kiroku")),
        dir.path(),
        &format!("http://{}", srv.addr),
        &["--mode", "files", "--files", &glob],
        WAIT,
    );
    let stored = wait_for(WAIT, || {
        let mut lines: Vec<String> = query(
            &srv,
            r#"{filename=~".+"}"#,
            start,
            now_ns() + 60_000_000_000,
        )
        .into_iter()
        .map(|(_, l)| l)
        .collect();
        lines.sort();
        (lines.len() == 3).then_some(lines)
    })
    .unwrap_or_else(|| panic!("short lines not stored:\n{}", agent.proc.output()));
    assert_eq!(stored, ["short-1", "short-2", "short-3"]);
    wait_for(WAIT, || {
        (agent.metric("kiroku_agent_lines_dropped_total") >= 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("drops not counted:\n{}", agent.proc.output()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(agent.metric("kiroku_agent_lines_dropped_total"), 2.0);
    assert!(
        agent.proc.output().contains("stored the rest"),
        "{}",
        agent.proc.output()
    );
}
