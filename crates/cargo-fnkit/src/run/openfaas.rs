//! A local of-watchdog in HTTP mode (docs/platforms.md §6): the front on `--port` that forwards
//! every request but `/_/*` to the function on an internal port, with the watchdog's environment.
//!
//! What it does as the watchdog does: `/_/health` (200), `/_/ready` (the function's `ready_path`,
//! 429 while `max_inflight` is reached), 429 past `max_inflight`, 504 with an empty body past
//! `exec_timeout` and 500 when the function cannot be reached — these three with
//! `X-OpenFaaS-Internal: of-watchdog` — `X-Call-Id`, `X-Start-Time` and `X-Forwarded-*` on the
//! way in and `X-Duration-Seconds` on the way out. The response body is passed on as it arrives
//! (a streamed answer stays streamed); `exec_timeout` covers it too, and a body still running at
//! the deadline is cut. Request bodies are read whole before they are forwarded.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{bind, uuid};
use crate::http1::{send, send_streaming, serve, BodyStream, Request, Response};

/// The path the watchdog's `/_/ready` asks the function (`ready_path`), as fnkit's template sets.
const READY_PATH: &str = "/ready";
/// The headers a proxy does not pass on (RFC 9110 §7.6.1), besides the framing it redoes.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

struct Watchdog {
    upstream: String,
    exec_timeout: Duration,
    max_inflight: usize,
    inflight: Arc<AtomicUsize>,
}

/// Starts the front on `front`, for a function that will listen on a free internal port; returns
/// the function's environment (what of-watchdog passes on to `fprocess`).
pub(super) fn start(
    binary: &Path,
    front: TcpListener,
    exec_timeout: Duration,
    max_inflight: usize,
) -> std::io::Result<Vec<(String, String)>> {
    // A free port for the function: bind, note it, release it for the function to take.
    let internal = bind(0)?.local_addr()?.port();
    let port = front.local_addr()?.port();
    let watchdog = Arc::new(Watchdog {
        upstream: format!("127.0.0.1:{internal}"),
        exec_timeout,
        max_inflight,
        inflight: Arc::new(AtomicUsize::new(0)),
    });
    serve(front, move |req| handle(&watchdog, req));
    let secs = format!("{}s", exec_timeout.as_secs());
    let mut env = vec![
        ("mode", "http".to_owned()),
        ("fprocess", binary.display().to_string()),
        ("upstream_url", format!("http://127.0.0.1:{internal}")),
        ("port", port.to_string()),
        ("exec_timeout", secs.clone()),
        ("write_timeout", secs.clone()),
        ("read_timeout", secs),
        ("healthcheck_interval", "1s".to_owned()),
        ("prefix_logs", "false".to_owned()),
        ("ready_path", READY_PATH.to_owned()),
    ];
    if max_inflight > 0 {
        env.push(("max_inflight", max_inflight.to_string()));
    }
    Ok(env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn internal(status: u16, body: &str) -> Response {
    Response::new(status, "text/plain; charset=utf-8", body)
        .with_header("X-OpenFaaS-Internal", "of-watchdog")
}

/// One request in flight: counted until it is dropped, which is when its answer (body included)
/// has been passed on.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its request's [`Slot`] until it has been read.
struct Counted {
    body: BodyStream,
    _slot: Slot,
}

impl std::io::Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.body.read(buf)
    }
}

