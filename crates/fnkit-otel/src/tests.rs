//! The exporter against the official generated OTLP types (an independent decoder) and a
//! collector of our own on loopback.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fnkit_core::adapter::{env_from, trace_context, TraceInput};
use fnkit_core::{ErrorKind, TraceContext};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::from_lookup(&env_from(pairs)).unwrap().unwrap()
}

fn traced(traceparent: &str) -> TraceContext {
    let mut h = http::HeaderMap::new();
    h.insert("traceparent", traceparent.parse().unwrap());
    h.insert("tracestate", "vendor=1".parse().unwrap());
    trace_context(TraceInput {
        headers: Some(&h),
        ..TraceInput::default()
    })
}

fn record<'a>(trace: &'a TraceContext, platform: Platform) -> Record<'a> {
    Record {
        platform,
        shape: "http",
        request_id: "req-1",
        trace,
        started: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        duration: Duration::from_micros(1500),
        status: 200,
        error: None,
        http: Some(("POST", "/orders")),
        trigger: "http",
        cold_start: true,
    }
}

fn decode(body: &[u8]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest::decode(body).expect("a valid ExportTraceServiceRequest")
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(any_value::Value::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The body the exporter would send now, decoded.
fn pending(exporter: &Exporter) -> ExportTraceServiceRequest {
    let q = lock(&exporter.queue);
    decode(&proto::request(
        &exporter.statics.get().unwrap().head,
        &q.spans,
    ))
}

fn only_span(req: &ExportTraceServiceRequest) -> &Span {
    assert_eq!(req.resource_spans.len(), 1);
    let scopes = &req.resource_spans[0].scope_spans;
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0].spans.len(), 1, "{:?}", scopes[0].spans);
    &scopes[0].spans[0]
}

#[test]
fn nothing_is_configured_without_an_endpoint_or_when_disabled() {
    assert!(Config::from_lookup(&env_from(&[])).unwrap().is_none());
    for off in [
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_TRACES_SAMPLER", "always_off"),
    ] {
        let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off];
        assert!(
            Config::from_lookup(&env_from(&env)).unwrap().is_none(),
            "{off:?}"
        );
    }
}

#[test]
fn endpoints_follow_the_otlp_rules() {
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
    assert_eq!(c.target.url, "http://collector:4318/v1/traces");
    let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/otlp")]);
    assert_eq!(c.target.url, "http://collector:4318/otlp/v1/traces");
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:1"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:9/custom"),
    ]);
    assert_eq!(c.target.url, "http://c:9/custom");
    assert_eq!(c.timeout, Duration::from_secs(1));
    assert_eq!(c.delay, Duration::from_secs(5));

    let https = Config::from_lookup(&env_from(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "https://api.vendor.example",
    )]))
    .unwrap_err();
    assert!(https.contains("plain http://"), "{https}");
    let grpc = Config::from_lookup(&env_from(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]))
    .unwrap_err();
    assert!(grpc.contains("http/protobuf"), "{grpc}");
}

#[test]
fn timeouts_headers_sampler_and_resource_come_from_the_environment() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "250"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "300"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=a%20b, x-tenant = t1,broken,=x",
        ),
        ("OTEL_TRACES_SAMPLER", "always_on"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,service.name=from-list",
        ),
    ]);
    assert_eq!(c.timeout, Duration::from_millis(300));
    assert_eq!(c.delay, Duration::from_millis(100));
    let headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    assert_eq!(headers, [("api-key", "a b"), ("x-tenant", "t1")]);
    assert!(c.always_on);
    assert_eq!(
        c.resource,
        [
            ("deployment.environment".to_owned(), "prod".to_owned()),
            ("service.name".to_owned(), "from-list".to_owned())
        ]
    );
}

#[test]
fn a_record_is_a_server_span_in_its_trace_with_the_semantic_conventions() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]abc"),
    ]);
    let exporter = Arc::new(Exporter::new(c));
    let trace = traced(TP);
    let own = trace.span.unwrap();
    let mut lambda = record(&trace, Platform::Lambda);
    lambda.http = None;
    lambda.trigger = "other";
    exporter.record(&lambda);
    let req = pending(&exporter);
    let span = only_span(&req);
    assert_eq!(span.trace_id, own.trace_id.to_bytes());
    assert_eq!(
        hex(&span.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "the incoming trace"
    );
    assert_eq!(span.span_id, own.span_id.to_bytes());
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(span.trace_state, "vendor=1");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(span.start_time_unix_nano, 1_700_000_000_123_000_000);
    assert_eq!(span.end_time_unix_nano, 1_700_000_000_124_500_000);
    assert_eq!(span.flags, 0x301);
    assert_eq!(
        text(&span.attributes, "faas.trigger").as_deref(),
        Some("other")
    );
    assert_eq!(
        text(&span.attributes, "faas.invocation_id").as_deref(),
        Some("req-1")
    );
    assert_eq!(
        attr(&span.attributes, "faas.coldstart"),
        Some(&any_value::Value::BoolValue(true))
    );
    assert_eq!(attr(&span.attributes, "http.response.status_code"), None);
    assert!(span.status.is_none() || span.status.as_ref().unwrap().code == 0);

    let resource = req.resource_spans[0].resource.as_ref().unwrap();
    let r = &resource.attributes;
    let name = FunctionInfo::from_env(Platform::Lambda).name;
    assert_eq!(text(r, "service.name"), Some(name.clone()));
    assert_eq!(span.name, name);
    assert_eq!(text(r, "telemetry.sdk.name").as_deref(), Some("fnkit"));
    assert_eq!(text(r, "cloud.provider").as_deref(), Some("aws"));
    assert_eq!(text(r, "cloud.platform").as_deref(), Some("aws_lambda"));
    assert_eq!(text(r, "cloud.region").as_deref(), Some("eu-west-1"));
    assert_eq!(
        text(r, "faas.instance").as_deref(),
        Some("2026/01/01/[$LATEST]abc")
    );
    assert_eq!(text(r, "faas.name"), Some(name));
    let scope = req.resource_spans[0].scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(scope.name, "fnkit");
}

