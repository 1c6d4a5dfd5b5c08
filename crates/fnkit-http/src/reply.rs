//! The body of an answer: bytes, or a handler's stream sent as it is produced, cut at the
//! request's time limit.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use fnkit_core::{Body, Error, ErrorKind};
use futures_core::Stream;
use hyper::body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// An answer, whole or streamed.
pub(crate) type Reply = http::Response<ReplyBody>;

/// What hyper sends: a whole body (with its `Content-Length`), or a stream (chunked over
/// HTTP/1.1, data frames over HTTP/2). A stream that fails, or outlives the time limit, ends
/// with an error: hyper then cuts the chunked body short (no last chunk) or resets the HTTP/2
/// stream, which is how HTTP says "this answer is incomplete".
pub(crate) struct ReplyBody(Kind);

enum Kind {
    Whole(Option<Bytes>),
    Stream {
        body: Body,
        limit: Pin<Box<Sleep>>,
        /// An error held back one poll, so hyper flushes the chunks before it first: it drops
        /// what it has buffered when a body fails.
        failed: Option<Error>,
    },
}

impl ReplyBody {
    /// Bytes, sent whole.
    pub(crate) fn whole(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self(Kind::Whole((!bytes.is_empty()).then_some(bytes)))
    }

    /// The bytes of a whole body (empty for an empty one); `None` for a stream.
    pub(crate) fn into_whole(self) -> Option<Bytes> {
        match self.0 {
            Kind::Whole(bytes) => Some(bytes.unwrap_or_default()),
            Kind::Stream { .. } => None,
        }
    }

    /// A handler's body: whole, or streamed until `deadline`.
    pub(crate) fn of(body: Body, deadline: Instant) -> Self {
        if body.is_stream() {
            Self(Kind::Stream {
                body,
                limit: Box::pin(tokio::time::sleep_until(deadline)),
                failed: None,
            })
        } else {
            Self::whole(body.into_bytes())
        }
    }
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match &mut self.0 {
            Kind::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream {
                body,
                limit,
                failed,
            } => {
                if let Some(e) = failed.take() {
                    return Poll::Ready(Some(Err(e)));
                }
                let e = match Pin::new(body).poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        return Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => e,
                    Poll::Pending if limit.as_mut().poll(cx).is_ready() => Error::new(
                        ErrorKind::Timeout,
                        "the response stream was still going at the time limit; cut short",
                    ),
                    Poll::Pending => return Poll::Pending,
                };
                tracing::error!(
                    error = e.kind().as_str(),
                    "the response stream failed: {}",
                    e.message()
                );
                *failed = Some(e);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.0, Kind::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::time::Duration;

    #[tokio::test]
    async fn a_whole_body_has_an_exact_size_and_one_frame() {
        let body = ReplyBody::whole("hello");
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
        assert!(hyper::body::Body::is_end_stream(&ReplyBody::whole("")));
    }

    #[tokio::test]
    async fn a_stream_is_sent_as_it_comes_and_cut_at_the_limit() {
        let (mut tx, body) = Body::channel();
        tx.send("a").await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut reply = ReplyBody::of(body, deadline);
        assert_eq!(hyper::body::Body::size_hint(&reply).exact(), None);
        let first = reply.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        // Nothing more comes: the limit ends it as a timeout.
        let cut = reply.frame().await.unwrap().unwrap_err();
        assert_eq!(cut.kind(), ErrorKind::Timeout);
        drop(tx);
    }
}
