//! CloudEvents 1.0.2 without a transport: the attribute and extension rules, the JSON event
//! format (single events and batches), and splitting an event's data from its attributes.
//! Every adapter decodes events here, so the same event gets the same verdict, error kind and
//! message over HTTP and on Lambda (docs/platforms.md §5).
//!
//! `cloudevents-sdk` (0.9) models events well but checks less than the spec asks: it takes empty
//! required attributes, extension names with upper case or `_`, integers beyond 32 bits, and both
//! `data` and `data_base64`. The rules here close those gaps before the SDK builds the `Event`.

use bytes::Bytes;
use cloudevents::event::{ExtensionValue, TryIntoTime, TryIntoUrl};
use cloudevents::{AttributesReader, AttributesWriter, Data, Event};
use serde_json::{Map, Value};

use crate::adapter::Payload;
use crate::media::{is_json, media_type};
use crate::Error;

/// Where an event's attributes came from, so that errors name what the sender wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `ce-*` headers (HTTP binary mode): an attribute is named `header ce-<name>`.
    Headers,
    /// Members of a JSON object (the JSON event format): named `member `<name>``.
    Json,
}

impl Origin {
    fn name(self, attr: &str) -> String {
        match self {
            Self::Headers => format!("header ce-{attr}"),
            Self::Json => format!("member `{attr}`"),
        }
    }
}

const CONTEXT_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// Builds an event from its attributes as JSON members (`null` members count as absent),
/// checking every rule of the spec: `specversion` `"1.0"`; `id`, `source`, `type` present,
/// strings, not empty; `time` RFC 3339; `dataschema` an absolute URI; not both `data` and
/// `data_base64`; extension names `[a-z0-9]+`; extension values strings, booleans or 32-bit
/// integers.
///
/// # Errors
/// [`ErrorKind::InvalidEvent`](crate::ErrorKind::InvalidEvent) naming the attribute.
pub fn from_attributes(mut members: Map<String, Value>, origin: Origin) -> Result<Event, Error> {
    members.retain(|_, v| !v.is_null());
    match members.get("specversion") {
        None => {
            return Err(Error::invalid_event(format!(
                "missing required attribute specversion ({})",
                origin.name("specversion")
            )))
        }
        Some(Value::String(v)) if v == "1.0" => {}
        Some(other) => {
            return Err(Error::invalid_event(format!(
                "specversion {other} is not supported ({}); use \"1.0\"",
                origin.name("specversion")
            )))
        }
    }
    for attr in ["id", "source", "type"] {
        let problem = match members.get(attr) {
            None => "missing required attribute",
            Some(Value::String(s)) if s.is_empty() => "empty required attribute",
            Some(Value::String(_)) => continue,
            Some(_) => "non-string attribute",
        };
        return Err(Error::invalid_event(format!(
            "{problem} {attr} ({})",
            origin.name(attr)
        )));
    }
    if let Some(time) = members.get("time") {
        if time.as_str().is_none_or(|t| t.into_time().is_err()) {
            return Err(Error::invalid_event(format!(
                "attribute time {time} is not an RFC 3339 timestamp ({})",
                origin.name("time")
            )));
        }
    }
    if let Some(schema) = members.get("dataschema") {
        if schema.as_str().is_none_or(|s| s.into_url().is_err()) {
            return Err(Error::invalid_event(format!(
                "attribute dataschema {schema} is not an absolute URI ({})",
                origin.name("dataschema")
            )));
        }
    }
    if members.contains_key("data") && members.contains_key("data_base64") {
        return Err(Error::invalid_event(
            "an event may carry `data` or `data_base64`, not both",
        ));
    }
    for (name, value) in &members {
        if CONTEXT_ATTRIBUTES.contains(&name.as_str()) {
            continue;
        }
        validate_extension_name(name).map_err(|e| {
            Error::invalid_event(format!("{} ({})", e.message(), origin.name(name)))
        })?;
        let fits = match value {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(n) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            _ => false,
        };
        if !fits {
            return Err(Error::invalid_event(format!(
                "extension {name} = {value} is not a string, boolean or 32-bit integer ({})",
                origin.name(name)
            )));
        }
    }
    serde_json::from_value::<Event>(Value::Object(members))
        .map_err(|e| Error::invalid_event(format!("invalid CloudEvent: {e}")))
}

/// Parses JSON text that should hold one event or a batch.
///
/// # Errors
/// `InvalidEvent` for malformed JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_event(format!("malformed JSON in a CloudEvent: {e}")))
}

/// Reads one event in the JSON format from a parsed value.
///
/// # Errors
/// `InvalidEvent`: not an object, or an attribute breaks a rule of [`from_attributes`].
pub fn decode_value(value: Value) -> Result<Event, Error> {
    object(value, "a structured CloudEvent")
}

