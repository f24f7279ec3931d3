//! Shared by the end-to-end tests: start the real `kiroku server` on a free port with a
//! temporary data directory, wait until it answers, stop it (gracefully or with SIGKILL),
//! start it again on the same data, and a small HTTP/1.1 client that sends exactly the
//! bytes a test gives it (malformed bodies included).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server. Dropping it kills the process.
pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    log: Arc<Mutex<String>>,
    _tmp: Option<Arc<tempfile::TempDir>>,
}

/// How long a server may take to start in a test (it needs well under 0.1 s; CI machines
/// are slow and shared).
const START_DEADLINE: Duration = Duration::from_secs(20);

impl Server {
    /// Starts a server on a fresh temporary data directory with extra flags.
    pub fn start(args: &[&str]) -> Server {
        let tmp = Arc::new(tempfile::tempdir().expect("temp dir"));
        let data = tmp.path().join("data");
        let mut s = Server::start_in(&data, args);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data_dir` with extra flags.
    pub fn start_in(data_dir: &Path, args: &[&str]) -> Server {
        Server::start_with(data_dir, args, &[])
    }

    /// Starts a server on `data_dir` with extra flags and environment variables.
    pub fn start_with(data_dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut s = Server {
            child: None,
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log: Arc::default(),
            _tmp: None,
        };
        s.spawn(None);
        s
    }

    /// Starts the process; `listen` reuses an address after a restart.
    fn spawn(&mut self, listen: Option<&str>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiroku"));
        cmd.arg("server")
            .arg("--listen")
            .arg(listen.unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--log-format")
            .arg("json")
            .args(&self.args)
            .env_remove("KIROKU_CONFIG")
            // Independent of how full the machine's disk is; a test may set its own.
            .env("KIROKU_RETENTION_MAX_DISK", "0%")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start kiroku server");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::clone(&self.log);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent
                    && line.contains("kiroku server ready")
                    && let Some(addr) = json_field(&line, "addr")
                {
                    let _ = tx.send(addr);
                    sent = true;
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(START_DEADLINE) {
            Ok(addr) => self.addr = addr,
            Err(_) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "server did not start (exit: {status:?}); its log:\n{}",
                    self.log()
                );
            }
        }
        self.wait_ready();
    }

    /// Polls `/ready` until it says `ready`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(r) = self.try_request("GET", "/ready", &[], b"")
                && r.status == 200
                && r.text().trim() == "ready"
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server never became ready; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and the exit status once the process has stopped.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = rustix::process::Pid::from_raw(c.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = c.try_wait().expect("wait") {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "server did not stop within 60 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory and address.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        let addr = self.addr.clone();
        self.spawn(Some(&addr));
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}; server log:\n{}", self.log()))
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        request(&self.addr, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }

    /// GET with query parameters, encoded.
    pub fn get_query(
        &self,
        path: &str,
        params: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        self.request("GET", &format!("{path}?{}", encode(params)), headers, b"")
    }

    pub fn push_json(&self, body: &str) -> Response {
        self.request(
            "POST",
            "/loki/api/v1/push",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A whole HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): status {} {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request on its own connection (`Connection: close`).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    // The server may answer (413/400) before reading everything; that is not our error.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// `a=1&b=2`, percent-encoded.
pub fn encode(params: &[(&str, &str)]) -> String {
    join(params, false)
}

/// A query string as Go's `url.Values.Encode` and the browser's `URLSearchParams` write
/// it: keys sorted (Go), spaces as `+`, everything else outside `A-Za-z0-9-_.~` escaped.
pub fn encode_form(params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_by_key(|(k, _)| *k);
    join(&sorted, true)
}

fn join(params: &[(&str, &str)], plus: bool) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k, plus), pct(v, plus)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes all but `A-Za-z0-9-_.~`; a space becomes `+` when `plus`.
fn pct(s: &str, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A string field of a JSON log line, wherever it is nested.
fn json_field(line: &str, name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    find(&v, name)
}

fn find(v: &serde_json::Value, name: &str) -> Option<String> {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(s) = m.get(name).and_then(|x| x.as_str()) {
                return Some(s.to_string());
            }
            m.values().find_map(|x| find(x, name))
        }
        _ => None,
    }
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}
