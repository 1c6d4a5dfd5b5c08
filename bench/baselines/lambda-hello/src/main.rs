//! Baseline: a bare `lambda_runtime` 1.x hello, typed, with `service_fn` and `#[tokio::main]` as
//! lambda_runtime's README shows it. Event `{"name":"Ada"}` answers `{"message":"Hello, Ada!"}`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    name: String,
}

#[derive(Serialize)]
struct Response {
    message: String,
}

async fn hello(event: LambdaEvent<Request>) -> Result<Response, Error> {
    let name = if event.payload.name.is_empty() {
        "world"
    } else {
        &event.payload.name
    };
    Ok(Response {
        message: format!("Hello, {name}!"),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(hello)).await
}
