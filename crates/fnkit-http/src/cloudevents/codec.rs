//! Reading and writing events in each mode (feature `cloudevents`): binary mode in `binary.rs`,
//! the JSON event format of structured and batched mode in `fnkit_core::adapter::ce`.

use cloudevents::Event;
use fnkit_core::adapter::ce;
use fnkit_core::Error;
use http::{HeaderMap, HeaderValue};

use super::{binary, Mode};

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
