//! The platform-free core of [fnkit](https://docs.rs/fnkit): the handler API, [`Context`],
//! [`Error`] and [`Platform`] detection.
//!
//! Adapters (the HTTP runtime for Knative, OpenFaaS and local mode; the Lambda runtime) depend on
//! this crate; this crate depends on no platform. Users depend on the `fnkit` facade, which
//! re-exports everything here.
//!
//! Features:
//! - `cloudevents`: the CloudEvent handler shape ([`events()`]) and the incoming event in
//!   [`Context`], on `cloudevents-sdk`'s data model.

mod body;
mod context;
mod error;
mod handler;
mod platform;
mod secrets;

pub use body::Body;
pub use context::{Context, FunctionInfo, TraceContext};
pub use error::{Error, ErrorKind};
#[cfg(feature = "cloudevents")]
pub use handler::{events, EventFunction, EventShape, Events};
pub use handler::{
    http, BoxFuture, Function, Handler, Http, HttpFunction, HttpShape, IntoFunction, Payload,
    TypedFunction, TypedShape,
};
pub use platform::Platform;
pub use secrets::{secret, Secret};

#[cfg(feature = "cloudevents")]
pub use cloudevents;

/// A new random identifier (a UUID v4 in its hyphenated form), for request and event ids.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}
