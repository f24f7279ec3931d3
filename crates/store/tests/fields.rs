//! Field columns change nothing a query answers: `| json` and `| logfmt` queries over
//! parts, whose blocks of JSON or logfmt lines carry field columns, answer exactly what
//! the same queries answer over the same entries in memory (where every line is parsed).
//! The lines mix what the columns must get right: fields that scan and lines that do not,
//! nested objects, duplicate and escaped names, quoted, empty and long values, numbers as
//! strings, durations with non-ASCII units, and stream labels and metadata that share a
//! field's name (also the unwrapped one's).

mod common;

use common::*;
use kiroku_store::Store;
use logql::fields::{FieldKind, FieldNames};
use logql::{
    Columns, Direction, Engine, Limits, MemoryEntry, MemorySource, RangeQuery, Select, Source,
};
use proptest::prelude::*;
use protocol::Labels;

const QUERIES: &[&str] = &[
    r#"sum by (level) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"sum by (status) (rate({app=~".+"} | json | status >= 400 [1m]))"#,
    r#"sum by (level, status) (bytes_over_time({app=~".+"} | json [1m]))"#,
    r#"sum by (app) (sum_over_time({app=~".+"} | json | unwrap status [1m]))"#,
    r#"sum by (app) (max_over_time({app=~".+"} | json | __error__="" | unwrap status | __error__="" [1m]))"#,
    r#"sum by (http_code) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"sum by (level_extracted, level) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"count by (a_b) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"sum by (msg) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"sum by (detected_level) (count_over_time({app=~".+"} | json | level="error" [1m]))"#,
    r#"sum by (level, __error__) (count_over_time({app=~".+"} | json [1m]))"#,
    r#"sum(count_over_time({app=~".+"} | json [1m]))"#,
    // Log queries: the columns only decide which lines the filters drop.
    r#"{app=~".+"} | json | status >= 400"#,
    r#"{app=~".+"} | json | level="error" or status > 300"#,
    r#"{app=~".+"} | json | level=~"e.*" | a_b < 0"#,
    r#"{app=~".+"} | json | absent!="1" | app="a1""#,
    r#"{app=~".+"} | json | status="500", level!="info""#,
    r#"{app=~".+"} | json | level_extracted="info""#,
    // The same over logfmt lines, and unwraps whose value alone comes from a column.
    r#"sum by (level) (count_over_time({app=~".+"} | logfmt [1m]))"#,
    r#"sum by (level) (count_over_time({app=~".+"} | logfmt --strict [1m]))"#,
    r#"sum by (level, msg) (count_over_time({app=~".+"} | logfmt --keep-empty [1m]))"#,
    r#"sum by (status) (rate({app=~".+"} | logfmt | status >= 400 [1m]))"#,
    r#"sum by (level_extracted, level) (count_over_time({app=~".+"} | logfmt [1m]))"#,
    r#"quantile_over_time(0.9, {app=~".+"} | logfmt | unwrap duration(duration) [1m]) by (app)"#,
    // Sums of fractions only within a stream: across streams the workers' order varies.
    r#"sum by (app, level) (sum_over_time({app=~".+"} | logfmt | unwrap duration(duration) [1m]))"#,
    r#"max_over_time({app=~".+"} | logfmt | __error__="" | unwrap duration(duration) | __error__="" [1m]) by (level)"#,
    r#"sum by (app) (avg_over_time({app=~".+"} | logfmt | level!="x" | unwrap status [1m]))"#,
    r#"sum by (app) (sum_over_time({app=~".+"} | logfmt | unwrap level [1m]))"#,
    r#"sum by (app) (sum_over_time({app=~".+"} | logfmt | duration != "2s" | unwrap duration(duration) [1m]))"#,
    r#"sum by (app) (sum_over_time({app=~".+"} | json | unwrap status [1m]))"#,
    r#"{app=~".+"} | logfmt | status >= 400"#,
    r#"{app=~".+"} | logfmt | level_extracted="info" or duration="2s""#,
];

/// A member of a JSON line: its name (as written) and its value token.
fn member() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "level",
        "status",
        "a-b",
        "a_b",
        "msg",
        "http",
        "arr",
        "n",
        "lev\\u0065l",
        " ",
    ]);
    let value = prop::sample::select(vec![
        r#""info""#,
        r#""error""#,
        r#""ERROR""#,
        r#""x\"y""#,
        "200",
        "404",
        "500",
        "-1.5e3",
        r#""503""#,
        r#""abc""#,
        r#""""#,
        "true",
        "null",
        "[1,{\"a\":2}]",
        r#"{"code":"7","level":"debug"}"#,
        r#""aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa""#,
    ]);
    (name, value).prop_map(|(n, v)| format!("\"{n}\":{v}"))
}

