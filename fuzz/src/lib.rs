//! What the fuzz targets share: the requests they build and the checks every outcome must pass.

use bytes::Bytes;
use fnkit_core::adapter::ce;
use fnkit_core::cloudevents::Event;
use fnkit_core::{Error, ErrorKind};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};

/// The HTTP runtime's reading of a request with this content type and body.
pub fn http_decode(content_type: &'static str, body: &[u8]) -> Result<Vec<Event>, Error> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    fnkit_http::fuzzing::decode_events(&headers, Bytes::copy_from_slice(body))
}

/// An accepted event keeps every rule of the decoder (the checks a reply event passes); a
/// refusal is one of `kinds`, with a message.
pub fn check(result: &Result<Vec<Event>, Error>, kinds: &[ErrorKind]) {
    match result {
        Ok(events) => {
            for e in events {
                if let Err(broken) = ce::validate(e) {
                    panic!("accepted an event that breaks a rule ({broken}): {e:?}");
                }
            }
        }
        Err(e) => {
            assert!(
                kinds.contains(&e.kind()),
                "unexpected kind {:?}: {e}",
                e.kind()
            );
            assert!(!e.message().is_empty(), "an error without a message");
        }
    }
}

/// Lambda reads an object with `detail-type` and no `specversion` as an EventBridge event, by
/// design: the HTTP binding has no such reading.
pub fn eventbridge_shaped(payload: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .as_ref()
        .and_then(serde_json::Value::as_object)
        .is_some_and(|m| m.contains_key("detail-type") && !m.contains_key("specversion"))
}

/// W3C Trace Context §3.2, written out independently of fnkit's parser.
pub fn w3c_traceparent(tp: &str) -> bool {
    let fields: Vec<&str> = tp.split('-').collect();
    let lower_hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    match fields.as_slice() {
        [v, t, p, f, rest @ ..] => {
            lower_hex(v, 2)
                && lower_hex(t, 32)
                && lower_hex(p, 16)
                && lower_hex(f, 2)
                && *v != "ff"
                && !zeros(t)
                && !zeros(p)
                && (*v != "00" || rest.is_empty())
        }
        _ => false,
    }
}
