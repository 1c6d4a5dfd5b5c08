//! An OpenFaaS function written with fnkit.
//!
//! `POST /` with `{"name":"Ada"}` answers `{"message":"Hello, Ada!"}`. In direct mode this binary
//! is the container's only process: it serves OpenFaaS on port 8080 itself, no watchdog in front.

use fnkit::{Context, Error};
use serde::{Deserialize, Serialize};

/// The request body.
#[derive(Debug, Default, Deserialize)]
struct Input {
    #[serde(default)]
    name: Option<String>,
}

/// The response body.
#[derive(Debug, Serialize)]
struct Output {
    message: String,
}

async fn handle(input: Option<Input>, _ctx: Context) -> Result<Output, Error> {
    let name = input
        .unwrap_or_default()
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "world".to_owned());
    // A secret declared in stack.yml (`secrets: [api-key]`) would be read like this:
    // let key = fnkit::secret("api-key")?;
    Ok(Output {
        message: format!("Hello, {name}!"),
    })
}

fn main() -> Result<(), Error> {
    fnkit::run(handle)
}
