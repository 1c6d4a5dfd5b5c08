//! The sample events `cargo fnkit invoke --event NAME` sends: realistic payloads in the shapes AWS
//! documents (docs/platforms.md §2) and a CloudEvent, each parsed by `aws_lambda_events` /
//! `cloudevents-sdk` in the tests below.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;

use crate::http1::Request;
use crate::{fail, Result};

/// The names `--event` accepts.
pub(crate) const NAMES: [&str; 12] = [
    "apigw-v1",
    "apigw-v2",
    "alb",
    "function-url",
    "sqs",
    "sns",
    "s3",
    "eventbridge",
    "dynamodb",
    "kinesis",
    "cloudevent-binary",
    "cloudevent-structured",
];

/// The sample's JSON text.
fn text(name: &str) -> Option<&'static str> {
    Some(match name {
        "apigw-v1" => include_str!("events/apigw-v1.json"),
        "apigw-v2" => include_str!("events/apigw-v2.json"),
        "alb" => include_str!("events/alb.json"),
        "function-url" => include_str!("events/function-url.json"),
        "sqs" => include_str!("events/sqs.json"),
        "sns" => include_str!("events/sns.json"),
        "s3" => include_str!("events/s3.json"),
        "eventbridge" => include_str!("events/eventbridge.json"),
        "dynamodb" => include_str!("events/dynamodb.json"),
        "kinesis" => include_str!("events/kinesis.json"),
        "cloudevent-binary" | "cloudevent-structured" => include_str!("events/cloudevent.json"),
        _ => return None,
    })
}

/// The sample event `name`, with its payload replaced by `data` when given: the body (HTTP
/// events; base64 when the sample says `isBase64Encoded`), each record's message body (SQS, SNS),
/// each record's data (Kinesis, base64), the detail (EventBridge; JSON) or the data (CloudEvents).
///
/// # Errors
/// An unknown name; data for an event that has no payload (S3, DynamoDB); data that must be JSON
/// and is not.
pub(crate) fn sample(name: &str, data: Option<&str>) -> Result<Value> {
    let text = text(name)
        .ok_or_else(|| fail!("no sample event `{name}`; there are: {}", NAMES.join(", ")))?;
    let mut event: Value =
        serde_json::from_str(text).map_err(|e| fail!("sample `{name}` is not JSON: {e}"))?;
    let Some(data) = data else {
        return Ok(event);
    };
    let json = || {
        serde_json::from_str::<Value>(data)
            .map_err(|e| fail!("the `{name}` event's payload must be JSON: {e}"))
    };
    let records = |event: &mut Value| -> Vec<Value> {
        event["Records"].as_array().cloned().unwrap_or_default()
    };
    match name {
        "apigw-v1" | "apigw-v2" | "alb" | "function-url" => {
            let base64 = event["isBase64Encoded"].as_bool().unwrap_or(false);
            event["body"] = Value::String(if base64 {
                BASE64.encode(data)
            } else {
                data.to_owned()
            });
            if let Some(len) = event["headers"].get_mut("content-length") {
                *len = Value::String(data.len().to_string());
            }
        }
        "sqs" | "sns" | "kinesis" => {
            let mut all = records(&mut event);
            for record in &mut all {
                match name {
                    "sqs" => record["body"] = Value::String(data.to_owned()),
                    "sns" => record["Sns"]["Message"] = Value::String(data.to_owned()),
                    _ => record["kinesis"]["data"] = Value::String(BASE64.encode(data)),
                }
            }
            event["Records"] = Value::Array(all);
        }
        "eventbridge" => event["detail"] = json()?,
        "cloudevent-binary" | "cloudevent-structured" => event["data"] = json()?,
        _ => {
            return Err(fail!(
                "the `{name}` event has no payload for --data to replace; send it as it is, or \
                 --data alone for a payload of your own"
            ))
        }
    }
    Ok(event)
}