#[test]
fn http_attributes_and_error_statuses() {
    let c = config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_SERVICE_NAME", "orders"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ignored,cloud.platform=my-knative,team=a%2Cb",
        ),
    ]);
    let exporter = Arc::new(Exporter::new(c));
    let trace = traced(TP);
    let ok = record(&trace, Platform::Knative);
    let mut server_error = record(&trace, Platform::Knative);
    (server_error.status, server_error.error) = (500, Some(ErrorKind::Handler));
    let mut client_error = record(&trace, Platform::Knative);
    (client_error.status, client_error.error) = (400, Some(ErrorKind::InvalidInput));
    for r in [&ok, &server_error, &client_error] {
        exporter.record(r);
    }
    let req = pending(&exporter);
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 3);
    let a = &spans[0].attributes;
    assert_eq!(text(a, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(text(a, "url.path").as_deref(), Some("/orders"));
    assert_eq!(
        attr(a, "http.response.status_code"),
        Some(&any_value::Value::IntValue(200))
    );
    assert_eq!(text(a, "error.type"), None);
    let status = spans[1].status.as_ref().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "HandlerError");
    assert_eq!(
        text(&spans[1].attributes, "error.type").as_deref(),
        Some("HandlerError")
    );
    // A 4xx: the caller's fault, so no error status on a server span, but the error type.
    assert!(spans[2].status.as_ref().is_none_or(|s| s.code == 0));
    assert_eq!(
        text(&spans[2].attributes, "error.type").as_deref(),
        Some("InvalidInput")
    );
    let r = &req.resource_spans[0].resource.as_ref().unwrap().attributes;
    assert_eq!(text(r, "service.name").as_deref(), Some("orders"));
    assert_eq!(text(r, "cloud.platform").as_deref(), Some("my-knative"));
    assert_eq!(text(r, "cloud.provider"), None);
    assert_eq!(text(r, "team").as_deref(), Some("a,b"));
}

#[test]
fn unsampled_traces_are_not_exported_unless_always_on() {
    let unsampled = traced("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://c:4318",
    )])));
    exporter.record(&record(&unsampled, Platform::Lambda));
    assert_eq!(lock(&exporter.queue).count, 0);
    let exporter = Arc::new(Exporter::new(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
        ("OTEL_TRACES_SAMPLER", "always_on"),
    ])));
    exporter.record(&record(&unsampled, Platform::Lambda));
    assert_eq!(only_span(&pending(&exporter)).flags & 0xFF, 0);
}

#[test]
fn a_record_without_trace_gets_ids_of_its_own_and_no_parent() {
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://c:4318",
    )])));
    let none = TraceContext::default();
    exporter.record(&record(&none, Platform::Local));
    let req = pending(&exporter);
    let span = only_span(&req);
    assert_eq!(span.trace_id.len(), 16);
    assert_eq!(span.span_id.len(), 8);
    assert!(span.parent_span_id.is_empty());
    assert_eq!(span.flags, 0x01);
}

#[test]
fn the_queue_is_bounded() {
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "http://c:4318",
    )])));
    let trace = traced(TP);
    for _ in 0..MAX_QUEUE + 5 {
        exporter.record(&record(&trace, Platform::Lambda));
    }
    let q = lock(&exporter.queue);
    assert_eq!((q.count, q.dropped), (MAX_QUEUE, 5));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A collector that answers `status` to each request and sends (head, body) to the test.
async fn collector(status: u16) -> (String, Inbox) {
    let (url, rx, _) =
        collector_answering(format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n")).await;
    (url, rx)
}

type Inbox = tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>;

/// A collector that writes `answer` as is to each request; also counts its connections.
async fn collector_answering(
    answer: String,
) -> (String, Inbox, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let tx = tx.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    let _ = tx.send((head, body));
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                    if answer.contains("connection: close") || answer.starts_with("HTTP/1.0") {
                        return;
                    }
                }
            });
        }
    });
    (url, rx, connections)
}

