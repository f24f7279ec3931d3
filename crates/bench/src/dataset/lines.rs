//! Making one line: a loghub line with fresh timestamp text and varied numbers, or a
//! JSON / logfmt line around a loghub message.

use std::fmt::Write as _;

use super::timestamp::{Stamp, locate};

/// xorshift64*: small, fast and deterministic, so that runs compare.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Spread small seeds over the state; never zero.
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03;
        if s == 0 {
            s = 1;
        }
        Rng(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One loghub system's lines, with where their timestamps and messages are.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: &'static str,
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
pub struct Line {
    text: String,
    stamps: Vec<Stamp>,
    /// Where the message starts: after the last timestamp and its separators.
    message: usize,
    level: Option<&'static str>,
}

impl Source {
    pub fn new(name: &'static str, text: &str) -> Source {
        let lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.is_empty())
            .map(|l| {
                let stamps = locate(name, l);
                let after = stamps.last().map_or(0, |s| s.range.end);
                let skip = l[after..]
                    .find(|c: char| !matches!(c, ' ' | ']' | '-' | ',' | '|'))
                    .unwrap_or(l.len() - after);
                Line {
                    text: l.to_string(),
                    stamps,
                    message: after + skip,
                    level: level_of(l),
                }
            })
            .collect();
        Source { name, lines }
    }

    pub fn len(&self) -> usize {
        self.lines.len().max(1)
    }

    pub fn line(&self, i: usize) -> &Line {
        &self.lines[i % self.lines.len()]
    }
}

/// The level a line states, when it states one.
fn level_of(line: &str) -> Option<&'static str> {
    for word in line
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 4)
    {
        match word {
            "INFO" | "notice" | "info" => return Some("info"),
            "WARN" | "WARNING" | "warn" => return Some("warn"),
            "ERROR" | "error" | "FATAL" | "SEVERE" => return Some("error"),
            "DEBUG" | "debug" => return Some("debug"),
            _ => {}
        }
    }
    None
}

/// Scratch space for making lines.
#[derive(Debug, Default)]
pub struct Template {
    msg: String,
}

const METHODS: [&str; 5] = ["GET", "GET", "GET", "POST", "PUT"];

impl Template {
    /// The loghub line with its timestamps rewritten to `ts` and its numbers varied.
    pub fn text(&mut self, src: &Source, line: &Line, ts: i64, rng: &mut Rng, out: &mut String) {
        let _ = src;
        let t = &line.text;
        let mut at = 0;
        for s in &line.stamps {
            vary(&t[at..s.range.start], rng, out);
            write_time(ts, s.format, out);
            at = s.range.end;
        }
        vary(&t[at..], rng, out);
    }

