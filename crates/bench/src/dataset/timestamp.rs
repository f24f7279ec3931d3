//! Where each loghub system writes its own timestamp in a line, and in which format, so
//! that the text can be rewritten to the entry's fresh time.

use std::ops::Range;

/// A timestamp's place in a line and its `strftime` format (chrono's dialect).
#[derive(Debug, Clone)]
pub struct Stamp {
    pub range: Range<usize>,
    pub format: &'static str,
}

/// Where to look: a fixed byte offset, the n-th space-separated field, or everything
/// before the first occurrence of a byte.
#[derive(Debug, Clone, Copy)]
enum At {
    Offset(usize),
    Field(usize),
    Until(u8),
}

/// `shape`: `d` a digit, `?` a digit or a space, `a` a letter, anything else itself.
struct Rule {
    at: At,
    shape: &'static str,
    format: &'static str,
}

macro_rules! rules {
    ($(($at:expr, $shape:literal, $format:literal)),* $(,)?) => {
        &[$(Rule { at: $at, shape: $shape, format: $format }),*]
    };
}

fn rules(system: &str) -> &'static [Rule] {
    use At::*;
    match system {
        "Android" => rules![(Offset(0), "dd-dd dd:dd:dd.ddd", "%m-%d %H:%M:%S%.3f")],
        "Apache" => rules![(
            Offset(1),
            "aaa aaa dd dd:dd:dd dddd",
            "%a %b %d %H:%M:%S %Y"
        )],
        "BGL" => rules![
            (Field(1), "dddddddddd", "%s"),
            (Field(2), "dddd.dd.dd", "%Y.%m.%d"),
            (
                Field(4),
                "dddd-dd-dd-dd.dd.dd.dddddd",
                "%Y-%m-%d-%H.%M.%S%.6f"
            ),
        ],
        "HDFS" => rules![(Offset(0), "dddddd dddddd", "%y%m%d %H%M%S")],
        "HPC" => rules![(Field(4), "dddddddddd", "%s")],
        "Hadoop" | "Zookeeper" => {
            rules![(
                Offset(0),
                "dddd-dd-dd dd:dd:dd,ddd",
                "%Y-%m-%d %H:%M:%S,%3f"
            )]
        }
        // Its milliseconds are not zero-padded: everything before the first `|`.
        "HealthApp" => rules![(Until(b'|'), "", "%Y%m%d-%H:%M:%S:%3f")],
        "Linux" | "OpenSSH" => rules![(Offset(0), "aaa ?d dd:dd:dd", "%b %e %H:%M:%S")],
        "Proxifier" => rules![(Offset(1), "dd.dd dd:dd:dd", "%m.%d %H:%M:%S")],
        "Spark" => rules![(Offset(0), "dd/dd/dd dd:dd:dd", "%y/%m/%d %H:%M:%S")],
        _ => &[],
    }
}

/// The timestamps of `line` (a line of `system`), in order; rules whose text does not
/// have the expected shape are left out (the line keeps that text).
pub fn locate(system: &str, line: &str) -> Vec<Stamp> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    for rule in rules(system) {
        let start = match rule.at {
            At::Offset(o) => Some(o),
            At::Field(n) => field_start(b, n),
            At::Until(_) => Some(0),
        };
        let Some(start) = start else { continue };
        let end = match rule.at {
            At::Until(c) => match b.iter().position(|&x| x == c) {
                Some(e) => e,
                None => continue,
            },
            _ => start + rule.shape.len(),
        };
        if end > b.len() || !fits(&b[start..end], rule.shape) {
            continue;
        }
        out.push(Stamp {
            range: start..end,
            format: rule.format,
        });
    }
    out
}

/// Byte offset of the `n`-th (from 0) field separated by single spaces.
fn field_start(b: &[u8], n: usize) -> Option<usize> {
    let mut field = 0;
    let mut i = 0;
    while field < n {
        i += b.get(i..)?.iter().position(|&c| c == b' ')? + 1;
        field += 1;
    }
    (i < b.len()).then_some(i)
}

fn fits(text: &[u8], shape: &str) -> bool {
    if shape.is_empty() {
        return true;
    }
    text.len() == shape.len()
        && text.iter().zip(shape.bytes()).all(|(&c, s)| match s {
            b'd' => c.is_ascii_digit(),
            b'?' => c.is_ascii_digit() || c == b' ',
            b'a' => c.is_ascii_alphabetic(),
            other => c == other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_has_its_timestamps_found() {
        let cases = [
            (
                "Android",
                "03-17 16:13:38.811  1702  2395 D WindowManager: x",
                1,
            ),
            ("Apache", "[Sun Dec 04 04:47:44 2005] [notice] x", 1),
            (
                "BGL",
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02 RAS",
                3,
            ),
            ("HDFS", "081109 203615 148 INFO dfs.DataNode", 1),
            (
                "HPC",
                "134681 node-246 unix.hw state_change.unavailable 1077804742 1 C",
                1,
            ),
            ("Hadoop", "2015-10-18 18:01:47,978 INFO [main] x", 1),
            ("HealthApp", "20171223-22:15:29:60|Step_LSC|30002312|x", 1),
            ("Linux", "Jul  1 00:21:28 combo sshd(pam_unix)[19630]: x", 1),
            ("OpenSSH", "Dec 10 06:55:46 LabSZ sshd[24200]: x", 1),
            ("Proxifier", "[10.30 16:49:06] chrome.exe - x", 1),
            ("Spark", "17/06/09 20:10:40 INFO executor", 1),
            ("Zookeeper", "2015-07-29 17:41:44,747 - INFO  [x]", 1),
        ];
        for (system, line, n) in cases {
            assert_eq!(locate(system, line).len(), n, "{system}: {line}");
        }
        assert!(locate("HDFS", "garbage").is_empty());
    }
}
