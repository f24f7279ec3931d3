//! Support for the client's end-to-end tests (`crates/kiroku/tests/cli_*.rs`), not used by
//! the client itself: a real `kiroku server` child on a free port, and pushes of known
//! lines through its real push API (snappy protobuf, as every Loki client sends them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use protocol::push::{EntryAdapter, PushRequest, StreamAdapter, encode_snappy};

/// A `kiroku server` child with its own data directory; killed and removed on drop.
pub struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Server {
    /// Starts `bin server` with a fresh data directory, retention off (tests push fixed past
    /// timestamps) and `extra` flags; waits until `/ready` answers.
    pub fn start(bin: &Path, extra: &[&str]) -> Result<Server, String> {
        let dir = temp_dir("server");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // A port found free may be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            let listen = format!("127.0.0.1:{port}");
            let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let data = dir.join("data");
            let mut cmd = Command::new(bin);
            cmd.arg("server")
                .args([
                    "--listen",
                    &listen,
                    "--retention",
                    "0",
                    "--fsync",
                    "false",
                    "--retention-max-disk",
                    "0%",
                ])
                .arg("--data-dir")
                .arg(&data)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err);
            for (k, _) in std::env::vars_os() {
                if k.to_string_lossy().starts_with("KIROKU_") {
                    cmd.env_remove(k);
                }
            }
            let child = cmd
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
            let mut s = Server {
                child,
                addr: format!("http://{listen}"),
                dir: dir.clone(),
            };
            if s.wait_ready(Duration::from_secs(30)) {
                return Ok(s);
            }
            last = s.output();
            let _ = s.child.kill();
            let _ = s.child.wait();
            // Keep the directory for the next try; `s` is dropped without removing it.
            std::mem::forget(s);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("kiroku server did not become ready:\n{last}"))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if http_status(&format!("{}/ready", self.addr)).is_some_and(|s| s == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A stream to push: its label string (`{app="api"}`) and `(unix ns, line)` entries.
pub struct PushStream<'a> {
    pub labels: &'a str,
    pub entries: Vec<(i64, String)>,
}

/// Pushes streams to `addr` as protobuf+snappy, with an optional tenant. Returns the HTTP
/// status and body when the server does not answer 2xx.
pub fn push(addr: &str, org_id: Option<&str>, streams: &[PushStream<'_>]) -> Result<(), String> {
    let req = PushRequest {
        streams: streams
            .iter()
            .map(|s| StreamAdapter {
                labels: s.labels.to_string(),
                entries: s
                    .entries
                    .iter()
                    .map(|(ts, line)| EntryAdapter::new(*ts, line.clone()))
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    let body = encode_snappy(&req);
    let url = format!("{}/loki/api/v1/push", addr.trim_end_matches('/'));
    runtime()?.block_on(async {
        let mut r = http_client()?
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .body(body);
        if let Some(org) = org_id {
            r = r.header("X-Scope-OrgID", org);
        }
        let resp = r.send().await.map_err(|e| format!("push to {url}: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(format!("push to {url}: {status}: {text}"))
    })
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The status of a GET, or `None` when nothing answers.
pub fn http_status(url: &str) -> Option<u16> {
    let rt = runtime().ok()?;
    rt.block_on(async {
        let resp = http_client().ok()?.get(url).send().await.ok()?;
        Some(resp.status().as_u16())
    })
}

/// A fresh, unique path under the system's temporary directory (not created).
pub fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "kiroku-cli-{name}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

fn http_client() -> Result<reqwest::Client, String> {
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

/// What a finished `kiroku` client command printed, and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `bin args…` to completion (killed after `timeout`) with an environment free of the
/// caller's `KIROKU_*`, `LOKI_*` and `NO_COLOR`, plus `env`.
pub fn run_cli(bin: &Path, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> CliOutput {
    use std::io::Read;
    let mut child = match cli_command(bin, args, env).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            return CliOutput {
                code: None,
                stdout: String::new(),
                stderr: format!("cannot start {}: {e}", bin.display()),
            };
        }
    };
    // Read both pipes while waiting, so a large output cannot fill a pipe and stall.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let until = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    CliOutput {
        code,
        stdout,
        stderr,
    }
}

/// The command [`run_cli`] runs, for callers that read its output as it comes
/// (`--follow`): stdin closed, stderr piped, the caller's client settings removed.
pub fn cli_command(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("KIROKU_") || k.starts_with("LOKI_") || k == "NO_COLOR" {
            cmd.env_remove(k.as_ref());
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}
