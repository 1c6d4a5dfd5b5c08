//! Structured and batched mode: events as JSON (JSON event format §3, batch format §4).

use cloudevents::event::{TryIntoTime, TryIntoUrl};
use cloudevents::{AttributesReader, Data, Event};
use fnkit_core::Error;
use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

/// Where attributes came from, so errors name what the sender wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    /// `ce-*` headers (binary mode).
    Headers,
    /// Members of a JSON object (structured and batched mode).
    Members,
}

impl Style {
    fn name(self, attr: &str) -> String {
        match self {
            Self::Headers => format!("header ce-{attr}"),
            Self::Members => format!("member `{attr}`"),
        }
    }
}

/// Builds an event from its attributes as JSON members, checking what the SDK does not.
pub(super) fn from_members(mut members: Map<String, Value>, style: Style) -> Result<Event, Error> {
    // `null` members are absent (JSON format §2.2).
    members.retain(|_, v| !v.is_null());
    match members.get("specversion") {
        None => {
            return Err(Error::invalid_event(format!(
                "missing required attribute specversion ({})",
                style.name("specversion")
            )))
        }
        Some(Value::String(v)) if v == "1.0" => {}
        Some(other) => {
            return Err(Error::invalid_event(format!(
                "specversion {other} is not supported ({}); use \"1.0\"",
                style.name("specversion")
            )))
        }
    }
    for attr in ["id", "source", "type"] {
        match members.get(attr) {
            None => {
                return Err(Error::invalid_event(format!(
                    "missing required attribute {attr} ({})",
                    style.name(attr)
                )))
            }
            Some(Value::String(s)) if s.is_empty() => {
                return Err(Error::invalid_event(format!(
                    "required attribute {attr} is empty ({})",
                    style.name(attr)
                )))
            }
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(Error::invalid_event(format!(
                    "attribute {attr} must be a string ({})",
                    style.name(attr)
                )))
            }
        }
    }
    if let Some(time) = members.get("time") {
        let ok = time.as_str().is_some_and(|t| t.into_time().is_ok());
        if !ok {
            return Err(Error::invalid_event(format!(
                "attribute time {time} is not an RFC 3339 timestamp ({})",
                style.name("time")
            )));
        }
    }
    if let Some(schema) = members.get("dataschema") {
        let ok = schema.as_str().is_some_and(|s| s.into_url().is_ok());
        if !ok {
            return Err(Error::invalid_event(format!(
                "attribute dataschema {schema} is not an absolute URI ({})",
                style.name("dataschema")
            )));
        }
    }
    if members.contains_key("data") && members.contains_key("data_base64") {
        return Err(Error::invalid_event(
            "an event may carry `data` or `data_base64`, not both",
        ));
    }
    const KNOWN: [&str; 10] = [
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
    for (name, value) in &members {
        if KNOWN.contains(&name.as_str()) {
            continue;
        }
        super::validate_extension_name(name)
            .map_err(|e| Error::invalid_event(format!("{} ({})", e.message(), style.name(name))))?;
        match value {
            Value::String(_) | Value::Bool(_) => {}
            Value::Number(n) => {
                let fits = n.as_i64().is_some_and(|i| i32::try_from(i).is_ok());
                if !fits {
                    return Err(Error::invalid_event(format!(
                        "extension {name} = {n} is not a 32-bit integer ({})",
                        style.name(name)
                    )));
                }
            }
            _ => {
                return Err(Error::invalid_event(format!(
                    "extension {name} must be a string, boolean or integer ({})",
                    style.name(name)
                )))
            }
        }
    }
    serde_json::from_value::<Event>(Value::Object(members))
        .map_err(|e| Error::invalid_event(format!("invalid CloudEvent: {e}")))
}

