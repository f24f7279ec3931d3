//! Properties: no stage panics on any line, and what a parser extracts is well-formed.

use proptest::prelude::*;
use protocol::Labels;

use super::hints::Hints;
use super::labels::LabelSet;
use super::*;
use crate::ast::{ExtractParam, LineFilter, LineFilterOp, LineFilterValue};

fn set() -> LabelSet {
    let mut s = LabelSet::for_stream(&Labels::from_pairs([("app", "api"), ("level", "x")]));
    s.reset();
    s.add_metadata("trace_id", "t");
    s
}

/// Lines that look like JSON or logfmt often enough to reach deep code paths.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(
            prop_oneof![
                Just(b"{".to_vec()),
                Just(b"}".to_vec()),
                Just(b"[".to_vec()),
                Just(b"]".to_vec()),
                Just(b"\"".to_vec()),
                Just(b"\\".to_vec()),
                Just(b"\\u".to_vec()),
                Just(b":".to_vec()),
                Just(b",".to_vec()),
                Just(b"=".to_vec()),
                Just(b" ".to_vec()),
                Just(b"a".to_vec()),
                Just(b"level".to_vec()),
                Just(b"12".to_vec()),
                Just(b"true".to_vec()),
                Just(b"null".to_vec()),
                Just(b"\xff".to_vec()),
                Just("é".as_bytes().to_vec()),
                Just(b"_entry".to_vec()),
            ],
            0..24
        )
        .prop_map(|v| v.concat()),
    ]
}

fn check_labels(s: &mut LabelSet) {
    s.finish(None);
    let names: Vec<&str> = s.iter().map(|(n, _, _)| n).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    let _ = s.to_labels();
}

proptest! {
    #[test]
    fn json_never_panics(l in line()) {
        let mut s = set();
        json::JsonParser::default().process(&l, &mut s, &Hints::all());
        check_labels(&mut s);
        let mut s = set();
        let mut entry = Vec::new();
        json::Unpack::default().process(&l, &mut s, &Hints::all(), &mut entry);
        check_labels(&mut s);
        let params = [
            ExtractParam { label: "a".into(), expr: "a.b[0]".into() },
            ExtractParam { label: "level".into(), expr: "level".into() },
        ];
        let mut s = set();
        json_expr::JsonExpr::new(&params).unwrap().process(&l, &mut s, &Hints::all());
        check_labels(&mut s);
    }

    #[test]
    fn logfmt_never_panics(l in line(), strict in any::<bool>(), keep in any::<bool>()) {
        let mut s = set();
        logfmt::Logfmt::new(strict, keep).process(&l, &mut s, &Hints::all());
        check_labels(&mut s);
        let params = [ExtractParam { label: "lvl".into(), expr: "level".into() }];
        let mut s = set();
        logfmt::LogfmtExpr::new(&params, strict).unwrap().process(&l, &mut s, &Hints::all());
        check_labels(&mut s);
    }

    #[test]
    fn pattern_and_regexp_never_panic(l in line(), p in "[<>_a-z \\-\\[\\]\"]{0,20}") {
        if let Ok(mut pp) = extract::PatternParser::new(&p) {
            let mut s = set();
            pp.process(&l, &mut s, &Hints::all());
            check_labels(&mut s);
        }
        if let Ok(f) = pattern::Pattern::line_filter(&p) {
            let _ = f.test(&l);
        }
        let mut rp = extract::RegexpParser::new("(?P<a>[a-z]+)=(?P<b>\\S*)").unwrap();
        let mut s = set();
        rp.process(&l, &mut s, &Hints::all());
        check_labels(&mut s);
    }

    #[test]
    fn filters_compile_or_fail_cleanly(re in ".{0,16}", l in line()) {
        for op in [LineFilterOp::Contains, LineFilterOp::Regex, LineFilterOp::Pattern, LineFilterOp::NotRegex] {
            let lf = LineFilter { op, values: vec![LineFilterValue::Text(re.clone())] };
            if let Ok(f) = line_filter::Filter::compile(&lf) {
                let _ = f.matches(&l);
                let _ = required::of_filter(&f);
            }
        }
        if let Ok(m) = label_regex::StrMatch::label_regex(&re) {
            let _ = m.matches(&String::from_utf8_lossy(&l));
        }
        if let Ok(ip) = ip::IpMatcher::parse(&re) {
            let _ = ip.matches_in(&l);
        }
        let _ = convert::parse_bytes(&re);
        let _ = convert::parse_go_duration(&re);
        let _ = convert::parse_float(&re);
    }

    /// A regex simplified into substring searches matches exactly what the regex does.
    #[test]
    fn simplified_regexes_agree_with_the_regex(
        alts in proptest::collection::vec("[a-cA-C]{1,4}", 1..4),
        ci in any::<bool>(),
        l in "[a-cA-C ]{0,12}",
    ) {
        let src = format!("{}{}", if ci { "(?i)" } else { "" }, alts.join("|"));
        let f = line_filter::regex_filter(&src).unwrap();
        let re = regex::Regex::new(&src).unwrap();
        prop_assert_eq!(f.matches(l.as_bytes()), re.is_match(&l), "{}", src);
    }
}
