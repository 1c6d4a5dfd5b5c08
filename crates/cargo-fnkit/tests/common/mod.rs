//! Helpers of the CLI's integration tests: the tool as a user runs it, generated crates that share
//! one target directory (their dependencies compile once), a served function that is stopped on
//! drop, and the one release (musl, fat LTO) build of the suite.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `true` under CI (`CI` set, and not `false` or `0`): a missing test peer fails there instead of
/// skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The fnkit repository (the tool's `--fnkit-path` in the tests).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Where the tests keep generated crates and their shared target directory: a folder of the
/// system's temporary directory, outside this repository as a user's own crate would be (inside
/// it, cargo would find fnkit's workspace above a folder with no crate), and apart from the build
/// running the tests, so the tool's cargo never waits on its lock.
pub fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("cargo-fnkit-tests");
    std::fs::create_dir_all(&dir).expect("the tests' work dir");
    dir
}

/// The target directory all generated crates build into.
pub fn shared_target() -> PathBuf {
    work_dir().join("target")
}

/// `cargo-fnkit` with the environment of a user in `dir`: the shared target dir.
pub fn tool(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-fnkit"));
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .env_remove("RUST_LOG");
    cmd
}

/// Runs the tool to completion.
pub fn run_tool(dir: &Path, args: &[&str]) -> Output {
    tool(dir).args(args).output().expect("cargo-fnkit runs")
}

