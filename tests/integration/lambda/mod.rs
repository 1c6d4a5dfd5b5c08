//! The Lambda adapter (issue 4), checked two ways:
//! - [`runtime_api`]: against a Runtime API of our own ([`mock`]), which records every request,
//!   for the exact requests, error documents, init errors, deadlines, trace ids, log lines and
//!   the HTTP event shapes (docs/conformance.md Lambda items #1–#25 are in the test names).
//! - [`emulator`]: against cargo-lambda's Runtime API emulator (a real, independent peer),
//!   invoking each example function as a caller would.
//!
//! docs/conformance.md #14–#20 and #23 are also unit tests in `crates/fnkit-lambda` (on the fixtures in
//! `crates/fnkit-lambda/tests/data/`); #24–#25 are `make sam-validate sam-build`.

mod emulator;
mod interop;
mod lifecycle;
pub(crate) mod mock;
mod runtime_api;
mod streaming;

use std::net::SocketAddr;

use fnkit_tests::FnProcess;

/// The environment Lambda gives every function (docs/platforms.md §1.8), pointing at `api`.
pub(crate) fn lambda_env(api: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "probe".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
    ]
}

/// Starts `binary` as Lambda would, with `env` (pairs with an empty value are removed).
pub(crate) fn start_function(binary: &str, env: &[(&str, String)]) -> FnProcess {
    let pairs: Vec<(&str, &str)> = env
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    FnProcess::spawn(binary, &pairs, SocketAddr::from(([127, 0, 0, 1], 9)))
}

/// A sample payload from `crates/fnkit-lambda/tests/data/`.
fn fixture(name: &str) -> Vec<u8> {
    let path = fnkit_tests::workspace_root()
        .join("crates/fnkit-lambda/tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
