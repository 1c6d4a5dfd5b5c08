//! Property tests of the two adapters' decoding, on stable (proptest), bounded to a few seconds:
//! generated CloudEvents, `ce-*` headers and Lambda HTTP events go through the HTTP runtime's
//! decoding (`fnkit_http::fuzzing`) and the Lambda adapter's (`fnkit_lambda::fuzzing`), and
//!
//! - the same structured event gets the same verdict on both, and on refusal the same kind and
//!   message (the promise of docs/platforms.md §5: one decoder, `fnkit_core::adapter::ce`);
//! - binary mode and structured mode agree on the same attributes;
//! - a batch is refused exactly when one of its entries would be, naming that entry;
//! - no input panics: arbitrary bytes, header values and Lambda payloads get `Ok` or `Err`;
//! - a Lambda HTTP event that decodes carries its headers over, and the trace context read from
//!   them is what W3C Trace Context says it is.
//!
//! Case counts are fixed below (`cases`), so the file runs in seconds in a debug build; the
//! coverage-guided, open-ended search is `make fuzz` (fuzz/). Set `PROPTEST_CASES` to run more.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use fnkit_core::adapter::{ce, trace_context, TraceInput};
use fnkit_core::cloudevents::Event;
use fnkit_core::{Error, ErrorKind};
use fnkit_http::fuzzing::decode_events;
use fnkit_lambda::fuzzing::{decode_event, decode_http_event};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Map, Value};

// --- the two adapters ------------------------------------------------------------------------

/// A verdict to compare: the event, or the error's kind and message.
type Verdict = Result<Event, (ErrorKind, String)>;

fn verdict(result: Result<Event, Error>) -> Verdict {
    result.map_err(|e| (e.kind(), e.message().to_owned()))
}

/// The HTTP runtime's reading of a structured-mode request with this body.
fn http_structured(content_type: &'static str, body: &[u8]) -> Verdict {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    verdict(
        decode_events(&headers, Bytes::copy_from_slice(body)).map(|events| {
            assert_eq!(events.len(), 1, "structured mode gives one event");
            events.into_iter().next().expect("one event")
        }),
    )
}

/// The Lambda adapter's reading of the same bytes as an invocation payload.
fn lambda(payload: &[u8]) -> Verdict {
    verdict(decode_event(payload))
}

/// Lambda reads an object with `detail-type` and no `specversion` as an EventBridge event, by
/// design (docs/platforms.md §2.8): the HTTP binding has no such reading.
fn eventbridge_shaped(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|m| m.contains_key("detail-type") && !m.contains_key("specversion"))
}

const STRUCTURED_TYPES: [&str; 4] = [
    "application/cloudevents+json",
    "application/cloudevents+json; charset=utf-8",
    "Application/CloudEvents+JSON",
    "application/cloudevents",
];

// --- generated structured events ---------------------------------------------------------------

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "\\PC{1,12}",
        1 => "[\\x00-\\x7f]{0,8}",
        1 => Just(" ".to_owned()),
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e12f64..1.0e12).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A required attribute: mostly a valid string, else empty, another type, or absent.
fn required() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        30 => text().prop_map(|s| Some(Value::from(s))),
        1 => Just(Some(json!(""))),
        1 => json_leaf().prop_map(Some),
        1 => Just(None),
    ]
}

fn specversion() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        30 => Just(Some(json!("1.0"))),
        1 => prop::sample::select(vec![json!("0.3"), json!("1.1"), json!(""), json!(1.0), json!("1.0 ")])
            .prop_map(Some),
        1 => json_leaf().prop_map(Some),
        1 => Just(None),
    ]
}

fn time() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "2020-01-02T03:04:05Z",
            "2018-04-05T17:31:00.123456789+02:00",
            "1985-04-12T23:20:50.52-05:00",
        ])
        .prop_map(Value::from),
        1 => prop::sample::select(vec!["2020-13-01T00:00:00Z", "yesterday", "", "2020-01-02"])
            .prop_map(Value::from),
        1 => json_leaf(),
    ]
}

fn dataschema() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec!["https://example.com/schema.json", "urn:example:schema"])
            .prop_map(Value::from),
        1 => prop::sample::select(vec!["/relative", "", "not a uri", "http://"]).prop_map(Value::from),
        1 => json_leaf(),
    ]
}

fn content_type_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec!["application/json", "text/plain", "application/octet-stream"])
            .prop_map(Value::from),
        1 => json_leaf(),
    ]
}

fn data_base64() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| Value::from(base64::engine::general_purpose::STANDARD.encode(b))),
        1 => prop::sample::select(vec!["%%%", "", "AA", "AA=="]).prop_map(Value::from),
        1 => json_leaf(),
    ]
}

/// Extension names: valid ones, and each way to break the rule (upper case, `_`, `-`, empty,
/// the reserved `data`), plus `detail-type` (EventBridge's marker).
fn extension_name() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => "[a-z0-9]{1,10}",
        2 => "[a-zA-Z0-9_-]{0,10}",
        1 => "[a-z]{1,4}[_-][a-z]{1,4}",
        1 => prop::sample::select(vec!["data", "", "Bad_Name", "BAD", "traceParent", "detail-type"])
            .prop_map(str::to_owned),
    ]
}

