//! `lambda-probe`: a typed function for fnkit's Lambda conformance tests (not an example).
//!
//! `{"action": ...}` picks what it does:
//! - `"report"` (default): answers what the invocation looks like from inside: request id,
//!   deadline, remaining time, function identity, trace header and `_X_AMZN_TRACE_ID`, the
//!   invoked ARN, client context and Cognito identity.
//! - `"fail"`: returns a handler error. `"panic"`: panics.
//! - `"sleep"` with `"ms"`: waits that long (asynchronously), logs `probe slept` and answers its
//!   request id.
//! - `"big"` with `"bytes"`: answers a JSON string of that many bytes.
//! - `"log"`: logs one line at each level from TRACE to ERROR.
//!
//! `"count"` must be a number when present, to show a payload that does not fit.
//!
//! With `PROBE_SHUTDOWN_HOOK` set, it sets an `on_shutdown` hook that logs
//! `probe shutdown hook ran`.
//!
//! With `PROBE_SHAPE=http` it is an HTTP function instead: it answers 200 with what it saw
//! (method, path, query, headers, body) as JSON, a header and two cookies; `/fail` is a handler
//! error, `/panic` panics.
//!
//! `PROBE_LOOP` picks the runtime loop: fnkit's (unset), or `lambda_runtime` or
//! `lambda_runtime_concurrent`, for the same handler run by `lambda_runtime::run` or
//! `run_concurrent` through `fnkit::lambda::service` (tests/integration/lambda/interop.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use fnkit::http_types::{header, Request, Response};
use fnkit::lambda::LambdaContext;
use fnkit::{Body, Context, Error};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    bytes: Option<usize>,
    #[serde(default)]
    count: Option<u32>,
}

async fn probe(input: Option<Probe>, ctx: Context) -> Result<Value, Error> {
    let input = input.unwrap_or_default();
    match input.action.as_deref().unwrap_or("report") {
        "fail" => Err(Error::handler("the probe was asked to fail")),
        "panic" => panic!("the probe was asked to panic"),
        "sleep" => {
            fnkit::tokio::time::sleep(Duration::from_millis(input.ms.unwrap_or(1000))).await;
            tracing::info!("probe slept");
            Ok(json!({"slept_ms": input.ms, "request_id": ctx.request_id()}))
        }
        "big" => Ok(Value::String("x".repeat(input.bytes.unwrap_or(0)))),
        "log" => {
            tracing::trace!("probe trace line");
            tracing::debug!("probe debug line");
            tracing::info!(answer = 42, "probe info line");
            tracing::warn!("probe warn line");
            tracing::error!("probe error line");
            Ok(json!({"logged": true}))
        }
        "report" => Ok(report(&ctx, input.count)),
        other => Err(Error::invalid_input(format!("unknown action {other:?}"))),
    }
}

fn report(ctx: &Context, count: Option<u32>) -> Value {
    let lambda = ctx.extensions().get::<LambdaContext>();
    let remaining_ms = |c: &Context| c.remaining_time().map(|d| d.as_millis() as u64);
    let first = remaining_ms(ctx);
    let second = remaining_ms(ctx);
    json!({
        "request_id": ctx.request_id(),
        "deadline_ms": ctx.deadline_ms(),
        "remaining_ms": [first, second],
        "function_name": ctx.function_name(),
        "function_version": ctx.function_version(),
        "memory_mb": ctx.function().memory_mb,
        "xray_trace_id": ctx.trace().xray_trace_id,
        "trace_env": std::env::var("_X_AMZN_TRACE_ID").ok(),
        "invoked_function_arn": lambda.map(|l| l.invoked_function_arn.clone()),
        "client_context": lambda.and_then(|l| l.client_context.clone()),
        "identity": lambda.and_then(|l| l.identity.clone()),
        "count": count,
    })
}

async fn http_probe(req: Request<Body>, ctx: Context) -> Result<Response<Body>, Error> {
    match req.uri().path() {
        "/fail" => return Err(Error::handler("the probe was asked to fail")),
        "/panic" => panic!("the probe was asked to panic"),
        _ => {}
    }
    let mut headers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.entry(name.as_str()).or_default().push(value);
    }
    let seen = json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "headers": headers,
        "body": String::from_utf8_lossy(req.body().as_bytes()),
        "request_id": ctx.request_id(),
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-probe", "1")
        .header(header::SET_COOKIE, "a=1")
        .header(header::SET_COOKIE, "b=2; Path=/")
        .body(Body::json(&seen)?)
        .map_err(Error::internal)
}

fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var_os("PROBE_SHUTDOWN_HOOK").is_some() {
        fnkit::on_shutdown(|| async { tracing::info!("probe shutdown hook ran") });
    }
    let http = std::env::var("PROBE_SHAPE").is_ok_and(|s| s == "http");
    let service = || {
        if http {
            fnkit::lambda::service(fnkit::http(http_probe))
        } else {
            fnkit::lambda::service(probe)
        }
    };
    match std::env::var("PROBE_LOOP").as_deref() {
        Ok("lambda_runtime") => block_on(lambda_runtime::run(service()))?,
        Ok("lambda_runtime_concurrent") => block_on(lambda_runtime::run_concurrent(service()))?,
        _ if http => Ok(fnkit::run(fnkit::http(http_probe))?),
        _ => Ok(fnkit::run(probe)?),
    }
}

/// Runs `f` on a current-thread runtime, as `fnkit::run` does its loop.
fn block_on<F: std::future::Future>(f: F) -> std::io::Result<F::Output> {
    let runtime = fnkit::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(f))
}
