//! The HTTP handler shape on Lambda: API Gateway REST (v1), HTTP API (v2), ALB and Function URL
//! events to `http::Request`, and the handler's `http::Response` back in the shape that event
//! source expects (docs/platforms.md §2.1–2.7).

use aws_lambda_events::encodings::Body as AwsBody;
use aws_lambda_events::event::alb::{AlbTargetGroupRequest, AlbTargetGroupResponse};
use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyResponse, ApiGatewayV2httpRequest,
    ApiGatewayV2httpResponse,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{Method, Request, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};
use serde::de::IgnoredAny;
use serde::Deserialize;

use fnkit_core::adapter::{trace_context, HttpFunction, TraceInput};

use crate::invoke::Answer;
use crate::stream::Streamed;
use fnkit_core::{Body, Context, Error, TraceContext};

/// Where an HTTP event came from, told apart by explicit markers, not by which type happens to
/// deserialise (§2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// API Gateway REST API, or HTTP API with payload format 1.0.
    RestV1,
    /// API Gateway HTTP API, payload format 2.0.
    HttpV2,
    /// A Lambda Function URL (payload format 2.0, `*.lambda-url.<region>.on.aws`).
    FunctionUrl,
    /// An Application Load Balancer target group; `multi` when multi-value headers are on.
    Alb {
        /// Multi-value headers are enabled on the target group.
        multi: bool,
    },
}

#[derive(Deserialize)]
struct Probe {
    version: Option<String>,
    #[serde(rename = "httpMethod")]
    http_method: Option<IgnoredAny>,
    #[serde(rename = "multiValueHeaders")]
    multi_value_headers: Option<IgnoredAny>,
    #[serde(rename = "requestContext")]
    request_context: Option<ProbeContext>,
}

#[derive(Deserialize)]
struct ProbeContext {
    http: Option<IgnoredAny>,
    elb: Option<IgnoredAny>,
    #[serde(rename = "domainName")]
    domain_name: Option<String>,
    #[serde(rename = "connectionId")]
    connection_id: Option<IgnoredAny>,
}

/// Tells which HTTP event source `payload` comes from.
pub(crate) fn detect(payload: &[u8]) -> Result<Source, Error> {
    let probe: Probe = serde_json::from_slice(payload).map_err(|e| {
        Error::invalid_input(format!(
            "the event is not an HTTP event (malformed JSON: {e})"
        ))
    })?;
    let ctx = probe.request_context.as_ref();
    if probe.version.as_deref() == Some("2.0") && ctx.is_some_and(|c| c.http.is_some()) {
        let url = ctx
            .and_then(|c| c.domain_name.as_deref())
            .is_some_and(|d| d.contains(".lambda-url.") && d.ends_with(".on.aws"));
        return Ok(if url {
            Source::FunctionUrl
        } else {
            Source::HttpV2
        });
    }
    if ctx.is_some_and(|c| c.elb.is_some()) {
        return Ok(Source::Alb {
            multi: probe.multi_value_headers.is_some(),
        });
    }
    if ctx.is_some_and(|c| c.connection_id.is_some()) {
        return Err(Error::invalid_input(
            "API Gateway WebSocket events are not supported by HTTP handlers; use a typed handler",
        ));
    }
    if probe.http_method.is_some() {
        return Ok(Source::RestV1);
    }
    Err(Error::invalid_input(
        "the event is not an API Gateway, ALB or Function URL request; an HTTP handler serves only those",
    ))
}

/// Runs an HTTP handler on an HTTP event payload and renders its response for the source. A
/// streamed body is streamed where the source can take a stream (Function URLs and API Gateway
/// REST APIs, docs/platforms.md §1.7) and collected into one payload where it cannot (HTTP APIs,
/// ALBs).
pub(crate) async fn handle(
    f: &dyn HttpFunction,
    payload: Bytes,
    ctx: Context,
    trace: &mut TraceContext,
) -> Result<Answer, Error> {
    let decoded = detect(&payload).and_then(|source| Ok((source, to_request(source, &payload)?)));
    let (source, req) = match decoded {
        Ok(decoded) => decoded,
        Err(e) => {
            fnkit_core::adapter::observe::adopt(trace, ctx.trace());
            return Err(e);
        }
    };
    let ctx = with_request_headers(ctx, req.headers());
    fnkit_core::adapter::observe::adopt(trace, ctx.trace());
    let resp = f.call(req, ctx).await?;
    if !resp.body().is_stream() {
        return to_payload(source, resp).map(Answer::Payload);
    }
    let (parts, mut body) = resp.into_parts();
    if matches!(source, Source::FunctionUrl | Source::RestV1) {
        let prelude = stream_prelude(&parts)?;
        let first = crate::stream::first_chunk(&mut body).await?;
        let mut start = bytes::BytesMut::from(&prelude[..]);
        start.extend_from_slice(first.as_deref().unwrap_or_default());
        return Ok(Answer::Stream(Streamed {
            content_type: crate::stream::HTTP_INTEGRATION,
            first: start.freeze(),
            rest: body,
        }));
    }
    let whole = body.collect().await?;
    to_payload(source, Response::from_parts(parts, Body::from(whole))).map(Answer::Payload)
}

