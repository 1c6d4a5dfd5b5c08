//! Running a handler's future with its panics caught and its time bounded: the one mapping from
//! a panic or a timeout to an [`Error`], for every adapter.

use std::any::Any;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::handler::BoxFuture;
use crate::{Error, ErrorKind, Platform};

/// What bounds a handler's run, as the error should name it when the bound passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A time limit from configuration, and the setting that configures it
    /// (`FNKIT_TIMEOUT_SECS`, of-watchdog's `exec_timeout`).
    Timeout {
        /// The limit.
        after: Duration,
        /// The setting to name in the error.
        setting: &'static str,
    },
    /// The invocation's deadline, set by the platform (Lambda).
    Deadline,
}

/// Polls `call` until it finishes, the timer `expiry` makes resolves, or it panics, and gives its
/// result, a [`ErrorKind::Timeout`] error naming `limit`, or a [`ErrorKind::Panic`] error with the
/// panic's message. `expiry` makes the adapter's timer (a `tokio::time::sleep_until`), `None` for
/// no limit; the handler is polled first, so a handler that finishes as the timer fires still
/// counts.
///
/// The timer is made only when the handler has not finished at its first poll: a handler that
/// answers without waiting (most of them) costs no timer. `expiry` should count from the start of
/// the call (a deadline fixed before), not from when it is called.
///
/// The panic message reads `Lambda panicked: <message>` on Lambda (what `lambda_runtime` says,
/// and what Lambda tooling looks for) and `the handler panicked: <message>` elsewhere.
///
/// ```
/// # use std::time::Duration;
/// use fnkit_core::adapter::{guard, BoxFuture, Limit};
/// use fnkit_core::{ErrorKind, Platform};
/// # let waker = std::task::Waker::noop();
/// # let mut cx = std::task::Context::from_waker(waker);
/// let limit = Limit::Timeout { after: Duration::from_secs(1), setting: "FNKIT_TIMEOUT_SECS" };
/// let call: BoxFuture<'static, Result<u8, fnkit_core::Error>> = Box::pin(async { panic!("boom") });
/// let fut = guard(call, None::<fn() -> std::future::Pending<()>>, limit, Platform::Local);
/// # let std::task::Poll::Ready(result) = std::pin::pin!(fut).poll(&mut cx) else { panic!() };
/// // ... awaited, it gives:
/// let err = result.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Panic);
/// assert_eq!(err.message(), "the handler panicked: boom");
/// # use std::future::Future;
/// ```
///
/// # Errors
/// The handler's own error, or a `Timeout` or `Panic` error as above.
///
/// With [`watch_blocking`] set, a poll of the handler that holds its thread for the threshold or
/// longer is reported, once per call.
pub async fn guard<T, E>(
    call: BoxFuture<'_, Result<T, Error>>,
    expiry: Option<impl FnOnce() -> E>,
    limit: Limit,
    platform: Platform,
) -> Result<T, Error>
where
    E: Future<Output = ()>,
{
    guard_watched(call, expiry, limit, platform, blocking_threshold()).await
}

/// [`guard`], with the blocked-poll watch given (`None`: not watched, as shutdown hooks are).
pub(crate) async fn guard_watched<T, E>(
    call: BoxFuture<'_, Result<T, Error>>,
    mut expiry: Option<impl FnOnce() -> E>,
    limit: Limit,
    platform: Platform,
    mut watch: Option<Duration>,
) -> Result<T, Error>
where
    E: Future<Output = ()>,
{
    let mut call = call;
    let mut timer = pin!(None::<E>);
    poll_fn(|cx| {
        let started = watch.map(|_| Instant::now());
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx)));
        if let (Some(started), Some(threshold)) = (started, watch) {
            let held = started.elapsed();
            if held >= threshold {
                watch = None; // one report per invocation
                if let Some(report) = REPORT_BLOCKED.get() {
                    report(held);
                }
            }
        }
        match polled {
            Ok(Poll::Ready(result)) => return Poll::Ready(result),
            Ok(Poll::Pending) => {}
            Err(payload) => return Poll::Ready(Err(panicked(&*payload, platform))),
        }
        if let Some(make) = expiry.take() {
            timer.set(Some(make()));
        }
        match timer.as_mut().as_pin_mut().map(|e| e.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(timed_out(limit))),
            _ => Poll::Pending,
        }
    })
    .await
}

