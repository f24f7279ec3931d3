//! Loki conformance over HTTP: the recorded data set is pushed to the real binary one
//! stream per request, as Loki's recording was made, and every recorded request is
//! replayed with its parameters and headers; each answer is compared with Loki's under
//! the rules of `testdata/conformance/README.md`.

mod common;

use common::Server;

/// Cases known to differ, each with the work it waits for (`conformance_gaps.txt`: one
/// `id  reason` per line). A case listed there that passes is reported so the line can
/// go; a case not listed that fails fails the test.
fn known_gaps() -> Vec<(String, String)> {
    include_str!("conformance_gaps.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((id, why)) => (id.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn every_recorded_loki_answer_matches() {
    let srv = Server::start(&["--retention", "0"]);
    for s in conformance::push_data().expect("the recorded data set loads") {
        let r = srv.push_json(&s.body);
        assert_eq!(r.status, 204, "pushing {:?}: {}", s.labels, r.text());
    }
    let cases = conformance::cases().expect("the recorded cases load");
    let gaps = known_gaps();
    let gap = |id: &str| {
        gaps.iter()
            .find(|(g, _)| g == id)
            .map(|(_, why)| why.clone())
    };
    let (mut passed, mut failures) = (0, Vec::new());
    let (mut waiting, mut closed) = (Vec::new(), Vec::new());
    for c in &cases {
        let params: Vec<(&str, &str)> = c
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let r = srv.get_query(&c.path, &params, &headers);
        let body = r.text();
        match (conformance::compare(c, r.status, &body), gap(&c.id)) {
            (Ok(()), None) => passed += 1,
            (Ok(()), Some(_)) => {
                passed += 1;
                closed.push(c.id.clone());
            }
            (Err(why), Some(waits_for)) => waiting.push(format!("{}: {waits_for} ({why})", c.id)),
            (Err(why), None) => failures.push(format!("{} ({}): {why}", c.id, c.path)),
        }
    }
    eprintln!(
        "conformance over HTTP: {passed} of {} cases match Loki",
        cases.len()
    );
    eprintln!("{} known gaps:\n  {}", waiting.len(), waiting.join("\n  "));
    if !closed.is_empty() {
        eprintln!("now passing, remove from conformance_gaps.txt: {closed:?}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Loki:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
