//! Go's `fmt` for template values: how `{{ x }}` prints a value (`%v`), and `printf`,
//! `print`, `println` with Go's verbs, flags, widths and `%!verb(type=value)` complaints.

use std::fmt::Write;

use super::Data;
use super::value::{IntKind, Value};

/// Appends `v` as `fmt.Fprint` does (`%v`).
pub(crate) fn print_value(out: &mut String, v: &Value<'_>, data: &dyn Data) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Str(s) => out.push_str(s),
        Value::Int(i, _) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float_g(*f, None, false)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Time(t) => out.push_str(&t.to_go_string()),
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_value(out, v, data);
            }
            out.push(']');
        }
        Value::List(l) => {
            out.push('[');
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(out, v, data);
            }
            out.push(']');
        }
        Value::Labels => {
            out.push_str("map[");
            let mut first = true;
            data.each(&mut |k, v| {
                if !first {
                    out.push(' ');
                }
                first = false;
                out.push_str(k);
                out.push(':');
                out.push_str(v);
            });
            out.push(']');
        }
    }
}

/// Go's `strconv.FormatFloat` with `'g'`: shortest digits when `prec` is `None`.
pub(crate) fn format_float_g(f: f64, prec: Option<usize>, sharp: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let (neg, digits, exp) = decimal_digits(f, prec.map(|p| p.max(1)));
    let nd = digits.len() as i32;
    // Position of the decimal point relative to the digits.
    let dp = exp + 1;
    let eprec = match prec {
        None => 6,
        Some(p) => {
            let p = p.max(1) as i32;
            if p > nd && nd >= dp { nd } else { p }
        }
    };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        let mut rest = digits[1..].to_string();
        if sharp && let Some(p) = prec {
            while rest.len() + 1 < p.max(1) {
                rest.push('0');
            }
        }
        if !rest.is_empty() || sharp {
            out.push('.');
            out.push_str(&rest);
        }
        push_exp(&mut out, 'e', exp);
        return out;
    }
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..-dp {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..dp - nd {
            out.push('0');
        }
        if sharp {
            out.push('.');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

fn push_exp(out: &mut String, e: char, exp: i32) {
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    let _ = write!(out, "{a}");
}

/// The significant digits of `f` (shortest round-trip, or `prec` significant digits,
/// trailing zeros removed) and the decimal exponent of the first digit.
fn decimal_digits(f: f64, prec: Option<usize>) -> (bool, String, i32) {
    let s = match prec {
        None => format!("{:e}", f.abs()),
        Some(p) => format!("{:.*e}", p - 1, f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if f == 0.0 {
        return (f.is_sign_negative(), "0".into(), 0);
    }
    (f.is_sign_negative(), digits, exp)
}

/// `%e` with a precision (default 6).
fn format_float_e(f: f64, prec: usize, upper: bool) -> String {
    if !f.is_finite() {
        return format_float_g(f, None, false);
    }
    let s = format!("{:.*e}", prec, f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mut out = mant.to_string();
    push_exp(
        &mut out,
        if upper { 'E' } else { 'e' },
        exp.parse().unwrap_or(0),
    );
    out
}

fn format_float_f(f: f64, prec: usize) -> String {
    if !f.is_finite() {
        return format_float_g(f, None, false);
    }
    format!("{:.*}", prec, f)
}

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(out: &mut String, s: &str, f: &Flags, numeric: bool) {
    let len = s.chars().count();
    let w = f.width.unwrap_or(0);
    if len >= w {
        out.push_str(s);
        return;
    }
    let fill = w - len;
    if f.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if f.zero && numeric {
        // Zeros go after the sign.
        let (sign, digits) = match s.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

/// Go's `%!verb(type=value)`; the value is printed with `%v` and the same width and
/// precision (so `%.1f` of `"638.9"` shows `%!f(string=6)`).
fn bad_verb(out: &mut String, verb: char, v: &Value<'_>, f: &Flags, data: &dyn Data) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if matches!(v, Value::Nil) {
        out.push_str("<nil>");
    } else {
        out.push_str(v.type_name());
        out.push('=');
        format_arg(out, v, 'v', f, data);
    }
    out.push(')');
}

fn sign(s: String, f: &Flags, neg: bool) -> String {
    if neg {
        s
    } else if f.plus {
        format!("+{s}")
    } else if f.space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_int(out: &mut String, i: i64, verb: char, f: &Flags, v: &Value<'_>, data: &dyn Data) {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let body = match verb {
        'd' | 'v' => a.to_string(),
        'x' => format!("{}{a:x}", if f.sharp { "0x" } else { "" }),
        'X' => format!("{}{a:X}", if f.sharp { "0X" } else { "" }),
        'o' => format!("{}{a:o}", if f.sharp { "0" } else { "" }),
        'O' => format!("0o{a:o}"),
        'b' => format!("{a:b}"),
        'c' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), f, false);
            return;
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            let q = match c {
                '\'' => "'\\''".to_string(),
                '\\' => "'\\\\'".to_string(),
                c if c.is_control() => format!("'{}'", c.escape_default()),
                c => format!("'{c}'"),
            };
            pad(out, &q, f, false);
            return;
        }
        'U' => {
            pad(out, &format!("U+{a:04X}"), f, false);
            return;
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            bad_verb(out, verb, v, f, data);
            return;
        }
        _ => {
            bad_verb(out, verb, v, f, data);
            return;
        }
    };
    let body = match f.prec {
        Some(p) if body.len() < p => format!("{}{body}", "0".repeat(p - body.len())),
        _ => body,
    };
    let s = if neg { format!("-{body}") } else { body };
    pad(out, &sign(s, f, neg), f, f.prec.is_none());
}

fn format_float(out: &mut String, x: f64, verb: char, f: &Flags, v: &Value<'_>, data: &dyn Data) {
    let s = match verb {
        'v' | 'g' => format_float_g(x, f.prec, f.sharp),
        'G' => format_float_g(x, f.prec, f.sharp).to_uppercase(),
        'e' | 'E' => format_float_e(x, f.prec.unwrap_or(6), verb == 'E'),
        'f' | 'F' => format_float_f(x, f.prec.unwrap_or(6)),
        _ => {
            bad_verb(out, verb, v, f, data);
            return;
        }
    };
    let neg = s.starts_with('-');
    let s = if !neg && x.is_finite() {
        sign(s, f, false)
    } else {
        s
    };
    pad(out, &s, f, x.is_finite());
}

fn format_str(out: &mut String, s: &str, verb: char, f: &Flags, v: &Value<'_>, data: &dyn Data) {
    let truncated: &str = match f.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => {
            let end = s.char_indices().nth(p).map_or(s.len(), |(i, _)| i);
            &s[..end]
        }
        _ => s,
    };
    match verb {
        's' | 'v' => pad(out, truncated, f, false),
        'q' => {
            let q = if f.sharp && !truncated.contains('`') {
                format!("`{truncated}`")
            } else {
                protocol::quote::quote(truncated)
            };
            pad(out, &q, f, false);
        }
        'x' | 'X' => {
            let mut h = String::with_capacity(s.len() * 2);
            for (i, b) in s.bytes().enumerate() {
                if f.space && i > 0 {
                    h.push(' ');
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, f, false);
        }
        _ => bad_verb(out, verb, v, f, data),
    }
}

/// Formats one argument with one verb.
fn format_arg(out: &mut String, v: &Value<'_>, verb: char, f: &Flags, data: &dyn Data) {
    if verb == 'T' {
        pad(out, v.type_name(), f, false);
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, "<nil>", f, false),
            _ => bad_verb(out, verb, v, f, data),
        },
        Value::Str(s) => format_str(out, s, verb, f, v, data),
        Value::Int(i, k) => {
            let i = if *k == IntKind::Uint8 { *i & 0xff } else { *i };
            format_int(out, i, verb, f, v, data)
        }
        Value::Float(x) => format_float(out, *x, verb, f, v, data),
        Value::Bool(b) => match verb {
            't' | 'v' => pad(out, if *b { "true" } else { "false" }, f, false),
            _ => bad_verb(out, verb, v, f, data),
        },
        Value::Time(t) => match verb {
            's' | 'v' => pad(out, &t.to_go_string(), f, false),
            'q' => pad(out, &protocol::quote::quote(&t.to_go_string()), f, false),
            _ => bad_verb(out, verb, v, f, data),
        },
        Value::Map(_) | Value::List(_) | Value::Labels => {
            let mut s = String::new();
            print_value(&mut s, v, data);
            match verb {
                'v' | 's' => pad(out, &s, f, false),
                _ => bad_verb(out, verb, v, f, data),
            }
        }
    }
}

/// Go's `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value<'_>], data: &dyn Data) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let mut argi = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut f = Flags::default();
        // Flags.
        while let Some(&(_, fc)) = chars.peek() {
            match fc {
                '+' => f.plus = true,
                '-' => f.minus = true,
                '#' => f.sharp = true,
                ' ' => f.space = true,
                '0' => f.zero = !f.minus,
                _ => break,
            }
            chars.next();
        }
        // Width.
        let num = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                   argi: &mut usize|
         -> Option<usize> {
            if chars.peek().map(|x| x.1) == Some('*') {
                chars.next();
                let v = args.get(*argi);
                *argi += 1;
                return match v {
                    Some(Value::Int(i, _)) if *i >= 0 => Some(*i as usize),
                    _ => Some(usize::MAX),
                };
            }
            let mut n: Option<usize> = None;
            while let Some(&(_, d)) = chars.peek() {
                if let Some(dv) = d.to_digit(10) {
                    n = Some(
                        n.unwrap_or(0)
                            .saturating_mul(10)
                            .saturating_add(dv as usize),
                    );
                    chars.next();
                } else {
                    break;
                }
            }
            n
        };
        f.width = num(&mut chars, &mut argi);
        if f.width == Some(usize::MAX) {
            out.push_str("%!(BADWIDTH)");
            f.width = None;
        }
        if chars.peek().map(|x| x.1) == Some('.') {
            chars.next();
            f.prec = Some(num(&mut chars, &mut argi).unwrap_or(0));
            if f.prec == Some(usize::MAX) {
                out.push_str("%!(BADPREC)");
                f.prec = None;
            }
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            None => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
            }
            Some(v) => {
                argi += 1;
                format_arg(&mut out, v, verb, &f, data);
            }
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, v) in args[argi..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(v.type_name());
            out.push('=');
            print_value(&mut out, v, data);
        }
        out.push(')');
    }
    out
}

