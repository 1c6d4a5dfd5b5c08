//! The invocation loop: `/next`, run the handler (bounded by the deadline, panics caught),
//! `/response` or `/error`, and again (docs/platforms.md §1.1–1.6).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fnkit_core::adapter::logscope::{self, RequestLog};
use http::{HeaderMap, StatusCode};

#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::EventFunction;
use fnkit_core::adapter::{
    guard, observe, trace_context, BoxFuture, HttpFunction, Limit, Payload, TraceInput,
    TypedFunction,
};
use fnkit_core::{Context, Error, ErrorKind, FunctionInfo, TraceContext};

use crate::client::{Diagnostic, RuntimeApi};
use crate::stream::{StreamBody, Streamed};
use crate::LambdaContext;

/// Lambda's limit on a buffered response payload (docs/platforms.md §1.9).
pub(crate) const MAX_RESPONSE_BYTES: usize = 6_291_456;

/// How long before the deadline the handler is stopped, so the `Timeout` error reaches the
/// Runtime API before Lambda ends the sandbox.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
pub(crate) const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
pub(crate) const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const TRACE_ID: &str = "lambda-runtime-trace-id";
pub(crate) const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
pub(crate) const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
pub(crate) const TENANT_ID: &str = "lambda-runtime-aws-tenant-id";

/// Serves invocations with `concurrency` workers (docs/platforms.md §1.11), each with its own
/// connection and its own `/next` outstanding, until the Runtime API fails; the first worker to
/// fail ends them all. One worker is today's loop, on the caller's task.
pub(crate) async fn serve<D: Dispatch + ?Sized + 'static>(
    mut api: RuntimeApi,
    function: Arc<D>,
    info: Arc<FunctionInfo>,
    concurrency: usize,
) -> Result<(), Error> {
    if concurrency <= 1 {
        return run(&mut api, &*function, &info, TraceEnv::PerInvocation).await;
    }
    tracing::info!(
        concurrency,
        "running up to {concurrency} invocations at once"
    );
    let mut workers = tokio::task::JoinSet::new();
    for _ in 1..concurrency {
        let mut api = api.fresh();
        let (function, info) = (function.clone(), info.clone());
        workers.spawn(async move { run(&mut api, &*function, &info, TraceEnv::Untouched).await });
    }
    workers.spawn(async move { run(&mut api, &*function, &info, TraceEnv::Untouched).await });
    match workers.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(Error::internal(format!("a Runtime API worker failed: {e}"))),
        None => Ok(()),
    }
}

/// What to do with the process-wide `_X_AMZN_TRACE_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TraceEnv {
    /// Set it to each invocation's trace header, as every one-at-a-time runtime does.
    PerInvocation,
    /// Leave it alone: with concurrent invocations one variable cannot belong to each of them.
    /// The trace is in `Context::trace()` and `LambdaContext::xray_trace_id`.
    Untouched,
}

/// Serves invocations one at a time until the Runtime API fails.
async fn run<D: Dispatch + ?Sized>(
    api: &mut RuntimeApi,
    function: &D,
    info: &Arc<FunctionInfo>,
    trace_env: TraceEnv,
) -> Result<(), Error> {
    loop {
        let next = api.next().await?;
        if !next.status().is_success() {
            // 500 means "container error, exit promptly" (§1.1); anything else is as fatal here.
            return Err(Error::internal(format!(
                "the Runtime API answered /next with {}",
                next.status()
            )));
        }
        let (parts, payload) = next.into_parts();
        let request_id = header_str(&parts.headers, REQUEST_ID)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
            .ok_or_else(|| {
                Error::internal(
                    "the Runtime API sent an event without a valid Lambda-Runtime-Aws-Request-Id",
                )
            })?
            .to_owned();
        // Every line logged for this invocation carries its request id, whatever the log level;
        // `trace_id` and `span_id` once the shape has read the payload's trace (docs/tracing.md).
        let log = RequestLog::new(request_id.as_str());
        let invoked = invoke_once(
            api,
            function,
            info,
            &request_id,
            &parts.headers,
            payload,
            trace_env,
        );
        logscope::in_request(&log, invoked).await?;
        // The answer is out: what start-up deferred runs now, before the next `/next`, as the
        // HTTP server runs it after its first answer.
        fnkit_core::adapter::first_answer_out();
        if observe::observed() {
            // docs/platforms.md §1.2: Lambda may freeze the sandbox once the answer is in, so
            // what observers buffered (spans, metrics) goes out before the next `/next`.
            observe::flush().await;
        }
    }
}

