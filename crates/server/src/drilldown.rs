//! `GET /loki/api/v1/drilldown-limits`: the limits and features Grafana's Logs Drilldown
//! reads when it opens, in Loki's (3.6 and later) shape:
//! `{"limits":{...},"pattern_ingester_enabled":true,"version":"3.7.6"}`.
//!
//! Drilldown uses the answer to choose what to show: the Patterns tab only when
//! `pattern_ingester_enabled` is true, time ranges no longer than `retention_period`, the
//! number of lines from `max_entries_limit_per_query`. A 404 makes it fall back to guesses
//! for Loki before 3.6, so every value here is what kiroku really does with its
//! configuration, never a copy of Loki's defaults:
//! - `max_entries_limit_per_query`, `max_query_series`, `max_query_length`,
//!   `query_timeout` and `retention_period` are the options of the same names (0 = none);
//! - limits kiroku does not enforce are published as Loki publishes "no limit": `0s` for
//!   durations, `0B` for `max_query_bytes_read`, 0 for `volume_max_series` (a volume query
//!   returns as many series as its `limit` asks);
//! - patterns are on: they are mined from the stored lines when asked
//!   ([`crate::patterns`]), over any range within retention. Nothing is written for them,
//!   so `pattern_persistence_enabled` (Loki's patterns stored as log streams) is false;
//! - `discover_service_name`, `log_level_fields` and `otlp_config` are the lists the push
//!   paths use.
//!
//! The keys are Loki's published allowlist, in Go's sorted-map order. Durations are
//! written as Prometheus writes them (`30d1h`, `1w`, `1m`): Drilldown parses
//! `retention_period` with a Prometheus duration parser.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use logql::detect::{LEVEL_FIELDS, SERVICE_NAME_LABELS};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::config::units::Period;
use crate::error::ApiError;
use crate::otlp::mapping::INDEXED_RESOURCE_ATTRIBUTES;
use crate::query::answer;
use crate::status::LOKI_API_VERSION;
use crate::tenant;

/// `GET /loki/api/v1/drilldown-limits`. With `--auth header` the request needs a tenant,
/// as every read does; the limits are the same for every tenant.
pub async fn limits(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    answer(render(&app.config, &headers))
}

fn render(config: &Config, headers: &HeaderMap) -> Result<Bytes, ApiError> {
    tenant::read_tenants(config.auth, headers)?;
    let body = serde_json::to_vec(&DrilldownLimits::of(config))
        .map_err(|e| ApiError::internal(format!("cannot write the limits: {e}")))?;
    Ok(Bytes::from(body))
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct DrilldownLimits {
    pub limits: Limits,
    pub pattern_ingester_enabled: bool,
    pub version: &'static str,
}

/// Loki's published limits, alphabetical as Go writes a map.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub discover_log_levels: bool,
    pub discover_service_name: &'static [&'static str],
    pub log_level_fields: &'static [&'static str],
    pub max_entries_limit_per_query: usize,
    pub max_line_size_truncate: bool,
    pub max_query_bytes_read: &'static str,
    pub max_query_length: String,
    pub max_query_lookback: String,
    pub max_query_range: String,
    pub max_query_series: usize,
    pub metric_aggregation_enabled: bool,
    pub otlp_config: OtlpConfig,
    pub pattern_persistence_enabled: bool,
    pub query_timeout: String,
    pub retention_period: String,
    pub volume_enabled: bool,
    pub volume_max_series: usize,
}

/// Loki's `otlp_config` as its Go structs encode (field names as in Go): which resource
/// attributes become stream labels. The rest become structured metadata.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OtlpConfig {
    pub resource_attributes: ResourceAttributes,
    pub scope_attributes: Option<()>,
    pub log_attributes: Option<()>,
    pub severity_text_as_label: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceAttributes {
    pub ignore_defaults: bool,
    pub attributes_config: Vec<AttributesConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributesConfig {
    pub action: &'static str,
    pub attributes: &'static [&'static str],
    pub regex: &'static str,
}

