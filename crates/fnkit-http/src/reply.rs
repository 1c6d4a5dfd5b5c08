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
    Whole(Option<Chunk>),
    Stream {
        body: Body,
        limit: Pin<Box<Sleep>>,
        /// An error held back one poll, so hyper flushes the chunks before it first: it drops
        /// what it has buffered when a body fails.
        failed: Option<Error>,
    },
}

/// A piece of an answer's body as hyper writes it: `Bytes`, or a body rendered into a `Vec`
/// (JSON answers), sent as it is: turning a `Vec` whose capacity exceeds its length into `Bytes`
/// allocates, once per request.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Bytes from a handler's body or stream.
    Bytes(Bytes),
    /// A rendered body, and how much of it hyper has taken.
    Vec { vec: Vec<u8>, at: usize },
}

impl Chunk {
    fn len(&self) -> usize {
        bytes::Buf::remaining(self)
    }
}

impl bytes::Buf for Chunk {
    fn remaining(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Vec { vec, at } => vec.len() - at,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Self::Bytes(b) => b,
            Self::Vec { vec, at } => &vec[*at..],
        }
    }

    fn advance(&mut self, cnt: usize) {
        match self {
            Self::Bytes(b) => b.advance(cnt),
            Self::Vec { vec, at } => {
                assert!(cnt <= vec.len() - *at, "advanced past the end of a chunk");
                *at += cnt;
            }
        }
    }
}

impl ReplyBody {
    /// Bytes, sent whole.
    pub(crate) fn whole(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self(Kind::Whole(
            (!bytes.is_empty()).then_some(Chunk::Bytes(bytes)),
        ))
    }

    /// A rendered body, sent whole as it is.
    pub(crate) fn rendered(vec: Vec<u8>) -> Self {
        Self(Kind::Whole(
            (!vec.is_empty()).then_some(Chunk::Vec { vec, at: 0 }),
        ))
    }

    /// The bytes of a whole body (empty for an empty one); `None` for a stream.
    pub(crate) fn into_whole(self) -> Option<Bytes> {
        match self.0 {
            Kind::Whole(None) => Some(Bytes::new()),
            Kind::Whole(Some(Chunk::Bytes(bytes))) => Some(bytes),
            Kind::Whole(Some(Chunk::Vec { vec, at })) => Some(Bytes::from(vec).slice(at..)),
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
    type Data = Chunk;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Error>>> {
        match &mut self.0 {
            Kind::Whole(chunk) => Poll::Ready(chunk.take().map(|c| Ok(Frame::data(c)))),
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
                        return Poll::Ready(Some(Ok(Frame::data(Chunk::Bytes(chunk)))))
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
            Kind::Whole(chunk) => {
                SizeHint::with_exact(chunk.as_ref().map_or(0, |c| c.len() as u64))
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
        let body = ReplyBody::rendered(Vec::with_capacity(64));
        assert!(hyper::body::Body::is_end_stream(&body));
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"{\"a\":1}");
        let body = ReplyBody::rendered(v);
        assert_eq!(hyper::body::Body::size_hint(&body).exact(), Some(7));
        assert_eq!(body.into_whole().unwrap(), "{\"a\":1}");
    }

    #[test]
    fn a_rendered_chunk_advances_like_bytes() {
        use bytes::Buf;
        let mut c = Chunk::Vec {
            vec: b"hello".to_vec(),
            at: 0,
        };
        c.advance(2);
        assert_eq!((c.remaining(), c.chunk()), (3, &b"llo"[..]));
        assert_eq!(c.copy_to_bytes(3), "llo");
        assert!(!c.has_remaining());
    }

    #[tokio::test]
    async fn a_stream_is_sent_as_it_comes_and_cut_at_the_limit() {
        let (mut tx, body) = Body::channel();
        tx.send("a").await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        let mut reply = ReplyBody::of(body, deadline);
        assert_eq!(hyper::body::Body::size_hint(&reply).exact(), None);
        let first = reply.frame().await.unwrap().unwrap();
        let mut first = first.into_data().unwrap();
        assert_eq!(bytes::Buf::copy_to_bytes(&mut first, 1), "a");
        // Nothing more comes: the limit ends it as a timeout.
        let cut = reply.frame().await.unwrap().unwrap_err();
        assert_eq!(cut.kind(), ErrorKind::Timeout);
        drop(tx);
    }
}
