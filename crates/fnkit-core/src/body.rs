//! The body of an HTTP request or response: buffered bytes, or a stream of chunks the handler
//! produces as it goes.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::Error;

/// The body of an HTTP request or response given to and returned by an HTTP handler.
///
/// A request body is always whole: fnkit reads it (within the body limit) before calling the
/// handler, because that is what Lambda, Knative and OpenFaaS deliver alike. A response body is
/// bytes, or a stream ([`Body::from_stream`], [`Body::channel`]) that fnkit sends as the handler
/// produces it: chunked HTTP/1.1 or HTTP/2 data frames on Knative, OpenFaaS and locally, and
/// Lambda's response streaming from a Function URL or API Gateway REST API (docs/platforms.md
/// §1.7). Where the platform cannot stream (an ALB, an HTTP API) fnkit collects the stream and
/// sends it whole.
///
/// ```
/// use fnkit_core::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.as_bytes(), b"hello");
/// assert_eq!(body.to_str().unwrap(), "hello");
/// assert!(Body::empty().is_empty());
/// ```
///
/// `Body` is a [`Stream`] of `Result<Bytes, Error>` chunks either way: a whole body is one chunk.
#[derive(Default)]
pub struct Body(Inner);

enum Inner {
    Full(Bytes),
    Stream(Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>),
    Channel(Receiver),
}

impl Default for Inner {
    fn default() -> Self {
        Self::Full(Bytes::new())
    }
}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Self(Inner::Full(Bytes::new()))
    }

    /// A body sent as `stream` yields its chunks. An `Err` chunk ends the response as a failure
    /// the platform can see (a cut HTTP/1.1 chunked body or an HTTP/2 reset; on Lambda, the
    /// error trailers of a streamed response).
    ///
    /// ```
    /// # use bytes::Bytes;
    /// struct Two(u8);
    /// impl futures_core::Stream for Two {
    ///     type Item = Result<Bytes, fnkit_core::Error>;
    ///     fn poll_next(
    ///         mut self: std::pin::Pin<&mut Self>,
    ///         _: &mut std::task::Context<'_>,
    ///     ) -> std::task::Poll<Option<Self::Item>> {
    ///         self.0 += 1;
    ///         std::task::Poll::Ready((self.0 <= 2).then(|| Ok(Bytes::from("chunk\n"))))
    ///     }
    /// }
    /// let body = fnkit_core::Body::from_stream(Two(0));
    /// assert!(body.is_stream());
    /// ```
    pub fn from_stream<S, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Error>,
    {
        Self(Inner::Stream(Box::pin(MapErr(Box::pin(stream)))))
    }

    /// A streamed body and the sender that writes it: the handler returns the body at once and
    /// writes chunks from a task it spawns. The body ends when the sender is dropped, or fails
    /// where [`BodySender::abort`] is called.
    ///
    /// ```
    /// # async fn doc() -> Result<(), fnkit_core::Error> {
    /// let (mut tx, body) = fnkit_core::Body::channel();
    /// tx.send("chunk 1\n").await?;
    /// drop(tx);
    /// assert_eq!(body.collect().await?, "chunk 1\n");
    /// # Ok(()) }
    /// ```
    pub fn channel() -> (BodySender, Self) {
        let chan = Arc::new(Mutex::new(Chan::default()));
        (
            BodySender { chan: chan.clone() },
            Self(Inner::Channel(Receiver(chan))),
        )
    }

    /// Whether this body is a stream, not bytes at hand.
    pub fn is_stream(&self) -> bool {
        !matches!(self.0, Inner::Full(_))
    }

    /// The body's bytes; empty for a stream (see [`Body::collect`]).
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Inner::Full(b) => b,
            _ => &[],
        }
    }

    /// The body as UTF-8 text; empty for a stream.
    ///
    /// # Errors
    /// When the bytes are not UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(self.as_bytes())
    }

    /// Whether the body has no bytes (a stream is not known to be empty: `false`).
    pub fn is_empty(&self) -> bool {
        matches!(&self.0, Inner::Full(b) if b.is_empty())
    }

    /// The length in bytes; 0 for a stream.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// The body's bytes, without copying; empty for a stream (see [`Body::collect`]).
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Inner::Full(b) => b,
            _ => Bytes::new(),
        }
    }

    /// Every chunk of the body, joined.
    ///
    /// # Errors
    /// The error a stream ended with.
    pub async fn collect(mut self) -> Result<Bytes, Error> {
        if let Inner::Full(b) = self.0 {
            return Ok(b);
        }
        let mut out = BytesMut::new();
        while let Some(chunk) = poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out.freeze())
    }

    /// A body holding `value` serialised as JSON.
    ///
    /// # Errors
    /// When `value` cannot be serialised.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, crate::Error> {
        serde_json::to_vec(value)
            .map(Self::from)
            .map_err(crate::Error::internal)
    }
}

