//! Lambda response streaming (docs/platforms.md §1.7), against the mock Runtime API, which reads
//! the chunked `/response` as it arrives: the mode header, the chunked framing, the JSON prelude
//! and its eight NUL bytes, and the error trailers of a stream that fails after its first byte.

use base64::Engine as _;
use serde_json::{json, Value};

use super::mock::{Event, MockApi, Recorded};
use super::{fixture, lambda_env, start_function};

/// A Function URL event for `GET path?query`.
fn function_url(path: &str, query: &str) -> String {
    let mut e: Value = serde_json::from_slice(&fixture("function-url-request.json")).unwrap();
    e["rawPath"] = json!(path);
    e["rawQueryString"] = json!(query);
    e["requestContext"]["http"]["path"] = json!(path);
    e["requestContext"]["http"]["method"] = json!("GET");
    e["body"] = Value::Null;
    e["isBase64Encoded"] = json!(false);
    e.to_string()
}

/// Splits a streamed HTTP response body at its eight NULs: the prelude and the body.
fn prelude_and_body(r: &Recorded) -> (Value, Vec<u8>) {
    let at = r
        .body
        .windows(8)
        .position(|w| w == [0; 8])
        .expect("eight NUL bytes end the prelude");
    let prelude = serde_json::from_slice(&r.body[..at]).expect("the prelude is JSON");
    (prelude, r.body[at + 8..].to_vec())
}

#[test]
fn lambda_a_streamed_body_goes_out_chunk_by_chunk_behind_a_prelude() {
    let mock = MockApi::start();
    let _f = start_function("http-echo", &lambda_env(&mock.api()));
    mock.push(Event::new(
        "s-1",
        function_url("/stream", "chunks=3&ms=300"),
    ));
    let r = mock.wait_answer("s-1");
    assert!(r.path.ends_with("/s-1/response"), "{r:?}");
    assert_eq!(
        r.header("lambda-runtime-function-response-mode"),
        Some("streaming")
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.awslambda.http-integration-response")
    );
    let declared = r.header("trailer").unwrap_or_default().to_ascii_lowercase();
    assert!(
        declared.contains("lambda-runtime-function-error-type"),
        "{declared}"
    );
    assert!(
        declared.contains("lambda-runtime-function-error-body"),
        "{declared}"
    );

    let (prelude, body) = prelude_and_body(&r);
    assert_eq!(prelude["statusCode"], 200, "{prelude}");
    assert_eq!(
        prelude["headers"]["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(prelude["cookies"], json!([]));
    assert_eq!(body, b"chunk 1\nchunk 2\nchunk 3\n");
    assert!(r.trailers.is_empty(), "{:?}", r.trailers);

    // Streamed, not buffered: the chunks reached the Runtime API 300 ms apart.
    assert!(r.chunks.len() >= 3, "{} chunks", r.chunks.len());
    let (first, last) = (r.chunks[0].0, r.chunks[r.chunks.len() - 1].0);
    assert!(last - first >= 500, "all chunks within {} ms", last - first);
    // The runtime goes on to the next invocation.
    mock.push(Event::new("s-2", function_url("/stream", "chunks=1")));
    assert!(mock.wait_answer("s-2").path.ends_with("/response"));
}

#[test]
fn lambda_a_stream_failing_after_its_first_byte_reports_in_the_trailers() {
    let mock = MockApi::start();
    let _f = start_function("http-echo", &lambda_env(&mock.api()));
    mock.push(Event::new(
        "f-1",
        function_url("/stream", "chunks=5&ms=20&fail_after=2"),
    ));
    let r = mock.wait_answer("f-1");
    assert!(r.path.ends_with("/response"), "{r:?}");
    let (_, body) = prelude_and_body(&r);
    assert_eq!(body, b"chunk 1\nchunk 2\n");
    assert_eq!(
        r.trailers
            .get("lambda-runtime-function-error-type")
            .map(String::as_str),
        Some("HandlerError")
    );
    let doc = r
        .trailers
        .get("lambda-runtime-function-error-body")
        .expect("the error body");
    let doc = base64::engine::general_purpose::STANDARD
        .decode(doc)
        .unwrap();
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    assert_eq!(doc["errorType"], "HandlerError");
    assert_eq!(doc["errorMessage"], "the stream was asked to fail after 2");
    // Nothing went to /error: the first byte was out.
    assert!(mock
        .requests()
        .iter()
        .all(|q| !q.path.ends_with("/f-1/error")));
}

#[test]
fn lambda_a_stream_failing_before_its_first_byte_is_an_ordinary_error() {
    let mock = MockApi::start();
    let _f = start_function("http-echo", &lambda_env(&mock.api()));
    mock.push(Event::new(
        "e-1",
        function_url("/stream", "chunks=3&fail_after=0"),
    ));
    let r = mock.wait_answer("e-1");
    assert!(r.path.ends_with("/e-1/error"), "{r:?}");
    assert_eq!(r.json()["errorType"], "HandlerError");
}

#[test]
fn lambda_a_stream_for_an_alb_is_collected_into_one_response() {
    let mock = MockApi::start();
    let _f = start_function("http-echo", &lambda_env(&mock.api()));
    let mut e: Value = serde_json::from_slice(&fixture("alb-request-headers-only.json")).unwrap();
    e["path"] = json!("/stream");
    e["httpMethod"] = json!("GET");
    e["queryStringParameters"] = json!({"chunks": "2", "ms": "10"});
    mock.push(Event::new("a-1", e.to_string()));
    let r = mock.wait_answer("a-1");
    assert_eq!(r.header("lambda-runtime-function-response-mode"), None);
    let v = r.json();
    assert_eq!(v["statusCode"], 200, "{v}");
    assert_eq!(v["body"], "chunk 1\nchunk 2\n", "{v}");
}
