//! Test support: start a built function binary as users run it, on a free loopback port, talk to
//! it over plain HTTP/1.1, and stop it when the test is done.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: `FNKIT_BIN_DIR`, else `$CARGO_TARGET_DIR/debug`, else the
/// workspace's `target/debug`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FNKIT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug")
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Whether the tests run under CI (`CI` set, and not to `false` or `0`), where a missing
/// prerequisite fails a test instead of skipping it.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips a test (says SKIPPED and gives `None`) or, under CI, fails it: `make test` provides
/// every prerequisite there.
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(!under_ci(), "{why}; CI is set, and `make test` provides it");
    eprintln!("SKIPPED: {why}");
    None
}

/// A binary a workspace build cannot make (another target, other features), built aside by
/// `make <target>` and named by the environment variable `var` (relative paths are from the
/// repository root): [`skip`] when `var` is not set, a clear panic when the file is missing.
pub fn built_aside(var: &str, target: &str) -> Option<PathBuf> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
        return skip(&format!("{var} is not set (`make {target}` builds it)"));
    };
    let path = workspace_root().join(path);
    assert!(
        path.is_file(),
        "{var}={} does not exist: `make {target}` builds it",
        path.display()
    );
    Some(path)
}

/// The path of a built binary, with a clear panic when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace --bins`, which \
         `make test` does)",
        path.display()
    );
    path
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A running function binary; killed when dropped.
pub struct FnProcess {
    child: Child,
    /// The loopback address it serves on.
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

/// A command for `program` with none of the variables that pick a platform or change fnkit's
/// settings inherited from the test's own environment: each test sets what it means to.
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "FNKIT_PLATFORM",
        "AWS_LAMBDA_RUNTIME_API",
        "K_SERVICE",
        "K_REVISION",
        "K_CONFIGURATION",
        "upstream_url",
        "fprocess",
        "mode",
        "PORT",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

impl FnProcess {
    /// Starts `name` from the binary dir with `PORT` set to a free port and `env` added, and waits
    /// until `GET /health` answers (at most 10 s).
    pub fn start(name: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let port_s = port.to_string();
        let mut all: Vec<(&str, &str)> = vec![("PORT", port_s.as_str())];
        all.extend_from_slice(env);
        let p = Self::spawn(name, &all, SocketAddr::from(([127, 0, 0, 1], port)));
        p.wait_healthy("/health");
        p
    }

    /// Starts `name` with exactly `env` (plus a clean platform environment), serving on `addr`,
    /// without waiting for it.
    pub fn spawn(name: &str, env: &[(&str, &str)], addr: SocketAddr) -> Self {
        let mut cmd = clean_command(bin(name));
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the function binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take(), logs.clone());
        collect_lines(child.stderr.take(), stderr.clone());
        Self {
            child,
            addr,
            logs,
            stderr,
        }
    }

    /// Polls `GET path` until it answers 200, for at most 10 s.
    pub fn wait_healthy(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = try_request(self.addr, &Request::get(path)) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the function did not become healthy; stdout: {:?} stderr: {:?}",
                self.logs(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill(1) is missing");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait failed") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lines written to stdout so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Lines written to stderr so far.
    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a stdout line contains `needle`, at most `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stdout or stderr has a line containing every needle, at most `timeout`, and
    /// returns all output so far either way (for the assertion message).
    pub fn wait_for_output(&self, needles: &[&str], timeout: Duration) -> (bool, String) {
        let deadline = Instant::now() + timeout;
        loop {
            let all = [self.logs(), self.stderr()].concat().join("\n");
            let found = all.lines().any(|l| needles.iter().all(|n| l.contains(n)));
            if found || Instant::now() >= deadline {
                return (found, all);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `req` and reads the whole response.
    pub fn send(&self, req: &Request) -> Response {
        request(self.addr, req)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> Response {
        self.send(
            &Request::post(path, body.as_bytes().to_vec())
                .header("content-type", "application/json"),
        )
    }
}

impl Drop for FnProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(stream: Option<impl Read + Send + 'static>, into: Arc<Mutex<Vec<String>>>) {
    if let Some(stream) = stream {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut v) = into.lock() {
                    v.push(line);
                }
            }
        });
    }
}

/// An HTTP/1.1 request, written to the socket exactly as given.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Request {
    /// A GET.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path, Vec::new())
    }

    /// A POST with a body.
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", path, body.into())
    }

    /// Any method.
    pub fn new(method: &str, path: &str, body: Vec<u8>) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// The bytes on the wire (with `Host`, `Content-Length` and `Connection: close` added).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\n",
            self.method, self.path
        )
        .into_bytes();
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        let has = |n: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !has("content-length") && !has("transfer-encoding") {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if !has("connection") {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers; names lowercased, repeated ones kept in order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `req` on a new connection and reads the response; panics on I/O errors.
pub fn request(addr: SocketAddr, req: &Request) -> Response {
    try_request(addr, req).unwrap_or_else(|e| panic!("request to {addr} failed: {e}"))
}

/// Sends `req` on a new connection and reads the response.
pub fn try_request(addr: SocketAddr, req: &Request) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(&req.to_bytes())?;
    read_response(&mut BufReader::new(stream), req.method == "HEAD")
}

/// Reads one response from a buffered stream (keep-alive friendly: reads only its own bytes).
pub fn read_response(reader: &mut impl BufRead, head: bool) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers
            .entry(k.trim().to_ascii_lowercase())
            .or_default()
            .push(v.trim().to_owned());
    }
    let mut body = Vec::new();
    let first = |n: &str| headers.get(n).and_then(|v| v.first()).cloned();
    if head || status == 204 || status == 304 || (100..200).contains(&status) {
    } else if first("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("bad chunk"))?;
            if size == 0 {
                line.clear();
                reader.read_line(&mut line)?;
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            line.clear();
            reader.read_line(&mut line)?;
        }
    } else if let Some(len) = first("content-length") {
        let len: usize = len.parse().map_err(|_| bad("bad content-length"))?;
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
