//! Catching a handler's panic, for adapters: a panicking handler becomes an error answer and the
//! process goes on serving (the release profile unwinds on purpose).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that polls `F` and turns a panic inside it into `Err(payload)`.
///
/// ```
/// use fnkit_core::{panic_message, BoxFuture, CatchUnwind};
/// # let waker = std::task::Waker::noop();
/// # let mut cx = std::task::Context::from_waker(waker);
/// let fut: BoxFuture<'static, u8> = Box::pin(async { panic!("boom") });
/// let mut caught = CatchUnwind(fut);
/// # let std::task::Poll::Ready(result) = std::pin::Pin::new(&mut caught).poll(&mut cx) else { panic!() };
/// // ... awaited, it gives:
/// assert_eq!(panic_message(&*result.unwrap_err()), Some("boom"));
/// # use std::future::Future;
/// ```
#[derive(Debug)]
pub struct CatchUnwind<F>(pub F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
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

    #[test]
    fn string_and_str_payloads_have_messages_others_do_not() {
        let s: Box<dyn Any + Send> = Box::new("static");
        assert_eq!(panic_message(&*s), Some("static"));
        let s: Box<dyn Any + Send> = Box::new(String::from("formatted 7"));
        assert_eq!(panic_message(&*s), Some("formatted 7"));
        let n: Box<dyn Any + Send> = Box::new(7_u8);
        assert_eq!(panic_message(&*n), None);
    }
}
