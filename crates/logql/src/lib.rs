//! LogQL, the query language of Grafana Loki, as kiroku speaks it: the parser and printer,
//! the log pipeline (line filters, parsers, label filters, formatters) and the evaluator of
//! log and metric queries, all answering exactly as Loki does.
//!
//! This crate does not know about storage or HTTP: it reads entries from a [`Source`] that
//! the store implements, and returns results as [`protocol::response`] types.
//!
//! Start reading from:
//! - [`ast`]: the syntax tree every other module works on;
//! - [`parse`] and [`format_query`]: text to tree and back, with Loki's messages;
//! - [`Engine`]: what the server calls to answer `query` and `query_range`, with Loki's
//!   limits and errors ([`QueryError::status`]);
//! - [`source`]: the contract with storage ([`Source`], [`StreamCursor`], [`Batch`]);
//! - [`detect`]: the `service_name` and `detected_level` Loki adds at ingest.

pub mod ast;
pub mod detect;
pub mod engine;
mod eval;
pub mod fields;
mod lexer;
mod parser;
pub mod pipeline;
pub mod prehashed;
pub mod printer;
pub mod source;
pub mod template;

pub use engine::{Engine, InstantQuery, Limits, QueryError, RangeQuery};
pub use parser::{ParseError, parse};
pub use source::{
    Batch, Columns, Direction, MemoryEntry, MemorySource, RequiredText, Select, Source,
    SourceError, StreamCursor,
};

/// Parses `q` and prints it as Loki's `/loki/api/v1/format_query` does.
pub fn format_query(q: &str) -> Result<String, ParseError> {
    Ok(printer::pretty(&parse(q)?))
}
