//! The CloudEvents 1.0.2 HTTP binding: docs/platforms.md §5, docs/conformance.md #34–#45. Requests are built
//! and replies read by the official Rust SDK (`cloudevents-sdk`'s own HTTP binding), an
//! independent implementation of the same spec.

use cloudevents::binding::http::to_event;
use cloudevents::event::ExtensionValue;
use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use fnkit_tests::{FnProcess, Request, Response};
use http::HeaderMap;
use serde_json::json;

fn event(ty: &str, data: serde_json::Value) -> Event {
    EventBuilderV10::new()
        .id("evt-1")
        .source("/tests/sdk")
        .ty(ty)
        .subject("orders")
        .data("application/json", data)
        .build()
        .unwrap()
}

/// The SDK writes the event as a binary-mode request.
fn binary_request(event: Event) -> Request {
    let req: http::Request<Option<Vec<u8>>> = http::Request::try_from(event).unwrap();
    let mut out = Request::post("/", req.body().clone().unwrap_or_default());
    for (k, v) in req.headers() {
        out = out.header(k.as_str(), v.as_bytes());
    }
    out
}

fn structured_request(event: &Event) -> Request {
    Request::post("/", serde_json::to_vec(event).unwrap()).header(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )
}

fn header_map(r: &Response) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, vs) in &r.headers {
        for v in vs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
    }
    h
}

/// The SDK reads our reply.
fn reply_event(r: &Response) -> Event {
    assert_eq!(r.status, 200, "{}", r.text());
    to_event(&header_map(r), r.body.clone()).expect("the SDK cannot read the reply")
}

