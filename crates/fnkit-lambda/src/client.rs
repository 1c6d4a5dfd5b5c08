//! A minimal Runtime API client: one keep-alive HTTP/1.1 connection on hyper's low-level client,
//! reconnected when the server closes it (docs/platforms.md §1.1, §1.3).

use std::net::{SocketAddr, ToSocketAddrs};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde::Serialize;

use fnkit_core::{Error, ErrorKind};

use crate::config::ApiAddress;

const USER_AGENT: &str = concat!("fnkit/", env!("CARGO_PKG_VERSION"));
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";
const ERROR_CONTENT_TYPE: &str = "application/json";

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
    sender: Option<SendRequest<Full<Bytes>>>,
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

    /// `POST /runtime/invocation/{id}/error` with the error document.
    pub(crate) async fn invocation_error(
        &mut self,
        id: &str,
        diagnostic: &Diagnostic<'_>,
    ) -> Result<StatusCode, Error> {
        let path = format!("/runtime/invocation/{id}/error");
        self.post_error(&path, diagnostic).await
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

    fn request(&self, method: Method, path: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        // Origin-form target; built from validated parts, so it always parses.
        *req.uri_mut() = format!("{}{path}", self.address.base_path)
            .parse()
            .unwrap_or_default();
        let headers = req.headers_mut();
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        req
    }

    /// Sends `req` on the open connection, opening one first if there is none or the server
    /// closed it. A request that fails on a connection that was reused is retried once on a new
    /// one (the server may close an idle keep-alive connection at any time).
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, Error> {
        let reused = self.sender.as_ref().is_some_and(|s| !s.is_closed());
        let retry = reused.then(|| clone_request(&req));
        match self.send_once(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => match retry {
                Some(req) if e.retryable => {
                    self.sender = None;
                    self.send_once(req).await.map_err(|e| e.error)
                }
                _ => Err(e.error),
            },
        }
    }

    async fn send_once(&mut self, req: Request<Full<Bytes>>) -> Result<Response<Bytes>, SendError> {
        let sender = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s,
            _ => {
                let s = self.connect().await.map_err(SendError::fatal)?;
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
                // Nothing was answered: safe to send again on a fresh connection.
                return Err(SendError {
                    retryable: e.is_canceled() || e.is_closed() || e.is_incomplete_message(),
                    error: api_error(format!("Runtime API request failed: {e}")),
                });
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| SendError::fatal(api_error(format!("Runtime API body failed: {e}"))))?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Error> {
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

impl SendError {
    fn fatal(error: Error) -> Self {
        Self {
            retryable: false,
            error,
        }
    }
}

fn clone_request(req: &Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    let mut out = Request::new(req.body().clone());
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.headers_mut() = req.headers().clone();
    out
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
