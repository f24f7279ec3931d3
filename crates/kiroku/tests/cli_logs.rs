//! `kiroku logs` end to end: pod streams shaped as kiroku's agent writes them (namespace,
//! pod, container, stdout and stderr, a termination line per ended container) pushed to a
//! real `kiroku server`, read back by the real binary: selection by name, regex, namespace
//! and container, order, `--tail`, `--timestamps`, `--previous`, colours, the messages for
//! a pod or container that is not there, and `-f` against the server's tail WebSocket.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cli::colour::{RESET, pick};
use cli::testkit::{CliOutput, PushStream, Server, cli_command, push, run_cli};

const SEC: i64 = 1_000_000_000;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kiroku"))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap()
}

struct Fixture {
    server: Server,
}

fn stream(ns: &str, pod: &str, container: &str, out: &str) -> String {
    format!(
        r#"{{container="{container}", job="{ns}/{container}", namespace="{ns}", pod="{pod}", stream="{out}"}}"#
    )
}

fn termination(restart: u32) -> String {
    format!(
        "kiroku_event=container_terminated reason=Error exit_code=3 restart_count={restart} container=main pod=crasher namespace=batch"
    )
}

/// Pods of the last half hour: web-1 in two namespaces, web-2, an api pod with a sidecar,
/// and a container that crashed twice.
fn fixture() -> Fixture {
    let server = Server::start(bin(), &[]).unwrap_or_else(|e| panic!("{e}"));
    let b = (now() / SEC - 1800) * SEC;
    let e = |s: f64, l: &str| (b + (s * 1e9) as i64, l.to_string());
    let streams = [
        (
            stream("shop", "web-1", "app", "stdout"),
            vec![e(1.0, "web-1 a"), e(3.0, "web-1 c"), e(5.0, "web-1 e")],
        ),
        (
            stream("shop", "web-1", "app", "stderr"),
            vec![e(2.0, "web-1 b err"), e(4.0, "web-1 d err")],
        ),
        (
            stream("other", "web-1", "app", "stdout"),
            vec![e(2.5, "other web-1 x")],
        ),
        (
            stream("shop", "web-2", "app", "stdout"),
            vec![e(1.5, "web-2 a")],
        ),
        (
            stream("shop", "api-7c9d8-x2zq", "srv", "stdout"),
            vec![e(1.0, "api srv 1"), e(6.0, "api srv 2")],
        ),
        (
            stream("shop", "api-7c9d8-x2zq", "sidecar", "stdout"),
            vec![e(2.0, "api sidecar 1")],
        ),
        (
            stream("batch", "crasher", "main", "stdout"),
            vec![
                e(10.0, "boot 0"),
                e(11.0, "fail 0"),
                e(20.0, "boot 1"),
                e(21.0, "fail 1"),
                e(30.0, "boot 2"),
            ],
        ),
        (
            stream("batch", "crasher", "main", "stderr"),
            vec![e(12.0, &termination(0)), e(22.0, &termination(1))],
        ),
    ];
    let push_streams: Vec<PushStream> = streams
        .iter()
        .map(|(l, entries)| PushStream {
            labels: l,
            entries: entries.clone(),
        })
        .collect();
    push(server.addr(), None, &push_streams).unwrap_or_else(|e| panic!("{e}\n{}", server.output()));
    Fixture { server }
}

impl Fixture {
    fn logs(&self, args: &[&str]) -> CliOutput {
        self.logs_env(args, &[])
    }

    fn logs_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
        let mut all = vec!["logs", "--addr", self.server.addr()];
        all.extend_from_slice(args);
        run_cli(bin(), &all, env, Duration::from_secs(60))
    }
}

fn lines(out: &CliOutput) -> Vec<&str> {
    assert!(out.success(), "{out:?}");
    out.stdout.lines().collect()
}

#[test]
fn one_pod_oldest_first_across_its_streams() {
    let f = fixture();
    assert_eq!(
        lines(&f.logs(&["-n", "shop", "web-1", "-o", "raw"])),
        [
            "web-1 a",
            "web-1 b err",
            "web-1 c",
            "web-1 d err",
            "web-1 e"
        ]
    );
    assert_eq!(
        lines(&f.logs(&["-n", "shop", "web-1", "--tail", "2", "-o", "raw"])),
        ["web-1 d err", "web-1 e"]
    );
}

