//! `lambda_runtime` interop (feature `lambda-runtime`): a fnkit handler of any shape as a
//! `tower::Service` over `lambda_runtime::LambdaEvent<serde_json::Value>`, so it runs under
//! `lambda_runtime::run` or `run_concurrent`, with lambda_runtime's layers.
//!
//! The service is fnkit's per-invocation path without fnkit's loop: the [`Context`] is built by
//! the loop's own `invoke::context` (from the `/next` headers lambda_runtime read), the handler
//! runs through `invoke::run_handler` (deadline, panic guard) and the shape's `Dispatch` (typed,
//! API Gateway/ALB/Function URL, CloudEvent), and errors become the error document the loop
//! posts. There is no second copy of any mapping here: only the translation between
//! lambda_runtime's types and the loop's.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use fnkit_core::adapter::logscope::{self, RequestLog};
use futures_core::Stream;
use http::{HeaderMap, HeaderValue};
use lambda_runtime::{
    Diagnostic, FunctionResponse, LambdaEvent, MetadataPrelude, Service, StreamResponse,
};
use serde_json::value::RawValue;

#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::EventFunction;
use fnkit_core::adapter::{BoxFuture, HttpFunction, TypedFunction};
use fnkit_core::{Body, Context, Error, FunctionInfo};

use crate::invoke::{self, Answer, Dispatch, MAX_RESPONSE_BYTES};
use crate::stream::Streamed;

/// One invocation of the handler, its shape erased: payload and context in, answer out.
type Run = dyn Fn(Bytes, Context) -> BoxFuture<'static, Result<Answer, Error>> + Send + Sync;

/// What [`LambdaService`] answers: the response payload, fnkit's JSON byte for byte, or a
/// streamed HTTP response (a streamed body to a Function URL or REST API event).
pub type LambdaResponse = FunctionResponse<Box<RawValue>, ResponseStream>;

/// The body of a streamed response, after the prelude: the chunks of the handler's streamed
/// [`Body`].
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A fnkit handler as a [`tower::Service`](lambda_runtime::Service) over
/// [`LambdaEvent<serde_json::Value>`](lambda_runtime::LambdaEvent), for `lambda_runtime::run`
/// (or `run_concurrent`: it is `Clone` and its future `Send + 'static`). Made by
/// `fnkit::lambda::service(handler)` for any handler shape.
///
/// ```no_run
/// # async fn run(service: fnkit_lambda::LambdaService) -> Result<(), lambda_runtime::Error> {
/// // let service = fnkit::lambda::service(handle);
/// lambda_runtime::run(service).await
/// # }
/// ```
///
/// Each invocation goes the way it goes in fnkit's own loop: the same [`Context`] (request id,
/// deadline, X-Ray trace, and a [`LambdaContext`](crate::LambdaContext) in its extensions with the
/// invoked ARN, client context, Cognito identity and tenant id), the handler stopped 50 ms before
/// the deadline (`Timeout`), a panic caught (`Panic`, `Lambda panicked: <message>`), a response
/// over 6 MB refused (`PayloadTooLarge`), and every error returned as a [`Diagnostic`] with
/// `errorType` the fnkit [`ErrorKind`](fnkit_core::ErrorKind) name and `errorMessage` its message,
/// the document fnkit's loop posts. The response is the handler's JSON, byte for byte (a
/// [`RawValue`]), so a typed output or an API Gateway response comes out as it does from fnkit's
/// loop; a streamed body to a Function URL or REST API event is a streamed response, as there.
/// Each invocation runs in an `invoke` span with `request_id`, as in fnkit's loop.
///
/// What is lambda_runtime's, because it happens in its loop before or after the service:
/// - The payload is parsed into a `serde_json::Value` first: malformed JSON is lambda_runtime's
///   own error (`errorType` `&lambda_runtime::deserializer::DeserializeError`), not
///   `InvalidInput`. The handler reads the value serialised again (compact, object keys sorted),
///   so a line and column in an `InvalidInput` message count in that form.
/// - The client context and Cognito identity are what lambda_runtime's typed reading kept,
///   serialised back (`identityId`, `identityPoolId`; `client`, `custom`, `environment`), and a
///   malformed one, or an identity without a pool id, ends lambda_runtime's process.
/// - `/error` carries `Lambda-Runtime-Function-Error-Type: unhandled`, not the kind (the body is
///   the same); a 413 from `/response` is only logged; the environment checks, `/init/error`,
///   `_X_AMZN_TRACE_ID` and `AWS_LAMBDA_MAX_CONCURRENCY` are lambda_runtime's.
/// - A stream that fails after its first byte ends as lambda_runtime ends it (its
///   `Runtime.StreamError` text as a last body chunk, not fnkit's error trailers), and is not cut
///   at the deadline (Lambda's timeout ends it).
/// - fnkit installs no log subscriber and runs no `on_shutdown` hook (lambda_runtime's `tracing`
///   and `graceful-shutdown` features do those).
#[derive(Clone)]
pub struct LambdaService {
    run: Arc<Run>,
    info: Arc<FunctionInfo>,
}