async fn invoke_once<D: Dispatch + ?Sized>(
    api: &mut RuntimeApi,
    function: &D,
    info: &Arc<FunctionInfo>,
    request_id: &str,
    headers: &HeaderMap,
    payload: Bytes,
    trace_env: TraceEnv,
) -> Result<(), Error> {
    let trace_id = header_str(headers, TRACE_ID).map(str::to_owned);
    // docs/platforms.md §1.2, docs/conformance.md #9: the X-Ray header of this invoke, and only
    // of this one.
    if trace_env == TraceEnv::PerInvocation {
        set_trace_env(trace_id.as_deref());
    }

    let observing = observe::observed().then(|| {
        observe::started(&observe::Start {
            platform: info.platform,
            shape: D::NAME,
        });
        (SystemTime::now(), std::time::Instant::now())
    });
    let (mut deadline, mut trace) = (None, TraceContext::default());
    let outcome = match context(info, request_id, headers, trace_id) {
        Ok(ctx) => {
            deadline = ctx.deadline();
            run_handler(function, payload, ctx, &mut trace).await
        }
        Err(e) => Err(e),
    };
    let outcome = outcome.and_then(|answer| match answer {
        Answer::Payload(body) if body.len() > MAX_RESPONSE_BYTES => Err(too_large(body.len())),
        answer => Ok(answer),
    });
    let (status, error) = match &outcome {
        Ok(_) => (200, None),
        Err(e) => (e.status().as_u16(), Some(e.kind())),
    };
    match outcome {
        Ok(Answer::Stream(streamed)) => {
            // docs/platforms.md §1.7: the first byte is out, so a later failure goes in the
            // trailers, not to /error.
            let content_type = streamed.content_type;
            let body = StreamBody::new(streamed, deadline);
            let status = api
                .respond_streaming(request_id, body, content_type)
                .await?;
            check_answer("/response", status)?;
        }
        Ok(Answer::Payload(body)) => {
            let status = api.respond(request_id, body).await?;
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                // docs/conformance.md #13: the Runtime API refused the payload; say so rather than lose it.
                report(
                    api,
                    request_id,
                    &Error::new(
                        ErrorKind::PayloadTooLarge,
                        "the Runtime API refused the response as too large (413)",
                    ),
                )
                .await?;
            } else {
                check_answer("/response", status)?;
            }
        }
        Err(e) => report(api, request_id, &e).await?,
    }
    if let Some((started, clock)) = observing {
        observe::finished(&observe::Record {
            platform: info.platform,
            shape: D::NAME,
            request_id,
            trace: &trace,
            started,
            duration: clock.elapsed(),
            status,
            error,
            http: None,
            trigger: D::TRIGGER,
            cold_start: observe::take_cold_start(),
        });
    }
    Ok(())
}

/// A 2xx goes on; a 4xx refuses this one invocation (logged, the loop goes on); a 5xx, after the
/// client's retries, means the sandbox is broken: the process ends and Lambda starts another.
fn check_answer(endpoint: &str, status: StatusCode) -> Result<(), Error> {
    if status.is_server_error() {
        return Err(Error::internal(format!(
            "the Runtime API answered {endpoint} with {status}; exiting so that Lambda starts a new sandbox"
        )));
    }
    if !status.is_success() {
        log_refusal(endpoint, status);
    }
    Ok(())
}