/// Extension values: strings, booleans, integers inside and outside 32 bits (past 2^31 and
/// 2^40), floats, objects, arrays, null.
fn extension_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => text().prop_map(Value::from),
        3 => any::<bool>().prop_map(Value::from),
        6 => any::<i32>().prop_map(Value::from),
        1 => (1i64 << 31..1i64 << 33).prop_map(Value::from),
        1 => prop::sample::select(vec![1i64 << 40, -(1i64 << 40), i64::from(i32::MIN) - 1])
            .prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => prop::sample::select(vec![1.5f64, 3.0, -0.25]).prop_map(Value::from),
        1 => json_value(),
        1 => Just(Value::Null),
    ]
}

/// A JSON object built from CloudEvents attributes, valid or not, and extensions.
fn structured_object() -> impl Strategy<Value = Map<String, Value>> {
    (
        (specversion(), required(), required(), required()),
        (
            prop::option::weighted(0.3, time()),
            prop::option::weighted(0.3, dataschema()),
            prop::option::weighted(0.3, text().prop_map(Value::from)),
            prop::option::weighted(0.3, content_type_value()),
        ),
        (
            prop::option::weighted(0.3, json_value()),
            prop::option::weighted(0.15, data_base64()),
        ),
        prop::collection::vec((extension_name(), extension_value()), 0..3),
    )
        .prop_map(
            |((sv, id, source, ty), (time, schema, subject, ct), (data, data64), extensions)| {
                let mut map = Map::new();
                for (name, value) in [
                    ("specversion", sv),
                    ("id", id),
                    ("source", source),
                    ("type", ty),
                    ("time", time),
                    ("dataschema", schema),
                    ("subject", subject),
                    ("datacontenttype", ct),
                    ("data", data),
                    ("data_base64", data64),
                ] {
                    if let Some(value) = value {
                        map.insert(name.to_owned(), value);
                    }
                }
                for (name, value) in extensions {
                    map.insert(name, value);
                }
                map
            },
        )
}

/// Mostly objects; now and then another JSON value (which both adapters refuse).
fn structured_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => structured_object().prop_map(Value::Object),
        1 => json_value(),
    ]
}

// --- generated binary-mode events -----------------------------------------------------------

/// What a `ce-*` value must percent-encode (HTTP binding 1.0.2 §3.1.3.2): space, `"`, `%`, and
/// everything outside printable ASCII (controls, DEL, non-ASCII as UTF-8).
const CE_HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// How a sender writes a `ce-*` value: encoding what it must, encoding everything it may, or as
/// an RFC 7230 quoted-string around the encoded value.
#[derive(Debug, Clone, Copy)]
enum HeaderEncoding {
    Minimal,
    Everything,
    Quoted,
}

fn encode_header(value: &str, how: HeaderEncoding) -> HeaderValue {
    let encoded = match how {
        HeaderEncoding::Minimal => utf8_percent_encode(value, CE_HEADER_ESCAPES).to_string(),
        HeaderEncoding::Everything => utf8_percent_encode(value, NON_ALPHANUMERIC).to_string(),
        HeaderEncoding::Quoted => {
            let inner = utf8_percent_encode(value, CE_HEADER_ESCAPES).to_string();
            format!("\"{}\"", inner.replace('\\', "\\\\"))
        }
    };
    HeaderValue::from_str(&encoded).expect("percent-encoded text is a valid header value")
}

/// Attributes as strings, as binary mode carries them (`datacontenttype` apart: binary mode
/// sends it as `Content-Type`).
#[derive(Debug, Clone)]
struct StringAttributes {
    members: BTreeMap<String, String>,
    content_type: Option<&'static str>,
    encoding: HeaderEncoding,
}

fn string_required() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        30 => text().prop_map(Some),
        1 => Just(Some(String::new())),
        1 => Just(None),
    ]
}

/// Extension names that can follow `ce-` in a header name (which HTTP lowercases), minus the
/// names binary mode reserves for itself.
fn header_extension_name() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => "[a-z0-9]{1,8}",
        2 => "[a-z0-9_.-]{0,6}",
        1 => "[a-z]{1,4}[_-][a-z]{1,4}",
    ]
    .prop_filter("reserved in binary mode", |n| {
        !matches!(n.as_str(), "data" | "data_base64" | "datacontenttype")
    })
}

