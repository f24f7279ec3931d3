//! `ip("...")` matching: a single address, a CIDR prefix or an `a-b` range, IPv4 or IPv6,
//! found anywhere in a line or label value the way Loki scans for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What `ip("...")` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpMatcher {
    /// An address; a zoned IPv6 pattern (`fe80::1%eth0`) can never equal an address found
    /// in text, which never carries a zone.
    Addr(IpAddr, bool),
    Prefix(IpAddr, u8),
    Range(IpAddr, IpAddr),
}

/// Go's `netip.ParseAddr`, split into the address and whether it had a zone.
fn parse_addr(s: &str) -> Option<(IpAddr, bool)> {
    if s.contains(':') {
        let (addr, zoned) = match s.split_once('%') {
            Some((a, z)) if !z.is_empty() => (a, true),
            Some(_) => return None,
            None => (s, false),
        };
        return addr
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| (IpAddr::V6(a), zoned));
    }
    parse_v4(s).map(|a| (IpAddr::V4(a), false))
}

/// Dotted decimal with exactly four fields, no leading zeros, as Go reads it.
fn parse_v4(s: &str) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut n = 0;
    for part in s.split('.') {
        if n == 4 || part.is_empty() || part.len() > 3 || !part.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        out[n] = part.parse::<u8>().ok()?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(out))
}

fn bits(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn as_u128(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(*v)),
        IpAddr::V6(v) => u128::from(*v),
    }
}

impl IpMatcher {
    /// Parses the pattern of `ip("...")`: an address, then a prefix, then a range.
    pub(crate) fn parse(pattern: &str) -> Result<IpMatcher, String> {
        if let Some((a, zoned)) = parse_addr(pattern) {
            return Ok(IpMatcher::Addr(a, zoned));
        }
        if let Some((addr, len)) = pattern.split_once('/')
            && let Some((a, false)) = parse_addr(addr)
            && !len.is_empty()
            && len.bytes().all(|c| c.is_ascii_digit())
            && !(len.len() > 1 && len.starts_with('0'))
            && let Ok(n) = len.parse::<u8>()
            && n <= bits(&a)
        {
            return Ok(IpMatcher::Prefix(a, n));
        }
        if let Some((from, to)) = pattern.split_once('-')
            && let (Some((f, false)), Some((t, false))) = (parse_addr(from), parse_addr(to))
            && bits(&f) == bits(&t)
            && as_u128(&f) <= as_u128(&t)
        {
            return Ok(IpMatcher::Range(f, t));
        }
        Err(format!(
            "ip: invalid pattern: {}",
            protocol::quote::quote(pattern)
        ))
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            IpMatcher::Addr(a, zoned) => !zoned && a == ip,
            IpMatcher::Prefix(p, len) => {
                if bits(p) != bits(ip) {
                    return false;
                }
                let shift = u32::from(bits(p) - len);
                let (a, b) = (as_u128(p), as_u128(ip));
                shift >= 128 || (a >> shift) == (b >> shift)
            }
            IpMatcher::Range(f, t) => {
                bits(f) == bits(ip) && as_u128(f) <= as_u128(ip) && as_u128(ip) <= as_u128(t)
            }
        }
    }

    /// Whether `text` holds an address the pattern matches. Like Loki, it looks for runs
    /// that start like an address (a digit with a `.` within the next three bytes, or a
    /// hex group followed by `:`), takes the longest run of address characters, parses it,
    /// and skips past runs that do not match.
    pub(crate) fn matches_in(&self, text: &[u8]) -> bool {
        const V4: &[u8] = b"0123456789.";
        const V6: &[u8] = b"0123456789abcdefABCDEF:.";
        let n = text.len();
        let at = |i: usize| if i < n { text[i] } else { 0 };
        let mut i = 0;
        while i < n {
            // Both hints need a hex digit or `:` here.
            if !(text[i].is_ascii_hexdigit() || text[i] == b':') {
                i += 1;
                continue;
            }
            let charset = if i + 3 < n && ipv4_hint(&text[i..i + 4]) {
                Some(V4)
            } else if ipv6_hint([at(i), at(i + 1), at(i + 2), at(i + 3), at(i + 4)]) {
                Some(V6)
            } else {
                None
            };
            if let Some(cs) = charset {
                let len = text[i..].iter().take_while(|c| cs.contains(c)).count();
                if let Ok(s) = std::str::from_utf8(&text[i..i + len])
                    && let Some((ip, _)) = parse_addr(s)
                    && self.contains(&ip)
                {
                    return true;
                }
                i += len;
            }
            i += 1;
        }
        false
    }
}

fn ipv4_hint(p: &[u8]) -> bool {
    p[0].is_ascii_digit() && (p[1] == b'.' || p[2] == b'.' || p[3] == b'.')
}

fn ipv6_hint(p: [u8; 5]) -> bool {
    let h = |c: u8| c.is_ascii_hexdigit();
    (p[0] == b':' && p[1] == b':' && h(p[2]))
        || (h(p[0]) && p[1] == b':')
        || (h(p[0]) && h(p[1]) && p[2] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && p[3] == b':')
        || (h(p[0]) && h(p[1]) && h(p[2]) && h(p[3]) && p[4] == b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, line: &str) -> bool {
        IpMatcher::parse(pat).unwrap().matches_in(line.as_bytes())
    }

    #[test]
    fn patterns() {
        assert!(IpMatcher::parse("10.0.0.1").is_ok());
        assert!(IpMatcher::parse("10.0.0.0/8").is_ok());
        assert!(IpMatcher::parse("10.0.0.1-10.0.0.9").is_ok());
        assert!(IpMatcher::parse("::1").is_ok());
        assert!(IpMatcher::parse("2001:db8::/32").is_ok());
        assert!(IpMatcher::parse("10.0.0.9-10.0.0.1").is_err());
        assert!(IpMatcher::parse("10.0.0.1-::1").is_err());
        assert!(IpMatcher::parse("10.0.0.0/33").is_err());
        assert!(IpMatcher::parse("010.0.0.1").is_err());
        assert!(IpMatcher::parse("10.0.0.1 - 10.0.0.9").is_err());
        assert!(IpMatcher::parse("nope").is_err());
    }

    #[test]
    fn finds_addresses_in_lines() {
        let l = r#"[INFO] 10.244.1.83:53066 - 46283 "A IN example.com. udp 46 false 512" SERVFAIL"#;
        assert!(m("10.244.0.0/16", l));
        assert!(!m("172.17.0.0/16", l));
        assert!(m("10.244.1.83", l));
        assert!(m("10.244.1.80-10.244.1.90", l));
        // The port makes the IPv6 run unparseable, as in Loki.
        assert!(!m("fd00::/8", "[INFO] fd00::204:63050 - 14557"));
        assert!(m("fd00::/8", "[INFO] fd00::204 - 14557"));
        // No boundary on the left, a longer run does not match.
        assert!(m("10.0.0.1", "x10.0.0.1y"));
        assert!(!m("10.0.0.1", "110.0.0.1"));
        assert!(!m("10.0.0.1", "10.0.0.12"));
        assert!(!m("10.0.0.1", ""));
        assert!(m("::1", "addr=::1"));
    }
}
