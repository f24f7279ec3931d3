use super::*;

fn fmt(q: &str) -> String {
    match parse(q) {
        Ok(e) => crate::printer::to_string(&e),
        Err(e) => e.to_string(),
    }
}

#[test]
fn prints_like_loki() {
    for (q, want) in [
        (
            r#"{app="api"}|json|status>=500|line_format "{{.path}}""#,
            r#"{app="api"} | json | status>=500 | line_format "{{.path}}""#,
        ),
        (
            r#"{a="b"} |= "x" or "y" != "z""#,
            r#"{a="b"} |= "x" or "y" != "z""#,
        ),
        (r#"{a="b"} != "x" or "y""#, r#"{a="b"} != "x" != "y""#),
        (
            r#"{a="b"} | logfmt | level="error" and x > 10s or size > 1MB"#,
            r#"{a="b"} | logfmt | ( ( level="error" , x>10s ) or size>1.0MB )"#,
        ),
        (r#"{a="b"} | x = 5"#, r#"{a="b"} | x==5"#),
        (r#"{a="b"} | x=~"5..""#, r#"{a="b"} | x=~`5..`"#),
        (
            r#"sum by (app) (count_over_time({a="b"}[5m]))"#,
            r#"sum by (app)(count_over_time({a="b"}[5m]))"#,
        ),
        (
            r#"sum(rate({a="b"} |= "x" [1m] offset 5m))"#,
            r#"sum(rate({a="b"} |= "x"[1m] offset 5m0s))"#,
        ),
        (
            r#"quantile_over_time(0.99, {a="b"} | logfmt | unwrap duration(d) | __error__="" [5m]) by (x)"#,
            r#"quantile_over_time(0.99,{a="b"} | logfmt | unwrap duration(d) | __error__=""[5m]) by (x)"#,
        ),
        ("1 + 1", "2"),
        ("2 * 3 - 10 / 4", "3.5"),
        (
            "vector(1)+vector(1)",
            "(vector(1.000000) + vector(1.000000))",
        ),
        (
            r#"topk(5, sum by (pod) (bytes_over_time({a="b"}[1m])))"#,
            r#"topk(5,sum by (pod)(bytes_over_time({a="b"}[1m])))"#,
        ),
        (
            r#"sum(x_over) "#,
            "parse error at line 1, col 5: syntax error: unexpected IDENTIFIER",
        ),
        (
            r#"a / on (app) group_left b"#,
            "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER",
        ),
    ] {
        assert_eq!(fmt(q), want, "{q}");
    }
}

#[test]
fn loki_errors() {
    for (q, want) in [
        (
            r#"{app="api""#,
            "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,",
        ),
        (
            r#"sum(count_over_time({app="api"}))"#,
            "parse error at line 1, col 32: syntax error: unexpected )",
        ),
        (
            r#"{app="api"} | json | unwrap duration_ms"#,
            "parse error at line 1, col 22: syntax error: unexpected unwrap",
        ),
        (
            r#"max_over_time(count_over_time({app="api"}[1m])[5m:1m])"#,
            "parse error at line 1, col 15: syntax error: unexpected COUNT_OVER_TIME, expecting NUMBER or { or (",
        ),
        ("", "parse error : syntax error: unexpected $end"),
        (
            r#"{app=~"("}"#,
            "parse error : error parsing regexp: missing closing ): `(`",
        ),
        (
            r#"sum_over_time({a="b"} | json | unwrap bytes [5m]) by (method)"#,
            "parse error : grouping not allowed for sum_over_time aggregation",
        ),
        (
            r#"count_over_time({a="b"} | logfmt | unwrap size [30m])"#,
            "parse error : invalid aggregation count_over_time with unwrap",
        ),
    ] {
        assert_eq!(fmt(q), want, "{q}");
    }
    assert!(fmt(r#"{namespace!="shop"}"#).starts_with("parse error : queries require"));
    assert!(parse(r#"avg_over_time({a="b"} | unwrap x [5m]) by (x)"#).is_ok());
}

#[test]
fn range_forms() {
    let base = parse(r#"count_over_time({a="b"} | json [5m])"#).unwrap();
    for q in [
        r#"count_over_time({a="b"}[5m] | json)"#,
        r#"count_over_time(({a="b"} | json)[5m])"#,
        r#"count_over_time(({a="b"} | json [5m]))"#,
    ] {
        assert_eq!(parse(q).unwrap(), base, "{q}");
    }
    assert!(parse(r#"sum(rate({a="b"}[5m])) by (x) / ignoring(y) sum(rate({a="b"}[5m]))"#).is_ok());
}

#[test]
fn precedence() {
    let e = parse("vector(1) - vector(2) - vector(3)").unwrap();
    assert_eq!(
        crate::printer::to_string(&e),
        "((vector(1.000000) - vector(2.000000)) - vector(3.000000))"
    );
    let e = parse("vector(2) ^ vector(3) ^ vector(2)").unwrap();
    assert_eq!(
        crate::printer::to_string(&e),
        "(vector(2.000000) ^ (vector(3.000000) ^ vector(2.000000)))"
    );
    let e = parse("vector(1) + vector(2) * vector(3) > bool vector(0) or vector(5)").unwrap();
    assert_eq!(
        crate::printer::to_string(&e),
        "(((vector(1.000000) + (vector(2.000000) * vector(3.000000))) > bool vector(0.000000)) or vector(5.000000))"
    );
}

#[test]
fn nesting_has_a_limit_with_a_clear_error() {
    let deep = |n: usize| -> Vec<String> {
        vec![
            format!("{}vector(1){}", "(".repeat(n), ")".repeat(n)),
            format!(
                "{}count_over_time({{a=\"b\"}}[1m]){}",
                "sum(".repeat(n),
                ")".repeat(n)
            ),
            format!("vector(1){}", " + vector(1)".repeat(n)),
            format!("2 ^ {}", "2 ^ ".repeat(n) + "1"),
            format!("{{a=\"b\"}} | x=\"1\"{}", " or x=\"2\"".repeat(n)),
            format!("{{a=\"b\"}} | x=\"1\"{}", ", y=\"2\"".repeat(n)),
            format!("{{a=\"b\"}} | {}x=\"1\"{}", "(".repeat(n), ")".repeat(n)),
            format!(
                "count_over_time({}{{a=\"b\"}}[1m]{})",
                "(".repeat(n),
                ")".repeat(n)
            ),
        ]
    };
    // Each shape costs one or two levels per repetition.
    for q in deep(60) {
        assert!(parse(&q).is_ok(), "{q}: {:?}", parse(&q).err());
    }
    // Far past the limit too: the parser itself must not recurse that deep.
    for n in [130, 10_000] {
        for q in deep(n) {
            let e = parse(&q).expect_err(&q).to_string();
            assert!(e.contains("nested too deeply"), "{e}");
        }
    }
}