fn string_attributes() -> impl Strategy<Value = StringAttributes> {
    (
        (
            prop_oneof![
                30 => Just(Some("1.0".to_owned())),
                1 => prop::sample::select(vec!["0.3", "", "1.0 ", "1"]).prop_map(|s| Some(s.to_owned())),
                1 => Just(None),
            ],
            string_required(),
            string_required(),
            string_required(),
        ),
        (
            prop::option::weighted(
                0.3,
                prop::sample::select(vec![
                    "2020-01-02T03:04:05Z",
                    "1985-04-12T23:20:50.52-05:00",
                    "2020-13-01T00:00:00Z",
                    "soon",
                ]),
            ),
            prop::option::weighted(
                0.3,
                prop::sample::select(vec!["https://example.com/s", "urn:x:y", "/rel", "a b"]),
            ),
            prop::option::weighted(0.3, text()),
        ),
        prop::collection::vec((header_extension_name(), text()), 0..3),
        // `datacontenttype` travels as `Content-Type`, as it is (binding §3.1.1): parameters may
        // hold `%`, quotes and non-ASCII.
        prop::option::weighted(
            0.3,
            prop::sample::select(vec![
                "application/json",
                "text/plain",
                "text/plain; charset=utf-8",
                "application/octet-stream",
                "application/json; profile=\"https://example.com/a%20b\"",
                "text/plain; x=100%25",
                "text/plain; x=%FF",
                "text/plain; x=\"caf\u{e9}\"",
            ]),
        ),
        prop_oneof![
            Just(HeaderEncoding::Minimal),
            Just(HeaderEncoding::Everything),
            Just(HeaderEncoding::Quoted),
        ],
    )
        .prop_map(
            |((sv, id, source, ty), (time, schema, subject), extensions, content_type, encoding)| {
                let mut members = BTreeMap::new();
                for (name, value) in [
                    ("specversion", sv),
                    ("id", id),
                    ("source", source),
                    ("type", ty),
                    ("time", time.map(str::to_owned)),
                    ("dataschema", schema.map(str::to_owned)),
                    ("subject", subject),
                ] {
                    if let Some(value) = value {
                        members.insert(name.to_owned(), value);
                    }
                }
                members.extend(extensions);
                StringAttributes {
                    members,
                    content_type,
                    encoding,
                }
            },
        )
}

impl StringAttributes {
    fn as_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.members {
            let name = HeaderName::from_bytes(format!("ce-{name}").as_bytes())
                .expect("generated names are header tokens");
            headers.insert(name, encode_header(value, self.encoding));
        }
        if let Some(ct) = self.content_type {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(ct).expect("a header value"),
            );
        }
        headers
    }

    fn as_json(&self) -> Vec<u8> {
        let mut map: Map<String, Value> = self
            .members
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        if let Some(ct) = self.content_type {
            map.insert("datacontenttype".to_owned(), Value::from(ct));
        }
        serde_json::to_vec(&map).expect("a map serialises")
    }
}

/// A binary-mode message in structured-mode words: `(header ce-x)` is `(member `x`)`.
fn as_structured_message(message: &str) -> String {
    let Some(start) = message.find("(header ce-") else {
        return message.to_owned();
    };
    let name_at = start + "(header ce-".len();
    let Some(len) = message[name_at..].find(')') else {
        return message.to_owned();
    };
    let name = &message[name_at..name_at + len];
    format!(
        "{}(member `{name}`){}",
        &message[..start],
        &message[name_at + len + 1..]
    )
}

fn http_binary(headers: &HeaderMap) -> Verdict {
    verdict(decode_events(headers, Bytes::new()).map(|events| {
        assert_eq!(events.len(), 1, "binary mode gives one event");
        events.into_iter().next().expect("one event")
    }))
}

// --- generated Lambda HTTP events -----------------------------------------------------------

const FIXTURES: [(&str, &str); 8] = [
    (
        "apigw-v1-request",
        include_str!("../crates/fnkit-lambda/tests/data/apigw-v1-request.json"),
    ),
    (
        "apigw-v1-sam-request",
        include_str!("../crates/fnkit-lambda/tests/data/apigw-v1-sam-request.json"),
    ),
    (
        "apigw-v1-null-maps",
        include_str!("../crates/fnkit-lambda/tests/data/apigw-v1-null-maps.json"),
    ),
    (
        "apigw-v2-request",
        include_str!("../crates/fnkit-lambda/tests/data/apigw-v2-request.json"),
    ),
    (
        "apigw-v2-request-multi-value",
        include_str!("../crates/fnkit-lambda/tests/data/apigw-v2-request-multi-value.json"),
    ),
    (
        "function-url-request",
        include_str!("../crates/fnkit-lambda/tests/data/function-url-request.json"),
    ),
    (
        "alb-request-headers-only",
        include_str!("../crates/fnkit-lambda/tests/data/alb-request-headers-only.json"),
    ),
    (
        "alb-request-multivalue-headers",
        include_str!("../crates/fnkit-lambda/tests/data/alb-request-multivalue-headers.json"),
    ),
];

/// Which shape a fixture has, for where a mutation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    RestV1,
    /// HTTP API and Function URL (payload format 2.0).
    V2,
    AlbSingle,
    AlbMulti,
}

fn shape_of(fixture: &str) -> Shape {
    if fixture.starts_with("apigw-v1") {
        Shape::RestV1
    } else if fixture.starts_with("alb-request-multivalue") {
        Shape::AlbMulti
    } else if fixture.starts_with("alb") {
        Shape::AlbSingle
    } else {
        Shape::V2
    }
}

#[derive(Debug, Clone)]
enum BodyCase {
    Keep,
    Absent,
    Text(String),
    /// Bytes, sent base64-encoded with `isBase64Encoded: true`.
    Base64(Vec<u8>),
    /// Any text with `isBase64Encoded: true`: valid base64 or not.
    RawBase64(String),
}

#[derive(Debug, Clone)]
struct HttpEventCase {
    fixture: usize,
    method: &'static str,
    path: Option<String>,
    query: Vec<(String, String)>,
    raw_query: String,
    headers: Vec<(String, String)>,
    traceparent_name: &'static str,
    traceparents: Vec<String>,
    tracestates: Vec<String>,
    cookies: Option<Vec<String>>,
    /// A multi-value query name with no values (`"empty": []`), where the source has such a map.
    empty_query_name: bool,
    body: BodyCase,
}

