//! Which request a log line belongs to, without a tracing span per request.
//!
//! Every line a handler logs carries its request's id, and its trace and span ids once the trace
//! is known (docs/tracing.md). An adapter wraps each request's future in [`in_request`]; while it
//! is polled, [`current`] gives the log subscriber that request's [`RequestLog`]. A thread-local
//! swap per poll costs far less than creating, entering and closing a `tracing` span (and
//! rendering its fields) for every request, which is what fnkit did before (BENCHMARKS.md,
//! "Request log scope").
//!
//! Tasks the handler spawns are not in the scope, as with a span that is not passed on.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use crate::SpanContext;

/// The log fields of one request or invocation.
#[derive(Debug)]
pub struct RequestLog {
    request_id: String,
    span: OnceLock<SpanContext>,
}

impl RequestLog {
    /// A request's log fields, its trace not known yet.
    pub fn new(request_id: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            request_id: request_id.into(),
            span: OnceLock::new(),
        })
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The request's span, once [`record_span`] has set it.
    pub fn span(&self) -> Option<&SpanContext> {
        self.span.get()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<RequestLog>>> = const { RefCell::new(None) };
}

/// Makes `log` the current request on this thread until the guard drops (then the previous one
/// is current again).
pub fn enter(log: &Arc<RequestLog>) -> Entered {
    Entered(CURRENT.with(|c| c.replace(Some(log.clone()))))
}

/// The guard of [`enter`].
#[derive(Debug)]
pub struct Entered(Option<Arc<RequestLog>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Calls `f` with the current request's log fields, if a request is current on this thread.
pub fn current<R>(f: impl FnOnce(Option<&RequestLog>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_deref()))
}

/// Puts `span`'s ids on the current request's log lines, from now on. The first span recorded
/// stays: an invocation has one trace.
pub fn record_span(span: &SpanContext) {
    current(|log| {
        if let Some(log) = log {
            let _ = log.span.set(*span);
        }
    });
}

pin_project_lite::pin_project! {
    /// A future polled with its request current: [`in_request`].
    #[derive(Debug)]
    pub struct InRequest<F> {
        #[pin]
        inner: F,
        log: Arc<RequestLog>,
    }
}

/// Runs `future` with `log` as the current request each time it is polled.
pub fn in_request<F: Future>(log: &Arc<RequestLog>, future: F) -> InRequest<F> {
    InRequest {
        inner: future,
        log: log.clone(),
    }
}

impl<F: Future> Future for InRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = enter(this.log);
        this.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanId, TraceId};

    fn ids() -> Option<String> {
        current(|l| l.map(|l| l.request_id().to_owned()))
    }

    #[test]
    fn the_current_request_is_the_innermost_entered_and_restored_after() {
        assert_eq!(ids(), None);
        let outer = RequestLog::new("outer");
        let inner = RequestLog::new("inner");
        {
            let _a = enter(&outer);
            assert_eq!(ids().as_deref(), Some("outer"));
            {
                let _b = enter(&inner);
                assert_eq!(ids().as_deref(), Some("inner"));
            }
            assert_eq!(ids().as_deref(), Some("outer"));
        }
        assert_eq!(ids(), None);
    }

    #[test]
    fn a_future_sees_its_request_only_while_polled_and_keeps_the_first_span() {
        let log = RequestLog::new("r-1");
        let span = |t: &str| SpanContext {
            trace_id: TraceId::parse(t).expect("trace id"),
            span_id: SpanId::parse("00f067aa0ba902b7").expect("span id"),
            sampled: true,
        };
        let first = span("4bf92f3577b34da6a3ce929d0e0e4736");
        let fut = in_request(&log, async move {
            record_span(&first);
            record_span(&span("0af7651916cd43dd8448eb211c80319c"));
            ids()
        });
        let waker = std::task::Waker::noop();
        let mut fut = std::pin::pin!(fut);
        let seen = fut.as_mut().poll(&mut Context::from_waker(waker));
        assert_eq!(seen, Poll::Ready(Some("r-1".to_owned())));
        assert_eq!(ids(), None, "not current once the poll returns");
        assert_eq!(
            log.span()
                .map(|s| s.trace_id.as_str().to_owned())
                .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        record_span(&first); // no request current: nothing to record, no panic
    }
}
