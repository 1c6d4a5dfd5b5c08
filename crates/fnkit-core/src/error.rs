//! The one error type handlers return and adapters render.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

/// What went wrong, in a form every platform can render.
///
/// The kind's name ([`ErrorKind::as_str`]) is the `error` member of an HTTP error body and the
/// `errorType` of a Lambda invocation error, so one name means one thing everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input could not be read: malformed JSON, or data that does not fit the input type (400).
    InvalidInput,
    /// A CloudEvent is malformed: a required attribute is missing or empty, or `specversion`
    /// is not `1.0` (400).
    InvalidEvent,
    /// The caller may not do this (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The method is not served at this path (405).
    MethodNotAllowed,
    /// The client was too slow sending its request (408).
    RequestTimeout,
    /// The body is larger than the limit (413).
    PayloadTooLarge,
    /// The `Content-Type` is not one this function accepts (415).
    UnsupportedMediaType,
    /// The input was understood but refused for good: retrying will not help (422).
    Rejected,
    /// Too many requests are in flight (429).
    TooManyRequests,
    /// The handler failed; the caller may retry (500). The default for handler errors.
    Handler,
    /// The handler panicked (500). The process goes on serving.
    Panic,
    /// Something inside fnkit or the platform failed (500).
    Internal,
    /// The function is shutting down or not ready (503).
    Unavailable,
    /// The handler ran past its time limit (504).
    Timeout,
}

impl ErrorKind {
    /// The stable name of the kind, as it appears in error bodies and Lambda's `errorType`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "InvalidInput",
            Self::InvalidEvent => "InvalidEvent",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "NotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::RequestTimeout => "RequestTimeout",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::Rejected => "Rejected",
            Self::TooManyRequests => "TooManyRequests",
            Self::Handler => "HandlerError",
            Self::Panic => "Panic",
            Self::Internal => "InternalError",
            Self::Unavailable => "Unavailable",
            Self::Timeout => "Timeout",
        }
    }

    /// The HTTP status a kind maps to unless an error overrides it.
    pub const fn default_status(self) -> StatusCode {
        match self {
            Self::InvalidInput | Self::InvalidEvent => StatusCode::BAD_REQUEST,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Handler | Self::Panic | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error a handler returns, and the one every fnkit adapter renders.
///
/// It carries a [kind](ErrorKind), an HTTP status (the kind's default unless set), and a message
/// meant for the caller: name the field or header that is wrong. The message is not logged with
/// request data and is not API; the kind is.
///
/// ```
/// use fnkit_core::{Error, ErrorKind};
///
/// let e = Error::invalid_input("missing field `id`");
/// assert_eq!(e.kind(), ErrorKind::InvalidInput);
/// assert_eq!(e.status().as_u16(), 400);
///
/// // A user's own error type converts with `From`, choosing the status there.
/// let e = Error::new(ErrorKind::Rejected, "order 7 was already shipped");
/// assert_eq!(e.status().as_u16(), 422);
/// ```
pub struct Error {
    kind: ErrorKind,
    status: StatusCode,
    message: Cow<'static, str>,
    source: Option<BoxError>,
}

impl Error {
    /// An error of the given kind with a message for the caller.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            status: kind.default_status(),
            message: message.into(),
            source: None,
        }
    }

    /// Bad input: malformed JSON, a missing field, a value of the wrong type (400).
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A malformed CloudEvent (400).
    pub fn invalid_event(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidEvent, message)
    }

    /// Nothing here by that name (404).
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A permanent refusal: the caller should not retry (422).
    pub fn rejected(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// The handler failed in a way a retry may fix (500).
    pub fn handler(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Handler, message)
    }

    /// An internal failure, keeping `source` as the cause (500). Its text becomes the message.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        let source = source.into();
        Self::new(ErrorKind::Internal, source.to_string()).with_source(source)
    }

    /// Overrides the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Keeps `source` as the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body adapters send: `{"error":"<kind>","message":"<message>"}`.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            message: &'a str,
        }
        serde_json::to_vec(&Body {
            error: self.kind.as_str(),
            message: &self.message,
        })
        .unwrap_or_else(|_| br#"{"error":"InternalError","message":"unprintable error"}"#.to_vec())
    }
}

impl fmt::Debug for Error {
    /// `{:?}` reads like the message (it is what `main` prints when it returns the error);
    /// `{:#?}` shows the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return write!(f, "{self}");
        }
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("status", &self.status.as_u16())
            .field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<&'static str> for Error {
    fn from(message: &'static str) -> Self {
        Self::handler(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::handler(message)
    }
}

impl From<BoxError> for Error {
    fn from(source: BoxError) -> Self {
        Self::new(ErrorKind::Handler, source.to_string()).with_source(source)
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Self::new(ErrorKind::Handler, source.to_string()).with_source(source)
    }
}

impl From<serde_json::Error> for Error {
    fn from(source: serde_json::Error) -> Self {
        Self::new(ErrorKind::Handler, source.to_string()).with_source(source)
    }
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_default_status() {
        assert_eq!(Error::invalid_input("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            Error::rejected("x").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            Error::new(ErrorKind::Timeout, "x").status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            Error::from("boom").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn status_can_be_overridden_without_changing_the_kind() {
        let e = Error::handler("busy").with_status(StatusCode::CONFLICT);
        assert_eq!(e.kind(), ErrorKind::Handler);
        assert_eq!(e.status(), StatusCode::CONFLICT);
    }

    #[test]
    fn json_body_names_kind_and_message() {
        let e = Error::invalid_input("missing field `name`");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"], "InvalidInput");
        assert_eq!(v["message"], "missing field `name`");
    }

    #[test]
    fn internal_keeps_its_source() {
        let io = std::io::Error::other("disk on fire");
        let e = Error::internal(io);
        assert_eq!(e.message(), "disk on fire");
        assert!(std::error::Error::source(&e).is_some());
    }
}
