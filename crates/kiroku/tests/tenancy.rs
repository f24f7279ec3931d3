//! Loki's two tenancy modes through the real binary.

mod common;

use common::{Server, now_ns};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

fn push(srv: &Server, tenant: Option<&str>, app: &str, line: &str, ts: i64) -> common::Response {
    let body = json!({"streams": [{"stream": {"app": app}, "values": [[ts.to_string(), line]]}]});
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(t) = tenant {
        headers.push(("X-Scope-OrgID", t));
    }
    srv.request(
        "POST",
        "/loki/api/v1/push",
        &headers,
        body.to_string().as_bytes(),
    )
}

fn lines(srv: &Server, tenant: Option<&str>, query: &str, t: i64) -> (u16, Vec<(Value, String)>) {
    let (s, e) = ((t - S).to_string(), (t + S).to_string());
    let headers: Vec<(&str, &str)> = tenant.map(|t| ("X-Scope-OrgID", t)).into_iter().collect();
    let r = srv.get_query(
        "/loki/api/v1/query_range",
        &[("query", query), ("start", &s), ("end", &e)],
        &headers,
    );
    if r.status != 200 {
        return (r.status, vec![]);
    }
    let v = r.json();
    let mut out = Vec::new();
    for st in v["data"]["result"].as_array().unwrap() {
        for e in st["values"].as_array().unwrap() {
            out.push((st["stream"].clone(), e[1].as_str().unwrap().to_string()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    (200, out)
}

#[test]
fn header_mode_keeps_tenants_apart() {
    let srv = Server::start(&["--auth", "header"]);
    let t = now_ns() - 60 * S;

    // No header: Loki's 401 and body.
    let r = push(&srv, None, "x", "nobody", t);
    assert_eq!((r.status, r.text().trim()), (401, "no org id"));
    let (status, _) = lines(&srv, None, r#"{app="x"}"#, t);
    assert_eq!(status, 401);
    let r = srv.get("/loki/api/v1/labels");
    assert_eq!(r.status, 401);

    assert_eq!(push(&srv, Some("team-a"), "x", "from a", t).status, 204);
    assert_eq!(push(&srv, Some("team-b"), "x", "from b", t + 1).status, 204);

    let (_, a) = lines(&srv, Some("team-a"), r#"{app="x"}"#, t);
    assert_eq!(
        a.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
        ["from a"]
    );
    let (_, b) = lines(&srv, Some("team-b"), r#"{app="x"}"#, t);
    assert_eq!(
        b.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
        ["from b"]
    );
    let (_, c) = lines(&srv, Some("team-c"), r#"{app="x"}"#, t);
    assert!(c.is_empty());

    // Several tenants in one query, each stream marked with its tenant.
    let (_, both) = lines(&srv, Some("team-a|team-b"), r#"{app="x"}"#, t);
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[0].0["__tenant_id__"], "team-a");
    assert_eq!(both[1].0["__tenant_id__"], "team-b");

    // Metadata is per tenant too.
    let headers = [("X-Scope-OrgID", "team-c")];
    let r = srv.request("GET", "/loki/api/v1/label/app/values", &headers, b"");
    assert_eq!(r.json(), json!({"status": "success"}));

    // A push names exactly one tenant.
    let r = push(&srv, Some("team-a|team-b"), "x", "both", t);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("exactly one tenant"), "{}", r.text());
    let r = push(&srv, Some("../etc"), "x", "escape", t);
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn single_tenant_mode_ignores_the_header() {
    let srv = Server::start(&[]);
    let t = now_ns() - 60 * S;
    assert_eq!(push(&srv, None, "y", "no header", t).status, 204);
    assert_eq!(
        push(&srv, Some("anyone"), "y", "with header", t + 1).status,
        204
    );
    let (_, all) = lines(&srv, None, r#"{app="y"}"#, t);
    assert_eq!(all.len(), 2);
    let (_, all) = lines(&srv, Some("someone-else"), r#"{app="y"}"#, t);
    assert_eq!(all.len(), 2);
}
