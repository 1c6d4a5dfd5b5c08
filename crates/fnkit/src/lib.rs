//! # fnkit
//!
//! Write **one handler** and run it, unchanged, on AWS Lambda, Knative, OpenFaaS or locally.
//! The binary finds out where it runs from a few environment variables and starts the right
//! runtime, on one thread, in about a millisecond.
//!
//! ```no_run
//! use fnkit::{Context, Error};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Order { id: u64 }
//!
//! #[derive(Serialize)]
//! struct Receipt { id: u64, request: String }
//!
//! async fn handle(order: Order, ctx: Context) -> Result<Receipt, Error> {
//!     Ok(Receipt { id: order.id, request: ctx.request_id().to_owned() })
//! }
//!
//! fn main() -> Result<(), fnkit::Error> {
//!     fnkit::run(handle)
//! }
//! ```
//!
//! Three shapes of handler, all `async`:
//! - **typed**: `async fn(In, Context) -> Result<Out, E>`, `In: Deserialize`, `Out: Serialize`.
//!   JSON bodies, Lambda payloads and CloudEvent `data` are the input.
//! - **HTTP**: `fnkit::run(fnkit::http(f))` with
//!   `async fn(http::Request<Body>, Context) -> Result<http::Response<Body>, E>`.
//! - **CloudEvent**: `fnkit::run(fnkit::events(f))` with
//!   `async fn(Event, Context) -> Result<Option<Event>, E>`.
//!
//! `E` is anything that converts into [`Error`], which carries a [kind](ErrorKind) and an HTTP
//! status. A struct implementing [`Handler`] keeps state built once at start-up.
//!
//! ## Platforms and features
//! | feature | platform | detected by |
//! |---|---|---|
//! | `lambda` | AWS Lambda (Runtime API) | `AWS_LAMBDA_RUNTIME_API` |
//! | `knative` | Knative Serving / local HTTP | `K_SERVICE`; nothing set means local |
//! | `openfaas` | OpenFaaS (of-watchdog, HTTP mode) | `upstream_url` or `fprocess` |
//! | `http` | Knative, OpenFaaS and local, plain JSON only (no CloudEvents) | as above |
//!
//! `FNKIT_PLATFORM=lambda|knative|openfaas|local` overrides detection. The platform features are
//! on by default; a function that only ships to one platform turns the others off to build a smaller
//! binary. `json-logs` (default) installs a JSON-lines log subscriber on stdout; `cloudevents`
//! (implied by `knative` and `openfaas`) enables [`events()`] and CloudEvents over HTTP;
//! `multi-thread` (off by default) runs more than one worker thread where the CPU quota asks
//! (without it, one whatever the quota: 70 KB less binary and 130 KiB less peak RSS).
//!
//! `http` is the HTTP runtime alone, one binary for all three HTTP platforms, with typed and
//! [`http()`] handlers over HTTP/1.1 and without cloudevents-sdk: the smallest HTTP build, for
//! functions that take plain JSON. A CloudEvent sent to it (`ce-*` headers, or a `Content-Type`
//! of `application/cloudevents+json` or `application/cloudevents-batch+json`) is answered
//! `415 Unsupported Media Type` naming the `cloudevents` feature; it never reaches the handler as
//! plain JSON.
//!
//! ## Configuration (HTTP platforms)
//! `PORT` (8080), `FNKIT_MAX_BODY_BYTES` (6 MiB), `FNKIT_TIMEOUT_SECS` (300),
//! `FNKIT_SHUTDOWN_TIMEOUT_SECS` (25), `RUST_LOG` (info).
//!
//! Everywhere: `FNKIT_WORKERS` (from the CPU quota; 1 without one) and `FNKIT_BLOCKED_WARN_MS`
//! (100; 0 turns the warning off) — see [`run`] and [`blocking`].

#[cfg(feature = "json-logs")]
mod logging;
mod runtime;

pub use runtime::blocking;

/// A guide to the three handler shapes, state, and errors (its examples are compiled as tests).
#[cfg(feature = "cloudevents")]
#[doc = include_str!("../docs/handlers.md")]
pub mod guide {}

#[cfg(feature = "cloudevents")]
pub use fnkit_core::{cloudevents, cloudevents::Event, events, Events};
pub use fnkit_core::{
    http, on_shutdown, secret, Body, BodySender, Context, Error, ErrorKind, FunctionInfo, Handler,
    Http, IntoFunction, Platform, Secret, TraceContext,
};

