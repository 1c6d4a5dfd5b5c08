//! Lambda response streaming (docs/platforms.md §1.7): the `/response` body of a streamed
//! invocation, written as the handler produces it, with the error trailers when it fails after
//! the first byte.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use fnkit_core::{Body, Error, ErrorKind};
use futures_core::Stream;
use http::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::client::Diagnostic;

/// The content type of a streamed HTTP response for Function URLs and API Gateway: a JSON
/// prelude, eight NUL bytes, then the body.
pub(crate) const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// Where the error of a stream that failed after its first byte goes.
pub(crate) static ERROR_TYPE_TRAILER: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");
/// ... and its document, base64-encoded.
pub(crate) static ERROR_BODY_TRAILER: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-body");

/// A streamed answer: what goes first (the prelude and the body's first chunk, already in
/// hand), the rest of the body, and its content type.
#[derive(Debug)]
pub(crate) struct Streamed {
    pub(crate) content_type: &'static str,
    pub(crate) first: Bytes,
    pub(crate) rest: Body,
}

/// The request body of a streamed `/response`: `first`, then each chunk of `rest` until it ends;
/// a failure (or the deadline) ends it with the error trailers instead.
pub(crate) struct StreamBody {
    first: Option<Bytes>,
    rest: Option<Body>,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl StreamBody {
    pub(crate) fn new(streamed: Streamed, deadline: Option<SystemTime>) -> Self {
        let deadline = deadline.map(|d| {
            let left = d.duration_since(SystemTime::now()).unwrap_or_default();
            Box::pin(tokio::time::sleep(
                left.saturating_sub(crate::invoke::DEADLINE_MARGIN),
            ))
        });
        Self {
            first: Some(streamed.first),
            rest: Some(streamed.rest),
            deadline,
        }
    }

    fn fail(&mut self, e: &Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        tracing::error!(
            error_type = e.kind().as_str(),
            "the response stream failed after its first byte: {}",
            e.message()
        );
        self.rest = None;
        Poll::Ready(Some(Ok(Frame::trailers(error_trailers(e)))))
    }
}

/// The two trailers that carry an error after the first byte: its type, and its document in
/// base64.
pub(crate) fn error_trailers(e: &Error) -> HeaderMap {
    let document = serde_json::to_vec(&Diagnostic {
        error_type: e.kind().as_str(),
        error_message: e.message(),
    })
    .unwrap_or_default();
    let mut trailers = HeaderMap::new();
    trailers.insert(
        ERROR_TYPE_TRAILER.clone(),
        HeaderValue::from_static(e.kind().as_str()),
    );
    let encoded = base64::engine::general_purpose::STANDARD.encode(document);
    if let Ok(v) = HeaderValue::from_str(&encoded) {
        trailers.insert(ERROR_BODY_TRAILER.clone(), v);
    }
    trailers
}

impl hyper::body::Body for StreamBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        let Some(rest) = self.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
            Poll::Ready(Some(Err(e))) => self.fail(&e),
            Poll::Ready(None) => {
                self.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let expired = self
                    .deadline
                    .as_mut()
                    .is_some_and(|d| std::future::Future::poll(d.as_mut(), cx).is_ready());
                if expired {
                    let e = Error::new(
                        ErrorKind::Timeout,
                        "the response stream ran past the invocation's deadline and was stopped",
                    );
                    return self.fail(&e);
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Waits for the first chunk of `body`, so that a stream failing before its first byte is
/// reported through `/error` like any other failure. `None` is an empty body.
///
/// # Errors
/// The stream's first error.
pub(crate) async fn first_chunk(body: &mut Body) -> Result<Option<Bytes>, Error> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_next(cx))
        .await
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn first_then_chunks_then_the_end() {
        let (mut tx, rest) = Body::channel();
        tx.send("b").await.unwrap();
        drop(tx);
        let body = StreamBody::new(
            Streamed {
                content_type: HTTP_INTEGRATION,
                first: Bytes::from_static(b"a"),
                rest,
            },
            None,
        );
        let collected = body.collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "ab");
    }

    #[tokio::test]
    async fn a_failure_after_the_first_byte_becomes_the_error_trailers() {
        let (tx, rest) = Body::channel();
        tx.abort(Error::handler("gone wrong"));
        let body = StreamBody::new(
            Streamed {
                content_type: HTTP_INTEGRATION,
                first: Bytes::from_static(b"a"),
                rest,
            },
            None,
        );
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().unwrap().clone();
        assert_eq!(trailers[&ERROR_TYPE_TRAILER], "HandlerError");
        let doc = base64::engine::general_purpose::STANDARD
            .decode(trailers[&ERROR_BODY_TRAILER].as_bytes())
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(doc["errorType"], "HandlerError");
        assert_eq!(doc["errorMessage"], "gone wrong");
        assert_eq!(collected.to_bytes(), "a");
    }
}
