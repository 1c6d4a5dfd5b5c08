//! A fully buffered HTTP body, the same on every platform.

use std::fmt;

use bytes::Bytes;

/// The body of an HTTP request or response given to and returned by an HTTP handler.
///
/// fnkit reads a request body whole (within the body limit) before calling the handler, because
/// that is what Lambda, Knative and OpenFaaS deliver alike; the handler sees bytes, not a stream.
///
/// ```
/// use fnkit_core::Body;
///
/// let body = Body::from("hello");
/// assert_eq!(body.as_bytes(), b"hello");
/// assert_eq!(body.to_str().unwrap(), "hello");
/// assert!(Body::empty().is_empty());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Body(Bytes);

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Self(Bytes::new())
    }

    /// The body's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    /// When the bytes are not UTF-8.
    pub fn to_str(&self) -> Result<&str, std::str::Utf8Error> {
        std::str::from_utf8(&self.0)
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The body's bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0
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

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies are user data: show their size, never their content.
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self(b)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self(Bytes::from(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Self(Bytes::from_static(s))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::empty()
    }
}

impl From<Body> for Bytes {
    fn from(b: Body) -> Self {
        b.0
    }
}
