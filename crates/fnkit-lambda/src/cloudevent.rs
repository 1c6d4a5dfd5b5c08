//! The CloudEvent handler shape on Lambda: a structured CloudEvent payload is that event; an
//! EventBridge event becomes one (docs/platforms.md §2.8), so one handler serves Knative and
//! EventBridge alike. The reply event, if any, is the response payload in structured JSON.
//!
//! A structured event is decoded by `fnkit_core::adapter::ce`, the decoder the HTTP runtime
//! uses: the same event gets the same verdict and message on Lambda as over HTTP.

use std::sync::Arc;

use bytes::Bytes;
use fnkit_core::adapter::{ce, new_id, trace_context, EventFunction, TraceInput};
use fnkit_core::cloudevents::{Event, EventBuilder, EventBuilderV10};
use serde_json::{Map, Value};

use fnkit_core::{Context, Error, TraceContext};

/// Runs a CloudEvent handler on a Lambda payload.
pub(crate) async fn handle(
    f: &dyn EventFunction,
    payload: Bytes,
    ctx: Context,
    invocation: &mut TraceContext,
) -> Result<Bytes, Error> {
    let event = match to_event(&payload) {
        Ok(event) => event,
        Err(e) => {
            fnkit_core::adapter::observe::adopt(invocation, ctx.trace());
            return Err(e);
        }
    };
    let attributes = ce::without_data(&event);
    // The event's trace extension wins over the platform's X-Ray header; the span id stays.
    let trace = trace_context(TraceInput {
        xray: ctx.trace().xray_trace_id.as_deref(),
        event: Some(&attributes),
        span_id: ctx.trace().span.map(|s| s.span_id),
        ..TraceInput::default()
    });
    fnkit_core::adapter::observe::adopt(invocation, &trace);
    let ctx = ctx.with_trace(trace).with_event(Arc::new(attributes));
    match f.call(event, ctx).await? {
        Some(reply) => ce::encode(reply).map(Bytes::from),
        None => Ok(Bytes::from_static(b"null")),
    }
}

/// Reads the payload as an EventBridge event (an object with `detail-type` and no
/// `specversion`) or else as a structured CloudEvent.
pub(crate) fn to_event(payload: &[u8]) -> Result<Event, Error> {
    let value = ce::parse_json(payload)?;
    match value {
        Value::Object(map) if is_eventbridge(&map) => eventbridge(map),
        other => ce::decode_value(other),
    }
}

fn is_eventbridge(map: &Map<String, Value>) -> bool {
    map.contains_key("detail-type") && !map.contains_key("specversion")
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
    use fnkit_core::cloudevents::AttributesReader;
    use fnkit_core::cloudevents::Data;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn eventbridge_becomes_a_cloudevent() {
        // docs/conformance.md #21: kebab-case `detail-type` is read.
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
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad_Name":"x"}"#,
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","big":1099511627776}"#,
            br#"{"hello":"world"}"#,
            br#"{"detail-type":"x"}"#,
            b"[1]",
            b"not json",
        ] {
            let e = to_event(bad).unwrap_err();
            assert_eq!(e.kind(), fnkit_core::ErrorKind::InvalidEvent, "{}", String::from_utf8_lossy(bad));
        }
    }
}
