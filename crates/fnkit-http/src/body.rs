//! Reading a request body whole, within the size limit and the read timeout, and draining what
//! is refused so the sender reads the answer instead of a reset.

use std::time::Duration;

use bytes::Bytes;
use fnkit_core::{Error, ErrorKind};
use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http_body_util::BodyExt;

use crate::service::State;

impl State {
    /// Reads the whole body within the size limit and the read timeout.
    pub(crate) async fn read_body(
        &self,
        parts: &Parts,
        body: hyper::body::Incoming,
    ) -> Result<Bytes, Error> {
        let max = self.config.max_body_bytes;
        let too_large = || {
            Error::new(
                ErrorKind::PayloadTooLarge,
                format!("the request body is larger than {max} bytes (FNKIT_MAX_BODY_BYTES)"),
            )
        };
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            discard_rest(body);
            return Err(too_large());
        }
        match tokio::time::timeout(self.config.read_timeout, read_limited(body, max)).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(BodyError::TooLarge)) => Err(too_large()),
            Ok(Err(BodyError::Broken(e))) => Err(Error::invalid_input(format!(
                "the request body could not be read: {e}"
            ))),
            Err(_) => Err(Error::new(
                ErrorKind::RequestTimeout,
                format!(
                    "the request body did not arrive within {:?} (FNKIT_READ_TIMEOUT_SECS)",
                    self.config.read_timeout
                ),
            )),
        }
    }
}

/// Why a body was not read whole.
#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    /// Past the limit: reading stopped there, the rest is left to [`discard_rest`].
    TooLarge,
    /// The connection failed or the framing was wrong.
    Broken(String),
}

/// Reads `body` whole, up to `max` bytes. The moment it passes `max` (a chunked body has no
/// `Content-Length` to refuse it by, and of-watchdog always forwards bodies chunked) it stops
/// and the request gets its 413 at once, while the rest is read and dropped in the background.
async fn read_limited<B>(mut body: B, max: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    // A body that arrives in one frame (most do: hyper hands over what one read brought) is
    // returned as that frame, without a copy; a second frame starts a buffer.
    let mut first: Option<Bytes> = None;
    let mut buf = bytes::BytesMut::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > max {
            discard_rest(body);
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(earlier) => {
                buf.reserve(len);
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// The most of a refused body read and dropped after the 413 ...
const DISCARD_MAX_BYTES: usize = 16 * 1024 * 1024;
/// ... and for how long at most.
const DISCARD_MAX_TIME: Duration = Duration::from_secs(5);

/// Reads and drops what is left of a refused body (for at most [`DISCARD_MAX_BYTES`] and
/// [`DISCARD_MAX_TIME`]), so that the sender, still writing it, reads the 413 instead of a
/// reset connection: closing a socket with unread data resets it, and Go's HTTP client (the
/// transport of of-watchdog, which proxies every OpenFaaS request) then reports the failed write
/// instead of the answer (golang/go#51109) and the caller gets the watchdog's bare 500.
fn discard_rest<B>(mut body: B)
where
    B: hyper::body::Body + Unpin + Send + 'static,
    B::Data: Send,
{
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(async move {
        let drain = async {
            let mut left = DISCARD_MAX_BYTES;
            while let Some(Ok(frame)) = body.frame().await {
                let len = frame.data_ref().map_or(0, bytes::Buf::remaining);
                left = left.saturating_sub(len);
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DISCARD_MAX_TIME, drain).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context as TaskContext, Poll};

    /// A body of `chunks`, counting the chunks read.
    struct Chunks {
        chunks: std::collections::VecDeque<Bytes>,
        read: Arc<AtomicUsize>,
    }

    impl Chunks {
        fn new(n: usize, size: usize) -> (Self, Arc<AtomicUsize>) {
            let read = Arc::new(AtomicUsize::new(0));
            let chunk = Bytes::from(vec![b'x'; size]);
            let chunks = (0..n).map(|_| chunk.clone()).collect();
            let body = Self {
                chunks,
                read: read.clone(),
            };
            (body, read)
        }
    }

    impl hyper::body::Body for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut TaskContext<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
            let next = self.chunks.pop_front();
            if next.is_some() {
                self.read.fetch_add(1, Ordering::SeqCst);
            }
            Poll::Ready(next.map(|c| Ok(hyper::body::Frame::data(c))))
        }

        fn is_end_stream(&self) -> bool {
            self.chunks.is_empty()
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let (body, read) = Chunks::new(4, 256);
        let bytes = read_limited(body, 1024).await.unwrap();
        assert_eq!(bytes.len(), 1024);
        assert_eq!(read.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_body_of_one_frame_is_that_frame_and_of_several_is_joined() {
        let (body, _) = Chunks::new(1, 300);
        let bytes = read_limited(body, 1024).await.unwrap();
        assert_eq!(bytes.len(), 300);
        let (body, _) = Chunks::new(3, 300);
        let bytes = read_limited(body, 1024).await.unwrap();
        assert_eq!(bytes, vec![b'x'; 900]);
        let (body, _) = Chunks::new(0, 300);
        assert!(read_limited(body, 1024).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn past_the_limit_reading_stops_and_the_rest_is_drained_in_the_background() {
        let (body, read) = Chunks::new(100, 256);
        let err = read_limited(body, 1000).await.unwrap_err();
        assert_eq!(err, BodyError::TooLarge);
        // Stopped at the chunk that passed the limit (the fourth) ...
        assert_eq!(read.load(Ordering::SeqCst), 4);
        // ... and the rest is read and dropped by a background task, so the sender is not reset.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(read.load(Ordering::SeqCst), 100);
    }

    #[tokio::test]
    async fn the_drain_stops_after_its_byte_budget() {
        let size = 1024 * 1024;
        let (body, read) = Chunks::new(DISCARD_MAX_BYTES / size + 10, size);
        discard_rest(body);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(read.load(Ordering::SeqCst), DISCARD_MAX_BYTES / size);
    }
}
