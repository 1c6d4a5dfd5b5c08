//! fnkit's HTTP runtime: a [hyper] 1.x server (HTTP/1.1 and h2c on one port) that runs a fnkit
//! [`Function`](fnkit_core::Function) locally, on Knative and behind OpenFaaS's of-watchdog, with
//! the CloudEvents 1.0.2 HTTP binding (binary, structured and batched mode).
//!
//! Users reach it through `fnkit::run`; [`serve`] and [`serve_with`] are for embedding.
//!
//! What it does for every request:
//! - `GET /health` (liveness, with version and uptime) and `/ready` (503 once shutdown began)
//!   are answered without the handler, as is any request from a Kubernetes or Knative probe
//!   (`K-Kubelet-Probe` header, `kube-probe/` user agent); OpenFaaS adds `/_/health`, `/_/ready`.
//! - bodies over [`Config::max_body_bytes`] get 413, slow bodies 408, handlers past
//!   [`Config::timeout`] 504, a panicking handler 500 — and the process goes on serving.
//! - every error is a JSON body `{"error":"<kind>","message":"..."}`.

pub mod cloudevents;
mod config;
mod server;
mod service;

pub use config::Config;
pub use server::{serve, serve_with, shutdown_signal};
