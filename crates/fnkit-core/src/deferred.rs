//! Start-up work that can wait until the first answer is out (docs/runtime.md, "Start-up
//! cost"): a cold start pays only for what its first answer needs.
//!
//! A runtime registers work with [`after_first_answer`] while it starts; every adapter calls
//! [`first_answer_out`] once an answer is out (the HTTP server when the first request's answer is
//! written, the Lambda loop after each invocation's), and the work runs at the first such call,
//! once, on that thread. Nothing is allocated until something is registered, and a call with
//! nothing registered is one atomic load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static WORK: Mutex<Vec<fn()>> = Mutex::new(Vec::new());
/// Work is registered and has not run yet.
static PENDING: AtomicBool = AtomicBool::new(false);

fn work() -> MutexGuard<'static, Vec<fn()>> {
    WORK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` once the first answer is out (at the adapter's [`first_answer_out`]), instead of
/// before the process serves.
pub fn after_first_answer(f: fn()) {
    work().push(f);
    PENDING.store(true, Ordering::Release);
}

/// An answer is out: runs the work [`after_first_answer`] registered, in order, once. Later calls
/// run only what was registered since.
pub fn first_answer_out() {
    if !PENDING.swap(false, Ordering::AcqRel) {
        return;
    }
    let pending = std::mem::take(&mut *work());
    for f in pending {
        f();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RAN: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        RAN.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn registered_work_runs_once_after_the_first_answer() {
        after_first_answer(count);
        after_first_answer(count);
        assert_eq!(
            RAN.load(Ordering::SeqCst),
            0,
            "nothing runs at registration"
        );
        first_answer_out();
        assert_eq!(RAN.load(Ordering::SeqCst), 2);
        first_answer_out();
        assert_eq!(RAN.load(Ordering::SeqCst), 2, "work runs once");
    }
}
