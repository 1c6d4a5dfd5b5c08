//! The CloudEvent handler shape on Lambda: a structured CloudEvent payload is that event; an
//! EventBridge event becomes one (PLATFORMS.md §2.8), so one handler serves Knative and
//! EventBridge alike. The reply event, if any, is the response payload in structured JSON.

use std::sync::Arc;

use bytes::Bytes;
use fnkit_core::cloudevents::{AttributesReader, Event, EventBuilder, EventBuilderV10};
use serde_json::{Map, Value};

use fnkit_core::{new_id, Context, Error, EventFunction};

/// Runs a CloudEvent handler on a Lambda payload.
pub(crate) async fn handle(
    f: &dyn EventFunction,
    payload: Bytes,
    ctx: Context,
) -> Result<Bytes, Error> {
    let event = to_event(&payload)?;
    let mut meta = event.clone();
    let _ = meta.take_data();
    let reply = f.call(event, ctx.with_event(Arc::new(meta))).await?;
    match reply {
        Some(reply) => serde_json::to_vec(&reply)
            .map(Bytes::from)
            .map_err(Error::internal),
        None => Ok(Bytes::from_static(b"null")),
    }
}

/// Reads the payload as a structured CloudEvent or an EventBridge event.
pub(crate) fn to_event(payload: &[u8]) -> Result<Event, Error> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| Error::invalid_event(format!("the event is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::invalid_event("the event is not a JSON object"));
    };
    if map.contains_key("specversion") {
        structured(map)
    } else if map.contains_key("detail-type") && map.contains_key("source") {
        eventbridge(map)
    } else {
        Err(Error::invalid_event(
            "the payload is neither a structured CloudEvent (no `specversion`) nor an EventBridge event (no `detail-type`)",
        ))
    }
}

fn structured(map: Map<String, Value>) -> Result<Event, Error> {
    if map.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err(Error::invalid_event("`specversion` must be \"1.0\""));
    }
    if map.contains_key("data") && map.contains_key("data_base64") {
        return Err(Error::invalid_event(
            "`data` and `data_base64` are both present",
        ));
    }
    let event: Event = serde_json::from_value(Value::Object(map))
        .map_err(|e| Error::invalid_event(format!("malformed CloudEvent: {e}")))?;
    for (name, value) in [("id", event.id()), ("type", event.ty())] {
        if value.is_empty() {
            return Err(Error::invalid_event(format!("`{name}` is empty")));
        }
    }
    if event.source().as_str().is_empty() {
        return Err(Error::invalid_event("`source` is empty"));
    }
    Ok(event)
}

/// EventBridge → CloudEvent: `id`, `source`, `type` from `detail-type`, `time`, `data` from
/// `detail` (JSON), and the account, region and first resource as `awsaccount`, `awsregion` and
/// `subject`.
fn eventbridge(mut map: Map<String, Value>) -> Result<Event, Error> {
    let mut text = |key: &str| match map.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let source =
        text("source").ok_or_else(|| Error::invalid_event("EventBridge `source` is empty"))?;
    let ty = text("detail-type")
        .ok_or_else(|| Error::invalid_event("EventBridge `detail-type` is empty"))?;
    let id = text("id").unwrap_or_else(new_id);
    let time = text("time");
    let account = text("account");
    let region = text("region");
    let subject = match map.get("resources") {
        Some(Value::Array(resources)) => {
            resources.first().and_then(Value::as_str).map(str::to_owned)
        }
        _ => None,
    };
    let detail = map.remove("detail").unwrap_or(Value::Object(Map::new()));
    let mut builder = EventBuilderV10::new()
        .id(id)
        .source(source)
        .ty(ty)
        .data("application/json", detail);
    if let Some(time) = time {
        builder = builder.time(time);
    }
    if let Some(subject) = subject {
        builder = builder.subject(subject);
    }
    if let Some(account) = account {
        builder = builder.extension("awsaccount", account);
    }
    if let Some(region) = region {
        builder = builder.extension("awsregion", region);
    }
    builder.build().map_err(|e| {
        Error::invalid_event(format!(
            "the EventBridge event does not make a CloudEvent: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::cloudevents::event::ExtensionValue;
    use fnkit_core::cloudevents::Data;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn eventbridge_becomes_a_cloudevent() {
        // §7 #21: kebab-case `detail-type` is read.
        let e = to_event(&fixture("eventbridge-event.json")).unwrap();
        assert_eq!(e.id(), "7bf73129-1428-4cd3-a780-95db273d1602");
        assert_eq!(e.source().as_str(), "aws.ec2");
        assert_eq!(e.ty(), "EC2 Instance State-change Notification");
        assert_eq!(e.time().unwrap().to_rfc3339(), "2021-11-11T21:29:54+00:00");
        assert_eq!(
            e.subject(),
            Some("arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111")
        );
        assert_eq!(
            e.extension("awsregion"),
            Some(&ExtensionValue::String("us-east-1".into()))
        );
        match e.data() {
            Some(Data::Json(v)) => assert_eq!(v["state"], "pending"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_structured_cloudevent_is_that_event() {
        let e = to_event(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!((e.id(), e.ty()), ("1", "t"));
        assert!(matches!(e.data(), Some(Data::Json(v)) if v["a"] == 1));
    }

    #[test]
    fn malformed_events_are_invalid_event_errors() {
        for bad in [
            &br#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#[..],
            br#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
            br#"{"specversion":"1.0","source":"/s","type":"t"}"#,
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#,
            br#"{"hello":"world"}"#,
            b"[1]",
        ] {
            let e = to_event(bad).unwrap_err();
            assert_eq!(e.kind(), fnkit_core::ErrorKind::InvalidEvent, "{}", String::from_utf8_lossy(bad));
        }
    }
}
