//! `{{name}}`: a typed fnkit function. `{"name":"Ada"}` → `{"message":"Hello, Ada!"}`; a missing or
//! empty name (or no body at all) greets the world.

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

async fn handle(input: Option<Greeting>, _ctx: Context) -> Result<Reply, Error> {
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
    fnkit::run(handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn call(input: Option<Greeting>) -> Reply {
        let info = fnkit::FunctionInfo::from_lookup(fnkit::Platform::Local, |_| None);
        let ctx = Context::new(Arc::new(info), "test-request");
        let rt = fnkit::tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        rt.block_on(handle(input, ctx)).expect("an answer")
    }

    #[test]
    fn greets_by_name() {
        let input = Greeting {
            name: Some("Ada".to_owned()),
        };
        assert_eq!(call(Some(input)).message, "Hello, Ada!");
    }

    #[test]
    fn greets_the_world_without_a_name() {
        assert_eq!(call(None).message, "Hello, world!");
    }
}