impl fmt::Debug for LambdaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaService")
            .field("function", &self.info.name)
            .finish_non_exhaustive()
    }
}

impl LambdaService {
    /// The service of a typed handler (`fnkit::lambda::service` calls it by the handler's shape).
    pub fn typed(function: Arc<dyn TypedFunction>, info: Arc<FunctionInfo>) -> Self {
        Self::new(function, info)
    }

    /// The service of an HTTP handler: API Gateway, ALB and Function URL events.
    pub fn http(function: Arc<dyn HttpFunction>, info: Arc<FunctionInfo>) -> Self {
        Self::new(function, info)
    }

    /// The service of a CloudEvent handler: structured CloudEvents and EventBridge events.
    #[cfg(feature = "cloudevents")]
    pub fn events(function: Arc<dyn EventFunction>, info: Arc<FunctionInfo>) -> Self {
        Self::new(function, info)
    }

    fn new<D: Dispatch + ?Sized + 'static>(function: Arc<D>, info: Arc<FunctionInfo>) -> Self {
        let run =
            move |payload: Bytes, ctx: Context| -> BoxFuture<'static, Result<Answer, Error>> {
                let function = function.clone();
                Box::pin(async move {
                    let mut trace = fnkit_core::TraceContext::default();
                    invoke::run_handler(&*function, payload, ctx, &mut trace).await
                })
            };
        Self {
            run: Arc::new(run),
            info,
        }
    }
}

impl Service<LambdaEvent<serde_json::Value>> for LambdaService {
    type Response = LambdaResponse;
    type Error = Diagnostic;
    type Future = Pin<Box<dyn Future<Output = Result<LambdaResponse, Diagnostic>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> Poll<Result<(), Diagnostic>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<serde_json::Value>) -> Self::Future {
        let (run, info) = (self.run.clone(), self.info.clone());
        let log = RequestLog::new(event.context.request_id.as_str());
        Box::pin(logscope::in_request(&log, async move {
            invoke_once(&*run, &info, event)
                .await
                .map_err(|e| diagnostic(&e))
        }))
    }
}

async fn invoke_once(
    run: &Run,
    info: &Arc<FunctionInfo>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<LambdaResponse, Error> {
    let LambdaEvent { payload, context } = event;
    let headers = next_headers(&context);
    let ctx = invoke::context(info, &context.request_id, &headers, context.xray_trace_id)?;
    let payload = serde_json::to_vec(&payload).map_err(Error::internal)?;
    let body = match run(Bytes::from(payload), ctx).await? {
        Answer::Payload(body) => body,
        Answer::Stream(streamed) => return streamed_response(streamed),
    };
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(invoke::too_large(body.len()));
    }
    // fnkit's shapes answer JSON (serde's output): kept as is, checked once more by `RawValue`.
    let text = String::from_utf8(Vec::from(body)).map_err(Error::internal)?;
    let raw = RawValue::from_string(text).map_err(Error::internal)?;
    Ok(FunctionResponse::BufferedResponse(raw))
}