async fn report(api: &mut RuntimeApi, request_id: &str, e: &Error) -> Result<(), Error> {
    let error_type = e.kind().as_str();
    tracing::error!(error_type, "{}", e.message());
    let status = api
        .invocation_error(
            request_id,
            &Diagnostic {
                error_type,
                error_message: e.message(),
            },
        )
        .await?;
    check_answer("/error", status)
}

fn log_refusal(endpoint: &str, status: StatusCode) {
    if status == StatusCode::GONE {
        tracing::error!(%status, "the Runtime API refused {endpoint}: the invocation timed out or the response was stale");
    } else {
        tracing::error!(%status, "the Runtime API refused {endpoint}");
    }
}

pub(crate) fn too_large(len: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!("the response is {len} bytes; Lambda accepts at most {MAX_RESPONSE_BYTES}"),
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set_trace_env(trace_id: Option<&str>) {
    // The facade's runtime is single-threaded and nothing else in fnkit reads the environment
    // while a handler runs; this is what every Lambda runtime does (lambda_runtime included).
    match trace_id {
        Some(id) => std::env::set_var("_X_AMZN_TRACE_ID", id),
        None => std::env::remove_var("_X_AMZN_TRACE_ID"),
    }
}

/// Builds the handler's [`Context`] from the `/next` headers (§1.2). A malformed optional
/// header is an invocation error, never the end of the runtime.
pub(crate) fn context(
    info: &Arc<FunctionInfo>,
    request_id: &str,
    headers: &HeaderMap,
    trace_id: Option<String>,
) -> Result<Context, Error> {
    let deadline_ms = match header_str(headers, DEADLINE_MS) {
        None => None,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(ms) => Some(absolute_deadline_ms(ms)),
            Err(_) => {
                // docs/platforms.md §1.13: the invocation still runs, without a deadline.
                tracing::warn!(
                    "Lambda-Runtime-Deadline-Ms {v:?} is not a number of milliseconds; running without a deadline"
                );
                None
            }
        },
    };
    let json_header = |name: &str, label: &str| -> Result<Option<serde_json::Value>, Error> {
        match header_str(headers, name) {
            None => Ok(None),
            Some(raw) => serde_json::from_str(raw)
                .map(Some)
                .map_err(|e| Error::invalid_input(format!("the {label} header is not JSON: {e}"))),
        }
    };
    let client_context = json_header(CLIENT_CONTEXT, "Lambda-Runtime-Client-Context")?;
    let identity = json_header(COGNITO_IDENTITY, "Lambda-Runtime-Cognito-Identity")?;
    let trace = trace_context(TraceInput {
        xray: trace_id.as_deref(),
        ..TraceInput::default()
    });
    let mut ctx = Context::new(info.clone(), request_id).with_trace(trace);
    if let Some(ms) = deadline_ms {
        ctx = ctx.with_deadline(UNIX_EPOCH + Duration::from_millis(ms));
    }
    ctx.extensions_mut().insert(LambdaContext {
        request_id: request_id.to_owned(),
        deadline_ms,
        invoked_function_arn: header_str(headers, FUNCTION_ARN)
            .unwrap_or_default()
            .to_owned(),
        xray_trace_id: trace_id,
        client_context,
        identity,
        tenant_id: header_str(headers, TENANT_ID).map(str::to_owned),
    });
    Ok(ctx)
}