fn error_of(r: &Response) -> (u16, String, String) {
    let v = r.json();
    (
        r.status,
        v["error"].as_str().unwrap_or_default().to_owned(),
        v["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn cloudevents_34_binary_request_maps_attributes_and_content_type() {
    let f = FnProcess::start("echo-event", &[]);
    let r = f.send(&binary_request(event(
        "com.example.order",
        json!({"id": 7}),
    )));
    assert!(r.header("ce-id").is_some(), "binary in must be binary out");
    let reply = reply_event(&r);
    assert_eq!(reply.ty(), "com.example.order.reply");
    assert_eq!(reply.subject(), Some("orders"));
    assert_eq!(reply.datacontenttype(), Some("application/json"));
    assert_eq!(reply.source(), "urn:fnkit:echo-event");
    assert_ne!(reply.id(), "evt-1");
    let data: serde_json::Value = match reply.data() {
        Some(Data::Binary(b)) => serde_json::from_slice(b).unwrap(),
        Some(Data::Json(v)) => v.clone(),
        other => panic!("unexpected data {other:?}"),
    };
    assert_eq!(data, json!({"id": 7}));
}

#[test]
fn cloudevents_34_typed_handler_takes_event_data_as_input() {
    let f = FnProcess::start("hello", &[]);
    let reply = reply_event(&f.send(&binary_request(event(
        "com.example.greet",
        json!({"name": "Ce"}),
    ))));
    assert_eq!(reply.ty(), "com.example.greet.reply");
    assert_eq!(reply.source(), "urn:fnkit:hello");
    let data = match reply.data() {
        Some(Data::Binary(b)) => serde_json::from_slice::<serde_json::Value>(b).unwrap(),
        other => panic!("unexpected data {other:?}"),
    };
    assert_eq!(data, json!({"message": "Hello, Ce!"}));
}

#[test]
fn cloudevents_35_percent_encoded_headers_decode_and_overlong_utf8_is_400() {
    let f = FnProcess::start("echo-event", &[]);
    let base = binary_request(event("t", json!(1)));
    let mut req = base.clone();
    req.headers.retain(|(k, _)| k != "ce-subject");
    let ok = f.send(&req.clone().header("ce-subject", "a%20b%E2%82%AC"));
    // echo-event copies the subject; on the way out it is percent-encoded again.
    assert_eq!(ok.header("ce-subject"), Some("a%20b%E2%82%AC"));
    assert_eq!(
        reply_event(&ok).subject(),
        Some("a%20b%E2%82%AC"),
        "the SDK does not decode"
    );
    let bad = f.send(&req.header("ce-subject", "%C0%A0"));
    let (status, kind, message) = error_of(&bad);
    assert_eq!((status, kind.as_str()), (400, "InvalidEvent"));
    assert!(message.contains("ce-subject"), "{message}");
}

#[test]
fn cloudevents_36_quoted_header_values_are_unquoted() {
    let f = FnProcess::start("echo-event", &[]);
    let mut req = binary_request(event("t", json!(1)));
    req.headers.retain(|(k, _)| k != "ce-subject");
    let r = f.send(&req.header("ce-subject", "\"a b\""));
    assert_eq!(r.header("ce-subject"), Some("a%20b"));
}

#[test]
fn cloudevents_37_outgoing_binary_headers_are_percent_encoded_uppercase() {
    let f = FnProcess::start("echo-event", &[]);
    let mut req = binary_request(event("t", json!(1)));
    req.headers.retain(|(k, _)| k != "ce-subject");
    let r = f.send(&req.header("ce-subject", "Euro%20%E2%82%AC%20%22q%22%25"));
    assert_eq!(
        r.header("ce-subject"),
        Some("Euro%20%E2%82%AC%20%22q%22%25")
    );
    assert!(r.header("ce-datacontenttype").is_none());
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn cloudevents_38_structured_json_in_any_case_stays_json_and_base64_decodes() {
    let f = FnProcess::start("echo-event", &[]);
    let ev = event("com.example.s", json!({"k": [1, 2]}));
    for ct in [
        "application/cloudevents+json; charset=utf-8",
        "Application/CloudEvents+JSON",
    ] {
        let r = f
            .send(&Request::post("/", serde_json::to_vec(&ev).unwrap()).header("content-type", ct));
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/cloudevents+json"));
        let v = r.json();
        assert_eq!(
            v["data"],
            json!({"k": [1, 2]}),
            "JSON data must stay JSON: {v}"
        );
        assert_eq!(v["type"], "com.example.s.reply");
        let parsed: Event = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.ty(), "com.example.s.reply");
    }
    let bin = json!({"specversion":"1.0","id":"b","source":"/s","type":"bin",
        "datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="});
    let r = f.send(
        &Request::post("/", bin.to_string()).header("content-type", "application/cloudevents+json"),
    );
    let v = r.json();
    assert_eq!(v["data_base64"], "AAEC/w==", "{v}");
    let parsed: Event = serde_json::from_value(v).unwrap();
    assert_eq!(parsed.data(), Some(&Data::Binary(vec![0, 1, 2, 255])));
}

#[test]
fn cloudevents_39_data_and_data_base64_together_get_400() {
    let f = FnProcess::start("echo-event", &[]);
    let body = json!({"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="});
    let r = f.send(
        &Request::post("/", body.to_string())
            .header("content-type", "application/cloudevents+json"),
    );
    assert_eq!(error_of(&r).0, 400);
}

#[test]
fn cloudevents_40_empty_batch_is_accepted_with_no_handler_call() {
    let f = FnProcess::start("hello", &[("RUST_LOG", "debug")]);
    let r = f.send(
        &Request::post("/", "[]").header("content-type", "application/cloudevents-batch+json"),
    );
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
}

#[test]
fn cloudevents_40_a_batch_of_n_gets_n_handler_calls_and_a_batch_reply() {
    let f = FnProcess::start("hello", &[]);
    let batch: Vec<Event> = ["A", "B", "C"]
        .iter()
        .map(|n| event("com.example.greet", json!({"name": n})))
        .collect();
    let r = f.send(
        &Request::post("/", serde_json::to_vec(&batch).unwrap())
            .header("content-type", "application/cloudevents-batch+json"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/cloudevents-batch+json"));
    let replies: Vec<Event> = serde_json::from_slice(&r.body).unwrap();
    let messages: Vec<serde_json::Value> = replies
        .iter()
        .map(|e| match e.data() {
            Some(Data::Json(v)) => v["message"].clone(),
            other => panic!("unexpected data {other:?}"),
        })
        .collect();
    assert_eq!(
        messages,
        vec![json!("Hello, A!"), json!("Hello, B!"), json!("Hello, C!")]
    );
    let ids: std::collections::HashSet<&str> = replies.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), 3, "reply ids must be distinct");
}

#[test]
fn cloudevents_41_missing_or_empty_required_attributes_and_bad_specversion_get_400() {
    let f = FnProcess::start("echo-event", &[]);
    let full = binary_request(event("t", json!(1)));
    for (drop, replace, needle) in [
        ("ce-id", None, "id"),
        ("ce-source", None, "source"),
        ("ce-type", None, "type"),
        ("ce-specversion", None, "specversion"),
        ("ce-id", Some(""), "id"),
        ("ce-specversion", Some("0.3"), "specversion"),
        ("ce-specversion", Some("1.1"), "specversion"),
    ] {
        let mut req = full.clone();
        req.headers.retain(|(k, _)| k != drop);
        if let Some(v) = replace {
            req = req.header(drop, v);
        }
        let (status, kind, message) = error_of(&f.send(&req));
        assert_eq!(status, 400, "{drop}={replace:?}");
        assert_eq!(kind, "InvalidEvent");
        assert!(message.contains(needle), "{drop}={replace:?}: {message}");
    }
}

#[test]
fn cloudevents_42_bad_extension_names_are_rejected_on_input() {
    let f = FnProcess::start("echo-event", &[]);
    for body in [
        json!({"specversion":"1.0","id":"1","source":"/s","type":"t","traceParent":"x"}),
        json!({"specversion":"1.0","id":"1","source":"/s","type":"t","my_ext":"x"}),
        json!({"specversion":"1.0","id":"1","source":"/s","type":"t","my-ext":"x"}),
    ] {
        let r = f.send(
            &Request::post("/", body.to_string())
                .header("content-type", "application/cloudevents+json"),
        );
        assert_eq!(error_of(&r).0, 400, "{body}");
    }
    let mut req = binary_request(event("t", json!(1)));
    req = req.header("ce-my_ext", "x");
    assert_eq!(error_of(&f.send(&req)).0, 400);
}

#[test]
fn cloudevents_43_integer_extensions_outside_i32_are_rejected() {
    let f = FnProcess::start("echo-event", &[]);
    let body =
        json!({"specversion":"1.0","id":"1","source":"/s","type":"t","big":2_147_483_648_i64});
    let r = f.send(
        &Request::post("/", body.to_string())
            .header("content-type", "application/cloudevents+json"),
    );
    assert_eq!(error_of(&r).0, 400);
    let ok =
        json!({"specversion":"1.0","id":"1","source":"/s","type":"t","small":-2_147_483_648_i64});
    let r = f.send(
        &Request::post("/", ok.to_string()).header("content-type", "application/cloudevents+json"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn cloudevents_44_a_reply_is_200_with_an_event_in_the_request_mode() {
    let f = FnProcess::start("echo-event", &[]);
    let ev = event("m", json!({"x": 1}));
    let structured = f.send(&structured_request(&ev));
    assert_eq!(structured.status, 200);
    assert!(structured.header("ce-id").is_none());
    let parsed = reply_event(&structured);
    assert_eq!(parsed.ty(), "m.reply");
    let binary = f.send(&binary_request(ev));
    assert_eq!(binary.status, 200);
    assert!(binary.header("ce-id").is_some());
}

#[test]
fn cloudevents_44_extensions_survive_and_the_event_reaches_the_context() {
    // echo-event builds its reply with ctx.reply_to; the incoming extension stays on the request
    // side, and the reply carries a fresh id.
    let f = FnProcess::start("echo-event", &[]);
    let mut ev = event("x", json!(1));
    ev.set_extension("partitionkey", ExtensionValue::from("p1"));
    let r = f.send(&structured_request(&ev));
    let reply = reply_event(&r);
    assert_ne!(reply.id(), "evt-1");
}

#[test]
fn cloudevents_45_malformed_events_are_400_so_brokers_do_not_retry() {
    let f = FnProcess::start("echo-event", &[]);
    let r = f.send(
        &Request::post("/", "{not json").header("content-type", "application/cloudevents+json"),
    );
    assert_eq!(error_of(&r).0, 400);
    // A plain JSON POST is not an event.
    let r = f.post_json("/", "{}");
    let (status, kind, _) = error_of(&r);
    assert_eq!((status, kind.as_str()), (400, "InvalidEvent"));
}

#[test]
fn cloudevents_45_transient_errors_are_5xx_and_permanent_ones_4xx() {
    let f = FnProcess::start("echo-event", &[]);
    let mut ev = event("x", json!(1));
    ev.set_extension("fail", ExtensionValue::from("transient"));
    let (status, kind, _) = error_of(&f.send(&binary_request(ev.clone())));
    assert_eq!((status, kind.as_str()), (500, "HandlerError"));
    ev.set_extension("fail", ExtensionValue::from("permanent"));
    let (status, kind, _) = error_of(&f.send(&binary_request(ev)));
    assert_eq!((status, kind.as_str()), (422, "Rejected"));
}

#[test]
fn cloudevents_unknown_formats_get_415() {
    let f = FnProcess::start("echo-event", &[]);
    let r = f.send(&Request::post("/", "x").header("content-type", "application/cloudevents+avro"));
    assert_eq!(error_of(&r).0, 415);
}
