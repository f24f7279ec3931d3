//! The command line of `kiroku agent`. Flag names are a contract with the Helm chart: add,
//! never rename.

use std::path::PathBuf;
use std::time::Duration;

/// `kiroku agent` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Loki-compatible server to push to (kiroku or any Loki); `/loki/api/v1/push` is added
    /// unless the URL already has a path.
    #[arg(long, env = "KIROKU_URL", default_value = "http://127.0.0.1:3100")]
    pub url: String,

    /// `files` tails the node's pod log files (DaemonSet with a hostPath); `api` streams logs
    /// through the Kubernetes API (no host mounts needed).
    #[arg(long, value_enum, default_value_t = Mode::Files)]
    pub mode: Mode,

    /// Where the kubelet writes pod logs: `<ns>_<pod>_<uid>/<container>/<n>.log`.
    #[arg(long, default_value = "/var/log/pods")]
    pub pods_dir: PathBuf,

    /// Where read positions are kept so a restart resumes where it stopped.
    #[arg(long, default_value = "kiroku-agent/positions.json")]
    pub positions: PathBuf,

    /// Directory of the disk buffer that holds batches the server has not acknowledged yet.
    #[arg(long, default_value = "kiroku-agent/buffer")]
    pub buffer_dir: PathBuf,

    /// Bound of the disk buffer; when full, reading pauses until the server catches up.
    #[arg(long, default_value = "256MiB", value_parser = parse_positive_bytes)]
    pub buffer_max_bytes: u64,

    /// Tail files matching this glob as well (repeatable), e.g. `/var/log/*.log`.
    #[arg(long = "files", value_name = "GLOB", value_parser = parse_glob)]
    pub files: Vec<String>,

    /// Static label `name=value` for the `--files` streams (repeatable).
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// This node's name: the `node` label, and which pods and events are this agent's
    /// (falls back to the `NODE_NAME` environment variable).
    #[arg(long, env = "KIROKU_NODE_NAME")]
    pub node_name: Option<String>,

    /// Kubeconfig to reach the API; without it: in-cluster config, then `~/.kube/config`,
    /// then none (metadata enrichment off).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubernetes events: `all`; `node`: those reported from this node (by its kubelet);
    /// `node-and-cluster`: those, plus the events no node reports while this agent holds
    /// the `--events-lease` (one agent of a DaemonSet does); or `off`. Default:
    /// `node-and-cluster` when the node name is known, else `all`.
    #[arg(long, value_enum)]
    pub events: Option<EventsScope>,

    /// The `coordination.k8s.io` Lease electing the agent that collects the events no
    /// node reports, `[NAMESPACE/]NAME` (default namespace: the agent's own, from
    /// `POD_NAMESPACE`, else the service account's).
    #[arg(long, default_value = "kiroku-agent", value_parser = parse_lease)]
    pub events_lease: (Option<String>, String),

    /// How long a silent holder keeps the events Lease before another agent takes over.
    #[arg(long, default_value = "15s", value_parser = parse_lease_duration)]
    pub events_lease_duration: Duration,

    /// Tenant: sent as `X-Scope-OrgID`.
    #[arg(long)]
    pub org_id: Option<String>,

    /// File holding a bearer token for the push endpoint (re-read on every push).
    #[arg(long)]
    pub bearer_token_file: Option<PathBuf>,

    /// Basic auth user for the push endpoint.
    #[arg(long, requires = "password_file")]
    pub username: Option<String>,

    /// File holding the basic auth password.
    #[arg(long, requires = "username")]
    pub password_file: Option<PathBuf>,

    /// PEM file of the CA that signed the server's certificate.
    #[arg(long)]
    pub tls_ca_file: Option<PathBuf>,

    /// Do not verify the server's certificate (testing only).
    #[arg(long)]
    pub tls_insecure_skip_verify: bool,

    /// PEM certificate (chain) the agent presents to a server that asks for client
    /// certificates (mutual TLS); with `--tls-key-file`.
    #[arg(long, requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert-file`.
    #[arg(long, requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,

    /// Address of the agent's own `/metrics` and `/ready`.
    #[arg(long, default_value = "127.0.0.1:3101")]
    pub listen: String,

    /// Push a batch when it holds this many bytes of log lines.
    #[arg(long, default_value = "1MiB", value_parser = parse_positive_bytes)]
    pub batch_size: u64,

    /// Push a batch at the latest this long after its first line.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub batch_wait: Duration,

    /// Longer lines are cut to this size (servers refuse lines over their limit).
    #[arg(long, default_value = "256KiB", value_parser = parse_positive_bytes)]
    pub max_line_bytes: u64,

    /// How long a deleted pod's metadata is kept so its last lines are still labelled.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub metadata_retention: Duration,

    /// How often files are looked for and read.
    #[arg(long, default_value = "250ms", value_parser = parse_positive_duration)]
    pub poll_interval: Duration,

    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter).
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Files,
    Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EventsScope {
    All,
    Node,
    NodeAndCluster,
    Off,
}

