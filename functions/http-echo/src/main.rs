//! `http-echo`: an HTTP function. Answers JSON describing the request: method, path, query,
//! headers and body (as text).
//!
//! `/stream?chunks=N&ms=M` streams N lines M ms apart (`fail_after=K` fails after K), to show a
//! streamed response on every platform.
//!
//! Two paths exist to show fnkit's failure handling: `/panic` panics (the answer is a 500 and the
//! process goes on serving) and `/sleep?ms=N` waits N milliseconds before answering (past
//! `FNKIT_TIMEOUT_SECS` the answer is a 504). `/secret?name=X` answers `{"secret_length": n}` for
//! the secret `X` (`fnkit::secret`: `FNKIT_SECRETS_DIR`, else `/var/openfaas/secrets`), never
//! its value, or a 404 naming it.
//!
//! `/spin?ms=N` computes for N milliseconds (a busy loop, no `.await`) on the handler's own
//! thread before answering: what a first CPU-bound handler looks like. fnkit still answers
//! `/health`, `/ready` and probes meanwhile, and logs a warning naming the request
//! (`FNKIT_BLOCKED_WARN_MS`). `/spin?ms=N&blocking=1` does the same work through
//! `fnkit::blocking`, off the handler's thread, as CPU-bound work should be run.

use std::collections::BTreeMap;
use std::time::Duration;

use fnkit::http_types::{header, Request, Response, StatusCode};
use fnkit::{Body, Context, Error};

async fn echo(req: Request<Body>, ctx: Context) -> Result<Response<Body>, Error> {
    let path = req.uri().path();
    if path == "/panic" {
        panic!("http-echo was asked to panic");
    }
    if path == "/secret" {
        return secret_length(query_param(req.uri().query(), "name").unwrap_or(""));
    }
    if path == "/stream" {
        return Ok(stream(req.uri().query()));
    }
    if path == "/spin" {
        let query = req.uri().query();
        let ms = query_param(query, "ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let work = Duration::from_millis(ms);
        if query_param(query, "blocking") == Some("1") {
            fnkit::blocking(move || spin(work)).await?;
        } else {
            spin(work);
        }
    }
    if path == "/sleep" {
        let ms = query_param(req.uri().query(), "ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        fnkit::tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let described = serde_json::json!({
        "method": req.method().as_str(),
        "path": path,
        "query": req.uri().query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(req.body().as_bytes()),
        "request_id": ctx.request_id(),
        "platform": ctx.platform().as_str(),
    });
    let body = Body::json(&described)?;
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(Error::internal)
}

/// `{"secret_length": n}` for the secret `name` (never its value); 404 naming it when missing.
fn secret_length(name: &str) -> Result<Response<Body>, Error> {
    let secret = fnkit::secret(name).map_err(|e| match e.kind() {
        fnkit::ErrorKind::NotFound => e.with_status(StatusCode::NOT_FOUND),
        _ => e,
    })?;
    let body = Body::json(&serde_json::json!({ "secret_length": secret.as_bytes().len() }))?;
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(Error::internal)
}

/// `GET /stream?chunks=N&ms=M`: N lines `chunk i\n`, M ms apart, each sent as it is written.
/// With `fail_after=K` the stream fails after K chunks (a cut response; error trailers on
/// Lambda).
fn stream(query: Option<&str>) -> Response<Body> {
    let number = |name, default| {
        query_param(query, name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let (chunks, ms) = (number("chunks", 3), number("ms", 100));
    let fail_after = query_param(query, "fail_after").and_then(|v| v.parse::<u64>().ok());
    let (mut tx, body) = Body::channel();
    fnkit::tokio::spawn(async move {
        for i in 1..=chunks {
            if fail_after.is_some_and(|k| i > k) {
                tx.abort(Error::handler(format!(
                    "the stream was asked to fail after {}",
                    i - 1
                )));
                return;
            }
            if i > 1 {
                fnkit::tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if tx.send(format!("chunk {i}\n")).await.is_err() {
                return; // the client left
            }
        }
    });
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Computes for `work`: a busy loop that never yields, as CPU-bound code does.
fn spin(work: Duration) -> u64 {
    let started = std::time::Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while started.elapsed() < work {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x = std::hint::black_box(x);
    }
    x
}

fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn main() -> Result<(), Error> {
    // Runs once when the platform stops the process, after in-flight requests are answered:
    // the place to flush buffers or close connections.
    fnkit::on_shutdown(|| async { tracing::info!("http-echo: shutdown hook ran") });
    fnkit::run(fnkit::http(echo))
}