/// fnkit's streamed answer as lambda_runtime's: the prelude (the JSON before the eight NUL bytes
/// that end it, docs/platforms.md §1.7) becomes its `MetadataPrelude`, which lambda_runtime
/// writes again, and the rest is the stream.
fn streamed_response(streamed: Streamed) -> Result<LambdaResponse, Error> {
    let Streamed { first, rest, .. } = streamed;
    let end = first
        .windows(8)
        .position(|w| w == [0; 8])
        .ok_or_else(|| Error::internal("a streamed answer without its prelude"))?;
    let metadata_prelude: MetadataPrelude =
        serde_json::from_slice(&first[..end]).map_err(Error::internal)?;
    let head = first.slice(end + 8..);
    let stream = Chunks {
        head: (!head.is_empty()).then_some(head),
        rest,
    };
    Ok(FunctionResponse::StreamingResponse(StreamResponse {
        metadata_prelude,
        stream: Box::pin(stream),
    }))
}

/// The first chunk (already read, so that a failure before it is an `/error`), then the body's.
struct Chunks {
    head: Option<Bytes>,
    rest: Body,
}

impl Stream for Chunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        match self.head.take() {
            Some(head) => Poll::Ready(Some(Ok(head))),
            None => Pin::new(&mut self.rest).poll_next(cx),
        }
    }
}

/// The `/next` headers lambda_runtime read into its `Context`, given back to fnkit's loop's
/// `invoke::context`, so the mapping to fnkit's [`Context`] is that one.
fn next_headers(lc: &lambda_runtime::Context) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    put(invoke::DEADLINE_MS, &lc.deadline.to_string());
    put(invoke::FUNCTION_ARN, &lc.invoked_function_arn);
    if let Some(json) = lc
        .client_context
        .as_ref()
        .and_then(|c| serde_json::to_string(c).ok())
    {
        put(invoke::CLIENT_CONTEXT, &json);
    }
    if let Some(json) = lc
        .identity
        .as_ref()
        .and_then(|i| serde_json::to_string(i).ok())
    {
        put(invoke::COGNITO_IDENTITY, &json);
    }
    if let Some(tenant) = &lc.tenant_id {
        put(invoke::TENANT_ID, tenant);
    }
    headers
}

