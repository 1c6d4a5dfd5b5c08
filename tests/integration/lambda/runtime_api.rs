//! Against our own mock Runtime API: what the runtime sends, exactly (docs/platforms.md §1;
//! docs/conformance.md #1–#22).

use std::time::Duration;

use serde_json::{json, Value};

use super::mock::{now_ms, Event, MockApi};
use super::{fixture, lambda_env, start_function};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

fn probe(mock: &MockApi) -> fnkit_tests::FnProcess {
    start_function("lambda-probe", &lambda_env(&mock.api()))
}

/// The error document of an `/error` POST: exactly `errorType` and `errorMessage`, both strings.
fn error_doc(r: &super::mock::Recorded) -> (String, String) {
    let v = r.json();
    let obj = v.as_object().expect("error document is an object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["errorMessage", "errorType"], "{v}");
    (
        v["errorType"]
            .as_str()
            .expect("errorType is a string")
            .to_owned(),
        v["errorMessage"]
            .as_str()
            .expect("errorMessage is a string")
            .to_owned(),
    )
}

#[test]
fn lambda_01_first_request_is_get_next_under_the_versioned_base() {
    let mock = MockApi::start();
    let _fn = start_function("hello", &lambda_env(&mock.api()));
    let first = mock.wait_for(Duration::from_secs(10), "the first request", |_| true);
    assert_eq!((first.method.as_str(), first.path.as_str()), ("GET", NEXT));
    assert_eq!(first.header("host"), Some(mock.api().as_str()));
    assert!(
        first
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("fnkit/")),
        "{first:?}"
    );
}

#[test]
fn lambda_01_a_path_prefix_in_the_runtime_api_variable_is_kept() {
    let mock = MockApi::start();
    let mut env = lambda_env(&format!("http://{}/.rt", mock.api()));
    env.push(("RUST_LOG", "off".into()));
    let _fn = start_function("hello", &env);
    let first = mock.wait_for(Duration::from_secs(10), "the first request", |_| true);
    assert_eq!(first.path, "/.rt/2018-06-01/runtime/invocation/next");
}