/// What only Lambda gives: the invocation's [`LambdaContext`](lambda::LambdaContext) (in
/// `ctx.extensions()`), typed AWS events for typed handlers (each family behind the feature of its
/// name: `sqs`, `sns`, `s3`, `eventbridge`, `dynamodb`, `kinesis`; `apigw`, `alb` and
/// `lambda_function_urls` always), the partial batch response
/// ([`BatchResponse`](lambda::BatchResponse)), and with `lambda-runtime`,
/// `service(handler)` for `lambda_runtime::run`.
///
/// ```
/// # #[cfg(feature = "sqs")] {
/// use fnkit::lambda::sqs::SqsEvent;
/// use fnkit::lambda::{BatchRecord, BatchResponse};
/// # }
/// ```
#[cfg(feature = "lambda")]
pub mod lambda {
    pub use fnkit_lambda::aws::*;
    pub use fnkit_lambda::LambdaContext;
    #[cfg(feature = "lambda-runtime")]
    pub use fnkit_lambda::{LambdaResponse, LambdaService, ResponseStream};
    #[cfg(feature = "lambda-runtime")]
    pub use interop::service;

    #[cfg(feature = "lambda-runtime")]
    mod interop {
        use std::sync::Arc;

        #[cfg(feature = "cloudevents")]
        use fnkit_core::adapter::EventFunction;
        use fnkit_core::adapter::{HttpFunction, ShapeVisitor, TypedFunction};
        use fnkit_core::{FunctionInfo, IntoFunction, Platform};
        use fnkit_lambda::LambdaService;

        /// Any fnkit handler (typed, [`http`](crate::http()) or `events`) as a `tower::Service`
        /// for [`lambda_runtime`](https://docs.rs/lambda_runtime) (feature `lambda-runtime`), to
        /// run on lambda_runtime's loop, with its layers, instead of fnkit's:
        ///
        /// ```no_run
        /// use fnkit::{Context, Error};
        ///
        /// async fn handle(name: String, _ctx: Context) -> Result<String, Error> {
        ///     Ok(format!("Hello, {name}!"))
        /// }
        ///
        /// fn main() -> Result<(), lambda_runtime::Error> {
        ///     // Or `#[tokio::main]`: one thread is all one invocation at a time needs.
        ///     let runtime = fnkit::tokio::runtime::Builder::new_current_thread()
        ///         .enable_all()
        ///         .build()?;
        ///     runtime.block_on(lambda_runtime::run(fnkit::lambda::service(handle)))
        /// }
        /// ```
        ///
        /// Each invocation is mapped as fnkit's own loop maps it (the same
        /// [`Context`](crate::Context) and [`LambdaContext`](crate::lambda::LambdaContext),
        /// deadline, panic guard, HTTP and CloudEvent shapes), and an error is the same document,
        /// `errorType` the [`ErrorKind`](crate::ErrorKind) name. What stays lambda_runtime's
        /// (malformed JSON, the client context, the error-type header, logs, shutdown hooks) is
        /// listed on [`LambdaService`]. `fnkit::run` stays the default: its loop starts faster and
        /// is smaller (the README's "fnkit's loop or lambda_runtime" has the figures).
        ///
        /// The function's name, version and memory size are read from the environment here, once.
        pub fn service<M>(handler: impl IntoFunction<M>) -> LambdaService {
            let info = Arc::new(FunctionInfo::from_env(Platform::Lambda));
            handler.visit(ToService(info))
        }

        /// Wraps a handler of each shape in its [`LambdaService`].
        struct ToService(Arc<FunctionInfo>);

        impl ShapeVisitor for ToService {
            type Output = LambdaService;

            fn typed(self, function: Arc<dyn TypedFunction>) -> LambdaService {
                LambdaService::typed(function, self.0)
            }

            fn http(self, function: Arc<dyn HttpFunction>) -> LambdaService {
                LambdaService::http(function, self.0)
            }

            #[cfg(feature = "cloudevents")]
            fn event(self, function: Arc<dyn EventFunction>) -> LambdaService {
                LambdaService::events(function, self.0)
            }
        }
    }
}

/// Re-exported so handlers can build requests and responses without naming the `http` crate.
pub use ::http as http_types;
/// The Tokio runtime fnkit runs on (timers, I/O, `spawn`), re-exported so functions use the
/// same version.
pub use tokio;

use std::sync::Arc;

#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::EventFunction;
use fnkit_core::adapter::{HttpFunction, ShapeVisitor, TypedFunction};