    /// `{"time", "level", "method", "path", "status", "duration_ms", "msg"}`.
    pub fn json(&mut self, src: &Source, line: &Line, ts: i64, rng: &mut Rng, out: &mut String) {
        let level = line.level.unwrap_or_else(|| random_level(rng));
        let status = status_for(level, rng);
        self.msg.clear();
        vary(&line.text[line.message..], rng, &mut self.msg);
        out.push_str(r#"{"time":""#);
        write_time(ts, "%Y-%m-%dT%H:%M:%S%.6fZ", out);
        let method = METHODS[rng.below(METHODS.len() as u64) as usize];
        let _ = write!(
            out,
            r#"","level":"{level}","method":"{method}","path":"/api/{}/{}","status":{status},"duration_ms":{:.1},"msg":""#,
            src.name.to_ascii_lowercase(),
            10_000 + rng.below(90_000),
            duration_ms(rng),
        );
        json_escape(&self.msg, out);
        out.push_str("\"}");
    }

    /// `ts=… level=… caller=… msg="…" status=… duration=<Go duration>`.
    pub fn logfmt(
        &mut self,
        src: &Source,
        app: &str,
        line: &Line,
        ts: i64,
        rng: &mut Rng,
        out: &mut String,
    ) {
        let _ = src;
        let level = line.level.unwrap_or_else(|| random_level(rng));
        let status = status_for(level, rng);
        self.msg.clear();
        vary(&line.text[line.message..], rng, &mut self.msg);
        out.push_str("ts=");
        write_time(ts, "%Y-%m-%dT%H:%M:%S%.3fZ", out);
        let _ = write!(
            out,
            " level={level} caller={}.go:{} msg=\"",
            app.split('-').next().unwrap_or(app),
            100 + rng.below(40) * 7
        );
        for c in self.msg.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        let _ = write!(out, "\" status={status} duration=");
        go_duration(duration_ms(rng), out);
    }
}

/// A request's duration: mostly milliseconds, with a long tail.
fn duration_ms(rng: &mut Rng) -> f64 {
    let u = rng.unit();
    0.4 * (1.0 / (1.0 - u)).powf(1.3) + 0.05 * rng.unit()
}

/// As Go's `time.Duration.String` writes it (to the microsecond).
fn go_duration(ms: f64, out: &mut String) {
    let us = (ms * 1000.0).round() as u64;
    let _ = if us < 1000 {
        write!(out, "{us}µs")
    } else if us < 1_000_000 {
        write!(out, "{}ms", trim(us as f64 / 1000.0))
    } else {
        write!(out, "{}s", trim(us as f64 / 1_000_000.0))
    };
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn random_level(rng: &mut Rng) -> &'static str {
    match rng.below(100) {
        0..=83 => "info",
        84..=93 => "warn",
        94..=97 => "error",
        _ => "debug",
    }
}

fn status_for(level: &str, rng: &mut Rng) -> u32 {
    if level == "error" {
        return [500, 500, 500, 502, 503][rng.below(5) as usize];
    }
    match rng.below(100) {
        0..=69 => 200,
        70..=77 => 201,
        78..=82 => 204,
        83..=87 => 304,
        88..=92 => 400,
        93..=96 => 404,
        97 => 429,
        _ => 503,
    }
}

fn write_time(ts: i64, format: &str, out: &mut String) {
    let t = chrono::DateTime::from_timestamp_nanos(ts);
    let _ = write!(out, "{}", t.format(format));
}

/// `text` appended to `out` with the last three digits of every run of digits random,
/// except that a short number beside a dot (an IPv4 address's part, a version) becomes a
/// number from 0 to 255, so that addresses stay addresses.
pub fn vary(text: &str, rng: &mut Rng, out: &mut String) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let dotted = (start > 0 && b[start - 1] == b'.') || b.get(i) == Some(&b'.');
            if dotted && i - start <= 3 {
                let _ = write!(out, "{}", rng.below(256));
                continue;
            }
            let keep = (i - start).saturating_sub(3);
            out.push_str(&text[start..start + keep]);
            for _ in start + keep..i {
                out.push((b'0' + rng.below(10) as u8) as char);
            }
        } else {
            while i < b.len() && !b[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&text[start..i]);
        }
    }
}

fn json_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_vary_in_their_last_three_digits() {
        let mut rng = Rng::new(3);
        let mut out = String::new();
        vary(
            "pid 12345 port 7 blk_-6952295868487656571",
            &mut rng,
            &mut out,
        );
        assert_eq!(out.len(), "pid 12345 port 7 blk_-6952295868487656571".len());
        assert!(out.starts_with("pid 12"));
        assert!(out.contains(" port ") && out.contains("blk_-6952295868487656"));
    }

    #[test]
    fn addresses_stay_addresses() {
        let mut rng = Rng::new(5);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut out = String::new();
            vary("from /10.251.43.191:50010 ok", &mut rng, &mut out);
            let addr = &out["from /".len()..out.find(':').unwrap()];
            let parts: Vec<u8> = addr.split('.').map(|p| p.parse().unwrap()).collect();
            assert_eq!(parts.len(), 4, "{out}");
            assert!(out.ends_with(" ok") && out.contains(":50"), "{out}");
            seen.insert(addr.to_string());
        }
        assert!(seen.len() > 40, "addresses do not vary: {seen:?}");
    }

    #[test]
    fn durations_read_like_go() {
        let mut s = String::new();
        go_duration(0.25, &mut s);
        s.push(' ');
        go_duration(12.5, &mut s);
        s.push(' ');
        go_duration(1500.0, &mut s);
        assert_eq!(s, "250µs 12.5ms 1.5s");
    }
}
