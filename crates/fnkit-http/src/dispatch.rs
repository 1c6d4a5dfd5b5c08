//! The three handler shapes over HTTP. The server is generic over [`Shape`], so a binary links
//! the request path of its own handler's shape only, and nothing is matched per request. The
//! CloudEvent shape, and events for typed handlers, come with the `cloudevents` feature.

use std::future::Future;
#[cfg(feature = "cloudevents")]
use std::sync::Arc;

use bytes::Bytes;
#[cfg(feature = "cloudevents")]
use cloudevents::{Data, Event, EventBuilder};
use fnkit_core::adapter::media::is_json;
#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::{ce, EventFunction};
use fnkit_core::adapter::{trace_context, HttpFunction, Payload, TraceInput, TypedFunction};
#[cfg(feature = "cloudevents")]
use fnkit_core::Context;
use fnkit_core::{Body, Error, ErrorKind, TraceContext};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::cloudevents as binding;
#[cfg(feature = "cloudevents")]
use crate::cloudevents::Mode;
use crate::reply::{Reply, ReplyBody};
use crate::service::{json_reply, State};
use fnkit_core::adapter::observe::adopt;

/// How one handler shape answers a request (platform paths and limits are handled before).
pub(crate) trait Shape: Send + Sync + 'static {
    /// The shape's name, as observers record it: `typed`, `http` or `event`.
    const NAME: &'static str;
    /// What triggers it, in OpenTelemetry's `faas.trigger` words.
    const TRIGGER: &'static str;

    /// Reads the request, runs the handler within the time limit, and renders its answer. The
    /// request's trace goes to `trace` (and its ids on the log span) once it is known: the
    /// headers', or the first event's.
    fn respond<'a>(
        &'a self,
        state: &'a State,
        req: Request<hyper::body::Incoming>,
        request_id: String,
        trace: &'a mut TraceContext,
    ) -> impl Future<Output = Result<Reply, Error>> + Send + 'a;
}

impl Shape for dyn TypedFunction {
    const NAME: &'static str = "typed";
    const TRIGGER: &'static str = "http";

    /// A JSON body, or each event's `data` in CloudEvents mode (replies are events, in the
    /// request's mode). Built without the `cloudevents` feature, a CloudEvent gets 415
    /// (`binding::not_built`).
    async fn respond(
        &self,
        state: &State,
        req: Request<hyper::body::Incoming>,
        request_id: String,
        request_trace: &mut TraceContext,
    ) -> Result<Reply, Error> {
        let (parts, body) = post_only(state, req).await?;
        let ctx = state.context(request_id);
        let mt = binding::media_type(&parts.headers);
        match binding::detect_with(&parts.headers, mt.as_deref()) {
            Ok(None) => {}
            #[cfg(feature = "cloudevents")]
            Ok(Some(mode)) => {
                let events = binding::decode(mode, &parts.headers, body)?;
                let ctx = ctx.with_headers(parts.headers);
                let mut replies = Vec::with_capacity(events.len());
                for event in events {
                    let (attributes, payload) = ce::split_data(event);
                    let attributes = Arc::new(attributes);
                    let ctx = event_context(&ctx, attributes.clone(), request_trace);
                    let out = state.invoke(self.call(payload, ctx.clone())).await?;
                    let reply = ctx
                        .reply_to(&attributes)
                        .data("application/json", Data::Binary(out))
                        .build()
                        .map_err(|e| Error::internal(e.to_string()))?;
                    replies.push(reply);
                }
                return event_reply(mode, replies);
            }
            #[cfg(feature = "cloudevents")]
            Err(e) => return Err(e),
            // Never the event read as plain JSON: the sender learns why it is refused.
            #[cfg(not(feature = "cloudevents"))]
            detected => return Err(binding::not_built(detected, mt.as_deref())),
        }
        if let Some(mt) = mt {
            if !is_json(&mt) {
                return Err(Error::new(
                    ErrorKind::UnsupportedMediaType,
                    format!("Content-Type {mt} is not accepted: send {ACCEPTED}"),
                ));
            }
        }
        let trace = header_trace(&parts.headers, request_trace);
        let ctx = ctx.with_trace(trace).with_headers(parts.headers);
        let out = state.invoke(self.call(Payload::Bytes(body), ctx)).await?;
        Ok(json_reply(StatusCode::OK, out))
    }
}

/// What a typed handler takes, as the 415 for another content type says.
const ACCEPTED: &str = if cfg!(feature = "cloudevents") {
    "application/json or a CloudEvent"
} else {
    "application/json"
};

#[cfg(feature = "cloudevents")]
impl Shape for dyn EventFunction {
    const NAME: &'static str = "event";
    const TRIGGER: &'static str = "pubsub";

