//! One request, start to finish: health and probes, limits, the three handler shapes, errors.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event, EventBuilder};
use fnkit_core::{
    panic_message, Body, BoxFuture, CatchUnwind, Context, Error, ErrorKind, Function, FunctionInfo,
    Payload, TraceContext,
};
use http::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT};
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tracing::Instrument;

use crate::cloudevents::{self as ce, Mode};
use crate::Config;

/// What every connection shares.
pub(crate) struct State {
    function: Function,
    info: Arc<FunctionInfo>,
    pub(crate) config: Config,
    started: Instant,
    shutting_down: AtomicBool,
    inflight: AtomicUsize,
}

type Reply = Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl State {
    pub(crate) fn new(function: Function, info: Arc<FunctionInfo>, config: Config) -> Self {
        Self {
            function,
            info,
            config,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
        }
    }

    /// Marks the start of shutdown: readiness answers 503 from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst)
    }
}

/// Serves one request. Never fails: every problem is an HTTP answer.
pub(crate) async fn handle(
    state: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Reply, Infallible> {
    if let Some(reply) = state.answer_platform_paths(&req) {
        return Ok(reply);
    }
    let Some(_slot) = InflightSlot::take(&state) else {
        let err = Error::new(
            ErrorKind::TooManyRequests,
            format!(
                "{} requests are in flight already (max_inflight)",
                state.config.max_inflight.unwrap_or(0)
            ),
        );
        return Ok(error_reply(&err));
    };
    let request_id = request_id_of(req.headers());
    let span = tracing::info_span!("request", request_id = request_id.as_str());
    // The access line is a debug one: gather its parts only when it will be written.
    let access = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        (
            Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let reply = state
        .dispatch(req, request_id)
        .instrument(span.clone())
        .await
        .unwrap_or_else(|e| {
            span.in_scope(|| log_error(&e));
            error_reply(&e)
        });
    if let Some((started, method, path)) = access {
        span.in_scope(|| {
            tracing::debug!(
                method = %method,
                path = %path,
                status = reply.status().as_u16(),
                duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "request served"
            );
        });
    }
    Ok(reply)
}

/// Counts a request in flight for as long as it lives.
struct InflightSlot<'a>(&'a AtomicUsize);

impl<'a> InflightSlot<'a> {
    fn take(state: &'a State) -> Option<Self> {
        let previous = state.inflight.fetch_add(1, Ordering::AcqRel);
        let slot = Self(&state.inflight);
        match state.config.max_inflight {
            Some(max) if previous >= max => None,
            _ => Some(slot),
        }
    }
}

impl Drop for InflightSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn log_error(e: &Error) {
    let status = e.status().as_u16();
    match e.kind() {
        // The message of an input error may quote the input: keep it out of the logs.
        ErrorKind::InvalidInput | ErrorKind::InvalidEvent => {
            tracing::info!(status, error = e.kind().as_str(), "request rejected");
        }
        _ if status >= 500 => {
            tracing::error!(status, error = e.kind().as_str(), "{}", e.message());
        }
        _ => tracing::warn!(status, error = e.kind().as_str(), "{}", e.message()),
    }
}

/// The caller's id for the request: `X-Request-Id`, OpenFaaS's `X-Call-Id` (set by the gateway,
/// logged by the watchdog with `log_callid`), a CloudEvent's `ce-id`; else a new one.
fn request_id_of(headers: &HeaderMap) -> String {
    [&X_REQUEST_ID, &X_CALL_ID, &CE_ID]
        .into_iter()
        .find_map(|name| header_str(headers, name))
        .map_or_else(fnkit_core::new_id, str::to_owned)
}

// Header names as constants: a lookup by `HeaderName` hashes it once, a lookup by `&str` parses
// and validates the name on every request first.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
static CE_ID: HeaderName = HeaderName::from_static("ce-id");
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");
static K_KUBELET_PROBE: HeaderName = HeaderName::from_static("k-kubelet-probe");

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

fn json_reply(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, JSON);
    r
}

