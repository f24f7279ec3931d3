//! Query parameters as Loki reads them: from the URL, or from a form-encoded POST body
//! (whose values come first, as in Go's `Request.Form`), with Loki's defaults and messages
//! for `start`/`end`/`since`, `limit`, `direction`, `step` and `interval`.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, header};
use http_body_util::BodyExt;
use logql::Direction;
use protocol::time::{self, NANOS_PER_SECOND};

use crate::error::ApiError;

/// Largest form body read for a query request.
const MAX_FORM_BYTES: usize = 4 << 20;

/// Loki's defaults.
pub const DEFAULT_LIMIT: u32 = 100;
const DEFAULT_SINCE: i64 = 3600 * NANOS_PER_SECOND;

/// All parameters of a request, in order; a name may repeat (`match[]`).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params {
            pairs,
            headers: HeaderMap::new(),
        }
    }

    /// The first value of `name`; an empty value counts as absent, as in Loki.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// [`Params::bounds`], refused with Loki's message when `end` is before `start` (for
    /// endpoints that check the range themselves rather than through the query engine).
    pub fn ordered_bounds(&self, now: i64) -> Result<(i64, i64), ApiError> {
        let (start, end) = self.bounds(now)?;
        if end < start {
            return Err(ApiError::bad_request(logql::engine::ERR_END_BEFORE_START));
        }
        Ok((start, end))
    }

    /// `start` and `end` in nanoseconds: `end` defaults to now, `start` to `since` (default
    /// one hour) before the earlier of `end` and now.
    pub fn bounds(&self, now: i64) -> Result<(i64, i64), ApiError> {
        let since = match self.get("since") {
            Some(s) => time::parse_prometheus_duration(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "could not parse 'since' parameter: not a valid duration string: {s:?}"
                ))
            })?,
            None => DEFAULT_SINCE,
        };
        let end = match self.get("end") {
            Some(v) => parse_time(v, "end")?,
            None => now,
        };
        let start = match self.get("start") {
            Some(v) => parse_time(v, "start")?,
            None => end.min(now).saturating_sub(since),
        };
        Ok((start, end))
    }

    /// `time` of an instant query, default now.
    pub fn time(&self, now: i64) -> Result<i64, ApiError> {
        match self.get("time") {
            Some(v) => parse_time(v, "time"),
            None => Ok(now),
        }
    }

    pub fn limit(&self) -> Result<u32, ApiError> {
        self.positive("limit", DEFAULT_LIMIT)
    }

    /// A positive integer parameter with a default.
    pub fn positive(&self, name: &str, default: u32) -> Result<u32, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: i64 = v.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid {name} {v:?}: it must be a positive integer"
            ))
        })?;
        if n <= 0 {
            return Err(ApiError::bad_request(format!(
                "{name} must be a positive value"
            )));
        }
        u32::try_from(n).map_err(|_| {
            ApiError::bad_request(format!(
                "{name} value {n} is out of range [0, {}]",
                u32::MAX
            ))
        })
    }

    pub fn direction(&self) -> Result<Direction, ApiError> {
        match self.get("direction") {
            None => Ok(Direction::Backward),
            Some(v) if v.eq_ignore_ascii_case("backward") => Ok(Direction::Backward),
            Some(v) if v.eq_ignore_ascii_case("forward") => Ok(Direction::Forward),
            Some(v) => Err(ApiError::bad_request(format!("invalid direction '{v}'"))),
        }
    }

    /// `step` in nanoseconds, `None` when absent (the engine then uses Loki's default).
    pub fn step(&self) -> Result<Option<i64>, ApiError> {
        self.get("step")
            .map(|v| {
                time::parse_seconds_or_duration(v).map_err(|e| ApiError::bad_request(e.to_string()))
            })
            .transpose()
    }

    /// `step`, or Loki's default for `start..end` when absent; a step that is not
    /// positive is refused with Loki's message (for endpoints that step on their own).
    pub fn step_or_default(&self, start: i64, end: i64) -> Result<i64, ApiError> {
        let step = match self.step()? {
            Some(s) => s,
            None => logql::engine::default_step(start, end),
        };
        if step <= 0 {
            return Err(ApiError::bad_request(logql::engine::ERR_STEP));
        }
        Ok(step)
    }

    pub fn interval(&self) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get("interval") else {
            return Ok(None);
        };
        let i =
            time::parse_seconds_or_duration(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if i < 0 {
            return Err(ApiError::bad_request("interval must be >= 0"));
        }
        Ok(Some(i))
    }

    /// Whether the client asked for structured metadata and parsed labels apart
    /// (`X-Loki-Response-Encoding-Flags: categorize-labels`).
    pub fn categorize_labels(&self) -> bool {
        self.headers
            .get_all("x-loki-response-encoding-flags")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|f| f.trim().eq_ignore_ascii_case("categorize-labels"))
    }
}

