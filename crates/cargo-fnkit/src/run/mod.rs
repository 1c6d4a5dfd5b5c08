//! `cargo fnkit run --as local|lambda|knative|openfaas`: builds the function and serves it the
//! way the platform would start it, with a small emulator in front where the platform has one
//! (the Lambda Runtime and Invoke APIs, of-watchdog).

mod lambda;
mod openfaas;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::project::{cargo, Project};
use crate::{fail, say, Platform, Result, RunArgs};

/// Variables by which fnkit detects a platform: removed from the inherited environment, so the
/// emulated platform is the one fnkit sees.
const DETECTION_VARS: &[&str] = &[
    "FNKIT_PLATFORM",
    "AWS_LAMBDA_RUNTIME_API",
    "K_SERVICE",
    "K_REVISION",
    "K_CONFIGURATION",
    "upstream_url",
    "http_upstream_url",
    "fprocess",
    "function_process",
    "PORT",
];

/// How long the function gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// `cargo fnkit run`.
pub(crate) fn run(args: &RunArgs) -> Result<()> {
    let project = Project::load(args.manifest_path.as_deref())?;
    let binary = build(&project, args.release)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| fail!("cannot handle signal {signal}: {e}"))?;
    }
    let name = project.name.as_str();
    let port = args.port;
    let url = format!("http://127.0.0.1:{port}");
    let (env, how): (Vec<(String, String)>, String) = match args.platform {
        Platform::Local => (
            vec![("PORT".into(), port.to_string())],
            format!("{name} on {url} (local mode)"),
        ),
        Platform::Knative => (
            vec![
                ("PORT".into(), port.to_string()),
                ("K_SERVICE".into(), name.to_owned()),
                ("K_CONFIGURATION".into(), name.to_owned()),
                ("K_REVISION".into(), format!("{name}-00001")),
            ],
            format!("{name} on {url} as a Knative revision ({name}-00001)"),
        ),
        Platform::Lambda => {
            let env = bind(port)
                .and_then(|invoke| lambda::start(name, invoke, Duration::from_secs(args.timeout)))
                .map_err(|e| fail!("cannot start the Lambda emulator on port {port}: {e}"))?;
            (
                env,
                format!(
                    "{name} on Lambda's Runtime API; Invoke API on \
                     {url}/2015-03-31/functions/function/invocations"
                ),
            )
        }
        Platform::Openfaas => {
            let env = bind(port)
                .and_then(|front| {
                    openfaas::start(
                        &binary,
                        front,
                        Duration::from_secs(args.timeout),
                        args.max_inflight,
                    )
                })
                .map_err(|e| {
                    fail!("cannot start the OpenFaaS watchdog emulator on port {port}: {e}")
                })?;
            (
                env,
                format!("{name} behind an of-watchdog (HTTP mode) on {url}"),
            )
        }
    };
    let mut cmd = Command::new(&binary);
    for var in DETECTION_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env);
    let mut child = cmd
        .spawn()
        .map_err(|e| fail!("cannot start {}: {e}", binary.display()))?;
    say!("fnkit: serving {how} (Ctrl-C stops it)");
    say!("  try: {}", try_command(args.platform, port));
    let status = supervise(&mut child, &stop)?;
    match status {
        None => Ok(()),
        Some(status) if status.success() => Ok(()),
        Some(status) => Err(fail!("{name} exited: {status}")),
    }
}

/// Waits until the function exits (`Some(status)`) or a signal asks to stop (`None`; the function
/// gets SIGTERM, then SIGKILL after [`STOP_GRACE`]).
fn supervise(child: &mut Child, stop: &AtomicBool) -> Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if stop.load(Ordering::Relaxed) {
            // SIGTERM lets fnkit drain and run its shutdown hooks; std can only send SIGKILL.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let until = Instant::now() + STOP_GRACE;
            while Instant::now() < until {
                if child.try_wait()?.is_some() {
                    return Ok(None);
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Builds the function's binary with cargo (debug unless `release`).
fn build(project: &Project, release: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--bin", &project.bin])
        .arg("--manifest-path")
        .arg(&project.manifest);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| fail!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(fail!("cargo build failed ({status})"));
    }
    let profile = if release { "release" } else { "debug" };
    Ok(project.target_dir.join(profile).join(&project.bin))
}

fn try_command(platform: Platform, port: u16) -> String {
    format!(
        "cargo fnkit invoke --as {} --port {port} --data '{{\"name\":\"Ada\"}}' \
         (or --event NAME: `cargo fnkit invoke --help` lists the samples)",
        platform.as_str()
    )
}

/// `n` random lower-case hex digits (ids for requests and traces; not for secrets).
pub(crate) fn random_hex(n: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(n + 16);
    while out.len() < n {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(n);
    out
}

/// A random UUID-shaped id (8-4-4-4-12), as Lambda's request ids and OpenFaaS' call ids look.
pub(crate) fn uuid() -> String {
    let h = random_hex(32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// A listener on 127.0.0.1:`port` (0: any free port), with a message that says what to do when
/// the port is taken.
pub(crate) fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{e} (is something else on port {port}? choose another with --port)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_shapes_platforms_use() {
        let id = uuid();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(uuid(), uuid());
        assert_eq!(random_hex(24).len(), 24);
    }
}