/// Lambda sends the deadline in ms since the Unix epoch. A value before 2001 cannot be one:
/// cargo-lambda's emulator sends its timeout there (`600000`); read such a value as a duration
/// from now, so handlers get a usable deadline under the emulator too.
fn absolute_deadline_ms(ms: u64) -> u64 {
    const EPOCH_MS_2001: u64 = 1_000_000_000_000;
    if ms >= EPOCH_MS_2001 {
        return ms;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    now.saturating_add(ms)
}

/// Runs the handler of whatever shape, stopped [`DEADLINE_MARGIN`] before the deadline, with
/// panics caught. The invocation's trace, once the shape has read it, goes to `trace`.
pub(crate) async fn run_handler<D: Dispatch + ?Sized>(
    function: &D,
    payload: Bytes,
    ctx: Context,
    trace: &mut TraceContext,
) -> Result<Answer, Error> {
    // The deadline is Lambda's, absolute: the timer (made only if the handler waits) counts to it.
    let expiry = ctx.deadline().map(|deadline| {
        move || {
            let left = deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .saturating_sub(DEADLINE_MARGIN);
            tokio::time::sleep(left)
        }
    });
    let platform = ctx.platform();
    guard(
        function.dispatch(payload, ctx, trace),
        expiry,
        Limit::Deadline,
        platform,
    )
    .await
}

/// What an invocation answers: a payload, or (an HTTP handler's streamed body, from a source
/// that streams) a stream.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The response payload, whole.
    Payload(Bytes),
    /// A streamed response.
    Stream(Streamed),
}

/// One handler shape's way from a payload to an answer. The runtime loop is generic over it, so
/// a binary links only the shape it runs: a typed function carries no API Gateway or
/// EventBridge mapping.
pub(crate) trait Dispatch: Send + Sync {
    /// The shape's name, as observers record it: `typed`, `http` or `event`.
    const NAME: &'static str;
    /// What triggers it, in OpenTelemetry's `faas.trigger` words.
    const TRIGGER: &'static str;

    /// Runs the handler on one invocation's payload. The invocation's trace (the platform's, or
    /// the payload's where it carries one) goes to `trace` through [`observe::adopt`] before the
    /// handler runs.
    fn dispatch<'a>(
        &'a self,
        payload: Bytes,
        ctx: Context,
        trace: &'a mut TraceContext,
    ) -> BoxFuture<'a, Result<Answer, Error>>;
}

impl Dispatch for dyn TypedFunction {
    const NAME: &'static str = "typed";
    const TRIGGER: &'static str = "other";

    fn dispatch<'a>(
        &'a self,
        payload: Bytes,
        ctx: Context,
        trace: &'a mut TraceContext,
    ) -> BoxFuture<'a, Result<Answer, Error>> {
        Box::pin(async move {
            observe::adopt(trace, ctx.trace());
            let out = self.call(Payload::Bytes(payload), ctx).await?;
            Ok(Answer::Payload(Bytes::from(out)))
        })
    }
}

impl Dispatch for dyn HttpFunction {
    const NAME: &'static str = "http";
    const TRIGGER: &'static str = "http";

    fn dispatch<'a>(
        &'a self,
        payload: Bytes,
        ctx: Context,
        trace: &'a mut TraceContext,
    ) -> BoxFuture<'a, Result<Answer, Error>> {
        Box::pin(crate::http_event::handle(self, payload, ctx, trace))
    }
}

#[cfg(feature = "cloudevents")]
impl Dispatch for dyn EventFunction {
    const NAME: &'static str = "event";
    const TRIGGER: &'static str = "pubsub";