/// Go's `fmt.Sprint`: spaces between operands when neither side is a string.
pub(crate) fn sprint(args: &[Value<'_>], data: &dyn Data) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        print_value(&mut out, v, data);
    }
    out
}

/// Go's `fmt.Sprintln`: spaces between all operands, a newline at the end.
pub(crate) fn sprintln(args: &[Value<'_>], data: &dyn Data) -> String {
    let mut out = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        print_value(&mut out, v, data);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::NoData;
    use super::*;

    fn p(f: &str, args: &[Value<'_>]) -> String {
        sprintf(f, args, &NoData)
    }

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_g(638.935, None, false), "638.935");
        assert_eq!(format_float_g(1e6, None, false), "1e+06");
        assert_eq!(format_float_g(123456.0, None, false), "123456");
        assert_eq!(format_float_g(1234567.0, None, false), "1.234567e+06");
        assert_eq!(format_float_g(0.0001, None, false), "0.0001");
        assert_eq!(format_float_g(0.00001, None, false), "1e-05");
        assert_eq!(format_float_g(3.0, None, false), "3");
        assert_eq!(format_float_g(-0.5, None, false), "-0.5");
        assert_eq!(
            format_float_g(1.8446744073709552e19, None, false),
            "1.8446744073709552e+19"
        );
    }

    #[test]
    fn printf_like_go() {
        assert_eq!(p("%.1f", &[Value::Float(638.935)]), "638.9");
        // Go prints the wrong-typed value with the verb's width and precision.
        assert_eq!(p("%.1f", &[Value::str("638.935")]), "%!f(string=6)");
        assert_eq!(p("%f", &[Value::str("638.935")]), "%!f(string=638.935)");
        assert_eq!(p("%.1f", &[Value::str("")]), "%!f(string=)");
        assert_eq!(
            p(
                "%d|%5d|%-5d|%05d",
                &[Value::int(3), Value::int(3), Value::int(3), Value::int(-3)]
            ),
            "3|    3|3    |-0003"
        );
        assert_eq!(
            p(
                "%s %v %q",
                &[Value::str("a"), Value::Bool(true), Value::str("x\"y")]
            ),
            "a true \"x\\\"y\""
        );
        assert_eq!(p("%x %X", &[Value::int(255), Value::str("hi")]), "ff 6869");
        assert_eq!(
            p(
                "%5s|%-5s|%.2s",
                &[Value::str("ab"), Value::str("ab"), Value::str("abc")]
            ),
            "   ab|ab   |ab"
        );
        assert_eq!(p("%d", &[]), "%!d(MISSING)");
        assert_eq!(p("a", &[Value::int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(p("%d%%", &[Value::int(50)]), "50%");
        assert_eq!(p("%v", &[Value::Nil]), "<nil>");
        assert_eq!(p("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(
            p("%T %T", &[Value::int64(1), Value::Float(1.0)]),
            "int64 float64"
        );
        assert_eq!(p("%e", &[Value::Float(1234.5678)]), "1.234568e+03");
        assert_eq!(p("%g", &[Value::Float(0.000012)]), "1.2e-05");
        assert_eq!(
            p("%+d %+.2f", &[Value::int(5), Value::Float(1.5)]),
            "+5 +1.50"
        );
        assert_eq!(p("%c", &[Value::int(65)]), "A");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(sprint(&[Value::int(1), Value::int(2)], &NoData), "1 2");
        assert_eq!(sprint(&[Value::str("a"), Value::int(2)], &NoData), "a2");
        assert_eq!(
            sprintln(&[Value::str("a"), Value::int(2)], &NoData),
            "a 2\n"
        );
    }
}
