//! A stand-in for of-watchdog in HTTP mode, for `make bench` only: what a function behind a
//! watchdog pays for the second process and the second loopback hop.
//!
//! Like the watchdog it starts `fprocess` once (split on whitespace, no shell) with its own
//! environment plus `upstream_url`, listens on `0.0.0.0:$PORT` (8080), and forwards every request
//! (method, URI, headers with `Host`, body streamed) over a keep-alive HTTP/1.1 connection to the
//! upstream, streaming the answer back. One upstream connection per client connection, opened at
//! its first request: with keep-alive clients that is what Go's pooled transport settles into.
//!
//! Where it differs, on purpose: until the function listens it retries the upstream connect (for
//! up to 5 s) instead of answering 500, so that a cold start through it measures exec of both
//! processes → the first answer (the real watchdog keeps traffic away with `ready_path` instead).
//! It enforces no timeouts or `max_inflight` and serves no `/_/*` paths. Written in Rust on tokio
//! and hyper, it is smaller than the Go watchdog: its memory is a lower bound of a watchdog's.
//!
//! The function is started with `PR_SET_PDEATHSIG`, so it dies with the proxy even when the
//! proxy is killed with SIGKILL (the harness ends each run that way).

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, hyper::Error>;

/// How long the first request waits for the function to listen.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

fn main() -> Result<(), BoxError> {
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;
    let fprocess = std::env::var("fprocess").map_err(|_| "fprocess is not set")?;
    let mut words = fprocess.split_whitespace();
    let program = words.next().ok_or("fprocess is empty")?;
    // A loopback port for the function, as `upstream_url` tells it.
    let upstream: SocketAddr = StdListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?;
    let mut function = Command::new(program);
    function
        .args(words)
        .env("upstream_url", format!("http://{upstream}"))
        .stdin(Stdio::null());
    // SAFETY: `prctl` is async-signal-safe and touches no memory of the parent; it runs in the
    // child between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        function.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = function.spawn()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve(SocketAddr::from(([0, 0, 0, 0], port)), upstream));
    let _ = child.kill();
    let _ = child.wait();
    served
}

async fn serve(addr: SocketAddr, upstream: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::task::spawn(async move {
            let conn: Arc<Mutex<Option<SendRequest<Incoming>>>> = Arc::default();
            let service = service_fn(move |req| forward(conn.clone(), upstream, req));
            // A broken connection is that client's problem, not the proxy's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Forwards one request on this client connection's upstream connection (opened or reopened
/// as needed) and streams the answer back; 502 when the upstream cannot be reached.
async fn forward(
    conn: Arc<Mutex<Option<SendRequest<Incoming>>>>,
    upstream: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let mut slot = conn.lock().await;
    if slot.as_ref().is_none_or(SendRequest::is_closed) {
        match connect(upstream).await {
            Ok(sender) => *slot = Some(sender),
            Err(e) => return Ok(bad_gateway(&e.to_string())),
        }
    }
    let Some(sender) = slot.as_mut() else {
        return Ok(bad_gateway("no upstream connection"));
    };
    if sender.ready().await.is_err() {
        *slot = None;
        return Ok(bad_gateway("the upstream connection closed"));
    }
    match sender.send_request(req).await {
        Ok(res) => Ok(res.map(BodyExt::boxed)),
        Err(e) => {
            *slot = None;
            Ok(bad_gateway(&e.to_string()))
        }
    }
}

async fn connect(upstream: SocketAddr) -> Result<SendRequest<Incoming>, BoxError> {
    let since = Instant::now();
    let stream = loop {
        match TcpStream::connect(upstream).await {
            Ok(s) => break s,
            Err(e) if since.elapsed() > CONNECT_WITHIN => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_micros(200)).await,
        }
    };
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::task::spawn(connection);
    Ok(sender)
}

fn bad_gateway(why: &str) -> Response<Body> {
    let body = format!(r#"{{"error":"BadGateway","message":"stand-in proxy: {why}"}}"#);
    let mut res = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *res.status_mut() = StatusCode::BAD_GATEWAY;
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}
