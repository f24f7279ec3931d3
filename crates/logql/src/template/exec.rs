//! Running a parsed template against one entry, with Go's `text/template` semantics: the
//! labels are the data (a `map[string]string` where a missing key is `""`), pipelines pass
//! their value as the last argument, `and`/`or` short-circuit, variables are scoped to
//! their control structure, and errors read as Go's do.

use std::borrow::Cow;
use std::rc::Rc;

use super::Data;
use super::fmt::print_value;
use super::funcs::{self, Kind, Param};
use super::gotime::GoTime;
use super::parse::{Arg, Branch, Command, Node, Number, Pipe};
use super::value::{IntKind, Value};

/// An execution error, located at a node of the template.
#[derive(Debug)]
pub(crate) struct ExecError {
    pub(crate) pos: usize,
    pub(crate) ctx: String,
    pub(crate) msg: String,
}

type R<T> = Result<T, ExecError>;

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec<'a> {
    pub(crate) data: &'a dyn Data,
    pub(crate) vars: Vec<(&'a str, Value<'a>)>,
}

fn err(pos: usize, ctx: impl Into<String>, msg: impl Into<String>) -> ExecError {
    ExecError {
        pos,
        ctx: ctx.into(),
        msg: msg.into(),
    }
}

/// The node as Go prints it in error contexts.
pub(crate) fn arg_string(a: &Arg) -> String {
    match a {
        Arg::Field { idents, .. } => idents.iter().map(|i| format!(".{i}")).collect(),
        Arg::Variable { name, idents, .. } => {
            let mut s = name.clone();
            for i in idents {
                s.push('.');
                s.push_str(i);
            }
            s
        }
        Arg::Chain { node, idents, .. } => {
            let mut s = arg_string(node);
            for i in idents {
                s.push('.');
                s.push_str(i);
            }
            s
        }
        Arg::Dot(_) => ".".into(),
        Arg::Nil(_) => "nil".into(),
        Arg::Bool(_, b) => b.to_string(),
        Arg::Number(_, n) => n.text.clone(),
        Arg::Str { raw, .. } => raw.clone(),
        Arg::Ident { name, .. } => name.clone(),
        Arg::Pipe(_, p) => format!("({})", pipe_string(p)),
    }
}

fn pipe_string(p: &Pipe) -> String {
    let mut s = String::new();
    if !p.decl.is_empty() {
        s.push_str(&p.decl.join(", "));
        s.push_str(if p.is_assign { " = " } else { " := " });
    }
    for (i, c) in p.cmds.iter().enumerate() {
        if i > 0 {
            s.push_str(" | ");
        }
        s.push_str(&command_string(c));
    }
    s
}

fn command_string(c: &Command) -> String {
    c.args.iter().map(arg_string).collect::<Vec<_>>().join(" ")
}

fn param_name(p: Param) -> &'static str {
    match p {
        Param::Str => "string",
        Param::Int => "int",
        Param::Float => "float64",
        Param::Time => "time.Time",
        Param::Any => "interface {}",
    }
}

/// A constant as Go's `idealConstant` types it for an `interface{}` parameter.
fn ideal(n: &Number) -> Value<'static> {
    if n.is_char {
        return Value::int(n.int.unwrap_or(0));
    }
    let t = n.text.to_ascii_lowercase();
    let hex_int = t.trim_start_matches(['-', '+']).starts_with("0x") && !t.contains('p');
    if let Some(f) = n.float
        && !hex_int
        && n.text.contains(['.', 'e', 'E', 'p', 'P'])
    {
        return Value::Float(f);
    }
    match (n.int, n.float) {
        (Some(i), _) => Value::int(i),
        (None, Some(f)) => Value::Float(f),
        _ => Value::Nil,
    }
}

impl<'a> Exec<'a> {
    pub(crate) fn run(&mut self, nodes: &'a [Node], out: &mut String) -> R<()> {
        self.walk(&Value::Labels, nodes, out).map(|_| ())
    }

