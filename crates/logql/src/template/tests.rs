//! Template behaviour checked against what Go's `text/template` with Loki's functions
//! prints.

use super::*;

/// No labels at all.
pub(crate) struct NoData;

impl Data for NoData {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
    fn each<'s>(&'s self, _: &mut dyn FnMut(&'s str, &'s str)) {}
    fn len(&self) -> usize {
        0
    }
    fn line(&self) -> &str {
        ""
    }
    fn timestamp(&self) -> i64 {
        0
    }
}

struct MapData {
    labels: Vec<(&'static str, &'static str)>,
    line: &'static str,
    ts: i64,
}

impl Data for MapData {
    fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s str)) {
        let mut v = self.labels.clone();
        v.sort();
        for (n, val) in v {
            f(n, val);
        }
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn line(&self) -> &str {
        self.line
    }
    fn timestamp(&self) -> i64 {
        self.ts
    }
}

fn data() -> MapData {
    MapData {
        labels: vec![
            ("level", "error"),
            ("method", "GET"),
            ("status", "503"),
            ("duration_ms", "638.935"),
            ("msg", "upstream timeout"),
            ("name", "エリカ"),
            ("json", r#"{"a": {"b": [1, "x"]}, "n": 5}"#),
        ],
        line: "2026-11-20 10:00:34.572 UTC [9267] LOG:  duration: 2.794 ms",
        ts: 1_795_170_558_123_456_789,
    }
}

fn run(src: &str) -> Result<String, String> {
    let t = Template::parse("line", src).map_err(|e| e.to_string())?;
    let mut out = String::new();
    t.execute(&data(), &mut out)?;
    Ok(out)
}

fn ok(src: &str) -> String {
    match run(src) {
        Ok(s) => s,
        Err(e) => panic!("{src}: {e}"),
    }
}

#[test]
fn fields_and_text() {
    assert_eq!(ok("{{.level}} {{.method}} {{.missing}}|"), "error GET |");
    assert_eq!(ok("{{ .msg | ToUpper }}"), "UPSTREAM TIMEOUT");
    assert_eq!(ok(r#"{{ printf "%.1f" .duration_ms }}"#), "%!f(string=6)");
    assert_eq!(
        ok(r#"{{ .duration_ms | float64 | printf "%.1f" }}"#),
        "638.9"
    );
    assert_eq!(ok("a  {{- .level -}}  b"), "aerrorb");
    assert_eq!(ok("{{/* comment */}}x"), "x");
}

#[test]
fn conditionals() {
    let t = r#"{{ if eq .level "error" }}E{{ else if eq .level "warn" }}W{{ else }}-{{ end }}"#;
    assert_eq!(ok(t), "E");
    assert_eq!(
        ok(r#"{{ if and .level (eq .status "503") }}yes{{ end }}"#),
        "yes"
    );
    assert_eq!(ok(r#"{{ or .missing "fallback" }}"#), "fallback");
    assert_eq!(ok(r#"{{ and .level .missing }}"#), "");
    assert_eq!(ok(r#"{{ not .missing }}"#), "true");
    assert_eq!(
        ok(r#"{{ with .level }}[{{ . }}]{{ end }}{{ with .missing }}x{{ else }}none{{ end }}"#),
        "[error]none"
    );
    assert_eq!(ok(r#"{{ if lt 1 2 }}lt{{ end }}"#), "lt");
    assert!(
        run(r#"{{ if eq .status 503 }}x{{ end }}"#)
            .unwrap_err()
            .contains("incompatible types for comparison")
    );
}

#[test]
fn variables_and_range() {
    assert_eq!(
        ok(r#"{{ $x := .level }}{{ $x }}-{{ $x = "b" }}{{ $x }}"#),
        "error-b"
    );
    assert_eq!(
        ok(r#"{{ range $k, $v := (fromJson .json) }}{{ $k }}={{ $v }};{{ end }}"#),
        "a=map[b:[1 x]];n=5;"
    );
    assert_eq!(
        ok(r#"{{ range $i, $e := (fromJson .json).a.b }}{{ $i }}:{{ $e }} {{ end }}"#),
        "0:1 1:x "
    );
    assert_eq!(ok(r#"{{ range 3 }}{{ . }}{{ end }}"#), "012");
    assert_eq!(
        ok(r#"{{ range $i := 5 }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $i }}{{ end }}"#),
        "01"
    );
    assert_eq!(
        ok(r#"{{ range (fromJson "[]") }}x{{ else }}empty{{ end }}"#),
        "empty"
    );
    assert_eq!(ok("{{ len . }}"), "7");
}

#[test]
fn loki_functions() {
    assert_eq!(ok(r#"{{ __line__ | trunc 20 }}"#), "2026-11-20 10:00:34.");
    assert_eq!(ok(r#"{{ __timestamp__ | unixEpoch }}"#), "1795170558");
    assert_eq!(
        ok(r#"{{ __timestamp__ | unixEpochMillis }}"#),
        "1795170558123"
    );
    assert_eq!(
        ok(r#"{{ __timestamp__ | date "2006-01-02T15:04:05Z07:00" }}"#),
        "2026-11-20T10:29:18Z"
    );
    assert_eq!(ok(r#"{{ __timestamp__.Format "15:04" }}"#), "10:29");
    assert_eq!(ok(r#"{{ .error | default "-" }}"#), "-");
    assert_eq!(ok(r#"{{ default "-" .level }}"#), "error");
    assert_eq!(
        ok(r#"{{ regexReplaceAll "[0-9]+" __line__ "N" }}"#),
        "N-N-N N:N:N.N UTC [N] LOG:  duration: N.N ms"
    );
    assert_eq!(
        ok(r#"{{ regexReplaceAll "(\\w+)=(\\w+)" "a=b" "${2}=$1" }}"#),
        "b=a"
    );
    assert_eq!(ok(r#"{{ regexReplaceAllLiteral "a" "aa" "$1" }}"#), "$1$1");
    assert_eq!(ok(r#"{{ count "o" "foo boo" }}"#), "4");
    assert_eq!(
        ok(r#"{{ "hello world" | title }} {{ "ABC" | lower }} {{ "abc" | upper }}"#),
        "Hello World abc ABC"
    );
    assert_eq!(
        ok(r#"{{ Replace "aaa" "a" "b" 2 }} {{ replace "a" "b" "aaa" }}"#),
        "bba bbb"
    );
    assert_eq!(
        ok(r#"{{ Trim "xxaxx" "x" }} {{ TrimPrefix "abc" "a" }} {{ trimSuffix "c" "abc" }}"#),
        "a bc ab"
    );
    assert_eq!(ok(r#"{{ substr 1 3 "hello" }}"#), "el");
    assert_eq!(
        ok(r#"{{ contains "ell" "hello" }} {{ hasPrefix "he" "hello" }}"#),
        "true true"
    );
    assert_eq!(ok(r#"{{ repeat 3 "ab" }}"#), "ababab");
    assert_eq!(ok(r#"{{ indent 2 "a\nb" }}"#), "  a\n  b");
    assert_eq!(
        ok(r#"{{ alignLeft 5 "ab" }}|{{ alignRight 5 "ab" }}"#),
        "ab   |   ab"
    );
    assert_eq!(
        ok(r#"{{ "hello" | b64enc }} {{ "aGVsbG8" | b64dec }}"#),
        "aGVsbG8= hello"
    );
    assert_eq!(
        ok(r#"{{ "a b&c" | urlencode }} {{ "a+b%26c" | urldecode }}"#),
        "a+b%26c a b&c"
    );
    assert_eq!(
        ok(r#"{{ "1.5KB" | bytes }} {{ "1m30s" | duration }}"#),
        "1500 90"
    );
    assert_eq!(
        ok(r#"{{ "1673798889" | unixToTime | unixEpochMillis }}"#),
        "1673798889000"
    );
    assert_eq!(
        ok(r#"{{ (fromJson .json).n }} {{ (fromJson .json).missing }}"#),
        "5 <no value>"
    );
    assert_eq!(
        ok(r#"{{ toDate "2006-01-02" "2024-02-03" | unixEpoch }}"#),
        "1706918400"
    );
}

#[test]
fn arithmetic() {
    assert_eq!(
        ok("{{ add 1 2 3 }} {{ sub 5 7 }} {{ mul 2 3 }} {{ div 7 2 }} {{ mod 7 2 }}"),
        "6 -2 6 3 1"
    );
    assert_eq!(ok("{{ add .status 1 }}"), "504");
    assert_eq!(
        ok("{{ addf 0.1 0.2 }} {{ subf 1.5 0.5 }} {{ mulf 1.1 3 }} {{ divf 10 4 }}"),
        "0.3 1 3.3 2.5"
    );
    assert_eq!(
        ok("{{ max 1 5 3 }} {{ min 4 2 }} {{ maxf 1.5 2 }} {{ minf 1.5 2 }}"),
        "5 2 2 1.5"
    );
    assert_eq!(
        ok("{{ ceil 1.2 }} {{ floor 1.8 }} {{ round 1.2345 2 }}"),
        "2 1 1.23"
    );
    assert_eq!(ok(r#"{{ int "42" }} {{ float64 "2.5" }}"#), "42 2.5");
    assert!(
        run("{{ div 1 0 }}")
            .unwrap_err()
            .contains("integer divide by zero")
    );
}

#[test]
fn printf_verbs() {
    assert_eq!(
        ok(r#"{{ printf "%s|%5s|%-5s|%q" .method .method .method .method }}"#),
        "GET|  GET|GET  |\"GET\""
    );
    assert_eq!(
        ok(r#"{{ printf "%d %x %05.1f %v %t" 42 255 3.14159 .level true }}"#),
        "42 ff 003.1 error true"
    );
    assert_eq!(
        ok(r#"{{ printf "%T %T %T" 1 1.5 "s" }}"#),
        "int float64 string"
    );
}

#[test]
fn errors_read_like_go() {
    let e = run("{{ .level.x }}").unwrap_err();
    assert_eq!(
        e,
        "template: line:1:3: executing \"line\" at <.level.x>: can't evaluate field x in type string"
    );
    let e = run(r#"{{ trunc "a" .level }}"#).unwrap_err();
    assert!(e.contains("expected integer; found \"a\""), "{e}");
    let e = run("{{ trunc (add 1 2) .level }}").unwrap_err();
    assert!(
        e.contains("wrong type for value; expected int; got int64"),
        "{e}"
    );
    let e = run("{{ ToUpper 1 }}").unwrap_err();
    assert!(e.contains("expected string; found 1"), "{e}");
    assert_eq!(ok(r#"{{ substr 2 10 "abc" }}"#), "c");
    let e = run(r#"{{ substr 5 1 "abc" }}"#).unwrap_err();
    assert!(
        e.contains("error calling substr: runtime error: slice bounds out of range [5:1]"),
        "{e}"
    );
    assert!(Template::parse("line", "{{ nope }}").is_err());
    assert!(Template::parse("line", "{{ if }}").is_err());
    assert!(Template::parse("line", "{{ .a").is_err());
}

#[test]
fn metadata_of_templates() {
    let t = Template::parse("line", "{{.a}}").unwrap();
    assert_eq!(t.simple_key(), Some("a"));
    let t = Template::parse(
        "line",
        "{{ .a | ToUpper }} {{ if .b.c }}{{ __line__ }}{{ end }}",
    )
    .unwrap();
    assert_eq!(t.simple_key(), None);
    assert_eq!(t.fields(), vec!["a", "b", "c"]);
    assert!(t.uses_line());
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics_on_any_source(src in ".{0,80}") {
            if let Ok(t) = Template::parse("line", &src) {
                let mut out = String::new();
                let _ = t.execute(&data(), &mut out);
            }
        }

        #[test]
        fn never_panics_on_template_like_source(
            parts in proptest::collection::vec(prop_oneof![
                Just("{{".to_string()), Just("}}".to_string()), Just(" ".to_string()),
                Just(".level".to_string()), Just("|".to_string()), Just("(".to_string()),
                Just(")".to_string()), Just("if".to_string()), Just("end".to_string()),
                Just("else".to_string()), Just("range".to_string()), Just("$x".to_string()),
                Just(":=".to_string()), Just("printf".to_string()), Just("\"%d\"".to_string()),
                Just("1".to_string()), Just("trunc".to_string()), Just("fromJson".to_string()),
                Just("substr".to_string()), Just("-".to_string()), Just("with".to_string()),
                Just("index".to_string()), Just(".".to_string()), Just("eq".to_string()),
            ], 0..24)
        ) {
            let src: String = parts.concat();
            if let Ok(t) = Template::parse("line", &src) {
                let mut out = String::new();
                let _ = t.execute(&data(), &mut out);
            }
        }
    }
}