fn object(value: Value, what: &str) -> Result<Event, Error> {
    match value {
        Value::Object(map) => from_attributes(map, Origin::Json),
        other => Err(Error::invalid_event(format!(
            "{what} must be a JSON object, not {}",
            json_kind(&other)
        ))),
    }
}

/// Reads one event in the JSON format (`application/cloudevents+json`).
///
/// ```
/// use fnkit_core::adapter::ce;
/// let e = ce::decode(br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad_Name":1}"#);
/// assert_eq!(e.unwrap_err().message(),
///     "attribute name `Bad_Name` is invalid: names use only a-z and 0-9 (member `Bad_Name`)");
/// ```
///
/// # Errors
/// As [`parse_json`] and [`decode_value`].
pub fn decode(body: &[u8]) -> Result<Event, Error> {
    decode_value(parse_json(body)?)
}

/// Reads a batch in the JSON batch format (`application/cloudevents-batch+json`): an array of
/// events, possibly empty.
///
/// # Errors
/// `InvalidEvent`: not an array, or an entry that is not a valid event, named by its index.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Event>, Error> {
    match parse_json(body)? {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                object(item, "an entry")
                    .map_err(|e| Error::invalid_event(format!("batch entry {i}: {}", e.message())))
            })
            .collect(),
        other => Err(Error::invalid_event(format!(
            "a CloudEvents batch must be a JSON array, not {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks an event built in code (a handler's reply) by the same rules as [`from_attributes`].
///
/// # Errors
/// `InvalidEvent` naming the attribute.
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
                "empty required attribute {name}"
            )));
        }
    }
    for (name, value) in event.iter_extensions() {
        validate_extension_name(name)?;
        if let ExtensionValue::Integer(i) = value {
            if i32::try_from(*i).is_err() {
                return Err(Error::invalid_event(format!(
                    "extension {name} = {i} is not a string, boolean or 32-bit integer"
                )));
            }
        }
    }
    Ok(())
}

/// Extension names: lowercase ASCII letters and digits, not a reserved name.
///
/// # Errors
/// `InvalidEvent` naming the attribute.
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
    if name == "data" {
        return Err(Error::invalid_event(format!(
            "attribute name `{name}` is reserved"
        )));
    }
    Ok(())
}

/// Writes an event in the JSON format, after [`validate`]: JSON data stays JSON (binary data
/// whose content type is JSON is written as `data`, not `data_base64`).
///
/// # Errors
/// [`ErrorKind::Internal`](crate::ErrorKind::Internal) when the event breaks a rule: a reply is
/// the function's own doing, not the caller's.
pub fn encode(event: Event) -> Result<Vec<u8>, Error> {
    let event = checked_reply(event)?;
    serde_json::to_vec(&event).map_err(Error::internal)
}

/// Writes events in the JSON batch format, each as [`encode`] would.
///
/// # Errors
/// As [`encode`].
pub fn encode_batch(events: Vec<Event>) -> Result<Vec<u8>, Error> {
    let events = events
        .into_iter()
        .map(checked_reply)
        .collect::<Result<Vec<_>, _>>()?;
    serde_json::to_vec(&events).map_err(Error::internal)
}

/// Validates a reply event, turning a broken rule into an internal error.
///
/// # Errors
/// As [`encode`].
pub fn checked_reply(event: Event) -> Result<Event, Error> {
    validate(&event).map_err(|e| {
        Error::internal(format!(
            "the handler's reply event is invalid: {}",
            e.message()
        ))
    })?;
    Ok(json_data_as_json(event))
}

fn json_data_as_json(mut event: Event) -> Event {
    let json_type = event
        .datacontenttype()
        .and_then(media_type)
        .is_none_or(|mt| is_json(&mt));
    if json_type {
        if let Some(Data::Binary(bytes)) = event.data() {
            if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
                event.set_data_unchecked(Data::Json(v));
            }
        }
    }
    event
}

/// The event's data as a typed handler's input, and the event without it (its
/// `datacontenttype` and `dataschema` kept). No data reads as JSON `null`; text data as a JSON
/// string.
pub fn split_data(mut event: Event) -> (Event, Payload) {
    let (ct, schema, data) = event.take_data();
    event.set_datacontenttype(ct);
    event.set_dataschema(schema);
    let payload = match data {
        None => Payload::Json(Value::Null),
        Some(Data::Json(v)) => Payload::Json(v),
        Some(Data::Binary(b)) => Payload::Bytes(Bytes::from(b)),
        Some(Data::String(s)) => Payload::Json(Value::String(s)),
    };
    (event, payload)
}