/// The head of a streamed HTTP response: `{"statusCode","headers","cookies"}` (one value per
/// header, `Set-Cookie` in `cookies`), then eight NUL bytes that end it.
fn stream_prelude(parts: &http::response::Parts) -> Result<Vec<u8>, Error> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Prelude<'a> {
        status_code: u16,
        #[serde(with = "http_serde_headers")]
        headers: &'a HeaderMap,
        cookies: Vec<&'a str>,
    }
    let headers = joined_headers(&parts.headers);
    let prelude = Prelude {
        status_code: parts.status.as_u16(),
        headers: &headers,
        cookies: parts
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect(),
    };
    let mut out = serde_json::to_vec(&prelude).map_err(Error::internal)?;
    out.extend_from_slice(&[0; 8]);
    Ok(out)
}

/// Headers as a JSON object of strings (values that are not text are left out).
mod http_serde_headers {
    use http::HeaderMap;
    use serde::ser::SerializeMap;

    pub(super) fn serialize<S: serde::Serializer>(h: &&HeaderMap, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(h.len()))?;
        for (name, value) in h.iter() {
            if let Ok(text) = value.to_str() {
                map.serialize_entry(name.as_str(), text)?;
            }
        }
        map.end()
    }
}

/// The context with the request's headers and the trace they carry (the invocation's X-Ray
/// header first), read by the rule every platform uses; the invocation's span id stays.
fn with_request_headers(ctx: Context, headers: &HeaderMap) -> Context {
    let trace = trace_context(TraceInput {
        headers: Some(headers),
        xray: ctx.trace().xray_trace_id.as_deref(),
        span_id: ctx.trace().span.map(|s| s.span_id),
        ..TraceInput::default()
    });
    ctx.with_trace(trace).with_headers(headers.clone())
}

/// Turns an HTTP event into the request the handler sees: origin-form URI (path and query),
/// headers (with cookies), body decoded from base64 where the event says so.
pub(crate) fn to_request(source: Source, payload: &[u8]) -> Result<Request<Body>, Error> {
    let bad = |e: serde_json::Error| Error::invalid_input(format!("malformed HTTP event: {e}"));
    let (method, path, query, headers, body, base64) = match source {
        Source::RestV1 => {
            let e: ApiGatewayProxyRequest = serde_json::from_slice(payload).map_err(bad)?;
            let headers = pick_headers(e.multi_value_headers, e.headers);
            let query = encode_decoded_query(pick_query(
                &e.multi_value_query_string_parameters,
                &e.query_string_parameters,
            ));
            let path = e.path.unwrap_or_else(|| "/".to_owned());
            (
                e.http_method,
                path,
                query,
                headers,
                e.body,
                e.is_base64_encoded,
            )
        }
        Source::HttpV2 | Source::FunctionUrl => {
            let e: ApiGatewayV2httpRequest = serde_json::from_slice(payload).map_err(bad)?;
            let mut headers = e.headers;
            if let Some(cookies) = e.cookies.filter(|c| !c.is_empty()) {
                // §2.4: the Cookie header was moved into `cookies[]`; put it back.
                let joined = cookies.join("; ");
                let value = HeaderValue::from_str(&joined)
                    .map_err(|_| Error::invalid_input("a cookie is not a valid header value"))?;
                headers.insert(COOKIE, value);
            }
            let path = e
                .raw_path
                .or(e.request_context.http.path)
                .unwrap_or_else(|| "/".to_owned());
            let query = e.raw_query_string.unwrap_or_default();
            (
                e.request_context.http.method,
                path,
                query,
                headers,
                e.body,
                e.is_base64_encoded,
            )
        }
        Source::Alb { .. } => {
            let e: AlbTargetGroupRequest = serde_json::from_slice(payload).map_err(bad)?;
            let headers = pick_headers(e.multi_value_headers, e.headers);
            // §2.6: ALB passes query values as the client sent them (still percent-encoded).
            let query = join_raw_query(pick_query(
                &e.multi_value_query_string_parameters,
                &e.query_string_parameters,
            ));
            let path = e.path.unwrap_or_else(|| "/".to_owned());
            (
                e.http_method,
                path,
                query,
                headers,
                e.body,
                e.is_base64_encoded,
            )
        }
    };
    let body = match body {
        None => Bytes::new(),
        Some(b) if base64 => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map(Bytes::from)
            .map_err(|e| {
                Error::invalid_input(format!("the event body is not valid base64: {e}"))
            })?,
        Some(b) => Bytes::from(b),
    };
    build_request(method, &path, &query, headers, body)
}

