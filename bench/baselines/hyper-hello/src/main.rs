//! Baseline: the smallest hello a user would write on bare hyper 1.x and hyper-util, on a
//! current-thread tokio runtime (what fnkit builds itself).
//!
//! Reads `PORT` (default 8080), binds `0.0.0.0:$PORT`, reads the whole request body and answers
//! `{"message":"Hello, world!"}` over HTTP/1.1 with keep-alive.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as a real handler would, even though the answer does not depend on it.
    let _body = req.into_body().collect().await.map(|b| b.to_bytes());
    let mut res = Response::new(Full::new(Bytes::from_static(
        br#"{"message":"Hello, world!"}"#,
    )));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

fn main() -> Result<(), BoxError> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 8080,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(SocketAddr::from(([0, 0, 0, 0], port))))
}

async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::task::spawn(async move {
            // A broken connection is that client's problem, not the server's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
