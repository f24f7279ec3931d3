//! `kiroku query`, `labels` and `series` end to end: a real `kiroku server`, lines pushed
//! through its push API, and the real binary's client subcommands run as child processes,
//! their stdout, stderr and exit codes checked as a user would see them.

use std::path::Path;
use std::time::Duration;

use cli::testkit::{CliOutput, PushStream, Server, free_port, push, run_cli};

const T0: i64 = 1_714_557_600_000_000_000; // 2024-05-01T10:00:00Z
const SEC: i64 = 1_000_000_000;
const FROM: &str = "2024-05-01T10:00:00Z";
const TO: &str = "2024-05-01T10:05:00Z";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kiroku"))
}

fn kiroku(server: &Server, args: &[&str]) -> CliOutput {
    let mut all = vec!["--addr", server.addr()];
    all.extend_from_slice(args);
    // The subcommand comes first.
    all.rotate_left(2);
    run_cli(bin(), &all, &[], Duration::from_secs(60))
}

fn server(extra: &[&str]) -> Server {
    Server::start(bin(), extra).unwrap_or_else(|e| panic!("{e}"))
}

/// Two pods of `app="pay"` logging at the same instants (ties across streams), pay-1 with
/// two more lines at T0+30s (ties within a stream): 122 lines in all.
fn push_pay(s: &Server) {
    let mut a: Vec<(i64, String)> = (0..60)
        .map(|i| (T0 + i * SEC, format!("pay-1 line {i}")))
        .collect();
    a.push((T0 + 30 * SEC, "pay-1 extra a".into()));
    a.push((T0 + 30 * SEC, "pay-1 extra b".into()));
    a.sort();
    let b: Vec<(i64, String)> = (0..60)
        .map(|i| (T0 + i * SEC, format!("pay-2 line {i}")))
        .collect();
    push(
        s.addr(),
        None,
        &[
            PushStream {
                labels: r#"{app="pay", pod="pay-1"}"#,
                entries: a,
            },
            PushStream {
                labels: r#"{app="pay", pod="pay-2"}"#,
                entries: b,
            },
        ],
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", s.output()));
}

fn jsonl(out: &CliOutput) -> Vec<serde_json::Value> {
    assert!(out.success(), "{out:?}");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn paging_past_the_page_size_returns_every_line_once_in_order() {
    let s = server(&[]);
    push_pay(&s);
    let q = r#"{app="pay"}"#;
    let window = ["--from", FROM, "--to", TO];
    let whole = kiroku(
        &s,
        &[
            &["query", q, "--limit", "0", "--forward", "-o", "jsonl"],
            &window[..],
        ]
        .concat(),
    );
    let paged = kiroku(
        &s,
        &[
            &[
                "query",
                q,
                "--limit",
                "0",
                "--batch",
                "7",
                "--forward",
                "-o",
                "jsonl",
            ],
            &window[..],
        ]
        .concat(),
    );
    let whole = jsonl(&whole);
    let paged = jsonl(&paged);
    assert_eq!(paged.len(), 122, "every line, none twice");
    let key = |v: &serde_json::Value| {
        (
            v["timestamp"].to_string(),
            v["labels"]["pod"].to_string(),
            v["line"].to_string(),
        )
    };
    let mut a: Vec<_> = paged.iter().map(key).collect();
    let mut b: Vec<_> = whole.iter().map(key).collect();
    assert!(a.windows(2).all(|w| w[0].0 <= w[1].0), "oldest first");
    a.sort();
    b.sort();
    assert_eq!(a, b);
    let lines: Vec<&str> = paged.iter().map(|v| v["line"].as_str().unwrap()).collect();
    for extra in [
        "pay-1 extra a",
        "pay-1 extra b",
        "pay-1 line 30",
        "pay-2 line 30",
    ] {
        assert_eq!(lines.iter().filter(|l| **l == extra).count(), 1, "{extra}");
    }
}

#[test]
fn a_limit_beyond_one_page_prints_exactly_the_newest_lines() {
    let s = server(&[]);
    push_pay(&s);
    let out = kiroku(
        &s,
        &[
            "query",
            r#"{app="pay", pod="pay-2"}"#,
            "--from",
            FROM,
            "--to",
            TO,
            "--limit",
            "25",
            "--batch",
            "4",
            "-o",
            "raw",
        ],
    );
    assert!(out.success(), "{out:?}");
    let want: Vec<String> = (35..60).rev().map(|i| format!("pay-2 line {i}")).collect();
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want);
}

#[test]
fn default_output_is_time_labels_and_line_with_common_labels_on_stderr() {
    let s = server(&[]);
    push_pay(&s);
    let out = kiroku(
        &s,
        &[
            "query",
            r#"{app="pay"} |~ "line 5$""#,
            "--from",
            FROM,
            "--to",
            TO,
            "-z",
            "utc",
        ],
    );
    assert!(out.success(), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    // Newest first; same instant, so in the order of their labels.
    assert!(
        lines[0].starts_with("2024-05-01T10:00:05.000Z {"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains(r#"pod="pay-1""#) && lines[0].ends_with(" pay-1 line 5"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#"pod="pay-2""#) && lines[1].ends_with(" pay-2 line 5"),
        "{}",
        lines[1]
    );
    assert!(
        !lines[0].contains(r#"app="pay""#),
        "shared labels are not repeated: {}",
        lines[0]
    );
    assert!(
        out.stderr.contains(r#"Common labels: {app="pay""#),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains('\x1b'), "no colour into a pipe");
}

#[test]
fn metric_queries_print_tables_and_json_lines() {
    let s = server(&[]);
    push_pay(&s);
    let q = r#"sum by (pod) (count_over_time({app="pay"}[1m]))"#;
    // At T0+95s the last minute holds lines 36..59 of each pod.
    let out = kiroku(
        &s,
        &["query", q, "--instant", "--to", "2024-05-01T10:01:35Z"],
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "pod    VALUE\npay-1  24\npay-2  24\n");
    let out = kiroku(
        &s,
        &[
            "query",
            q,
            "--instant",
            "--to",
            "2024-05-01T10:01:35Z",
            "-o",
            "jsonl",
            "-z",
            "utc",
        ],
    );
    let rows = jsonl(&out);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["metric"]["pod"], "pay-1");
    assert_eq!(rows[0]["value"], 24.0);
    assert_eq!(rows[0]["timestamp"], "2024-05-01T10:01:35Z");
    // A scalar is the value at the query's time (Loki's answer carries a time of its own).
    let scalar = [
        "query",
        "1 + 1",
        "--instant",
        "--to",
        "2024-05-01T10:01:35Z",
        "-z",
        "utc",
    ];
    let out = kiroku(&s, &scalar);
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stdout,
        "TIME                      VALUE\n2024-05-01T10:01:35.000Z  2\n"
    );
    let out = kiroku(&s, &[&scalar[..], &["-o", "jsonl"]].concat());
    assert_eq!(jsonl(&out)[0]["timestamp"], "2024-05-01T10:01:35Z");
    let out = kiroku(
        &s,
        &[
            "query",
            q,
            "--from",
            "2024-05-01T10:01:00Z",
            "--to",
            "2024-05-01T10:02:00Z",
            "--step",
            "30s",
            "-z",
            "utc",
        ],
    );
    assert!(out.success(), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TIME", "pod", "VALUE"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2024-05-01T10:01:30.000Z  pay-2")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_query_is_shown_with_a_caret_under_the_error() {
    let s = server(&[]);
    let out = kiroku(&s, &["query", r#"{app="pay"} |= foo"#]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let err: Vec<&str> = out.stderr.lines().collect();
    assert!(
        err[0].starts_with("kiroku: bad query: syntax error: unexpected IDENTIFIER"),
        "{}",
        out.stderr
    );
    assert_eq!(err[1], r#"  {app="pay"} |= foo"#);
    assert_eq!(
        err[2],
        format!("  {}^", " ".repeat(15)),
        "the caret is under `foo`"
    );
    let out = kiroku(&s, &["query", r#"{app="pay""#]);
    let err: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(err[2], format!("  {}^", " ".repeat(10)), "{}", out.stderr);
}

#[test]
fn no_server_at_the_address_says_how_to_start_one() {
    let port = free_port().unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["query", "{a=\"b\"}"],
        vec!["labels"],
        vec!["series"],
        vec!["logs", "web-1"],
    ] {
        let mut args = args.clone();
        args.extend(["--addr", &addr]);
        let out = run_cli(bin(), &args, &[], Duration::from_secs(60));
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim_end(),
            format!(
                "kiroku: no Loki-compatible server at {addr} (connection refused): start one with 'kiroku server' or pass --addr"
            ),
            "{args:?}"
        );
    }
}

#[test]
fn the_address_comes_from_kiroku_addr_then_loki_addr() {
    let s = server(&[]);
    push_pay(&s);
    let args = ["labels", "app", "--from", FROM, "--to", TO];
    let out = run_cli(
        bin(),
        &args,
        &[("LOKI_ADDR", s.addr())],
        Duration::from_secs(60),
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "pay\n");
    let dead = format!("http://127.0.0.1:{}", free_port().unwrap());
    let out = run_cli(
        bin(),
        &args,
        &[("LOKI_ADDR", s.addr()), ("KIROKU_ADDR", &dead)],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains(&dead),
        "KIROKU_ADDR wins: {}",
        out.stderr
    );
}

#[test]
fn a_server_that_needs_a_tenant_says_which_flag_to_pass() {
    let s = server(&["--auth", "header"]);
    push(
        s.addr(),
        Some("team-a"),
        &[PushStream {
            labels: r#"{app="pay"}"#,
            entries: vec![(T0, "for team a".into())],
        }],
    )
    .unwrap();
    let out = kiroku(&s, &["query", r#"{app="pay"}"#, "--from", FROM, "--to", TO]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("needs a tenant") && out.stderr.contains("--org-id"),
        "{}",
        out.stderr
    );
    let out = kiroku(
        &s,
        &[
            "query",
            r#"{app="pay"}"#,
            "--from",
            FROM,
            "--to",
            TO,
            "--org-id",
            "team-a",
            "-o",
            "raw",
        ],
    );
    assert_eq!(out.stdout, "for team a\n", "{out:?}");
    let args = [
        "query",
        r#"{app="pay"}"#,
        "--from",
        FROM,
        "--to",
        TO,
        "-o",
        "raw",
        "--addr",
        s.addr(),
    ];
    let out = run_cli(
        bin(),
        &args,
        &[("LOKI_ORG_ID", "team-b")],
        Duration::from_secs(60),
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "", "another tenant sees nothing");
}

#[test]
fn labels_and_series_list_what_was_pushed() {
    let s = server(&[]);
    push_pay(&s);
    let w = ["--from", FROM, "--to", TO];
    let out = kiroku(&s, &[&["labels"], &w[..]].concat());
    assert!(out.success(), "{out:?}");
    let names: Vec<&str> = out.stdout.lines().collect();
    assert!(
        names.contains(&"app") && names.contains(&"pod"),
        "{names:?}"
    );
    let out = kiroku(&s, &[&["labels", "pod"], &w[..]].concat());
    assert_eq!(out.stdout, "pay-1\npay-2\n", "{out:?}");
    let out = kiroku(&s, &[&["series", r#"{pod="pay-2"}"#], &w[..]].concat());
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with(r#"{app="pay", pod="pay-2""#),
        "{}",
        out.stdout
    );
    let out = kiroku(&s, &[&["series", "--analyze-labels"], &w[..]].concat());
    assert!(out.success(), "{out:?}");
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["LABEL", "VALUES", "STREAMS"]);
    assert_eq!(rows[1], ["pod", "2", "2"], "{}", out.stdout);
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    use std::io::{BufRead, BufReader};
    let s = server(&[]);
    push_pay(&s);
    let mut child = cli::testkit::cli_command(
        bin(),
        &[
            "query",
            r#"{app="pay"}"#,
            "--from",
            FROM,
            "--to",
            TO,
            "--limit",
            "0",
            "--batch",
            "5",
            "-o",
            "raw",
            "--addr",
            s.addr(),
        ],
        &[],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now, as `| head -1` would be.
    let status = child.wait().unwrap();
    assert_eq!(first, "pay-1 line 59\n");
    assert!(status.success(), "{status:?}");
}