fn build_request(
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Body>, Error> {
    let mut target = String::with_capacity(path.len() + query.len() + 2);
    if !path.starts_with('/') {
        target.push('/');
    }
    target.extend(utf8_percent_encode(path, URI_UNSAFE));
    if !query.is_empty() {
        target.push('?');
        target.extend(utf8_percent_encode(query, URI_UNSAFE));
    }
    let uri: http::Uri = target
        .parse()
        .map_err(|e| Error::invalid_input(format!("the event's path does not form a URI: {e}")))?;
    let mut req = Request::new(Body::from(body));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    Ok(req)
}

/// Characters that cannot appear in a URI path or query as they are. `%` is kept: what arrives
/// encoded stays encoded, byte for byte.
const URI_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'\\')
    .add(b'^');

/// What to encode in a query component: all but RFC 3986 unreserved characters.
const QUERY_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn sorted_pairs(q: &QueryMap) -> Vec<(String, String)> {
    // The map loses the original order; sort by name (values keep their order) so the same
    // event always gives the same URI.
    // Read through the map's serialised form, not `QueryMap::iter`: query_map 0.7's iterator
    // indexes out of bounds on a name with no values (`"multiValueQueryStringParameters":
    // {"a": []}`), which made such an event a `Panic` instead of a request. Such a name adds
    // no pair.
    if q.is_empty() {
        return Vec::new();
    }
    let Ok(serde_json::Value::Object(names)) = serde_json::to_value(q) else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for (name, values) in names {
        for value in values.as_array().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                pairs.push((name.clone(), value.to_owned()));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

/// API Gateway REST decodes query values: encode them again for the URI.
fn encode_decoded_query(q: &QueryMap) -> String {
    let mut out = String::new();
    for (k, v) in sorted_pairs(q) {
        if !out.is_empty() {
            out.push('&');
        }
        out.extend(utf8_percent_encode(&k, QUERY_COMPONENT));
        out.push('=');
        out.extend(utf8_percent_encode(&v, QUERY_COMPONENT));
    }
    out
}

/// ALB leaves query values encoded as sent: join them as they are.
fn join_raw_query(q: &QueryMap) -> String {
    let mut out = String::new();
    for (k, v) in sorted_pairs(q) {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&k);
        out.push('=');
        out.push_str(&v);
    }
    out
}

/// The multi-value query map where the source filled it (it carries every value), else the
/// single-value one.
fn pick_query<'a>(multi: &'a QueryMap, single: &'a QueryMap) -> &'a QueryMap {
    if multi.is_empty() {
        single
    } else {
        multi
    }
}

fn pick_headers(multi: HeaderMap, single: HeaderMap) -> HeaderMap {
    if multi.is_empty() {
        single
    } else {
        multi
    }
}

/// §2.7: a body is sent as text unless its type says it is binary.
pub(crate) fn is_text(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return false;
    }
    if headers
        .get("x-lambda-http-content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"text"))
    {
        return true;
    }
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media.starts_with("text")
        || [
            "application/json",
            "application/javascript",
            "application/xml",
            "application/yaml",
        ]
        .iter()
        .any(|t| media.starts_with(t))
        || ["+json", "+xml", "+yaml"]
            .iter()
            .any(|s| media.ends_with(s))
}

fn body_of(headers: &HeaderMap, body: Body) -> (AwsBody, bool) {
    let bytes = body.into_bytes();
    if is_text(headers) {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => (AwsBody::Text(text), false),
            Err(e) => (AwsBody::Binary(e.into_bytes()), true),
        }
    } else if bytes.is_empty() {
        (AwsBody::Text(String::new()), false)
    } else {
        (AwsBody::Binary(bytes.to_vec()), true)
    }
}

