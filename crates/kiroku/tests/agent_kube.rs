//! `kiroku agent` end to end with a Kubernetes API: the real binary against a fake API
//! server speaking real list/watch JSON, for pod metadata, termination reports, events
//! (with a position across restarts and `410 Gone`), API errors and dropped connections,
//! `--mode api` log streaming with `previous=true`, and the election through a Lease of
//! the one agent that collects the events no node reports (takeovers, no RBAC).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use agent::testkit::{
    FakeContainer, FakeEvent, FakeKube, FakePod, FakeState, FakeTerminated, PushReceiver, Received,
    TempDir, TestAgent, append, cri_line, wait_for,
};

const T0: i64 = 1_714_557_600_000_000_000; // 2024-05-01T10:00:00Z
const WAIT: Duration = Duration::from_secs(30);

type Agent = TestAgent;

fn start_agent(dir: &Path, url: &str, kubeconfig: &Path, extra: &[&str]) -> Agent {
    let kubeconfig = kubeconfig.to_string_lossy();
    let args = [&["--kubeconfig", &kubeconfig], extra].concat();
    TestAgent::start(
        Path::new(env!("CARGO_BIN_EXE_kiroku")),
        dir,
        url,
        &args,
        WAIT,
    )
}

fn wait_until(
    recv: &PushReceiver,
    agent: &Agent,
    what: &str,
    f: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    wait_for(WAIT, || Some(recv.lines()).filter(|l| f(l))).unwrap_or_else(|| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in recv.lines() {
            m.entry(l.labels).or_default().push(l.line);
        }
        panic!(
            "never saw {what}: {m:#?}\nagent output:\n{}",
            agent.proc.output()
        )
    })
}

fn count(lines: &[Received], pred: impl Fn(&Received) -> bool) -> usize {
    lines.iter().filter(|l| pred(l)).count()
}

fn web_pod(restarts: i32, last: Option<FakeTerminated>) -> FakePod {
    FakePod {
        namespace: "shop".into(),
        name: "web-1".into(),
        uid: "uid-web".into(),
        node: "node-a".into(),
        labels: vec![
            ("app.kubernetes.io/name".into(), "web".into()),
            ("team".into(), "payments".into()),
        ],
        annotations: vec![],
        containers: vec![FakeContainer {
            name: "app".into(),
            restart_count: restarts,
            state: FakeState::Running {
                started_at: "2024-05-01T10:06:00Z".into(),
            },
            last_terminated: last,
        }],
    }
}

fn event(uid: &str, object: &str, host: &str, reason: &str, ts: &str) -> FakeEvent {
    FakeEvent {
        namespace: "shop".into(),
        name: format!("{object}.{uid}"),
        uid: uid.into(),
        type_: "Warning".into(),
        reason: reason.into(),
        kind: "Pod".into(),
        object_name: object.into(),
        message: format!("{reason} happened to {object}"),
        count: 1,
        last_timestamp: ts.into(),
        host: host.into(),
    }
}