impl Stream for Body {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.0 {
            Inner::Full(b) if b.is_empty() => Poll::Ready(None),
            Inner::Full(b) => Poll::Ready(Some(Ok(std::mem::take(b)))),
            Inner::Stream(s) => s.as_mut().poll_next(cx),
            Inner::Channel(Receiver(chan)) => {
                let mut chan = chan.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(item) = chan.queue.pop_front() {
                    if let Some(w) = chan.sender_waker.take() {
                        w.wake();
                    }
                    return Poll::Ready(Some(item));
                }
                if chan.sender_gone {
                    return Poll::Ready(None);
                }
                chan.body_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The reading end of a [`Body::channel`]: dropping it tells the sender to stop.
struct Receiver(Arc<Mutex<Chan>>);

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut chan = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        chan.body_gone = true;
        if let Some(w) = chan.sender_waker.take() {
            w.wake();
        }
    }
}

/// How many chunks a [`BodySender`] may have written ahead of the platform.
const CHANNEL_CHUNKS: usize = 16;

#[derive(Default)]
struct Chan {
    queue: VecDeque<Result<Bytes, Error>>,
    sender_gone: bool,
    body_gone: bool,
    body_waker: Option<Waker>,
    sender_waker: Option<Waker>,
}

/// Writes the chunks of a [`Body::channel`] body.
pub struct BodySender {
    chan: Arc<Mutex<Chan>>,
}

impl BodySender {
    /// Sends a chunk, waiting while the platform is [16 chunks] behind.
    ///
    /// [16 chunks]: CHANNEL_CHUNKS
    ///
    /// # Errors
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when the body is gone (the
    /// client left, or the response was dropped): stop producing.
    pub async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        let mut chunk = Some(chunk.into());
        poll_fn(|cx| {
            let mut chan = self.chan.lock().unwrap_or_else(PoisonError::into_inner);
            if chan.body_gone {
                return Poll::Ready(Err(Error::new(
                    crate::ErrorKind::Unavailable,
                    "the response body is no longer read",
                )));
            }
            if chan.queue.len() >= CHANNEL_CHUNKS {
                chan.sender_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            if let Some(chunk) = chunk.take() {
                chan.queue.push_back(Ok(chunk));
            }
            if let Some(w) = chan.body_waker.take() {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Ends the body with `error` after what was sent: the platform sees a failed response.
    pub fn abort(self, error: Error) {
        let mut chan = self.chan.lock().unwrap_or_else(PoisonError::into_inner);
        chan.queue.push_back(Err(error));
    }
}

impl fmt::Debug for BodySender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodySender")
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut chan = self.chan.lock().unwrap_or_else(PoisonError::into_inner);
        if std::thread::panicking() {
            // The task writing the body panicked: the body must not look complete.
            chan.queue.push_back(Err(Error::new(
                crate::ErrorKind::Panic,
                "the task writing the response body panicked",
            )));
        }
        chan.sender_gone = true;
        if let Some(w) = chan.body_waker.take() {
            w.wake();
        }
    }
}

/// A stream whose errors become [`Error`]s (boxed, so it can be polled without a pin
/// projection).
struct MapErr<S>(Pin<Box<S>>);

impl<S, E> Stream for MapErr<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<Error>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .as_mut()
            .poll_next(cx)
            .map(|o| o.map(|r| r.map_err(Into::into)))
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies are user data: show their size, never their content.
        match &self.0 {
            Inner::Full(b) => write!(f, "Body({} bytes)", b.len()),
            _ => f.write_str("Body(stream)"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self(Inner::Full(b))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self(Inner::Full(Bytes::from(v)))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self(Inner::Full(Bytes::from(s)))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self(Inner::Full(Bytes::from_static(s.as_bytes())))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Self(Inner::Full(Bytes::from_static(s)))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

impl From<Body> for Bytes {
    /// The bytes of a whole body; empty for a stream.
    fn from(b: Body) -> Self {
        b.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn a_whole_body_is_one_chunk() {
        let mut body = Body::from("abc");
        assert!(!body.is_stream());
        let first = block_on(poll_fn(|cx| Pin::new(&mut body).poll_next(cx)));
        assert_eq!(first.unwrap().unwrap(), "abc");
        assert!(block_on(poll_fn(|cx| Pin::new(&mut body).poll_next(cx))).is_none());
        assert!(block_on(poll_fn(|cx| Pin::new(&mut Body::empty()).poll_next(cx))).is_none());
    }

    #[test]
    fn a_channel_body_yields_what_was_sent_then_ends() {
        let (mut tx, body) = Body::channel();
        assert!(body.is_stream() && !body.is_empty() && body.as_bytes().is_empty());
        block_on(async {
            tx.send("a").await.unwrap();
            tx.send(Bytes::from_static(b"b")).await.unwrap();
        });
        drop(tx);
        assert_eq!(block_on(body.collect()).unwrap(), "ab");
    }

    #[test]
    fn an_aborted_channel_fails_after_what_was_sent() {
        let (mut tx, mut body) = Body::channel();
        block_on(tx.send("a")).unwrap();
        tx.abort(Error::handler("broke"));
        let first = block_on(poll_fn(|cx| Pin::new(&mut body).poll_next(cx)));
        assert_eq!(first.unwrap().unwrap(), "a");
        let second = block_on(poll_fn(|cx| Pin::new(&mut body).poll_next(cx)));
        assert_eq!(second.unwrap().unwrap_err().message(), "broke");
    }

    #[test]
    fn the_sender_learns_when_the_body_is_gone_and_waits_when_it_is_full() {
        let (mut tx, body) = Body::channel();
        for _ in 0..CHANNEL_CHUNKS {
            block_on(tx.send("x")).unwrap();
        }
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut full = std::pin::pin!(tx.send("y"));
        assert!(full.as_mut().poll(&mut cx).is_pending());
        drop(body);
        let Poll::Ready(Err(e)) = full.as_mut().poll(&mut cx) else {
            panic!("a send into a dropped body must fail");
        };
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
    }

    #[test]
    fn a_sender_dropped_by_a_panic_fails_the_body() {
        let (tx, body) = Body::channel();
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _tx = tx;
            panic!("producer broke");
        }));
        let err = block_on(body.collect()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Panic);
    }

    #[test]
    fn a_stream_body_maps_its_errors() {
        struct Failing(bool);
        impl Stream for Failing {
            type Item = Result<Bytes, std::io::Error>;
            fn poll_next(
                mut self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Self::Item>> {
                let first = std::mem::replace(&mut self.0, false);
                Poll::Ready(Some(if first {
                    Ok(Bytes::from_static(b"ok"))
                } else {
                    Err(std::io::Error::other("disk"))
                }))
            }
        }
        let body = Body::from_stream(Failing(true));
        assert_eq!(block_on(body.collect()).unwrap_err().message(), "disk");
    }
}