    fn dispatch<'a>(
        &'a self,
        payload: Bytes,
        ctx: Context,
        trace: &'a mut TraceContext,
    ) -> BoxFuture<'a, Result<Answer, Error>> {
        Box::pin(async move {
            let out = crate::cloudevent::handle(self, payload, ctx, trace).await?;
            Ok(Answer::Payload(out))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::Platform;

    /// A typed function that runs `f` on its input, as `fnkit::run` would hand it over.
    struct Typed<F>(F);

    impl<F, Fut> TypedFunction for Typed<F>
    where
        F: Fn(Payload) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Vec<u8>, Error>> + Send + 'static,
    {
        fn call(&self, input: Payload, _ctx: Context) -> BoxFuture<'_, Result<Vec<u8>, Error>> {
            Box::pin((self.0)(input))
        }
    }

    fn info() -> Arc<FunctionInfo> {
        Arc::new(FunctionInfo::from_lookup(Platform::Lambda, |_| None))
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_panic_becomes_a_panic_error_with_its_message() {
        let f = Typed(|input: Payload| async move {
            let n: u32 = input.deserialize()?;
            if n == 0 {
                panic!("zero is not allowed");
            }
            Ok(n.to_string().into_bytes())
        });
        let ctx = Context::new(info(), "r");
        let e = rt()
            .block_on(run_handler(
                &f as &dyn TypedFunction,
                Bytes::from_static(b"0"),
                ctx,
                &mut TraceContext::default(),
            ))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert_eq!(e.message(), "Lambda panicked: zero is not allowed");
    }

    #[test]
    fn a_handler_past_the_deadline_is_stopped_with_timeout() {
        let f = Typed(|_: Payload| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(Vec::new())
        });
        let ctx = Context::new(info(), "r").with_timeout(Duration::from_millis(120));
        let started = std::time::Instant::now();
        let e = rt()
            .block_on(run_handler(
                &f as &dyn TypedFunction,
                Bytes::new(),
                ctx,
                &mut TraceContext::default(),
            ))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(
            started.elapsed() < Duration::from_millis(120),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn headers_fill_the_context() {
        let mut h = HeaderMap::new();
        h.insert(DEADLINE_MS, "1700000000123".parse().unwrap());
        h.insert(
            FUNCTION_ARN,
            "arn:aws:lambda:us-east-1:1:function:f:live"
                .parse()
                .unwrap(),
        );
        h.insert(CLIENT_CONTEXT, r#"{"custom":{"a":"b"}}"#.parse().unwrap());
        h.insert(COGNITO_IDENTITY, r#"{"identity_id":"i"}"#.parse().unwrap());
        let ctx = context(&info(), "id-1", &h, Some("Root=1-a;Sampled=1".into())).unwrap();
        assert_eq!(ctx.deadline_ms(), Some(1_700_000_000_123));
        assert_eq!(
            ctx.trace().xray_trace_id.as_deref(),
            Some("Root=1-a;Sampled=1")
        );
        let lc = ctx.extensions().get::<LambdaContext>().unwrap();
        assert_eq!(
            lc.invoked_function_arn,
            "arn:aws:lambda:us-east-1:1:function:f:live"
        );
        assert_eq!(lc.client_context.as_ref().unwrap()["custom"]["a"], "b");
        assert_eq!(lc.identity.as_ref().unwrap()["identity_id"], "i");
    }

    #[test]
    fn a_malformed_client_context_is_an_invocation_error() {
        let mut h = HeaderMap::new();
        h.insert(CLIENT_CONTEXT, "{not json".parse().unwrap());
        let e = context(&info(), "id-1", &h, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("Lambda-Runtime-Client-Context"), "{e}");
    }

    #[test]
    fn a_relative_deadline_from_an_emulator_is_read_from_now() {
        let mut h = HeaderMap::new();
        h.insert(DEADLINE_MS, "600000".parse().unwrap());
        let ctx = context(&info(), "id-1", &h, None).unwrap();
        let left = ctx.remaining_time().unwrap();
        assert!(
            left > Duration::from_secs(590) && left <= Duration::from_secs(600),
            "{left:?}"
        );
    }

    #[test]
    fn a_missing_deadline_is_no_deadline() {
        let ctx = context(&info(), "id-1", &HeaderMap::new(), None).unwrap();
        assert_eq!(ctx.deadline(), None);
    }

    #[test]
    fn a_malformed_deadline_is_no_deadline() {
        let mut h = HeaderMap::new();
        h.insert(DEADLINE_MS, "soon".parse().unwrap());
        let ctx = context(&info(), "id-1", &h, None).unwrap();
        assert_eq!(ctx.deadline(), None);
    }

    #[test]
    fn server_errors_end_the_loop_and_client_errors_do_not() {
        assert!(check_answer("/response", StatusCode::ACCEPTED).is_ok());
        assert!(check_answer("/response", StatusCode::GONE).is_ok());
        let e = check_answer("/response", StatusCode::INTERNAL_SERVER_ERROR).unwrap_err();
        assert!(e.message().contains("/response with 500"), "{e}");
    }
}
