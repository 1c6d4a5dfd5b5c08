//! fnkit's AWS Lambda adapter: runs any fnkit handler as a Lambda custom runtime
//! (`provided.al2023`), through the [Lambda Runtime API].
//!
//! Users do not call this crate: `fnkit::run` calls [`serve_typed`], [`serve_http`] or
//! `serve_events` (by the handler's shape) when `AWS_LAMBDA_RUNTIME_API` is set. What each handler shape means on Lambda:
//!
//! | shape | input | output |
//! |---|---|---|
//! | typed (`fnkit::run(f)`) | the event payload, deserialised into `In` | `Out` as JSON, the response payload |
//! | HTTP (`fnkit::http(f)`) | an API Gateway REST (v1), HTTP API (v2), ALB or Function URL event, as `http::Request` | the response in the shape that event source expects |
//! | CloudEvent (`fnkit::events(f)`) | a structured CloudEvent, or an EventBridge event turned into one | the reply event as structured JSON, or `null` |
//!
//! Errors go to `/runtime/invocation/{id}/error` as `{"errorType","errorMessage"}` where
//! `errorType` is the fnkit [`ErrorKind`](fnkit_core::ErrorKind) name (`InvalidInput`, `HandlerError`, `Panic`,
//! `Timeout`, ...). A panicking handler is reported as `Panic` with `errorMessage` starting
//! `Lambda panicked: `, and the runtime goes on to the next event. A handler still running
//! 50 ms before the invocation's deadline is stopped and reported as `Timeout`, before Lambda
//! ends the sandbox.
//!
//! Before the first `/next`, the runtime checks its environment: a missing
//! `AWS_LAMBDA_FUNCTION_NAME`, `_VERSION` or `_MEMORY_SIZE` is posted to `/runtime/init/error`
//! (`errorType` `Runtime.InvalidConfig`, the message naming the variable) and the entry point
//! returns the error, so the process exits non-zero. (A CloudEvent handler in a build without
//! `cloudevents` does not compile: there is no shape to check at run time.)
//!
//! The [`LambdaContext`] in `Context::extensions()` carries what only Lambda gives: the invoked
//! function ARN, X-Ray trace header, client context, Cognito identity. `_X_AMZN_TRACE_ID` is set
//! to each invocation's trace header (and removed when there is none).
//!
//! ## Why not `lambda_runtime`
//! The runtime loop here is fnkit's own, about 300 lines on hyper's HTTP/1.1 client, rather than
//! `lambda_runtime` 1.5. Its behaviour is the same where `lambda_runtime` is right; it differs
//! where fnkit's contract (docs/platforms.md §1.5–1.6) needs it to, in places a wrapper cannot reach:
//! - `lambda_runtime` `expect()`s `AWS_LAMBDA_FUNCTION_*`, the `Lambda-Runtime-Deadline-Ms` and
//!   request id headers (a panic, so Lambda reports `Runtime.ExitError`), and ends the process on
//!   a malformed client-context or Cognito header, all inside `Runtime::new`/`run` before any
//!   user layer sees the event; it has no public way to post `/runtime/init/error`.
//! - It ignores a non-2xx answer to `/response` (a 413 for a too-large payload is only logged):
//!   fnkit checks the 6 MB limit itself and reports `PayloadTooLarge`.
//! - It deserialises the payload into a Rust type and serialises the response with serde; fnkit's
//!   handlers take and give JSON bytes, so going through it would cost a `RawValue` copy and
//!   validation each way.
//! - Measured by `make bench` (static musl, `opt-level = "s"`, fat LTO, 60 interleaved cold
//!   starts each, 2 cores; BENCHMARKS.md): exec to first `GET /next`, median, and peak RSS —
//!   bare `lambda_runtime` 1.5 hello 1.33 ms / 1,124 KiB / 1,082,240 B; fnkit `hello` built for
//!   Lambda only 0.62 ms / 840 KiB / 836,280 B; fnkit `hello` with every platform 0.94 ms /
//!   1,752 KiB / 1,983,096 B. It needs no tower, futures, async-stream, hyper-util pooled
//!   client or multi-thread runtime.
//!
//! Types come from [`aws_lambda_events`]: the HTTP mapping uses its API Gateway, ALB and Function
//! URL types, and [`aws`] re-exports the event families behind features.
//!
//! With the `lambda-runtime` feature, `LambdaService` turns the same handler into a
//! `tower::Service` for `lambda_runtime::run`, for those who need lambda_runtime's layers or
//! already run on it: the per-invocation mapping is this crate's, the loop lambda_runtime's.
//!
//! ## Features
//! - `cloudevents`: the CloudEvent handler shape (structured CloudEvents and EventBridge).
//! - `lambda-runtime`: `LambdaService`, fnkit handlers under `lambda_runtime` (off by default).
//! - `sqs`, `sns`, `s3`, `eventbridge`, `dynamodb`, `kinesis`, `apigw`: typed events in [`aws`];
//!   `sqs`, `kinesis` and `dynamodb` also give their records a [`batch::BatchRecord`] impl.
//!
//! [Lambda Runtime API]: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

