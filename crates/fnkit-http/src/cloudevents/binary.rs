//! Binary mode: attributes in `ce-*` headers, data in the body (HTTP binding §3.1).

use bytes::Bytes;
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
use fnkit_core::adapter::ce::{self, Origin};
use fnkit_core::adapter::media;
use fnkit_core::Error;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, CONTROLS};
use serde_json::{Map, Value};

/// What a `ce-*` value must escape (1.0.2 §3.1.3.2): space, `"`, `%`, controls; non-ASCII is
/// always escaped by the encoder. Hex digits come out uppercase.
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// Decodes one `ce-*` header value: an RFC 7230 quoted-string is unquoted first, then exactly one
/// round of percent-decoding, and the result must be UTF-8.
///
/// # Errors
/// 400 naming the header when the decoded bytes are not UTF-8 (e.g. the overlong `%C0%A0`).
fn decode_header_value(name: &str, raw: &[u8]) -> Result<String, Error> {
    let unquoted;
    let mut bytes = raw;
    if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
        let mut out = Vec::with_capacity(bytes.len());
        let mut escaped = false;
        for &b in &bytes[1..bytes.len() - 1] {
            if escaped || b != b'\\' {
                out.push(b);
                escaped = false;
            } else {
                escaped = true;
            }
        }
        unquoted = out;
        bytes = &unquoted;
    }
    let decoded: Vec<u8> = percent_decode(bytes).collect();
    String::from_utf8(decoded).map_err(|_| {
        Error::invalid_event(format!(
            "header {name} is not valid UTF-8 after percent-decoding"
        ))
    })
}

/// Percent-encodes a `ce-*` value for the wire.
fn encode_header_value(value: &str) -> HeaderValue {
    let encoded = utf8_percent_encode(value, HEADER_ESCAPES).to_string();
    // Only visible ASCII is left, which is always a valid header value.
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn decode(headers: &HeaderMap, body: Bytes) -> Result<Event, Error> {
    let mut members = Map::new();
    for (name, value) in headers {
        let Some(attr) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        if attr == "datacontenttype" {
            return Err(Error::invalid_event(
                "header ce-datacontenttype must not be sent in binary mode; the Content-Type header carries it",
            ));
        }
        if attr == "data" || attr == "data_base64" {
            return Err(Error::invalid_event(format!(
                "header {name} names a reserved attribute"
            )));
        }
        if members.contains_key(attr) {
            return Err(Error::invalid_event(format!("header {name} is repeated")));
        }
        let text = decode_header_value(name.as_str(), value.as_bytes())?;
        members.insert(attr.to_owned(), Value::String(text));
    }
    // `Content-Type` is the `datacontenttype` as sent (§3.1.1): the unquoting and percent-decoding
    // of §3.1.3.2 are for `ce-*` values (a reply's `Content-Type` is not percent-encoded either),
    // so `profile="a%20b"` stays as it is, as it does in structured mode.
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| {
            String::from_utf8(v.as_bytes().to_vec())
                .map_err(|_| Error::invalid_event("header Content-Type is not valid UTF-8"))
        })
        .transpose()?;
    let mut event = ce::from_attributes(members, Origin::Headers)?;
    if !body.is_empty() {
        let json = content_type
            .as_deref()
            .and_then(media::media_type)
            .is_some_and(|mt| media::is_json(&mt));
        let data = if json {
            // JSON stays JSON, as in structured mode; bytes that do not parse are handed over as
            // they are and the handler (or typed input) reports them.
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => Data::Json(v),
                Err(_) => Data::Binary(body.to_vec()),
            }
        } else {
            Data::Binary(body.to_vec())
        };
        event.set_data_unchecked(data);
    }
    event.set_datacontenttype(content_type);
    Ok(event)
}

pub(super) fn encode(mut event: Event) -> Result<super::Encoded, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in event.iter_attributes() {
        if name == "datacontenttype" {
            continue;
        }
        headers.insert(header_name(name)?, encode_header_value(&value.to_string()));
    }
    for (name, value) in event.iter_extensions() {
        headers.insert(header_name(name)?, encode_header_value(&value.to_string()));
    }
    if let Some(ct) = event.datacontenttype() {
        let v = HeaderValue::from_str(ct).map_err(|_| {
            Error::internal("the reply's datacontenttype is not a valid header value")
        })?;
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    let (_, _, data) = event.take_data();
    let body = match data {
        None => Vec::new(),
        Some(Data::Binary(b)) => b,
        Some(Data::String(s)) => s.into_bytes(),
        Some(Data::Json(v)) => serde_json::to_vec(&v).map_err(Error::internal)?,
    };
    Ok(super::Encoded { headers, body })
}

