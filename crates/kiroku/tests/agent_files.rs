//! `kiroku agent` end to end on files: the real binary tails a `/var/log/pods` tree the
//! test writes (CRI and Docker files, partial lines, rotation, a restarted container, a
//! deleted pod), and plain `--files`, pushing to a real HTTP receiver that can be down.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use agent::testkit::{
    PushReceiver, Received, TempDir, TestAgent, append, cri_line, docker_line, wait_for,
};

const T0: i64 = 1_714_557_600_000_000_000; // 2024-05-01T10:00:00Z
const WAIT: Duration = Duration::from_secs(30);

type Agent = TestAgent;

fn start_agent(dir: &Path, url: &str, extra: &[&str]) -> Agent {
    let args = [&["--log-level", "info"], extra].concat();
    TestAgent::start(
        Path::new(env!("CARGO_BIN_EXE_kiroku")),
        dir,
        url,
        &args,
        WAIT,
    )
}

fn protocol_time(ns: i64) -> String {
    // RFC 3339 with nanoseconds, as runtimes write it.
    let line = docker_line(ns, "stdout", "");
    line.split("\"time\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or("")
        .to_string()
}

fn by_stream(lines: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in lines {
        m.entry(l.labels.clone()).or_default().push(l.line.clone());
    }
    m
}

fn wait_lines(recv: &PushReceiver, n: usize, agent: &Agent) -> Vec<Received> {
    wait_for(WAIT, || Some(recv.lines()).filter(|l| l.len() >= n)).unwrap_or_else(|| {
        panic!(
            "expected {n} lines, got {}: {:#?}\nagent output:\n{}",
            recv.lines().len(),
            by_stream(&recv.lines()),
            agent.proc.output()
        )
    })
}

const WEB_OUT: &str = r#"{container="app", job="shop/app", namespace="shop", pod="web-1", service_name="web-1", stream="stdout"}"#;
const WEB_ERR: &str = r#"{container="app", job="shop/app", namespace="shop", pod="web-1", service_name="web-1", stream="stderr"}"#;
const API_OUT: &str = r#"{container="srv", job="shop/srv", namespace="shop", pod="api-1", service_name="api-1", stream="stdout"}"#;

#[test]
fn pod_logs_survive_rotation_restarts_and_deletion_exactly_once_in_order() {
    let dir = TempDir::new("agent-files");
    let recv = PushReceiver::start().unwrap();
    let web = dir.path().join("pods/shop_web-1_uid-web/app");
    let api_dir = dir.path().join("pods/shop_api-1_uid-api");
    let api = api_dir.join("srv");
    let mut ts = T0;
    let mut next = || {
        ts += 1_000_000;
        ts
    };
    let mut cri = String::new();
    for i in 1..=5 {
        cri.push_str(&cri_line(next(), "stdout", false, &format!("a{i}")));
    }
    cri.push_str(&cri_line(next(), "stdout", true, "part1-"));
    cri.push_str(&cri_line(next(), "stderr", false, "e1"));
    cri.push_str(&cri_line(next(), "stdout", true, "part2-"));
    cri.push_str(&cri_line(next(), "stdout", false, "end"));
    append(&web.join("0.log"), &cri);
    let mut docker = String::new();
    for i in 1..=2 {
        docker.push_str(&docker_line(next(), "stdout", &format!("d{i}")));
    }
    // Docker splits long lines: a `log` without its newline continues in the next record.
    let t = protocol_time(next());
    docker.push_str(&format!(
        "{{\"log\":\"d3-\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n"
    ));
    docker.push_str(&format!(
        "{{\"log\":\"big\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n"
    ));
    append(&api.join("0.log"), &docker);
    // Leftovers the kubelet compressed must not be read as logs.
    append(
        &web.join("0.log.20240501-090000.gz"),
        "\x1f\u{8b}\x08 not a log",
    );

    let agent = start_agent(dir.path(), &recv.url(), &[]);
    let first = wait_lines(&recv, 10, &agent);
    assert_eq!(first.len(), 10);
    let first_ts = first.iter().find(|l| l.line == "a1").unwrap().ts;
    assert_eq!(
        first_ts,
        T0 + 1_000_000,
        "the container's timestamp is kept"
    );
    let web_line = first.iter().find(|l| l.line == "a1").unwrap();
    assert!(
        web_line
            .metadata
            .contains(&("pod_uid".into(), "uid-web".into()))
    );

    // Rotation: the kubelet renames 0.log, the runtime writes a last line to the old file,
    // then to a new 0.log.
    append(&web.join("0.log"), &cri_line(next(), "stdout", false, "a6"));
    std::fs::rename(web.join("0.log"), web.join("0.log.20240501-100000")).unwrap();
    append(
        &web.join("0.log.20240501-100000"),
        &cri_line(next(), "stdout", false, "a7"),
    );
    append(&web.join("0.log"), &cri_line(next(), "stdout", false, "a8"));
    // The container restarts: 1.log.
    append(&web.join("1.log"), &cri_line(next(), "stdout", false, "r1"));
    // The api pod writes its last line and is deleted at once.
    append(&api.join("0.log"), &docker_line(next(), "stdout", "d4"));
    std::fs::remove_dir_all(&api_dir).unwrap();

    let all = wait_lines(&recv, 15, &agent);
    let streams = by_stream(&all);
    assert_eq!(
        streams.get(WEB_OUT).unwrap(),
        &[
            "a1",
            "a2",
            "a3",
            "a4",
            "a5",
            "part1-part2-end",
            "a6",
            "a7",
            "a8",
            "r1"
        ]
    );
    assert_eq!(streams.get(WEB_ERR).unwrap(), &["e1"]);
    assert_eq!(streams.get(API_OUT).unwrap(), &["d1", "d2", "d3-big", "d4"]);
    assert_eq!(streams.len(), 3, "{streams:#?}");
    // Nothing arrives twice, even after a while.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(recv.lines().len(), 15);
    assert!(agent.metric("kiroku_agent_lines_sent_total") >= 15.0);
    let out = agent.proc.output();
    assert_eq!(
        out.matches("metadata enrichment is off").count(),
        1,
        "{out}"
    );
}

#[test]
fn server_down_then_back_delivers_every_line_once_across_an_agent_restart() {
    let dir = TempDir::new("agent-outage");
    let mut recv = PushReceiver::start().unwrap();
    let addr = recv.addr().to_string();
    let url = recv.url();
    let file = dir.path().join("pods/shop_job-1_uid-job/worker/0.log");
    let write = |from: usize, to: usize| {
        let mut s = String::new();
        for i in from..to {
            s.push_str(&cri_line(
                T0 + i as i64,
                "stdout",
                false,
                &format!("line {i:05}"),
            ));
        }
        append(&file, &s);
    };
    write(0, 200);
    let mut agent = start_agent(dir.path(), &url, &[]);
    wait_lines(&recv, 200, &agent);

    // The server answers 503: lines wait in the disk buffer.
    recv.fail_with(Some(503));
    write(200, 500);
    let buffered = wait_for(WAIT, || {
        (agent.metric("kiroku_agent_push_retries_total") > 0.0
            && agent.metric("kiroku_agent_buffer_bytes") > 0.0)
            .then_some(())
    });
    assert!(buffered.is_some(), "{}", agent.proc.output());

    // The agent restarts while the server is still failing.
    assert!(
        agent
            .proc
            .terminate(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "{}",
        agent.proc.output()
    );
    agent = start_agent(dir.path(), &url, &[]);
    write(500, 600);
    // Now the server is gone altogether (connection refused), then back on the same port.
    let before = recv.lines();
    recv.stop();
    std::thread::sleep(Duration::from_millis(300));
    write(600, 700);
    let recv2 = PushReceiver::start_on(&addr).unwrap();
    let got = wait_for(WAIT, || {
        let n = before.len() + recv2.lines().len();
        (n >= 700).then_some(())
    });
    assert!(
        got.is_some(),
        "only {} lines arrived\n{}",
        before.len() + recv2.lines().len(),
        agent.proc.output()
    );
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = before
        .iter()
        .chain(recv2.lines().iter())
        .map(|l| l.line.clone())
        .collect();
    let want: Vec<String> = (0..700).map(|i| format!("line {i:05}")).collect();
    assert_eq!(lines, want, "every line exactly once, in order");
    assert!(agent.metric("kiroku_agent_lines_dropped_total") == 0.0);
}

#[test]
fn bad_input_is_counted_and_everything_else_still_arrives() {
    let dir = TempDir::new("agent-bad");
    let recv = PushReceiver::start().unwrap();
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    append(&plain.join("good.log"), "hello\nworld\r\n");
    let mut garbage = b"bin:".to_vec();
    garbage.extend((0u8..=255).filter(|b| *b != b'\n'));
    garbage.extend_from_slice(b"\nbad utf8 \xff\xfe end\n");
    std::fs::write(plain.join("garbage.log"), &garbage).unwrap();
    let mut huge = vec![b'x'; 10 << 20];
    huge.extend_from_slice(b"\nafter-huge\n");
    std::fs::write(plain.join("huge.log"), &huge).unwrap();
    std::fs::create_dir_all(plain.join("dir.log")).unwrap();
    // A CRI pod file with a line that is not CRI.
    append(
        &dir.path().join("pods/ns_p_u/c/0.log"),
        &format!(
            "{}not a cri line\n{}",
            cri_line(T0, "stdout", false, "cri-ok"),
            cri_line(T0 + 2, "stdout", false, "cri-ok-2")
        ),
    );
    let glob = format!("{}/*.log", plain.display());
    let agent = start_agent(
        dir.path(),
        &recv.url(),
        &[
            "--files",
            &glob,
            "--label",
            "job=laptop",
            "--label",
            "env=dev",
            "--org-id",
            "tenant-a",
            "--bearer-token-file",
            &token.to_string_lossy(),
            "--max-line-bytes",
            "64KiB",
        ],
    );
    let lines = wait_lines(&recv, 9, &agent);
    let find = |s: &str| {
        lines
            .iter()
            .find(|l| l.line.starts_with(s))
            .unwrap_or_else(|| panic!("no line {s:?} in {lines:#?}"))
    };
    let good = find("hello");
    assert_eq!(
        good.labels,
        format!(
            r#"{{env="dev", filename="{}", job="laptop"}}"#,
            plain.join("good.log").display()
        )
    );
    assert_eq!(find("world").line, "world", "CRLF endings are trimmed");
    assert!(find("bad utf8").line.contains('\u{fffd}'));
    assert!(find("bin:").line.len() > 200);
    assert_eq!(
        find("xxxx").line.len(),
        64 << 10,
        "a 10 MiB line is cut to --max-line-bytes"
    );
    find("after-huge");
    find("not a cri line");
    find("cri-ok-2");
    assert!(agent.metric("kiroku_agent_invalid_utf8_lines_total") >= 1.0);
    assert!(agent.metric("kiroku_agent_lines_truncated_total") >= 1.0);
    assert_eq!(
        agent.metric(r#"kiroku_agent_errors_total{kind="not_a_file"}"#),
        1.0
    );
    assert!(agent.metric(r#"kiroku_agent_errors_total{kind="parse"}"#) >= 1.0);
    let h = recv.last_headers().unwrap();
    assert_eq!(h.get("x-scope-orgid").unwrap(), "tenant-a");
    assert_eq!(h.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(h.get("content-type").unwrap(), "application/x-protobuf");

    // A file replaced by a directory: said and counted once, the rest goes on.
    let replaced = plain.join("replaced.log");
    append(&replaced, "before-replace\n");
    wait_for(WAIT, || {
        recv.lines()
            .iter()
            .any(|l| l.line == "before-replace")
            .then_some(())
    })
    .expect("line of the file to replace");
    std::fs::remove_file(&replaced).unwrap();
    std::fs::create_dir(&replaced).unwrap();
    wait_for(WAIT, || {
        (agent.metric(r#"kiroku_agent_errors_total{kind="not_a_file"}"#) == 2.0).then_some(())
    })
    .expect("the directory is reported");

    // Truncation in place: the file is read again from its start.
    let trunc = plain.join("trunc.log");
    append(&trunc, "t1\nt2\nt3\n");
    wait_for(WAIT, || {
        recv.lines().iter().any(|l| l.line == "t3").then_some(())
    })
    .expect("lines before truncation");
    std::fs::write(&trunc, "n1\n").unwrap();
    wait_for(WAIT, || {
        recv.lines().iter().any(|l| l.line == "n1").then_some(())
    })
    .expect("line after truncation");

    // A 400 is final: the batch is dropped and counted, later lines still go.
    recv.fail_with(Some(400));
    append(&plain.join("good.log"), "refused\n");
    wait_for(WAIT, || {
        (agent.metric("kiroku_agent_lines_dropped_total") >= 1.0).then_some(())
    })
    .expect("drop counted");
    recv.fail_with(None);
    append(&plain.join("good.log"), "after-400\n");
    wait_for(WAIT, || {
        recv.lines()
            .iter()
            .any(|l| l.line == "after-400")
            .then_some(())
    })
    .expect("line after a 400");
    assert!(!recv.lines().iter().any(|l| l.line == "refused"));

    // A 404 (a wrong --url) or a 401 is not the batch's fault: it waits and goes once the
    // server takes it.
    for status in [404, 401] {
        let line = format!("kept through a {status}");
        recv.fail_with(Some(status));
        append(&plain.join("good.log"), &format!("{line}\n"));
        let retries = agent.metric("kiroku_agent_push_retries_total");
        wait_for(WAIT, || {
            (agent.metric("kiroku_agent_push_retries_total") > retries).then_some(())
        })
        .expect("the push is retried");
        recv.fail_with(None);
        wait_for(WAIT, || {
            recv.lines().iter().any(|l| l.line == line).then_some(())
        })
        .unwrap_or_else(|| panic!("{line} never arrived:\n{}", agent.proc.output()));
    }
    assert_eq!(agent.metric("kiroku_agent_lines_dropped_total"), 1.0);
    assert!(
        agent
            .proc
            .output()
            .contains("/loki/api/v1/push is added to --url")
    );
}

#[test]
fn basic_auth_and_static_files_without_kubernetes() {
    let dir = TempDir::new("agent-basic");
    let recv = PushReceiver::start().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "pa55\n").unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\n");
    let glob = log.to_string_lossy().into_owned();
    let agent = start_agent(
        dir.path(),
        &recv.url(),
        &[
            "--mode",
            "files",
            "--files",
            &glob,
            "--username",
            "kiroku",
            "--password-file",
            &pw.to_string_lossy(),
        ],
    );
    wait_lines(&recv, 1, &agent);
    let h = recv.last_headers().unwrap();
    assert_eq!(h.get("authorization").unwrap(), "Basic a2lyb2t1OnBhNTU=");
    // A line without its newline waits for it.
    append(&log, "tw");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(recv.lines().len(), 1);
    append(&log, "o\n");
    let lines = wait_lines(&recv, 2, &agent);
    assert_eq!(lines[1].line, "two");
    // 429 with Retry-After: the agent waits as long as the server asks.
    recv.fail_with(Some(429));
    append(&log, "three\n");
    wait_for(WAIT, || {
        agent
            .proc
            .output()
            .contains("retry_in_ms=2000")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("Retry-After not honoured:\n{}", agent.proc.output()));
    recv.fail_with(None);
    let lines = wait_lines(&recv, 3, &agent);
    assert_eq!(lines[2].line, "three");
}

#[test]
fn a_full_disk_buffer_pauses_reading_and_a_stop_loses_nothing() {
    let dir = TempDir::new("agent-full");
    let recv = PushReceiver::start().unwrap();
    recv.fail_with(Some(503));
    let file = dir.path().join("pods/shop_bulk-1_uid-bulk/app/0.log");
    let mut seed: u64 = 42;
    let mut s = String::new();
    let n = 30_000;
    for i in 0..n {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&cri_line(
            T0 + i as i64,
            "stdout",
            false,
            &format!("line {i:05} {seed:016x}"),
        ));
    }
    append(&file, &s);
    let args = ["--buffer-max-bytes", "64KiB", "--batch-size", "16KiB"];
    let mut agent = start_agent(dir.path(), &recv.url(), &args);
    // Reading stops once the buffer holds its bound.
    let stalled = wait_for(WAIT, || {
        let read = agent.metric("kiroku_agent_lines_read_total");
        std::thread::sleep(Duration::from_millis(300));
        (read > 0.0 && read == agent.metric("kiroku_agent_lines_read_total")).then_some(read)
    })
    .expect("reading never paused");
    assert!(
        stalled < n as f64,
        "read {stalled} of {n} lines with a 64 KiB buffer"
    );
    let buffered = agent.metric("kiroku_agent_buffer_bytes");
    assert!(
        buffered > 0.0 && buffered <= 65536.0,
        "buffer holds {buffered} bytes"
    );
    // Stopping with a full buffer does not hang.
    let status = agent.proc.terminate(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        agent.proc.output()
    );

    recv.fail_with(None);
    let agent = start_agent(dir.path(), &recv.url(), &args);
    wait_lines(&recv, n, &agent);
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = recv.lines().into_iter().map(|l| l.line).collect();
    assert_eq!(lines.len(), n, "every line exactly once");
    assert!(lines.windows(2).all(|w| w[0] < w[1]), "in order");
}

#[test]
fn a_second_agent_on_the_same_state_refuses_to_start() {
    let dir = TempDir::new("agent-lock");
    let recv = PushReceiver::start().unwrap();
    let first = start_agent(dir.path(), &recv.url(), &[]);
    // Same --positions and --buffer-dir (the test kit puts both under the directory).
    let mut second = TestAgent::spawn(
        Path::new(env!("CARGO_BIN_EXE_kiroku")),
        dir.path(),
        &recv.url(),
        &[],
    );
    let status = wait_for(WAIT, || second.proc.try_wait())
        .unwrap_or_else(|| panic!("the second agent kept running:\n{}", second.proc.output()));
    assert!(!status.success());
    let out = second.proc.output();
    assert!(
        out.contains("is in use by another kiroku agent") && out.contains("--buffer-dir"),
        "{out}"
    );
    // The first one is unharmed and, once it is gone, the state is free again.
    first.stop(WAIT);
    start_agent(dir.path(), &recv.url(), &[]).stop(WAIT);
}
