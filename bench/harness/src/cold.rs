//! HTTP cold start: exec → first complete response to a POST, on a fresh loopback port that is
//! polled with `connect` as tightly as the harness can.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http1::{post_request, Conn};

/// How long a variant may take to answer its first request before the run counts as failed.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One cold start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// exec → first complete response (HTTP) or first `GET /next` (Lambda init), ms.
    pub(crate) first_ms: f64,
    /// exec → first `POST /response` (Lambda only), ms.
    pub(crate) invoke_ms: Option<f64>,
    /// `VmHWM` after the first response, KiB.
    pub(crate) hwm_kib: u64,
    /// Threads after the first response.
    pub(crate) threads: u64,
}

/// Why a cold start gave no sample.
#[derive(Debug)]
pub(crate) enum ColdError {
    /// The binary does not do this at all (yet): it exited, or never called in.
    NotAvailable(String),
    /// It did, but this run went wrong.
    Failed(String),
}

impl std::fmt::Display for ColdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ColdError::NotAvailable(why) => write!(f, "n/a: {why}"),
            ColdError::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A child that is killed and reaped when dropped, whatever happened.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` as an HTTP server on a fresh port, in a clean environment plus `env`.
pub(crate) fn spawn_http(bin: &Path, port: u16, env: &[(&str, &str)]) -> std::io::Result<Child> {
    Command::new(bin)
        .env_clear()
        .env("PORT", port.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Connects to `addr` as soon as something listens there; fails if the child exits first or
/// nothing listens within the timeout.
pub(crate) fn connect_tightly(
    child: &mut Child,
    addr: SocketAddr,
    since: Instant,
) -> Result<TcpStream, ColdError> {
    let mut attempts: u32 = 0;
    loop {
        if let Ok(s) = TcpStream::connect(addr) {
            return Ok(s);
        }
        attempts = attempts.wrapping_add(1);
        if attempts % 64 == 0 {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ColdError::Failed(format!(
                    "exited with {status} before listening"
                )));
            }
            if since.elapsed() > ANSWER_TIMEOUT {
                return Err(ColdError::Failed(format!(
                    "nothing listened on port {} within {ANSWER_TIMEOUT:?}",
                    addr.port()
                )));
            }
        }
        // Give the core away between attempts: with 2 cores, a busy-spinning poller keeps a child
        // that was placed on its core waiting for the next scheduler tick (measured here: medians
        // of ~4 ms instead of ~1 ms under load); a sleep of even 20 µs is coarser than yielding.
        std::thread::yield_now();
    }
}

/// One HTTP cold start with `body` as the POSTed JSON, `env` added to the environment.
pub(crate) fn http(bin: &Path, env: &[(&str, &str)], body: &[u8]) -> Result<Sample, ColdError> {
    let port = free_port().map_err(|e| ColdError::Failed(format!("no free port: {e}")))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let request = post_request(port, body);
    let t0 = Instant::now();
    let child = spawn_http(bin, port, env)
        .map_err(|e| ColdError::NotAvailable(format!("cannot exec {}: {e}", bin.display())))?;
    let mut child = Guard(child);
    let stream = connect_tightly(&mut child.0, addr, t0)?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(ANSWER_TIMEOUT));
    let mut conn = Conn::new(stream);
    // A server may answer (413, say) before reading all of a large body and close: still read
    // what it said.
    let wrote = conn.stream.write_all(&request);
    let response = conn.read_message(true);
    let t1 = Instant::now();
    // The proxy variant's function is the proxy's child: count both (bench/harness/src/proxied.rs).
    let st = crate::proxied::status_of_tree(child.0.id()).unwrap_or_default();
    let response = match (response, wrote) {
        (Ok(Some(r)), _) => r,
        (Ok(None), Err(e)) | (Err(_), Err(e)) => {
            return Err(ColdError::Failed(format!("writing the request: {e}")))
        }
        (Ok(None), Ok(())) => return Err(ColdError::Failed("closed without answering".into())),
        (Err(e), Ok(())) => return Err(ColdError::Failed(format!("reading the response: {e}"))),
    };
    if response.status() != 200 || !contains(&response.body, b"Hello, ") {
        return Err(ColdError::Failed(format!(
            "answered {} {}",
            response.status(),
            String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
        )));
    }
    Ok(Sample {
        first_ms: (t1 - t0).as_secs_f64() * 1e3,
        invoke_ms: None,
        hwm_kib: st.hwm_kib,
        threads: st.threads,
    })
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A JSON event `{"name":"Ada"}` padded with a `pad` string field to exactly `size` bytes (or
/// just `{"name":"Ada"}` when `size` is smaller than that with the padding).
pub(crate) fn body_of_size(size: usize) -> Vec<u8> {
    const SMALL: &[u8] = br#"{"name":"Ada"}"#;
    const FRAME: usize = r#"{"name":"Ada","pad":""}"#.len();
    if size < FRAME {
        return SMALL.to_vec();
    }
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(br#"{"name":"Ada","pad":""#);
    body.resize(size - 2, b'x');
    body.extend_from_slice(br#""}"#);
    body
}

#[cfg(test)]
mod tests {
    #[test]
    fn padded_body_has_exact_size_and_is_json() {
        for size in [0, 14, 1 << 20, 6 << 20] {
            let body = super::body_of_size(size);
            if size >= 23 {
                assert_eq!(body.len(), size);
            }
            let v: Result<serde_json::Value, _> = serde_json::from_slice(&body);
            assert_eq!(
                v.ok()
                    .and_then(|v| v["name"].as_str().map(str::to_owned))
                    .as_deref(),
                Some("Ada")
            );
        }
    }
}
