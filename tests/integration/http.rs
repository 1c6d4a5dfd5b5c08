//! The HTTP runtime's behaviour, shared by local mode, Knative and OpenFaaS: typed input, errors,
//! limits, panics, timeouts, health, keep-alive, logs.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use fnkit_tests::{read_response, FnProcess, Request};

#[test]
fn hello_greets_by_name() {
    let f = FnProcess::start("hello", &[]);
    let r = f.post_json("/", r#"{"name":"Ada"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), serde_json::json!({"message": "Hello, Ada!"}));
}

#[test]
fn hello_greets_the_world_without_a_name() {
    let f = FnProcess::start("hello", &[]);
    for body in ["{}", r#"{"name":""}"#, r#"{"name":null}"#, ""] {
        let r = f.post_json("/", body);
        assert_eq!(r.status, 200, "{body:?}: {}", r.text());
        assert_eq!(r.json()["message"], "Hello, world!", "{body:?}");
    }
}

#[test]
fn a_missing_content_type_is_taken_as_json() {
    let f = FnProcess::start("hello", &[]);
    let r = f.send(&Request::post("/", r#"{"name":"Bo"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, Bo!");
}

#[test]
fn json_content_types_match_case_insensitively_with_parameters() {
    let f = FnProcess::start("hello", &[]);
    for ct in [
        "Application/JSON; charset=utf-8",
        "application/vnd.api+json",
        "text/json",
    ] {
        let r = f.send(&Request::post("/", r#"{"name":"Cy"}"#).header("content-type", ct));
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
}

#[test]
fn malformed_json_gets_400_saying_so() {
    let f = FnProcess::start("hello", &[]);
    let r = f.post_json("/", r#"{"name":"#);
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"], "InvalidInput");
    assert!(
        body["message"].as_str().unwrap().contains("malformed JSON"),
        "{body}"
    );
}

#[test]
fn input_that_does_not_fit_gets_400_naming_the_field() {
    let f = FnProcess::start("hello", &[]);
    let r = f.post_json("/", r#"{"name":5}"#);
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error"], "InvalidInput");
    assert!(
        body["message"].as_str().unwrap().contains("`name`"),
        "{body}"
    );
}

#[test]
fn unsupported_content_type_gets_415() {
    let f = FnProcess::start("hello", &[]);
    let r = f.send(&Request::post("/", "name=Ada").header("content-type", "text/plain"));
    assert_eq!(r.status, 415);
    let body = r.json();
    assert_eq!(body["error"], "UnsupportedMediaType");
    assert!(
        body["message"].as_str().unwrap().contains("text/plain"),
        "{body}"
    );
}

#[test]
fn a_typed_function_answers_get_with_405_and_allow_post() {
    let f = FnProcess::start("hello", &[]);
    let r = f.send(&Request::get("/"));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["error"], "MethodNotAllowed");
}

#[test]
fn oversized_body_gets_413() {
    let f = FnProcess::start("hello", &[("FNKIT_MAX_BODY_BYTES", "1024")]);
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(2000));
    let r = f.post_json("/", &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"], "PayloadTooLarge");
    // Exactly at the limit is fine.
    let fits = format!(r#"{{"name":"{}"}}"#, "a".repeat(1024 - 11));
    assert_eq!(fits.len(), 1024);
    assert_eq!(f.post_json("/", &fits).status, 200);
}

#[test]
fn oversized_chunked_body_gets_413_while_reading() {
    let f = FnProcess::start("hello", &[("FNKIT_MAX_BODY_BYTES", "1024")]);
    // No Content-Length: the limit is enforced as the chunks arrive.
    let mut body = Vec::new();
    for _ in 0..4 {
        body.extend_from_slice(format!("{:x}\r\n{}\r\n", 512, "a".repeat(512)).as_bytes());
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let r = f.send(
        &Request::post("/", body)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked"),
    );
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn chunked_bodies_within_the_limit_are_accepted() {
    let f = FnProcess::start("hello", &[]);
    let json = r#"{"name":"Chunk"}"#;
    let body = format!("{:x}\r\n{json}\r\n0\r\n\r\n", json.len());
    let r = f.send(
        &Request::post("/", body)
            .header("content-type", "application/json")
            .header("transfer-encoding", "chunked"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["message"], "Hello, Chunk!");
}

#[test]
fn a_slow_body_gets_408_and_the_server_goes_on() {
    let f = FnProcess::start("hello", &[("FNKIT_READ_TIMEOUT_SECS", "0.3")]);
    let mut s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{\"na")
        .unwrap();
    let r = read_response(&mut BufReader::new(s), false).unwrap();
    assert_eq!(r.status, 408);
    assert_eq!(r.json()["error"], "RequestTimeout");
    assert_eq!(f.post_json("/", "{}").status, 200);
}

#[test]
fn slow_headers_are_cut_off() {
    let f = FnProcess::start("hello", &[("FNKIT_READ_TIMEOUT_SECS", "0.3")]);
    let mut s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nhost: x\r\n").unwrap();
    // The server closes (hyper answers 408 or just closes): either way the read ends.
    let mut buf = Vec::new();
    let n = std::io::Read::read_to_end(&mut s, &mut buf);
    assert!(n.is_ok(), "the connection was not closed: {n:?}");
    assert_eq!(f.post_json("/", "{}").status, 200);
}

#[test]
fn a_panicking_handler_gets_500_and_the_next_request_is_served() {
    let f = FnProcess::start("http-echo", &[]);
    let r = f.send(&Request::get("/panic"));
    assert_eq!(r.status, 500);
    let body = r.json();
    assert_eq!(body["error"], "Panic");
    assert!(
        body["message"].as_str().unwrap().contains("asked to panic"),
        "{body}"
    );
    let ok = f.send(&Request::get("/after"));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["path"], "/after");
    // The panic is logged as JSON, not as the default stderr text.
    let line = f
        .wait_for_log("panicked", Duration::from_secs(2))
        .expect("no panic log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "ERROR");
}

#[test]
fn a_handler_past_its_timeout_gets_504_and_the_server_goes_on() {
    let f = FnProcess::start("http-echo", &[("FNKIT_TIMEOUT_SECS", "0.3")]);
    let r = f.send(&Request::get("/sleep?ms=5000"));
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"], "Timeout");
    assert_eq!(f.send(&Request::get("/sleep?ms=1")).status, 200);
}

#[test]
fn http_handler_sees_method_path_query_headers_and_body() {
    let f = FnProcess::start("http-echo", &[]);
    let r = f.send(
        &Request::new("PUT", "/items/7?x=1&y=2", b"payload".to_vec())
            .header("x-custom", "v1")
            .header("x-request-id", "req-42"),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["path"], "/items/7");
    assert_eq!(v["query"], "x=1&y=2");
    assert_eq!(v["headers"]["x-custom"], "v1");
    assert_eq!(v["body"], "payload");
    assert_eq!(v["request_id"], "req-42");
}

#[test]
fn health_reports_status_version_and_uptime_without_the_handler() {
    let f = FnProcess::start("http-echo", &[("FNKIT_FUNCTION_VERSION", "7")]);
    let r = f.send(&Request::get("/health"));
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], "7");
    assert_eq!(v["function"], "http-echo");
    assert!(v["uptime_secs"].as_f64().unwrap() >= 0.0);
    // http-echo would have answered with a `method` member.
    assert!(v.get("method").is_none());
    let ready = f.send(&Request::get("/ready"));
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let f = FnProcess::start("hello", &[]);
    let s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut writer = s;
    for name in ["A", "B", "C"] {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let req = Request::post("/", body).header("connection", "keep-alive");
        writer.write_all(&req.to_bytes()).unwrap();
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.json()["message"], format!("Hello, {name}!"));
    }
}

#[test]
fn log_lines_are_json_with_the_request_id_and_no_body() {
    let f = FnProcess::start("hello", &[]);
    let r = f.send(
        &Request::post("/", r#"{"name": "SECRET-VALUE-123" "#)
            .header("content-type", "application/json")
            .header("x-request-id", "trace-me-1"),
    );
    assert_eq!(r.status, 400);
    let line = f
        .wait_for_log("trace-me-1", Duration::from_secs(2))
        .expect("no log line carries the request id");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["request_id"], "trace-me-1");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    for line in f.logs() {
        serde_json::from_str::<serde_json::Value>(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            !line.contains("SECRET-VALUE-123"),
            "a body reached the log: {line}"
        );
    }
}

#[test]
fn rust_log_sets_the_level() {
    let f = FnProcess::start("hello", &[("RUST_LOG", "debug")]);
    assert_eq!(f.post_json("/", "{}").status, 200);
    let line = f
        .wait_for_log("request served", Duration::from_secs(2))
        .expect("no debug line at RUST_LOG=debug");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "DEBUG");
    assert_eq!(v["status"], 200);

    let quiet = FnProcess::start("hello", &[("RUST_LOG", "error")]);
    assert_eq!(quiet.post_json("/", "{}").status, 200);
    assert!(quiet.logs().iter().all(|l| l.contains("\"ERROR\"")));
}

#[test]
fn sigint_also_shuts_down_cleanly() {
    let mut f = FnProcess::start("hello", &[]);
    f.signal("INT");
    let status = f
        .wait_exit(Duration::from_secs(5))
        .expect("did not exit on SIGINT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_port_in_use_is_a_clear_error_and_a_non_zero_exit() {
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let mut f = FnProcess::spawn(
        "hello",
        &[("PORT", port.as_str())],
        "127.0.0.1:9".parse().unwrap(),
    );
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(!status.success());
    let needle = format!("cannot listen on 0.0.0.0:{port}");
    let (found, all) = f.wait_for_output(&[&needle], Duration::from_secs(2));
    assert!(found, "{all}");
}
