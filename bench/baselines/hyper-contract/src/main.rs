//! Baseline for issue 12's HTTP-only cold-start target: bare hyper (as `hyper-hello`) plus only
//! what every platform contract in docs/platforms.md asks of a function server, and nothing of
//! fnkit's:
//!
//! - the request body read as JSON and the answer written as JSON (`hello`'s own work);
//! - a header-read timeout (a client that sends its headers slowly is cut off) and a time limit
//!   on the handler: Tokio's time driver;
//! - SIGTERM handled, so that the server stops accepting and drains (Tokio's signal driver).
//!
//! No request id, trace context, probes, panic guard, logging or configuration: a lower bound
//! for a function server on hyper, not a usable one. `make bench` builds it non-PIE, as fnkit's
//! builds are (`bench-bins/hyper-contract-nopie`), and shows it as the `hyper-contract` row: the
//! floor under the HTTP-only cold-start and the warm targets (bench/README.md).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Default, Deserialize)]
struct Greeting {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize)]
struct Reply {
    message: String,
}

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let work = async {
        let body = req.into_body().collect().await.ok()?.to_bytes();
        let greeting: Greeting = if body.is_empty() {
            Greeting::default()
        } else {
            serde_json::from_slice(&body).ok()?
        };
        let name = greeting.name.unwrap_or_else(|| "world".to_owned());
        serde_json::to_vec(&Reply {
            message: format!("Hello, {name}!"),
        })
        .ok()
    };
    let (status, body) = match tokio::time::timeout(Duration::from_secs(300), work).await {
        Ok(Some(body)) => (StatusCode::OK, body),
        Ok(None) => (
            StatusCode::BAD_REQUEST,
            br#"{"error":"bad input"}"#.to_vec(),
        ),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            br#"{"error":"timeout"}"#.to_vec(),
        ),
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

fn main() -> Result<(), BoxError> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 8080,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?
        .block_on(serve(SocketAddr::from(([0, 0, 0, 0], port))))
}

async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let listener = TcpListener::bind(addr).await?;
    loop {
        tokio::select! {
            _ = sigterm.recv() => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                stream.set_nodelay(true)?;
                tokio::task::spawn(async move {
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(TokioIo::new(stream), service_fn(hello))
                        .await;
                });
            }
        }
    }
}
