//! Push → query round trips through the real binary: JSON and protobuf, every
//! Content-Encoding, structured metadata, Loki's enrichment, validation messages with
//! partial success, retention, duplicates and out-of-order entries, and malformed bodies
//! that must get a clear 400 while the server keeps serving.

mod common;

use std::io::Write;

use common::{Server, now_ns};
use protocol::push::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, encode_snappy};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// Entries of every result stream, flattened: (labels, ts, line, third element).
fn entries(resp: &Value) -> Vec<(Value, i64, String, Option<Value>)> {
    let mut out = Vec::new();
    for s in resp["data"]["result"].as_array().expect("a streams result") {
        for v in s["values"].as_array().unwrap() {
            out.push((
                s["stream"].clone(),
                v[0].as_str().unwrap().parse().unwrap(),
                v[1].as_str().unwrap().to_string(),
                v.get(2).cloned(),
            ));
        }
    }
    out
}

fn query_range(srv: &Server, q: &str, start: i64, end: i64, extra: &[(&str, &str)]) -> Value {
    let (s, e) = (start.to_string(), end.to_string());
    let mut params = vec![("query", q), ("start", &s), ("end", &e), ("limit", "1000")];
    params.extend_from_slice(extra);
    let r = srv.get_query("/loki/api/v1/query_range", &params, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// An entry to push: timestamp, line, structured metadata.
type TestEntry<'a> = (i64, &'a str, &'a [(&'a str, &'a str)]);

fn pb_request(labels: &str, entries: &[TestEntry<'_>]) -> PushRequest {
    PushRequest {
        streams: vec![StreamAdapter {
            labels: labels.into(),
            entries: entries
                .iter()
                .map(|(ts, line, md)| {
                    let mut e = EntryAdapter::new(*ts, *line);
                    e.structured_metadata = md
                        .iter()
                        .map(|(n, v)| LabelPairAdapter {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect();
                    e
                })
                .collect(),
            hash: 0,
        }],
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zlib(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

#[test]
fn json_push_round_trips_with_structured_metadata() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    let body = json!({"streams": [{
        "stream": {"app": "shop", "env": "e2e"},
        "values": [
            [t.to_string(), "level=info msg=\"first\""],
            [(t + 1).to_string(), "{\"level\":\"error\",\"msg\":\"second\"}", {"trace_id": "abc123", "k8s.pod.name": "p-1"}],
        ]
    }]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 204, "{}", r.text());

    let resp = query_range(
        &srv,
        r#"{app="shop"}"#,
        t - S,
        t + S,
        &[("direction", "forward")],
    );
    let mut got = entries(&resp);
    got.sort_by_key(|e| e.1);
    assert_eq!(got.len(), 2, "{resp}");
    assert_eq!(got[0].1, t);
    assert_eq!(got[0].2, "level=info msg=\"first\"");
    // Loki's enrichment: service_name from `app`, detected_level per entry.
    assert_eq!(got[0].0["service_name"], "shop");
    assert_eq!(got[0].0["detected_level"], "info");
    assert_eq!(got[1].0["detected_level"], "error");
    // Without categorize-labels, metadata joins the stream labels (names sanitised).
    assert_eq!(got[1].0["trace_id"], "abc123");
    assert_eq!(got[1].0["k8s_pod_name"], "p-1");

    // With it, stream labels are the indexed ones and metadata comes apart.
    let (s, e) = ((t - S).to_string(), (t + S).to_string());
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="shop"}"#),
            ("start", &s),
            ("end", &e),
            ("direction", "forward"),
        ],
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["data"]["encodingFlags"], json!(["categorize-labels"]));
    let mut got = entries(&v);
    got.sort_by_key(|e| e.1);
    assert_eq!(got.len(), 2);
    assert!(got[1].0.get("trace_id").is_none(), "{v}");
    let md = &got[1].3.as_ref().expect("a third element")["structuredMetadata"];
    assert_eq!(md["trace_id"], "abc123");
    assert_eq!(md["detected_level"], "error");
}

#[test]
fn protobuf_push_round_trips_in_every_encoding() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    type Case<'a> = (&'a str, fn(&[u8]) -> Vec<u8>, &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 5] = [
        ("none", |b| b.to_vec(), &[]),
        (
            "x-protobuf",
            |b| b.to_vec(),
            &[("Content-Type", "application/x-protobuf")],
        ),
        (
            "snappy-header",
            |b| b.to_vec(),
            &[("Content-Encoding", "snappy")],
        ),
        ("gzip", gzip, &[("Content-Encoding", "gzip")]),
        ("deflate", zlib, &[("Content-Encoding", "deflate")]),
    ];
    for (i, (name, wrap, headers)) in cases.iter().enumerate() {
        let ts = t + i as i64 * 1000;
        let req = pb_request(
            &format!(r#"{{job="pb", enc="{name}"}}"#),
            &[(ts, "protobuf line", &[("trace_id", "t-1")])],
        );
        let body = wrap(&encode_snappy(&req));
        let r = srv.request("POST", "/loki/api/v1/push", headers, &body);
        assert_eq!(r.status, 204, "{name}: {}", r.text());
        let resp = query_range(&srv, &format!(r#"{{enc="{name}"}}"#), t - S, t + S, &[]);
        let got = entries(&resp);
        assert_eq!(got.len(), 1, "{name}: {resp}");
        assert_eq!((got[0].1, got[0].2.as_str()), (ts, "protobuf line"));
        assert_eq!(got[0].0["trace_id"], "t-1");
        assert_eq!(got[0].0["service_name"], "pb", "service_name from job");
    }
}

#[test]
fn json_push_in_every_encoding_and_legacy_path() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    let body = |enc: &str| {
        json!({"streams": [{"stream": {"app": "enc", "enc": enc},
            "values": [[t.to_string(), format!("json line {enc}")]]}]})
        .to_string()
        .into_bytes()
    };
    let snappy = |b: &[u8]| snap::raw::Encoder::new().compress_vec(b).unwrap();
    for (enc, data) in [
        ("gzip", gzip(&body("gzip"))),
        ("deflate", zlib(&body("deflate"))),
        ("snappy", snappy(&body("snappy"))),
    ] {
        let r = srv.request(
            "POST",
            "/loki/api/v1/push",
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", enc),
            ],
            &data,
        );
        assert_eq!(r.status, 204, "{enc}: {}", r.text());
    }
    let r = srv.request(
        "POST",
        "/api/prom/push",
        &[("Content-Type", "application/json")],
        &body("legacy-path"),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let resp = query_range(&srv, r#"{app="enc"}"#, t - S, t + S, &[]);
    let mut lines: Vec<String> = entries(&resp).into_iter().map(|e| e.2).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "json line deflate",
            "json line gzip",
            "json line legacy-path",
            "json line snappy"
        ]
    );
}

#[test]
fn invalid_streams_are_named_and_the_rest_is_stored() {
    let srv = Server::start(&["--max-line-size", "1KiB"]);
    let t = now_ns() - 60 * S;
    let long = "x".repeat(1025);
    let body = json!({"streams": [
        {"stream": {"app": "valid"}, "values": [[t.to_string(), "kept"]]},
        {"stream": {"app": "bad", "x-y": "1"}, "values": [[t.to_string(), "dropped"]]},
        {"stream": {"app": "long"}, "values": [[t.to_string(), long], [(t + 1).to_string(), "short one kept"]]},
    ]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 400);
    let msg = r.text();
    assert!(
        msg.contains(r#"has label name 'x-y' which is not valid"#),
        "{msg}"
    );
    assert!(
        msg.contains(r#"max entry size '1024' bytes exceeded for stream '{app="long", service_name="long"}' while adding an entry with length '1025' bytes"#),
        "{msg}"
    );
    let resp = query_range(&srv, r#"{app=~"valid|long|bad"}"#, t - S, t + S, &[]);
    let mut lines: Vec<String> = entries(&resp).into_iter().map(|e| e.2).collect();
    lines.sort();
    assert_eq!(lines, ["kept", "short one kept"]);
    // The rejections are counted by reason.
    let m = srv.get("/metrics").text();
    assert!(
        m.contains(
            r#"kiroku_ingest_lines_discarded_total{tenant="fake",reason="line_too_long"} 1"#
        ),
        "{m}"
    );
}

#[test]
fn too_many_labels_and_empty_requests() {
    let srv = Server::start(&[]);
    let t = now_ns();
    let mut labels = serde_json::Map::new();
    for i in 0..16 {
        labels.insert(format!("l{i}"), json!("v"));
    }
    let body = json!({"streams": [{"stream": labels, "values": [[t.to_string(), "x"]]}]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("has 16 label names; limit 15"),
        "{}",
        r.text()
    );
    let r = srv.push_json(r#"{"streams":[]}"#);
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("at least one valid stream"),
        "{}",
        r.text()
    );
}

#[test]
fn retention_refuses_old_entries_and_zero_accepts_any_age() {
    let srv = Server::start(&["--retention", "24h"]);
    let old = now_ns() - 48 * 3600 * S;
    let body =
        json!({"streams": [{"stream": {"app": "old"}, "values": [[old.to_string(), "too old"]]}]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 400);
    let msg = r.text();
    assert!(
        msg.contains(
            r#"entry for stream '{app="old", service_name="old"}' has timestamp too old: "#
        ) && msg.contains("oldest acceptable timestamp is: "),
        "{msg}"
    );
    let future = now_ns() + 3600 * S;
    let body = json!({"streams": [{"stream": {"app": "new"}, "values": [[future.to_string(), "from the future"]]}]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("has timestamp too new"), "{}", r.text());
    drop(srv);

    let srv = Server::start(&["--retention", "0"]);
    let ancient = 1_000_000_000 * S; // 2001
    let body = json!({"streams": [{"stream": {"app": "old"}, "values": [[ancient.to_string(), "kept forever"]]}]});
    let r = srv.push_json(&body.to_string());
    assert_eq!(r.status, 204, "{}", r.text());
    let resp = query_range(&srv, r#"{app="old"}"#, ancient - S, ancient + S, &[]);
    assert_eq!(entries(&resp).len(), 1, "{resp}");
}

#[test]
fn duplicates_are_stored_once_and_order_does_not_matter() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    let vals = |order: &[i64]| -> Value {
        json!({"streams": [{"stream": {"app": "dup"},
            "values": order.iter().map(|i| json!([(t + i).to_string(), format!("line {i}")])).collect::<Vec<_>>()}]})
    };
    for order in [[3, 1, 2], [2, 3, 1], [1, 2, 3]] {
        let r = srv.push_json(&vals(&order).to_string());
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let resp = query_range(
        &srv,
        r#"{app="dup"}"#,
        t - S,
        t + S,
        &[("direction", "forward")],
    );
    let got: Vec<(i64, String)> = entries(&resp).into_iter().map(|e| (e.1 - t, e.2)).collect();
    assert_eq!(
        got,
        [
            (1, "line 1".to_string()),
            (2, "line 2".into()),
            (3, "line 3".into())
        ]
    );
}

#[test]
fn malformed_bodies_get_clear_errors_and_the_server_keeps_serving() {
    let srv = Server::start(&["--max-request-bytes", "64KiB"]);
    let garbage_snappy = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0f not protobuf")
        .unwrap();
    let bomb = gzip(&vec![b'{'; 4 << 20]);
    // Refused for their size, these count as discarded bytes as sent, as Loki counts them.
    let too_large_bytes = (65 << 10) + bomb.len();
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "bad snappy",
            vec![],
            b"\x0a\x00x definitely not snappy".to_vec(),
            "invalid snappy data",
        ),
        ("bad protobuf", vec![], garbage_snappy, "invalid protobuf"),
        (
            "bad json",
            vec![("Content-Type", "application/json")],
            b"{\"streams\": [".to_vec(),
            "invalid JSON push body",
        ),
        (
            "json of the wrong shape",
            vec![("Content-Type", "application/json")],
            br#"{"streams":[{"stream":{"a":1},"values":[]}]}"#.to_vec(),
            "invalid JSON push body",
        ),
        (
            "bad timestamp",
            vec![("Content-Type", "application/json")],
            br#"{"streams":[{"stream":{"a":"1"},"values":[["yesterday","x"]]}]}"#.to_vec(),
            "is not an integer of Unix nanoseconds",
        ),
        (
            "too large",
            vec![("Content-Type", "application/json")],
            vec![b' '; 65 << 10],
            "request body too large",
        ),
        (
            "gzip bomb",
            vec![
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
            ],
            bomb,
            "request body too large",
        ),
        (
            "bad gzip",
            vec![
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
            ],
            b"not gzip at all".to_vec(),
            "invalid gzip body",
        ),
        (
            "unknown encoding",
            vec![("Content-Encoding", "br")],
            b"x".to_vec(),
            "Content-Encoding \"br\" not supported",
        ),
    ];
    let t = now_ns();
    for (i, (name, headers, body, want)) in cases.into_iter().enumerate() {
        let r = srv.request("POST", "/loki/api/v1/push", &headers, &body);
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        assert!(
            r.text().contains(want),
            "{name}: {:?} does not say {want:?}",
            r.text()
        );
        // Still serving: a valid push right after is stored.
        let ok = json!({"streams": [{"stream": {"app": "after"}, "values": [[(t + i as i64).to_string(), name]]}]});
        let r = srv.push_json(&ok.to_string());
        assert_eq!(r.status, 204, "after {name}: {}", r.text());
    }
    let resp = query_range(&srv, r#"{app="after"}"#, t - S, t + S, &[]);
    assert_eq!(entries(&resp).len(), 9);
    assert_eq!(srv.get("/ready").status, 200);
    let metrics = srv.get("/metrics").text();
    let want = format!(
        "kiroku_ingest_bytes_discarded_total{{tenant=\"fake\",reason=\"request_body_too_large\"}} {too_large_bytes}"
    );
    assert!(
        metrics.lines().any(|l| l == want),
        "{want} not in\n{metrics}"
    );
}

#[test]
fn metadata_endpoints_see_pushed_streams() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    let body = json!({"streams": [
        {"stream": {"app": "a", "namespace": "ns1"}, "values": [[t.to_string(), "one"]]},
        {"stream": {"app": "b", "namespace": "ns1", "pod": "b-0"}, "values": [[t.to_string(), "two"], [(t + 1).to_string(), "three"]]},
    ]});
    assert_eq!(srv.push_json(&body.to_string()).status, 204);
    let (s, e) = ((t - S).to_string(), (t + S).to_string());
    let range = [("start", s.as_str()), ("end", e.as_str())];

    let r = srv.get_query("/loki/api/v1/labels", &range, &[]);
    assert_eq!(
        r.json()["data"],
        json!(["app", "namespace", "pod", "service_name"])
    );
    let r = srv.get_query("/loki/api/v1/label/app/values", &range, &[]);
    assert_eq!(r.json()["data"], json!(["a", "b"]));
    let r = srv.get_query("/loki/api/v1/label/nosuch/values", &range, &[]);
    assert_eq!(r.json(), json!({"status": "success"}));
    let mut p = range.to_vec();
    p.push(("match[]", r#"{pod="b-0"}"#));
    let r = srv.get_query("/loki/api/v1/series", &p, &[]);
    assert_eq!(
        r.json()["data"],
        json!([{"app": "b", "namespace": "ns1", "pod": "b-0", "service_name": "b"}])
    );
    // Form-encoded POST works like GET.
    let form = common::encode(&[("match[]", r#"{app="a"}"#), ("start", &s), ("end", &e)]);
    let r = srv.request(
        "POST",
        "/loki/api/v1/series",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(
        r.json()["data"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
    let mut p = range.to_vec();
    p.push(("query", r#"{namespace="ns1"}"#));
    let r = srv.get_query("/loki/api/v1/index/stats", &p, &[]);
    let v = r.json();
    assert_eq!(
        (v["streams"].as_u64(), v["entries"].as_u64()),
        (Some(2), Some(3)),
        "{v}"
    );
    let r = srv.get_query("/loki/api/v1/index/volume", &p, &[]);
    let v = r.json();
    assert_eq!(v["data"]["resultType"], "vector", "{v}");
    assert_eq!(
        v["data"]["result"][0]["metric"],
        json!({"namespace": "ns1"})
    );
    let r = srv.get_query(
        "/loki/api/v1/format_query",
        &[("query", r#"{app="a"}|="x""#)],
        &[],
    );
    assert_eq!(r.json()["data"], r#"{app="a"} |= "x""#);
}

/// Loki 3 still serves the read API of its first versions under `/api/prom/`, in the old
/// shapes; `regexp` adds a line filter.
#[test]
fn legacy_read_endpoints_answer_in_the_old_shapes() {
    let srv = Server::start(&["--retention", "0"]);
    // 2023-11-14T22:13:20Z
    let t = 1_700_000_000 * S;
    let body = json!({"streams": [
        {"stream": {"app": "old"}, "values": [
            [t.to_string(), "GET /a 200"],
            [(t + 380_001_000).to_string(), "GET /b 500"],
            [(t + 2 * S).to_string(), "POST /c 500", {"trace_id": "t1"}],
        ]},
    ]});
    assert_eq!(srv.push_json(&body.to_string()).status, 204);
    let (s, e) = ((t - S).to_string(), (t + 10 * S).to_string());
    let r = srv.get_query(
        "/api/prom/query",
        &[
            ("query", r#"{app="old"}"#),
            ("regexp", "5.0$"),
            ("start", &s),
            ("end", &e),
            ("limit", "10"),
        ],
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // Each label set a stream, times in RFC 3339; the old shape cannot categorize labels,
    // so structured metadata stays among them.
    assert_eq!(
        v["streams"],
        json!([
            {"labels": r#"{app="old", detected_level="unknown", service_name="old"}"#,
             "entries": [{"ts": "2023-11-14T22:13:20.380001Z", "line": "GET /b 500"}]},
            {"labels": r#"{app="old", detected_level="unknown", service_name="old", trace_id="t1"}"#,
             "entries": [{"ts": "2023-11-14T22:13:22Z", "line": "POST /c 500"}]},
        ]),
        "{v}"
    );
    assert!(v["stats"].is_object(), "{v}");
    let r = srv.get_query(
        "/api/prom/query",
        &[("query", r#"count_over_time({app="old"}[1m])"#)],
        &[],
    );
    assert_eq!(
        (r.status, r.text().trim()),
        (400, "legacy endpoints only support streams result type")
    );
    let range = [("start", s.as_str()), ("end", e.as_str())];
    let r = srv.get_query("/api/prom/label", &range, &[]);
    assert_eq!(r.json(), json!({"values": ["app", "service_name"]}));
    let r = srv.get_query("/api/prom/label/app/values", &range, &[]);
    assert_eq!(r.json(), json!({"values": ["old"]}));
    let r = srv.get_query("/api/prom/label/nosuch/values", &range, &[]);
    assert_eq!(r.json(), json!({}));
    let mut p = range.to_vec();
    p.push(("match[]", r#"{app="old"}"#));
    let r = srv.get_query("/api/prom/series", &p, &[]);
    assert_eq!(
        r.json()["data"],
        json!([{"app": "old", "service_name": "old"}])
    );
    // The singular `/loki/api/v1/label` lists names too, as in Loki.
    let r = srv.get_query("/loki/api/v1/label", &range, &[]);
    assert_eq!(r.json()["data"], json!(["app", "service_name"]));
}

#[test]
fn query_errors_are_plain_text_with_loki_statuses() {
    let srv = Server::start(&[]);
    let r = srv.get_query("/loki/api/v1/query_range", &[("query", "{app=")], &[]);
    assert_eq!(r.status, 400);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[("query", r#"{app="a"}"#), ("limit", "-1")],
        &[],
    );
    assert_eq!(
        (r.status, r.text().trim()),
        (400, "limit must be a positive value")
    );
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[("query", r#"{app="a"}"#), ("limit", "5001")],
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("max_entries_limit_per_query"),
        "{}",
        r.text()
    );
    let r = srv.get_query("/loki/api/v1/query", &[("query", r#"{app="a"}"#)], &[]);
    assert_eq!(r.status, 400);
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="a"}"#),
            ("start", "2026-01-01T00:00:00Z"),
            ("end", "2026-03-01T00:00:00Z"),
        ],
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("the query time range exceeds the limit"),
        "{}",
        r.text()
    );
    // Drilldown sends ISO-8601 start and end.
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[
            ("query", r#"{app="a"}"#),
            ("start", "2026-01-01T00:00:00.000Z"),
            ("end", "2026-01-01T01:00:00.000Z"),
        ],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(srv.get("/no/such/path").status, 404);
}

#[test]
fn otlp_json_and_bad_otlp_bodies() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "otel-json"}},
            {"key": "host.name", "value": {"stringValue": "node-7"}}]},
        "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": [{
            "timeUnixNano": t.to_string(), "severityNumber": 17,
            "body": {"stringValue": "disk full"},
            "traceId": "5b8efff798038103d269b633813fc60c",
            "attributes": [{"key": "http.status_code", "value": {"intValue": "507"}}]}]}]}]});
    let r = srv.request(
        "POST",
        "/otlp/v1/logs",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!((r.status, r.text().as_str()), (200, "{}"));
    let resp = query_range(&srv, r#"{service_name="otel-json"}"#, t - S, t + S, &[]);
    let got = entries(&resp);
    assert_eq!(got.len(), 1, "{resp}");
    assert_eq!(got[0].2, "disk full");
    assert_eq!(got[0].0["host_name"], "node-7");
    assert_eq!(got[0].0["http_status_code"], "507");
    assert_eq!(got[0].0["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(
        got[0].0["detected_level"], "error",
        "from severityNumber 17"
    );

    let r = srv.request(
        "POST",
        "/otlp/v1/logs",
        &[("Content-Type", "application/x-protobuf")],
        b"\x0a\xff\xff\xff\x0f garbage",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/x-protobuf"));
    assert!(
        r.text().contains("invalid OTLP protobuf logs request"),
        "{}",
        r.text()
    );
    let r = srv.request(
        "POST",
        "/otlp/v1/logs",
        &[("Content-Type", "application/json")],
        b"{\"resourceLogs\": 5}",
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid OTLP/JSON")
    );
}
