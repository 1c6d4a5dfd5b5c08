//! One trace across platforms, and OpenTelemetry export (issue 11, feature `otel`, on in the
//! example functions): spans reach an OTLP/HTTP receiver written here, which decodes them with the
//! official generated types (`opentelemetry-proto`, prost), independently of fnkit-otel's
//! hand-written encoder; log lines and reply CloudEvents carry the same trace (docs/tracing.md).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fnkit_tests::{FnProcess, Request};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use serde_json::Value;

use crate::lambda::mock::{now_ms, Event, MockApi};
use crate::lambda::{lambda_env, start_function};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
/// The X-Ray root above as a W3C trace id.
const XRAY_TRACE_ID: &str = "5759e988bd862e3fe1be46a994272793";

/// One span as it arrived.
#[derive(Debug, Clone)]
struct Received {
    /// When its export request arrived, in ms since the Unix epoch.
    at_ms: u64,
    resource: Vec<KeyValue>,
    span: Span,
}

#[derive(Default)]
struct Inbox {
    spans: Vec<Received>,
    /// Each request's path and content type.
    requests: Vec<(String, String)>,
    /// While set, answers wait (so the exporter's request stays open).
    hold: bool,
}

type Shared = Arc<(Mutex<Inbox>, Condvar)>;

/// An OTLP/HTTP receiver on loopback, on std threads: `POST /v1/traces`, protobuf bodies decoded
/// as `ExportTraceServiceRequest`, keep-alive connections, a 200 for each.
struct Receiver {
    addr: SocketAddr,
    inbox: Shared,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let addr = listener.local_addr().unwrap();
        let inbox: Shared = Arc::default();
        let shared = inbox.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { addr, inbox }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes answers wait (`true`) or lets them go (`false`).
    fn hold(&self, hold: bool) {
        let (lock, cvar) = &*self.inbox;
        lock.lock().unwrap().hold = hold;
        cvar.notify_all();
    }

    fn spans(&self) -> Vec<Received> {
        self.inbox.0.lock().unwrap().spans.clone()
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.inbox.0.lock().unwrap().requests.clone()
    }

