//! Binary-mode requests (`ce-*` headers, `Content-Type`, body) built from the fuzzer's bytes:
//! no panic; an accepted event keeps the rules, a refusal is a 400 or 415 kind.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use fnkit_core::ErrorKind;
use fnkit_fuzz::check;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum ContentType<'a> {
    Absent,
    Json,
    Text,
    OctetStream,
    /// Switches to structured mode.
    CloudEvents,
    /// Switches to batched mode.
    Batch,
    /// Refused (415).
    Avro,
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Specversion,
    Id,
    Source,
    Type,
    Time,
    Dataschema,
    Subject,
    Datacontenttype,
    Data,
    DataBase64,
    Traceparent,
    /// `ce-` followed by these bytes, when they make a header name.
    Other(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    content_type: ContentType<'a>,
    /// Start from valid `ce-specversion`, `ce-id`, `ce-source` and `ce-type` headers.
    required: bool,
    headers: Vec<(Name<'a>, &'a [u8])>,
    body: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    let ct: Option<&[u8]> = match input.content_type {
        ContentType::Absent => None,
        ContentType::Json => Some(b"application/json"),
        ContentType::Text => Some(b"text/plain; charset=utf-8"),
        ContentType::OctetStream => Some(b"application/octet-stream"),
        ContentType::CloudEvents => Some(b"application/cloudevents+json"),
        ContentType::Batch => Some(b"application/cloudevents-batch+json"),
        ContentType::Avro => Some(b"application/cloudevents+avro"),
        ContentType::Raw(raw) => Some(raw),
    };
    if let Some(v) = ct.and_then(|ct| HeaderValue::from_bytes(ct).ok()) {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    if input.required {
        for (name, value) in [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    for (name, value) in input.headers.into_iter().take(12) {
        let name = match name {
            Name::Specversion => "specversion",
            Name::Id => "id",
            Name::Source => "source",
            Name::Type => "type",
            Name::Time => "time",
            Name::Dataschema => "dataschema",
            Name::Subject => "subject",
            Name::Datacontenttype => "datacontenttype",
            Name::Data => "data",
            Name::DataBase64 => "data_base64",
            Name::Traceparent => "traceparent",
            Name::Other(other) => other,
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        // `insert` replaces a required header; `append` makes a repeated one.
        if headers.contains_key(&name) && value.len() % 2 == 0 {
            headers.insert(name, value);
        } else {
            headers.append(name, value);
        }
    }
    let result = fnkit_http::fuzzing::decode_events(&headers, Bytes::copy_from_slice(input.body));
    check(
        &result,
        &[ErrorKind::InvalidEvent, ErrorKind::UnsupportedMediaType],
    );
});