/// Runs `handler` on the platform the process finds itself on, until the platform stops it.
///
/// Installs the log subscriber, detects the platform ([`Platform::detect`]), builds the Tokio
/// runtime and serves. Returns `Ok(())` after a graceful shutdown (SIGTERM or SIGINT), so `main`
/// exits 0.
///
/// The runtime is current-thread (one thread: the cheapest start) at one worker, which is the
/// default and what a container with at most one CPU of quota gets; a CPU quota above one CPU
/// (cgroup v2 `cpu.max` or v1 `cpu.cfs_quota_us`), or `FNKIT_WORKERS=N`, gives a multi-thread
/// runtime of ⌈quota⌉ (or N) workers, never more than the CPUs the process may run on, in a
/// binary built with the `multi-thread` feature (off by default). On Lambda
/// one worker unless `AWS_LAMBDA_MAX_CONCURRENCY` > 1. On the HTTP platforms, health, readiness
/// and probe requests are answered even while a handler holds every worker; CPU-bound work
/// belongs in [`blocking`]. The repository's `docs/runtime.md` has the details and their costs.
///
/// # Errors
/// A configuration error (an unknown `FNKIT_PLATFORM`, a bad `PORT`, `FNKIT_WORKERS` or
/// `FNKIT_BLOCKED_WARN_MS`, a port already in use, a platform this binary was built without),
/// named in the error's message.
pub fn run<M>(handler: impl IntoFunction<M>) -> Result<(), Error> {
    let detected = Platform::detect();
    #[cfg(feature = "json-logs")]
    logging::init(*detected.as_ref().unwrap_or(&Platform::Local));
    let platform = detected.inspect_err(|e| {
        tracing::error!(error = e.kind().as_str(), "{}", e.message());
    })?;
    install_panic_hook();
    let info = Arc::new(FunctionInfo::from_env(platform));
    // One worker (current-thread) unless the CPU quota or FNKIT_WORKERS says more
    // (docs/runtime.md).
    let runtime = runtime::build(platform).inspect_err(|e| {
        tracing::error!(error = e.kind().as_str(), "{}", e.message());
    })?;
    // Feature `metrics`: counts invocations unless FNKIT_METRICS=off (docs/metrics.md).
    #[cfg(feature = "metrics")]
    fnkit_metrics::install();
    // Feature `otel`: spans to OTEL_EXPORTER_OTLP_ENDPOINT when it is set (docs/tracing.md).
    #[cfg(feature = "otel")]
    fnkit_otel::install();
    // The shape is resolved at compile time: each platform's entry point of that one shape is
    // linked (a typed function carries no API Gateway types), and nothing is matched per request.
    let result = handler.visit(Launch {
        info,
        runtime: &runtime,
    });
    if let Err(e) = &result {
        tracing::error!(error = e.kind().as_str(), "{}", e.message());
    }
    result
}

/// Starts the serving loop of a handler's shape on the detected platform.
struct Launch<'a> {
    info: Arc<FunctionInfo>,
    #[cfg_attr(not(any(feature = "lambda", feature = "http")), allow(dead_code))]
    runtime: &'a tokio::runtime::Runtime,
}

/// Picks the platform's entry point for one shape: `$lambda` on Lambda, `$http` elsewhere, or a
/// "built without" error where the binary lacks that platform's feature.
macro_rules! launch {
    ($self:ident, $function:ident, $lambda:path, $http:path) => {{
        let Launch { info, runtime } = $self;
        if info.platform == Platform::Lambda {
            #[cfg(feature = "lambda")]
            return runtime.block_on($lambda($function, info));
            #[cfg(not(feature = "lambda"))]
            return Err(not_built("lambda", "lambda"));
        }
        #[cfg(feature = "http")]
        return runtime.block_on($http($function, info));
        #[cfg(not(feature = "http"))]
        {
            let _ = ($function, runtime);
            Err(not_built(info.platform.as_str(), "knative"))
        }
    }};
}

impl ShapeVisitor for Launch<'_> {
    type Output = Result<(), Error>;

    fn typed(self, function: Arc<dyn TypedFunction>) -> Self::Output {
        launch!(
            self,
            function,
            fnkit_lambda::serve_typed,
            fnkit_http::serve_typed
        )
    }

    fn http(self, function: Arc<dyn HttpFunction>) -> Self::Output {
        launch!(
            self,
            function,
            fnkit_lambda::serve_http,
            fnkit_http::serve_http
        )
    }

    #[cfg(feature = "cloudevents")]
    fn event(self, function: Arc<dyn EventFunction>) -> Self::Output {
        launch!(
            self,
            function,
            fnkit_lambda::serve_events,
            fnkit_http::serve_events
        )
    }
}

/// Reports panics as log lines (JSON with `json-logs`) instead of the default stderr text, on
/// every platform. The runtimes catch a handler's panic and answer with an error; this only
/// records where it was. Left alone when no subscriber is installed, so a panic is never silent.
fn install_panic_hook() {
    if !tracing::dispatcher::has_been_set() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let message = fnkit_core::adapter::panic_message(info.payload())
            .unwrap_or("a non-string panic payload");
        match info.location() {
            Some(at) => tracing::error!(panic.location = %at, "panicked: {message}"),
            None => tracing::error!("panicked: {message}"),
        }
    }));
}

#[cfg_attr(all(feature = "lambda", feature = "http"), allow(dead_code))]
fn not_built(platform: &str, feature: &str) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!(
            "this binary runs on {platform} but was built without fnkit's `{feature}` feature; \
             enable it in Cargo.toml or set FNKIT_PLATFORM to a platform it was built with"
        ),
    )
}
