//! A minimal Runtime API client: one keep-alive HTTP/1.1 connection on hyper's low-level client,
//! reconnected when the server closes it (docs/platforms.md §1.1, §1.3).
//!
//! Faults (docs/platforms.md §1.13): a request that fails in transport (refused, reset, a
//! garbled answer) or is answered 429, 502, 503 or 504 is sent again on a fresh connection after
//! 10, 50, 250 and 1,000 ms; after that the last outcome stands and the caller decides (the loop
//! ends the process with one error line, and Lambda starts a new sandbox). A 500 is never
//! retried: the Runtime API says the sandbox is broken.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use fnkit_core::{Error, ErrorKind};

use crate::config::ApiAddress;
use crate::stream::StreamBody;

/// A request body: whole (and so sendable again), or a streamed `/response`.
pub(crate) enum ApiBody {
    Whole(Full<Bytes>),
    Stream(StreamBody),
}

impl hyper::body::Body for ApiBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        match self.get_mut() {
            Self::Whole(full) => std::pin::Pin::new(full)
                .poll_frame(cx)
                .map_err(|never| match never {}),
            Self::Stream(stream) => std::pin::Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Whole(full) => full.is_end_stream(),
            Self::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            Self::Whole(full) => full.size_hint(),
            Self::Stream(stream) => stream.size_hint(),
        }
    }
}

const USER_AGENT: &str = concat!("fnkit/", env!("CARGO_PKG_VERSION"));
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";
const ERROR_CONTENT_TYPE: &str = "application/json";
const EXTENSION_NAME_HEADER: &str = "lambda-extension-name";
const RESPONSE_MODE_HEADER: &str = "lambda-runtime-function-response-mode";
const EXTENSION_ID_HEADER: &str = "lambda-extension-identifier";

/// The error document of `/error` and `/init/error` (§1.4): camelCase, both strings.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Diagnostic<'a> {
    pub(crate) error_type: &'a str,
    pub(crate) error_message: &'a str,
}

/// The Runtime API, reached over one reusable connection.
pub(crate) struct RuntimeApi {
    address: ApiAddress,
    host: HeaderValue,
    sender: Option<SendRequest<ApiBody>>,
}

impl RuntimeApi {
    /// A client for `address`. Connects lazily, on the first request.
    pub(crate) fn new(address: ApiAddress) -> Result<Self, Error> {
        let host = HeaderValue::from_str(&address.authority).map_err(|_| {
            crate::config::config_error(format!(
                "AWS_LAMBDA_RUNTIME_API host {:?} is not a valid Host header",
                address.authority
            ))
        })?;
        Ok(Self {
            address,
            host,
            sender: None,
        })
    }

    /// Another client for the same Runtime API, with a connection of its own.
    pub(crate) fn fresh(&self) -> Self {
        Self {
            address: self.address.clone(),
            host: self.host.clone(),
            sender: None,
        }
    }

    /// `GET /runtime/invocation/next`: waits, with no timeout, for the next event (§1.1).
    pub(crate) async fn next(&mut self) -> Result<Response<Bytes>, Error> {
        let req = self.request(Method::GET, "/runtime/invocation/next", Bytes::new());
        self.send(req).await
    }

    /// `POST /runtime/invocation/{id}/response` with the payload verbatim.
    pub(crate) async fn respond(&mut self, id: &str, payload: Bytes) -> Result<StatusCode, Error> {
        let path = format!("/runtime/invocation/{id}/response");
        let req = self.request(Method::POST, &path, payload);
        Ok(self.send(req).await?.status())
    }

