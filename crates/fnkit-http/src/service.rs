//! One request, start to finish: platform paths, the in-flight limit, the request id and log
//! span, the handler's shape, and every error as a JSON answer.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use fnkit_core::adapter::logscope::{self, RequestLog};
use fnkit_core::adapter::{guard, observe, BoxFuture, Limit};
use fnkit_core::{Context, Error, ErrorKind, FunctionInfo, TraceContext};
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};

use crate::dispatch::Shape;
use crate::probes::Seen;
use crate::reply::{Reply, ReplyBody};
use crate::Config;

/// What every connection shares, whatever the handler's shape.
pub(crate) struct State {
    pub(crate) info: Arc<FunctionInfo>,
    pub(crate) config: Config,
    pub(crate) started: Instant,
    shutting_down: AtomicBool,
    inflight: AtomicUsize,
    /// The probe thread, started by the first request (docs/runtime.md).
    pub(crate) probe_thread: crate::sentinel::ProbeStart,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

impl State {
    /// Whether `max_inflight` requests are in flight (never, without the setting).
    pub(crate) fn at_capacity(&self) -> bool {
        self.config
            .max_inflight
            .is_some_and(|max| self.inflight.load(Ordering::Acquire) >= max)
    }

    pub(crate) fn new(info: Arc<FunctionInfo>, config: Config) -> Self {
        Self {
            info,
            config,
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            probe_thread: crate::sentinel::ProbeStart::default(),
        }
    }

    /// Marks the start of shutdown: readiness answers 503 from now on.
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(crate) fn ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst)
    }

    /// The invocation's context: its id, the deadline from the time limit, no trace yet (the
    /// shapes add it once they know whether an event carries one).
    pub(crate) fn context(&self, request_id: String) -> Context {
        Context::new(self.info.clone(), request_id).with_timeout(self.config.timeout)
    }

    /// Runs a handler future within the time limit, turning a panic into an error.
    pub(crate) async fn invoke<T>(
        &self,
        call: BoxFuture<'_, Result<T, Error>>,
    ) -> Result<T, Error> {
        let timeout = self.config.timeout;
        let limit = Limit::Timeout {
            after: timeout,
            setting: self.config.timeout_setting,
        };
        // Counted from now; the timer itself is made only if the handler waits.
        let until = tokio::time::Instant::now() + timeout;
        guard(
            call,
            Some(move || tokio::time::sleep_until(until)),
            limit,
            self.info.platform,
        )
        .await
    }
}

/// Serves one request with a handler of shape `S`. Never fails: every problem is an answer.
pub(crate) async fn handle<S: Shape + ?Sized>(
    state: Arc<State>,
    function: Arc<S>,
    req: Request<hyper::body::Incoming>,
) -> Result<Reply, Infallible> {
    state.probe_thread.on_request();
    let seen = Seen::of(req.headers());
    if let Some(reply) = state.answer_platform_paths(&req, &seen) {
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
    let request_id = seen
        .request_id
        .map_or_else(fnkit_core::adapter::new_id, str::to_owned);
    let observing = observe::observed().then(|| Observing::start::<S>(&state, &req, &request_id));
    // Every line logged for this request carries its id; `trace_id` and `span_id` once the
    // shape has adopted the trace (a CloudEvent's extension counts where the headers carry none:
    // docs/tracing.md); a line logged before (a body that cannot be read) has the request id only.
    let log = RequestLog::new(request_id.as_str());
    let mut trace = TraceContext::default();
    // The access line is a debug one: gather its parts only when it will be written.
    let access = tracing::enabled!(tracing::Level::DEBUG).then(|| {
        (
            Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let mut failed = None;
    let reply = logscope::in_request(&log, function.respond(&state, req, request_id, &mut trace))
        .await
        .unwrap_or_else(|e| {
            let _entered = logscope::enter(&log);
            log_error(&e);
            failed = Some(e.kind());
            error_reply(&e)
        });
    if let Some(mut o) = observing {
        o.finish(Some(&trace), reply.status().as_u16(), failed);
    }
    if let Some((started, method, path)) = access {
        let _entered = logscope::enter(&log);
        tracing::debug!(
            method = %method,
            path = %path,
            status = reply.status().as_u16(),
            duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "request served"
        );
    }
    Ok(reply)
}

/// What an observed request keeps to report its end: only gathered when an observer is set.
///
/// A request whose future is dropped before its answer (the client went away) is reported from
/// `Drop` with status 499, so the in-flight gauge and the span never wait for an end that will
/// not come.
struct Observing {
    platform: fnkit_core::Platform,
    shape: &'static str,
    trigger: &'static str,
    done: bool,
    request_id: String,
    /// The headers' trace, for a request refused before its shape read one (a 405, a body too
    /// large).
    fallback: TraceContext,
    method: http::Method,
    path: String,
    started: std::time::SystemTime,
    clock: Instant,
}

impl Observing {
    fn start<S: Shape + ?Sized>(
        state: &State,
        req: &Request<hyper::body::Incoming>,
        request_id: &str,
    ) -> Self {
        observe::started(&observe::Start {
            platform: state.info.platform,
            shape: S::NAME,
        });
        Self {
            platform: state.info.platform,
            shape: S::NAME,
            trigger: S::TRIGGER,
            done: false,
            request_id: request_id.to_owned(),
            fallback: fnkit_core::adapter::trace_context(fnkit_core::adapter::TraceInput {
                headers: Some(req.headers()),
                ..Default::default()
            }),
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            started: std::time::SystemTime::now(),
            clock: Instant::now(),
        }
    }

    /// Reports the end, once: `trace` when the shape found one, else the headers'.
    fn finish(&mut self, trace: Option<&TraceContext>, status: u16, error: Option<ErrorKind>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        observe::finished(&observe::Record {
            platform: self.platform,
            shape: self.shape,
            request_id: &self.request_id,
            trace: trace.filter(|t| t.span.is_some()).unwrap_or(&self.fallback),
            started: self.started,
            duration: self.clock.elapsed(),
            status,
            error,
            http: Some((self.method.as_str(), &self.path)),
            trigger: self.trigger,
            cold_start: observe::take_cold_start(),
        });
    }
}

impl Drop for Observing {
    fn drop(&mut self) {
        // 499: the client closed the request (the status proxies log for it).
        self.finish(None, 499, None);
    }
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

/// A header's value as text, if it is present, visible ASCII and not empty.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(header_text)
}

/// A header value as text, if it is visible ASCII and not empty: how the server reads every
/// header it uses itself ([`header_str`], and `probes::Seen` in one pass).
pub(crate) fn header_text(value: &HeaderValue) -> Option<&str> {
    value.to_str().ok().filter(|s| !s.is_empty())
}

/// A JSON answer.
pub(crate) fn json_reply(status: StatusCode, body: Vec<u8>) -> Reply {
    let mut r = Response::new(ReplyBody::rendered(body));
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