/// The error document fnkit's loop posts to `/error`, logged as the loop logs it.
fn diagnostic(e: &Error) -> Diagnostic {
    let error_type = e.kind().as_str();
    tracing::error!(error_type, "{}", e.message());
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: e.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::adapter::Payload;
    use fnkit_core::{ErrorKind, Platform};
    use serde_json::{json, Value};

    use crate::LambdaContext;

    /// A typed function that runs `f` on its input and context.
    struct Typed<F>(F);

    impl<F, Fut> TypedFunction for Typed<F>
    where
        F: Fn(Payload, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, Error>> + Send + 'static,
    {
        fn call(&self, input: Payload, ctx: Context) -> BoxFuture<'_, Result<Vec<u8>, Error>> {
            Box::pin((self.0)(input, ctx))
        }
    }

    /// An HTTP function that answers 201 with a header, a cookie and the request's path; `/stream`
    /// streams two chunks.
    struct Echo;

    impl HttpFunction for Echo {
        fn call(
            &self,
            req: http::Request<Body>,
            _ctx: Context,
        ) -> BoxFuture<'_, Result<http::Response<Body>, Error>> {
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                let body = if path == "/stream" {
                    let (mut tx, body) = Body::channel();
                    tx.send("one\n").await?;
                    tx.send("two\n").await?;
                    body
                } else {
                    Body::from(path)
                };
                http::Response::builder()
                    .status(201)
                    .header("x-probe", "1")
                    .header("set-cookie", "a=1")
                    .body(body)
                    .map_err(Error::internal)
            })
        }
    }

    fn info() -> Arc<FunctionInfo> {
        Arc::new(FunctionInfo::from_lookup(Platform::Lambda, |_| None))
    }

    fn typed<F, Fut>(f: F) -> LambdaService
    where
        F: Fn(Payload, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, Error>> + Send + 'static,
    {
        LambdaService::typed(Arc::new(Typed(f)), info())
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// An event as lambda_runtime hands it over, from the `/next` headers.
    fn event(payload: Value, extra: &[(&'static str, &str)]) -> LambdaEvent<Value> {
        let mut h = HeaderMap::new();
        h.insert(
            "lambda-runtime-aws-request-id",
            HeaderValue::from_static("id-1"),
        );
        h.insert(
            "lambda-runtime-deadline-ms",
            HeaderValue::from_static("600000"),
        );
        for (name, value) in extra {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        let config = Arc::new(lambda_runtime::Config::default());
        LambdaEvent::new(
            payload,
            lambda_runtime::Context::new("id-1", config, &h).unwrap(),
        )
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn call(
        mut service: LambdaService,
        event: LambdaEvent<Value>,
    ) -> Result<LambdaResponse, Diagnostic> {
        rt().block_on(service.call(event))
    }

    /// The buffered response's JSON text, or the error document.
    fn answer(service: &LambdaService, event: LambdaEvent<Value>) -> Result<String, Diagnostic> {
        match call(service.clone(), event)? {
            FunctionResponse::BufferedResponse(raw) => Ok(raw.get().to_owned()),
            FunctionResponse::StreamingResponse(_) => panic!("a stream"),
        }
    }

    #[test]
    fn a_typed_answer_is_the_handlers_json_byte_for_byte() {
        let service = typed(|_, _| async { Ok(br#"{"z":1.0,"a":[1e3, "\u00e9"]}"#.to_vec()) });
        let out = answer(&service, event(json!({}), &[])).unwrap();
        assert_eq!(out, r#"{"z":1.0,"a":[1e3, "\u00e9"]}"#);
    }

    #[test]
    fn errors_are_the_loops_error_documents() {
        let service = typed(|input: Payload, _| async move {
            let n: u32 = input.deserialize()?;
            match n {
                0 => panic!("zero is not allowed"),
                1 => Err(Error::handler("one is not allowed")),
                _ => Ok(Vec::from(n.to_string())),
            }
        });
        let doc = |payload| {
            let d = answer(&service, event(payload, &[])).unwrap_err();
            (d.error_type, d.error_message)
        };
        assert_eq!(
            doc(json!(0)),
            (
                "Panic".into(),
                "Lambda panicked: zero is not allowed".into()
            )
        );
        assert_eq!(
            doc(json!(1)),
            ("HandlerError".into(), "one is not allowed".into())
        );
        let (ty, msg) = doc(json!("x"));
        assert_eq!(ty, ErrorKind::InvalidInput.as_str());
        assert!(msg.starts_with("input does not fit"), "{msg}");
        assert_eq!(answer(&service, event(json!(7), &[])).unwrap(), "7");
    }

    #[test]
    fn a_response_over_the_limit_is_payload_too_large() {
        let service = typed(|_, _| async { Ok(vec![b'1'; MAX_RESPONSE_BYTES + 1]) });
        let d = answer(&service, event(json!({}), &[])).unwrap_err();
        assert_eq!(d.error_type, "PayloadTooLarge");
    }

    #[test]
    fn the_context_is_the_one_the_loop_builds() {
        let service = typed(|_, ctx: Context| async move {
            let lc = ctx.extensions().get::<LambdaContext>().cloned().unwrap();
            let seen = json!({
                "request_id": ctx.request_id(),
                "remaining_s": ctx.remaining_time().map(|d| d.as_secs()),
                "xray": ctx.trace().xray_trace_id,
                "arn": lc.invoked_function_arn,
                "client": lc.client_context,
                "identity": lc.identity,
                "tenant": lc.tenant_id,
            });
            Ok(serde_json::to_vec(&seen).unwrap())
        });
        let headers = [
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:1:function:f:live",
            ),
            ("lambda-runtime-trace-id", "Root=1-a;Sampled=1"),
            ("lambda-runtime-client-context", r#"{"custom":{"k":"v"}}"#),
            (
                "lambda-runtime-cognito-identity",
                r#"{"identityId":"i","identityPoolId":"p"}"#,
            ),
            ("lambda-runtime-aws-tenant-id", "t-1"),
        ];
        let out = answer(&service, event(json!({}), &headers)).unwrap();
        let seen: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(seen["request_id"], "id-1");
        // 600000 is a duration from now, as the loop reads an emulator's deadline.
        assert!(
            seen["remaining_s"]
                .as_u64()
                .is_some_and(|s| (590..=600).contains(&s)),
            "{seen}"
        );
        assert_eq!(seen["xray"], "Root=1-a;Sampled=1");
        assert_eq!(seen["arn"], "arn:aws:lambda:us-east-1:1:function:f:live");
        assert_eq!(seen["client"]["custom"]["k"], "v");
        assert_eq!(
            seen["identity"],
            json!({"identityId": "i", "identityPoolId": "p"})
        );
        assert_eq!(seen["tenant"], "t-1");
    }

    #[test]
    fn an_http_event_is_answered_as_the_loop_answers_it() {
        let service = LambdaService::http(Arc::new(Echo), info());
        let payload = fixture("apigw-v2-request.json");
        let out = answer(&service, event(payload.clone(), &[])).unwrap();
        // What fnkit's loop posts for the same payload.
        let bytes = Bytes::from(serde_json::to_vec(&payload).unwrap());
        let ctx = Context::new(info(), "id-1");
        let Answer::Payload(expected) = rt()
            .block_on(crate::http_event::handle(
                &Echo,
                bytes,
                ctx,
                &mut Default::default(),
            ))
            .unwrap()
        else {
            panic!("a stream")
        };
        assert_eq!(out.as_bytes(), &expected[..]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["statusCode"], 201, "{v}");
        assert_eq!(v["cookies"], json!(["a=1"]), "{v}");
        let d = answer(&service, event(json!({"name": "Ada"}), &[])).unwrap_err();
        assert_eq!(d.error_type, "InvalidInput");
    }

    #[test]
    fn a_streamed_body_to_a_function_url_is_a_streamed_response() {
        let service = LambdaService::http(Arc::new(Echo), info());
        let mut payload = fixture("function-url-request.json");
        payload["rawPath"] = json!("/stream");
        let FunctionResponse::StreamingResponse(resp) = call(service, event(payload, &[])).unwrap()
        else {
            panic!("not a stream")
        };
        assert_eq!(resp.metadata_prelude.status_code, 201);
        assert_eq!(resp.metadata_prelude.headers["x-probe"], "1");
        assert_eq!(resp.metadata_prelude.cookies, ["a=1"]);
        let mut stream = resp.stream;
        let chunks: Vec<Bytes> = rt().block_on(async {
            let mut chunks = Vec::new();
            while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                chunks.push(chunk.unwrap());
            }
            chunks
        });
        assert_eq!(chunks.concat(), b"one\ntwo\n");
    }

    #[test]
    fn the_service_fits_run_and_run_concurrent() {
        fn fits<S>(_: &S)
        where
            S: Service<LambdaEvent<Value>, Error = Diagnostic> + Clone + Send + 'static,
            S::Future: Send + 'static,
        {
        }
        fits(&typed(|_, _| async { Ok(b"null".to_vec()) }));
    }
}