    /// CloudEvents in binary, structured or batched mode; replies in the request's mode.
    async fn respond(
        &self,
        state: &State,
        req: Request<hyper::body::Incoming>,
        request_id: String,
        request_trace: &mut TraceContext,
    ) -> Result<Reply, Error> {
        let (parts, body) = post_only(state, req).await?;
        let Some(mode) = binding::detect(&parts.headers)? else {
            return Err(Error::invalid_event(
                "this function takes CloudEvents: send ce-specversion, ce-id, ce-source and ce-type headers (binary mode) or Content-Type application/cloudevents+json",
            ));
        };
        let events = binding::decode(mode, &parts.headers, body)?;
        let ctx = state.context(request_id).with_headers(parts.headers);
        let mut replies = Vec::with_capacity(events.len());
        for event in events {
            let ctx = event_context(&ctx, Arc::new(ce::without_data(&event)), request_trace);
            if let Some(reply) = state.invoke(self.call(event, ctx)).await? {
                replies.push(reply);
            }
        }
        event_reply(mode, replies)
    }
}

impl Shape for dyn HttpFunction {
    const NAME: &'static str = "http";
    const TRIGGER: &'static str = "http";

    /// Any method and path; the handler's response as it is, a streamed body sent as the handler
    /// produces it.
    async fn respond(
        &self,
        state: &State,
        req: Request<hyper::body::Incoming>,
        request_id: String,
        request_trace: &mut TraceContext,
    ) -> Result<Reply, Error> {
        // The time limit covers the whole answer, a streamed body included.
        let deadline = tokio::time::Instant::now() + state.config.timeout;
        let (parts, body) = req.into_parts();
        let body = state.read_body(&parts, body).await?;
        let trace = header_trace(&parts.headers, request_trace);
        let ctx = state.context(request_id).with_trace(trace);
        let req = Request::from_parts(parts, Body::from(body));
        let resp = state.invoke(self.call(req, ctx)).await?;
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(parts, ReplyBody::of(body, deadline)))
    }
}

/// The trace the request's headers carry, adopted as the request's.
fn header_trace(headers: &HeaderMap, request_trace: &mut TraceContext) -> TraceContext {
    let trace = trace_context(TraceInput {
        headers: Some(headers),
        ..TraceInput::default()
    });
    adopt(request_trace, &trace);
    trace
}

/// Typed and CloudEvent handlers take their input as a `POST` body: anything else is 405.
async fn post_only(
    state: &State,
    req: Request<hyper::body::Incoming>,
) -> Result<(Parts, Bytes), Error> {
    let (parts, body) = req.into_parts();
    if parts.method != Method::POST {
        return Err(Error::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{} {} is not served: send the input as a POST",
                parts.method,
                parts.uri.path()
            ),
        ));
    }
    let body = state.read_body(&parts, body).await?;
    Ok((parts, body))
}

/// The context of one event of a request: the trace from the headers or the event, and the
/// event's attributes (its data left out). Every event of a request has the request's span id;
/// the first trace found is the request's.
#[cfg(feature = "cloudevents")]
fn event_context(ctx: &Context, attributes: Arc<Event>, request: &mut TraceContext) -> Context {
    let headers: &HeaderMap = ctx.headers();
    let trace = trace_context(TraceInput {
        headers: Some(headers),
        event: Some(&attributes),
        span_id: request.span.map(|s| s.span_id),
        ..TraceInput::default()
    });
    adopt(request, &trace);
    ctx.clone().with_trace(trace).with_event(attributes)
}

