//! Work to do once when the platform stops the process: [`on_shutdown`].

use std::future::Future;
use std::sync::Mutex;

use crate::adapter::{BoxFuture, Limit};
use crate::guard::guard_watched;
use crate::Platform;

type Hook = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` once when the platform stops the process: flush a buffer, close a pool, say
/// goodbye to a broker. Call it before `fnkit::run`; several hooks run in the order they were
/// set.
///
/// - Knative, OpenFaaS, local: on SIGTERM or SIGINT, after in-flight requests are drained,
///   within `FNKIT_SHUTDOWN_TIMEOUT_SECS` (25 s).
/// - Lambda: Lambda sends SIGTERM only to a runtime with a registered extension, so with a hook
///   set (and only then) fnkit registers an internal extension during init; on SIGTERM the hooks
///   run within 450 ms (Lambda allows a runtime with an internal extension 500 ms), then the
///   process exits 0. Without a hook nothing is registered and init costs nothing more.
///
/// A hook that panics or runs out of time is logged; the process still exits 0.
///
/// ```no_run
/// fnkit_core::on_shutdown(|| async {
///     // flush the write buffer, close the pool ...
/// });
/// ```
pub fn on_shutdown<F, Fut>(hook: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let hook: Hook = Box::new(move || Box::pin(hook()));
    HOOKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(hook);
}

/// Whether any [`on_shutdown`] hook is set.
pub fn has_shutdown_hooks() -> bool {
    !HOOKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .is_empty()
}

/// Runs the [`on_shutdown`] hooks, once: each in turn, a panicking one logged by the caller's
/// `report` and the next one run all the same. Bound it with the platform's grace period.
pub async fn run_shutdown_hooks(platform: Platform, report: impl Fn(&crate::Error)) {
    let hooks = std::mem::take(
        &mut *HOOKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let unbounded = Limit::Timeout {
        after: std::time::Duration::MAX,
        setting: "on_shutdown",
    };
    for hook in hooks {
        let call: BoxFuture<'static, Result<(), crate::Error>> = Box::pin(async move {
            hook().await;
            Ok(())
        });
        // A hook is not a request: the blocked-poll watch is for handlers.
        let guarded = guard_watched(
            call,
            None::<fn() -> std::future::Pending<()>>,
            unbounded,
            platform,
            None,
        );
        if let Err(e) = guarded.await {
            report(&e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn hooks_run_once_in_order_and_a_panic_does_not_stop_the_next() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let panics = Arc::new(AtomicUsize::new(0));
        let o = order.clone();
        on_shutdown(move || async move { o.lock().unwrap().push(1) });
        on_shutdown(|| async { panic!("hook 2 fails") });
        let o = order.clone();
        on_shutdown(move || async move { o.lock().unwrap().push(3) });
        assert!(has_shutdown_hooks());
        let p = panics.clone();
        let run = run_shutdown_hooks(Platform::Local, move |e| {
            assert_eq!(e.message(), "the handler panicked: hook 2 fails");
            p.fetch_add(1, Ordering::SeqCst);
        });
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(std::pin::pin!(run).poll(&mut cx).is_ready());
        assert_eq!(*order.lock().unwrap(), [1, 3]);
        assert_eq!(panics.load(Ordering::SeqCst), 1);
        assert!(!has_shutdown_hooks());
    }
}