fn parse_object(value: Value, what: &str) -> Result<Event, Error> {
    match value {
        Value::Object(map) => from_members(map, Style::Members),
        other => Err(Error::invalid_event(format!(
            "{what} must be a JSON object, not {}",
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

fn parse_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid_event(format!("malformed JSON in a CloudEvents body: {e}")))
}

pub(super) fn decode_one(body: &[u8]) -> Result<Event, Error> {
    parse_object(parse_json(body)?, "a structured CloudEvent")
}

pub(super) fn decode_batch(body: &[u8]) -> Result<Vec<Event>, Error> {
    match parse_json(body)? {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                parse_object(item, &format!("batch entry {i}"))
                    .map_err(|e| Error::invalid_event(format!("batch entry {i}: {}", e.message())))
            })
            .collect(),
        other => Err(Error::invalid_event(format!(
            "a CloudEvents batch must be a JSON array, not {}",
            json_kind(&other)
        ))),
    }
}

/// JSON data stays JSON on the way out: binary data with a JSON content type is parsed so it is
/// written as `data`, not `data_base64`.
fn normalise(mut event: Event) -> Event {
    let json_type = event
        .datacontenttype()
        .and_then(super::media_type_of)
        .is_none_or(|mt| super::is_json(&mt));
    if json_type {
        if let Some(Data::Binary(bytes)) = event.data() {
            if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
                event.set_data_unchecked(Data::Json(v));
            }
        }
    }
    event
}

fn content_type(value: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(value));
    h
}

pub(super) fn encode_one(event: Event) -> Result<super::Encoded, Error> {
    Ok(super::Encoded {
        headers: content_type("application/cloudevents+json; charset=utf-8"),
        body: serde_json::to_vec(&normalise(event)).map_err(Error::internal)?,
    })
}

pub(super) fn encode_batch(events: Vec<Event>) -> Result<super::Encoded, Error> {
    let events: Vec<Event> = events.into_iter().map(normalise).collect();
    Ok(super::Encoded {
        headers: content_type("application/cloudevents-batch+json; charset=utf-8"),
        body: serde_json::to_vec(&events).map_err(Error::internal)?,
    })
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
        let e = decode_one(with(r#""data":{"a":[1,2]}"#).as_bytes()).unwrap();
        assert_eq!(e.data(), Some(&Data::Json(serde_json::json!({"a":[1,2]}))));
        let e = decode_one(
            with(r#""datacontenttype":"application/octet-stream","data_base64":"AAEC""#).as_bytes(),
        )
        .unwrap();
        assert_eq!(e.data(), Some(&Data::Binary(vec![0, 1, 2])));
    }

    #[test]
    fn data_and_data_base64_together_are_refused() {
        let err = decode_one(with(r#""data":1,"data_base64":"AA==""#).as_bytes()).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
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
                r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
                "specversion",
            ),
            (
                r#"{"specversion":"1.1","id":"1","source":"/s","type":"t"}"#,
                "specversion",
            ),
        ] {
            let err = decode_one(body.as_bytes()).unwrap_err();
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
            r#""f":1.5"#,
        ] {
            let err = decode_one(with(extra).as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{extra}");
        }
        assert!(decode_one(with(r#""small":-2147483648"#).as_bytes()).is_ok());
    }

    #[test]
    fn batches_may_be_empty_and_name_the_bad_entry() {
        assert!(decode_batch(b"[]").unwrap().is_empty());
        let body = format!("[{EVENT},{{\"specversion\":\"1.0\"}}]");
        let err = decode_batch(body.as_bytes()).unwrap_err();
        assert!(err.message().contains("batch entry 1"), "{err}");
        assert!(decode_batch(EVENT.as_bytes()).is_err());
    }

    #[test]
    fn binary_json_data_is_written_as_json() {
        let mut e = decode_one(EVENT.as_bytes()).unwrap();
        e.set_data("application/json", Data::Binary(br#"{"x":1}"#.to_vec()));
        let out = encode_one(e).unwrap();
        let v: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(v["data"], serde_json::json!({"x":1}));
        assert!(v.get("data_base64").is_none());
    }
}