/// One value per header name, duplicates comma-joined; `Set-Cookie` left out.
fn joined_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        if name == SET_COOKIE {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut joined = first.as_bytes().to_vec();
        for v in values {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(v.as_bytes());
        }
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            out.insert(name.clone(), v);
        }
    }
    out
}

/// Renders the handler's response for `source`.
pub(crate) fn to_payload(source: Source, resp: Response<Body>) -> Result<Bytes, Error> {
    let (parts, body) = resp.into_parts();
    let status = i64::from(parts.status.as_u16());
    let (body, base64) = body_of(&parts.headers, body);
    let json = match source {
        Source::RestV1 => {
            // §2.3: every header in `multiValueHeaders` (so repeated Set-Cookie survive).
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status;
            r.multi_value_headers = parts.headers;
            r.body = Some(body);
            r.is_base64_encoded = base64;
            serde_json::to_vec(&r)
        }
        Source::HttpV2 | Source::FunctionUrl => {
            // §2.5: Set-Cookie only in `cookies[]`; other repeated headers comma-joined.
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status;
            r.headers = joined_headers(&parts.headers);
            r.cookies = parts
                .headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect();
            r.body = Some(body);
            r.is_base64_encoded = base64;
            serde_json::to_vec(&r)
        }
        Source::Alb { multi } => {
            // §2.6: the response uses the header map the target group is configured for.
            let mut r = AlbTargetGroupResponse::default();
            r.status_code = status;
            r.status_description = Some(match parts.status.canonical_reason() {
                Some(reason) => format!("{} {reason}", parts.status.as_u16()),
                None => parts.status.as_u16().to_string(),
            });
            if multi {
                r.multi_value_headers = parts.headers;
            } else {
                let mut headers = joined_headers(&parts.headers);
                // One value per name: only the last Set-Cookie fits (enable multi-value
                // headers on the target group for more).
                if let Some(cookie) = parts.headers.get_all(SET_COOKIE).iter().next_back() {
                    headers.insert(SET_COOKIE, cookie.clone());
                }
                r.headers = headers;
            }
            r.body = Some(body);
            r.is_base64_encoded = base64;
            serde_json::to_vec(&r)
        }
    };
    json.map(Bytes::from).map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response<Body> {
        let mut r = Response::builder().status(status);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(body.into()).unwrap()
    }

    fn payload_json(source: Source, resp: Response<Body>) -> Value {
        serde_json::from_slice(&to_payload(source, resp).unwrap()).unwrap()
    }

    #[test]
    fn sources_are_told_apart_by_their_markers() {
        assert_eq!(
            detect(&fixture("apigw-v1-request.json")).unwrap(),
            Source::RestV1
        );
        assert_eq!(
            detect(&fixture("apigw-v1-sam-request.json")).unwrap(),
            Source::RestV1
        );
        assert_eq!(
            detect(&fixture("apigw-v2-request.json")).unwrap(),
            Source::HttpV2
        );
        assert_eq!(
            detect(&fixture("function-url-request.json")).unwrap(),
            Source::FunctionUrl
        );
        assert_eq!(
            detect(&fixture("alb-request-headers-only.json")).unwrap(),
            Source::Alb { multi: false }
        );
        assert_eq!(
            detect(&fixture("alb-request-multivalue-headers.json")).unwrap(),
            Source::Alb { multi: true }
        );
        let e = detect(&fixture("eventbridge-event.json")).unwrap_err();
        assert_eq!(e.kind(), fnkit_core::ErrorKind::InvalidInput);
    }

    #[test]
    fn rest_v1_request_becomes_an_http_request() {
        let req = to_request(Source::RestV1, &fixture("apigw-v1-request.json")).unwrap();
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().path(), "/hello/world");
        assert_eq!(req.uri().query(), Some("name=me"));
        assert_eq!(
            req.headers()["host"],
            "gy415nuibc.execute-api.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn rest_v1_multi_value_query_is_encoded_again() {
        let req = to_request(
            Source::RestV1,
            &fixture("apigw-v1-request-multi-value.json"),
        )
        .unwrap();
        let q = req.uri().query().unwrap();
        assert!(q.contains("name=me&name=me2"), "{q}");
    }

    #[test]
    fn rest_v1_null_maps_deserialize() {
        // docs/conformance.md #20: every map may be null.
        let req = to_request(Source::RestV1, &fixture("apigw-v1-null-maps.json")).unwrap();
        assert_eq!(req.uri(), "/items");
        assert!(req.headers().is_empty());
        assert!(req.body().is_empty());
    }

    #[test]
    fn decoded_query_values_are_encoded_for_the_uri() {
        let v = json!({"httpMethod":"GET","path":"/s","requestContext":{"httpMethod":"GET"},
            "queryStringParameters":{"q":"a b&c=d/é"}});
        let req = to_request(Source::RestV1, v.to_string().as_bytes()).unwrap();
        assert_eq!(req.uri().query(), Some("q=a%20b%26c%3Dd%2F%C3%A9"));
    }

    #[test]
    fn v2_url_is_rebuilt_byte_for_byte_from_raw_path_and_query() {
        // docs/conformance.md #16: duplicates and encodings preserved.
        let req = to_request(
            Source::HttpV2,
            &fixture("apigw-v2-request-multi-value.json"),
        )
        .unwrap();
        let raw: Value =
            serde_json::from_slice(&fixture("apigw-v2-request-multi-value.json")).unwrap();
        assert_eq!(req.uri().query(), raw["rawQueryString"].as_str());
        let v = json!({"version":"2.0","rawPath":"/a%2Fb/c","rawQueryString":"x=1&x=2&y=%20%2B",
            "requestContext":{"http":{"method":"PUT"}}});
        let req = to_request(Source::HttpV2, v.to_string().as_bytes()).unwrap();
        assert_eq!(req.method(), Method::PUT);
        assert_eq!(req.uri(), "/a%2Fb/c?x=1&x=2&y=%20%2B");
    }

    #[test]
    fn v2_cookies_become_the_cookie_header() {
        // docs/conformance.md #15 (request side).
        let req = to_request(Source::FunctionUrl, &fixture("function-url-request.json")).unwrap();
        assert_eq!(req.headers()[COOKIE], "cookie1=value1; cookie2=value2");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.body().to_str().unwrap(), "Hello from client!");
    }

    #[test]
    fn base64_bodies_are_decoded() {
        // docs/conformance.md #17.
        let v1 = json!({"httpMethod":"POST","path":"/","requestContext":{"httpMethod":"GET"},
            "body":"AAEC/w==","isBase64Encoded":true});
        let req = to_request(Source::RestV1, v1.to_string().as_bytes()).unwrap();
        assert_eq!(req.body().as_bytes(), [0, 1, 2, 255]);
        let v2 = json!({"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},
            "body":"aGk=","isBase64Encoded":true});
        let req = to_request(Source::HttpV2, v2.to_string().as_bytes()).unwrap();
        assert_eq!(req.body().as_bytes(), b"hi");
        let bad = json!({"httpMethod":"POST","path":"/","requestContext":{"httpMethod":"GET"},
            "body":"%%%","isBase64Encoded":true});
        let e = to_request(Source::RestV1, bad.to_string().as_bytes()).unwrap_err();
        assert!(e.message().contains("base64"), "{e}");
    }

    #[test]
    fn a_query_name_without_values_adds_nothing() {
        // Found by fuzzing (fuzz/fuzz_targets/lambda_http_event.rs): `QueryMap::iter` panicked.
        let v1 = json!({"httpMethod":"GET","path":"/","requestContext":{"httpMethod":"GET"},
            "multiValueQueryStringParameters":{"a":[],"b":["1","2"]}});
        let req = to_request(Source::RestV1, v1.to_string().as_bytes()).unwrap();
        assert_eq!(req.uri(), "/?b=1&b=2");
        let alb = json!({"httpMethod":"GET","path":"/","requestContext":{"elb":{"targetGroupArn":"arn"}},
            "multiValueHeaders":{},"multiValueQueryStringParameters":{"key":[]}});
        let req = to_request(Source::Alb { multi: true }, alb.to_string().as_bytes()).unwrap();
        assert_eq!(req.uri(), "/");
    }

    #[test]
    fn alb_query_values_stay_encoded_as_sent() {
        // docs/conformance.md #19: the URI carries the client's encoding, decoded once by the handler's parser.
        let v = json!({"httpMethod":"GET","path":"/","requestContext":{"elb":{"targetGroupArn":"arn"}},
            "queryStringParameters":{"q":"a%20b"},"headers":{}});
        let req = to_request(Source::Alb { multi: false }, v.to_string().as_bytes()).unwrap();
        assert_eq!(req.uri().query(), Some("q=a%20b"));
        let req = to_request(
            Source::Alb { multi: true },
            &fixture("alb-request-multivalue-headers.json"),
        )
        .unwrap();
        assert_eq!(req.uri(), "/?key=hello");
        assert_eq!(req.body().to_str().unwrap(), "Some text");
        assert_eq!(req.headers()["x-myheader"], "123");
    }

    #[test]
    fn rest_v1_response_puts_cookies_in_multi_value_headers() {
        // docs/conformance.md #14.
        let v = payload_json(
            Source::RestV1,
            response(
                201,
                &[
                    ("set-cookie", "a=1"),
                    ("set-cookie", "b=2"),
                    ("content-type", "text/plain"),
                ],
                "hi",
            ),
        );
        assert_eq!(v["statusCode"], 201);
        assert!(v["statusCode"].is_i64());
        assert_eq!(v["body"], "hi");
        assert_eq!(v["isBase64Encoded"], false);
        assert_eq!(v["multiValueHeaders"]["set-cookie"], json!(["a=1", "b=2"]));
    }

    #[test]
    fn rest_v1_empty_body_is_an_empty_string() {
        let v = payload_json(Source::RestV1, response(204, &[], ()));
        assert_eq!(v["body"], "");
    }

    #[test]
    fn v2_response_moves_set_cookie_into_cookies() {
        // docs/conformance.md #15 (response side).
        let v = payload_json(
            Source::HttpV2,
            response(
                200,
                &[
                    ("set-cookie", "a=1; Path=/"),
                    ("set-cookie", "b=2"),
                    ("vary", "a"),
                    ("vary", "b"),
                ],
                "{}",
            ),
        );
        assert_eq!(v["cookies"], json!(["a=1; Path=/", "b=2"]));
        assert!(v["headers"].get("set-cookie").is_none(), "{v}");
        assert_eq!(v["headers"]["vary"], "a, b");
        assert_eq!(v["statusCode"], 200);
    }

    #[test]
    fn binary_bodies_are_base64_and_text_ones_are_not() {
        // docs/conformance.md #18.
        for (ct, text) in [
            ("image/png", false),
            ("application/octet-stream", false),
            ("application/json", true),
            ("text/html; charset=utf-8", true),
            ("application/problem+json", true),
            ("application/cloudevents+json", true),
        ] {
            let body: &'static [u8] = if text { b"{}" } else { b"\x89PNG" };
            let v = payload_json(
                Source::FunctionUrl,
                response(200, &[("content-type", ct)], body),
            );
            assert_eq!(v["isBase64Encoded"], !text, "{ct}");
            if !text {
                assert_eq!(v["body"], "iVBORw==", "{ct}");
            }
        }
        let v = payload_json(
            Source::RestV1,
            response(
                200,
                &[("content-encoding", "gzip"), ("content-type", "text/plain")],
                "x",
            ),
        );
        assert_eq!(v["isBase64Encoded"], true);
    }

    #[test]
    fn alb_response_matches_the_request_header_mode() {
        // docs/conformance.md #19.
        let r = || {
            response(
                200,
                &[("set-cookie", "a=1"), ("set-cookie", "b=2"), ("x-a", "1")],
                "ok",
            )
        };
        let multi = payload_json(Source::Alb { multi: true }, r());
        assert_eq!(
            multi["multiValueHeaders"]["set-cookie"],
            json!(["a=1", "b=2"])
        );
        assert_eq!(multi["statusDescription"], "200 OK");
        let single = payload_json(Source::Alb { multi: false }, r());
        assert_eq!(single["headers"]["x-a"], "1");
        assert_eq!(single["headers"]["set-cookie"], "b=2");
        assert!(
            single["multiValueHeaders"]
                .as_object()
                .is_none_or(|m| m.is_empty()),
            "{single}"
        );
        assert!(
            multi["headers"].as_object().is_none_or(|m| m.is_empty()),
            "{multi}"
        );
    }
}