fn header_name(attr: &str) -> Result<HeaderName, Error> {
    HeaderName::from_bytes(format!("ce-{attr}").as_bytes())
        .map_err(|_| Error::internal(format!("attribute `{attr}` cannot be a header name")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoded_values_decode_once() {
        let d = |v: &[u8]| decode_header_value("ce-subject", v);
        assert_eq!(d(b"a%20b%E2%82%AC").unwrap(), "a b€");
        assert_eq!(d(b"Euro%20%e2%82%ac%20%F0%9F%98%80").unwrap(), "Euro € 😀");
        // One round only: %2520 is "%20", not " ".
        assert_eq!(d(b"%2520").unwrap(), "%20");
        // Unnecessary escapes are fine.
        assert_eq!(d(b"%61bc").unwrap(), "abc");
    }

    #[test]
    fn overlong_utf8_is_rejected_naming_the_header() {
        let err = decode_header_value("ce-subject", b"%C0%A0").unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        assert!(err.message().contains("ce-subject"), "{err}");
    }

    #[test]
    fn quoted_strings_are_unquoted_before_decoding() {
        assert_eq!(decode_header_value("ce-x", b"\"a b\"").unwrap(), "a b");
        assert_eq!(decode_header_value("ce-x", b"\"a\\\"b\"").unwrap(), "a\"b");
        assert_eq!(decode_header_value("ce-x", b"\"%41\"").unwrap(), "A");
    }

    #[test]
    fn encoding_escapes_space_quote_percent_and_non_ascii_in_uppercase() {
        let e = |v: &str| encode_header_value(v).to_str().unwrap().to_owned();
        assert_eq!(e("Euro € 😀"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
        assert_eq!(e("a\"b%c"), "a%22b%25c");
        assert_eq!(e("/plain-path?x=1"), "/plain-path?x=1");
        assert_eq!(e("tab\there"), "tab%09here");
    }

    #[test]
    fn round_trip_through_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert("ce-source", HeaderValue::from_static("/s"));
        headers.insert("ce-type", HeaderValue::from_static("t"));
        headers.insert("ce-subject", HeaderValue::from_static("a%20b%E2%82%AC"));
        headers.insert("ce-myext", HeaderValue::from_static("x%25y"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let event = decode(&headers, Bytes::from_static(br#"{"k":1}"#)).unwrap();
        assert_eq!(event.subject(), Some("a b€"));
        assert_eq!(event.datacontenttype(), Some("application/json"));
        assert_eq!(event.data(), Some(&Data::Json(serde_json::json!({"k": 1}))));
        let out = encode(event).unwrap();
        assert_eq!(out.headers["ce-subject"], "a%20b%E2%82%AC");
        assert_eq!(out.headers["ce-myext"], "x%25y");
        assert_eq!(out.headers["content-type"], "application/json");
        assert!(!out.headers.contains_key("ce-datacontenttype"));
        assert_eq!(out.body, br#"{"k":1}"#);
    }

    #[test]
    fn missing_required_headers_are_named() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert("ce-type", HeaderValue::from_static("t"));
        let err = decode(&headers, Bytes::new()).unwrap_err();
        assert!(err.message().contains("ce-source"), "{err}");
    }

    #[test]
    fn content_type_is_the_datacontenttype_as_sent() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-specversion", HeaderValue::from_static("1.0"));
        headers.insert("ce-id", HeaderValue::from_static("1"));
        headers.insert("ce-source", HeaderValue::from_static("/s"));
        headers.insert("ce-type", HeaderValue::from_static("t"));
        for ct in [
            "application/json; profile=\"https://example.com/a%20b\"",
            "text/plain; x=%FF",
        ] {
            headers.insert("content-type", HeaderValue::from_static(ct));
            let event = decode(&headers, Bytes::new()).unwrap();
            assert_eq!(event.datacontenttype(), Some(ct));
        }
    }

    #[test]
    fn datacontenttype_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("ce-datacontenttype", HeaderValue::from_static("text/plain"));
        assert!(decode(&headers, Bytes::new()).is_err());
    }
}
