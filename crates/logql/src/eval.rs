//! Evaluation of log and metric queries over a [`Source`](crate::Source).

pub(crate) mod binop;