fn hex(len: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).expect("a valid regex")
}

/// `traceparent` values: well formed, each way to be malformed, and noise.
fn traceparent() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (hex(32), hex(16), prop::sample::select(vec!["00", "01"]))
            .prop_map(|(t, p, f)| format!("00-{t}-{p}-{f}")),
        1 => (hex(32), hex(16)).prop_map(|(t, p)| format!("00-{}-{p}-01", t.to_uppercase())),
        1 => hex(16).prop_map(|p| format!("00-{}-{p}-01", "0".repeat(32))),
        1 => hex(32).prop_map(|t| format!("00-{t}-{}-01", "0".repeat(16))),
        1 => (hex(32), hex(16)).prop_map(|(t, p)| format!("ff-{t}-{p}-01")),
        1 => (hex(32), hex(16)).prop_map(|(t, p)| format!("00-{t}-{p}-01-extra")),
        1 => (hex(32), hex(16), "[a-z0-9-]{0,6}").prop_map(|(t, p, rest)| format!("cc-{t}-{p}-01-{rest}")),
        1 => (hex(32), hex(16)).prop_map(|(t, p)| format!("cc-{t}-{p}-01x")),
        1 => (hex(31), hex(17)).prop_map(|(t, p)| format!("00-{t}-{p}-01")),
        1 => (hex(32), hex(16)).prop_map(|(t, p)| format!(" 00-{t}-{p}-01")),
        1 => "[ -~]{0,60}",
    ]
}

fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[ -~]{0,16}",
        1 => "\\PC{0,8}",
        1 => "[\\x00-\\x7f]{0,6}",
    ]
}

fn http_event_case() -> impl Strategy<Value = HttpEventCase> {
    let body = prop_oneof![
        1 => Just(BodyCase::Keep),
        1 => Just(BodyCase::Absent),
        2 => "\\PC{0,24}".prop_map(BodyCase::Text),
        2 => prop::collection::vec(any::<u8>(), 0..24).prop_map(BodyCase::Base64),
        1 => "[A-Za-z0-9+/=%]{0,12}".prop_map(BodyCase::RawBase64),
    ];
    (
        (
            0..FIXTURES.len(),
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
            prop::option::weighted(
                0.7,
                prop_oneof![
                    3 => "/[a-zA-Z0-9/._~%-]{0,20}",
                    1 => "\\PC{0,12}",
                    1 => prop::sample::select(vec!["", "//x", "/a%2Fb", "/é", "/?#", "no-slash", "/ "])
                        .prop_map(str::to_owned),
                ],
            ),
            prop::collection::vec(("\\PC{0,6}", "\\PC{0,8}"), 0..3),
            prop_oneof![
                "[a-zA-Z0-9=&%+]{0,16}",
                "\\PC{0,12}",
                "[ -~]{0,12}",
            ],
        ),
        (
            prop::collection::vec(
                (
                    "[a-z][a-z0-9-]{0,10}".prop_filter("trace headers are set apart", |n| {
                        !matches!(n.as_str(), "traceparent" | "tracestate" | "cookie")
                    }),
                    header_text(),
                ),
                0..4,
            ),
            prop::sample::select(vec!["traceparent", "Traceparent", "TRACEPARENT"]),
            prop_oneof![
                1 => Just(Vec::new()),
                6 => traceparent().prop_map(|tp| vec![tp]),
                1 => prop::collection::vec(traceparent(), 2..3),
            ],
            prop::collection::vec(
                prop_oneof![
                    4 => "[a-z0-9]{1,6}=[a-z0-9]{1,6}",
                    1 => "[ -~]{0,10}",
                    1 => Just("é=1".to_owned()),
                ],
                0..3,
            ),
            prop::option::weighted(0.3, prop::collection::vec("[ -~]{0,12}", 0..3)),
            prop::bool::weighted(0.2),
            body,
        ),
    )
        .prop_map(
            |(
                (fixture, method, path, query, raw_query),
                (headers, traceparent_name, traceparents, tracestates, cookies, empty_query_name, body),
            )| HttpEventCase {
                fixture,
                method,
                path,
                query,
                raw_query,
                headers,
                traceparent_name,
                traceparents,
                tracestates,
                cookies,
                empty_query_name,
                body,
            },
        )
}

/// Sets `payload[key]` (a JSON object, created when null or absent) `[name] = value`.
fn put(payload: &mut Value, key: &str, name: &str, value: Value) {
    let slot = &mut payload[key];
    if !slot.is_object() {
        *slot = json!({});
    }
    slot[name] = value;
}

impl HttpEventCase {
    fn shape(&self) -> Shape {
        shape_of(FIXTURES[self.fixture].0)
    }

    /// Whether each header of the event holds one value (repeated ones comma-joined, as API
    /// Gateway HTTP APIs and ALB without multi-value headers send them).
    fn single_valued(&self) -> bool {
        matches!(self.shape(), Shape::V2 | Shape::AlbSingle)
    }

