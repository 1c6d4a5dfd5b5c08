//! Warm load with `wrk` (Debian's package): keep-alive POSTs of `{"name":"Ada"}` on loopback,
//! bounded by `-d`, with a Lua `done` hook that prints the figures in one parseable line.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cold::{connect_tightly, free_port, spawn_http, ColdError, Guard};
use crate::http1::{post_request, Conn};
use crate::procfs::ProcStatus;

const SCRIPT: &str = r#"-- written by bench/harness: POST {"name":"Ada"} and report in one line
wrk.method = "POST"
wrk.body = '{"name":"Ada"}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FNKIT_WRK %d %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

/// The load generator and how it is driven.
pub(crate) struct Wrk {
    pub(crate) bin: PathBuf,
    pub(crate) script: PathBuf,
    pub(crate) threads: usize,
    pub(crate) version: String,
}

impl Wrk {
    /// Finds `wrk` and writes its script into `dir`.
    pub(crate) fn new(bin: &Path, threads: usize, dir: &Path) -> Result<Wrk, String> {
        let out = Command::new(bin)
            .arg("-v")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e} (make bench installs it)", bin.display()))?;
        // `wrk -v` prints its version and exits non-zero.
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let version = text.lines().next().unwrap_or("wrk").trim().to_owned();
        let script = dir.join("wrk-post.lua.tmp");
        std::fs::write(&script, SCRIPT).map_err(|e| format!("{}: {e}", script.display()))?;
        Ok(Wrk {
            bin: bin.to_owned(),
            script,
            threads: threads.max(1),
            version,
        })
    }
}

/// What one load level gave.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Level {
    pub(crate) conns: usize,
    pub(crate) requests: u64,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Socket errors plus non-2xx answers.
    pub(crate) errors: u64,
    /// The server's `VmHWM` / threads right after this level.
    pub(crate) proc: ProcStatus,
}

/// A server started once, then loaded at each level in turn (ascending, so that `VmHWM` after a
/// level is the peak of that level). wrk takes whole seconds only.
pub(crate) fn run_levels(
    wrk: &Wrk,
    bin: &Path,
    env: &[(&str, &str)],
    levels: &[usize],
    secs: u64,
    warmup_secs: u64,
) -> Result<Vec<Level>, String> {
    let port = free_port().map_err(|e| e.to_string())?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let t0 = Instant::now();
    let mut child = Guard(spawn_http(bin, port, env).map_err(|e| format!("exec: {e}"))?);
    // Wait until it answers once.
    let stream = connect_tightly(&mut child.0, addr, t0).map_err(|e: ColdError| e.to_string())?;
    let mut conn = Conn::new(stream);
    std::io::Write::write_all(&mut conn.stream, &post_request(port, br#"{"name":"Ada"}"#))
        .map_err(|e| e.to_string())?;
    conn.read_message(true).map_err(|e| e.to_string())?;
    drop(conn);
    if warmup_secs > 0 {
        wrk_once(wrk, port, 1, Duration::from_secs(warmup_secs))?;
    }
    let mut out = Vec::new();
    for &conns in levels {
        let mut level = wrk_once(wrk, port, conns, Duration::from_secs(secs))?;
        // With its children: a proxy and the function it started (bench/harness/src/proxied.rs).
        level.proc = crate::proxied::status_of_tree(child.0.id())
            .ok_or_else(|| format!("the server died under {conns} connections"))?;
        out.push(level);
    }
    Ok(out)
}

fn wrk_once(wrk: &Wrk, port: u16, conns: usize, dur: Duration) -> Result<Level, String> {
    let threads = wrk.threads.min(conns);
    let mut cmd = Command::new(&wrk.bin);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", dur.as_secs().max(1)))
        .arg("--timeout")
        .arg("2s")
        .arg("-s")
        .arg(&wrk.script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().map_err(|e| format!("wrk: {e}"))?;
    // wrk stops itself after -d; the harness only keeps a generous upper bound.
    let limit = dur + Duration::from_secs(15);
    let started = Instant::now();
    let mut child = Guard(child);
    loop {
        match child.0.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() > limit => return Err("wrk overran its time".into()),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wrk: {e}")),
        }
    }
    let mut stdout = String::new();
    if let Some(mut s) = child.0.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut s, &mut stdout);
    }
    parse(&stdout, conns).ok_or_else(|| {
        let first = stdout.lines().next().unwrap_or("").trim();
        format!("wrk printed no figures: {first}")
    })
}

fn parse(stdout: &str, conns: usize) -> Option<Level> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("FNKIT_WRK "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if f.len() != 10 {
        return None;
    }
    let secs = (f[1] / 1e6).max(1e-9);
    Some(Level {
        conns,
        requests: f[0] as u64,
        rps: f[0] / secs,
        p50_ms: f[7] / 1e3,
        p99_ms: f[8] / 1e3,
        max_ms: f[9] / 1e3,
        errors: f[2..7].iter().sum::<f64>() as u64,
        proc: ProcStatus::default(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_done_line() {
        let out = "Running 1s test\nFNKIT_WRK 50000 1000000 0 0 0 0 3 120 900 1500\n";
        let l = super::parse(out, 64).map(|l| (l.requests, l.rps, l.p50_ms, l.p99_ms, l.errors));
        assert_eq!(l, Some((50000, 50000.0, 0.12, 0.9, 3)));
    }
}