fn json_line() -> impl Strategy<Value = String> {
    prop::collection::vec(member(), 0..6).prop_map(|m| format!("{{{}}}", m.join(",")))
}

/// A pair of a logfmt line: its key (as written) and its value as it stands.
fn pair() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "level",
        "status",
        "duration",
        "a-b",
        "a_b",
        "msg",
        "level_extracted",
        "ünï",
    ]);
    let value = prop::sample::select(vec![
        "=info",
        "=error",
        "=\"quoted value\"",
        "=\"x\\\"y\"",
        "=\"\"",
        "=",
        "",
        "=200",
        "=500",
        "=\"503\"",
        "=1.5ms",
        "=845µs",
        "=2s",
        "=-3ms",
        "=12",
        "=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ]);
    (key, value).prop_map(|(k, v)| format!("{k}{v}"))
}

fn logfmt_line() -> impl Strategy<Value = String> {
    prop::collection::vec(pair(), 1..6).prop_map(|p| p.join(" "))
}

fn any_line() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => json_line(),
        1 => Just("plain text level=info".to_string()),
        1 => Just(r#"{"level":"info","broken":"#.to_string()),
        1 => json_line().prop_map(|l| format!("  {l} trailing")),
        4 => logfmt_line(),
        1 => Just(r#"level=info msg="unterminated"#.to_string()),
        1 => Just("level=info status=x=y".to_string()),
    ]
}

/// One stream: whether its labels have `level`, whether its lines are all JSON objects,
/// all logfmt (blocks with columns) or mixed, its lines, and which carry metadata.
fn stream() -> impl Strategy<Value = (bool, Vec<(String, u8)>)> {
    (any::<bool>(), 0u8..3).prop_flat_map(|(level_label, kind)| {
        let line = match kind {
            0 => json_line().boxed(),
            1 => logfmt_line().boxed(),
            _ => any_line().boxed(),
        };
        (
            Just(level_label),
            prop::collection::vec((line, 0u8..5), 1..40),
        )
    })
}

fn metadata(kind: u8) -> Vec<(String, String)> {
    match kind {
        1 => vec![("detected_level".into(), "info".into())],
        2 => vec![("level".into(), "meta".into())],
        3 => vec![("duration".into(), "5ms".into())],
        _ => Vec::new(),
    }
}

fn answers(src: &dyn Source, start: i64, end: i64) -> Vec<String> {
    let engine = Engine::new(Limits::default());
    let mut out = Vec::new();
    for q in QUERIES {
        for (limit, direction) in [(100, Direction::Backward), (5, Direction::Forward)] {
            let r = engine.query_range(
                src,
                &RangeQuery {
                    query: q,
                    start,
                    end,
                    step: Some(60_000_000_000),
                    interval: None,
                    limit,
                    direction,
                    categorize_labels: false,
                },
            );
            out.push(match r {
                Ok(r) => format!("{q} {limit} {direction:?}\n{r:?}"),
                Err(e) => format!("{q}\nerror {}: {e}", e.status()),
            });
        }
    }
    out
}

const T0: i64 = 1_700_000_000_000_000_000;

fn stream_labels(i: usize, level_label: bool) -> Labels {
    let mut s = format!(r#"{{app="a{i}""#);
    if level_label {
        s.push_str(r#", level="stream""#);
    }
    s.push('}');
    labels(&s)
}

/// Writes the streams to a store (the first half of each flushed to parts, the rest left
/// in the heads) and to memory; returns both answers to every query.
fn both(streams: &[(bool, Vec<(String, u8)>)]) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let rt = rt();
    let mut mem = MemorySource::new();
    let mut halves: [Vec<(Labels, Vec<Entry>)>; 2] = [Vec::new(), Vec::new()];
    for (i, (level_label, lines)) in streams.iter().enumerate() {
        let l = stream_labels(i, *level_label);
        let entries: Vec<Entry> = lines
            .iter()
            .enumerate()
            .map(|(k, (line, m))| (T0 + k as i64 * 7_000_000_000, line.clone(), metadata(*m)))
            .collect();
        // The store adds the line's detected_level to entries without one.
        mem.push(
            l.clone(),
            leveled(&entries)
                .into_iter()
                .map(|(ts, line, metadata)| MemoryEntry { ts, line, metadata }),
        );
        let mid = entries.len().div_ceil(2);
        halves[0].push((l.clone(), entries[..mid].to_vec()));
        halves[1].push((l, entries[mid..].to_vec()));
    }
    append(&rt, &store, "fake", &halves[0]);
    store.flush().unwrap();
    append(&rt, &store, "fake", &halves[1]);
    let end = T0 + 40 * 7_000_000_000 + 120_000_000_000;
    let r = store.reader(&["fake".to_string()]);
    (answers(&r, T0, end), answers(&mem, T0, end))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn queries_answer_the_same_from_field_columns(
        streams in prop::collection::vec(stream(), 1..4),
    ) {
        let (store, mem) = both(&streams);
        for (s, m) in store.iter().zip(&mem) {
            prop_assert_eq!(s, m);
        }
    }
}

/// A store holding `lines` as one stream, flushed to a part.
fn flushed(lines: &[(String, u8)]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(config(dir.path())).unwrap();
    let entries: Vec<Entry> = lines
        .iter()
        .enumerate()
        .map(|(k, (l, _))| (T0 + k as i64, l.clone(), Vec::new()))
        .collect();
    append(&rt(), &s, "fake", &[(stream_labels(0, false), entries)]);
    s.flush().unwrap();
    (dir, s)
}

/// The first batch of the store's stream, asking for fields `want` and no lines.
fn first_batch(s: &Store, want: &FieldNames) -> logql::Batch {
    let r = s.reader(&["fake".to_string()]);
    let cursors = r
        .select(&Select {
            matchers: &all(),
            start: 0,
            end: i64::MAX,
            direction: Direction::Forward,
            columns: Columns {
                lines: false,
                metadata: true,
            },
            required: None,
            fields: Some(want),
        })
        .unwrap();
    let mut c = cursors.into_iter().next().unwrap();
    c.next_batch().unwrap().unwrap().clone()
}

fn names(kind: FieldKind, name: &str) -> FieldNames {
    FieldNames {
        kind,
        names: vec![name.to_string()],
    }
}

/// The columns are really there and used: a block of JSON lines hands out its fields and
/// no lines when fields are asked, and the answers match.
#[test]
fn a_block_of_json_lines_is_read_through_its_fields() {
    let lines: Vec<(String, u8)> = (0..30)
        .map(|k| {
            let level = ["info", "error", "warn"][k % 3];
            (
                format!(
                    r#"{{"time":"t{k}","level":"{level}","status":{},"msg":"m"}}"#,
                    200 + k
                ),
                (k % 2) as u8,
            )
        })
        .collect();
    let streams = vec![(false, lines.clone()), (true, lines)];
    let (store, mem) = both(&streams);
    assert_eq!(store, mem);
    assert!(store[0].contains("\"error\""), "{}", store[0]);

    let (_dir, s) = flushed(&streams[0].1);
    let b = first_batch(&s, &names(FieldKind::Json, "level"));
    assert!(b.line_data.is_empty());
    let f = b.fields.as_ref().expect("the block has field columns");
    let level = f.columns.iter().find(|c| c.name == "level").unwrap();
    assert_eq!(level.tokens.len(), 3);
    assert_eq!(level.codes.len(), 30);
    // Every name has at most 30 distinct short values here: `time`, `status` and `msg`
    // too.
    assert!(f.uncovered.is_empty());
}

/// A block of logfmt lines hands out its logfmt fields and no lines, and the answers of an
/// unwrap over it match the lines'.
#[test]
fn a_block_of_logfmt_lines_is_read_through_its_fields() {
    let lines: Vec<(String, u8)> = (0..300)
        .map(|k| {
            let level = ["info", "error", "warn"][k % 3];
            (
                format!(
                    r#"ts=2026-11-21T10:00:{k:02}Z level={level} msg="request {k} done" duration={}µs"#,
                    100 + k * 37
                ),
                (k % 2) as u8,
            )
        })
        .collect();
    let streams = vec![(false, lines.clone()), (true, lines)];
    let (store, mem) = both(&streams);
    assert_eq!(store, mem);

    let (_dir, s) = flushed(&streams[0].1);
    let b = first_batch(&s, &names(FieldKind::Logfmt, "duration"));
    assert!(b.line_data.is_empty());
    let f = b.fields.as_ref().expect("the block has field columns");
    assert_eq!(f.kind, FieldKind::Logfmt);
    // Only the column asked for is decoded; `ts` and `msg` are long and unique per line.
    assert_eq!(f.columns.len(), 1);
    assert_eq!(f.columns[0].tokens.len(), 300);
    assert_eq!(&f.columns[0].tokens[1], "137µs".as_bytes());
    assert_eq!(f.uncovered, vec!["ts".to_string(), "msg".to_string()]);
    // Columns of logfmt lines do not stand for `| json`: the lines are read.
    let b = first_batch(&s, &names(FieldKind::Json, "duration"));
    assert!(b.fields.is_none());
    assert!(!b.line_data.is_empty());
}
