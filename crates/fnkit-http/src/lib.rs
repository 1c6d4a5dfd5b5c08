//! fnkit's HTTP runtime: a [hyper] 1.x server (HTTP/1.1, and h2c on the same port with the
//! `http2` feature) that runs a fnkit handler locally, on Knative and behind OpenFaaS's
//! of-watchdog, and with the `cloudevents` feature (a default one) the CloudEvents 1.0.2 HTTP
//! binding (binary, structured and batched mode).
//!
//! Users reach it through `fnkit::run`, which calls the entry point of the handler's shape:
//! [`serve_typed`], [`serve_http`] or `serve_events` (feature `cloudevents`). Each is generic
//! code of its own, so a binary links the request path of one shape and matches nothing per
//! request.
//!
//! Without the `cloudevents` feature a typed handler takes plain JSON only, and cloudevents-sdk
//! is not linked (`hello`, static musl release: 897,616 bytes against 1,086,032). A request that
//! is a CloudEvent (`ce-*` headers, or a `Content-Type` of `application/cloudevents+json` or
//! `application/cloudevents-batch+json`), told apart by the same rule as with the feature, is
//! answered 415 with a message naming the feature; it never reaches the handler as plain JSON.
//!
//! What it does for every request:
//! - `GET /health` (liveness, with version, uptime, workers, CPU quota and resident memory) and
//!   `/ready` (503 once shutdown began) are answered without the handler, as is any request
//!   from a Kubernetes or Knative probe (`K-Kubelet-Probe` header, `kube-probe/` user agent);
//!   OpenFaaS adds `/_/health`, `/_/ready`. A thread of their own answers them on new
//!   connections while a handler holds every worker (docs/runtime.md).
//! - bodies over [`Config::max_body_bytes`] get 413, slow bodies 408, handlers past
//!   [`Config::timeout`] 504, a panicking handler 500 — and the process goes on serving.
//! - every error is a JSON body `{"error":"<kind>","message":"..."}`.
//!
//! The contracts it follows are in the repository's `docs/platforms.md` (§4 Knative, §5
//! CloudEvents, §6 OpenFaaS).

mod body;
mod cloudevents;
mod config;
mod dispatch;
mod openfaas;
mod probes;
mod reply;
mod sentinel;
mod server;
mod service;

use std::sync::Arc;

#[cfg(feature = "cloudevents")]
use fnkit_core::adapter::EventFunction;
#[cfg(doc)]
use fnkit_core::adapter::ShapeVisitor;
use fnkit_core::adapter::{HttpFunction, TypedFunction};
use fnkit_core::{Error, FunctionInfo};

pub use config::Config;

/// Serves a typed handler (JSON in, JSON out; with the `cloudevents` feature, CloudEvent `data`
/// in, reply events out) until SIGTERM or SIGINT, with settings from the environment ([`Config::from_env`]).
///
/// # Errors
/// A setting that does not parse, an address that cannot be bound, or signal handlers that
/// cannot be installed.
pub async fn serve_typed(
    function: Arc<dyn TypedFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    server::serve(function, info).await
}

/// Serves an HTTP handler, as [`serve_typed`] does.
///
/// # Errors
/// As [`serve_typed`].
pub async fn serve_http(
    function: Arc<dyn HttpFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    server::serve(function, info).await
}

/// Serves a CloudEvent handler, as [`serve_typed`] does (feature `cloudevents`).
///
/// # Errors
/// As [`serve_typed`].
#[cfg(feature = "cloudevents")]
pub async fn serve_events(
    function: Arc<dyn EventFunction>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    server::serve(function, info).await
}

/// The request decoding of the CloudEvent shape, without a server, for the property tests
/// (`tests/properties.rs`) and the fuzz targets (`fuzz/`): thin wrappers over the crate's own
/// functions. Behind the `fuzzing` feature (which implies `cloudevents`), off by default; not a
/// public API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use fnkit_core::cloudevents::Event;
    use fnkit_core::Error;
    use http::HeaderMap;

    /// Reads the events of a request as a CloudEvent handler does: the mode from the headers
    /// (binary, structured or batched), then the events in that mode. A request that carries
    /// no CloudEvent is the `InvalidEvent` error the CloudEvent shape answers it with.
    ///
    /// # Errors
    /// As the CloudEvent shape's 400 and 415 answers.
    pub fn decode_events(headers: &HeaderMap, body: bytes::Bytes) -> Result<Vec<Event>, Error> {
        match crate::cloudevents::detect(headers)? {
            Some(mode) => crate::cloudevents::decode(mode, headers, body),
            // The message of `dispatch.rs`'s CloudEvent shape, word for word.
            None => Err(Error::invalid_event(
                "this function takes CloudEvents: send ce-specversion, ce-id, ce-source and ce-type headers (binary mode) or Content-Type application/cloudevents+json",
            )),
        }
    }
}

/// Helpers for this crate's unit tests.
#[cfg(test)]
mod test_support {
    use http::{HeaderMap, HeaderValue};

    /// A header map with `pairs` appended in order (a repeated name keeps every value).
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }
}
