//! fnkit handlers on `lambda_runtime`'s loop (feature `lambda-runtime`, issue 10):
//! `lambda_runtime::run(fnkit::lambda::service(handler))` gives the same answers and the same
//! error documents as fnkit's own loop for the same events.
//!
//! `lambda-probe` runs one handler on either loop (`PROBE_LOOP=lambda_runtime` or unset), typed
//! or HTTP (`PROBE_SHAPE=http`), so each comparison is one binary, one handler, two loops:
//! - behind cargo-lambda's emulator (a peer we did not write), event by event, modulo request ids
//!   and times;
//! - against our mock Runtime API, which shows the bytes of every `/response` and `/error` and
//!   their headers: the same bodies, byte for byte, where the answer does not depend on time.
//!
//! Where lambda_runtime's loop differs, and a service cannot reach (the error-type header, a
//! payload that is not JSON), the tests pin what it does, as `LambdaService`'s docs say.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::emulator::Emulator;
use super::mock::{Event, MockApi, Recorded};
use super::{fixture, lambda_env, start_function};

/// The two loops: fnkit's (`PROBE_LOOP` unset) and lambda_runtime's, through the service.
const LOOPS: [&str; 2] = ["fnkit", "lambda_runtime"];

/// The probe's environment for `shape` on `run_loop`.
fn probe_env(shape: &str, run_loop: &str) -> Vec<(&'static str, String)> {
    let mut env = vec![("PROBE_SHAPE", shape.to_owned())];
    if run_loop != "fnkit" {
        env.push(("PROBE_LOOP", run_loop.to_owned()));
    }
    env
}

/// Every event invoked in turn on `run_loop`, behind a fresh emulator; `None` without cargo-lambda.
fn emulated(shape: &str, run_loop: &str, events: &[Vec<u8>]) -> Option<Vec<Value>> {
    let emu = Emulator::start(&format!("interop_{shape}_{run_loop}"))?;
    let _f = emu.function_with("lambda-probe", &probe_env(shape, run_loop));
    Some(events.iter().map(|e| emu.invoke(e.clone())).collect())
}

/// An answer without what differs from one invocation to the next: request ids, deadlines,
/// remaining times, the emulator's X-Ray trace ids (also inside an HTTP response's JSON body).
/// The probe's `_X_AMZN_TRACE_ID` must be the invocation's trace header on either loop.
fn normalised(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        if obj.contains_key("trace_env") {
            assert_eq!(obj["trace_env"], obj["xray_trace_id"], "{obj:?}");
        }
        for key in [
            "request_id",
            "deadline_ms",
            "remaining_ms",
            "xray_trace_id",
            "trace_env",
        ] {
            if obj.contains_key(key) {
                obj.insert(key.to_owned(), json!("<varies>"));
            }
        }
        if let Some(Value::String(body)) = obj.get("body") {
            if let Ok(inner) = serde_json::from_str::<Value>(body) {
                let inner = normalised(inner);
                obj.insert("body".to_owned(), inner);
            }
        }
    }
    v
}

/// The same answers on both loops, event by event; returns fnkit's for further checks.
fn assert_same_on_both_loops(shape: &str, events: &[Vec<u8>]) -> Option<Vec<Value>> {
    let fnkit = emulated(shape, LOOPS[0], events)?;
    let other = emulated(shape, LOOPS[1], events)?;
    for ((event, a), b) in events.iter().zip(&fnkit).zip(&other) {
        assert_eq!(
            normalised(a.clone()),
            normalised(b.clone()),
            "event {}: fnkit's loop answered {a}, lambda_runtime's {b}",
            String::from_utf8_lossy(event)
        );
    }
    Some(fnkit)
}

fn error_type(v: &Value) -> &str {
    v["errorType"].as_str().unwrap_or_default()
}

