//! The one place adapters report what happens to invocations, for whatever observes them
//! (metrics, traces). Nothing is observed unless an observer was added, and then each adapter
//! reports through the same three calls: [`started`], [`finished`], [`flush`].

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use crate::adapter::BoxFuture;
use crate::{ErrorKind, Platform, TraceContext};

/// An invocation that has begun.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// The platform serving it.
    pub platform: Platform,
    /// The handler's shape: `typed`, `http` or `event`.
    pub shape: &'static str,
}

/// An invocation that has ended, with everything an observer may record.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The platform that served it.
    pub platform: Platform,
    /// The handler's shape: `typed`, `http` or `event`.
    pub shape: &'static str,
    /// The invocation's id.
    pub request_id: &'a str,
    /// Its trace context.
    pub trace: &'a TraceContext,
    /// When it began (wall clock).
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The HTTP status it answered with; on Lambda 200 for a response, the error's status for an
    /// error.
    pub status: u16,
    /// The error's kind, when it failed.
    pub error: Option<ErrorKind>,
    /// The request's method and path, for HTTP requests and HTTP events.
    pub http: Option<(&'a str, &'a str)>,
    /// What triggered it, in OpenTelemetry's `faas.trigger` words: `http`, `pubsub`, `other`.
    pub trigger: &'static str,
    /// Whether it is the process's first invocation.
    pub cold_start: bool,
}

/// Something that watches invocations: metrics, a trace exporter. Methods must be cheap and must
/// not block; [`Observer::flush`] is where I/O goes.
pub trait Observer: Send + Sync + 'static {
    /// The function is ready to serve: listening (HTTP platforms), or about to ask for its first
    /// event (Lambda). Called once.
    fn ready(&self, platform: Platform) {
        let _ = platform;
    }
    /// An invocation began.
    fn started(&self, start: &Start) {
        let _ = start;
    }
    /// An invocation ended.
    fn finished(&self, record: &Record<'_>);
    /// Delivers what is buffered: called where the platform may freeze or stop the process (on
    /// Lambda after each invocation, before the next `/next`; elsewhere at shutdown).
    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
    /// An exposition to serve at `GET /metrics` on HTTP platforms, for the request's `Accept`
    /// header: its content type and body, or `None` when this observer has none.
    fn render(&self, accept: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
        let _ = accept;
        None
    }
}

static OBSERVERS: OnceLock<RwLock<Vec<Arc<dyn Observer>>>> = OnceLock::new();

/// Adds an observer. Call it before serving starts (`fnkit::run` adds the ones its features
/// bring).
pub fn add_observer(observer: Arc<dyn Observer>) {
    let list = OBSERVERS.get_or_init(|| RwLock::new(Vec::new()));
    list.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(observer);
}

fn each(mut f: impl FnMut(&dyn Observer)) {
    let Some(list) = OBSERVERS.get() else {
        return; // nothing observes: one load, no lock
    };
    for o in list
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
    {
        f(o.as_ref());
    }
}

static WARM: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this is the process's first invocation: `true` once, then `false`.
pub fn take_cold_start() -> bool {
    !WARM.swap(true, std::sync::atomic::Ordering::Relaxed)
}

/// Whether any observer is set, so adapters can skip gathering a record's parts.
pub fn observed() -> bool {
    OBSERVERS.get().is_some()
}

/// Makes `found` the invocation's trace if it has none yet (the first one found is the
/// invocation's: in a batch, the first traced event's). The whole context is kept only when an
/// observer will report it; otherwise only its span, which marks the trace as found. The span
/// adopted goes on the current request's log lines ([`crate::adapter::logscope`]).
pub fn adopt(invocation: &mut TraceContext, found: &TraceContext) {
    let Some(span) = found.span.filter(|_| invocation.span.is_none()) else {
        return;
    };
    if observed() {
        *invocation = found.clone();
    } else {
        invocation.span = Some(span);
    }
    crate::logscope::record_span(&span);
}

/// Reports that the function is ready to serve.
pub fn ready(platform: Platform) {
    each(|o| o.ready(platform));
}

/// Reports that an invocation began.
pub fn started(start: &Start) {
    each(|o| o.started(start));
}

/// Reports that an invocation ended.
pub fn finished(record: &Record<'_>) {
    each(|o| o.finished(record));
}

/// Flushes every observer, one after the other.
pub async fn flush() {
    let mut pending = Vec::new();
    each(|o| pending.push(o.flush()));
    for f in pending {
        f.await;
    }
}

/// The `GET /metrics` answer of the first observer that has one.
pub fn render(accept: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
    let mut out = None;
    each(|o| {
        if out.is_none() {
            out = o.render(accept);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Log(Mutex<Vec<String>>);

    impl Observer for Log {
        fn started(&self, start: &Start) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {}", start.shape));
        }
        fn finished(&self, r: &Record<'_>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("end {} {} {}", r.shape, r.status, r.request_id));
        }
        fn render(&self, _accept: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
            Some(("text/plain", b"x 1\n".to_vec()))
        }
    }

    #[test]
    fn observers_see_starts_and_ends_and_render() {
        let log = Arc::new(Log(Mutex::new(Vec::new())));
        add_observer(log.clone());
        assert!(observed());
        started(&Start {
            platform: Platform::Local,
            shape: "typed",
        });
        let trace = TraceContext::default();
        finished(&Record {
            platform: Platform::Local,
            shape: "typed",
            request_id: "r1",
            trace: &trace,
            started: SystemTime::now(),
            duration: Duration::from_millis(1),
            status: 200,
            error: None,
            http: None,
            trigger: "http",
            cold_start: take_cold_start(),
        });
        assert_eq!(*log.0.lock().unwrap(), ["start typed", "end typed 200 r1"]);
        assert_eq!(render(None).unwrap().1, b"x 1\n");
        assert!(!take_cold_start(), "only the first invocation is cold");
    }
}