#[test]
fn lambda_02_next_has_no_client_timeout() {
    // A `/next` answered after 61 s is still consumed and answered.
    let mock = MockApi::start();
    let _fn = start_function("hello", &lambda_env(&mock.api()));
    mock.push(Event::new("slow-1", r#"{"name":"Ada"}"#).delayed(Duration::from_secs(61)));
    let answer = mock.wait_for(Duration::from_secs(90), "the answer to slow-1", |r| {
        r.method == "POST" && r.path.contains("/slow-1/")
    });
    assert!(answer.path.ends_with("/slow-1/response"), "{answer:?}");
    // The one /next was held 61 s and answered; then the runtime asks again.
    mock.wait_for(
        Duration::from_secs(10),
        "the /next after the slow answer",
        |r| r.path == NEXT && r.seq > answer.seq,
    );
}

#[test]
fn lambda_03_success_posts_response_once_then_polls_next() {
    let mock = MockApi::start();
    let _fn = start_function("hello", &lambda_env(&mock.api()));
    mock.push(Event::new("req-1", r#"{"name":"Ada"}"#));
    let resp = mock.wait_answer("req-1");
    assert_eq!(resp.path, "/2018-06-01/runtime/invocation/req-1/response");
    assert_eq!(resp.json(), json!({"message": "Hello, Ada!"}));
    // The runtime asks for the next event, and answered req-1 exactly once.
    mock.wait_for(
        Duration::from_secs(10),
        "the /next after the response",
        |r| r.path == NEXT && r.seq > resp.seq,
    );
    let answers = mock
        .requests()
        .iter()
        .filter(|r| r.path.contains("/req-1/"))
        .count();
    assert_eq!(answers, 1);
}

#[test]
fn lambda_04_handler_error_posts_an_error_document_with_the_kind() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    mock.push(Event::new("e-1", r#"{"action":"fail"}"#));
    let err = mock.wait_answer("e-1");
    assert_eq!(err.path, "/2018-06-01/runtime/invocation/e-1/error");
    assert_eq!(
        err.header("lambda-runtime-function-error-type"),
        Some("HandlerError")
    );
    let (ty, msg) = error_doc(&err);
    assert_eq!(ty, "HandlerError");
    assert_eq!(msg, "the probe was asked to fail");
}

#[test]
fn lambda_05_a_panic_is_reported_and_the_runtime_goes_on() {
    let mock = MockApi::start();
    let f = probe(&mock);
    mock.push(Event::new("p-1", r#"{"action":"panic"}"#));
    mock.push(Event::new("p-2", r#"{}"#));
    let err = mock.wait_answer("p-1");
    assert!(err.path.ends_with("/p-1/error"), "{err:?}");
    let (ty, msg) = error_doc(&err);
    assert_eq!(ty, "Panic");
    assert_eq!(msg, "Lambda panicked: the probe was asked to panic");
    let ok = mock.wait_answer("p-2");
    assert!(ok.path.ends_with("/p-2/response"), "{ok:?}");
    assert_eq!(ok.json()["request_id"], "p-2");
    // The panic is a log line of the invocation, not a bare stderr dump.
    assert!(
        f.wait_for_log("the probe was asked to panic", Duration::from_secs(5))
            .is_some(),
        "stdout: {:?} stderr: {:?}",
        f.logs(),
        f.stderr()
    );
}

#[test]
fn lambda_06_an_event_that_does_not_fit_is_invalid_input_and_the_handler_is_not_called() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    // Had the handler run, it would have panicked.
    mock.push(Event::new("d-1", r#"{"action":"panic","count":"many"}"#));
    mock.push(Event::new("d-2", r#"{"action":"#));
    mock.push(Event::new("d-3", r#"{"count":3}"#));
    let (ty, msg) = error_doc(&mock.wait_answer("d-1"));
    assert_eq!(ty, "InvalidInput");
    assert!(msg.contains("`count`"), "{msg}");
    let (ty, msg) = error_doc(&mock.wait_answer("d-2"));
    assert_eq!(ty, "InvalidInput");
    assert!(msg.starts_with("malformed JSON"), "{msg}");
    assert_eq!(mock.wait_answer("d-3").json()["count"], 3);
}

#[test]
fn lambda_07_bad_config_posts_init_error_and_exits_non_zero() {
    let mock = MockApi::start();
    let mut env = lambda_env(&mock.api());
    env.retain(|(k, _)| *k != "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    env.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots".into()));
    let mut f = start_function("hello", &env);
    let status = f
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits");
    assert!(!status.success(), "{status:?}");
    let init = mock.wait_for(Duration::from_secs(5), "/init/error", |r| {
        r.path.ends_with("/init/error")
    });
    assert_eq!(init.path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        init.header("lambda-runtime-function-error-type"),
        Some("Runtime.InvalidConfig")
    );
    let (ty, msg) = error_doc(&init);
    assert_eq!(ty, "Runtime.InvalidConfig");
    assert!(
        msg.contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") && msg.contains("lots"),
        "{msg}"
    );
    assert_eq!(mock.next_count(), 0, "/next is never called");
}

#[test]
fn lambda_08_missing_function_variables_are_an_init_error_not_a_panic() {
    let mock = MockApi::start();
    let env: Vec<(&str, String)> = vec![("AWS_LAMBDA_RUNTIME_API", mock.api())];
    let mut f = start_function("hello", &env);
    let status = f
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits");
    assert!(!status.success(), "{status:?}");
    let init = mock.wait_for(Duration::from_secs(5), "/init/error", |r| {
        r.path.ends_with("/init/error")
    });
    let (ty, msg) = error_doc(&init);
    assert_eq!(ty, "Runtime.InvalidConfig");
    for var in [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ] {
        assert!(msg.contains(var), "{msg}");
    }
    assert_eq!(mock.next_count(), 0);
    let stderr = f.stderr().join("\n");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn lambda_09_trace_env_follows_each_invocation() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    mock.push(Event::new("t-1", "{}").header("Lambda-Runtime-Trace-Id", trace));
    mock.push(Event::new("t-2", "{}"));
    let first = mock.wait_answer("t-1").json();
    assert_eq!(first["trace_env"], trace);
    assert_eq!(first["xray_trace_id"], trace);
    let second = mock.wait_answer("t-2").json();
    assert_eq!(
        second["trace_env"],
        Value::Null,
        "cleared when the header is absent"
    );
    assert_eq!(second["xray_trace_id"], Value::Null);
}

#[test]
fn lambda_10_context_carries_the_deadline_and_the_lambda_headers() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    let deadline = now_ms() + 5_000;
    mock.push(
        Event::new("c-1", "{}")
            .header("Lambda-Runtime-Deadline-Ms", &deadline.to_string())
            .header(
                "Lambda-Runtime-Client-Context",
                r#"{"custom":{"tenant":"t1"}}"#,
            )
            .header(
                "Lambda-Runtime-Cognito-Identity",
                r#"{"identity_id":"us-east-1:abc"}"#,
            ),
    );
    let v = mock.wait_answer("c-1").json();
    assert_eq!(v["deadline_ms"], deadline);
    let (a, b) = (
        v["remaining_ms"][0].as_u64().unwrap(),
        v["remaining_ms"][1].as_u64().unwrap(),
    );
    assert!(b <= a && a <= 5_000, "{a} {b}");
    assert_eq!(
        v["invoked_function_arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:probe:live"
    );
    assert_eq!(v["client_context"]["custom"]["tenant"], "t1");
    assert_eq!(v["identity"]["identity_id"], "us-east-1:abc");
    assert_eq!(v["function_name"], "probe");
    assert_eq!(v["function_version"], "$LATEST");
    assert_eq!(v["memory_mb"], 128);
}

#[test]
fn lambda_10_a_handler_past_the_deadline_is_reported_as_timeout_in_time() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    // A first invocation, so the process is up before the deadline clock starts.
    mock.push(Event::new("w-0", "{}"));
    mock.wait_answer("w-0");
    let deadline = now_ms() + 400;
    mock.push(
        Event::new("w-1", r#"{"action":"sleep","ms":5000}"#)
            .header("Lambda-Runtime-Deadline-Ms", &deadline.to_string()),
    );
    mock.push(Event::new("w-2", "{}"));
    let err = mock.wait_answer("w-1");
    let (ty, _) = error_doc(&err);
    assert_eq!(ty, "Timeout");
    assert!(
        err.at_ms <= deadline,
        "reported at {} after the deadline {deadline}",
        err.at_ms
    );
    assert!(mock.wait_answer("w-2").path.ends_with("/response"));
}

#[test]
fn lambda_10_a_malformed_client_context_is_an_invocation_error() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    mock.push(Event::new("m-1", "{}").header("Lambda-Runtime-Client-Context", "{nope"));
    mock.push(Event::new("m-2", "{}"));
    let (ty, msg) = error_doc(&mock.wait_answer("m-1"));
    assert_eq!(ty, "InvalidInput");
    assert!(msg.contains("Client-Context"), "{msg}");
    assert!(mock.wait_answer("m-2").path.ends_with("/response"));
}

fn log_lines(f: &fnkit_tests::FnProcess, request_id: &str, expect: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines: Vec<String> = f
            .logs()
            .into_iter()
            .filter(|l| l.contains(request_id))
            .collect();
        if lines.len() >= expect || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_rfc3339(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (ts.ends_with('Z') || ts[19..].contains('+') || ts[19..].contains('-'))
        && ts[..4].bytes().all(|c| c.is_ascii_digit())
}

#[test]
fn lambda_11_json_log_lines_have_lambdas_shape() {
    let mock = MockApi::start();
    let mut env = lambda_env(&mock.api());
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "INFO".into()));
    let f = start_function("lambda-probe", &env);
    mock.push(Event::new("l-1", r#"{"action":"log"}"#));
    mock.wait_answer("l-1");
    let lines = log_lines(&f, "l-1", 3);
    assert!(lines.len() >= 3, "{:?}", f.logs());
    for line in f.logs() {
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(v["message"].is_string(), "{line}");
        assert!(v["timestamp"].as_str().is_some_and(is_rfc3339), "{line}");
    }
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["requestId"], "l-1", "{line}");
    }
    let info = lines
        .iter()
        .find(|l| l.contains("probe info line"))
        .expect("the INFO line");
    assert_eq!(
        serde_json::from_str::<Value>(info).unwrap()["level"],
        "INFO"
    );
}

#[test]
fn lambda_12_json_logs_at_warn_drop_info_and_debug() {
    let mock = MockApi::start();
    let mut env = lambda_env(&mock.api());
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".into()));
    env.push(("AWS_LAMBDA_LOG_LEVEL", "WARN".into()));
    let f = start_function("lambda-probe", &env);
    mock.push(Event::new("l-2", r#"{"action":"log"}"#));
    mock.wait_answer("l-2");
    let lines = log_lines(&f, "l-2", 2);
    let levels: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["level"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        levels.contains(&"WARN".to_owned()) && levels.contains(&"ERROR".to_owned()),
        "{lines:?}"
    );
    for line in f.logs() {
        let level = serde_json::from_str::<Value>(&line).unwrap()["level"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(level == "WARN" || level == "ERROR", "{line}");
    }
}

#[test]
fn lambda_text_log_lines_carry_the_request_id() {
    let mock = MockApi::start();
    let f = probe(&mock);
    mock.push(Event::new("l-3", r#"{"action":"log"}"#));
    mock.wait_answer("l-3");
    let lines = log_lines(&f, "l-3", 3);
    let info = lines
        .iter()
        .find(|l| l.contains("probe info line"))
        .unwrap_or_else(|| panic!("{:?}", f.logs()));
    assert!(info.contains(" INFO l-3 probe info line"), "{info}");
}

#[test]
fn lambda_13_an_oversized_response_is_reported_not_truncated() {
    let mock = MockApi::start();
    let _fn = probe(&mock);
    mock.push(Event::new("b-1", r#"{"action":"big","bytes":6291457}"#));
    mock.push(Event::new("b-2", "{}"));
    let err = mock.wait_answer("b-1");
    assert!(err.path.ends_with("/b-1/error"), "{}", err.path);
    let (ty, msg) = error_doc(&err);
    assert_eq!(ty, "PayloadTooLarge");
    assert!(msg.contains("6291456"), "{msg}");
    assert!(mock.wait_answer("b-2").path.ends_with("/response"));
}

#[test]
fn lambda_13_a_413_from_the_runtime_api_is_reported_as_an_error() {
    let mock = MockApi::start();
    mock.answer("/r-1/response", 413);
    let _fn = probe(&mock);
    mock.push(Event::new("r-1", "{}"));
    mock.push(Event::new("r-2", "{}"));
    let err = mock.wait_for(Duration::from_secs(10), "the /error after a 413", |r| {
        r.path.ends_with("/r-1/error")
    });
    assert_eq!(error_doc(&err).0, "PayloadTooLarge");
    assert!(mock.wait_answer("r-2").path.ends_with("/response"));
}

/// Invokes `http-echo` with a sample event and returns (response payload, what the handler saw).
fn http_echo(mock: &MockApi, id: &str, event: Vec<u8>) -> (Value, Value) {
    mock.push(Event::new(id, event));
    let resp = mock.wait_answer(id);
    assert!(
        resp.path.ends_with("/response"),
        "{}: {}",
        resp.path,
        String::from_utf8_lossy(&resp.body)
    );
    let payload = resp.json();
    let seen: Value = serde_json::from_str(payload["body"].as_str().expect("body is a string"))
        .expect("echo JSON");
    (payload, seen)
}

#[test]
fn lambda_14_to_20_http_events_from_every_source_reach_the_same_handler() {
    let mock = MockApi::start();
    let _fn = start_function("http-echo", &lambda_env(&mock.api()));

    // docs/conformance.md #14, #20: REST v1 (with null maps): integer statusCode, string body, multiValueHeaders.
    let (payload, seen) = http_echo(&mock, "h-1", fixture("apigw-v1-request.json"));
    assert!(
        payload["statusCode"].is_i64() && payload["statusCode"] == 200,
        "{payload}"
    );
    assert_eq!(payload["isBase64Encoded"], false);
    assert_eq!(
        payload["multiValueHeaders"]["content-type"],
        json!(["application/json"])
    );
    assert_eq!(
        (seen["method"].as_str(), seen["path"].as_str()),
        (Some("POST"), Some("/hello/world"))
    );
    assert_eq!(seen["query"], "name=me");
    let (payload, seen) = http_echo(&mock, "h-2", fixture("apigw-v1-null-maps.json"));
    assert_eq!(payload["statusCode"], 200);
    assert_eq!(seen["path"], "/items");

    // docs/conformance.md #15, #16: HTTP API v2 and Function URL: URL from rawPath + rawQueryString, cookies.
    let raw: Value = serde_json::from_slice(&fixture("apigw-v2-request-multi-value.json")).unwrap();
    let (payload, seen) = http_echo(&mock, "h-3", fixture("apigw-v2-request-multi-value.json"));
    assert_eq!(seen["query"], raw["rawQueryString"]);
    assert!(payload["cookies"].is_array(), "{payload}");
    assert!(payload
        .get("multiValueHeaders")
        .is_none_or(|m| m.as_object().is_some_and(|m| m.is_empty())));
    let (payload, seen) = http_echo(&mock, "h-4", fixture("function-url-request.json"));
    assert_eq!(seen["headers"]["cookie"], "cookie1=value1; cookie2=value2");
    assert_eq!(
        seen["query"],
        "parameter1=value1&parameter1=value2&parameter2=value"
    );
    assert_eq!(seen["body"], "Hello from client!");
    assert_eq!(payload["headers"]["content-type"], "application/json");

    // docs/conformance.md #17: a base64 body is decoded before the handler sees it.
    let mut v2: Value = serde_json::from_slice(&fixture("function-url-request.json")).unwrap();
    v2["body"] = json!("aGVsbG8gYmFzZTY0");
    v2["isBase64Encoded"] = json!(true);
    let (_, seen) = http_echo(&mock, "h-5", v2.to_string().into_bytes());
    assert_eq!(seen["body"], "hello base64");

    // docs/conformance.md #19: ALB, single- and multi-value mode.
    let (payload, seen) = http_echo(&mock, "h-6", fixture("alb-request-multivalue-headers.json"));
    assert_eq!(
        payload["multiValueHeaders"]["content-type"],
        json!(["application/json"])
    );
    assert_eq!(payload["statusDescription"], "200 OK");
    assert_eq!(seen["headers"]["x-myheader"], "123");
    let (payload, seen) = http_echo(&mock, "h-7", fixture("alb-request-headers-only.json"));
    assert_eq!(payload["headers"]["content-type"], "application/json");
    assert_eq!(seen["method"], "GET");
}

#[test]
fn lambda_http_handler_panic_is_reported_and_the_runtime_goes_on() {
    let mock = MockApi::start();
    let _fn = start_function("http-echo", &lambda_env(&mock.api()));
    let mut event: Value = serde_json::from_slice(&fixture("apigw-v2-request.json")).unwrap();
    event["rawPath"] = json!("/panic");
    mock.push(Event::new("hp-1", event.to_string()));
    let (ty, msg) = error_doc(&mock.wait_answer("hp-1"));
    assert_eq!(ty, "Panic");
    assert!(msg.starts_with("Lambda panicked"), "{msg}");
    let (payload, _) = http_echo(&mock, "hp-2", fixture("apigw-v2-request.json"));
    assert_eq!(payload["statusCode"], 200);
}

#[test]
fn lambda_21_eventbridge_reaches_a_cloudevent_handler() {
    let mock = MockApi::start();
    let _fn = start_function("echo-event", &lambda_env(&mock.api()));
    mock.push(Event::new("eb-1", fixture("eventbridge-event.json")));
    let resp = mock.wait_answer("eb-1");
    assert!(
        resp.path.ends_with("/response"),
        "{}: {}",
        resp.path,
        String::from_utf8_lossy(&resp.body)
    );
    let reply = resp.json();
    assert_eq!(
        reply["type"],
        "EC2 Instance State-change Notification.reply"
    );
    assert_eq!(reply["specversion"], "1.0");
    assert_eq!(reply["data"]["state"], "pending");
    assert_eq!(
        reply["subject"],
        "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"
    );
    // A structured CloudEvent payload is that event.
    mock.push(Event::new(
        "ce-1",
        r#"{"specversion":"1.0","id":"1","source":"/orders","type":"com.example.order","data":{"id":7}}"#,
    ));
    let reply = mock.wait_answer("ce-1").json();
    assert_eq!(reply["type"], "com.example.order.reply");
    assert_eq!(reply["data"]["id"], 7);
    // Something else is an InvalidEvent error.
    mock.push(Event::new("ce-2", r#"{"hello":"world"}"#));
    assert_eq!(error_doc(&mock.wait_answer("ce-2")).0, "InvalidEvent");
}

#[test]
fn lambda_22_sqs_batch_names_only_the_failed_records() {
    let mock = MockApi::start();
    let _fn = start_function("sqs-batch", &lambda_env(&mock.api()));
    let mut event: Value = serde_json::from_slice(&fixture("sqs-event.json")).unwrap();
    let template = event["Records"][0].clone();
    let record = |id: &str, body: &str| {
        let mut r = template.clone();
        r["messageId"] = json!(id);
        r["body"] = json!(body);
        r
    };
    event["Records"] = json!([
        record("m-ok", r#"{"id":1,"quantity":2}"#),
        record("m-bad", "not json"),
        record("m-zero", r#"{"id":3,"quantity":0}"#),
    ]);
    mock.push(Event::new("s-1", event.to_string()));
    assert_eq!(
        mock.wait_answer("s-1").json(),
        json!({"batchItemFailures":[{"itemIdentifier":"m-bad"},{"itemIdentifier":"m-zero"}]})
    );
    event["Records"] = json!([record("m-ok", r#"{"id":1,"quantity":2}"#)]);
    mock.push(Event::new("s-2", event.to_string()));
    assert_eq!(
        mock.wait_answer("s-2").json(),
        json!({"batchItemFailures":[]})
    );
}
