//! The fake API server's `coordination.k8s.io/v1` Leases: get, create (a second create
//! of the same name is `409 AlreadyExists`) and update, which succeeds only when it
//! carries the stored `resourceVersion` (else `409 Conflict`), as the real API server's
//! optimistic concurrency does; plus refusing (403) and losing races on demand.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Shared, gate, status_json};

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    (
        code,
        [("content-type", "application/json")],
        status_json(code.as_u16(), reason, message),
    )
        .into_response()
}

fn lease_gate(st: &Shared, what: String) -> Option<Response> {
    if let Some(r) = gate(st, what) {
        return Some(r);
    }
    st.inner.lock().forbid_leases.then(|| {
        status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:default:kiroku-agent\" cannot get resource \"leases\"",
        )
    })
}

fn lease_not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("leases.coordination.k8s.io \"{name}\" not found"),
    )
}

pub(super) async fn lease_get(
    State(st): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> Response {
    if let Some(r) = lease_gate(&st, format!("lease get {ns}/{name}")) {
        return r;
    }
    match st.inner.lock().leases.get(&(ns, name.clone())) {
        Some(l) => ([("content-type", "application/json")], l.to_string()).into_response(),
        None => lease_not_found(&name),
    }
}

pub(super) async fn lease_create(
    State(st): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = lease_gate(&st, format!("lease create {ns}")) {
        return r;
    }
    let Ok(mut lease) = serde_json::from_slice::<Value>(&body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "not a JSON Lease");
    };
    let Some(name) = lease["metadata"]["name"].as_str().map(str::to_string) else {
        return status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
        );
    };
    let mut g = st.inner.lock();
    let key = (ns.clone(), name.clone());
    if g.leases.contains_key(&key) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    g.rv += 1;
    lease["kind"] = json!("Lease");
    lease["apiVersion"] = json!("coordination.k8s.io/v1");
    lease["metadata"]["namespace"] = json!(ns);
    lease["metadata"]["uid"] = json!(format!("lease-{ns}-{name}"));
    lease["metadata"]["resourceVersion"] = json!(g.rv.to_string());
    lease["metadata"]["creationTimestamp"] = json!("2024-05-01T09:59:00Z");
    g.leases.insert(key, lease.clone());
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        lease.to_string(),
    )
        .into_response()
}

pub(super) async fn lease_replace(
    State(st): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(r) = lease_gate(&st, format!("lease update {ns}/{name}")) {
        return r;
    }
    let Ok(mut lease) = serde_json::from_slice::<Value>(&body) else {
        return status(StatusCode::BAD_REQUEST, "BadRequest", "not a JSON Lease");
    };
    let mut g = st.inner.lock();
    let key = (ns.clone(), name.clone());
    let Some(stored) = g.leases.get(&key) else {
        return lease_not_found(&name);
    };
    let current = stored["metadata"]["resourceVersion"].clone();
    let meta = stored["metadata"].clone();
    let stale = lease["metadata"]["resourceVersion"] != current;
    if stale || g.lease_conflicts > 0 {
        g.lease_conflicts = g.lease_conflicts.saturating_sub(1);
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
        );
    }
    g.rv += 1;
    lease["metadata"] = json!({
        "name": name, "namespace": ns, "uid": meta["uid"],
        "creationTimestamp": meta["creationTimestamp"],
        "resourceVersion": g.rv.to_string(),
        "annotations": lease["metadata"]["annotations"].clone(),
    });
    g.leases.insert(key, lease.clone());
    ([("content-type", "application/json")], lease.to_string()).into_response()
}
