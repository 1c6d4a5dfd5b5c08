//! The three handler shapes over HTTP. The server is generic over [`Shape`], so a binary links
//! the request path of its own handler's shape only, and nothing is matched per request.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use cloudevents::{Data, Event, EventBuilder};
use fnkit_core::adapter::{
    ce, trace_context, EventFunction, HttpFunction, Payload, TraceInput, TypedFunction,
};
use fnkit_core::{Body, Context, Error, ErrorKind, TraceContext};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::cloudevents::{self as binding, Mode};
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
    /// request's mode).
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
        let Some(mode) = binding::detect_with(&parts.headers, mt.as_deref())? else {
            if let Some(mt) = mt {
                if !ce::is_json(&mt) {
                    return Err(Error::new(
                        ErrorKind::UnsupportedMediaType,
                        format!("Content-Type {mt} is not accepted: send application/json or a CloudEvent"),
                    ));
                }
            }
            let trace = header_trace(&parts.headers, request_trace);
            let ctx = ctx.with_trace(trace).with_headers(parts.headers);
            let out = state.invoke(self.call(Payload::Bytes(body), ctx)).await?;
            return Ok(json_reply(StatusCode::OK, out));
        };
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
        event_reply(mode, replies)
    }
}

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
