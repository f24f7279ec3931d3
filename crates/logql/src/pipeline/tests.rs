//! Whole-pipeline behaviour: stages together, with queries as users write them, and the
//! recorded answers of Loki 3.7 replayed entry by entry through the pipeline alone.

use std::collections::HashMap;

use protocol::Labels;

use super::*;
use crate::ast::{Expr, LogExpr, SampleExpr};
use crate::detect;

fn log_expr(q: &str) -> LogExpr {
    match crate::parse(q) {
        Ok(Expr::Log(l)) => l,
        other => panic!("{q} is not a log query: {other:?}"),
    }
}

fn pipeline(q: &str) -> Pipeline {
    Pipeline::new(&log_expr(q).pipeline, None).unwrap_or_else(|e| panic!("{q}: {e}"))
}

type Out = (String, Vec<(String, String, Category)>);

fn run(q: &str, stream: &[(&str, &str)], meta: &[(&str, &str)], line: &str) -> Option<Out> {
    let p = pipeline(q);
    let labels = Labels::from_pairs(stream.iter().copied());
    let mut sp = p.for_stream(&labels);
    let r = sp.process(
        1_795_170_558_000_000_000,
        line.as_bytes(),
        meta.iter().copied(),
    )?;
    Some((
        String::from_utf8_lossy(r.line).into_owned(),
        r.labels
            .iter()
            .map(|(n, v, c)| (n.to_string(), v.to_string(), c))
            .collect(),
    ))
}

fn labels_of(o: &Out) -> Vec<(&str, &str)> {
    o.1.iter()
        .map(|(n, v, _)| (n.as_str(), v.as_str()))
        .collect()
}

const STREAM: &[(&str, &str)] = &[("app", "api"), ("level", "x")];

#[test]
fn line_filters_drop_lines() {
    let q = r#"{app="api"} |= "timeout" != "healthz" |~ "(?i)UPSTREAM""#;
    assert!(run(q, STREAM, &[], "upstream timeout").is_some());
    assert!(run(q, STREAM, &[], "upstream timeout /healthz").is_none());
    assert!(run(q, STREAM, &[], "timeout").is_none());
    let ip = r#"{app="dns"} |= ip("10.244.0.0/16")"#;
    assert!(run(ip, STREAM, &[], "[INFO] 10.244.1.83:53066 - A").is_some());
    assert!(run(ip, STREAM, &[], "[INFO] 172.17.0.1:53066 - A").is_none());
    let pat = r#"{app="web"} |> "<_> \"GET <_> HTTP/1.1\" 500 <_>""#;
    assert!(
        run(
            pat,
            STREAM,
            &[],
            r#"1.2.3.4 - - [x] "GET /a HTTP/1.1" 500 1 "-""#
        )
        .is_some()
    );
    assert!(
        run(
            pat,
            STREAM,
            &[],
            r#"1.2.3.4 - - [x] "GET /a HTTP/1.1" 200 1 "-""#
        )
        .is_none()
    );
}

#[test]
fn json_then_filters_and_formats() {
    let line = r#"{"level":"error","status":503,"duration_ms":1500.5,"user":{"name":"bob"}}"#;
    let q = r#"{app="api"} | json | status >= 500 and duration_ms > 1000 | line_format "{{.level_extracted}} {{.user_name}}""#;
    let o = run(q, STREAM, &[], line).unwrap();
    assert_eq!(o.0, "error bob");
    assert!(labels_of(&o).contains(&("level_extracted", "error")));
    assert!(run(q, STREAM, &[], &line.replace("503", "200")).is_none());
}

#[test]
fn precedence_and_categories() {
    // Metadata hides a stream label of the same name... it is renamed on the way in.
    let o = run(
        r#"{app="api"} | logfmt"#,
        STREAM,
        &[("trace_id", "t1"), ("app", "m")],
        "trace_id=parsed pod=p1",
    )
    .unwrap();
    let want = vec![
        ("app".to_string(), "api".to_string(), Category::Stream),
        (
            "app_extracted".into(),
            "m".into(),
            Category::StructuredMetadata,
        ),
        ("level".into(), "x".into(), Category::Stream),
        ("pod".into(), "p1".into(), Category::Parsed),
        ("trace_id".into(), "t1".into(), Category::StructuredMetadata),
        (
            "trace_id_extracted".into(),
            "parsed".into(),
            Category::Parsed,
        ),
    ];
    assert_eq!(o.1, want);
    // A rename moves a metadata label into the parsed category.
    let o = run(
        r#"{app="api"} | label_format tid=trace_id"#,
        STREAM,
        &[("trace_id", "t1")],
        "x",
    )
    .unwrap();
    assert!(o.1.contains(&("tid".into(), "t1".into(), Category::Parsed)));
    assert!(!o.1.iter().any(|l| l.0 == "trace_id"));
}