mod client;
mod config;
mod http_event;
mod invoke;
mod shutdown;
mod stream;

#[cfg(feature = "cloudevents")]
mod cloudevent;
#[cfg(feature = "lambda-runtime")]
mod interop;

pub mod batch;

use std::sync::Arc;

#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::EventFunction;
use fnkit_core::adapter::{env_var, HttpFunction, TypedFunction};
use fnkit_core::{Error, FunctionInfo};

use crate::client::{Diagnostic, RuntimeApi};
use crate::config::ApiAddress;

#[cfg(feature = "lambda-runtime")]
pub use interop::{LambdaResponse, LambdaService, ResponseStream};

/// Typed AWS events from [`aws_lambda_events`], for typed handlers: each module is behind the
/// feature of the same name (`apigw`, `alb` and `lambda_function_urls` are always there).
///
/// ```
/// use fnkit_lambda::aws::apigw::ApiGatewayProxyRequest;
/// let req: ApiGatewayProxyRequest = serde_json::from_str(
///     r#"{"httpMethod":"GET","path":"/","headers":null,"requestContext":{"httpMethod":"GET"}}"#)?;
/// assert_eq!(req.path.as_deref(), Some("/"));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod aws {
    pub use crate::batch::{BatchItemFailure, BatchRecord, BatchResponse};
    pub use aws_lambda_events::encodings;
    pub use aws_lambda_events::event::{alb, apigw, lambda_function_urls};

    #[cfg(feature = "dynamodb")]
    pub use aws_lambda_events::event::dynamodb;
    #[cfg(feature = "eventbridge")]
    pub use aws_lambda_events::event::eventbridge;
    #[cfg(feature = "kinesis")]
    pub use aws_lambda_events::event::kinesis;
    #[cfg(feature = "s3")]
    pub use aws_lambda_events::event::s3;
    #[cfg(feature = "sns")]
    pub use aws_lambda_events::event::sns;
    #[cfg(feature = "sqs")]
    pub use aws_lambda_events::event::sqs;
}

/// What Lambda tells about one invocation beyond fnkit's [`Context`](fnkit_core::Context):
/// found in `ctx.extensions().get::<LambdaContext>()`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LambdaContext {
    /// `Lambda-Runtime-Aws-Request-Id` (also `ctx.request_id()`).
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: the deadline in milliseconds since the Unix epoch.
    pub deadline_ms: Option<u64>,
    /// `Lambda-Runtime-Invoked-Function-Arn`: the ARN as invoked (with version or alias).
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`: the X-Ray trace header, also in `_X_AMZN_TRACE_ID`.
    pub xray_trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`: the mobile SDK's client context, as JSON.
    pub client_context: Option<serde_json::Value>,
    /// `Lambda-Runtime-Cognito-Identity`: the mobile SDK's Cognito identity, as JSON.
    pub identity: Option<serde_json::Value>,
    /// `Lambda-Runtime-Aws-Tenant-Id`, for functions with tenant isolation.
    pub tenant_id: Option<String>,
}

/// Serves a typed handler through the Lambda Runtime API at `AWS_LAMBDA_RUNTIME_API`, one
/// invocation at a time, until the Runtime API fails: the payload is the handler's input, its
/// output the response. `fnkit::run` calls this (or [`serve_http`], or `serve_events` with
/// `cloudevents`) by the handler's shape, so a binary links the event mapping of one shape only.
///
/// Call it inside a Tokio runtime with I/O and time enabled (a current-thread one is best:
/// `fnkit::run` builds it).
///
/// # Errors
/// - `AWS_LAMBDA_RUNTIME_API` missing or malformed (there is no one to report to).
/// - An init error, after posting it to `/runtime/init/error`: a missing or malformed
///   `AWS_LAMBDA_FUNCTION_NAME`, `_VERSION` or `_MEMORY_SIZE`.
/// - The Runtime API failing (a transport error or a non-2xx answer to `/next`): Lambda then
///   starts a new sandbox.
pub async fn serve_typed(
    function: Arc<dyn TypedFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    serve_dispatch(function, info).await
}