#[test]
fn prefixes_name_pod_and_container_and_the_namespace_when_several_match() {
    let f = fixture();
    assert_eq!(
        lines(&f.logs(&["-n", "shop", "web-1"]))[..2],
        ["web-1 app web-1 a", "web-1 app web-1 b err"]
    );
    assert_eq!(
        lines(&f.logs(&["web-1"]))[..4],
        [
            "shop web-1 app web-1 a",
            "shop web-1 app web-1 b err",
            "other web-1 app other web-1 x",
            "shop web-1 app web-1 c"
        ]
    );
}

#[test]
fn regexes_select_pods_and_containers() {
    let f = fixture();
    assert_eq!(
        lines(&f.logs(&["api-.*", "-c", "srv", "-o", "raw"])),
        ["api srv 1", "api srv 2"]
    );
    assert_eq!(
        lines(&f.logs(&["-n", "shop", "api-.*"])),
        [
            "api-7c9d8-x2zq srv api srv 1",
            "api-7c9d8-x2zq sidecar api sidecar 1",
            "api-7c9d8-x2zq srv api srv 2"
        ]
    );
    assert_eq!(
        lines(&f.logs(&["-n", "shop", "web-[12]", "-o", "raw"])).len(),
        6
    );
}

#[test]
fn timestamps_come_before_the_line() {
    let f = fixture();
    let out = f.logs(&["-n", "shop", "web-2", "--timestamps", "-o", "raw"]);
    let l = lines(&out);
    assert_eq!(l.len(), 1);
    // 2024-05-01T10:00:01.500000000Z web-2 a
    let (ts, line) = l[0].split_once(' ').unwrap();
    assert_eq!(line, "web-2 a");
    assert_eq!(ts.len(), 30, "{ts}");
    assert!(ts.ends_with(".500000000Z") && &ts[10..11] == "T", "{ts}");
}