    /// The values of `name` as the event carries them.
    fn values_sent(&self, values: &[String]) -> Vec<String> {
        if self.single_valued() && !values.is_empty() {
            vec![values.join(",")]
        } else {
            values.to_vec()
        }
    }

    /// The fixture with the mutations applied.
    fn payload(&self) -> Value {
        let mut p: Value = serde_json::from_str(FIXTURES[self.fixture].1).expect("fixtures parse");
        let shape = self.shape();
        match shape {
            Shape::RestV1 => {
                p["httpMethod"] = json!(self.method);
                if let Some(path) = &self.path {
                    p["path"] = json!(path);
                }
                if !self.query.is_empty() {
                    let single: Map<String, Value> = self
                        .query
                        .iter()
                        .map(|(k, v)| (k.clone(), json!(v)))
                        .collect();
                    let mut multi = Map::new();
                    for (k, v) in &self.query {
                        multi
                            .entry(k.clone())
                            .or_insert_with(|| json!([]))
                            .as_array_mut()
                            .expect("an array")
                            .push(json!(v));
                    }
                    p["queryStringParameters"] = Value::Object(single);
                    p["multiValueQueryStringParameters"] = Value::Object(multi);
                }
            }
            Shape::V2 => {
                p["requestContext"]["http"]["method"] = json!(self.method);
                if let Some(path) = &self.path {
                    p["rawPath"] = json!(path);
                }
                p["rawQueryString"] = json!(self.raw_query);
                if let Some(cookies) = &self.cookies {
                    p["cookies"] = json!(cookies);
                }
            }
            Shape::AlbSingle | Shape::AlbMulti => {
                p["httpMethod"] = json!(self.method);
                if let Some(path) = &self.path {
                    p["path"] = json!(path);
                }
                if !self.query.is_empty() {
                    let key = if shape == Shape::AlbMulti {
                        "multiValueQueryStringParameters"
                    } else {
                        "queryStringParameters"
                    };
                    let map: Map<String, Value> = self
                        .query
                        .iter()
                        .map(|(k, v)| {
                            let v = if shape == Shape::AlbMulti {
                                json!([v])
                            } else {
                                json!(v)
                            };
                            (k.clone(), v)
                        })
                        .collect();
                    p[key] = Value::Object(map);
                }
            }
        }
        if self.empty_query_name && matches!(shape, Shape::RestV1 | Shape::AlbMulti) {
            put(
                &mut p,
                "multiValueQueryStringParameters",
                "empty",
                json!([]),
            );
        }
        let mut headers: Vec<(&str, Vec<String>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), vec![v.clone()]))
            .collect();
        if !self.traceparents.is_empty() {
            headers.push((self.traceparent_name, self.values_sent(&self.traceparents)));
        }
        if !self.tracestates.is_empty() {
            headers.push(("tracestate", self.values_sent(&self.tracestates)));
        }
        for (name, values) in headers {
            match shape {
                Shape::RestV1 => {
                    let last = values.last().cloned().unwrap_or_default();
                    put(&mut p, "headers", name, json!(last));
                    put(&mut p, "multiValueHeaders", name, json!(values));
                }
                Shape::AlbMulti => put(&mut p, "multiValueHeaders", name, json!(values)),
                Shape::V2 | Shape::AlbSingle => put(&mut p, "headers", name, json!(values[0])),
            }
        }
        let engine = base64::engine::general_purpose::STANDARD;
        match &self.body {
            BodyCase::Keep => {}
            BodyCase::Absent => {
                p["body"] = Value::Null;
                p["isBase64Encoded"] = json!(false);
            }
            BodyCase::Text(t) => {
                p["body"] = json!(t);
                p["isBase64Encoded"] = json!(false);
            }
            BodyCase::Base64(bytes) => {
                p["body"] = json!(engine.encode(bytes));
                p["isBase64Encoded"] = json!(true);
            }
            BodyCase::RawBase64(t) => {
                p["body"] = json!(t);
                p["isBase64Encoded"] = json!(true);
            }
        }
        p
    }

    /// The body the handler must get, or `None` when the event's base64 is not valid (the
    /// event must then be refused).
    fn expected_body(&self, payload: &Value) -> Option<Vec<u8>> {
        let engine = base64::engine::general_purpose::STANDARD;
        let text = payload["body"].as_str().unwrap_or("");
        if payload["isBase64Encoded"].as_bool().unwrap_or(false) {
            engine.decode(text).ok()
        } else {
            Some(text.as_bytes().to_vec())
        }
    }
}

/// W3C Trace Context §3.2 written out again, independently of fnkit's parser: version, trace
/// id, parent id and flags as lowercase hex of 2, 32, 16 and 2 digits; version `ff` invalid; trace
/// and parent ids not all zeros; version `00` has exactly these four fields, a later version
/// may have more after a `-`.
fn w3c_traceparent(tp: &str) -> bool {
    let fields: Vec<&str> = tp.split('-').collect();
    let lower_hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    match fields.as_slice() {
        [v, t, p, f, rest @ ..] => {
            lower_hex(v, 2)
                && lower_hex(t, 32)
                && lower_hex(p, 16)
                && lower_hex(f, 2)
                && *v != "ff"
                && !zeros(t)
                && !zeros(p)
                && (*v != "00" || rest.is_empty())
        }
        _ => false,
    }
}