    /// Waits until `n` spans have arrived (at most `timeout`) and returns them all.
    fn wait_spans(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.inbox;
        let mut inbox = lock.lock().unwrap();
        while inbox.spans.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {n} spans arrived: {:#?}",
                inbox.spans.len(),
                inbox.spans
            );
            inbox = cvar.wait_timeout(inbox, left).unwrap().0;
        }
        inbox.spans.clone()
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let (mut len, mut content_type) = (0, String::new());
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at_ms = now_ms();
        let decoded = ExportTraceServiceRequest::decode(&body[..])
            .unwrap_or_else(|e| panic!("not an ExportTraceServiceRequest ({e}): {body:?}"));
        let (lock, cvar) = &**shared;
        {
            let mut inbox = lock.lock().unwrap();
            inbox.requests.push((path.clone(), content_type));
            for rs in decoded.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        inbox.spans.push(Received {
                            at_ms,
                            resource: resource.clone(),
                            span,
                        });
                    }
                }
            }
            cvar.notify_all();
            let deadline = Instant::now() + Duration::from_secs(10);
            while inbox.hold && Instant::now() < deadline {
                inbox = cvar
                    .wait_timeout(inbox, Duration::from_millis(50))
                    .unwrap()
                    .0;
            }
        }
        let status = if path == "/v1/traces" {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attr(attrs, key)? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

fn int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attr(attrs, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn boolean(attrs: &[KeyValue], key: &str) -> Option<bool> {
    match attr(attrs, key)? {
        any_value::Value::BoolValue(b) => Some(*b),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The JSON log line of `request_id` whose message is `message`, waiting for it (at most 5 s).
fn log_line(f: &FnProcess, request_id: &str, message: &str) -> Value {
    let needle = format!("\"message\":\"{message}\"");
    let line = f
        .wait_for_output(&[request_id, &needle], Duration::from_secs(5))
        .1
        .lines()
        .find(|l| l.contains(request_id) && l.contains(&needle))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no {message:?} line for {request_id}: {:?}", f.logs()));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

// --- HTTP platforms -----------------------------------------------------------------------------

/// (a) and (d): a request with a `traceparent` on Knative gives one server span, exported at
/// shutdown: the incoming trace, the caller's span as parent, the FaaS and HTTP attributes; its
/// log lines carry the same trace id and the span's id.
#[test]
fn otel_a_knative_request_is_one_server_span_exported_at_shutdown() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let mut f = FnProcess::start(
        "http-echo",
        &[
            ("K_SERVICE", "echo-svc"),
            ("K_REVISION", "echo-svc-00007"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            // No periodic export before the end of this test: the shutdown flush sends it.
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
            ("RUST_LOG", "info,fnkit_http=debug"),
        ],
    );
    let r = f.send(
        &Request::get("/orders/7?x=1")
            .header("traceparent", TRACEPARENT)
            .header("tracestate", "vendor=a")
            .header("x-request-id", "otel-a-1"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.spans().is_empty(), "exported before shutdown");

    f.signal("TERM");
    assert!(f
        .wait_exit(Duration::from_secs(10))
        .is_some_and(|s| s.success()));
    let spans = receiver.spans();
    assert_eq!(
        spans.len(),
        1,
        "the request's span only (no probes): {spans:#?}"
    );
    assert_eq!(
        receiver.requests(),
        [("/v1/traces".to_owned(), "application/x-protobuf".to_owned())]
    );
    let Received { resource, span, .. } = &spans[0];
    assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
    assert!(is_hex(&hex(&span.span_id), 16));
    assert_ne!(hex(&span.span_id), "00f067aa0ba902b7");
    assert_eq!(span.trace_state, "vendor=a");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    assert!(span.start_time_unix_nano > 1_700_000_000_000_000_000);
    let a = &span.attributes;
    assert_eq!(text(a, "faas.trigger"), Some("http"));
    assert_eq!(text(a, "faas.invocation_id"), Some("otel-a-1"));
    assert_eq!(boolean(a, "faas.coldstart"), Some(true));
    assert_eq!(text(a, "http.request.method"), Some("GET"));
    assert_eq!(text(a, "url.path"), Some("/orders/7"));
    assert_eq!(int(a, "http.response.status_code"), Some(200));
    assert!(span.status.as_ref().is_none_or(|s| s.code == 0));
    assert_eq!(text(resource, "service.name"), Some("echo-svc"));
    assert_eq!(text(resource, "faas.name"), Some("echo-svc"));
    assert_eq!(text(resource, "faas.version"), Some("echo-svc-00007"));
    assert_eq!(text(resource, "cloud.platform"), Some("knative"));
    assert_eq!(text(resource, "cloud.provider"), None);
    assert_eq!(text(resource, "telemetry.sdk.name"), Some("fnkit"));

    // (d) The request's log line: the same trace, and the exported span's id.
    let line = log_line(&f, "otel-a-1", "request served");
    assert_eq!(line["request_id"], "otel-a-1", "{line}");
    assert_eq!(
        line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "{line}"
    );
    assert_eq!(line["span_id"], hex(&span.span_id), "{line}");
}

/// (a) On HTTP platforms spans also leave on a timer, without waiting for shutdown; a request
/// with no trace begins one (its logs carry it too), and a 4xx is the client's error, not the
/// span's.
#[test]
fn otel_http_spans_are_exported_periodically_and_untraced_requests_begin_a_trace() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let f = FnProcess::start(
        "hello",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "greeter"),
        ],
    );
    let ok = f.send(
        &Request::post("/", r#"{"name":"Ada"}"#)
            .header("content-type", "application/json")
            .header("x-request-id", "otel-p-1"),
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad = f.send(
        &Request::post("/", "{not json")
            .header("content-type", "application/json")
            .header("x-request-id", "otel-p-2"),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    // Refused before the handler's shape reads anything: still in the caller's trace.
    let refused = f.send(
        &Request::get("/")
            .header("traceparent", TRACEPARENT)
            .header("x-request-id", "otel-p-3"),
    );
    assert_eq!(refused.status, 405, "{}", refused.text());
    let spans = receiver.wait_spans(3, Duration::from_secs(5));
    let by_id = |id: &str| {
        spans
            .iter()
            .find(|r| text(&r.span.attributes, "faas.invocation_id") == Some(id))
            .unwrap_or_else(|| panic!("no span for {id}: {spans:#?}"))
    };
    let (first, second) = (by_id("otel-p-1"), by_id("otel-p-2"));
    for r in [first, second] {
        assert_eq!(r.span.trace_id.len(), 16);
        assert!(r.span.parent_span_id.is_empty(), "a root span");
    }
    for r in [first, second, by_id("otel-p-3")] {
        assert_eq!(text(&r.resource, "service.name"), Some("greeter"));
        assert_eq!(text(&r.resource, "faas.name"), Some("hello"));
        assert_eq!(text(&r.resource, "cloud.platform"), None, "local mode");
    }
    assert_ne!(first.span.trace_id, second.span.trace_id);
    assert_eq!(
        boolean(&first.span.attributes, "faas.coldstart"),
        Some(true)
    );
    assert_eq!(
        boolean(&second.span.attributes, "faas.coldstart"),
        Some(false)
    );
    assert_eq!(
        int(&second.span.attributes, "http.response.status_code"),
        Some(400)
    );
    assert_eq!(
        text(&second.span.attributes, "error.type"),
        Some("InvalidInput")
    );
    assert!(second.span.status.as_ref().is_none_or(|s| s.code == 0));
    let third = by_id("otel-p-3");
    assert_eq!(
        hex(&third.span.trace_id),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(hex(&third.span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        int(&third.span.attributes, "http.response.status_code"),
        Some(405)
    );
    assert_eq!(
        text(&third.span.attributes, "error.type"),
        Some("MethodNotAllowed")
    );

    // (d) The rejected request's log line has the trace it began.
    let line = log_line(&f, "otel-p-2", "request rejected");
    assert_eq!(line["trace_id"], hex(&second.span.trace_id), "{line}");
    assert_eq!(line["span_id"], hex(&second.span.span_id), "{line}");
}

/// (c) An endpoint nobody listens on, or one that never answers: requests are answered as
/// always, the failure is logged once, and the process stops promptly.
#[test]
fn otel_an_unreachable_collector_delays_and_fails_no_http_request() {
    let tarpit = TcpListener::bind("127.0.0.1:0").unwrap();
    let tarpit_url = format!("http://{}", tarpit.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in tarpit.incoming().flatten() {
            held.push(s); // accepted, read by nobody, never answered
        }
    });
    let closed = format!("http://127.0.0.1:{}", fnkit_tests::free_port());
    for endpoint in [closed, tarpit_url] {
        let mut f = FnProcess::start(
            "http-echo",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY", "20"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
            ],
        );
        let started = Instant::now();
        for i in 0..20 {
            let r = f.send(&Request::get(&format!("/n/{i}")).header("traceparent", TRACEPARENT));
            assert_eq!(r.status, 200, "{endpoint}: {}", r.text());
            std::thread::sleep(Duration::from_millis(10));
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "{endpoint}: 20 requests took {took:?}"
        );
        let (found, _) = f.wait_for_output(&["could not export"], Duration::from_secs(5));
        assert!(found, "{endpoint}: {:?}", f.logs());
        let warnings = f
            .logs()
            .iter()
            .filter(|l| l.contains("could not export"))
            .count();
        assert_eq!(warnings, 1, "{endpoint}: logged once: {:?}", f.logs());
        f.signal("TERM");
        let stopped = Instant::now();
        assert!(f
            .wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success()));
        assert!(stopped.elapsed() < Duration::from_secs(3), "{endpoint}");
    }
}

// --- Lambda ---------------------------------------------------------------------------------------

fn lambda_with(
    receiver_endpoint: &str,
    mock: &MockApi,
    extra: &[(&'static str, &str)],
) -> FnProcess {
    let mut env = lambda_env(&mock.api());
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", receiver_endpoint.to_owned()));
    env.push(("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()));
    for (k, v) in extra {
        env.push((*k, (*v).to_owned()));
    }
    start_function("hello", &env)
}

/// (b) and (d): an invocation with only X-Ray gives a span in the converted trace, and the span
/// is at the collector before the runtime asks for the next event: while the collector holds its
/// answer, no `/next` goes out.
#[test]
fn otel_a_lambda_span_arrives_before_the_next_next_in_the_xray_trace() {
    let receiver = Receiver::start();
    let mock = MockApi::start();
    let f = lambda_with(
        &receiver.endpoint(),
        &mock,
        &[("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")],
    );
    receiver.hold(true);
    mock.push(Event::new("x-1", r#"{"name":"Ada"}"#).header("Lambda-Runtime-Trace-Id", XRAY));
    let answer = mock.wait_answer("x-1");
    assert!(answer.path.ends_with("/response"));
    let spans = receiver.wait_spans(1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mock.next_count(),
        1,
        "a /next went out while the span's export was unanswered"
    );
    receiver.hold(false);
    let deadline = Instant::now() + Duration::from_secs(5);
    while mock.next_count() < 2 {
        assert!(Instant::now() < deadline, "no /next after the export");
        std::thread::sleep(Duration::from_millis(10));
    }
    let next = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/runtime/invocation/next"))
        .nth(1)
        .unwrap();
    let Received {
        at_ms,
        resource,
        span,
    } = &spans[0];
    assert!(
        answer.at_ms <= *at_ms && *at_ms <= next.at_ms,
        "{} {at_ms} {}",
        answer.at_ms,
        next.at_ms
    );

    assert_eq!(hex(&span.trace_id), XRAY_TRACE_ID);
    assert_eq!(hex(&span.parent_span_id), "53995c3f42cd8ad8");
    assert_eq!(span.flags & 0xFF, 1, "sampled");
    assert_eq!(span.kind, SpanKind::Server as i32);
    assert_eq!(span.name, "probe");
    let a = &span.attributes;
    assert_eq!(text(a, "faas.invocation_id"), Some("x-1"));
    assert_eq!(text(a, "faas.trigger"), Some("other"));
    assert_eq!(boolean(a, "faas.coldstart"), Some(true));
    assert_eq!(int(a, "http.response.status_code"), None);
    assert_eq!(text(resource, "service.name"), Some("probe"));
    assert_eq!(text(resource, "cloud.provider"), Some("aws"));
    assert_eq!(text(resource, "cloud.platform"), Some("aws_lambda"));
    assert_eq!(text(resource, "cloud.region"), Some("us-east-1"));
    assert_eq!(text(resource, "faas.name"), Some("probe"));
    assert_eq!(text(resource, "faas.version"), Some("$LATEST"));
    assert_eq!(int(resource, "faas.max_memory"), Some(128 * 1024 * 1024));

    // A failing invocation: an error span, exported before the next `/next` too, and its error
    // line (Lambda's JSON format) carries the trace and the span's id.
    mock.push(Event::new("x-2", r#""not an object""#).header("Lambda-Runtime-Trace-Id", XRAY));
    assert!(mock.wait_answer("x-2").path.ends_with("/error"));
    let spans = receiver.wait_spans(2, Duration::from_secs(5));
    let failed = &spans[1].span;
    assert_eq!(text(&failed.attributes, "faas.invocation_id"), Some("x-2"));
    assert_eq!(boolean(&failed.attributes, "faas.coldstart"), Some(false));
    let status = failed.status.as_ref().expect("an error status");
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(status.message, "InvalidInput");
    assert_eq!(text(&failed.attributes, "error.type"), Some("InvalidInput"));
    let line = f
        .wait_for_output(
            &["\"requestId\":\"x-2\"", "\"level\":\"ERROR\""],
            Duration::from_secs(5),
        )
        .1
        .lines()
        .find(|l| l.contains("\"requestId\":\"x-2\"") && l.contains("\"level\":\"ERROR\""))
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .unwrap_or_else(|| panic!("{:?}", f.logs()));
    assert_eq!(line["trace_id"], XRAY_TRACE_ID, "{line}");
    assert_eq!(line["span_id"], hex(&failed.span_id), "{line}");
}

/// (c) On Lambda an unreachable collector (refused, or never answering) fails no invocation and
/// delays at most one `/next` by the export timeout: exports pause after a failure.
#[test]
fn otel_an_unreachable_collector_delays_and_fails_no_lambda_invocation() {
    let tarpit = TcpListener::bind("127.0.0.1:0").unwrap();
    let tarpit_url = format!("http://{}", tarpit.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in tarpit.incoming().flatten() {
            held.push(s);
        }
    });
    let closed = format!("http://127.0.0.1:{}", fnkit_tests::free_port());
    for endpoint in [closed, tarpit_url] {
        let mock = MockApi::start();
        let f = lambda_with(&endpoint, &mock, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "300")]);
        let started = Instant::now();
        for i in 0..10 {
            let id = format!("u-{i}");
            mock.push(Event::new(&id, "{}").header("Lambda-Runtime-Trace-Id", XRAY));
            let answer = mock.wait_answer(&id);
            assert!(answer.path.ends_with("/response"), "{endpoint}: {answer:?}");
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "{endpoint}: 10 invocations took {took:?}"
        );
        // (The line may still be on its way through the pipe.)
        let _ = f.wait_for_output(&["could not export"], Duration::from_secs(5));
        let warnings = f
            .logs()
            .iter()
            .filter(|l| l.contains("could not export"))
            .count();
        assert_eq!(warnings, 1, "{endpoint}: {:?}", f.logs());
    }
}

// --- across platforms -------------------------------------------------------------------------------

/// (e) A trace that enters on Knative (`traceparent`) leaves in the reply CloudEvent, continues
/// on Lambda when that event is the payload (its extension wins over the X-Ray header), and
/// comes back: one trace id throughout, each hop's parent the previous hop's span.
#[test]
fn otel_a_trace_goes_from_knative_to_lambda_and_back_in_cloudevents() {
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let knative = FnProcess::start(
        "echo-event",
        &[
            ("K_SERVICE", "echo"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ],
    );
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    // Binary mode, the trace in the HTTP header.
    let r = knative.send(
        &Request::post("/", r#"{"n":1}"#)
            .header("content-type", "application/json")
            .header("ce-specversion", "1.0")
            .header("ce-id", "hop-1")
            .header("ce-source", "/orders")
            .header("ce-type", "order.created")
            .header("traceparent", TRACEPARENT),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hop1 = r
        .header("ce-traceparent")
        .expect("the reply's traceparent")
        .to_owned();
    assert_eq!(&hop1[3..35], trace_id, "{hop1}");
    assert!(hop1.ends_with("-01"), "{hop1}");
    let knative_span = receiver.wait_spans(1, Duration::from_secs(5))[0]
        .span
        .clone();
    assert_eq!(hex(&knative_span.trace_id), trace_id);
    assert_eq!(hex(&knative_span.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        hex(&knative_span.span_id),
        &hop1[36..52],
        "the reply is the span's child"
    );

    // The reply, as a Lambda payload (structured), with an unrelated X-Ray header.
    let mock = MockApi::start();
    let mut env = lambda_env(&mock.api());
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()));
    let _lambda = start_function("echo-event", &env);
    let event = format!(
        r#"{{"specversion":"1.0","id":"hop-2","source":"urn:fnkit:echo","type":"order.created.reply","traceparent":"{hop1}","data":{{"n":1}}}}"#
    );
    mock.push(Event::new("hop-2", event).header("Lambda-Runtime-Trace-Id", XRAY));
    let answer = mock.wait_answer("hop-2");
    assert!(answer.path.ends_with("/response"));
    let hop2 = answer.json()["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(&hop2[3..35], trace_id, "{hop2}");
    let spans = receiver.wait_spans(2, Duration::from_secs(5));
    let lambda_span = &spans
        .iter()
        .find(|r| text(&r.span.attributes, "faas.invocation_id") == Some("hop-2"))
        .unwrap()
        .span;
    assert_eq!(hex(&lambda_span.trace_id), trace_id);
    assert_eq!(hex(&lambda_span.parent_span_id), &hop1[36..52]);
    assert_eq!(hex(&lambda_span.span_id), &hop2[36..52]);

    // And back to Knative, structured mode, the trace in the event only.
    let back = format!(
        r#"{{"specversion":"1.0","id":"hop-3","source":"urn:fnkit:probe","type":"order.created.reply.reply","traceparent":"{hop2}","data":{{"n":1}}}}"#
    );
    let r = knative
        .send(&Request::post("/", back).header("content-type", "application/cloudevents+json"));
    assert_eq!(r.status, 200, "{}", r.text());
    let hop3 = r.json()["traceparent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(&hop3[3..35], trace_id, "{hop3}");
    let spans = receiver.wait_spans(3, Duration::from_secs(5));
    // (A structured event over HTTP has no request id header: fnkit made one.)
    let last = &spans
        .iter()
        .find(|r| hex(&r.span.parent_span_id) == hop2[36..52])
        .unwrap_or_else(|| panic!("no span in Lambda's span: {spans:#?}"))
        .span;
    assert_eq!(hex(&last.trace_id), trace_id);
    assert_eq!(hex(&last.span_id), &hop3[36..52]);
    assert_eq!(text(&last.attributes, "faas.trigger"), Some("pubsub"));
}

/// Without an endpoint nothing is exported and nothing begins a trace: an untraced event's reply
/// has no `traceparent`, a traced one's continues it.
#[test]
fn otel_without_an_endpoint_traces_are_continued_not_begun() {
    let f = FnProcess::start("echo-event", &[]);
    let event = |tp: Option<&str>| {
        let ext = tp
            .map(|tp| format!(r#","traceparent":"{tp}""#))
            .unwrap_or_default();
        format!(r#"{{"specversion":"1.0","id":"1","source":"/s","type":"t"{ext},"data":1}}"#)
    };
    let send = |body: String| {
        f.send(&Request::post("/", body).header("content-type", "application/cloudevents+json"))
            .json()
    };
    assert_eq!(send(event(None)).get("traceparent"), None);
    let reply = send(event(Some(TRACEPARENT)));
    let tp = reply["traceparent"].as_str().unwrap();
    assert_eq!(tp[..36], TRACEPARENT[..36], "{reply}");
}
