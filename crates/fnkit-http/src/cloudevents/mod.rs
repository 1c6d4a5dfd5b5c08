//! The CloudEvents 1.0.2 HTTP binding: which mode a request uses, `ce-*` headers in binary mode,
//! and the content types of structured and batched mode (docs/platforms.md §5.7).
//!
//! Which mode a request is in (this file) is decided in every build, the `cloudevents` feature
//! on or off: a build without it tells a CloudEvent from plain JSON by the same rule, and answers
//! it with `not_built` (415) instead of reading the event as JSON. Reading and writing events
//! (`codec.rs`, `binary.rs`) come with the feature, and with them cloudevents-sdk.
//!
//! Only what is HTTP lives here. The attribute rules and the JSON event format are
//! `fnkit_core::adapter::ce`, which the Lambda adapter calls too: an event gets the same verdict
//! on every platform. (cloudevents-sdk 0.9's own HTTP binding neither percent-decodes nor
//! percent-encodes `ce-*` values, matches content types case-sensitively, and has no batched
//! mode, so fnkit does not use it.)

#[cfg(feature = "cloudevents")]
mod binary;
#[cfg(feature = "cloudevents")]
mod codec;

use std::borrow::Cow;

use fnkit_core::adapter::media;
use fnkit_core::{Error, ErrorKind};
use http::HeaderMap;

#[cfg(feature = "cloudevents")]
pub(crate) use codec::{decode, encode, Encoded};

/// How an event travels over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Attributes in `ce-*` headers, data in the body.
    Binary,
    /// One JSON object (`application/cloudevents+json`).
    Structured,
    /// A JSON array of events (`application/cloudevents-batch+json`).
    Batch,
}

/// The media type of the `Content-Type` header: lowercased, parameters dropped.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let ct = headers.get(http::header::CONTENT_TYPE)?;
    media::media_type(std::str::from_utf8(ct.as_bytes()).unwrap_or(""))
}

/// Tells which mode a request uses, or `None` when it carries no CloudEvent at all.
///
/// # Errors
/// 415 for a CloudEvents format other than JSON (`application/cloudevents+avro` ...).
// Without the feature only the typed shape detects, through `detect_with`; the tests call this.
#[cfg_attr(not(feature = "cloudevents"), allow(dead_code))]
pub(crate) fn detect(headers: &HeaderMap) -> Result<Option<Mode>, Error> {
    detect_with(headers, media_type(headers).as_deref())
}

/// [`detect`] with the request's media type ([`media_type`]) already read.
///
/// # Errors
/// As [`detect`].
pub(crate) fn detect_with(headers: &HeaderMap, mt: Option<&str>) -> Result<Option<Mode>, Error> {
    if let Some(mt) = mt {
        if let Some(format) = mt.strip_prefix("application/cloudevents-batch") {
            return if format == "+json" {
                Ok(Some(Mode::Batch))
            } else {
                Err(unsupported_format(mt))
            };
        }
        if let Some(format) = mt.strip_prefix("application/cloudevents") {
            return if format == "+json" || format.is_empty() {
                Ok(Some(Mode::Structured))
            } else {
                Err(unsupported_format(mt))
            };
        }
    }
    let binary = headers.keys().any(|k| k.as_str().starts_with("ce-"));
    Ok(binary.then_some(Mode::Binary))
}

fn unsupported_format(mt: &str) -> Error {
    Error::new(
        ErrorKind::UnsupportedMediaType,
        format!("Content-Type {mt} is a CloudEvents format this function does not read; use application/cloudevents+json, application/cloudevents-batch+json or binary mode"),
    )
}

/// The answer of a build without the `cloudevents` feature to a request that [`detect`] does not
/// find plain (`detected`: a mode, or the error for a CloudEvents format other than JSON): 415,
/// naming what made it a CloudEvent and how to build a function that reads it. The event is never
/// handed to the handler as plain JSON.
#[cfg(not(feature = "cloudevents"))]
pub(crate) fn not_built(detected: Result<Option<Mode>, Error>, mt: Option<&str>) -> Error {
    let what = match (detected, mt) {
        (Ok(Some(Mode::Binary)), _) | (_, None) => Cow::Borrowed("in binary mode (ce-* headers)"),
        (_, Some(mt)) => Cow::Owned(format!("(Content-Type {mt})")),
    };
    Error::new(
        ErrorKind::UnsupportedMediaType,
        format!("this request is a CloudEvent {what}, but this function was built without CloudEvents: send plain JSON (Content-Type application/json), or build it with fnkit's `cloudevents` feature (or `knative`, which includes it)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::headers;

    #[test]
    fn mode_detection_matches_media_types_case_insensitively_with_parameters() {
        let d = |ct| detect(&headers(&[("content-type", ct)])).unwrap();
        assert_eq!(
            d("application/cloudevents+json; charset=UTF-8"),
            Some(Mode::Structured)
        );
        assert_eq!(d("Application/CloudEvents+JSON"), Some(Mode::Structured));
        assert_eq!(d("application/cloudevents-batch+json"), Some(Mode::Batch));
        assert_eq!(
            d("APPLICATION/CLOUDEVENTS-BATCH+JSON;charset=utf-8"),
            Some(Mode::Batch)
        );
        assert_eq!(d("application/json"), None);
    }

    #[test]
    fn binary_mode_is_any_ce_header() {
        let h = headers(&[("content-type", "application/json"), ("ce-id", "1")]);
        assert_eq!(detect(&h).unwrap(), Some(Mode::Binary));
    }

    #[test]
    fn other_cloudevents_formats_are_415() {
        for ct in [
            "application/cloudevents+avro",
            "application/cloudevents-batch+xml",
        ] {
            let err = detect(&headers(&[("content-type", ct)])).unwrap_err();
            assert_eq!(err.status().as_u16(), 415, "{ct}");
        }
    }
}