#[test]
fn interop_typed_answers_and_error_documents_are_the_same_on_both_loops() {
    let events: Vec<Vec<u8>> = [
        r#"{}"#,
        r#"null"#,
        r#"{"action":"report","count":7}"#,
        r#"{"action":"report","count":"seven"}"#,
        r#"{"action":"report","extra":1}"#,
        r#"{"action":"nope"}"#,
        r#"{"action":"fail"}"#,
        r#"{"action":"panic"}"#,
        r#"{"action":"sleep","ms":20}"#,
        r#"{"action":"big","bytes":100}"#,
        r#"{}"#,
    ]
    .iter()
    .map(|e| e.as_bytes().to_vec())
    .collect();
    let Some(answers) = assert_same_on_both_loops("typed", &events) else {
        return;
    };
    // And they are the answers fnkit promises (so both loops are not wrong the same way).
    assert_eq!(answers[0]["function_name"], "_", "{}", answers[0]);
    assert_eq!(answers[0]["memory_mb"], 4096);
    assert_eq!(answers[2]["count"], 7);
    assert_eq!(error_type(&answers[3]), "InvalidInput", "{}", answers[3]);
    assert!(
        answers[3]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("input does not fit at `count`")),
        "{}",
        answers[3]
    );
    assert_eq!(error_type(&answers[4]), "InvalidInput", "{}", answers[4]);
    assert_eq!(error_type(&answers[5]), "InvalidInput", "{}", answers[5]);
    assert_eq!(
        answers[6],
        json!({"errorType": "HandlerError", "errorMessage": "the probe was asked to fail"})
    );
    assert_eq!(
        answers[7],
        json!({"errorType": "Panic", "errorMessage": "Lambda panicked: the probe was asked to panic"})
    );
    assert_eq!(answers[8]["slept_ms"], 20);
    assert_eq!(answers[9], json!("x".repeat(100)));
}