/// The JSON error body with the error's status.
pub(crate) fn error_reply(e: &Error) -> Reply {
    let mut r = json_reply(e.status(), e.to_json());
    if e.kind() == ErrorKind::MethodNotAllowed {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    r
}

impl State {
    /// Health, readiness and probes: answered here, never by the handler.
    fn answer_platform_paths<B>(&self, req: &Request<B>) -> Option<Reply> {
        let path = req.uri().path();
        let probe = req.headers().contains_key(&K_KUBELET_PROBE)
            || header_str(req.headers(), &USER_AGENT)
                .is_some_and(|ua| ua.starts_with("kube-probe/"));
        let watchdog = self.config.watchdog_paths;
        if path == "/health" && !probe {
            return Some(self.health());
        }
        if probe || path == "/ready" || (watchdog && (path == "/_/health" || path == "/_/ready")) {
            return Some(self.readiness());
        }
        None
    }

    fn health(&self) -> Reply {
        let body = serde_json::json!({
            "status": "ok",
            "function": self.info.name,
            "version": self.info.version,
            "platform": self.info.platform.as_str(),
            "fnkit": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs_f64(),
        });
        json_reply(StatusCode::OK, body.to_string().into_bytes())
    }

    fn readiness(&self) -> Reply {
        if self.ready() {
            json_reply(StatusCode::OK, br#"{"status":"ready"}"#.to_vec())
        } else {
            json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                br#"{"status":"shutting down"}"#.to_vec(),
            )
        }
    }

    async fn dispatch(
        &self,
        req: Request<hyper::body::Incoming>,
        request_id: String,
    ) -> Result<Reply, Error> {
        let (parts, body) = req.into_parts();
        let takes_events = !matches!(self.function, Function::Http(_));
        if takes_events && parts.method != Method::POST {
            return Err(Error::new(
                ErrorKind::MethodNotAllowed,
                format!(
                    "{} {} is not served: send the input as a POST",
                    parts.method,
                    parts.uri.path()
                ),
            ));
        }
        let body = self.read_body(&parts, body).await?;
        let ctx = self.context(request_id, &parts.headers);
        match &self.function {
            Function::Typed(f) => {
                self.typed(parts.headers, body, ctx, |payload, ctx| {
                    f.call(payload, ctx)
                })
                .await
            }
            Function::Event(f) => {
                self.events(parts.headers, body, ctx, |event, ctx| f.call(event, ctx))
                    .await
            }
            Function::Http(f) => {
                let req = Request::from_parts(parts, Body::from(body));
                let resp = self.invoke(f.call(req, ctx)).await?;
                let (parts, body) = resp.into_parts();
                Ok(Response::from_parts(parts, Full::new(body.into_bytes())))
            }
        }
    }

    /// Reads the whole body within the size limit and the read timeout.
    async fn read_body(&self, parts: &Parts, body: hyper::body::Incoming) -> Result<Bytes, Error> {
        let max = self.config.max_body_bytes;
        let too_large = || {
            Error::new(
                ErrorKind::PayloadTooLarge,
                format!("the request body is larger than {max} bytes (FNKIT_MAX_BODY_BYTES)"),
            )
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            discard_rest(body);
            return Err(too_large());
        }
        match tokio::time::timeout(self.config.read_timeout, read_limited(body, max)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(BodyError::TooLarge)) => Err(too_large()),
            Ok(Err(BodyError::Broken(e))) => Err(Error::invalid_input(format!(
                "the request body could not be read: {e}"
            ))),
            Err(_) => Err(Error::new(
                ErrorKind::RequestTimeout,
                format!(
                    "the request body did not arrive within {:?} (FNKIT_READ_TIMEOUT_SECS)",
                    self.config.read_timeout
                ),
            )),
        }
    }

    /// The invocation's context, without the headers: typed and CloudEvent handlers get them
    /// moved in once the binding is done with them; HTTP handlers have them on the request.
    fn context(&self, request_id: String, headers: &HeaderMap) -> Context {
        let trace = TraceContext {
            traceparent: header_str(headers, &TRACEPARENT).map(str::to_owned),
            tracestate: header_str(headers, &TRACESTATE).map(str::to_owned),
            xray_trace_id: header_str(headers, &X_AMZN_TRACE_ID).map(str::to_owned),
        };
        Context::new(self.info.clone(), request_id)
            .with_timeout(self.config.timeout)
            .with_trace(trace)
    }

    /// Runs a handler future within the timeout, turning a panic into an error.
    async fn invoke<T>(&self, fut: BoxFuture<'_, Result<T, Error>>) -> Result<T, Error> {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, CatchUnwind(fut)).await {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => Err(Error::new(
                ErrorKind::Panic,
                format!(
                    "the handler panicked: {}",
                    panic_message(&*payload).unwrap_or("a non-string panic payload")
                ),
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                format!("the handler did not finish within {timeout:?} (FNKIT_TIMEOUT_SECS)"),
            )),
        }
    }

    async fn typed<'a, F>(
        &'a self,
        headers: HeaderMap,
        body: Bytes,
        ctx: Context,
        call: F,
    ) -> Result<Reply, Error>
    where
        F: Fn(Payload, Context) -> BoxFuture<'a, Result<Vec<u8>, Error>>,
    {
        let Some(mode) = ce::detect(&headers)? else {
            if let Some(mt) = ce::media_type(&headers) {
                if !ce::is_json(&mt) {
                    return Err(Error::new(
                        ErrorKind::UnsupportedMediaType,
                        format!("Content-Type {mt} is not accepted: send application/json or a CloudEvent"),
                    ));
                }
            }
            let ctx = ctx.with_headers(headers);
            let out = self.invoke(call(Payload::Bytes(body), ctx)).await?;
            return Ok(json_reply(StatusCode::OK, out));
        };
        let events = ce::decode(mode, &headers, body)?;
        let ctx = ctx.with_headers(headers);
        let mut replies = Vec::with_capacity(events.len());
        for event in events {
            let (event, payload) = split_data(event);
            let ctx = event_context(ctx.clone(), &event);
            let out = self.invoke(call(payload, ctx.clone())).await?;
            let reply = ctx
                .reply_to(&event)
                .data("application/json", Data::Binary(out))
                .build()
                .map_err(|e| Error::internal(e.to_string()))?;
            replies.push(reply);
        }
        self.event_reply(mode, replies)
    }

    async fn events<'a, F>(
        &'a self,
        headers: HeaderMap,
        body: Bytes,
        ctx: Context,
        call: F,
    ) -> Result<Reply, Error>
    where
        F: Fn(Event, Context) -> BoxFuture<'a, Result<Option<Event>, Error>>,
    {
        let Some(mode) = ce::detect(&headers)? else {
            return Err(Error::invalid_event(
                "this function takes CloudEvents: send ce-specversion, ce-id, ce-source and ce-type headers (binary mode) or Content-Type application/cloudevents+json",
            ));
        };
        let events = ce::decode(mode, &headers, body)?;
        let ctx = ctx.with_headers(headers);
        let mut replies = Vec::with_capacity(events.len());
        for event in events {
            let ctx = event_context(ctx.clone(), &event);
            if let Some(reply) = self.invoke(call(event, ctx)).await? {
                replies.push(reply);
            }
        }
        self.event_reply(mode, replies)
    }

    fn event_reply(&self, mode: Mode, replies: Vec<Event>) -> Result<Reply, Error> {
        if replies.is_empty() {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::ACCEPTED;
            return Ok(r);
        }
        let encoded = if mode == Mode::Batch {
            ce::encode(Mode::Batch, replies)?
        } else if replies.len() == 1 {
            ce::encode(mode, replies)?
        } else {
            return Err(Error::internal("one event in, several replies out"));
        };
        let mut r = Response::new(Full::new(Bytes::from(encoded.body)));
        *r.headers_mut() = encoded.headers;
        Ok(r)
    }
}