/// The replies in the request's mode: 202 with no body for none, a batch for a batch, one event
/// in binary or structured mode.
#[cfg(feature = "cloudevents")]
fn event_reply(mode: Mode, replies: Vec<Event>) -> Result<Reply, Error> {
    if replies.is_empty() {
        let mut r = Response::new(ReplyBody::whole(Bytes::new()));
        *r.status_mut() = StatusCode::ACCEPTED;
        return Ok(r);
    }
    if mode != Mode::Batch && replies.len() > 1 {
        return Err(Error::internal("one event in, several replies out"));
    }
    let encoded = binding::encode(mode, replies)?;
    let mut r = Response::new(ReplyBody::rendered(encoded.body));
    *r.headers_mut() = encoded.headers;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use fnkit_core::adapter::{env_from, BoxFuture};
    use fnkit_core::{Context, FunctionInfo, Platform};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A typed handler that answers its input as it is, counting its calls.
    #[derive(Default)]
    struct Echo(AtomicUsize);

    impl TypedFunction for Echo {
        fn call(&self, input: Payload, _ctx: Context) -> BoxFuture<'_, Result<Vec<u8>, Error>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let value: serde_json::Value = input.deserialize()?;
                serde_json::to_vec(&value).map_err(Error::internal)
            })
        }
    }

    /// The status line, headers (lowercased) and body of the answer to `request` (an HTTP/1.1
    /// request head without `Content-Length`, which is added, and `body`), sent over loopback to
    /// the runtime's request path with `function`.
    async fn answer(function: Arc<Echo>, head: &str, body: &str) -> (u16, String, String) {
        let info = Arc::new(FunctionInfo::from_lookup(Platform::Local, |_| None));
        let config = crate::Config::from_lookup(Platform::Local, env_from(&[])).unwrap();
        let state = Arc::new(State::new(info, config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = serve_one::<dyn TypedFunction>(listener, state, function);
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!(
            "{head}\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        client.read_to_string(&mut raw).await.unwrap();
        server.await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    /// Serves one connection as `server.rs` does. Generic over the shape, as there: a spawned
    /// future naming `dyn TypedFunction` itself trips the compiler's higher-ranked `Send` check.
    fn serve_one<S: Shape + ?Sized>(
        listener: tokio::net::TcpListener,
        state: Arc<State>,
        function: Arc<S>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |req| {
                crate::service::handle(state.clone(), function.clone(), req)
            });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
                .unwrap();
        })
    }

    const EVENT: &str = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#;

    #[tokio::test]
    async fn plain_json_reaches_a_typed_handler() {
        let echo = Arc::new(Echo::default());
        for head in [
            "POST / HTTP/1.1\r\nContent-Type: application/json",
            "POST / HTTP/1.1\r\nContent-Type: Application/JSON; charset=utf-8",
            "POST / HTTP/1.1",
        ] {
            let (status, headers, body) = answer(echo.clone(), head, r#"{"a":1}"#).await;
            assert_eq!(status, 200, "{head}: {body}");
            assert!(headers.contains("content-type: application/json\r\n"));
            assert_eq!(body, r#"{"a":1}"#);
        }
        assert_eq!(echo.0.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn another_content_type_gets_415_naming_what_is_accepted() {
        let echo = Arc::new(Echo::default());
        let head = "POST / HTTP/1.1\r\nContent-Type: text/plain";
        let (status, _, body) = answer(echo.clone(), head, "hi").await;
        assert_eq!(status, 415, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "UnsupportedMediaType");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains("send application/json"), "{message}");
        assert_eq!(
            message.contains("CloudEvent"),
            cfg!(feature = "cloudevents"),
            "{message}"
        );
        assert_eq!(echo.0.load(Ordering::SeqCst), 0);
    }

    /// Requests that are CloudEvents by `cloudevents::detect`, in each mode (and a CloudEvents
    /// format fnkit does not read), with their bodies.
    const CLOUDEVENTS: [(&str, &str); 4] = [
        (
            "POST / HTTP/1.1\r\nContent-Type: application/json\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t",
            r#"{"a":1}"#,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Type: application/cloudevents+json; charset=utf-8",
            EVENT,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Type: application/cloudevents-batch+json",
            "[]",
        ),
        (
            "POST / HTTP/1.1\r\nContent-Type: application/cloudevents+avro",
            "x",
        ),
    ];

    #[cfg(not(feature = "cloudevents"))]
    #[tokio::test]
    async fn without_the_feature_a_cloudevent_gets_415_naming_the_feature() {
        let echo = Arc::new(Echo::default());
        for (head, body) in CLOUDEVENTS {
            let (status, headers, answer) = answer(echo.clone(), head, body).await;
            assert_eq!(status, 415, "{head}: {answer}");
            assert!(headers.contains("content-type: application/json\r\n"));
            let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(v["error"], "UnsupportedMediaType", "{answer}");
            let message = v["message"].as_str().unwrap();
            for needle in [
                "is a CloudEvent",
                "built without CloudEvents",
                "`cloudevents` feature",
                "`knative`",
            ] {
                assert!(message.contains(needle), "{head}: {message}");
            }
        }
        let (_, _, binary) = answer(echo.clone(), CLOUDEVENTS[0].0, CLOUDEVENTS[0].1).await;
        assert!(
            binary.contains("a CloudEvent in binary mode (ce-* headers)"),
            "{binary}"
        );
        let (_, _, batch) = answer(echo.clone(), CLOUDEVENTS[2].0, CLOUDEVENTS[2].1).await;
        assert!(
            batch.contains("Content-Type application/cloudevents-batch+json"),
            "{batch}"
        );
        // Never read as plain JSON: the handler did not run.
        assert_eq!(echo.0.load(Ordering::SeqCst), 0);
    }

    #[cfg(feature = "cloudevents")]
    #[tokio::test]
    async fn with_the_feature_a_cloudevent_reaches_a_typed_handler_as_its_data() {
        let echo = Arc::new(Echo::default());
        let [binary, structured, batch, avro] = CLOUDEVENTS;
        let (status, headers, body) = answer(echo.clone(), binary.0, binary.1).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains("ce-type: t.reply\r\n"), "{headers}");
        assert_eq!(body, r#"{"a":1}"#);
        let (status, headers, body) = answer(echo.clone(), structured.0, structured.1).await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains("content-type: application/cloudevents+json"));
        assert!(body.contains(r#""data":{"a":1}"#), "{body}");
        // An empty batch: no events, no replies.
        let (status, _, _) = answer(echo.clone(), batch.0, batch.1).await;
        assert_eq!(status, 202);
        let (status, _, body) = answer(echo.clone(), avro.0, avro.1).await;
        assert_eq!(status, 415);
        assert!(body.contains("a CloudEvents format"), "{body}");
        assert_eq!(echo.0.load(Ordering::SeqCst), 2);
    }
}