    /// `POST /runtime/invocation/{id}/response` in streaming mode (docs/platforms.md §1.7): the
    /// body goes out chunk by chunk as it is produced, and a failure after the first byte is
    /// reported in the trailers. Sent once (a stream cannot be replayed); the connection is not
    /// reused afterwards, as Lambda closes it.
    pub(crate) async fn respond_streaming(
        &mut self,
        id: &str,
        body: StreamBody,
        content_type: &'static str,
    ) -> Result<StatusCode, Error> {
        let path = format!(
            "{}/runtime/invocation/{id}/response",
            self.address.base_path
        );
        let mut req = self.request_at(Method::POST, &path, Bytes::new());
        *req.body_mut() = ApiBody::Stream(body);
        let headers = req.headers_mut();
        headers.insert(RESPONSE_MODE_HEADER, HeaderValue::from_static("streaming"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::TRAILER,
            HeaderValue::from_static(
                "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            ),
        );
        let outcome = self.send(req).await;
        self.sender = None;
        Ok(outcome?.status())
    }

    /// `POST /runtime/invocation/{id}/error` with the error document.
    pub(crate) async fn invocation_error(
        &mut self,
        id: &str,
        diagnostic: &Diagnostic<'_>,
    ) -> Result<StatusCode, Error> {
        let path = format!("/runtime/invocation/{id}/error");
        self.post_error(&path, diagnostic).await
    }

    /// `POST /2020-01-01/extension/register` for an internal extension named `name` that takes
    /// no events: what makes Lambda send SIGTERM to the runtime. Gives the extension's id.
    pub(crate) async fn register_extension(&mut self, name: &'static str) -> Result<String, Error> {
        let path = format!("{}/register", self.address.extension_path);
        let mut req = self.request_at(Method::POST, &path, Bytes::from_static(br#"{"events":[]}"#));
        let headers = req.headers_mut();
        headers.insert(EXTENSION_NAME_HEADER, HeaderValue::from_static(name));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let resp = self.send(req).await?;
        let id = resp
            .headers()
            .get(EXTENSION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|id| !id.is_empty());
        match (resp.status().is_success(), id) {
            (true, Some(id)) => Ok(id.to_owned()),
            (ok, _) => Err(api_error(format!(
                "the Extensions API answered register with {}{}",
                resp.status(),
                if ok {
                    " and no Lambda-Extension-Identifier"
                } else {
                    ""
                }
            ))),
        }
    }

    /// `GET /2020-01-01/extension/event/next` for extension `id`: says the extension is ready and
    /// waits for an event. An extension with no events never gets one: this waits until the
    /// process ends.
    pub(crate) async fn extension_next(&mut self, id: &str) -> Result<StatusCode, Error> {
        let path = format!("{}/event/next", self.address.extension_path);
        let mut req = self.request_at(Method::GET, &path, Bytes::new());
        let id = HeaderValue::from_str(id)
            .map_err(|_| api_error("the extension id is not a valid header value"))?;
        req.headers_mut().insert(EXTENSION_ID_HEADER, id);
        Ok(self.send(req).await?.status())
    }

    /// `POST /runtime/init/error` with the error document.
    pub(crate) async fn init_error(
        &mut self,
        diagnostic: &Diagnostic<'_>,
    ) -> Result<StatusCode, Error> {
        self.post_error("/runtime/init/error", diagnostic).await
    }

    async fn post_error(
        &mut self,
        path: &str,
        diagnostic: &Diagnostic<'_>,
    ) -> Result<StatusCode, Error> {
        let body = serde_json::to_vec(diagnostic).map_err(Error::internal)?;
        let mut req = self.request(Method::POST, path, Bytes::from(body));
        let headers = req.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(ERROR_CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_str(diagnostic.error_type) {
            headers.insert(ERROR_TYPE_HEADER, v);
        }
        Ok(self.send(req).await?.status())
    }

    /// A request to the Runtime API at `path` under its versioned base.
    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<ApiBody> {
        self.request_at(method, &format!("{}{path}", self.address.base_path), body)
    }

    /// A request to `target`, an origin-form path.
    fn request_at(&self, method: Method, target: &str, body: Bytes) -> Request<ApiBody> {
        let mut req = Request::new(ApiBody::Whole(Full::new(body)));
        *req.method_mut() = method;
        // Built from validated parts, so it always parses.
        *req.uri_mut() = target.parse().unwrap_or_default();
        let headers = req.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        req
    }

    /// Sends `req` on the open connection, opening one first if there is none or the server
    /// closed it. A failure on a reused connection is retried at once on a new one (the server
    /// may close an idle keep-alive connection at any time); then transport failures and
    /// 429/502/503/504 answers are retried after each of [`BACKOFF`]'s pauses.
    async fn send(&mut self, req: Request<ApiBody>) -> Result<Response<Bytes>, Error> {
        let mut pauses = BACKOFF.iter();
        let mut reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        loop {
            let Some(again) = clone_request(&req) else {
                // A streamed body cannot be sent twice: one try.
                return self.send_once(req).await.map_err(|e| e.error);
            };
            let outcome = self.send_once(again).await;
            let (retryable, what) = match &outcome {
                Ok(resp) => (
                    RETRY_STATUSES.contains(&resp.status().as_u16()),
                    resp.status().to_string(),
                ),
                Err(e) => (e.retryable, e.error.message().to_owned()),
            };
            if !retryable {
                return outcome.map_err(|e| e.error);
            }
            self.sender = None;
            if std::mem::take(&mut reused) && outcome.is_err() {
                continue;
            }
            let Some(pause) = pauses.next() else {
                return outcome.map_err(|e| e.error);
            };
            tracing::warn!(
                path = req.uri().path(),
                "the Runtime API failed ({what}); trying again in {pause:?}"
            );
            tokio::time::sleep(*pause).await;
        }
    }

    async fn send_once(&mut self, req: Request<ApiBody>) -> Result<Response<Bytes>, SendError> {
        let sender = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => {
                let s = self.connect().await.map_err(|error| SendError {
                    retryable: true,
                    error,
                })?;
                self.sender.insert(s)
            }
        };
        if sender.ready().await.is_err() {
            self.sender = None;
            return Err(SendError {
                retryable: true,
                error: api_error("the Runtime API connection closed"),
            });
        }
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                // Refused, reset or garbled: worth another try on a fresh connection (a
                // `/response` that did arrive is then refused as stale, which is logged).
                return Err(SendError {
                    retryable: true,
                    error: api_error(format!("Runtime API request failed: {e}")),
                });
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(SendError {
                    retryable: true,
                    error: api_error(format!("Runtime API body failed: {e}")),
                });
            }
        };
        Ok(Response::from_parts(parts, body))
    }

    async fn connect(&self) -> Result<SendRequest<ApiBody>, Error> {
        let addr = resolve(&self.address.authority)?;
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
            api_error(format!(
                "cannot connect to the Runtime API at {}: {e}",
                self.address.authority
            ))
        })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| api_error(format!("Runtime API handshake failed: {e}")))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "Runtime API connection ended");
            }
        });
        Ok(sender)
    }
}

struct SendError {
    retryable: bool,
    error: Error,
}

/// The pauses before each new try of a failed request: 1.31 s in all, then the failure stands.
const BACKOFF: [Duration; 4] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(250),
    Duration::from_millis(1000),
];

/// Answers worth another try: the API is busy or a proxy in front of it failed. (A 500 means
/// the sandbox is broken; it is final.)
const RETRY_STATUSES: [u16; 4] = [429, 502, 503, 504];

/// A copy of a request with a whole body, to send again; `None` for a streamed one.
fn clone_request(req: &Request<ApiBody>) -> Option<Request<ApiBody>> {
    let ApiBody::Whole(body) = req.body() else {
        return None;
    };
    let mut out = Request::new(ApiBody::Whole(body.clone()));
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.headers_mut() = req.headers().clone();
    Some(out)
}

/// The address to connect to: a literal `ip:port` (what Lambda gives) without any lookup, else
/// a blocking system lookup (once, at start-up).
fn resolve(authority: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = authority.parse() {
        return Ok(addr);
    }
    authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| api_error(format!("cannot resolve the Runtime API host {authority:?}")))
}

fn api_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Internal, message)
}
