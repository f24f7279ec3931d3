//! Loki conformance over HTTP: the recorded data set is pushed to the real binary one
//! stream per request, as Loki's recording was made, and every recorded request is
//! replayed with its parameters and headers; each answer is compared with Loki's under
//! the rules of `testdata/conformance/README.md`. Every case must match.

mod common;

use common::Server;

fn push(srv: &Server) {
    for s in conformance::push_data().expect("the recorded data set loads") {
        let r = srv.push_json(&s.body);
        assert_eq!(r.status, 204, "pushing {:?}: {}", s.labels, r.text());
    }
}

/// Replays every case; returns the failures and the number of cases.
fn replay(srv: &Server) -> (Vec<String>, usize) {
    let cases = conformance::cases().expect("the recorded cases load");
    let mut failures = Vec::new();
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
        if let Err(why) = conformance::compare(c, r.status, &r.text()) {
            failures.push(format!("{} ({}): {why}", c.id, c.path));
        }
    }
    (failures, cases.len())
}

#[test]
fn every_recorded_loki_answer_matches() {
    let srv = Server::start(&["--retention", "0"]);
    push(&srv);
    let (failures, cases) = replay(&srv);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Loki:\n{}",
        failures.len(),
        cases,
        failures.join("\n")
    );
}

/// The same answers once the data has been written out to parts and read back from them
/// (after a restart, so nothing is left in memory but what the WAL replays).
#[test]
fn every_recorded_loki_answer_matches_from_parts_after_a_restart() {
    let mut srv = Server::start(&["--retention", "0"]);
    push(&srv);
    let r = srv.request("POST", "/flush", &[], b"");
    assert!(r.status < 300, "flush: {}", r.text());
    assert!(srv.terminate().success());
    srv.restart();
    let (failures, cases) = replay(&srv);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Loki when read from parts:\n{}",
        failures.len(),
        cases,
        failures.join("\n")
    );
}