#[test]
fn previous_shows_the_instance_before_the_last_restart() {
    let f = fixture();
    let term1 = termination(1);
    assert_eq!(
        lines(&f.logs(&["-n", "batch", "crasher", "--previous", "-o", "raw"])),
        ["boot 1", "fail 1", term1.as_str()]
    );
    // With --tail, the last lines of that instance, oldest first, as kubectl -p --tail.
    assert_eq!(
        lines(&f.logs(&["-n", "batch", "crasher", "-p", "--tail", "2", "-o", "raw"])),
        ["fail 1", term1.as_str()]
    );
    let out = f.logs(&["-n", "shop", "web-2", "--previous"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("no previous container"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_missing_pod_or_container_is_explained() {
    let f = fixture();
    let out = f.logs(&["-n", "shop", "api"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(r#"no pod matching "api" in namespace "shop""#),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("api-7c9d8-x2zq"),
        "similar names are suggested: {}",
        out.stderr
    );
    let out = f.logs(&["-n", "shop", "web-1", "-c", "nope"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("their containers: app"),
        "{}",
        out.stderr
    );
    let out = f.logs(&["web-("]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("not a valid regular expression")
            || out.stderr.contains("neither a name"),
        "{}",
        out.stderr
    );
}

#[test]
fn each_pod_has_its_colour_and_pipes_get_none() {
    let f = fixture();
    let out = f.logs(&["-n", "shop", "web-[12]", "--color", "always"]);
    let l = lines(&out);
    let (p1, c1) = pick("shop/web-1");
    let (p2, c2) = pick("shop/web-2");
    assert_eq!(l[0], format!("{p1}web-1{RESET} {c1}app{RESET} web-1 a"));
    assert_eq!(l[1], format!("{p2}web-2{RESET} {c2}app{RESET} web-2 a"));
    for args in [
        vec!["-n", "shop", "web-1"],
        vec!["-n", "shop", "web-1", "--color", "never"],
    ] {
        let out = f.logs(&args);
        assert!(!out.stdout.contains('\x1b'), "{args:?}: {:?}", out.stdout);
    }
    let out = f.logs_env(
        &["-n", "shop", "web-1", "--color", "auto"],
        &[("NO_COLOR", "1")],
    );
    assert!(out.success() && !out.stdout.contains('\x1b'));
}

/// Reads a child's stdout lines on a thread; `next` waits for one with a deadline.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        Lines::read(child.stdout.take().unwrap())
    }

    fn read(out: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    fn take(&self, n: usize, deadline: Instant) -> Vec<String> {
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(l) => got.push(l),
                Err(_) => break,
            }
        }
        got
    }
}

fn follow_and_push(f: &Fixture, args: &[&str], history: &[&str], labels: &str) {
    let mut all = vec!["--addr", f.server.addr()];
    all.extend_from_slice(args);
    all.rotate_left(2);
    let mut child = cli_command(bin(), &all, &[])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = Lines::of(&mut child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = out.take(history.len(), deadline);
    assert_eq!(first, history, "the lines so far come first");
    // New lines arrive until the marker shows: pushed now, so only the tail can bring them.
    let mut want = Vec::new();
    let mut got = Vec::new();
    for i in 0..3 {
        let line = format!("live {i}");
        push(
            f.server.addr(),
            None,
            &[PushStream {
                labels,
                entries: vec![(now(), line.clone())],
            }],
        )
        .unwrap();
        want.push(line);
        got.extend(out.take(1, deadline));
    }
    let _ = child.kill();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = child.wait();
        let _ = e.read_to_string(&mut stderr);
    }
    assert_eq!(got, want, "each new line once, in order; stderr: {stderr}");
}

#[test]
fn follow_prints_the_existing_lines_then_new_ones_as_they_arrive() {
    let f = fixture();
    follow_and_push(
        &f,
        &["logs", "-n", "shop", "web-2", "-f", "-o", "raw"],
        &["web-2 a"],
        &stream("shop", "web-2", "app", "stdout"),
    );
}

#[test]
fn query_follow_prints_the_last_lines_oldest_first_then_new_ones() {
    let f = fixture();
    follow_and_push(
        &f,
        &[
            "query",
            r#"{namespace="shop", pod="web-1"}"#,
            "-f",
            "--limit",
            "3",
            "-o",
            "raw",
        ],
        &["web-1 c", "web-1 d err", "web-1 e"],
        &stream("shop", "web-1", "app", "stdout"),
    );
}

/// `Common labels:` is said again, narrowed, when lines of a stream without one of them
/// arrive while following, and the lines show the labels it no longer covers.
#[test]
fn query_follow_narrows_the_common_labels_when_a_new_stream_arrives() {
    let f = fixture();
    let mut child = cli_command(
        bin(),
        &["query", r#"{pod="web-2"}"#, "-f", "--addr", f.server.addr()],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let out = Lines::of(&mut child);
    let err = Lines::read(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = out.take(1, deadline);
    assert!(first[0].ends_with(" web-2 a"), "{first:?}");
    let said = err.take(1, deadline);
    assert!(
        said[0].starts_with("Common labels: {") && said[0].contains(r#"stream="stdout""#),
        "{said:?}"
    );
    // Pushed until the tail brings it (the tail may start after the first push).
    let mut got = Vec::new();
    for i in 0..10 {
        push(
            f.server.addr(),
            None,
            &[PushStream {
                labels: &stream("shop", "web-2", "app", "stderr"),
                entries: vec![(now(), format!("web-2 live {i}"))],
            }],
        )
        .unwrap();
        got = out.take(1, Instant::now() + Duration::from_secs(2));
        if !got.is_empty() {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        got.first()
            .is_some_and(|l| l.contains(r#"{stream="stderr"} web-2 live"#)),
        "{got:?}"
    );
    let narrowed = err.take(1, deadline);
    assert_eq!(narrowed, [said[0].replace(r#", stream="stdout""#, "")]);
}

#[test]
fn follow_with_a_limit_shows_only_the_newest_lines_then_new_ones() {
    // Lines of the last seconds, within the tail's overlap for lines that arrive late:
    // the ones older than the newest two were left out on purpose and stay out.
    let f = fixture();
    let labels = stream("shop", "recent", "app", "stdout");
    let t = now() - 2 * SEC;
    let entries = (0..8)
        .map(|i| (t + i * 100_000_000, format!("recent {i}")))
        .collect();
    push(
        f.server.addr(),
        None,
        &[PushStream {
            labels: &labels,
            entries,
        }],
    )
    .unwrap();
    follow_and_push(
        &f,
        &[
            "logs", "-n", "shop", "recent", "-f", "--tail", "2", "-o", "raw",
        ],
        &["recent 6", "recent 7"],
        &labels,
    );
    follow_and_push(
        &f,
        &[
            "query",
            r#"{pod="recent"}"#,
            // logcli's short name for following.
            "-t",
            "--limit",
            "2",
            "-o",
            "raw",
        ],
        &["live 1", "live 2"],
        &labels,
    );
}
