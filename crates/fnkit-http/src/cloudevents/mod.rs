//! The CloudEvents 1.0.2 HTTP binding, on cloudevents-sdk's `Event`.
//!
//! The SDK (0.9) models events well but its HTTP binding falls short of the spec (PLATFORMS.md
//! §5.7): it neither percent-decodes nor percent-encodes `ce-*` values, matches content types
//! case-sensitively and without parameters, and has no batched mode. So this module reads and
//! writes the three modes itself and hands the SDK's `Event` to handlers.

mod binary;
mod structured;

use std::borrow::Cow;

use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Event};
use fnkit_core::Error;
use http::HeaderMap;

/// How an event travels over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Attributes in `ce-*` headers, data in the body.
    Binary,
    /// One JSON object (`application/cloudevents+json`).
    Structured,
    /// A JSON array of events (`application/cloudevents-batch+json`).
    Batch,
}

/// The media type of a `Content-Type` value: lowercased, parameters dropped.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<Cow<'_, str>> {
    let ct = headers.get(http::header::CONTENT_TYPE)?;
    media_type_of(std::str::from_utf8(ct.as_bytes()).unwrap_or(""))
}

/// The media type of a content type string: lowercased, parameters dropped. Borrowed when it is
/// lowercase already, as it nearly always is: no allocation per request.
pub(crate) fn media_type_of(content_type: &str) -> Option<Cow<'_, str>> {
    let essence = content_type.split(';').next()?.trim();
    Some(if essence.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(essence.to_ascii_lowercase())
    } else {
        Cow::Borrowed(essence)
    })
}

/// Whether a media type is JSON: `application/json`, `text/json` or `*/*+json`.
pub(crate) fn is_json(media_type: &str) -> bool {
    media_type == "application/json" || media_type == "text/json" || media_type.ends_with("+json")
}

/// Tells which mode a request uses, or `None` when it carries no CloudEvent at all.
///
/// # Errors
/// 415 for a CloudEvents format other than JSON (`application/cloudevents+avro` ...).
pub fn detect(headers: &HeaderMap) -> Result<Option<Mode>, Error> {
    if let Some(mt) = media_type(headers) {
        if let Some(format) = mt.strip_prefix("application/cloudevents-batch") {
            return if format == "+json" {
                Ok(Some(Mode::Batch))
            } else {
                Err(unsupported_format(&mt))
            };
        }
        if let Some(format) = mt.strip_prefix("application/cloudevents") {
            return if format == "+json" || format.is_empty() {
                Ok(Some(Mode::Structured))
            } else {
                Err(unsupported_format(&mt))
            };
        }
    }
    let binary = headers.keys().any(|k| k.as_str().starts_with("ce-"));
    Ok(binary.then_some(Mode::Binary))
}

fn unsupported_format(mt: &str) -> Error {
    Error::new(
        fnkit_core::ErrorKind::UnsupportedMediaType,
        format!("Content-Type {mt} is a CloudEvents format this function does not read; use application/cloudevents+json, application/cloudevents-batch+json or binary mode"),
    )
}

/// Reads the events of a request in `mode`.
///
/// # Errors
/// 400 naming the attribute, header or member that is missing or malformed.
pub fn decode(mode: Mode, headers: &HeaderMap, body: bytes::Bytes) -> Result<Vec<Event>, Error> {
    match mode {
        Mode::Binary => binary::decode(headers, body).map(|e| vec![e]),
        Mode::Structured => structured::decode_one(&body).map(|e| vec![e]),
        Mode::Batch => structured::decode_batch(&body),
    }
}

/// A reply ready to send: headers to add and the body.
#[derive(Debug)]
pub struct Encoded {
    /// Headers (`Content-Type` and, in binary mode, `ce-*`).
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Writes `events` in `mode`. Binary and structured mode take exactly one event.
///
/// # Errors
/// 500 when a reply event is invalid (a bad extension name, an integer outside 32 bits).
pub fn encode(mode: Mode, events: Vec<Event>) -> Result<Encoded, Error> {
    for e in &events {
        validate(e).map_err(|e| {
            Error::internal(format!(
                "the handler's reply event is invalid: {}",
                e.message()
            ))
        })?;
    }
    match mode {
        Mode::Binary => {
            let event = single(events)?;
            binary::encode(event)
        }
        Mode::Structured => {
            let event = single(events)?;
            structured::encode_one(event)
        }
        Mode::Batch => structured::encode_batch(events),
    }
}

fn single(events: Vec<Event>) -> Result<Event, Error> {
    let mut it = events.into_iter();
    match (it.next(), it.next()) {
        (Some(e), None) => Ok(e),
        _ => Err(Error::internal(
            "binary and structured mode carry exactly one event",
        )),
    }
}

/// Checks what the SDK leaves unchecked (PLATFORMS.md §5.1): required attributes non-empty,
/// `specversion` 1.0, extension names `^[a-z0-9]+$` and not `data`, integers within 32 bits.
///
/// # Errors
/// 400 naming the attribute.
pub fn validate(event: &Event) -> Result<(), Error> {
    if event.specversion() != cloudevents::event::SpecVersion::V10 {
        return Err(Error::invalid_event(format!(
            "specversion {} is not supported; use 1.0",
            event.specversion()
        )));
    }
    for (name, value) in [
        ("id", event.id()),
        ("source", event.source().as_str()),
        ("type", event.ty()),
    ] {
        if value.is_empty() {
            return Err(Error::invalid_event(format!(
                "required attribute `{name}` is empty"
            )));
        }
    }
    for (name, value) in event.iter_extensions() {
        validate_extension_name(name)?;
        if let ExtensionValue::Integer(i) = value {
            if i32::try_from(*i).is_err() {
                return Err(Error::invalid_event(format!(
                    "extension `{name}` = {i} is outside the 32-bit integer range"
                )));
            }
        }
    }
    Ok(())
}

/// Attribute and extension names: lowercase ASCII letters and digits; `data` is reserved.
///
/// # Errors
/// 400 naming the attribute.
pub fn validate_extension_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok {
        return Err(Error::invalid_event(format!(
            "attribute name `{name}` is invalid: names use only a-z and 0-9"
        )));
    }
    if name == "data" || name == "data_base64" {
        return Err(Error::invalid_event(format!(
            "attribute name `{name}` is reserved"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
        let err = detect(&headers(&[(
            "content-type",
            "application/cloudevents+avro",
        )]))
        .unwrap_err();
        assert_eq!(err.status().as_u16(), 415);
        let err = detect(&headers(&[(
            "content-type",
            "application/cloudevents-batch+xml",
        )]))
        .unwrap_err();
        assert_eq!(err.status().as_u16(), 415);
    }

    #[test]
    fn extension_names_are_lowercase_alphanumerics() {
        assert!(validate_extension_name("traceparent").is_ok());
        assert!(validate_extension_name("abc123").is_ok());
        for bad in ["traceParent", "my-ext", "my_ext", "", "data"] {
            assert!(validate_extension_name(bad).is_err(), "{bad}");
        }
    }
}