    fn walk(&mut self, dot: &Value<'a>, nodes: &'a [Node], out: &mut String) -> R<Flow> {
        for n in nodes {
            let flow = match n {
                Node::Text(t) => {
                    out.push_str(t);
                    Flow::Normal
                }
                Node::Action(pipe) => {
                    let v = self.pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match &v {
                            Value::Nil => out.push_str("<no value>"),
                            v => print_value(out, v, self.data),
                        }
                    }
                    Flow::Normal
                }
                Node::If(b) => self.branch(dot, b, false, out)?,
                Node::With(b) => self.branch(dot, b, true, out)?,
                Node::Range(b) => self.range(dot, b, out)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn branch(&mut self, dot: &Value<'a>, b: &'a Branch, with: bool, out: &mut String) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.pipeline(dot, &b.pipe)?;
        let flow = if v.truth(self.data.len()) {
            if with {
                self.walk(&v, &b.list, out)?
            } else {
                self.walk(dot, &b.list, out)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk(dot, e, out)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn range(&mut self, dot: &Value<'a>, b: &'a Branch, out: &mut String) -> R<Flow> {
        let mark = self.vars.len();
        let v = self.pipeline(dot, &b.pipe)?;
        let pos = b.pipe.pos;
        let items: Vec<(Value<'a>, Value<'a>)> = match &v {
            Value::Labels => {
                let mut items = Vec::with_capacity(self.data.len());
                self.data.each(&mut |k, v| {
                    items.push((Value::Str(Cow::Borrowed(k)), Value::Str(Cow::Borrowed(v))))
                });
                items
            }
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::str(k.clone()), v.clone()))
                .collect(),
            Value::List(l) => l
                .iter()
                .enumerate()
                .map(|(i, v)| (Value::int(i as i64), v.clone()))
                .collect(),
            Value::Int(n, _) => {
                if b.pipe.decl.len() > 1 {
                    return Err(err(
                        pos,
                        pipe_string(&b.pipe),
                        format!("can't use {n} to iterate over more than one variable"),
                    ));
                }
                (0..*n).map(|i| (Value::int(i), Value::int(i))).collect()
            }
            Value::Nil => Vec::new(),
            other => {
                let mut s = String::new();
                print_value(&mut s, other, self.data);
                return Err(err(
                    pos,
                    pipe_string(&b.pipe),
                    format!("range can't iterate over {s}"),
                ));
            }
        };
        let mut flow = Flow::Normal;
        if items.is_empty() {
            if let Some(e) = &b.else_list {
                flow = self.walk(dot, e, out)?;
            }
        } else {
            let n = self.vars.len();
            for (key, elem) in items {
                match b.pipe.decl.len() {
                    1 => self.set_var(n, 1, &b.pipe, elem.clone()),
                    2 => {
                        self.set_var(n, 2, &b.pipe, key);
                        self.set_var(n, 1, &b.pipe, elem.clone());
                    }
                    _ => {}
                }
                match self.walk(&elem, &b.list, out)? {
                    Flow::Break => break,
                    Flow::Continue | Flow::Normal => {}
                }
                self.vars.truncate(n);
            }
        }
        self.vars.truncate(mark);
        Ok(match flow {
            Flow::Break | Flow::Continue => Flow::Normal,
            f => f,
        })
    }

    /// Sets the `k`-th variable from the top of the range's declaration.
    fn set_var(&mut self, top: usize, k: usize, pipe: &'a Pipe, v: Value<'a>) {
        if pipe.is_assign {
            let name = pipe.decl[pipe.decl.len() - k].as_str();
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
                slot.1 = v;
            }
        } else if top >= k {
            self.vars[top - k].1 = v;
        }
    }

    fn var(&self, name: &str, pos: usize) -> R<Value<'a>> {
        if let Some((_, v)) = self.vars.iter().rev().find(|(n, _)| *n == name) {
            return Ok(v.clone());
        }
        // `$` is the data, without taking a slot (and an allocation) per run.
        if name == "$" {
            return Ok(Value::Labels);
        }
        Err(err(pos, name, format!("undefined variable: {name}")))
    }