#[test]
fn node_mode_labels_pods_reports_terminations_and_events_through_api_trouble() {
    let dir = TempDir::new("agent-kube");
    let recv = PushReceiver::start().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).unwrap();
    kube.apply_pod(&web_pod(0, None));
    let mut other = web_pod(0, None);
    other.name = "db-1".into();
    other.uid = "uid-db".into();
    other.node = "node-b".into();
    kube.apply_pod(&other);
    kube.add_event(&event(
        "ev1",
        "web-1",
        "node-a",
        "Pulled",
        "2024-05-01T10:00:01Z",
    ));
    kube.add_event(&event(
        "ev2",
        "db-1",
        "node-b",
        "Pulled",
        "2024-05-01T10:00:02Z",
    ));
    let file = dir.path().join("pods/shop_web-1_uid-web/app/0.log");
    append(&file, &cri_line(T0, "stdout", false, "hello from web"));

    let mut agent = start_agent(
        dir.path(),
        &recv.url(),
        &kubeconfig,
        &["--node-name", "node-a"],
    );
    let lines = wait_until(&recv, &agent, "the web line and the event", |l| {
        l.iter().any(|x| x.line == "hello from web")
            && l.iter().any(|x| x.line.contains("reason=Pulled"))
    });
    let web = lines.iter().find(|l| l.line == "hello from web").unwrap();
    assert_eq!(
        web.labels,
        r#"{app="web", container="app", job="shop/app", namespace="shop", node="node-a", pod="web-1", service_name="web", stream="stdout"}"#
    );
    for kv in [
        ("pod_uid", "uid-web"),
        ("team", "payments"),
        ("app_kubernetes_io_name", "web"),
    ] {
        assert!(
            web.metadata.contains(&(kv.0.into(), kv.1.into())),
            "{:?}",
            web.metadata
        );
    }
    let ev = lines
        .iter()
        .find(|l| l.line.contains("reason=Pulled"))
        .unwrap();
    assert_eq!(
        ev.labels,
        r#"{job="integrations/kubernetes/eventhandler", namespace="shop", source="kubernetes-events"}"#
    );
    assert_eq!(
        ev.line,
        r#"type=Warning reason=Pulled kind=Pod name=web-1 count=1 component=kubelet msg="Pulled happened to web-1""#
    );
    assert_eq!(
        count(&lines, |l| l.line.contains("db-1")),
        0,
        "events of other nodes' pods are theirs"
    );

    // The API fails and drops every connection; meanwhile the container is OOM-killed.
    kube.fail_requests(4);
    kube.close_connections();
    let oom = FakeTerminated {
        reason: "OOMKilled".into(),
        exit_code: 137,
        signal: None,
        started_at: "2024-05-01T10:00:00Z".into(),
        finished_at: "2024-05-01T10:05:00Z".into(),
        container_id: "containerd://dead".into(),
    };
    kube.apply_pod(&web_pod(1, Some(oom)));
    kube.add_event(&event(
        "ev3",
        "web-1",
        "node-a",
        "BackOff",
        "2024-05-01T10:05:01Z",
    ));
    let lines = wait_until(
        &recv,
        &agent,
        "the termination and the BackOff event",
        |l| {
            l.iter()
                .any(|x| x.line.starts_with("kiroku_event=container_terminated"))
                && l.iter().any(|x| x.line.contains("reason=BackOff"))
        },
    );
    let term = lines
        .iter()
        .find(|l| l.line.starts_with("kiroku_event="))
        .unwrap();
    assert_eq!(
        term.line,
        "kiroku_event=container_terminated reason=OOMKilled exit_code=137 signal=9 restart_count=1 \
         started_at=2024-05-01T10:00:00Z finished_at=2024-05-01T10:05:00Z container=app pod=web-1 namespace=shop \
         container_id=containerd://dead"
    );
    assert_eq!(
        term.ts,
        T0 + 300_000_000_000,
        "stamped with the finish time"
    );
    assert_eq!(
        term.labels,
        r#"{app="web", container="app", job="shop/app", namespace="shop", node="node-a", pod="web-1", service_name="web", stream="stderr"}"#
    );
    assert!(agent.metric(r#"kiroku_agent_errors_total{kind="kube_api"}"#) >= 1.0);

    // The API forgets old versions (410 Gone): the agent lists again without repeating.
    kube.compact();
    kube.close_connections();
    kube.add_event(&event(
        "ev4",
        "web-1",
        "node-a",
        "Started",
        "2024-05-01T10:06:00Z",
    ));
    wait_until(&recv, &agent, "the event after 410", |l| {
        l.iter().any(|x| x.line.contains("reason=Started"))
    });

    // A restart resumes: nothing is reported twice.
    assert!(
        agent.proc.terminate(WAIT).is_some_and(|s| s.success()),
        "{}",
        agent.proc.output()
    );
    agent = start_agent(
        dir.path(),
        &recv.url(),
        &kubeconfig,
        &["--node-name", "node-a"],
    );
    kube.add_event(&event(
        "ev5",
        "web-1",
        "node-a",
        "Killing",
        "2024-05-01T10:07:00Z",
    ));
    // The pod is deleted; its last lines are still labelled from the kept metadata.
    std::thread::sleep(Duration::from_millis(300));
    kube.delete_pod(&web_pod(1, None));
    append(
        &file,
        &cri_line(T0 + 420_000_000_000, "stdout", false, "last words"),
    );
    wait_until(
        &recv,
        &agent,
        "the event after restart and the last words",
        |l| {
            l.iter().any(|x| x.line.contains("reason=Killing"))
                && l.iter().any(|x| x.line == "last words")
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let lines = recv
        .lines()
        .into_iter()
        .chain(std::iter::empty())
        .collect::<Vec<_>>();
    let _ = &lines;
    for (what, n) in [
        ("reason=Pulled", 1),
        ("reason=BackOff", 1),
        ("reason=Started", 1),
        ("reason=Killing", 1),
        ("kiroku_event=container_terminated", 1),
    ] {
        assert_eq!(
            count(&lines, |l| l.line.contains(what)),
            n,
            "{what}: {lines:#?}"
        );
    }
    assert_eq!(count(&lines, |l| l.line == "hello from web"), 1);
    let last = lines.iter().find(|l| l.line == "last words").unwrap();
    assert!(last.labels.contains(r#"app="web""#), "{}", last.labels);
}

#[test]
fn api_mode_streams_logs_resumes_after_disconnects_and_reads_previous_instances() {
    let dir = TempDir::new("agent-api");
    let recv = PushReceiver::start().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).unwrap();
    let mut pod = web_pod(0, None);
    pod.name = "api-1".into();
    pod.uid = "uid-api".into();
    pod.containers[0].name = "srv".into();
    kube.apply_pod(&pod);
    let log = |i: i64, msg: &str| kube.append_log("shop", "api-1", "srv", T0 + i * 1_000_000, msg);
    for i in 1..=3 {
        log(i, &format!("l{i}"));
    }
    let agent = start_agent(
        dir.path(),
        &recv.url(),
        &kubeconfig,
        &["--mode", "api", "--events", "off"],
    );
    let stream = r#"{app="web", container="srv", job="shop/srv", namespace="shop", node="node-a", pod="api-1", service_name="web"}"#;
    let in_stream = |l: &[Received]| {
        l.iter()
            .filter(|x| x.labels == stream && !x.line.starts_with("kiroku_event"))
            .map(|x| x.line.clone())
            .collect::<Vec<_>>()
    };
    wait_until(&recv, &agent, "three lines", |l| in_stream(l).len() >= 3);

    // A dropped connection: the stream resumes after the last line, no repeats.
    kube.close_connections();
    log(4, "l4");
    log(5, "l5");
    wait_until(&recv, &agent, "five lines", |l| in_stream(l).len() >= 5);

    // The agent is cut off from the logs while the container dies and restarts.
    kube.fail_log_requests(u32::MAX);
    kube.close_connections();
    log(6, "last words");
    kube.end_log("shop", "api-1", "srv");
    kube.restart_log("shop", "api-1", "srv");
    pod.containers[0].restart_count = 1;
    pod.containers[0].last_terminated = Some(FakeTerminated {
        reason: "Error".into(),
        exit_code: 1,
        signal: None,
        started_at: "2024-05-01T10:00:00Z".into(),
        finished_at: "2024-05-01T10:00:01Z".into(),
        container_id: "containerd://old".into(),
    });
    kube.apply_pod(&pod);
    log(7, "reborn");
    wait_until(&recv, &agent, "the termination line", |l| {
        l.iter().any(|x| {
            x.line
                .starts_with("kiroku_event=container_terminated reason=Error exit_code=1")
        })
    });
    // The agent knows of the restart and keeps failing to read logs for a while: the
    // dead instance's end must still be read first once the API answers again.
    let log_requests = || {
        kube.requests()
            .iter()
            .filter(|r| r.starts_with("log "))
            .count()
    };
    let seen = log_requests();
    wait_for(WAIT, || (log_requests() >= seen + 3).then_some(()))
        .expect("the agent keeps retrying the log stream");
    kube.fail_log_requests(0);
    let lines = wait_until(&recv, &agent, "all seven lines", |l| {
        in_stream(l).len() >= 7
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        in_stream(&recv.lines()),
        ["l1", "l2", "l3", "l4", "l5", "last words", "reborn"]
    );
    let first = lines.iter().find(|l| l.line == "l1").unwrap();
    assert_eq!(first.ts, T0 + 1_000_000);
    assert!(
        kube.requests()
            .iter()
            .any(|r| r.contains("\"previous\":\"true\""))
    );
    assert!(kube.requests().iter().any(|r| r.contains("sinceTime")));
    assert!(agent.metric(r#"kiroku_agent_errors_total{kind="log_stream"}"#) >= 1.0);
}

/// An event a controller reported (no node): the events Lease holder's to collect.
fn cluster_event(uid: &str, reason: &str, second: u32) -> FakeEvent {
    FakeEvent {
        kind: "ReplicaSet".into(),
        ..event(
            uid,
            "web-5d8f",
            "",
            reason,
            &format!("2024-05-01T10:01:{second:02}Z"),
        )
    }
}

/// A DaemonSet's agent on `node` with its own state under `dir/<node>`, electing the
/// collector of the cluster's events through a 2 s Lease.
fn node_agent(dir: &Path, node: &str, url: &str, kubeconfig: &Path, extra: &[&str]) -> Agent {
    let own = dir.join(node);
    std::fs::create_dir_all(&own).unwrap();
    let mut args = vec!["--node-name", node, "--events-lease-duration", "2s"];
    args.extend_from_slice(extra);
    start_agent(&own, url, kubeconfig, &args)
}

fn is_leader(agent: &Agent) -> bool {
    agent.metric("kiroku_agent_events_leader") == 1.0
}

fn wait_leader(agent: &Agent) {
    wait_for(WAIT, || is_leader(agent).then_some(())).unwrap_or_else(|| {
        panic!(
            "the agent never became the leader:\n{}",
            agent.proc.output()
        )
    });
}

/// `reason=<r> ` lines received, by reason.
fn times(lines: &[Received], reason: &str) -> usize {
    count(lines, |l| l.line.contains(&format!("reason={reason} ")))
}

#[test]
fn one_agent_of_a_daemonset_collects_the_cluster_events_and_a_takeover_repeats_none() {
    let dir = TempDir::new("agent-lease");
    let recv = PushReceiver::start().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).unwrap();
    kube.add_event(&event(
        "pa",
        "web-1",
        "node-a",
        "PulledA",
        "2024-05-01T10:00:01Z",
    ));
    kube.add_event(&event(
        "pb",
        "db-1",
        "node-b",
        "PulledB",
        "2024-05-01T10:00:02Z",
    ));
    kube.add_event(&cluster_event("c1", "C1", 1));

    let mut a = node_agent(dir.path(), "node-a", &recv.url(), &kubeconfig, &[]);
    wait_leader(&a);
    let b = node_agent(dir.path(), "node-b", &recv.url(), &kubeconfig, &[]);
    wait_for(WAIT, || {
        b.proc
            .output()
            .contains("another agent collects the events no node reports")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("b never saw a's Lease:\n{}", b.proc.output()));
    assert!(!is_leader(&b), "one leader");
    let holder = kube.lease_holder("default", "kiroku-agent").unwrap();
    assert!(holder.starts_with("node-a_"), "{holder}");

    kube.add_event(&cluster_event("c2", "C2", 2));
    let lines = wait_until(&recv, &a, "node and cluster events", |l| {
        ["PulledA", "PulledB", "C1", "C2"]
            .iter()
            .all(|r| times(l, r) >= 1)
    });
    let c1 = lines
        .iter()
        .find(|l| l.line.contains("reason=C1 "))
        .unwrap();
    assert_eq!(
        c1.line,
        r#"type=Warning reason=C1 kind=ReplicaSet name=web-5d8f count=1 component=replicaset-controller msg="C1 happened to web-5d8f""#
    );
    assert_eq!(
        c1.labels,
        r#"{job="integrations/kubernetes/eventhandler", namespace="shop", source="kubernetes-events"}"#
    );

    // The leader records the acknowledged position in the Lease (at its next renewal).
    let c2_ts = T0 + 62_000_000_000;
    let position = || {
        let lease = kube.lease("default", "kiroku-agent")?;
        let raw = lease["metadata"]["annotations"]["kiroku/cluster-events-position"].as_str()?;
        serde_json::from_str::<serde_json::Value>(raw).ok()
    };
    wait_for(WAIT, || {
        position().filter(|p| p["ts"].as_i64() == Some(c2_ts))
    })
    .unwrap_or_else(|| panic!("the Lease never got c2's position: {:?}", position()));

    // The leader dies without a word; events keep coming. Once the Lease has been silent
    // for its duration, b takes over and resumes from the position in it.
    a.proc.kill();
    kube.add_event(&cluster_event("c3", "C3", 3));
    wait_leader(&b);
    assert_eq!(b.metric("kiroku_agent_events_leader_terms_total"), 1.0);
    kube.add_event(&cluster_event("c4", "C4", 4));
    wait_until(&recv, &b, "the events after the takeover", |l| {
        times(l, "C3") >= 1 && times(l, "C4") >= 1
    });

    // A clean stop hands over at once, with the last acknowledged position.
    let c = node_agent(dir.path(), "node-c", &recv.url(), &kubeconfig, &[]);
    let mut b = b;
    assert!(
        b.proc.terminate(WAIT).is_some_and(|s| s.success()),
        "{}",
        b.proc.output()
    );
    assert!(b.proc.output().contains("released the events Lease"));
    wait_leader(&c);
    kube.add_event(&cluster_event("c5", "C5", 5));
    wait_until(&recv, &c, "the event after the handover", |l| {
        times(l, "C5") >= 1
    });

    // Once every agent has stopped nothing more can arrive: every event exactly once.
    let mut c = c;
    assert!(
        c.proc.terminate(WAIT).is_some_and(|s| s.success()),
        "{}",
        c.proc.output()
    );
    let lines = recv.lines();
    for reason in ["PulledA", "PulledB", "C1", "C2", "C3", "C4", "C5"] {
        assert_eq!(times(&lines, reason), 1, "{reason}: {lines:#?}");
    }
}

#[test]
fn without_rbac_for_leases_node_events_still_flow_and_the_log_says_what_to_grant() {
    let dir = TempDir::new("agent-lease-rbac");
    let recv = PushReceiver::start().unwrap();
    let kube = FakeKube::start().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path()).unwrap();
    kube.forbid_leases(true);
    kube.add_event(&event(
        "pa",
        "web-1",
        "node-a",
        "PulledA",
        "2024-05-01T10:00:01Z",
    ));
    kube.add_event(&cluster_event("c1", "C1", 1));
    let a = node_agent(dir.path(), "node-a", &recv.url(), &kubeconfig, &[]);
    wait_until(&recv, &a, "the node's event", |l| times(l, "PulledA") == 1);
    wait_for(WAIT, || {
        a.proc
            .output()
            .contains("grant the agent get, create and update on leases (coordination.k8s.io)")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no hint about RBAC:\n{}", a.proc.output()));
    assert!(a.metric(r#"kiroku_agent_errors_total{kind="lease"}"#) >= 1.0);
    assert!(!is_leader(&a));
    assert_eq!(times(&recv.lines(), "C1"), 0, "nobody leads");

    // Once the Role is granted the agent is elected and collects what waited.
    kube.forbid_leases(false);
    wait_leader(&a);
    wait_until(&recv, &a, "the cluster's event", |l| times(l, "C1") == 1);
    assert_eq!(times(&recv.lines(), "PulledA"), 1);
}