/// Why a body was not read whole.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    /// Past the limit: reading stopped there, the rest is left to [`discard_rest`].
    TooLarge,
    /// The connection failed or the framing was wrong.
    Broken(String),
}

/// Reads `body` whole, up to `max` bytes. The moment it passes `max` (a chunked body has no
/// `Content-Length` to refuse it by, and of-watchdog always forwards bodies chunked) it stops
/// and the request gets its 413 at once, while the rest is read and dropped in the background.
async fn read_limited<B>(mut body: B, max: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > max {
            discard_rest(body);
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// The most of a refused body read and dropped after the 413 ...
const DISCARD_MAX_BYTES: usize = 16 * 1024 * 1024;
/// ... and for how long at most.
const DISCARD_MAX_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and drops what is left of a refused body (for at most [`DISCARD_MAX_BYTES`] and
/// [`DISCARD_MAX_TIME`]), so that the sender, still writing it, reads the 413 instead of a
/// reset connection: closing a socket with unread data resets it, and Go's HTTP client (the
/// transport of of-watchdog, which proxies every OpenFaaS request) then reports the failed write
/// instead of the answer (golang/go#51109) and the caller gets the watchdog's bare 500.
fn discard_rest<B>(mut body: B)
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
{
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let drain = async {
            let mut left = DISCARD_MAX_BYTES;
            while let Some(Ok(frame)) = body.frame().await {
                let len = frame.data_ref().map_or(0, bytes::Buf::remaining);
                left = left.saturating_sub(len);
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_MAX_TIME, drain).await;
    });
}

/// The event's data as a typed payload, and the event without it.
fn split_data(mut event: Event) -> (Event, Payload) {
    let (ct, schema, data) = event.take_data();
    event.set_datacontenttype(ct);
    event.set_dataschema(schema);
    let payload = match data {
        None => Payload::Json(serde_json::Value::Null),
        Some(Data::Json(v)) => Payload::Json(v),
        Some(Data::Binary(b)) => Payload::Bytes(Bytes::from(b)),
        Some(Data::String(s)) => Payload::Json(serde_json::Value::String(s)),
    };
    (event, payload)
}

/// A copy of the event's attributes and extensions, without its data.
fn attributes_of(event: &Event) -> Event {
    let mut copy = Event::default();
    copy.set_id(event.id());
    copy.set_source(event.source().clone());
    copy.set_type(event.ty());
    copy.set_subject(event.subject());
    copy.set_time(event.time().copied());
    copy.set_datacontenttype(event.datacontenttype());
    copy.set_dataschema(event.dataschema().cloned());
    for (name, value) in event.iter_extensions() {
        copy.set_extension(name, value.clone());
    }
    copy
}

fn event_context(ctx: Context, event: &Event) -> Context {
    let mut trace = ctx.trace().clone();
    if trace.traceparent.is_none() {
        trace.traceparent = event.extension("traceparent").map(ToString::to_string);
        trace.tracestate = event.extension("tracestate").map(ToString::to_string);
    }
    ctx.with_trace(trace)
        .with_event(Arc::new(attributes_of(event)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context as TaskContext, Poll};

    #[tokio::test]
    async fn a_panicking_future_becomes_an_error_with_its_message() {
        let fut: BoxFuture<'static, u8> = Box::pin(async { panic!("boom {}", 7) });
        let payload = CatchUnwind(fut).await.unwrap_err();
        assert_eq!(panic_message(&*payload), Some("boom 7"));
    }

    /// A body of `chunks`, counting the chunks read.
    struct Chunks {
        chunks: std::collections::VecDeque<Bytes>,
        read: Arc<AtomicUsize>,
    }

    impl Chunks {
        fn new(n: usize, size: usize) -> (Self, Arc<AtomicUsize>) {
            let read = Arc::new(AtomicUsize::new(0));
            let chunk = Bytes::from(vec![b'x'; size]);
            let chunks = (0..n).map(|_| chunk.clone()).collect();
            let body = Self {
                chunks,
                read: read.clone(),
            };
            (body, read)
        }
    }

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut TaskContext<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            let next = self.chunks.pop_front();
            if next.is_some() {
                self.read.fetch_add(1, Ordering::SeqCst);
            }
            Poll::Ready(next.map(|c| Ok(hyper::body::Frame::data(c))))
        }

        fn is_end_stream(&self) -> bool {
            self.chunks.is_empty()
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let (body, read) = Chunks::new(4, 256);
        let bytes = read_limited(body, 1024).await.unwrap();
        assert_eq!(bytes.len(), 1024);
        assert_eq!(read.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn past_the_limit_reading_stops_and_the_rest_is_drained_in_the_background() {
        let (body, read) = Chunks::new(100, 256);
        let err = read_limited(body, 1000).await.unwrap_err();
        assert_eq!(err, BodyError::TooLarge);
        // Stopped at the chunk that passed the limit (the fourth) ...
        assert_eq!(read.load(Ordering::SeqCst), 4);
        // ... and the rest is read and dropped by a background task, so the sender is not reset.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(read.load(Ordering::SeqCst), 100);
    }

    #[tokio::test]
    async fn the_drain_stops_after_its_byte_budget() {
        let size = 1024 * 1024;
        let (body, read) = Chunks::new(DISCARD_MAX_BYTES / size + 10, size);
        discard_rest(body);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(read.load(Ordering::SeqCst), DISCARD_MAX_BYTES / size);
    }

    #[test]
    fn request_id_comes_from_the_caller_or_the_openfaas_call_id() {
        let mut h = HeaderMap::new();
        h.insert("x-call-id", HeaderValue::from_static("call-1"));
        h.insert("ce-id", HeaderValue::from_static("event-1"));
        assert_eq!(request_id_of(&h), "call-1");
        h.insert("x-request-id", HeaderValue::from_static("req-1"));
        assert_eq!(request_id_of(&h), "req-1");
        let generated = request_id_of(&HeaderMap::new());
        assert_eq!(generated.len(), 36, "{generated}");
    }

    #[test]
    fn split_data_keeps_the_content_type_on_the_event() {
        let mut e = Event::default();
        e.set_data("application/json", serde_json::json!({"a": 1}));
        let (e, payload) = split_data(e);
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert!(e.data().is_none());
        assert!(matches!(payload, Payload::Json(_)));
    }
}
