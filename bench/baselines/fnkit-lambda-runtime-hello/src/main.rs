//! fnkit's `hello` (functions/hello, the same handler) on `lambda_runtime`'s loop through
//! `fnkit::lambda::service`, on the current-thread runtime `fnkit::run` builds, so the comparison
//! with `hello` on Lambda is the loop alone. Event `{"name":"Ada"}` answers
//! `{"message":"Hello, Ada!"}`.

use fnkit::{Context, Error};
use serde::{Deserialize, Serialize};

/// The input: an optional name.
#[derive(Debug, Default, Deserialize)]
struct Greeting {
    #[serde(default)]
    name: Option<String>,
}

/// The output.
#[derive(Debug, Serialize)]
struct Reply {
    message: String,
}

async fn hello(input: Option<Greeting>, _ctx: Context) -> Result<Reply, Error> {
    let name = input
        .unwrap_or_default()
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "world".to_owned());
    Ok(Reply {
        message: format!("Hello, {name}!"),
    })
}

fn main() -> Result<(), lambda_runtime::Error> {
    let runtime = fnkit::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(fnkit::lambda::service(hello)))
}
