//! OpenFaaS behind of-watchdog in HTTP mode: docs/platforms.md §6, checked as docs/conformance.md #46–#54.
//!
//! The real `fwatchdog` is a Go binary shipped only in a container image on ghcr.io, which this
//! machine cannot reach. [`Watchdog`] stands in for it: a reverse proxy with the behaviour of
//! of-watchdog's HTTP mode that the function sees (`executor/http_runner.go`, `pkg/readiness.go`):
//! it forwards method, path and query, headers (`Host` included) and the body **chunked, without
//! `Content-Length`**; answers 504 itself past `exec_timeout` (cancelling the upstream request)
//! and 500 when the upstream cannot be reached, both with `X-OpenFaaS-Internal: of-watchdog`;
//! serves its own `/_/health` (200, 503 once terminated) and `/_/ready` (proxied to
//! `ready_path`). The function is started as the watchdog starts `fprocess`: once, with the
//! watchdog's environment (`mode`, `fprocess`, `upstream_url`, timeouts, `max_inflight`,
//! `prefix_logs=false`), stdout and stderr piped.
//!
//! It does not enforce `max_inflight` itself, so that fnkit's own 429 is what the tests see.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fnkit_tests::{bin, free_port, request, try_request, workspace_root, FnProcess, Request};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

// --- the stand-in watchdog --------------------------------------------------------------------

/// How the stand-in watchdog is configured (the subset of of-watchdog's variables it acts on).
#[derive(Clone)]
struct WatchdogConfig {
    upstream: SocketAddr,
    /// `exec_timeout`: past it, 504 and the upstream request is dropped. `None` = 0 (off).
    exec_timeout: Option<Duration>,
    /// `ready_path`: `GET /_/ready` is proxied there.
    ready_path: Option<&'static str>,
}

struct Shared {
    config: WatchdogConfig,
    healthy: AtomicBool,
    client: Client<HttpConnector, ChunkedBody>,
}