/// The HTTP request an event becomes when sent to an HTTP platform (local, Knative, OpenFaaS):
/// API Gateway, ALB and Function URL events as the request they describe; CloudEvents in binary
/// or structured mode; anything else as a JSON body.
pub(crate) fn to_http(name: &str, event: &Value) -> Result<Request> {
    let str_map = |v: &Value| -> Vec<(String, String)> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let body = |event: &Value| -> Result<Vec<u8>> {
        let text = event["body"].as_str().unwrap_or("");
        if event["isBase64Encoded"].as_bool().unwrap_or(false) {
            BASE64
                .decode(text)
                .map_err(|e| fail!("the event's body is not base64: {e}"))
        } else {
            Ok(text.as_bytes().to_vec())
        }
    };
    let drop_hop = |headers: Vec<(String, String)>| -> Vec<(String, String)> {
        headers
            .into_iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("host") && !n.eq_ignore_ascii_case("content-length")
            })
            .collect()
    };
    let query = |params: &Value| -> String {
        str_map(params)
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let with_query = |path: &str, q: String| {
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        }
    };
    let request = match name {
        "apigw-v1" | "alb" => Request {
            method: event["httpMethod"].as_str().unwrap_or("GET").to_owned(),
            target: with_query(
                event["path"].as_str().unwrap_or("/"),
                query(&event["queryStringParameters"]),
            ),
            headers: drop_hop(str_map(&event["headers"])),
            body: body(event)?,
        },
        "apigw-v2" | "function-url" => {
            let mut headers = drop_hop(str_map(&event["headers"]));
            if let Some(cookies) = event["cookies"].as_array() {
                let jar: Vec<&str> = cookies.iter().filter_map(Value::as_str).collect();
                if !jar.is_empty() {
                    headers.push(("cookie".to_owned(), jar.join("; ")));
                }
            }
            Request {
                method: event["requestContext"]["http"]["method"]
                    .as_str()
                    .unwrap_or("GET")
                    .to_owned(),
                target: with_query(
                    event["rawPath"].as_str().unwrap_or("/"),
                    event["rawQueryString"].as_str().unwrap_or("").to_owned(),
                ),
                headers,
                body: body(event)?,
            }
        }
        "cloudevent-binary" => {
            let mut headers = Vec::new();
            let mut data = Vec::new();
            let attrs = event
                .as_object()
                .ok_or_else(|| fail!("a CloudEvent is a JSON object"))?;
            for (key, value) in attrs {
                match (key.as_str(), value) {
                    ("data", v) => data = serde_json::to_vec(v).map_err(|e| fail!("{e}"))?,
                    ("datacontenttype", Value::String(t)) => {
                        headers.push(("content-type".to_owned(), t.clone()));
                    }
                    (k, Value::String(s)) => headers.push((format!("ce-{k}"), encode_ce(s))),
                    (k, other) => headers.push((format!("ce-{k}"), other.to_string())),
                }
            }
            Request {
                method: "POST".to_owned(),
                target: "/".to_owned(),
                headers,
                body: data,
            }
        }
        "cloudevent-structured" => Request {
            method: "POST".to_owned(),
            target: "/".to_owned(),
            headers: vec![(
                "content-type".to_owned(),
                "application/cloudevents+json; charset=utf-8".to_owned(),
            )],
            body: event.to_string().into_bytes(),
        },
        _ => json_post(event.to_string().into_bytes()),
    };
    Ok(request)
}