    pub(crate) fn pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> R<Value<'a>> {
        let mut val: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            val = Some(self.command(dot, cmd, val)?);
        }
        let v = val.unwrap_or(Value::Nil);
        for d in &pipe.decl {
            if pipe.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == d) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((d.as_str(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_a_function(&self, args: &'a [Arg], fin: &Option<Value<'a>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(err(
                args[0].pos(),
                arg_string(&args[0]),
                format!(
                    "can't give argument to non-function {}",
                    arg_string(&args[0])
                ),
            ));
        }
        Ok(())
    }

    fn command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { pos, idents } => {
                self.field_chain(dot, dot.clone(), idents, *pos, first, &cmd.args, fin)
            }
            Arg::Chain { pos, node, idents } => {
                if matches!(**node, Arg::Nil(_)) {
                    return Err(err(
                        *pos,
                        arg_string(first),
                        "indirection through explicit nil",
                    ));
                }
                let recv = self.arg(dot, Param::Any, node)?;
                self.field_chain(dot, recv, idents, *pos, first, &cmd.args, fin)
            }
            Arg::Ident { pos, name } => self.function(dot, name, *pos, &cmd.args, fin),
            Arg::Pipe(_, p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.pipeline(dot, p)
            }
            Arg::Variable { pos, name, idents } => {
                let v = self.var(name, *pos)?;
                if idents.is_empty() {
                    self.not_a_function(&cmd.args, &fin)?;
                    return Ok(v);
                }
                self.field_chain(dot, v, idents, *pos, first, &cmd.args, fin)
            }
            Arg::Nil(pos) => {
                self.not_a_function(&cmd.args, &fin)?;
                Err(err(*pos, "nil", "nil is not a command"))
            }
            Arg::Dot(_) => {
                self.not_a_function(&cmd.args, &fin)?;
                Ok(dot.clone())
            }
            Arg::Bool(_, b) => {
                self.not_a_function(&cmd.args, &fin)?;
                Ok(Value::Bool(*b))
            }
            Arg::Number(_, n) => {
                self.not_a_function(&cmd.args, &fin)?;
                Ok(ideal(n))
            }
            Arg::Str { value, .. } => {
                self.not_a_function(&cmd.args, &fin)?;
                Ok(Value::Str(Cow::Borrowed(value)))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn field_chain(
        &mut self,
        dot: &Value<'a>,
        mut recv: Value<'a>,
        idents: &'a [String],
        pos: usize,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let n = idents.len();
        for id in &idents[..n - 1] {
            recv = self.field(dot, id, pos, node, &[], None, recv)?;
        }
        self.field(dot, &idents[n - 1], pos, node, args, fin, recv)
    }

    #[allow(clippy::too_many_arguments)]
    fn field(
        &mut self,
        dot: &Value<'a>,
        name: &'a str,
        pos: usize,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
        recv: Value<'a>,
    ) -> R<Value<'a>> {
        let has_args = args.len() > 1 || fin.is_some();
        let ctx = || arg_string(node);
        match recv {
            Value::Nil => Ok(Value::Nil),
            Value::Labels => {
                if has_args {
                    return Err(err(
                        pos,
                        ctx(),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(Value::Str(Cow::Borrowed(self.data.get(name).unwrap_or(""))))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(err(
                        pos,
                        ctx(),
                        format!("{name} is not a method but has arguments"),
                    ));
                }
                Ok(m.iter()
                    .find(|(k, _)| k == name)
                    .map_or(Value::Nil, |(_, v)| v.clone()))
            }
            Value::Time(t) => self.time_method(dot, &t, name, pos, node, args, fin),
            other => Err(err(
                pos,
                ctx(),
                format!("can't evaluate field {name} in type {}", other.type_name()),
            )),
        }
    }

    /// The methods of `time.Time` a template may call.
    #[allow(clippy::too_many_arguments)]
    fn time_method(
        &mut self,
        dot: &Value<'a>,
        t: &GoTime,
        name: &'a str,
        pos: usize,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let params: &[Param] = match name {
            "Format" => &[Param::Str],
            "Unix" | "UnixMilli" | "UnixNano" | "UTC" | "Local" | "Year" | "YearDay" | "Day"
            | "Hour" | "Minute" | "Second" | "Nanosecond" | "Month" | "Weekday" | "String"
            | "IsZero" => &[],
            _ => {
                return Err(err(
                    pos,
                    arg_string(node),
                    format!("can't evaluate field {name} in type time.Time"),
                ));
            }
        };
        let mut vals = Vec::with_capacity(params.len());
        let given = args.len().saturating_sub(1) + usize::from(fin.is_some());
        if given != params.len() {
            return Err(err(
                pos,
                arg_string(node),
                format!(
                    "wrong number of args for {name}: want {} got {given}",
                    params.len()
                ),
            ));
        }
        for (i, a) in args.iter().skip(1).enumerate() {
            vals.push(self.arg(dot, params[i], a)?);
        }
        if let Some(f) = fin {
            vals.push(self.validate(params[params.len() - 1], f, pos, &arg_string(node))?);
        }
        let (year, _, day, hour, min, sec) = t.parts();
        Ok(match name {
            "Format" => Value::str(t.format(match &vals[0] {
                Value::Str(s) => s,
                _ => "",
            })),
            "Unix" => Value::int64(t.secs),
            "UnixMilli" => Value::int64(t.unix_millis()),
            "UnixNano" => Value::int64(t.unix_nanos()),
            "UTC" | "Local" => {
                let mut u = t.clone();
                u.offset = 0;
                u.zone = "UTC".into();
                Value::Time(Rc::new(u))
            }
            "Year" => Value::int(year),
            "Month" => Value::str(t.format("January")),
            "Day" => Value::int(i64::from(day)),
            "Hour" => Value::int(i64::from(hour)),
            "Minute" => Value::int(i64::from(min)),
            "Second" => Value::int(i64::from(sec)),
            "Nanosecond" => Value::int(i64::from(t.nanos)),
            "YearDay" => Value::int(t.format("002").parse().unwrap_or(0)),
            "Weekday" => Value::str(t.format("Monday")),
            "String" => Value::str(t.to_go_string()),
            "IsZero" => Value::Bool(*t == GoTime::zero()),
            _ => Value::Nil,
        })
    }

    fn function(
        &mut self,
        dot: &Value<'a>,
        name: &'a str,
        pos: usize,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let Some(f) = funcs::lookup(name) else {
            return Err(err(
                pos,
                name,
                format!("\"{name}\" is not a defined function"),
            ));
        };
        let given = args.len() - 1 + usize::from(fin.is_some());
        let fixed = f.params.len();
        if f.variadic.is_some() {
            if given < fixed {
                return Err(err(
                    pos,
                    name,
                    format!("wrong number of args for {name}: want at least {fixed} got {given}"),
                ));
            }
        } else if given != fixed {
            return Err(err(
                pos,
                name,
                format!("wrong number of args for {name}: want {fixed} got {given}"),
            ));
        }
        let ptype = |i: usize| -> Param {
            if i < fixed {
                f.params[i]
            } else {
                f.variadic.unwrap_or(Param::Any)
            }
        };
        if f.kind == Kind::ShortCircuit {
            let or = name == "or";
            let mut v = Value::Nil;
            for a in &args[1..] {
                v = self.arg(dot, Param::Any, a)?;
                if v.truth(self.data.len()) == or {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = fv;
            }
            return Ok(v);
        }
        let mut vals: Vec<Value<'a>> = Vec::with_capacity(given);
        for (i, a) in args[1..].iter().enumerate() {
            vals.push(self.arg(dot, ptype(i), a)?);
        }
        if let Some(fv) = fin {
            let t = if f.variadic.is_some() && given > fixed {
                f.variadic.unwrap_or(Param::Any)
            } else {
                f.params[fixed - 1]
            };
            vals.push(self.validate(t, fv, pos, name)?);
        }
        (f.call)(&vals, self.data).map_err(|e| err(pos, name, format!("error calling {name}: {e}")))
    }

    fn validate(&self, p: Param, v: Value<'a>, pos: usize, ctx: &str) -> R<Value<'a>> {
        let ok = matches!(
            (&p, &v),
            (Param::Any, _)
                | (Param::Str, Value::Str(_))
                | (Param::Int, Value::Int(_, IntKind::Int))
                | (Param::Float, Value::Float(_))
                | (Param::Time, Value::Time(_))
        );
        if ok {
            return Ok(v);
        }
        if matches!(v, Value::Nil) {
            return Err(err(
                pos,
                ctx,
                format!("invalid value; expected {}", param_name(p)),
            ));
        }
        Err(err(
            pos,
            ctx,
            format!(
                "wrong type for value; expected {}; got {}",
                param_name(p),
                v.type_name()
            ),
        ))
    }

    fn arg(&mut self, dot: &Value<'a>, p: Param, a: &'a Arg) -> R<Value<'a>> {
        let pos = a.pos();
        let found = |what: &str| -> ExecError {
            err(
                pos,
                arg_string(a),
                format!("expected {what}; found {}", arg_string(a)),
            )
        };
        let v = match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => {
                if p == Param::Any {
                    return Ok(Value::Nil);
                }
                return Err(err(
                    pos,
                    "nil",
                    format!("cannot assign nil to {}", param_name(p)),
                ));
            }
            Arg::Field { idents, .. } => self.field_chain(
                dot,
                dot.clone(),
                idents,
                pos,
                a,
                std::slice::from_ref(a),
                None,
            )?,
            Arg::Variable { name, idents, .. } => {
                let v = self.var(name, pos)?;
                if idents.is_empty() {
                    v
                } else {
                    self.field_chain(dot, v, idents, pos, a, std::slice::from_ref(a), None)?
                }
            }
            Arg::Chain { node, idents, .. } => {
                let recv = self.arg(dot, Param::Any, node)?;
                self.field_chain(dot, recv, idents, pos, a, std::slice::from_ref(a), None)?
            }
            Arg::Pipe(_, pipe) => self.pipeline(dot, pipe)?,
            Arg::Ident { name, .. } => {
                self.function(dot, name, pos, std::slice::from_ref(a), None)?
            }
            Arg::Bool(_, b) => {
                return match p {
                    Param::Any => Ok(Value::Bool(*b)),
                    _ => Err(found(param_name(p))),
                };
            }
            Arg::Str { value, .. } => {
                return match p {
                    Param::Any | Param::Str => Ok(Value::Str(Cow::Borrowed(value))),
                    _ => Err(found(match p {
                        Param::Int => "integer",
                        Param::Float => "float",
                        _ => param_name(p),
                    })),
                };
            }
            Arg::Number(_, n) => {
                return match p {
                    Param::Any => Ok(ideal(n)),
                    Param::Int => n.int.map(Value::int).ok_or_else(|| found("integer")),
                    Param::Float => n.float.map(Value::Float).ok_or_else(|| found("float")),
                    Param::Str => Err(found("string")),
                    Param::Time => Err(err(
                        pos,
                        arg_string(a),
                        format!("can't handle {} for arg of type time.Time", arg_string(a)),
                    )),
                };
            }
        };
        self.validate(p, v, pos, &arg_string(a))
    }
}
