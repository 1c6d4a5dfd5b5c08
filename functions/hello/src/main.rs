//! `hello`: a typed function. `{"name":"Ada"}` → `{"message":"Hello, Ada!"}`; a missing or empty
//! name (or no body at all) greets the world.

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

fn main() -> Result<(), Error> {
    fnkit::run(hello)
}