/// A copy of the event's attributes and extensions without its data, for `Context::event`.
pub fn without_data(event: &Event) -> Event {
    let mut copy = Event::default();
    copy.set_id(event.id());
    copy.set_source(event.source().clone());
    copy.set_type(event.ty());
    copy.set_subject(event.subject());
    copy.set_time(event.time().copied());
    copy.set_datacontenttype(event.datacontenttype());
    copy.set_dataschema(event.dataschema().cloned());
    for (name, value) in event.iter_extensions() {
        copy.set_extension(name, value.clone());
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    fn with(extra: &str) -> String {
        format!("{},{extra}}}", &EVENT[..EVENT.len() - 1])
    }

    #[test]
    fn json_data_stays_json_and_base64_decodes_to_bytes() {
        let e = decode(with(r#""data":{"a":[1,2]}"#).as_bytes()).unwrap();
        assert_eq!(e.data(), Some(&Data::Json(serde_json::json!({"a":[1,2]}))));
        let e = decode(
            with(r#""datacontenttype":"application/octet-stream","data_base64":"AAEC""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(e.data(), Some(&Data::Binary(vec![0, 1, 2])));
    }

    #[test]
    fn data_and_data_base64_together_are_refused() {
        let err = decode(with(r#""data":1,"data_base64":"AA==""#).as_bytes()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidEvent);
    }

    #[test]
    fn missing_or_empty_required_attributes_are_named() {
        for (body, needle) in [
            (r#"{"id":"1","source":"/s","type":"t"}"#, "specversion"),
            (r#"{"specversion":"1.0","source":"/s","type":"t"}"#, "id"),
            (r#"{"specversion":"1.0","id":"1","type":"t"}"#, "source"),
            (
                r#"{"specversion":"1.0","id":"1","source":"/s","type":""}"#,
                "type",
            ),
            (
                r#"{"specversion":"1.0","id":1,"source":"/s","type":"t"}"#,
                "id",
            ),
            (
                r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
                "specversion",
            ),
            (
                r#"{"specversion":"1.1","id":"1","source":"/s","type":"t"}"#,
                "specversion",
            ),
        ] {
            let err = decode(body.as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body}");
            assert!(err.message().contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn bad_extension_names_and_wide_integers_are_refused() {
        for extra in [
            r#""myExt":"x""#,
            r#""my_ext":"x""#,
            r#""big":2147483648"#,
            r#""big":1099511627776"#,
            r#""f":1.5"#,
            r#""o":{}"#,
        ] {
            let err = decode(with(extra).as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{extra}");
        }
        assert!(decode(with(r#""small":-2147483648"#).as_bytes()).is_ok());
        assert!(decode(with(r#""nothing":null"#).as_bytes()).is_ok());
    }

    #[test]
    fn extension_names_are_lowercase_alphanumerics() {
        assert!(validate_extension_name("traceparent").is_ok());
        assert!(validate_extension_name("abc123").is_ok());
        for bad in ["traceParent", "my-ext", "my_ext", "", "data"] {
            assert!(validate_extension_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batches_may_be_empty_and_name_the_bad_entry() {
        assert!(decode_batch(b"[]").unwrap().is_empty());
        let body = format!("[{EVENT},{{\"specversion\":\"1.0\"}}]");
        let err = decode_batch(body.as_bytes()).unwrap_err();
        assert!(err.message().starts_with("batch entry 1: "), "{err}");
        assert!(decode_batch(EVENT.as_bytes()).is_err());
        assert!(decode_batch(b"[1]")
            .unwrap_err()
            .message()
            .contains("an entry must be"));
    }

    #[test]
    fn binary_json_data_is_written_as_json() {
        let mut e = decode(EVENT.as_bytes()).unwrap();
        e.set_data("application/json", Data::Binary(br#"{"x":1}"#.to_vec()));
        let v: Value = serde_json::from_slice(&encode(e).unwrap()).unwrap();
        assert_eq!(v["data"], serde_json::json!({"x":1}));
        assert!(v.get("data_base64").is_none());
    }

    #[test]
    fn an_invalid_reply_is_an_internal_error() {
        let mut e = decode(EVENT.as_bytes()).unwrap();
        e.set_extension("Bad", "x");
        let err = encode(e).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Internal);
        assert!(err.message().contains("`Bad`"), "{err}");
    }

    #[test]
    fn split_data_keeps_the_content_type_on_the_event() {
        let mut e = Event::default();
        e.set_data("application/json", serde_json::json!({"a": 1}));
        let (e, payload) = split_data(e);
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert!(e.data().is_none());
        assert!(matches!(payload, Payload::Json(_)));
    }

    #[test]
    fn without_data_keeps_attributes_and_extensions() {
        let e = decode(with(r#""subject":"x","ext":"v","data":{"a":1}"#).as_bytes()).unwrap();
        let meta = without_data(&e);
        assert_eq!(meta.subject(), Some("x"));
        assert!(meta.extension("ext").is_some());
        assert!(meta.data().is_none());
    }
}