/// The blocked-poll threshold in nanoseconds; 0 when not watching.
static BLOCKED_NANOS: AtomicU64 = AtomicU64::new(0);
static REPORT_BLOCKED: OnceLock<fn(Duration)> = OnceLock::new();

/// Watches every handler run by [`guard`]: a single poll of the handler that holds its thread
/// for `threshold` or longer (CPU-bound work or a blocking call, without an `.await` that
/// yields) is passed to `report`, with how long it held, on that thread, inside the
/// invocation's span, after the poll returns, once per invocation. A zero `threshold` turns it
/// off. The first `report` given stays.
///
/// A watched poll costs two reads of the monotonic clock; an unwatched one a single atomic load
/// per invocation. `fnkit::run` sets it from `FNKIT_BLOCKED_WARN_MS` (docs/runtime.md).
pub fn watch_blocking(threshold: Duration, report: fn(Duration)) {
    let _ = REPORT_BLOCKED.set(report);
    let nanos = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
    BLOCKED_NANOS.store(nanos, Ordering::Relaxed);
}

fn blocking_threshold() -> Option<Duration> {
    match BLOCKED_NANOS.load(Ordering::Relaxed) {
        0 => None,
        nanos => Some(Duration::from_nanos(nanos)),
    }
}

/// The error for a handler that panicked with `payload`.
fn panicked(payload: &(dyn Any + Send), platform: Platform) -> Error {
    let prefix = if platform == Platform::Lambda {
        "Lambda panicked"
    } else {
        "the handler panicked"
    };
    let message = match panic_message(payload) {
        Some(msg) => format!("{prefix}: {msg}"),
        None => prefix.to_owned(),
    };
    Error::new(ErrorKind::Panic, message)
}

/// The error for a handler stopped by `limit`.
fn timed_out(limit: Limit) -> Error {
    let message = match limit {
        Limit::Timeout { after, setting } => {
            format!("the handler did not finish within {after:?} ({setting})")
        }
        Limit::Deadline => {
            "the handler ran past the invocation's deadline and was stopped".to_owned()
        }
    };
    Error::new(ErrorKind::Timeout, message)
}