fn handle(w: &Watchdog, req: Request) -> Response {
    match req.path() {
        "/_/health" if req.method == "GET" || req.method == "HEAD" => {
            return Response::new(200, "text/plain; charset=utf-8", "OK");
        }
        "/_/ready" if req.method == "GET" || req.method == "HEAD" => {
            if w.max_inflight > 0 && w.inflight.load(Ordering::SeqCst) >= w.max_inflight {
                return internal(429, "Concurrent request limit exceeded");
            }
            let probe = Request {
                method: "GET".into(),
                target: READY_PATH.into(),
                ..Request::default()
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            return match send(&w.upstream, &probe, Some(deadline)) {
                Ok(r) => Response::new(r.status, "text/plain; charset=utf-8", r.body),
                Err(_) => Response::new(503, "text/plain; charset=utf-8", "upstream not ready"),
            };
        }
        "/_/health" | "/_/ready" => return internal(405, "Method not allowed"),
        _ => {}
    }
    let before = w.inflight.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(Arc::clone(&w.inflight));
    if w.max_inflight > 0 && before >= w.max_inflight {
        return internal(429, "Concurrent request limit exceeded");
    }
    forward(w, req, slot)
}

fn forward(w: &Watchdog, mut req: Request, slot: Slot) -> Response {
    let started = Instant::now();
    let host = req.header("host").unwrap_or("").to_owned();
    req.headers.retain(|(n, _)| {
        !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)) && !n.eq_ignore_ascii_case("host")
    });
    if req.header("X-Call-Id").is_none() {
        req.headers.push(("X-Call-Id".into(), uuid()));
    }
    let start_nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    req.headers
        .push(("X-Start-Time".into(), start_nanos.to_string()));
    req.headers
        .push(("X-Forwarded-For".into(), "127.0.0.1".into()));
    req.headers.push(("X-Forwarded-Host".into(), host));
    let deadline = (!w.exec_timeout.is_zero()).then(|| started + w.exec_timeout);
    match send_streaming(&w.upstream, &req, deadline) {
        Ok(mut resp) => {
            resp.headers
                .retain(|(n, _)| !HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)));
            resp.stream = resp
                .stream
                .take()
                .map(|body| Box::new(Counted { body, _slot: slot }) as BodyStream);
            resp.with_header(
                "X-Duration-Seconds",
                format!("{:.6}", started.elapsed().as_secs_f64()),
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => internal(504, ""),
        Err(e) => internal(500, &format!("Can't reach service for: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::get;
    use std::thread;

    #[test]
    fn requests_pass_through_and_a_slow_upstream_gets_504() {
        let front = bind(0).expect("a port");
        let front_addr = front.local_addr().expect("addr").to_string();
        let env =
            start(Path::new("/bin/fn"), front, Duration::from_millis(1500), 0).expect("started");
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(var("mode").as_deref(), Some("http"));
        assert_eq!(var("exec_timeout").as_deref(), Some("1s"));
        assert_eq!(var("max_inflight"), None);
        // Before the function listens: the watchdog's own 500, health still 200.
        assert_eq!(get(&front_addr, "/").status, 500);
        assert_eq!(get(&front_addr, "/_/health").status, 200);
        let upstream = var("upstream_url").expect("upstream_url");
        let listener = TcpListener::bind(upstream.trim_start_matches("http://")).expect("upstream");
        serve(listener, |req| {
            if req.path() == "/slow" {
                thread::sleep(Duration::from_secs(3));
            }
            let call_id = req.header("x-call-id").unwrap_or("").to_owned();
            Response::new(200, "text/plain", format!("{} {}", req.target, call_id))
        });
        let ok = get(&front_addr, "/hello?x=1");
        assert_eq!(ok.status, 200);
        let body = String::from_utf8_lossy(&ok.body).to_string();
        assert!(body.starts_with("/hello?x=1 ") && body.len() > 20, "{body}");
        assert!(ok.header("X-Duration-Seconds").is_some());
        assert_eq!(ok.header("X-OpenFaaS-Internal"), None);
        let slow = get(&front_addr, "/slow");
        assert_eq!(slow.status, 504);
        assert!(slow.body.is_empty());
        assert_eq!(slow.header("X-OpenFaaS-Internal"), Some("of-watchdog"));
    }

    /// A reader that gives its bytes after a pause.
    struct Late(Option<&'static [u8]>, Duration);

    impl std::io::Read for Late {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.take() {
                Some(data) => {
                    thread::sleep(self.1);
                    buf[..data.len()].copy_from_slice(data);
                    Ok(data.len())
                }
                None => Ok(0),
            }
        }
    }

    #[test]
    fn a_streamed_answer_streams_through_and_counts_against_max_inflight_until_it_ends() {
        let front = bind(0).expect("a port");
        let front_addr = front.local_addr().expect("addr").to_string();
        let env = start(Path::new("/bin/fn"), front, Duration::from_secs(10), 1).expect("started");
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(var("max_inflight").as_deref(), Some("1"));
        let upstream = var("upstream_url").expect("upstream_url");
        let listener = TcpListener::bind(upstream.trim_start_matches("http://")).expect("upstream");
        serve(listener, |_| {
            let first = std::io::Cursor::new(b"first\n".to_vec());
            let second = Late(Some(b"second\n"), Duration::from_millis(600));
            Response {
                status: 200,
                stream: Some(Box::new(std::io::Read::chain(first, second))),
                ..Response::default()
            }
        });
        let get = Request {
            method: "GET".into(),
            target: "/stream".into(),
            ..Request::default()
        };
        let started = Instant::now();
        let resp = send_streaming(&front_addr, &get, None).expect("a head");
        let mut body = resp.stream.expect("a body");
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut body, &mut first).expect("the first chunk");
        assert_eq!(&first, b"first\n");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "streamed, not buffered"
        );
        // Still streaming: the one slot is taken.
        let busy = send(&front_addr, &get, None).expect("an answer");
        assert_eq!(busy.status, 429);
        assert_eq!(busy.header("X-OpenFaaS-Internal"), Some("of-watchdog"));
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut body, &mut rest).expect("the rest");
        assert_eq!(rest, "second\n");
        drop(body);
        // The slot is released once the body has been passed on.
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let again = send(
                &front_addr,
                &get,
                Some(Instant::now() + Duration::from_secs(5)),
            )
            .expect("an answer");
            if again.status == 200 {
                assert_eq!(again.body, b"first\nsecond\n");
                break;
            }
            assert!(Instant::now() < until, "the slot was never released");
            thread::sleep(Duration::from_millis(20));
        }
    }
}