/// How many invocations the runtime runs at once: `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed
/// Instances), 1 when unset or not a number. With more than one, fnkit keeps that many `/next`
/// requests outstanding, leaves `_X_AMZN_TRACE_ID` alone (one process-wide variable cannot be
/// each invocation's: the trace is in `Context::trace()`), and logs JSON only.
pub fn max_concurrency() -> usize {
    config::max_concurrency(env_var).unwrap_or(1)
}

/// [`serve_typed`] for an HTTP handler: API Gateway (REST and HTTP API), ALB and Function URL
/// events become `http::Request`s, and its response goes back in the shape the source expects.
///
/// # Errors
/// As [`serve_typed`].
pub async fn serve_http(
    function: Arc<dyn HttpFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    serve_dispatch(function, info).await
}

/// [`serve_typed`] for a CloudEvent handler: a structured CloudEvent payload, or an EventBridge
/// event turned into one.
///
/// # Errors
/// As [`serve_typed`].
#[cfg(feature = "cloudevents")]
pub async fn serve_events(
    function: Arc<dyn EventFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    serve_dispatch(function, info).await
}

/// The payload decoding of the CloudEvent and HTTP shapes, without the Runtime API, for the
/// property tests (`tests/properties.rs`) and the fuzz targets (`fuzz/`): thin wrappers over the
/// crate's own functions. Behind the `fuzzing` feature, off by default; not a public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use fnkit_core::cloudevents::Event;
    use fnkit_core::{Body, Error};

    /// Reads a payload as the CloudEvent shape does: an EventBridge event (an object with
    /// `detail-type` and no `specversion`) turned into a CloudEvent, else a structured one.
    ///
    /// # Errors
    /// `InvalidEvent`, as the CloudEvent shape reports it.
    pub fn decode_event(payload: &[u8]) -> Result<Event, Error> {
        crate::cloudevent::to_event(payload)
    }

    /// Reads a payload as the HTTP shape does: the event source (API Gateway REST or HTTP API,
    /// ALB, Function URL), then the `http::Request` the handler would get.
    ///
    /// # Errors
    /// `InvalidInput`, as the HTTP shape reports it.
    pub fn decode_http_event(payload: &[u8]) -> Result<http::Request<Body>, Error> {
        let source = crate::http_event::detect(payload)?;
        crate::http_event::to_request(source, payload)
    }
}

async fn serve_dispatch<D: invoke::Dispatch + ?Sized + 'static>(
    function: Arc<D>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    let address = ApiAddress::parse(env_var("AWS_LAMBDA_RUNTIME_API").as_deref())?;
    let mut api = RuntimeApi::new(address)?;

    let init = config::check_function_env(env_var).and_then(|()| config::max_concurrency(env_var));
    let concurrency = match init {
        Ok(n) => n,
        Err(e) => {
            let diagnostic = Diagnostic {
                error_type: config::INVALID_CONFIG,
                error_message: e.message(),
            };
            if let Err(post) = api.init_error(&diagnostic).await {
                tracing::error!(error = %post, "could not post /runtime/init/error");
            }
            return Err(e);
        }
    };
    // Only with a shutdown hook: the extension that makes Lambda send SIGTERM, registered before
    // the first `/next` ends init. Without one, nothing is registered and no signal handled.
    let sigterm = if fnkit_core::adapter::has_shutdown_hooks() {
        shutdown::prepare(&mut api).await?
    } else {
        None
    };
    let platform = info.platform;
    fnkit_core::adapter::observe::ready(platform);
    let serving = invoke::serve(api, function, info, concurrency);
    match sigterm {
        None => serving.await,
        Some(mut sigterm) => {
            tokio::select! {
                result = serving => result,
                () = sigterm.recv() => {
                    shutdown::run_hooks(platform).await;
                    Ok(())
                }
            }
        }
    }
}
