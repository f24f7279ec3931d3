//! Values inside a template, typed as Go would type them: a template's functions and
//! comparisons care whether a number is an `int`, an `int64` or a `float64`.

use std::borrow::Cow;
use std::rc::Rc;

use super::gotime::GoTime;

/// Go's integer types that templates meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntKind {
    Int,
    Int64,
    Uint8,
}

#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    /// A nil interface, or a missing key of a `map[string]interface{}`.
    Nil,
    Str(Cow<'a, str>),
    Int(i64, IntKind),
    Float(f64),
    Bool(bool),
    Time(Rc<GoTime>),
    /// `map[string]interface{}` (from `fromJson`), sorted by key.
    Map(Rc<Vec<(String, Value<'static>)>>),
    /// `[]interface{}`.
    List(Rc<Vec<Value<'static>>>),
    /// The template's data: the entry's labels, a `map[string]string`.
    Labels,
}

impl Value<'_> {
    pub(crate) fn str(s: impl Into<String>) -> Value<'static> {
        Value::Str(Cow::Owned(s.into()))
    }

    pub(crate) fn int(v: i64) -> Value<'static> {
        Value::Int(v, IntKind::Int)
    }

    pub(crate) fn int64(v: i64) -> Value<'static> {
        Value::Int(v, IntKind::Int64)
    }

    /// Go's type name, as `%T` and error messages print it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Str(_) => "string",
            Value::Int(_, IntKind::Int) => "int",
            Value::Int(_, IntKind::Int64) => "int64",
            Value::Int(_, IntKind::Uint8) => "uint8",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time.Time",
            Value::Map(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
            Value::Labels => "map[string]string",
        }
    }

    /// Go's `template.IsTrue`: zero values are false.
    pub(crate) fn truth(&self, labels_len: usize) -> bool {
        match self {
            Value::Nil => false,
            Value::Str(s) => !s.is_empty(),
            Value::Int(i, _) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Time(_) => true,
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Labels => labels_len > 0,
        }
    }

    /// A JSON document as `encoding/json` decodes it into `interface{}`.
    pub(crate) fn from_json(v: &serde_json::Value) -> Value<'static> {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
            serde_json::Value::String(s) => Value::str(s.clone()),
            serde_json::Value::Array(a) => {
                Value::List(Rc::new(a.iter().map(Value::from_json).collect()))
            }
            serde_json::Value::Object(o) => {
                let mut m: Vec<(String, Value<'static>)> = o
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect();
                m.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Map(Rc::new(m))
            }
        }
    }
}
