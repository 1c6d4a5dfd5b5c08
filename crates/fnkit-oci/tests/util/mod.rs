//! Helpers of the integration tests: the peers (skopeo, umoci, docker-registry, podman), a static
//! test binary, a registry on a free loopback port that is killed on drop.

#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod token;

/// `true` under CI (`CI=true`): a missing peer fails the test there instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Returns `Some(())` when the test can go on; prints why not and returns `None` locally; panics
/// under CI.
pub fn require(ok: bool, why: impl FnOnce() -> String) -> Option<()> {
    if ok {
        return Some(());
    }
    let why = why();
    if in_ci() {
        panic!("CI=true and a test peer is missing: {why} (`make test-deps` installs it)");
    }
    println!("SKIPPED: {why} (`make oci-peers` installs it; under CI=true this fails)");
    None
}

/// The absolute path of `program` on PATH (also /usr/sbin, /sbin: runc lives there).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// `which(program)` or skip/fail with a reason.
pub fn peer(program: &str) -> Option<PathBuf> {
    let found = which(program);
    require(found.is_some(), || format!("`{program}` is not installed"))?;
    found
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = run(cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("fnkit-oci-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The source of the test binary: a std-only HTTP server on `0.0.0.0:$PORT` that answers every
/// request with its uid/gid, whether `/tmp` is writable, and its environment; `fn selftest`
/// prints the same and exits.
const TEST_FN_SOURCE: &str = r#"
use std::io::{Read, Write};
fn report() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let ids = |key: &str| status.lines().find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)).unwrap_or("?").to_owned();
    let tmp = std::fs::write("/tmp/probe", b"x").is_ok();
    let shell = std::path::Path::new("/bin/sh").exists();
    let ca = std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists();
    format!("fnkit-oci-test uid={} gid={} tmp_writable={} shell={} ca={} PORT={} PATH={}\n",
        ids("Uid:"), ids("Gid:"), tmp, shell, ca,
        std::env::var("PORT").unwrap_or_default(), std::env::var("PATH").unwrap_or_default())
}
fn main() {
    if std::env::args().nth(1).as_deref() == Some("selftest") {
        print!("{}", report());
        return;
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let listener = std::net::TcpListener::bind(("0.0.0.0", port.parse::<u16>().unwrap())).unwrap();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let body = report();
        let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}", body.len(), body);
    }
}
"#;

/// The static binary the images are built from: `$FNKIT_OCI_TEST_BINARY` when set (e.g. a
/// release build of an fnkit function; then only checks that do not need the test server's
/// answers run against it), else the small server above compiled with rustc for the host's
/// musl target (static, no libc needed: what `/fn` must be).
pub fn test_binary() -> Option<(PathBuf, fnkit_oci::Arch, bool)> {
    if let Some(path) = std::env::var_os("FNKIT_OCI_TEST_BINARY").filter(|p| !p.is_empty()) {
        let arch = if cfg!(target_arch = "aarch64") {
            fnkit_oci::Arch::Arm64
        } else {
            fnkit_oci::Arch::Amd64
        };
        return Some((PathBuf::from(path), arch, false));
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let (arch, target) = if cfg!(target_arch = "aarch64") {
        (fnkit_oci::Arch::Arm64, "aarch64-unknown-linux-musl")
    } else {
        (fnkit_oci::Arch::Amd64, "x86_64-unknown-linux-musl")
    };
    let built = BUILT.get_or_init(|| {
        // Under the target dir, at a fixed path (panic messages embed the source's path, so the
        // same path gives the same binary); rebuilt when the source changes.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fnkit-oci-testfn");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let src = dir.join("main.rs");
        let out = dir.join(format!("fn-{target}"));
        if out.is_file() && std::fs::read_to_string(&src).is_ok_and(|s| s == TEST_FN_SOURCE) {
            return Ok(out);
        }
        std::fs::write(&src, TEST_FN_SOURCE).map_err(|e| e.to_string())?;
        let tmp_out = dir.join(format!("fn-{target}.{}", std::process::id()));
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let result = Command::new(rustc)
            .args([
                "--edition",
                "2021",
                "-C",
                "opt-level=1",
                "-C",
                "strip=symbols",
            ])
            .args(["-C", "target-feature=+crt-static", "--target", target])
            .arg(&src)
            .arg("-o")
            .arg(&tmp_out)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run rustc: {e}"))?;
        if !result.status.success() {
            return Err(format!(
                "rustc --target {target} failed (is the target installed? `rustup target add \
                 {target}`): {}",
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        std::fs::rename(&tmp_out, &out).map_err(|e| e.to_string())?;
        Ok(out)
    });
    match built {
        Ok(path) => Some((path.clone(), arch, true)),
        Err(why) => {
            require(false, || why.clone())?;
            None
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the registry binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Sends `GET path` to 127.0.0.1:port and returns the status code and body; `None` when the port
/// does not answer.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's `docker-registry` (distribution 2.8) on a free loopback port, storing in a temp dir;
/// killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Registry {
    /// Starts a registry without auth, or with Basic auth for one user (`htpasswd`).
    pub fn start(htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(htpasswd, None)
    }

    /// Starts a registry whose clients need a Bearer token from `token` (its realm, service,
    /// issuer and certificate).
    pub fn start_with_tokens(token: &token::TokenServer) -> Option<Registry> {
        Registry::start_with(None, Some(token))
    }

    fn start_with(
        htpasswd: Option<(&str, &str)>,
        token: Option<&token::TokenServer>,
    ) -> Option<Registry> {
        let program = peer("docker-registry")?;
        let dir = TempDir::new("registry");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = htpasswd {
            peer("htpasswd")?;
            let out = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: fnkit-test\n    path: {}\n",
                file.display()
            ));
        }
        if let Some(token) = token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                token.realm(),
                token::SERVICE,
                token::ISSUER,
                token.cert_path().display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(program)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut registry = Registry {
            child,
            port,
            _dir: dir,
        };
        let up = wait_for(Duration::from_secs(20), || {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "docker-registry exited at start ({status}): {}",
                    registry.log()
                );
            }
            http_get(port, "/v2/").map(|(status, _)| status)
        });
        assert!(
            matches!(up, Some(200 | 401)),
            "docker-registry did not answer on 127.0.0.1:{port}: {}",
            registry.log()
        );
        Some(registry)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