/// `POST /` with a JSON body.
pub(crate) fn json_post(body: Vec<u8>) -> Request {
    Request {
        method: "POST".to_owned(),
        target: "/".to_owned(),
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body,
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A `ce-*` header value as the HTTP binding wants it (docs/platforms.md §5.3): space, `"`, `%`
/// and everything outside visible ASCII percent-encoded.
fn encode_ce(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::{
        alb, apigw, dynamodb, eventbridge, kinesis, lambda_function_urls, s3, sns, sqs,
    };

    fn parses<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let event = sample(name, None).expect(name);
        serde_json::from_value(event).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn every_sample_parses_as_aws_lambda_events_type() {
        let v1: apigw::ApiGatewayProxyRequest = parses("apigw-v1");
        assert_eq!(v1.path_parameters.get("id").map(String::as_str), Some("42"));
        let v2: apigw::ApiGatewayV2httpRequest = parses("apigw-v2");
        assert_eq!(v2.raw_path.as_deref(), Some("/orders/42"));
        let a: alb::AlbTargetGroupRequest = parses("alb");
        assert!(a.request_context.elb.target_group_arn.is_some());
        let url: lambda_function_urls::LambdaFunctionUrlRequest = parses("function-url");
        assert!(url.is_base64_encoded);
        let q: sqs::SqsEvent = parses("sqs");
        assert_eq!(q.records[0].body.as_deref(), Some("{\"name\":\"Ada\"}"));
        let n: sns::SnsEvent = parses("sns");
        assert_eq!(n.records[0].sns.message, "{\"name\":\"Ada\"}");
        let s: s3::S3Event = parses("s3");
        assert_eq!(
            s.records[0].s3.object.key.as_deref(),
            Some("incoming/order-42.json")
        );
        let eb: eventbridge::EventBridgeEvent<serde_json::Value> = parses("eventbridge");
        assert_eq!(eb.detail["name"], "Ada");
        let d: dynamodb::Event = parses("dynamodb");
        assert_eq!(d.records.len(), 1);
        let k: kinesis::KinesisEvent = parses("kinesis");
        assert_eq!(k.records[0].kinesis.data.0, b"{\"name\":\"Ada\"}");
    }

    #[test]
    fn the_cloudevent_sample_is_a_valid_cloudevent() {
        use cloudevents::AttributesReader as _;
        for name in ["cloudevent-binary", "cloudevent-structured"] {
            let event: cloudevents::Event =
                serde_json::from_value(sample(name, Some("{\"id\":7}")).expect(name)).expect(name);
            assert_eq!(event.ty(), "com.example.order.created");
            assert_eq!(
                event.data(),
                Some(&cloudevents::Data::Json(serde_json::json!({ "id": 7 })))
            );
        }
    }

    #[test]
    fn data_replaces_the_payload_and_still_parses() {
        let data = "{\"name\":\"Grace\"}";
        let v2: apigw::ApiGatewayV2httpRequest =
            serde_json::from_value(sample("apigw-v2", Some(data)).expect("v2")).expect("parses");
        assert_eq!(v2.body.as_deref(), Some(data));
        let url = sample("function-url", Some(data)).expect("url");
        assert_eq!(
            url["body"],
            BASE64.encode(data),
            "base64, as the sample says"
        );
        let k: kinesis::KinesisEvent =
            serde_json::from_value(sample("kinesis", Some(data)).expect("k")).expect("parses");
        assert_eq!(k.records[0].kinesis.data.0, data.as_bytes());
        let eb = sample("eventbridge", Some(data)).expect("eb");
        assert_eq!(eb["detail"]["name"], "Grace");
        let err = sample("eventbridge", Some("not json"))
            .expect_err("not JSON")
            .0;
        assert!(err.contains("must be JSON"), "{err}");
        let err = sample("s3", Some(data)).expect_err("no payload").0;
        assert!(err.contains("has no payload"), "{err}");
    }

    #[test]
    fn http_samples_become_the_request_they_describe() {
        let req = to_http("apigw-v2", &sample("apigw-v2", None).expect("v2")).expect("a request");
        assert_eq!(
            (req.method.as_str(), req.target.as_str()),
            ("POST", "/orders/42?verbose=true")
        );
        assert_eq!(req.header("cookie"), Some("session=abc123"));
        assert_eq!(req.header("host"), None);
        let req = to_http("function-url", &sample("function-url", None).expect("url")).expect("r");
        assert_eq!(
            req.body, b"{\"name\":\"Ada\"}",
            "the base64 body is decoded"
        );
        let req = to_http("apigw-v1", &sample("apigw-v1", None).expect("v1")).expect("r");
        assert_eq!(req.target, "/orders/42?verbose=true");
    }

    #[test]
    fn a_binary_cloudevent_carries_attributes_as_headers() {
        let event = sample("cloudevent-binary", None).expect("ce");
        let req = to_http("cloudevent-binary", &event).expect("a request");
        assert_eq!(req.header("ce-specversion"), Some("1.0"));
        assert_eq!(req.header("ce-type"), Some("com.example.order.created"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("ce-datacontenttype"), None);
        assert_eq!(req.body, b"{\"name\":\"Ada\"}");
        assert_eq!(encode_ce("Euro € 😀"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
    }
}