#[test]
fn interop_http_events_get_the_same_responses_on_both_loops() {
    let mut v2: Value = serde_json::from_slice(&fixture("apigw-v2-request.json")).unwrap();
    let mut events = vec![
        v2.to_string().into_bytes(),
        fixture("apigw-v1-request.json"),
        fixture("function-url-request.json"),
        fixture("alb-request-multivalue-headers.json"),
        fixture("alb-request-headers-only.json"),
    ];
    v2["rawPath"] = json!("/fail");
    events.push(v2.to_string().into_bytes());
    v2["rawPath"] = json!("/panic");
    events.push(v2.to_string().into_bytes());
    events.push(br#"{"name":"Ada"}"#.to_vec());
    let Some(answers) = assert_same_on_both_loops("http", &events) else {
        return;
    };
    let v2 = &answers[0];
    assert_eq!(v2["statusCode"], 200, "{v2}");
    assert_eq!(v2["cookies"], json!(["a=1", "b=2; Path=/"]), "{v2}");
    assert_eq!(v2["headers"]["x-probe"], "1", "{v2}");
    assert_eq!(
        answers[1]["multiValueHeaders"]["set-cookie"],
        json!(["a=1", "b=2; Path=/"])
    );
    assert_eq!(error_type(&answers[5]), "HandlerError", "{}", answers[5]);
    assert_eq!(error_type(&answers[6]), "Panic", "{}", answers[6]);
    assert_eq!(error_type(&answers[7]), "InvalidInput", "{}", answers[7]);
}

#[test]
fn interop_a_payload_that_is_not_json_is_lambda_runtimes_own_error() {
    // lambda_runtime parses the payload into a `serde_json::Value` before the service sees it:
    // malformed JSON is its error, not fnkit's `InvalidInput` (LambdaService's docs say so).
    let events = [b"{".to_vec(), b"{}".to_vec()];
    let (Some(fnkit), Some(other)) = (
        emulated("typed", LOOPS[0], &events),
        emulated("typed", LOOPS[1], &events),
    ) else {
        return;
    };
    assert_eq!(error_type(&fnkit[0]), "InvalidInput", "{}", fnkit[0]);
    assert!(
        error_type(&other[0]).contains("lambda_runtime::deserializer::DeserializeError"),
        "{}",
        other[0]
    );
    // Either way the runtime goes on.
    assert_eq!(normalised(fnkit[1].clone()), normalised(other[1].clone()));
}

/// Every event pushed to a fresh mock, on `run_loop`; the `/response` or `/error` of each.
fn mocked(
    shape: &str,
    run_loop: &str,
    env: &[(&'static str, String)],
    events: &[(&str, &[u8])],
) -> Vec<Recorded> {
    let mock = MockApi::start();
    let mut all = lambda_env(&mock.api());
    all.extend(probe_env(shape, run_loop));
    all.extend_from_slice(env);
    let _f = start_function("lambda-probe", &all);
    for (id, body) in events {
        mock.push(Event::new(id, body.to_vec()).header(
            "Lambda-Runtime-Trace-Id",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        ));
    }
    events.iter().map(|(id, _)| mock.wait_answer(id)).collect()
}

#[test]
fn interop_response_and_error_bodies_are_the_same_bytes() {
    let v2 = fixture("apigw-v2-request.json");
    let v1 = fixture("apigw-v1-request.json");
    let typed: [(&str, &[u8]); 6] = [
        ("t-1", br#"{"action":"sleep","ms":0}"#),
        ("t-2", br#"{"action":"big","bytes":3000}"#),
        ("t-3", br#"{"action":"fail"}"#),
        ("t-4", br#"{"action":"panic"}"#),
        ("t-5", br#"{"action":"report","count":"x"}"#),
        ("t-6", br#"{"action":"sleep","ms":0}"#),
    ];
    let http: [(&str, &[u8]); 3] = [("h-1", &v2), ("h-2", &v1), ("h-3", b"[]")];
    for (shape, events) in [("typed", &typed[..]), ("http", &http[..])] {
        let fnkit = mocked(shape, LOOPS[0], &[], events);
        let other = mocked(shape, LOOPS[1], &[], events);
        for (a, b) in fnkit.iter().zip(&other) {
            assert_eq!(a.path, b.path, "{shape}: {a:?} / {b:?}");
            assert_eq!(
                String::from_utf8_lossy(&a.body),
                String::from_utf8_lossy(&b.body),
                "{shape} {}",
                a.path
            );
            if a.path.ends_with("/error") {
                // The one difference on `/error`: lambda_runtime's loop always says `unhandled`
                // in the header; the document in the body is the same.
                let kind = a.json()["errorType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(
                    a.header("lambda-runtime-function-error-type"),
                    Some(kind.as_str())
                );
                assert_eq!(
                    b.header("lambda-runtime-function-error-type"),
                    Some("unhandled")
                );
            } else {
                assert!(a.path.ends_with("/response"), "{a:?}");
            }
        }
    }
}

#[test]
fn interop_the_context_is_the_same_on_both_loops() {
    let deadline = super::mock::now_ms() + 30_000;
    let report = |run_loop: &str| {
        let mock = MockApi::start();
        let mut env = lambda_env(&mock.api());
        env.extend(probe_env("typed", run_loop));
        let _f = start_function("lambda-probe", &env);
        mock.push(
            Event::new("c-1", "{}")
                .header("Lambda-Runtime-Deadline-Ms", &deadline.to_string())
                .header("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
                .header("Lambda-Runtime-Client-Context", r#"{"custom":{"tenant":"t1"}}"#)
                .header(
                    "Lambda-Runtime-Cognito-Identity",
                    r#"{"cognitoIdentityId":"us-east-1:abc","cognitoIdentityPoolId":"us-east-1:pool"}"#,
                ),
        );
        mock.wait_answer("c-1").json()
    };
    let (a, b) = (report(LOOPS[0]), report(LOOPS[1]));
    for key in [
        "request_id",
        "deadline_ms",
        "function_name",
        "function_version",
        "memory_mb",
        "xray_trace_id",
        "trace_env",
        "invoked_function_arn",
    ] {
        assert_eq!(a[key], b[key], "{key}: {a} / {b}");
    }
    assert_eq!(b["deadline_ms"], deadline);
    assert_eq!(
        b["trace_env"],
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    );
    // The client context and identity come through lambda_runtime's typed reading: the same
    // values, in its field names.
    assert_eq!(a["client_context"]["custom"]["tenant"], "t1");
    assert_eq!(b["client_context"]["custom"]["tenant"], "t1");
    assert_eq!(a["identity"]["cognitoIdentityId"], "us-east-1:abc");
    assert_eq!(b["identity"]["identityId"], "us-east-1:abc");
    assert_eq!(b["identity"]["identityPoolId"], "us-east-1:pool");
}

#[test]
fn interop_run_concurrent_serves_invocations_at_once_as_fnkits_loop_does() {
    let events: [(&str, &[u8]); 2] = [
        ("s-1", br#"{"action":"sleep","ms":800}"#),
        ("s-2", br#"{"action":"sleep","ms":800}"#),
    ];
    let concurrency = [("AWS_LAMBDA_MAX_CONCURRENCY", "2".to_owned())];
    for run_loop in ["fnkit", "lambda_runtime_concurrent"] {
        let started = Instant::now();
        let answers = mocked("typed", run_loop, &concurrency, &events);
        let took = started.elapsed();
        for (answer, (id, _)) in answers.iter().zip(events) {
            assert!(answer.path.ends_with("/response"), "{run_loop}: {answer:?}");
            assert_eq!(answer.json()["request_id"], id);
        }
        // Two 800 ms sleeps one after the other would take 1.6 s.
        assert!(took < Duration::from_millis(1500), "{run_loop}: {took:?}");
    }
}