/// The message of a panic payload (`panic!("...")` gives a `&str` or a `String`), if it has one.
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{pending, ready, Pending};

    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Pending at its first poll, `value` at the next.
    fn pending_once<T: Unpin>(value: T) -> impl Future<Output = T> + Unpin {
        let mut value = Some(value);
        let mut polled = false;
        std::future::poll_fn(move |_| {
            if std::mem::replace(&mut polled, true) {
                Poll::Ready(value.take().expect("polled after it was ready"))
            } else {
                Poll::Pending
            }
        })
    }

    const LIMIT: Limit = Limit::Timeout {
        after: Duration::from_millis(250),
        setting: "FNKIT_TIMEOUT_SECS",
    };

    #[test]
    fn string_and_str_payloads_have_messages_others_do_not() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(&*s), Some("static"));
        let s: Box<dyn Any + Send> = Box::new(String::from("formatted 7"));
        assert_eq!(panic_message(&*s), Some("formatted 7"));
        let n: Box<dyn Any + Send> = Box::new(7_u8);
        assert_eq!(panic_message(&*n), None);
    }

    #[test]
    fn a_panic_is_a_panic_error_worded_for_the_platform() {
        for (platform, expected) in [
            (Platform::Lambda, "Lambda panicked: zero 0"),
            (Platform::Knative, "the handler panicked: zero 0"),
        ] {
            let call: BoxFuture<'_, Result<(), Error>> = Box::pin(async { panic!("zero {}", 0) });
            let err =
                block_on(guard(call, None::<fn() -> Pending<()>>, LIMIT, platform)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panic);
            assert_eq!(err.message(), expected);
        }
        let call: BoxFuture<'_, Result<(), Error>> =
            Box::pin(async { std::panic::panic_any(7_u8) });
        let err = block_on(guard(
            call,
            None::<fn() -> Pending<()>>,
            LIMIT,
            Platform::Lambda,
        ))
        .unwrap_err();
        assert_eq!(err.message(), "Lambda panicked");
    }

    #[test]
    fn expiry_stops_a_pending_handler_with_a_timeout_naming_the_limit() {
        let call: BoxFuture<'_, Result<(), Error>> = Box::pin(pending());
        let err = block_on(guard(call, Some(|| ready(())), LIMIT, Platform::Local)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(
            err.message(),
            "the handler did not finish within 250ms (FNKIT_TIMEOUT_SECS)"
        );
        let call: BoxFuture<'_, Result<(), Error>> = Box::pin(pending());
        let err = block_on(guard(
            call,
            Some(|| ready(())),
            Limit::Deadline,
            Platform::Lambda,
        ));
        assert!(err.unwrap_err().message().contains("deadline"));
    }

    #[test]
    fn a_poll_that_holds_the_thread_is_reported_once() {
        use std::sync::atomic::AtomicUsize;
        static REPORTS: AtomicUsize = AtomicUsize::new(0);
        fn report(held: Duration) {
            assert!(held >= Duration::from_millis(20), "{held:?}");
            REPORTS.fetch_add(1, Ordering::SeqCst);
        }
        let spin = || {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(25) {
                std::hint::spin_loop();
            }
        };
        // Two long polls (one before a yield, one after), one report.
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(async move {
            spin();
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            spin();
            Ok(1)
        });
        let watch = Some(Duration::from_millis(20));
        let _ = REPORT_BLOCKED.set(report);
        let out = block_on(guard_watched(
            call,
            None::<fn() -> Pending<()>>,
            LIMIT,
            Platform::Local,
            watch,
        ));
        assert_eq!(out.unwrap(), 1);
        assert_eq!(REPORTS.load(Ordering::SeqCst), 1);
        // A quick handler, or no watch: nothing.
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(async { Ok(2) });
        let _ = block_on(guard_watched(
            call,
            None::<fn() -> Pending<()>>,
            LIMIT,
            Platform::Local,
            watch,
        ));
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(async move {
            spin();
            Ok(3)
        });
        let _ = block_on(guard_watched(
            call,
            None::<fn() -> Pending<()>>,
            LIMIT,
            Platform::Local,
            None,
        ));
        assert_eq!(REPORTS.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_timer_is_made_only_for_a_handler_that_waits() {
        use std::cell::Cell;
        let made = Cell::new(0);
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(async { Ok(1) });
        let timer = || {
            made.set(made.get() + 1);
            ready(())
        };
        assert_eq!(
            block_on(guard(call, Some(timer), LIMIT, Platform::Local)).unwrap(),
            1
        );
        assert_eq!(made.get(), 0, "a handler ready at once made a timer");
        let mut polls = 0;
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(std::future::poll_fn(move |cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(Ok(2))
        }));
        let timer = || {
            made.set(made.get() + 1);
            pending::<()>()
        };
        assert_eq!(
            block_on(guard(call, Some(timer), LIMIT, Platform::Local)).unwrap(),
            2
        );
        assert_eq!(made.get(), 1, "one timer for a handler polled three times");
    }

    #[test]
    fn a_handler_that_is_ready_wins_over_an_expired_timer() {
        // Both wait at the first poll and are ready at the second: the handler is polled first.
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(pending_once(Ok(7)));
        let out = block_on(guard(
            call,
            Some(|| pending_once(())),
            LIMIT,
            Platform::Local,
        ));
        assert_eq!(out.unwrap(), 7);
        let call: BoxFuture<'_, Result<u8, Error>> = Box::pin(async { Err("no".into()) });
        let err = block_on(guard(
            call,
            None::<fn() -> Pending<()>>,
            LIMIT,
            Platform::Local,
        ));
        assert_eq!(err.unwrap_err().kind(), ErrorKind::Handler);
    }
}