/// The `traceparent` and `tracestate` a request with these header values has: the one
/// `traceparent` when it is valid (a repeated one is ambiguous, and dropped), and then the
/// `tracestate` values combined as HTTP combines a repeated list header (RFC 9110 §5.3), none if
/// one is not visible ASCII.
fn expected_w3c(
    traceparents: &[String],
    tracestates: &[String],
) -> (Option<String>, Option<String>) {
    let [tp] = traceparents else {
        return (None, None);
    };
    if !w3c_traceparent(tp) {
        return (None, None);
    }
    let visible = |v: &String| v.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    let state = if tracestates.iter().all(visible) {
        let parts: Vec<&str> = tracestates
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    } else {
        None
    };
    (Some(tp.clone()), state)
}

// --- the properties ---------------------------------------------------------------------------

/// `cases` cases, or `PROPTEST_CASES` when it is set (to search longer than `make test` does).
fn config(cases: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        default
    } else {
        ProptestConfig { cases, ..default }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// One structured event, the same verdict over HTTP and on Lambda: the same event, or the
    /// same error kind and message.
    #[test]
    fn structured_events_get_the_same_verdict_on_http_and_lambda(
        value in structured_value(),
        content_type in prop::sample::select(STRUCTURED_TYPES.to_vec()),
    ) {
        prop_assume!(!eventbridge_shaped(&value));
        let body = serde_json::to_vec(&value).expect("JSON serialises");
        prop_assert_eq!(http_structured(content_type, &body), lambda(&body));
    }

    /// The same attributes as `ce-*` headers and as a structured event: the same verdict, the
    /// same event when accepted, and when refused the same kind and message but for how the
    /// attribute is named (`header ce-x` against `member `x``).
    #[test]
    fn binary_and_structured_mode_agree_on_the_same_attributes(attrs in string_attributes()) {
        let binary = http_binary(&attrs.as_headers());
        let structured = http_structured("application/cloudevents+json", &attrs.as_json());
        match (&binary, &structured) {
            (Ok(b), Ok(s)) => prop_assert_eq!(b, s),
            (Err((bk, bm)), Err((sk, sm))) => {
                prop_assert_eq!(bk, sk);
                // Without any ce-* header the request is no CloudEvent at all: another message.
                if !attrs.members.is_empty() {
                    prop_assert_eq!(&as_structured_message(bm), sm);
                }
            }
            _ => prop_assert!(false, "binary {binary:?} but structured {structured:?}"),
        }
    }

    /// A batch is accepted when each entry is, and refused naming the first entry that is not,
    /// with that entry's message.
    #[test]
    fn a_batch_is_refused_exactly_when_an_entry_is(
        entries in prop::collection::vec(structured_value(), 0..5),
    ) {
        let body = serde_json::to_vec(&entries).expect("JSON serialises");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/cloudevents-batch+json"));
        let batch = decode_events(&headers, Bytes::from(body));
        let singles: Vec<Verdict> = entries
            .iter()
            .map(|e| http_structured("application/cloudevents+json", &serde_json::to_vec(e).expect("JSON")))
            .collect();
        match singles.iter().position(Result::is_err) {
            None => {
                let events = batch.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
                let singles: Vec<Event> = singles.into_iter().map(|v| v.expect("checked")).collect();
                prop_assert_eq!(events, singles);
            }
            Some(i) => {
                let err = batch.expect_err("a batch with a bad entry is refused");
                let (kind, message) = singles[i].clone().expect_err("checked");
                prop_assert_eq!(err.kind(), kind);
                // An entry that is no object is named `an entry` rather than `a structured CloudEvent`.
                let message = message.replace("a structured CloudEvent must be", "an entry must be");
                prop_assert_eq!(err.message(), format!("batch entry {i}: {message}"));
            }
        }
    }
}

/// Arbitrary bytes, each way a request can say what it carries.
fn any_request() -> impl Strategy<Value = (HeaderMap, Vec<u8>)> {
    let content_type = prop_oneof![
        4 => prop::sample::select(vec![
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8",
            "application/cloudevents+avro",
            "application/cloudevents",
            "application/json",
            "text/plain",
            "",
        ])
        .prop_map(|s| Some(s.as_bytes().to_vec())),
        1 => header_bytes().prop_map(Some),
        1 => Just(None),
    ];
    let ce_headers = prop::collection::vec(("[a-z0-9_-]{0,8}", header_bytes()), 0..5);
    let body = prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..64),
        1 => (structured_value(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3))
            .prop_map(|(v, edits)| mutate(serde_json::to_vec(&v).expect("JSON"), &edits)),
    ];
    (content_type, any::<bool>(), ce_headers, body).prop_map(|(ct, required, extra, body)| {
        let mut headers = HeaderMap::new();
        if let Some(ct) = ct {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_bytes(&ct).expect("valid bytes"),
            );
        }
        if required {
            for (name, value) in [
                ("ce-specversion", "1.0"),
                ("ce-id", "1"),
                ("ce-source", "/s"),
                ("ce-type", "t"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        for (name, value) in extra {
            let name = HeaderName::from_bytes(format!("ce-{name}").as_bytes()).expect("a token");
            headers.append(name, HeaderValue::from_bytes(&value).expect("valid bytes"));
        }
        (headers, body)
    })
}

/// Any bytes a `HeaderValue` may hold: visible ASCII, space, tab, obs-text.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => 0x20u8..=0x7e,
        2 => 0x80u8..=0xff,
        1 => prop::sample::select(vec![b'\t', b'%', b'"', b'\\']),
    ];
    prop::collection::vec(byte, 0..24)
}