/// `256MiB`, `1MB`, `512KiB`, `4096`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 256MiB, 10MB or 4096"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" | "ki" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" | "mi" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" | "gi" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?} has an unknown unit: use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

/// A size of at least one byte.
fn parse_positive_bytes(s: &str) -> Result<u64, String> {
    parse_bytes(s).and_then(|n| match n {
        0 => Err(format!("{s:?} is zero; give a size of at least 1 byte")),
        n => Ok(n),
    })
}

/// A duration longer than zero (a zero poll interval would spin a core).
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).and_then(|d| match d.is_zero() {
        true => Err(format!("{s:?} is zero; give a duration such as 250ms")),
        false => Ok(d),
    })
}

/// A glob `--files` can follow, checked when the agent starts rather than ignored later.
fn parse_glob(s: &str) -> Result<String, String> {
    glob::Pattern::new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("{s:?} is not a valid glob: {e}"))
}

/// `250ms`, `1s`, `10m`, `1h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Ok(Duration::from_secs_f64(secs));
    }
    protocol::time::parse_seconds_or_duration(t)
        .ok()
        .filter(|ns| *ns >= 0)
        .map(|ns| Duration::from_nanos(ns as u64))
        .ok_or_else(|| format!("{s:?} is not a duration such as 250ms, 1s or 5m"))
}

/// `NAME` or `NAMESPACE/NAME`, each a DNS-1123 subdomain.
fn parse_lease(s: &str) -> Result<(Option<String>, String), String> {
    let (ns, name) = match s.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, s),
    };
    let valid = |v: &str| {
        !v.is_empty()
            && v.len() <= 253
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if !valid(name) || ns.is_some_and(|n| !valid(n)) {
        return Err(format!(
            "{s:?} is not a Lease name: use NAME or NAMESPACE/NAME with lowercase letters, digits, - and ."
        ));
    }
    Ok((ns.map(str::to_string), name.to_string()))
}

fn parse_lease_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{s:?} is too short for a Lease: use at least 1s (15s is Kubernetes' usual)"
        ));
    }
    Ok(d)
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} is not of the form name=value"))?;
    let valid = !k.is_empty()
        && k.bytes()
            .enumerate()
            .all(|(i, b)| b == b'_' || b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()));
    if !valid {
        return Err(format!(
            "label name {k:?} is not valid: use letters, digits and _, not starting with a digit"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1MB"), Ok(1_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12 parsecs").is_err());
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_label("env=prod").is_ok());
        assert!(parse_label("1x=prod").is_err());
        assert!(parse_label("noequals").is_err());
        assert_eq!(
            parse_lease("logging/kiroku-agent"),
            Ok((Some("logging".into()), "kiroku-agent".into()))
        );
        assert_eq!(
            parse_lease("kiroku-agent"),
            Ok((None, "kiroku-agent".into()))
        );
        assert!(parse_lease("Kiroku").is_err());
        assert!(parse_lease("a/b/c").is_err());
        assert!(parse_lease("/x").is_err());
        assert!(parse_lease_duration("500ms").is_err());
    }

    #[test]
    fn values_that_cannot_work_are_refused_at_start() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            _args: Args,
        }
        let parse = |extra: &[&str]| {
            let args = [&["kiroku-agent", "--url", "http://x"], extra].concat();
            Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            parse(&["--poll-interval", "100ms", "--files", "/var/log/*.log"]),
            Ok(())
        );
        for (flag, value, says) in [
            ("--poll-interval", "0", "is zero"),
            ("--batch-size", "0", "is zero"),
            ("--max-line-bytes", "0B", "is zero"),
            ("--buffer-max-bytes", "0", "is zero"),
            ("--files", "/var/log/[", "not a valid glob"),
        ] {
            let e = parse(&[flag, value]).expect_err(flag);
            assert!(e.contains(says), "{flag}: {e}");
        }
    }
}
