//! Property tests: the parser never panics, and what it accepts prints back stably.

use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app".to_string()),
        Just("level".to_string()),
        Just("__error__".to_string()),
        "[a-z_][a-z0-9_]{0,6}".prop_filter("not a keyword", |s| {
            crate::lexer::lex(s)
                .first()
                .is_some_and(|t| matches!(t.tok, crate::lexer::Tok::Ident(_)))
        }),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#""api""#.to_string()),
        Just(r#""a\"b\\c""#.to_string()),
        Just("`C:\\temp`".to_string()),
        Just(r#""注文""#.to_string()),
        "[a-z .*|]{0,8}".prop_map(|s| format!("{s:?}")),
    ]
}

fn selector() -> impl Strategy<Value = String> {
    (
        name(),
        string(),
        prop::collection::vec(
            (
                name(),
                prop::sample::select(vec!["=", "!=", "=~", "!~"]),
                string(),
            ),
            0..3,
        ),
    )
        .prop_map(|(n, v, rest)| {
            let mut s = format!("{{{n}={v}");
            for (n, op, v) in rest {
                s.push_str(&format!(", {n}{op}{v}"));
            }
            s.push('}');
            s
        })
}

fn label_filter() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (
            name(),
            prop::sample::select(vec!["=", "!=", "=~", "!~"]),
            string()
        )
            .prop_map(|(n, o, v)| format!("{n}{o}{v}")),
        (
            name(),
            prop::sample::select(vec![">", ">=", "<", "<=", "==", "!="]),
            prop::sample::select(vec!["5", "2.5", "-3", "10s", "1m30s", "1MB", "10KiB"])
        )
            .prop_map(|(n, o, v)| format!("{n} {o} {v}")),
        name().prop_map(|n| format!(r#"{n}=ip("10.0.0.0/8")"#)),
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        (
            inner.clone(),
            prop::sample::select(vec![" and ", " or ", ", ", " "]),
            inner,
        )
            .prop_map(|(a, op, b)| format!("({a}{op}{b})"))
    })
}

fn stage() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::sample::select(vec!["|=", "!=", "|~", "!~"]),
            string(),
            prop::option::of(string())
        )
            .prop_map(|(op, a, b)| match b {
                Some(b) => format!("{op} {a} or {b}"),
                None => format!("{op} {a}"),
            }),
        Just("| json".to_string()),
        Just(r#"| json a="b.c", d"#.to_string()),
        Just("| logfmt --strict --keep-empty".to_string()),
        Just(r#"| logfmt --strict x="y""#.to_string()),
        Just(r#"| regexp "(?P<a>\\w+)""#.to_string()),
        Just(r#"| pattern "<a> - <_>""#.to_string()),
        Just("| unpack".to_string()),
        Just("| decolorize".to_string()),
        Just(r#"| line_format "{{.a}}""#.to_string()),
        Just(r#"| label_format a=b, c="{{.d}}""#.to_string()),
        Just(r#"| drop a, b="c""#.to_string()),
        Just("| keep a".to_string()),
        label_filter().prop_map(|f| format!("| {f}")),
    ]
}

fn log_query() -> impl Strategy<Value = String> {
    (selector(), prop::collection::vec(stage(), 0..4)).prop_map(|(s, st)| {
        let mut q = s;
        for x in st {
            q.push(' ');
            q.push_str(&x);
        }
        q
    })
}

fn metric() -> impl Strategy<Value = String> {
    let range = (
        prop::sample::select(vec![
            "count_over_time",
            "rate",
            "bytes_over_time",
            "bytes_rate",
            "absent_over_time",
        ]),
        log_query(),
        prop::sample::select(vec!["1m", "5m", "1h30m", "10s"]),
        prop::option::of(prop::sample::select(vec!["5m", "1h", "-30s"])),
    )
        .prop_map(|(op, q, r, off)| match off {
            Some(o) => format!("{op}({q} [{r}] offset {o})"),
            None => format!("{op}({q} [{r}])"),
        });
    let unwrapped = (
        prop::sample::select(vec![
            "avg_over_time",
            "max_over_time",
            "quantile_over_time(0.9,",
        ]),
        log_query(),
        name(),
        prop::option::of(name()),
    )
        .prop_map(|(op, q, l, by)| {
            let open = if op.ends_with(',') {
                op.to_string()
            } else {
                format!("{op}(")
            };
            let by = by.map(|b| format!(" by ({b})")).unwrap_or_default();
            format!("{open}{q} | unwrap duration({l}) | __error__=\"\" [5m]){by}")
        });
    let leaf = prop_oneof![
        range,
        unwrapped,
        Just("vector(1)".to_string()),
        Just("2.5".to_string())
    ];
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["sum", "avg", "max", "count", "stddev"]),
                prop::option::of(name()),
                inner.clone()
            )
                .prop_map(|(op, by, e)| match by {
                    Some(b) => format!("{op} by ({b}) ({e})"),
                    None => format!("{op}({e})"),
                }),
            inner.clone().prop_map(|e| format!("topk(3, {e})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+",
                    "-",
                    "*",
                    "/",
                    "%",
                    "^",
                    "==",
                    "> bool",
                    "<=",
                    " or ",
                    " and ",
                    " unless ",
                    "/ on (app) group_left (level)",
                    "* ignoring (x)"
                ]),
                inner
            )
                .prop_map(|(a, op, b)| format!("({a}) {op} ({b})")),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,60}") {
        let _ = crate::parse(&s);
    }

    #[test]
    fn token_soup_never_panics(parts in prop::collection::vec(prop_oneof![
        Just("{"), Just("}"), Just("("), Just(")"), Just("["), Just("5m]"), Just("|"), Just("|="),
        Just("sum"), Just("by"), Just("rate"), Just("json"), Just("unwrap"), Just("x"), Just("="),
        Just("\"v\""), Just(","), Just("or"), Just("offset"), Just("1"), Just("-"), Just("bool"),
        Just("on"), Just("group_left"), Just("vector"), Just("label_replace"), Just("ip"),
    ], 0..24)) {
        crate::printer::check_round_trip(&parts.join(" "));
    }

    #[test]
    fn log_queries_round_trip(q in log_query()) {
        crate::printer::check_round_trip(&q);
    }

    #[test]
    fn metric_queries_round_trip(q in metric()) {
        crate::printer::check_round_trip(&q);
    }
}