impl DrilldownLimits {
    pub fn of(config: &Config) -> DrilldownLimits {
        let none = || prometheus_duration(0);
        DrilldownLimits {
            limits: Limits {
                // `detected_level` is added to every entry on push.
                discover_log_levels: true,
                discover_service_name: SERVICE_NAME_LABELS,
                log_level_fields: LEVEL_FIELDS,
                max_entries_limit_per_query: config.max_entries_limit_per_query,
                // Longer lines are refused, not cut.
                max_line_size_truncate: false,
                max_query_bytes_read: "0B",
                max_query_length: duration(config.max_query_length),
                max_query_lookback: none(),
                max_query_range: none(),
                max_query_series: config.max_query_series,
                metric_aggregation_enabled: false,
                otlp_config: OtlpConfig {
                    resource_attributes: ResourceAttributes {
                        ignore_defaults: false,
                        attributes_config: vec![AttributesConfig {
                            action: "index_label",
                            attributes: INDEXED_RESOURCE_ATTRIBUTES,
                            regex: "",
                        }],
                    },
                    scope_attributes: None,
                    log_attributes: None,
                    severity_text_as_label: false,
                },
                pattern_persistence_enabled: false,
                query_timeout: duration(config.query_timeout),
                retention_period: duration(config.retention),
                volume_enabled: true,
                volume_max_series: 0,
            },
            pattern_ingester_enabled: true,
            version: LOKI_API_VERSION,
        }
    }
}

fn duration(p: Period) -> String {
    prometheus_duration(p.nanos())
}

/// A duration as Prometheus' `model.Duration` prints it: years and weeks only when they
/// divide it exactly (`1w`, but `30d1h` rather than `4w2d1h`), then days, hours, minutes,
/// seconds and milliseconds; `0s` for zero. Below a millisecond is dropped, as there.
pub fn prometheus_duration(nanos: i64) -> String {
    let mut ms = nanos / 1_000_000;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    const DAY: i64 = 86_400_000;
    for (unit, size, exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && ms % size != 0 {
            continue;
        }
        if ms >= size {
            out.push_str(&(ms / size).to_string());
            out.push_str(unit);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Auth;
    use protocol::time::NANOS_PER_SECOND;

    #[test]
    fn durations_read_as_prometheus_writes_them() {
        let h = 3600 * NANOS_PER_SECOND;
        assert_eq!(prometheus_duration(0), "0s");
        assert_eq!(prometheus_duration(721 * h), "30d1h");
        assert_eq!(prometheus_duration(7 * 24 * h), "1w");
        assert_eq!(prometheus_duration(365 * 24 * h), "1y");
        assert_eq!(prometheus_duration(90 * 24 * h), "90d");
        assert_eq!(prometheus_duration(60 * NANOS_PER_SECOND), "1m");
        assert_eq!(
            prometheus_duration(90 * NANOS_PER_SECOND + 5_000_000),
            "1m30s5ms"
        );
        assert_eq!(prometheus_duration(500), "0s");
    }

    #[test]
    fn the_limits_are_the_configured_ones() {
        let mut config = Config {
            max_entries_limit_per_query: 1234,
            max_query_series: 77,
            max_query_length: Period::from_secs(721 * 3600),
            query_timeout: Period::from_secs(90),
            retention: Period::from_secs(14 * 86_400),
            ..Config::default()
        };
        let v = serde_json::to_value(DrilldownLimits::of(&config)).unwrap();
        let l = &v["limits"];
        assert_eq!(l["max_entries_limit_per_query"], 1234);
        assert_eq!(l["max_query_series"], 77);
        assert_eq!(l["max_query_length"], "30d1h");
        assert_eq!(l["query_timeout"], "1m30s");
        assert_eq!(l["retention_period"], "2w");
        assert_eq!(l["discover_service_name"][0], "service");
        assert_eq!(l["log_level_fields"][0], "level");
        assert_eq!(
            l["otlp_config"]["ResourceAttributes"]["AttributesConfig"][0]["Action"],
            "index_label"
        );
        assert_eq!(v["pattern_ingester_enabled"], true);
        assert_eq!(v["version"], LOKI_API_VERSION);
        // Exactly Loki's published set (its empty `retention_stream` is left out), written
        // in Go's sorted-map order.
        let keys: Vec<&String> = l.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 17, "{keys:?}");
        let text = serde_json::to_string(&DrilldownLimits::of(&config)).unwrap();
        let at: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
        config.retention = Period(0);
        let v = serde_json::to_value(DrilldownLimits::of(&config)).unwrap();
        assert_eq!(v["limits"]["retention_period"], "0s", "keep everything");
    }

    #[test]
    fn a_tenant_is_needed_when_tenants_are_kept_apart() {
        let config = Config {
            auth: Auth::Header,
            ..Config::default()
        };
        let e = render(&config, &HeaderMap::new()).unwrap_err();
        assert_eq!(e.status.as_u16(), 401, "{e}");
        let mut h = HeaderMap::new();
        h.insert("X-Scope-OrgID", "team-a".parse().unwrap());
        assert!(render(&config, &h).is_ok());
    }
}
