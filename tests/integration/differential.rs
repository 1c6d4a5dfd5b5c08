//! One input, one verdict: the same CloudEvent sent to the HTTP runtime (structured mode, as
//! Knative and OpenFaaS deliver it) and to the Lambda runtime (as the invocation payload) is
//! accepted or refused alike, with the same error kind and message, and carries the same trace
//! context to the handler. Both adapters decode with `fnkit_core::adapter::ce` and read traces
//! with `fnkit_core::adapter::trace_context` (docs/platforms.md §5); these tests hold them to it
//! through the real binaries.

use serde_json::Value;

use crate::lambda::mock::{Event, MockApi, Recorded};
use crate::lambda::{lambda_env, start_function};
use fnkit_tests::{FnProcess, Request};

const STRUCTURED: &str = "application/cloudevents+json";

/// Invalid events, each with what makes it invalid.
const INVALID: [(&str, &str); 10] = [
    (
        "an extension name with upper case and `_`",
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad_Name":"x"}"#,
    ),
    (
        "an extension integer of 2^40",
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","big":1099511627776}"#,
    ),
    (
        "specversion 0.3",
        r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
    ),
    (
        "both data and data_base64",
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}"#,
    ),
    ("no source", r#"{"specversion":"1.0","id":"1","type":"t"}"#),
    (
        "an empty id",
        r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#,
    ),
    (
        "a time that is not RFC 3339",
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}"#,
    ),
    (
        "an object as an extension value",
        r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","ext":{"a":1}}"#,
    ),
    ("an array, not an object", r#"[{"specversion":"1.0"}]"#),
    ("malformed JSON", r#"{"specversion":"1.0","#),
];

/// The two runtimes of `echo-event`, side by side.
struct Both {
    http: FnProcess,
    mock: MockApi,
    _lambda: FnProcess,
    invocations: usize,
}

impl Both {
    fn start() -> Self {
        let http = FnProcess::start("echo-event", &[]);
        let mock = MockApi::start();
        let lambda = start_function("echo-event", &lambda_env(&mock.api()));
        Self {
            http,
            mock,
            _lambda: lambda,
            invocations: 0,
        }
    }

    /// The HTTP runtime's answer to `body` in structured mode: status and JSON body.
    fn over_http(&self, body: &str) -> (u16, Value) {
        let r = self
            .http
            .send(&Request::post("/", body).header("content-type", STRUCTURED));
        (r.status, r.json())
    }

    /// The Lambda runtime's answer to `body` as a payload: `/response` or `/error`, and the body.
    fn on_lambda(&mut self, body: &str) -> (bool, Recorded) {
        self.invocations += 1;
        let id = format!("differential-{}", self.invocations);
        self.mock.push(Event::new(&id, body));
        let answer = self.mock.wait_answer(&id);
        (answer.path.ends_with("/response"), answer)
    }
}

#[test]
fn invalid_cloudevents_get_the_same_kind_and_message_over_http_and_on_lambda() {
    let mut both = Both::start();
    for (what, body) in INVALID {
        let (status, http) = both.over_http(body);
        assert_eq!(status, 400, "{what}: {http}");
        let (ok, lambda) = both.on_lambda(body);
        assert!(!ok, "{what}: Lambda accepted what HTTP refused");
        let lambda = lambda.json();
        assert_eq!(http["error"], "InvalidEvent", "{what}: {http}");
        assert_eq!(lambda["errorType"], http["error"], "{what}");
        assert_eq!(lambda["errorMessage"], http["message"], "{what}");
    }
}

#[test]
fn a_valid_event_is_answered_alike_with_the_trace_from_its_extension() {
    let mut both = Both::start();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = format!(
        r#"{{"specversion":"1.0","id":"7","source":"/orders","type":"order.created","subject":"o-7","traceparent":"{traceparent}","small":-2147483648,"datacontenttype":"application/json","data":{{"n":1}}}}"#
    );
    let (status, http) = both.over_http(&body);
    assert_eq!(status, 200, "{http}");
    let (ok, lambda) = both.on_lambda(&body);
    assert!(ok, "{:?}", String::from_utf8_lossy(&lambda.body));
    let lambda = lambda.json();
    for reply in [&http, &lambda] {
        assert_eq!(reply["type"], "order.created.reply", "{reply}");
        assert_eq!(reply["subject"], "o-7", "{reply}");
        assert_eq!(reply["data"], serde_json::json!({"n": 1}), "{reply}");
        // The reply is a child of the invocation's span: the same trace and flags, the
        // invocation's own span id as the parent (`Context::reply_to`, docs/tracing.md).
        let tp = reply["traceparent"].as_str().unwrap_or_default();
        assert_eq!(tp.len(), 55, "{reply}");
        assert_eq!(tp[..36], traceparent[..36], "{reply}");
        assert_ne!(tp[36..52], traceparent[36..52], "{reply}");
        assert_eq!(tp[52..], traceparent[52..], "{reply}");
    }

    // A malformed traceparent is dropped on both, as W3C Trace Context asks.
    let body = body.replace(traceparent, "00-not-a-trace-01");
    let (_, http) = both.over_http(&body);
    let (_, lambda) = both.on_lambda(&body);
    assert_eq!(http.get("traceparent"), None, "{http}");
    assert_eq!(lambda.json().get("traceparent"), None);
}

#[test]
fn no_reply_is_202_over_http_and_null_on_lambda() {
    let mut both = Both::start();
    let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","reply":"none"}"#;
    let r = both
        .http
        .send(&Request::post("/", body).header("content-type", STRUCTURED));
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty(), "{}", r.text());
    let binary = Request::post("/", "")
        .header("ce-specversion", "1.0")
        .header("ce-id", "2")
        .header("ce-source", "/s")
        .header("ce-type", "t")
        .header("ce-reply", "none");
    let r = both.http.send(&binary);
    assert_eq!((r.status, r.body.len()), (202, 0), "{}", r.text());
    let (ok, lambda) = both.on_lambda(body);
    assert!(ok);
    assert_eq!(lambda.body, b"null");
}

#[test]
fn an_invalid_reply_event_is_an_internal_error_on_both() {
    let mut both = Both::start();
    let body = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","reply":"invalid"}"#;
    let (status, http) = both.over_http(body);
    assert_eq!(status, 500, "{http}");
    assert_eq!(http["error"], "InternalError");
    assert!(
        http["message"]
            .as_str()
            .is_some_and(|m| m.contains("`Not_Valid`")),
        "{http}"
    );
    let (ok, lambda) = both.on_lambda(body);
    assert!(!ok);
    let lambda = lambda.json();
    assert_eq!(lambda["errorType"], http["error"]);
    assert_eq!(lambda["errorMessage"], http["message"]);
}
