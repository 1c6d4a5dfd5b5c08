//! `{{name}}`: an HTTP fnkit function. `GET /` answers a greeting; any other request is described
//! back as JSON (method, path, query, body).

use fnkit::http_types::{header, Request, Response, StatusCode};
use fnkit::{Body, Context, Error};

async fn handle(req: Request<Body>, ctx: Context) -> Result<Response<Body>, Error> {
    let body = if req.method() == "GET" && req.uri().path() == "/" {
        Body::json(&serde_json::json!({ "message": "Hello from {{name}}!" }))?
    } else {
        Body::json(&serde_json::json!({
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query().unwrap_or(""),
            "body": String::from_utf8_lossy(req.body().as_bytes()),
            "request_id": ctx.request_id(),
        }))?
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(Error::internal)
}

fn main() -> Result<(), Error> {
    fnkit::run(fnkit::http(handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn call(req: Request<Body>) -> serde_json::Value {
        let info = fnkit::FunctionInfo::from_lookup(fnkit::Platform::Local, |_| None);
        let ctx = Context::new(Arc::new(info), "test-request");
        let rt = fnkit::tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let resp = rt.block_on(handle(req, ctx)).expect("an answer");
        assert_eq!(resp.status(), StatusCode::OK);
        serde_json::from_slice(resp.body().as_bytes()).expect("a JSON body")
    }

    #[test]
    fn get_root_greets() {
        let req = Request::get("/").body(Body::empty()).expect("a request");
        assert_eq!(call(req)["message"], "Hello from {{name}}!");
    }

    #[test]
    fn other_requests_are_described() {
        let req = Request::post("/orders?id=7")
            .body(Body::from("{\"id\":7}"))
            .expect("a request");
        let described = call(req);
        assert_eq!(described["method"], "POST");
        assert_eq!(described["path"], "/orders");
        assert_eq!(described["query"], "id=7");
        assert_eq!(described["body"], "{\"id\":7}");
    }
}