#[tokio::test]
async fn flush_posts_protobuf_to_v1_traces_on_one_kept_connection() {
    let (url, mut rx) = collector(200).await;
    let exporter = Arc::new(Exporter::new(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t"),
    ])));
    let observer = Otlp(exporter.clone());
    let trace = traced(TP);
    observer.finished(&record(&trace, Platform::Lambda));
    observer.flush().await;
    let (head, body) = rx.recv().await.unwrap();
    assert!(head.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/x-protobuf"),
        "{head}"
    );
    assert!(lower.contains("authorization: bearer t"), "{head}");
    let req = decode(&body);
    assert_eq!(
        hex(&only_span(&req).trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    // Nothing waits: no request.
    observer.flush().await;
    // The next export reuses the connection, and still arrives.
    observer.finished(&record(&trace, Platform::Lambda));
    observer.flush().await;
    let (_, body) = rx.recv().await.unwrap();
    assert_eq!(
        decode(&body).resource_spans[0].scope_spans[0].spans.len(),
        1
    );
    assert!(rx.try_recv().is_err());
    assert_eq!(lock(&exporter.health).failures, 0);
}

#[tokio::test]
async fn on_http_platforms_spans_are_exported_periodically() {
    let (url, mut rx) = collector(200).await;
    let exporter = Arc::new(Exporter::new(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ])));
    assert!(!exporter.periodic.load(Ordering::Relaxed), "not at start");
    let trace = traced(TP);
    exporter.record(&record(&trace, Platform::Knative));
    assert!(exporter.periodic.load(Ordering::Relaxed));
    let (_, body) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decode(&body).resource_spans[0].scope_spans[0].spans.len(),
        1
    );
}

#[tokio::test]
async fn an_unreachable_collector_is_logged_once_and_then_skipped() {
    // A port nobody listens on: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &format!("http://127.0.0.1:{port}"),
    )])));
    let trace = traced(TP);
    exporter.record(&record(&trace, Platform::Lambda));
    exporter.clone().export().await;
    assert_eq!(lock(&exporter.health).failures, 1);
    assert_eq!(
        lock(&exporter.queue).count,
        0,
        "the failed batch is dropped"
    );
    // Paused: the next flush returns at once and keeps the span for later.
    exporter.record(&record(&trace, Platform::Lambda));
    exporter.clone().export().await;
    assert_eq!(lock(&exporter.health).failures, 1);
    assert_eq!(lock(&exporter.queue).count, 1);
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_one_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts, reads, never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let exporter = Arc::new(Exporter::new(config(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "100"),
    ])));
    let trace = traced(TP);
    exporter.record(&record(&trace, Platform::Lambda));
    let started = Instant::now();
    exporter.clone().export().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "{took:?}"
    );
    exporter.record(&record(&trace, Platform::Lambda));
    let started = Instant::now();
    exporter.clone().export().await;
    assert!(started.elapsed() < Duration::from_millis(50), "paused");
}

#[tokio::test]
async fn a_collector_error_status_counts_as_a_failure() {
    let (url, mut rx) = collector(503).await;
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &url,
    )])));
    let trace = traced(TP);
    exporter.record(&record(&trace, Platform::Lambda));
    exporter.clone().export().await;
    assert!(rx.recv().await.is_some());
    assert_eq!(lock(&exporter.health).failures, 1);
}

/// Answers in the shapes a collector may use: each is read to its end, and the connection is
/// kept only when it can carry the next export.
#[tokio::test]
async fn answers_with_bodies_chunks_or_close_are_read_whole() {
    for (answer, kept) in [
        ("HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 3\r\n\r\n\x0a\x01\x00", true),
        ("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n", true),
        ("HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", false),
        ("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", false),
    ] {
        let (url, mut rx, connections) = collector_answering(answer.to_owned()).await;
        let exporter = Arc::new(Exporter::new(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)])));
        let trace = traced(TP);
        for _ in 0..3 {
            exporter.record(&record(&trace, Platform::Lambda));
            exporter.clone().export().await;
            let (_, body) = rx.recv().await.unwrap();
            assert_eq!(decode(&body).resource_spans[0].scope_spans[0].spans.len(), 1);
        }
        assert_eq!(lock(&exporter.health).failures, 0, "{answer:?}");
        let want = if kept { 1 } else { 3 };
        assert_eq!(connections.load(Ordering::SeqCst), want, "{answer:?}");
    }
}

#[tokio::test]
async fn a_garbled_answer_is_a_failure() {
    let (url, mut rx, _) = collector_answering("this is not HTTP\r\n\r\n".to_owned()).await;
    let exporter = Arc::new(Exporter::new(config(&[(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &url,
    )])));
    let trace = traced(TP);
    exporter.record(&record(&trace, Platform::Lambda));
    exporter.clone().export().await;
    assert!(rx.recv().await.is_some());
    assert_eq!(lock(&exporter.health).failures, 1);
}