/// Replaces a few bytes (a mutated valid event reaches deeper than noise does).
fn mutate(mut bytes: Vec<u8>, edits: &[(prop::sample::Index, u8)]) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = *byte;
        }
    }
    bytes
}

/// What the decoders may answer a bad input with, and that an accepted event keeps the rules.
fn check_outcome(
    result: &Result<Vec<Event>, Error>,
    kinds: &[ErrorKind],
) -> Result<(), TestCaseError> {
    match result {
        Ok(events) => {
            for e in events {
                prop_assert!(
                    ce::validate(e).is_ok(),
                    "accepted an event that breaks a rule: {e:?}"
                );
            }
        }
        Err(e) => {
            prop_assert!(
                kinds.contains(&e.kind()),
                "unexpected kind {:?}: {e}",
                e.kind()
            );
            prop_assert!(!e.message().is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// Arbitrary bodies and headers never panic the HTTP decoding; what it accepts keeps the
    /// rules, what it refuses is a 400 or 415 kind.
    #[test]
    fn arbitrary_requests_are_decoded_or_refused_without_panic((headers, body) in any_request()) {
        let result = decode_events(&headers, Bytes::from(body));
        check_outcome(&result, &[ErrorKind::InvalidEvent, ErrorKind::UnsupportedMediaType])?;
    }

    /// Arbitrary payloads never panic the Lambda decoding, as an event or as an HTTP event.
    #[test]
    fn arbitrary_lambda_payloads_are_decoded_or_refused_without_panic(
        payload in prop_oneof![
            2 => prop::collection::vec(any::<u8>(), 0..128),
            1 => (structured_value(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3))
                .prop_map(|(v, edits)| mutate(serde_json::to_vec(&v).expect("JSON"), &edits)),
            2 => (0..FIXTURES.len(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4))
                .prop_map(|(f, edits)| mutate(FIXTURES[f].1.as_bytes().to_vec(), &edits)),
        ],
    ) {
        let event = decode_event(&payload).map(|e| vec![e]);
        check_outcome(&event, &[ErrorKind::InvalidEvent])?;
        match decode_http_event(&payload) {
            Ok(req) => prop_assert!(req.uri().path().starts_with('/'), "{}", req.uri()),
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{}", e),
        }
    }

    /// API Gateway v1/v2, ALB and Function URL events, mutated: never a panic; when one decodes,
    /// the request has the method, body, trace headers and cookies the event had, and the trace
    /// context read from its headers (the one function the HTTP runtime reads them with too)
    /// keeps a valid `traceparent` with its `tracestate` and drops an invalid or repeated one.
    #[test]
    fn lambda_http_events_carry_their_headers_and_trace_context(case in http_event_case()) {
        let payload = case.payload();
        let bytes = serde_json::to_vec(&payload).expect("JSON serialises");
        let result = decode_http_event(&bytes);
        let expected_body = case.expected_body(&payload);
        let req = match result {
            Ok(req) => req,
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{}", e);
                return Ok(());
            }
        };
        let Some(body) = expected_body else {
            return Err(TestCaseError::fail(format!("invalid base64 accepted: {:?}", payload["body"])));
        };
        prop_assert_eq!(req.method().as_str(), case.method);
        prop_assert_eq!(req.body().as_bytes(), &body[..]);
        prop_assert!(req.uri().path().starts_with('/'));
        // A name without values adds no pair to the query.
        prop_assert!(!req.uri().query().unwrap_or("").contains("empty="), "{}", req.uri());
        let traceparents = case.values_sent(&case.traceparents);
        let tracestates = case.values_sent(&case.tracestates);
        let got: Vec<&[u8]> = req.headers().get_all("traceparent").iter().map(HeaderValue::as_bytes).collect();
        let sent: Vec<&[u8]> = traceparents.iter().map(|v| v.as_bytes()).collect();
        prop_assert_eq!(got, sent);
        if let Some(cookies) = case.cookies.as_ref().filter(|c| !c.is_empty() && case.shape() == Shape::V2) {
            let joined = cookies.join("; ");
            prop_assert_eq!(req.headers()["cookie"].as_bytes(), joined.as_bytes());
        }
        let trace = trace_context(TraceInput { headers: Some(req.headers()), ..TraceInput::default() });
        let (traceparent, tracestate) = expected_w3c(&traceparents, &tracestates);
        prop_assert_eq!(&trace.traceparent, &traceparent);
        prop_assert_eq!(&trace.tracestate, &tracestate);
        if let Some(tp) = &traceparent {
            let trace_id = trace.trace_id();
            prop_assert_eq!(trace_id.as_ref().map(fnkit_core::TraceId::as_str), Some(&tp[3..35]));
        }
    }
}

// --- the generators reach what they are meant to ---------------------------------------------

fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect()
}

/// A property is only as good as its inputs: each generator must give accepted and refused
/// inputs both, and HTTP events that decode with a trace context kept and dropped.
#[test]
fn the_generators_reach_both_verdicts() {
    let values = sample(structured_value(), 400);
    let accepted = values
        .iter()
        .filter(|v| lambda(&serde_json::to_vec(v).expect("JSON")).is_ok())
        .count();
    eprintln!("structured: {accepted} of 400 accepted");
    assert!(
        (80..=320).contains(&accepted),
        "structured: {accepted} of 400 accepted"
    );

    let attrs = sample(string_attributes(), 400);
    let accepted = attrs
        .iter()
        .filter(|a| http_binary(&a.as_headers()).is_ok())
        .count();
    eprintln!("binary: {accepted} of 400 accepted");
    assert!(
        (80..=320).contains(&accepted),
        "binary: {accepted} of 400 accepted"
    );

    let cases = sample(http_event_case(), 400);
    let (mut decoded, mut kept, mut dropped) = (0, 0, 0);
    for case in &cases {
        let bytes = serde_json::to_vec(&case.payload()).expect("JSON");
        if let Ok(req) = decode_http_event(&bytes) {
            decoded += 1;
            let trace = trace_context(TraceInput {
                headers: Some(req.headers()),
                ..TraceInput::default()
            });
            if trace.traceparent.is_some() {
                kept += 1;
            } else if !case.traceparents.is_empty() {
                dropped += 1;
            }
        }
    }
    eprintln!("HTTP events: {decoded} of 400 decoded, traceparent kept {kept}, dropped {dropped}");
    assert!(decoded >= 200, "HTTP events: {decoded} of 400 decoded");
    assert!(
        kept >= 50 && dropped >= 50,
        "HTTP events: traceparent kept {kept}, dropped {dropped}"
    );
}

// --- fixed cases from the issue ----------------------------------------------------------------

/// The inputs the issue named, each refused over HTTP and on Lambda with the same kind and
/// message (and, where binary mode can say it, by binary mode with the same kind).
#[test]
fn the_issues_cases_are_refused_alike_on_http_and_lambda() {
    let base = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
    for (body, message) in [
        (
            format!(r#"{{{base},"Bad_Name":1}}"#),
            "attribute name `Bad_Name` is invalid: names use only a-z and 0-9 (member `Bad_Name`)",
        ),
        (
            format!(r#"{{{base},"big":1099511627776}}"#),
            "extension big = 1099511627776 is not a string, boolean or 32-bit integer (member `big`)",
        ),
        (
            r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#.to_owned(),
            r#"specversion "0.3" is not supported (member `specversion`); use "1.0""#,
        ),
        (
            format!(r#"{{{base},"data":1,"data_base64":"AA=="}}"#),
            "an event may carry `data` or `data_base64`, not both",
        ),
        (
            r#"{"specversion":"1.0","id":"1","type":"t"}"#.to_owned(),
            "missing required attribute source (member `source`)",
        ),
        (
            r#"{"specversion":"1.0","id":"","source":"/s","type":"t"}"#.to_owned(),
            "empty required attribute id (member `id`)",
        ),
    ] {
        let expected: Verdict = Err((ErrorKind::InvalidEvent, message.to_owned()));
        assert_eq!(lambda(body.as_bytes()), expected, "Lambda: {body}");
        for ct in STRUCTURED_TYPES {
            assert_eq!(http_structured(ct, body.as_bytes()), expected, "HTTP {ct}: {body}");
        }
    }

    // Binary mode: the same rules, the attribute named as a header.
    let binary = |pairs: &[(&'static str, &'static str)]| {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.insert(*k, HeaderValue::from_static(v));
        }
        http_binary(&headers)
    };
    let base = [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "/s"),
        ("ce-type", "t"),
    ];
    for (extra, message) in [
        (
            ("ce-bad_name", "1"),
            "attribute name `bad_name` is invalid: names use only a-z and 0-9 (header ce-bad_name)",
        ),
        (
            ("ce-specversion", "0.3"),
            r#"specversion "0.3" is not supported (header ce-specversion); use "1.0""#,
        ),
        (
            ("ce-source", ""),
            "empty required attribute source (header ce-source)",
        ),
        (("ce-id", ""), "empty required attribute id (header ce-id)"),
    ] {
        let mut pairs = base.to_vec();
        pairs.retain(|(k, _)| *k != extra.0);
        pairs.push(extra);
        assert_eq!(
            binary(&pairs),
            Err((ErrorKind::InvalidEvent, message.to_owned())),
            "{extra:?}"
        );
    }
}

/// The trace rule on fixed inputs, so that the oracle above is itself checked.
#[test]
fn the_w3c_oracle_agrees_with_the_spec_examples() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert!(w3c_traceparent(tp));
    assert!(w3c_traceparent(
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what"
    ));
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        "",
    ] {
        assert!(!w3c_traceparent(bad), "{bad}");
    }
    let states = ["a=1".to_owned(), " ".to_owned(), "b=2".to_owned()];
    assert_eq!(
        expected_w3c(&[tp.to_owned()], &states),
        (Some(tp.to_owned()), Some("a=1,b=2".to_owned()))
    );
    assert_eq!(
        expected_w3c(&[tp.to_owned(), tp.to_owned()], &states),
        (None, None)
    );
}
