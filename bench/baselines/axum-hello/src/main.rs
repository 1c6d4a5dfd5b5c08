//! Baseline: an axum hello written the way axum's README shows it: `#[tokio::main]` (multi-thread
//! runtime), a `Router`, typed `Json` in and out.
//!
//! Reads `PORT` (default 8080), binds `0.0.0.0:$PORT`; POST `{"name":"Ada"}` answers
//! `{"message":"Hello, Ada!"}`. The body limit is raised from axum's 2 MB default to 6 MiB, fnkit's
//! and Lambda's, so that the large-body cold starts compare the same work.

use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::{Json, Router};
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

async fn hello(Json(req): Json<Request>) -> Json<Response> {
    let name = if req.name.is_empty() {
        "world"
    } else {
        &req.name
    };
    Json(Response {
        message: format!("Hello, {name}!"),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned());
    let app = Router::new()
        .route("/", post(hello))
        .layer(DefaultBodyLimit::max(6 * 1024 * 1024 + 1024));
    let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