#[test]
fn label_filter_errors_keep_lines() {
    let q = r#"{app="w"} | logfmt | size > 1MB"#;
    let o = run(q, STREAM, &[], "size=lots").unwrap();
    assert!(labels_of(&o).contains(&("__error__", "LabelFilterErr")));
    assert!(labels_of(&o).contains(&(
        "__error_details__",
        "strconv.ParseFloat: parsing \"\": invalid syntax"
    )));
    // Without the label, a numeric filter drops the line.
    assert!(run(q, STREAM, &[], "other=1").is_none());
    // `__error__=""` then removes the erroring line.
    assert!(
        run(
            r#"{app="w"} | logfmt | size > 1MB | __error__="""#,
            STREAM,
            &[],
            "size=lots"
        )
        .is_none()
    );
}

#[test]
fn formats_drop_keep() {
    let line = r#"{"a":"1","b":"2","c":"3"}"#;
    let o = run(r#"{app="api"} | json | keep a, b="2""#, STREAM, &[], line).unwrap();
    assert_eq!(labels_of(&o), vec![("a", "1"), ("b", "2")]);
    let o = run(
        r#"{app="api"} | json | drop a, c=~"[0-9]", app"#,
        STREAM,
        &[],
        line,
    )
    .unwrap();
    assert_eq!(labels_of(&o), vec![("b", "2"), ("level", "x")]);
    // Templates in one label_format see the labels as they were before the stage.
    let o = run(
        r#"{app="api"} | json | label_format a="x{{.a}}", b="{{.a}}""#,
        STREAM,
        &[],
        line,
    )
    .unwrap();
    assert!(labels_of(&o).contains(&("a", "x1")));
    assert!(labels_of(&o).contains(&("b", "1")));
    // A template error keeps the line and labels the entry.
    let o = run(
        r#"{app="api"} | line_format "{{ .app.x }}""#,
        STREAM,
        &[],
        "orig",
    )
    .unwrap();
    assert_eq!(o.0, "orig");
    assert!(labels_of(&o).contains(&("__error__", "TemplateFormatErr")));
}

#[test]
fn decolorize_and_reordering() {
    let line = "\u{1b}[31mERROR\u{1b}[0m [main] boom";
    let o = run(r#"{app="x"} | decolorize"#, STREAM, &[], line).unwrap();
    assert_eq!(o.0, "ERROR [main] boom");
    // Loki runs a line filter written after `decolorize` before it.
    assert!(
        run(
            r#"{app="x"} | decolorize |= "ERROR [main]""#,
            STREAM,
            &[],
            line
        )
        .is_none()
    );
    assert!(
        run(
            r#"{app="x"} | decolorize | line_format "{{__line__}}" |= "ERROR [main]""#,
            STREAM,
            &[],
            line
        )
        .is_some()
    );
}

#[test]
fn unwrap_values() {
    let ex = match crate::parse(
        r#"sum_over_time({app="w"} | logfmt | unwrap bytes(size) | __error__="" [5m])"#,
    ) {
        Ok(Expr::Sample(SampleExpr::Range(r))) => r,
        other => panic!("{other:?}"),
    };
    let p = Pipeline::new(&ex.range.log.pipeline, ex.range.unwrap.as_ref()).unwrap();
    let labels = Labels::from_pairs([("app", "w")]);
    let mut sp = p.for_stream(&labels);
    let r = sp.process(0, b"size=96KB q=a", std::iter::empty()).unwrap();
    assert_eq!(r.value, Some(96_000.0));
    assert_eq!(r.labels.get("size"), None);
    assert_eq!(r.labels.get("q"), Some("a"));
    assert!(sp.process(0, b"size=lots", std::iter::empty()).is_none());
    assert!(sp.process(0, b"q=a", std::iter::empty()).is_none());
    // Without the post filter the error is kept, with the label.
    let p = Pipeline::new(
        &ex.range.log.pipeline,
        Some(&Unwrap {
            post_filters: vec![],
            ..ex.range.unwrap.clone().unwrap()
        }),
    )
    .unwrap();
    let mut sp = p.for_stream(&labels);
    let r = sp.process(0, b"size=lots", std::iter::empty()).unwrap();
    assert_eq!(r.value, Some(0.0));
    assert_eq!(r.labels.get("__error__"), Some("SampleExtractionErr"));
    assert_eq!(r.labels.get("size"), Some("lots"));
}

#[test]
fn planning_hints() {
    assert!(!pipeline(r#"{app="x"} | level="error""#).needs_lines());
    assert!(!pipeline(r#"{app="x"} | line_format "{{.app}}""#).needs_lines());
    assert!(pipeline(r#"{app="x"} | json"#).needs_lines());
    assert!(!pipeline(r#"{app="x"} |= "a""#).needs_metadata());
    assert!(pipeline(r#"{app="x"} | json"#).needs_metadata());
    assert_eq!(
        pipeline(r#"{app="x"} |= "error" | json |= "user" | level="x" |= "late""#).required_text(),
        Some(RequiredText::All(vec![
            RequiredText::Literal {
                text: "error".into(),
                case_insensitive: false
            },
            RequiredText::Literal {
                text: "user".into(),
                case_insensitive: false
            },
        ]))
    );
    assert_eq!(pipeline(r#"{app="x"} != "error""#).required_text(), None);
}

#[test]
fn grouping_hints_skip_parsing_like_loki() {
    let e = log_expr(r#"{app="api"} | json"#);
    let g = Grouping {
        without: false,
        labels: vec![],
    };
    // `sum(count_over_time(... | json))`: the parser does not run, so no error.
    let p = Pipeline::new(&e.pipeline, None)
        .unwrap()
        .hint_grouping(Some(&g), false);
    let labels = Labels::from_pairs([("app", "api")]);
    let mut sp = p.for_stream(&labels);
    let r = sp.process(0, b"not json", std::iter::empty()).unwrap();
    assert_eq!(r.labels.get("__error__"), None);
    // `sum by (level)`: only `level` is extracted, and parsing stops there.
    let g = Grouping {
        without: false,
        labels: vec!["level".into()],
    };
    let p = Pipeline::new(&e.pipeline, None)
        .unwrap()
        .hint_grouping(Some(&g), false);
    let mut sp = p.for_stream(&labels);
    let r = sp
        .process(
            0,
            br#"{"level":"info","status":200, bad"#,
            std::iter::empty(),
        )
        .unwrap();
    assert_eq!(r.labels.get("level"), Some("info"));
    assert_eq!(r.labels.get("status"), None);
    assert_eq!(r.labels.get("__error__"), None);
    let r = sp.process(0, b"not json", std::iter::empty()).unwrap();
    assert_eq!(r.labels.get("__error__"), Some("JSONParserErr"));
}

/// Every log query of the recorded cases, entry by entry: each entry Loki returned must
/// come out of our pipeline with the same line and labels (and categories), and when Loki
/// returned fewer entries than the limit, no other entry may pass.
#[test]
fn recorded_log_queries_entry_by_entry() {
    let data = conformance::push_data().expect("the recorded data set loads");
    let cases = conformance::cases().expect("the recorded cases load");
    struct In {
        labels: Labels,
        ts: i64,
        line: String,
        meta: Vec<(String, String)>,
    }
    let mut entries: Vec<In> = Vec::new();
    for s in &data {
        let mut labels = Labels::from_pairs(s.labels.iter().cloned());
        if let Some(n) = detect::service_name(&labels).map(str::to_string) {
            labels.set(detect::SERVICE_NAME, &n);
        }
        for e in &s.entries {
            let meta: Vec<(&str, &str)> = e
                .metadata
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            let level = detect::detected_level(&labels, &meta, &e.line).into_owned();
            let mut m: Vec<(String, String)> = e
                .metadata
                .iter()
                .filter(|(n, _)| n != detect::DETECTED_LEVEL)
                .cloned()
                .collect();
            m.push((detect::DETECTED_LEVEL.into(), level));
            entries.push(In {
                labels: labels.clone(),
                ts: e.ts,
                line: e.line.clone(),
                meta: m,
            });
        }
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for c in &cases {
        if c.status != 200 || c.path != "/loki/api/v1/query_range" {
            continue;
        }
        let Some(q) = c.param("query") else { continue };
        let Ok(Expr::Log(expr)) = crate::parse(q) else {
            continue;
        };
        if expr.pipeline.is_empty() {
            continue;
        }
        let categorize = c
            .header("X-Loki-Response-Encoding-Flags")
            .is_some_and(|v| v.contains("categorize-labels"));
        let start = protocol::time::parse_timestamp(c.param("start").unwrap_or("0")).unwrap_or(0);
        let end = protocol::time::parse_timestamp(c.param("end").unwrap_or("0")).unwrap_or(0);
        let limit: usize = c.param("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
        let p = Pipeline::new(&expr.pipeline, None).unwrap_or_else(|e| panic!("{}: {e}", c.id));
        // What our pipeline makes of every selected entry in the range, by timestamp.
        let mut got: HashMap<i64, Vec<(String, serde_json::Value)>> = HashMap::new();
        let mut passing = 0;
        for e in &entries {
            if e.ts < start || e.ts >= end {
                continue;
            }
            if !expr
                .selector
                .iter()
                .all(|m| m.matches(e.labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            let mut sp = p.for_stream(&e.labels);
            let Some(r) = sp.process(
                e.ts,
                e.line.as_bytes(),
                e.meta.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            ) else {
                continue;
            };
            passing += 1;
            let to_map = |l: Labels| {
                serde_json::Value::Object(
                    l.iter()
                        .map(|x| (x.name.clone(), serde_json::Value::String(x.value.clone())))
                        .collect(),
                )
            };
            let desc = if categorize {
                serde_json::json!({
                    "stream": to_map(r.labels.category(Category::Stream)),
                    "structuredMetadata": to_map(r.labels.category(Category::StructuredMetadata)),
                    "parsed": to_map(r.labels.category(Category::Parsed)),
                })
            } else {
                serde_json::json!({"stream": to_map(r.labels.to_labels())})
            };
            got.entry(e.ts)
                .or_default()
                .push((String::from_utf8_lossy(r.line).into_owned(), desc));
        }
        let mut expected = 0;
        let results = c.body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for s in &results {
            for v in s["values"].as_array().cloned().unwrap_or_default() {
                expected += 1;
                let ts: i64 = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                let line = v[1].as_str().unwrap_or("").to_string();
                let mut desc = serde_json::json!({"stream": s["stream"].clone()});
                if categorize {
                    let cat = v.get(2).cloned().unwrap_or_default();
                    let empty = serde_json::json!({});
                    desc = serde_json::json!({
                        "stream": s["stream"].clone(),
                        "structuredMetadata": cat.get("structuredMetadata").cloned().unwrap_or(empty.clone()),
                        "parsed": cat.get("parsed").cloned().unwrap_or(empty),
                    });
                }
                let ok = got
                    .get(&ts)
                    .is_some_and(|outs| outs.iter().any(|(l, d)| *l == line && *d == desc));
                if !ok {
                    failures.push(format!(
                        "{}: entry {ts} {line:?} {desc} not produced; we made {:?}",
                        c.id,
                        got.get(&ts)
                    ));
                }
            }
        }
        if expected < limit && passing != expected {
            failures.push(format!(
                "{}: Loki returned {expected} entries, {passing} pass our pipeline",
                c.id
            ));
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} recorded log queries found");
    let shown: Vec<&String> = failures.iter().take(20).collect();
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{shown:#?}",
        failures.len()
    );
}

/// Lines with more fields than the label set compares one by one (it indexes them then)
/// keep the same rules: the first of a repeated key wins, a later parser does not
/// overwrite it, a formatter does, and names that collide with stream labels get
/// `_extracted`.
#[test]
fn many_fields_follow_the_rules_of_few() {
    for n in [3, 40, 5000] {
        let mut line: Vec<String> = (0..n).map(|i| format!("k{i}=v{i}")).collect();
        line.push("k0=again app=web".into());
        line.push(format!("k{}=again", n - 1));
        let line = line.join(" ");
        let q = r#"{app="api"} | logfmt | logfmt | label_format k1="new""#;
        let out = run(q, STREAM, &[], &line).unwrap();
        let got: HashMap<&str, &str> = labels_of(&out).into_iter().collect();
        assert_eq!(got.len(), n + 3, "{n} fields");
        assert_eq!(got["k0"], "v0");
        assert_eq!(got["k1"], "new");
        assert_eq!(got[format!("k{}", n - 1).as_str()], format!("v{}", n - 1));
        assert_eq!(got["app"], "api");
        assert_eq!(got["app_extracted"], "web");
    }
}