fn parse_time(v: &str, name: &str) -> Result<i64, ApiError> {
    time::parse_timestamp(v)
        .map_err(|e| ApiError::bad_request(format!("could not parse '{name}' parameter: {e}")))
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Params, ApiError> {
        let (parts, body) = req.into_parts();
        let mut pairs = Vec::new();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if parts.method == Method::POST && is_form {
            let bytes = read_form(body).await?;
            pairs.extend(form_urlencoded::parse(&bytes).into_owned());
        }
        if let Some(q) = parts.uri.query() {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Ok(Params {
            pairs,
            headers: parts.headers,
        })
    }
}

async fn read_form(body: Body) -> Result<bytes::Bytes, ApiError> {
    match http_body_util::Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::bad_request(
            format!("form body larger than {MAX_FORM_BYTES} bytes: send the query in fewer bytes"),
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the form body: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    const NOW: i64 = 1_795_170_600_000_000_000;

    #[test]
    fn reversed_ranges_and_steps_that_are_not_positive_get_lokis_messages() {
        let e = p(&[("start", "200"), ("end", "100")])
            .ordered_bounds(NOW)
            .unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "end timestamp must not be before or equal to start time"
        );
        assert!(
            p(&[("start", "100"), ("end", "100")])
                .ordered_bounds(NOW)
                .is_ok()
        );
        let e = p(&[("step", "0")]).step_or_default(0, 10).unwrap_err();
        assert_eq!(
            e.message,
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        );
        assert_eq!(
            p(&[]).step_or_default(0, 3600 * NANOS_PER_SECOND).unwrap(),
            14 * NANOS_PER_SECOND
        );
    }

    #[test]
    fn bounds_default_like_loki() {
        assert_eq!(p(&[]).bounds(NOW).unwrap(), (NOW - DEFAULT_SINCE, NOW));
        let (s, e) = p(&[("since", "5m")]).bounds(NOW).unwrap();
        assert_eq!((s, e), (NOW - 300 * NANOS_PER_SECOND, NOW));
        // An end in the future still takes start from now.
        let future = NOW + 7200 * NANOS_PER_SECOND;
        let (s, _) = p(&[("end", &future.to_string())]).bounds(NOW).unwrap();
        assert_eq!(s, NOW - DEFAULT_SINCE);
        let (s, e) = p(&[("start", "2026-11-20T10:00:00Z"), ("end", "1795170600")])
            .bounds(NOW)
            .unwrap();
        assert_eq!((s, e), (1_795_168_800_000_000_000, NOW));
        let err = p(&[("start", "yesterday")]).bounds(NOW).unwrap_err();
        assert!(
            err.message.starts_with("could not parse 'start' parameter"),
            "{err}"
        );
        assert!(p(&[("since", "1x")]).bounds(NOW).is_err());
    }

    #[test]
    fn limit_direction_step() {
        assert_eq!(p(&[]).limit().unwrap(), 100);
        assert_eq!(p(&[("limit", "")]).limit().unwrap(), 100);
        assert_eq!(
            p(&[("limit", "0")]).limit().unwrap_err().message,
            "limit must be a positive value"
        );
        assert!(p(&[("limit", "x")]).limit().is_err());
        assert_eq!(
            p(&[("direction", "FORWARD")]).direction().unwrap(),
            Direction::Forward
        );
        assert_eq!(p(&[]).direction().unwrap(), Direction::Backward);
        assert_eq!(
            p(&[("direction", "up")]).direction().unwrap_err().message,
            "invalid direction 'up'"
        );
        assert_eq!(
            p(&[("step", "60")]).step().unwrap(),
            Some(60 * NANOS_PER_SECOND)
        );
        assert_eq!(
            p(&[("step", "1m")]).step().unwrap(),
            Some(60 * NANOS_PER_SECOND)
        );
        assert_eq!(p(&[]).step().unwrap(), None);
        assert!(p(&[("interval", "-1")]).interval().is_err());
    }

    #[test]
    fn repeated_names() {
        let q = p(&[
            ("match[]", "{a=\"1\"}"),
            ("x", "y"),
            ("match[]", "{b=\"2\"}"),
        ]);
        assert_eq!(
            q.all("match[]").collect::<Vec<_>>(),
            ["{a=\"1\"}", "{b=\"2\"}"]
        );
    }
}
