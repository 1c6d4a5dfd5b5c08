//! fnkit's integration tests: the example function binaries, started as users run them, driven
//! over loopback by real peers. Test names carry the number of the docs/conformance.md statement
//! they check (`knative_26_...`) where they check one.
//!
//! Build the binaries first: `cargo build --workspace --bins` (`make test` does).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod arm64;
mod cloudevents;
mod differential;
mod http;
mod knative;
mod lambda;
mod local;
mod metrics;
mod openfaas;
mod otel;
mod plain_http;
mod probes;
mod streaming;
