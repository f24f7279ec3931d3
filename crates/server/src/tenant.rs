//! Which tenant a request belongs to, in Loki's two modes.
//!
//! With `auth: none` everything is the single tenant `fake` (Loki's name for it) and an
//! `X-Scope-OrgID` header is ignored, so no client needs setting up. With `auth: header`
//! the header is required (401 `no org id`, as Loki answers); a read may name several
//! tenants as `a|b`, a write exactly one.

use axum::http::HeaderMap;

use crate::config::Auth;
use crate::error::ApiError;

/// The tenant of single-tenant mode.
pub const SINGLE_TENANT: &str = "fake";

const HEADER: &str = "x-scope-orgid";

/// Longest tenant id Loki accepts.
const MAX_TENANT_LEN: usize = 150;

/// The one tenant a push writes to.
pub fn write_tenant(auth: Auth, headers: &HeaderMap) -> Result<String, ApiError> {
    let mut tenants = tenants(auth, headers)?;
    if tenants.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "a push must name exactly one tenant in X-Scope-OrgID, not {}: send one request per tenant",
            tenants.len()
        )));
    }
    Ok(tenants.remove(0))
}

/// The tenants a query reads: one, or several joined with `|`. Sorted, without repeats.
pub fn read_tenants(auth: Auth, headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    tenants(auth, headers)
}

fn tenants(auth: Auth, headers: &HeaderMap) -> Result<Vec<String>, ApiError> {
    if auth == Auth::None {
        return Ok(vec![SINGLE_TENANT.to_string()]);
    }
    let raw = headers
        .get(HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
        .unwrap_or("")
        .trim();
    if raw.is_empty() {
        return Err(ApiError::unauthorized("no org id"));
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw.split('|') {
        validate(t)?;
        out.push(t.to_string());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Loki's rule: up to 150 of `[a-zA-Z0-9!-_.*'()]`, and not `.` or `..`, so an id is always
/// safe as a directory name.
fn validate(t: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '!' | '-' | '_' | '.' | '*' | '\'' | '(' | ')')
    };
    if t.is_empty() {
        return Err(ApiError::bad_request(
            "tenant ID is empty: X-Scope-OrgID must not hold an empty name between `|`",
        ));
    }
    if t.len() > MAX_TENANT_LEN {
        return Err(ApiError::bad_request(format!(
            "tenant ID is too long: max {MAX_TENANT_LEN} characters"
        )));
    }
    if t == "." || t == ".." {
        return Err(ApiError::bad_request("tenant ID is '.' or '..'"));
    }
    if let Some(c) = t.chars().find(|c| !ok_char(*c)) {
        return Err(ApiError::bad_request(format!(
            "tenant ID '{t}' contains unsupported character '{c}': use letters, digits and !-_.*'()"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(HEADER, v.parse().unwrap());
        m
    }

    #[test]
    fn single_tenant_ignores_the_header() {
        assert_eq!(write_tenant(Auth::None, &h("team-a")).unwrap(), "fake");
        assert_eq!(
            read_tenants(Auth::None, &HeaderMap::new()).unwrap(),
            ["fake"]
        );
    }

    #[test]
    fn header_mode_requires_the_header() {
        let e = write_tenant(Auth::Header, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.message, "no org id");
        assert_eq!(write_tenant(Auth::Header, &h("team-a")).unwrap(), "team-a");
    }

    #[test]
    fn several_tenants_read_but_not_write() {
        assert_eq!(read_tenants(Auth::Header, &h("b|a|b")).unwrap(), ["a", "b"]);
        assert_eq!(
            write_tenant(Auth::Header, &h("a|b")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        assert!(read_tenants(Auth::Header, &h("a/../b")).is_err());
        assert!(read_tenants(Auth::Header, &h("..")).is_err());
        assert!(read_tenants(Auth::Header, &h("a||b")).is_err());
    }
}
