//! Wire types that kiroku's server, agent and command-line client share, all of them as
//! Grafana Loki defines them, so that kiroku and any Loki client understand each other.
//!
//! This crate holds formats, not behaviour: it decodes and encodes, it does not validate
//! streams against limits, store anything or evaluate queries.
//!
//! Start reading from:
//! - [`Labels`]: a stream's label set, parsed from and printed as `{name="value", ...}`;
//! - [`push`]: `logproto.PushRequest` (snappy protobuf) with a zero-copy decoder for the
//!   server and owned types for clients, and [`push_json`] for Loki's JSON push body;
//! - [`response`]: the JSON answers of the query API (`streams`, `matrix`, `vector`, `scalar`);
//! - [`time`]: Loki's timestamp and duration formats for query parameters.

pub mod labels;
pub mod push;
pub mod push_json;
pub mod quote;
pub mod response;
pub mod time;

pub use labels::{Label, Labels, LabelsError};
