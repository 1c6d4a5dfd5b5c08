//! The CloudEvents 1.0.2 HTTP binding: which mode a request uses, `ce-*` headers in binary mode,
//! and the content types of structured and batched mode (docs/platforms.md §5.7).
//!
//! Only what is HTTP lives here. The attribute rules and the JSON event format are
//! `fnkit_core::adapter::ce`, which the Lambda adapter calls too: an event gets the same verdict
//! on every platform. (cloudevents-sdk 0.9's own HTTP binding neither percent-decodes nor
//! percent-encodes `ce-*` values, matches content types case-sensitively, and has no batched
//! mode, so fnkit does not use it.)

mod binary;

use std::borrow::Cow;

use cloudevents::Event;
use fnkit_core::adapter::ce;
use fnkit_core::{Error, ErrorKind};
use http::{HeaderMap, HeaderValue};

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
    ce::media_type(std::str::from_utf8(ct.as_bytes()).unwrap_or(""))
}

/// Tells which mode a request uses, or `None` when it carries no CloudEvent at all.
///
/// # Errors
/// 415 for a CloudEvents format other than JSON (`application/cloudevents+avro` ...).
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

/// Reads the events of a request in `mode`.
///
/// # Errors
/// 400 naming the attribute, header or member that is missing or malformed.
pub(crate) fn decode(
    mode: Mode,
    headers: &HeaderMap,
    body: bytes::Bytes,
) -> Result<Vec<Event>, Error> {
    match mode {
        Mode::Binary => binary::decode(headers, body).map(|e| vec![e]),
        Mode::Structured => ce::decode(&body).map(|e| vec![e]),
        Mode::Batch => ce::decode_batch(&body),
    }
}

/// A reply ready to send: headers to add and the body.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Headers (`Content-Type` and, in binary mode, `ce-*`).
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// Writes `events` in `mode`. Binary and structured mode take exactly one event.
///
/// # Errors
/// 500 when a reply event is invalid (a bad extension name, an integer outside 32 bits).
pub(crate) fn encode(mode: Mode, events: Vec<Event>) -> Result<Encoded, Error> {
    let (content_type, body) = match mode {
        Mode::Batch => (BATCH_JSON, ce::encode_batch(events)?),
        Mode::Structured => (STRUCTURED_JSON, ce::encode(single(events)?)?),
        Mode::Binary => return binary::encode(ce::checked_reply(single(events)?)?),
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, content_type);
    Ok(Encoded { headers, body })
}

const STRUCTURED_JSON: HeaderValue =
    HeaderValue::from_static("application/cloudevents+json; charset=utf-8");
const BATCH_JSON: HeaderValue =
    HeaderValue::from_static("application/cloudevents-batch+json; charset=utf-8");

fn single(events: Vec<Event>) -> Result<Event, Error> {
    let mut it = events.into_iter();
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        _ => Err(Error::internal(
            "binary and structured mode carry exactly one event",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

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

    #[test]
    fn structured_and_batch_replies_carry_their_content_types() {
        let event =
            ce::decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#).unwrap();
        let one = encode(Mode::Structured, vec![event.clone()]).unwrap();
        assert_eq!(one.headers["content-type"], STRUCTURED_JSON);
        let batch = encode(Mode::Batch, vec![event.clone(), event]).unwrap();
        assert_eq!(batch.headers["content-type"], BATCH_JSON);
        assert!(batch.body.starts_with(b"["));
    }
}