/// Runs the tool and expects success; returns stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run_tool(dir, args);
    assert!(
        out.status.success(),
        "cargo fnkit {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the tool and expects failure; returns stderr.
pub fn err(dir: &Path, args: &[&str]) -> String {
    let out = run_tool(dir, args);
    assert!(!out.status.success(), "cargo fnkit {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh directory `work_dir()/<group>/` holding nothing.
pub fn fresh_dir(group: &str) -> PathBuf {
    let dir = work_dir().join(group);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a fresh dir");
    dir
}

/// `cargo fnkit new NAME --shape SHAPE --fnkit-path <repo>` in a fresh folder; the crate's path.
pub fn new_crate(name: &str, shape: &str) -> PathBuf {
    let parent = fresh_dir(&format!("crates-{name}"));
    let root = repo_root();
    ok(
        &parent,
        &[
            "new",
            name,
            "--shape",
            shape,
            "--fnkit-path",
            root.to_str().expect("utf-8"),
        ],
    );
    parent.join(name)
}

/// Runs cargo in `dir` with the shared target dir, expecting success.
pub fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", shared_target())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `GET` over a new connection; `(status, body)`, or `None` when nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, "GET", path, &[]).map(|(status, _, body)| (status, body))
}

/// A request without a body over a new connection; `(status, head, body)`, or `None` when
/// nothing answers. The head holds the status line and the headers.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// `docker-registry` (Debian's package of the CNCF distribution registry) on a free loopback
/// port, killed on drop; `None` when it is not installed.
pub struct Registry {
    child: Child,
    /// Its port.
    pub port: u16,
}

impl Registry {
    /// Starts it with storage under the work dir.
    pub fn start() -> Option<Registry> {
        let program = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())?;
        let dir = fresh_dir("registry");
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .expect("the registry's config");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        let mut registry = Registry { child, port };
        let until = Instant::now() + Duration::from_secs(20);
        while http_get(port, "/v2/").map(|r| r.0) != Some(200) {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited at start: {status}");
            }
            assert!(Instant::now() < until, "docker-registry did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `cargo fnkit run` in the background, stopped (SIGTERM, as Ctrl-C would) on drop.
pub struct Served {
    child: Child,
    /// Where callers reach it.
    pub port: u16,
}

impl Served {
    /// Starts `cargo fnkit run --as PLATFORM --port <free>` in `dir` and waits until the
    /// function answers (up to 5 minutes: the first run may compile).
    pub fn start(dir: &Path, platform: &str) -> Served {
        let port = free_port();
        let child = tool(dir)
            .args([
                "run",
                "--as",
                platform,
                "--port",
                &port.to_string(),
                "--timeout",
                "5",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo fnkit run starts");
        let mut served = Served { child, port };
        // Ready: the function answers /health (local, knative) or the watchdog's /_/ready
        // (openfaas); the Lambda emulator's Invoke API queues until the function polls, so it is
        // ready once it accepts connections.
        let probe = match platform {
            "openfaas" => "/_/ready",
            "lambda" => "/",
            _ => "/health",
        };
        let until = Instant::now() + Duration::from_secs(300);
        loop {
            if let Some((status, _)) = http_get(port, probe) {
                if platform == "lambda" || status == 200 {
                    return served;
                }
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("cargo fnkit run --as {platform} exited: {status}");
            }
            assert!(
                Instant::now() < until,
                "cargo fnkit run --as {platform} not ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `cargo fnkit invoke --as PLATFORM --port <port> ARGS…`: `(status, the body's text)` from
    /// what it prints (`HTTP <status>`, the interesting headers, then the body).
    pub fn invoke(&self, platform: &str, args: &[&str]) -> Invoked {
        let port = self.port.to_string();
        let mut all = vec!["invoke", "--as", platform, "--port", &port];
        all.extend_from_slice(args);
        let text = ok(Path::new("."), &all);
        Invoked::parse(&text)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `cargo fnkit invoke` printed.
#[derive(Debug)]
pub struct Invoked {
    /// The HTTP status.
    pub status: u16,
    /// The headers it printed, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Invoked {
    fn parse(text: &str) -> Invoked {
        let mut lines = text.lines();
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP "))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        let mut headers = Vec::new();
        let mut body = Vec::new();
        for line in lines {
            match line.split_once(": ") {
                Some((n, v))
                    if body.is_empty()
                        && (n == "content-type" || n.starts_with("ce-") || n.starts_with("x-")) =>
                {
                    headers.push((n.to_owned(), v.to_owned()));
                }
                _ => body.push(line),
            }
        }
        Invoked {
            status,
            headers,
            body: body.join("\n"),
        }
    }

    /// A printed header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The crate of the suite's one release build, and `cargo fnkit build --zip`'s output for it.
pub struct ReleaseBuild {
    /// The crate (a typed function named `fk-release`).
    pub dir: PathBuf,
    /// What `build --zip` printed.
    pub stdout: String,
    /// The static x86_64 musl binary.
    pub binary: PathBuf,
    /// Its bootstrap.zip.
    pub zip: PathBuf,
}

/// The one release build of the test suite (musl, fat LTO: minutes, so done once): a typed crate
/// from `cargo fnkit new`, built with `cargo fnkit build --zip`. Later calls, in this test binary
/// or another (cargo is then a no-op, as the crate is kept in place when unchanged), reuse it;
/// image tests call this for their binary.
pub fn release_build() -> &'static ReleaseBuild {
    static BUILD: OnceLock<ReleaseBuild> = OnceLock::new();
    static GUARD: Mutex<()> = Mutex::new(());
    let _guard = GUARD.lock().unwrap_or_else(|p| p.into_inner());
    BUILD.get_or_init(|| {
        let name = "fk-release";
        let generated = new_crate(name, "typed");
        let dir = work_dir().join("release").join(name);
        sync_dir(&generated, &dir);
        let stdout = ok(&dir, &["build", "--zip"]);
        let release = shared_target().join("x86_64-unknown-linux-musl/release");
        ReleaseBuild {
            dir,
            stdout,
            binary: release.join(name),
            zip: release.join(format!("{name}-bootstrap.zip")),
        }
    })
}

/// Copies `from` over `to`, leaving files whose contents are unchanged untouched (so cargo sees
/// no change and does not rebuild), and removing files `from` does not have.
fn sync_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    let mut wanted = Vec::new();
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        wanted.push(entry.file_name());
        if src.is_dir() {
            sync_dir(&src, &dst);
        } else if std::fs::read(&src).ok() != std::fs::read(&dst).ok() {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
    for entry in std::fs::read_dir(to).expect("read_dir") {
        let entry = entry.expect("entry");
        if !wanted.contains(&entry.file_name()) && entry.file_name() != "target" {
            let path = entry.path();
            if path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