/// A reverse proxy in front of the function, on its own thread and runtime; stopped on drop.
struct Watchdog {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(config: WatchdogConfig) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the watchdog");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the watchdog");
        // Like Go's transport in of-watchdog: pooled keep-alive connections, 500 ms idle.
        let client = runtime.block_on(async {
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_millis(500))
                .build_http()
        });
        let shared = Arc::new(Shared {
            config,
            healthy: AtomicBool::new(true),
            client,
        });
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let shared = serving.clone();
                            let service = hyper::service::service_fn(move |req| {
                                proxy(shared.clone(), req)
                            });
                            tokio::spawn(
                                hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service),
                            );
                        }
                    }
                }
            });
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// What of-watchdog does on SIGTERM before forwarding it: mark itself unhealthy.
    fn terminate(&self) {
        self.shared.healthy.store(false, Ordering::SeqCst);
    }

    fn send(&self, req: &Request) -> fnkit_tests::Response {
        request(self.addr, req)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The incoming body, sent on with no size: hyper then uses `Transfer-Encoding: chunked`, as
/// Go's transport does for the watchdog's `io.Reader` body. An empty body stays empty (Go sends
/// `http.NoBody` without chunking). `None` is the empty body of the readiness probe.
struct ChunkedBody(Option<Incoming>);

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.0 {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

type Reply = http::Response<Full<Bytes>>;

fn watchdog_reply(status: u16, body: &'static str) -> Reply {
    let mut r = http::Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    r.headers_mut()
        .insert("x-openfaas-internal", "of-watchdog".parse().unwrap());
    r
}

async fn proxy(shared: Arc<Shared>, req: http::Request<Incoming>) -> Result<Reply, Infallible> {
    let healthy = shared.healthy.load(Ordering::SeqCst);
    match req.uri().path() {
        "/_/health" => {
            return Ok(if healthy {
                watchdog_reply(200, "OK")
            } else {
                watchdog_reply(503, "")
            })
        }
        "/_/ready" => {
            if req.method() != http::Method::GET {
                return Ok(watchdog_reply(405, ""));
            }
            if !healthy {
                return Ok(watchdog_reply(503, ""));
            }
            let Some(path) = shared.config.ready_path else {
                return Ok(watchdog_reply(200, "OK"));
            };
            let uri = format!("http://{}{path}", shared.config.upstream);
            let probe = http::Request::get(uri)
                .body(ChunkedBody(None))
                .expect("a probe request");
            let status = match shared.client.request(probe).await {
                Ok(resp) => resp.status().as_u16(),
                Err(_) => 503,
            };
            return Ok(watchdog_reply(status, ""));
        }
        _ => {}
    }
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{}{path_and_query}", shared.config.upstream)
        .parse()
        .expect("an upstream URI");
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(TRANSFER_ENCODING);
    let upstream = async {
        let resp = shared
            .client
            .request(http::Request::from_parts(parts, ChunkedBody(Some(body))))
            .await?;
        let (mut parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.remove(TRANSFER_ENCODING);
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(http::Response::from_parts(
            parts,
            Full::new(body),
        ))
    };
    let outcome = match shared.config.exec_timeout {
        Some(limit) => tokio::time::timeout(limit, upstream).await,
        None => Ok(upstream.await),
    };
    let mut reply = match outcome {
        Ok(Ok(reply)) => reply,
        // "Upstream HTTP request error": connection refused, reset ...
        Ok(Err(_)) => watchdog_reply(500, ""),
        // "Upstream HTTP killed due to exec_timeout"; dropping the future closes the connection.
        Err(_) => watchdog_reply(504, ""),
    };
    let duration = format!("{:.6}", started.elapsed().as_secs_f64());
    reply.headers_mut().insert(
        "x-duration-seconds",
        duration.parse().expect("a header value"),
    );
    Ok(reply)
}

// --- the function, started as the watchdog starts it ------------------------------------------

/// A function behind the stand-in watchdog.
struct OpenFaas {
    f: FnProcess,
    watchdog: Watchdog,
    /// The address of `upstream_url`.
    upstream: SocketAddr,
    /// The `PORT` it was given (and must not use).
    port: u16,
    started: Instant,
}

/// The watchdog variables of a typical deployment; tests override what they exercise.
const WATCHDOG_ENV: &[(&str, &str)] = &[
    ("mode", "http"),
    ("prefix_logs", "false"),
    ("exec_timeout", "10s"),
    ("write_timeout", "10s"),
    ("read_timeout", "10s"),
    ("healthcheck_interval", "10s"),
];

impl OpenFaas {
    /// Starts `name` with the watchdog's environment plus `env` (which wins), and the stand-in
    /// watchdog in front of it, without waiting.
    fn spawn(name: &str, env: &[(&str, &str)], exec_timeout: Option<Duration>) -> Self {
        let upstream = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let port = free_port();
        let fprocess = bin(name).to_string_lossy().into_owned();
        let upstream_url = format!("http://{upstream}");
        let port_s = port.to_string();
        let mut all: Vec<(&str, &str)> = WATCHDOG_ENV
            .iter()
            .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        all.extend_from_slice(&[
            ("fprocess", fprocess.as_str()),
            ("upstream_url", upstream_url.as_str()),
            // The watchdog's own port is 8080; a PORT in the environment must not matter.
            ("PORT", port_s.as_str()),
        ]);
        all.extend_from_slice(env);
        let watchdog = Watchdog::start(WatchdogConfig {
            upstream,
            exec_timeout,
            ready_path: Some("/ready"),
        });
        let started = Instant::now();
        let f = FnProcess::spawn(name, &all, upstream);
        Self {
            f,
            watchdog,
            upstream,
            port,
            started,
        }
    }

    /// [`OpenFaas::spawn`], then waits until the watchdog's `/_/ready` (proxied to fnkit's
    /// `/ready`) answers 200, at most 10 s.
    fn start(name: &str, env: &[(&str, &str)], exec_timeout: Option<Duration>) -> Self {
        let of = Self::spawn(name, env, exec_timeout);
        of.wait_ready();
        of
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = try_request(self.watchdog.addr, &Request::get("/_/ready")) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "/_/ready never answered 200; stdout: {:?} stderr: {:?}",
                self.f.logs(),
                self.f.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A request through the watchdog.
    fn send(&self, req: &Request) -> fnkit_tests::Response {
        self.watchdog.send(req)
    }

    /// A request straight to fnkit, on a new connection.
    fn direct(&self, req: &Request) -> std::io::Result<fnkit_tests::Response> {
        try_request(self.upstream, req)
    }

    fn alive(&mut self) -> bool {
        self.f.wait_exit(Duration::ZERO).is_none()
    }

    /// What the watchdog does on SIGTERM: mark itself unhealthy, forward the signal at once.
    fn sigterm(&self) -> Instant {
        self.watchdog.terminate();
        let at = Instant::now();
        self.f.signal("TERM");
        at
    }
}

/// Whether something listens on `ip:port` (hex address as in /proc/net/tcp; 0A = LISTEN).
fn listening(hex_ip: &str, port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!("{hex_ip}:{port:04X}");
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.get(1) == Some(&wanted.as_str()) && cols.get(3) == Some(&"0A")
    })
}

fn hello(name: &str) -> Request {
    Request::post("/", format!(r#"{{"name":"{name}"}}"#)).header("content-type", "application/json")
}

// --- docs/conformance.md items 46–54 -------------------------------------------------------------

#[test]
fn openfaas_46_listens_on_the_upstream_port_not_port_and_is_ready_before_the_first_request() {
    let of = OpenFaas::spawn("hello", &[], None);
    of.wait_ready();
    let ready_after = of.started.elapsed();
    assert!(
        ready_after < Duration::from_secs(2),
        "ready only after {ready_after:?}"
    );
    assert!(
        listening("0100007F", of.upstream.port()),
        "not listening on 127.0.0.1:{}",
        of.upstream.port()
    );
    for ip in ["00000000", "0100007F"] {
        assert!(!listening(ip, of.port), "listens on PORT={} too", of.port);
    }
    // The first request the watchdog proxies is served.
    let r = of.send(&hello("OpenFaaS"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, OpenFaaS!");
    assert!(
        r.header("x-duration-seconds").is_some(),
        "not through the watchdog"
    );
    let line =
        of.f.wait_for_log("listening on", Duration::from_secs(1))
            .expect("no start-up line");
    assert!(line.contains(&format!("http://{}", of.upstream)), "{line}");
    assert!(line.contains(r#""platform":"openfaas""#), "{line}");
}

#[test]
fn openfaas_forwarded_request_arrives_whole_with_a_chunked_body() {
    let of = OpenFaas::start("http-echo", &[], None);
    let body = "a body the watchdog streams on, chunked".repeat(100);
    let r = of.send(
        &Request::new(
            "PUT",
            "/orders/7?expand=items&expand=total",
            body.clone().into_bytes(),
        )
        .header("x-custom", "kept")
        .header("x-call-id", "call-7f3a")
        .header("content-type", "text/plain"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["path"], "/orders/7");
    assert_eq!(v["query"], "expand=items&expand=total");
    assert_eq!(v["body"], body);
    assert_eq!(v["platform"], "openfaas");
    // The gateway's call id is the request id, as in the watchdog's access log.
    assert_eq!(v["request_id"], "call-7f3a");
    let headers = &v["headers"];
    assert_eq!(headers["x-custom"], "kept");
    assert_eq!(headers["host"], "localhost", "Host is forwarded as sent");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert!(headers.get("content-length").is_none(), "{headers}");
}

#[test]
fn openfaas_chunked_body_over_the_limit_gets_413_and_the_next_request_is_served() {
    let of = OpenFaas::start("http-echo", &[("FNKIT_MAX_BODY_BYTES", "1024")], None);
    // 1 MiB: more than the socket buffers hold, so the watchdog is still sending when fnkit
    // answers. fnkit reads and drops the rest, or the watchdog's write would fail and turn the
    // 413 into its own 500 (golang/go#51109).
    let r = of.send(&Request::post("/", vec![b'x'; 1024 * 1024]));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.header("x-openfaas-internal").is_none(),
        "the watchdog's answer, not fnkit's"
    );
    assert_eq!(r.json()["error"], "PayloadTooLarge");
    let r = of.send(&Request::post("/", vec![b'y'; 1024]));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["transfer-encoding"], "chunked");
}

#[test]
fn openfaas_47_handler_past_exec_timeout_gets_504_and_fnkit_stays_alive() {
    let exec = Duration::from_secs(1);
    let mut of = OpenFaas::start("http-echo", &[("exec_timeout", "1s")], Some(exec));
    let sent = Instant::now();
    let r = of.send(&Request::get("/sleep?ms=8000"));
    assert_eq!(r.status, 504, "{}", r.text());
    let took = sent.elapsed();
    assert!(
        took >= exec && took < Duration::from_secs(4),
        "504 after {took:?}"
    );
    assert!(of.alive(), "fnkit exited after a timeout");
    let r = of.send(&hello("again"));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn openfaas_47_fnkit_answers_504_itself_at_exec_timeout_and_frees_its_slot() {
    // The watchdog's own limit is off here, so the answer is fnkit's.
    let env = [("exec_timeout", "1s"), ("max_inflight", "1")];
    let mut of = OpenFaas::start("http-echo", &env, None);
    let r = of.send(&Request::get("/sleep?ms=8000"));
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"], "Timeout");
    assert!(r.header("x-openfaas-internal").is_none());
    assert!(of.alive());
    let r = of.send(&Request::get("/next"));
    assert_eq!(
        r.status,
        200,
        "the timed-out request still holds its slot: {}",
        r.text()
    );
}

#[test]
fn openfaas_47_a_request_the_watchdog_gave_up_on_frees_its_slot() {
    // The watchdog cuts the request at 300 ms (as an `X-Timeout: 300ms` header does) while
    // fnkit's own limit is 10 s: when the watchdog drops the connection, fnkit must drop the
    // handler, or its max_inflight slot stays taken and the next request gets 429.
    let env = [("exec_timeout", "10s"), ("max_inflight", "1")];
    let mut of = OpenFaas::start("http-echo", &env, Some(Duration::from_millis(300)));
    let r = of.send(&Request::get("/sleep?ms=10000"));
    assert_eq!(r.status, 504);
    assert_eq!(r.header("x-openfaas-internal"), Some("of-watchdog"));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let r = of.send(&Request::get("/after"));
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "the abandoned request still holds the slot"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(of.alive());
}

#[test]
fn openfaas_48_second_concurrent_request_past_max_inflight_gets_429() {
    let of = OpenFaas::start("http-echo", &[("max_inflight", "1")], None);
    let watchdog = of.watchdog.addr;
    let slow = std::thread::spawn(move || request(watchdog, &Request::get("/sleep?ms=3000")));
    let refused = first_429(|r| of.send(r), Duration::from_secs(3));
    assert_eq!(refused.json()["error"], "TooManyRequests");
    let slow = slow.join().expect("the slow request");
    assert_eq!(slow.status, 200, "{}", slow.text());
    // The slot is free again.
    assert_eq!(of.send(&Request::get("/fast")).status, 200);
}

#[test]
fn openfaas_49_health_200_then_503_after_sigterm_while_requests_are_still_served() {
    let env = [("healthcheck_interval", "2s"), ("write_timeout", "1s")];
    let mut of = OpenFaas::start("hello", &env, None);
    assert_eq!(of.send(&Request::get("/_/health")).status, 200);
    let own = of
        .direct(&Request::get("/_/health"))
        .expect("fnkit's /_/health");
    assert_eq!(own.status, 200);
    assert_eq!(own.json()["status"], "ready");

    of.sigterm();
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = of
            .direct(&Request::get("/_/health"))
            .expect("fnkit's /_/health");
        if r.status == 503 {
            assert_eq!(r.json()["status"], "shutting down");
            break;
        }
        assert!(Instant::now() < deadline, "/_/health never turned 503");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(of.send(&Request::get("/_/health")).status, 503);
    assert_eq!(of.send(&Request::get("/_/ready")).status, 503);
    let ready = of.direct(&Request::get("/ready")).expect("fnkit's /ready");
    assert_eq!(ready.status, 503, "ready_path must follow shutdown");
    // Traffic the watchdog still routes during healthcheck_interval is served.
    let r = of.send(&hello("draining"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, draining!");
    assert!(of.alive());
}

#[test]
fn openfaas_50_keeps_accepting_for_healthcheck_interval_plus_write_timeout_then_exits_0() {
    let env = [("healthcheck_interval", "1s"), ("write_timeout", "1s")];
    let window = Duration::from_secs(2);
    let mut of = OpenFaas::start("hello", &env, None);
    let signalled = of.sigterm();
    let deadline = signalled + Duration::from_secs(10);
    let mut last_ok = Duration::ZERO;
    let mut first_failure: Option<Duration> = None;
    let mut record = |sent: Duration, status: std::io::Result<u16>| {
        if matches!(status, Ok(200)) {
            last_ok = sent;
        } else if first_failure.is_none() {
            first_failure = Some(sent);
        }
    };
    let status = loop {
        if let Some(status) = of.f.wait_exit(Duration::ZERO) {
            break status;
        }
        // A new connection each time, straight to fnkit, and a request through the watchdog.
        let sent = signalled.elapsed();
        record(sent, of.direct(&hello("late")).map(|r| r.status));
        let sent = signalled.elapsed();
        record(
            sent,
            try_request(of.watchdog.addr, &hello("late")).map(|r| r.status),
        );
        assert!(
            Instant::now() < deadline,
            "fnkit did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let exited = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    // fnkit starts counting when the signal arrives, a little after `signalled`: a request
    // sent before `window` must be served; 50 ms allow for the time it takes to reach fnkit.
    if let Some(failed) = first_failure {
        assert!(
            failed + Duration::from_millis(50) >= window,
            "a request {failed:?} after SIGTERM was refused (window {window:?})"
        );
    }
    assert!(
        last_ok >= window - Duration::from_millis(300),
        "last request accepted {last_ok:?} after SIGTERM (window {window:?})"
    );
    assert!(
        exited < window + Duration::from_secs(3),
        "exited {exited:?} after SIGTERM"
    );
}

#[test]
fn openfaas_51_panic_is_a_500_and_the_next_request_is_served() {
    let mut of = OpenFaas::start("http-echo", &[], None);
    for _ in 0..2 {
        let r = of.send(&Request::get("/panic"));
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json()["error"], "Panic");
        assert!(
            r.header("x-openfaas-internal").is_none(),
            "answered by fnkit"
        );
        assert!(
            of.alive(),
            "a panic ended the process: the watchdog would Fatalf"
        );
        let r = of.send(&Request::get("/after-panic"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// A fresh directory for secret files, removed on drop.
struct SecretsDir(PathBuf);

impl SecretsDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "fnkit-openfaas-secrets-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for SecretsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn openfaas_52_secret_api_key_is_readable_and_never_shown() {
    const VALUE: &str = "s3cr3t-v4lue-9f2c";
    let dir = SecretsDir::new();
    std::fs::write(dir.0.join("api-key"), format!("{VALUE}\n")).expect("write the secret");
    let dir_s = dir.0.to_string_lossy().into_owned();
    let of = OpenFaas::start(
        "http-echo",
        &[("FNKIT_SECRETS_DIR", &dir_s), ("RUST_LOG", "debug")],
        None,
    );

    for _ in 0..2 {
        let r = of.send(&Request::get("/secret?name=api-key"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["secret_length"], VALUE.len() + 1);
        assert!(!r.text().contains(VALUE));
    }
    let r = of.send(&Request::get("/secret?name=db-password"));
    assert_eq!(r.status, 404, "{}", r.text());
    let message = r.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("db-password"), "{message}");
    assert!(message.contains(&dir_s), "{message}");
    let r = of.send(&Request::get("/secret?name=../etc/passwd"));
    assert_eq!(r.status, 400, "{}", r.text());

    let output = [of.f.logs(), of.f.stderr()].concat().join("\n");
    assert!(
        !output.contains(VALUE),
        "the secret reached the logs: {output}"
    );
}

#[test]
fn openfaas_53_json_log_lines_reach_stdout_unchanged() {
    let mut of = OpenFaas::start("http-echo", &[("RUST_LOG", "debug")], None);
    assert_eq!(of.send(&Request::get("/logged")).status, 200);
    assert_eq!(of.send(&Request::get("/panic")).status, 500);
    let (found, _) =
        of.f.wait_for_output(&["request served", "/panic"], Duration::from_secs(2));
    assert!(found, "no access log line for /panic");
    of.f.signal("KILL");
    of.f.wait_exit(Duration::from_secs(5));
    let lines = of.f.logs();
    assert!(lines.len() >= 4, "{lines:?}");
    for line in &lines {
        // of-watchdog reads lines with a bufio.Scanner of log_buffer_size (64 KiB by default).
        assert!(line.len() < 64 * 1024, "a log line of {} bytes", line.len());
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for key in ["timestamp", "level", "message"] {
            assert!(v.get(key).is_some(), "no {key}: {line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""level":"ERROR""#) && l.contains("panicked")),
        "the panic is not logged: {lines:?}"
    );
    assert!(of.f.stderr().is_empty(), "stderr: {:?}", of.f.stderr());
}

#[test]
fn openfaas_54_template_follows_the_watchdog_contract() {
    // faas-cli itself cannot be installed here (it ships from GitHub releases only), so
    // `faas-cli new`/`build` are not run; `make openfaas-template-check` builds the starter
    // crate and serves a request the way the watchdog would. This checks the files.
    let root = workspace_root().join("openfaas");
    let read = |p: &str| {
        std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("openfaas/{p}: {e}"))
    };
    let template = read("template/fnkit/template.yml");
    for needle in [
        "language: fnkit",
        "fprocess: /home/app/fn",
        "welcome_message:",
    ] {
        assert!(template.contains(needle), "template.yml lacks {needle:?}");
    }
    let dockerfile = read("template/fnkit/Dockerfile");
    for needle in [
        "ghcr.io/openfaas/of-watchdog:0.",
        "COPY --from=watchdog /fwatchdog",
        "x86_64-unknown-linux-musl",
        r#"mode="http""#,
        r#"upstream_url="http://127.0.0.1:8082""#,
        r#"fprocess="/home/app/fn""#,
        r#"FNKIT_PLATFORM="openfaas""#,
        r#"prefix_logs="false""#,
        r#"ready_path="/ready""#,
        "HEALTHCHECK",
        "/tmp",
        "EXPOSE 8080",
        r#"CMD ["/fwatchdog"]"#,
    ] {
        assert!(dockerfile.contains(needle), "Dockerfile lacks {needle:?}");
    }
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("the final stage names a USER");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    let starter = read("template/fnkit/function/Cargo.toml");
    assert!(starter.contains("fnkit"), "{starter}");
    assert!(starter.contains("openfaas"), "{starter}");
    let stack = read("stack.yml");
    for function in ["hello:", "echo-event:", "http-echo:", "lang: dockerfile"] {
        assert!(stack.contains(function), "stack.yml lacks {function:?}");
    }
}

// --- direct mode: no watchdog, fnkit in its place (openfaas/template/fnkit-direct) --------------

/// The final stage's `ENV` of the direct template's Dockerfile, as `name="value"` pairs.
fn direct_template_env() -> Vec<(String, String)> {
    let path = workspace_root().join("openfaas/template/fnkit-direct/Dockerfile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The last ENV: the final stage's (the build stage has one of its own).
    let block = text
        .rsplit("\nENV ")
        .next()
        .filter(|_| text.contains("\nENV "))
        .and_then(|rest| rest.split("\n\n").next())
        .expect("the Dockerfile has an ENV block");
    block
        .split_whitespace()
        .filter_map(|word| {
            let (name, value) = word.split_once('=')?;
            let value = value.strip_prefix('"')?.strip_suffix('"')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `name` started as the direct template's image starts it: its ENV, with `port` moved off 8080
/// to a free port and `overrides` on top; waits until `/_/health` answers 200.
fn start_direct(name: &str, overrides: &[(&str, &str)]) -> FnProcess {
    let image = direct_template_env();
    let value = |k: &str| image.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(value("FNKIT_OPENFAAS_MODE"), Some("direct"), "{image:?}");
    assert_eq!(value("port"), Some("8080"), "{image:?}");
    assert_eq!(value("upstream_url"), None, "{image:?}");
    let port = free_port().to_string();
    let mut env: Vec<(&str, &str)> = image
        .iter()
        .filter(|(n, _)| n != "port" && !overrides.iter().any(|(o, _)| o == n))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    env.push(("port", &port));
    env.extend_from_slice(overrides);
    let addr = SocketAddr::from(([127, 0, 0, 1], port.parse::<u16>().expect("a port")));
    let f = FnProcess::spawn(name, &env, addr);
    f.wait_healthy("/_/health");
    f
}

#[test]
fn openfaas_direct_mode_serves_the_watchdogs_port_and_paths_itself() {
    let f = start_direct("hello", &[]);
    let port = f.addr.port();
    assert!(
        listening("00000000", port),
        "not listening on 0.0.0.0:{port}, where the gateway's traffic arrives"
    );
    let health = f.send(&Request::get("/_/health"));
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ready");
    assert_eq!(f.send(&Request::get("/_/ready")).status, 200);
    let r = f.send(&hello("direct"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, direct!");
    assert!(
        r.header("x-duration-seconds").is_none(),
        "no watchdog in front"
    );
    let line = f
        .wait_for_log("listening on", Duration::from_secs(1))
        .expect("no start-up line");
    assert!(line.contains(&format!("http://0.0.0.0:{port}")), "{line}");
    assert!(line.contains(r#""platform":"openfaas""#), "{line}");
}

#[test]
fn openfaas_direct_mode_answers_429_past_max_inflight_and_504_past_exec_timeout() {
    let f = start_direct(
        "http-echo",
        &[("max_inflight", "1"), ("exec_timeout", "1s")],
    );
    let addr = f.addr;
    let sent = Instant::now();
    let slow = std::thread::spawn(move || request(addr, &Request::get("/sleep?ms=8000")));
    let refused = first_429(|r| f.send(r), Duration::from_secs(1));
    assert_eq!(refused.json()["error"], "TooManyRequests");
    assert!(
        refused.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_inflight")),
        "{}",
        refused.text()
    );
    // Readiness says so too, as of-watchdog's does; health does not.
    let ready = f.send(&Request::get("/_/ready"));
    assert_eq!(ready.status, 429, "{}", ready.text());
    assert_eq!(f.send(&Request::get("/_/health")).status, 200);
    let timed_out = slow.join().expect("the slow request");
    let took = sent.elapsed();
    assert_eq!(timed_out.status, 504, "{}", timed_out.text());
    assert_eq!(timed_out.json()["error"], "Timeout");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "504 after {took:?}"
    );
    // The slot is free again.
    let r = f.send(&Request::get("/fast"));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn openfaas_direct_mode_sigterm_serves_for_healthcheck_interval_then_drains_and_exits_0() {
    let window = Duration::from_secs(1);
    let env = [("healthcheck_interval", "1s"), ("write_timeout", "4s")];
    let mut f = start_direct("http-echo", &env);
    let addr = f.addr;
    // In flight across the whole window: finishes during the drain, after accepting stopped.
    let in_flight = std::thread::spawn(move || request(addr, &Request::get("/sleep?ms=2500")));
    std::thread::sleep(Duration::from_millis(100));
    f.signal("TERM");
    let signalled = Instant::now();
    let deadline = signalled + Duration::from_secs(1);
    loop {
        let r = try_request(addr, &Request::get("/_/health")).expect("/_/health after SIGTERM");
        if r.status == 503 {
            assert_eq!(r.json()["status"], "shutting down");
            break;
        }
        assert!(Instant::now() < deadline, "/_/health never turned 503");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Within healthcheck_interval, new connections are still served, as the watchdog would.
    let r = try_request(addr, &hello("late")).expect("a request during healthcheck_interval");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(signalled.elapsed() < window, "too slow to test the window");
    // Past it, new requests are refused while the in-flight one drains.
    std::thread::sleep((window + Duration::from_millis(400)).saturating_sub(signalled.elapsed()));
    assert!(
        f.wait_exit(Duration::ZERO).is_none(),
        "exited before the in-flight request finished"
    );
    let late = try_request(addr, &hello("too late")).map(|r| r.status);
    assert!(
        !matches!(late, Ok(200)),
        "served {late:?} after healthcheck_interval"
    );
    let drained = in_flight.join().expect("the in-flight request");
    assert_eq!(drained.status, 200, "{}", drained.text());
    let status = f
        .wait_exit(Duration::from_secs(5))
        .expect("still running 5 s after the drain");
    assert!(status.success(), "exit status {status:?}");
    let exited = signalled.elapsed();
    assert!(
        exited < Duration::from_secs(4),
        "exited {exited:?} after SIGTERM"
    );
}

#[test]
fn openfaas_direct_mode_refuses_an_upstream_url() {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let port_s = port.to_string();
    let mut f = FnProcess::spawn(
        "hello",
        &[
            ("FNKIT_PLATFORM", "openfaas"),
            ("FNKIT_OPENFAAS_MODE", "direct"),
            ("port", &port_s),
            ("upstream_url", "http://127.0.0.1:8082"),
        ],
        addr,
    );
    let status = f
        .wait_exit(Duration::from_secs(10))
        .expect("it must not start");
    assert!(!status.success(), "{status:?}");
    // The reader threads may still be collecting the last lines: wait for them.
    let (found, output) = f.wait_for_output(
        &["FNKIT_OPENFAAS_MODE=direct", "upstream_url"],
        Duration::from_secs(2),
    );
    assert!(found, "no start-up error naming both settings: {output}");
}

#[test]
fn openfaas_direct_template_runs_the_function_alone_as_nobody_and_both_build_non_pie() {
    let root = workspace_root().join("openfaas/template");
    let read = |p: &str| {
        std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("template/{p}: {e}"))
    };
    let template = read("fnkit-direct/template.yml");
    assert!(template.contains("language: fnkit-direct"), "{template}");
    let dockerfile = read("fnkit-direct/Dockerfile");
    for needle in [
        "FROM scratch",
        r#"ENTRYPOINT ["/home/app/fn"]"#,
        "USER 65534:65534",
        "EXPOSE 8080",
    ] {
        assert!(
            dockerfile.contains(needle),
            "fnkit-direct/Dockerfile lacks {needle:?}"
        );
    }
    for line in dockerfile.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !line.contains("fwatchdog") && !line.contains("of-watchdog"),
            "{line}"
        );
    }
    assert_eq!(
        dockerfile.lines().rfind(|l| l.starts_with("USER ")),
        Some("USER 65534:65534")
    );
    // Both templates link a non-PIE static binary, as the repository's .cargo/config.toml does,
    // and with the repository's code layout (docs/runtime.md, "Code layout"), which
    // each template carries: its folder is the whole build context.
    let layout = std::fs::read_to_string(workspace_root().join(".cargo/fnkit-layout.ld"))
        .expect(".cargo/fnkit-layout.ld");
    for name in ["fnkit", "fnkit-direct"] {
        let dockerfile = read(&format!("{name}/Dockerfile"));
        for target in ["X86_64", "AARCH64"] {
            let needle = format!(
                r#"CARGO_TARGET_{target}_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static -C link-arg=-Wl,-T,/home/rust/fnkit-layout.ld""#
            );
            assert!(
                dockerfile.contains(&needle),
                "template {name} lacks {needle}"
            );
        }
        assert!(
            dockerfile.contains("COPY fnkit-layout.ld /home/rust/fnkit-layout.ld"),
            "template {name} does not copy its fnkit-layout.ld"
        );
        assert!(
            read(&format!("{name}/fnkit-layout.ld")) == layout,
            "template {name}'s fnkit-layout.ld is not the repository's: run `make layout`"
        );
    }
}

/// Sends `GET /fast` until it gets a 429 (while another request holds the only slot); a request
/// sent before the slow one arrived is served (200) and tried again. Fails after `within`.
fn first_429(
    send: impl Fn(&Request) -> fnkit_tests::Response,
    within: Duration,
) -> fnkit_tests::Response {
    let deadline = Instant::now() + within;
    loop {
        let r = send(&Request::get("/fast"));
        if r.status == 429 {
            return r;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "no 429 while a request was in flight"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
