//! A local AWS Lambda: the Runtime API the function polls (docs/platforms.md §1) and the Invoke
//! API callers post events to (`POST /2015-03-31/functions/{name}/invocations`).
//!
//! An invocation is queued, handed to the function's `GET …/invocation/next` with the headers
//! Lambda sends, and its `/response` or `/error` goes back to the waiting caller: a response as
//! the body, an error as its error document with `X-Amz-Function-Error: Unhandled`, as the Invoke
//! API answers.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::json;

use super::{bind, random_hex, uuid};
use crate::http1::{serve, Request, Response};

/// Lambda's limit on a synchronous request's payload (docs/platforms.md §1.9).
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

/// An event waiting for the function.
#[derive(Debug, Clone)]
struct Invocation {
    id: String,
    payload: Vec<u8>,
    deadline: SystemTime,
    trace: String,
}

/// How an invocation ended.
#[derive(Debug, Clone)]
enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Invocation>,
    in_flight: HashMap<String, Invocation>,
    done: HashMap<String, Outcome>,
    init_error: Option<Vec<u8>>,
}

/// The emulator's shared state.
#[derive(Debug, Default)]
struct Emulator {
    state: Mutex<State>,
    changed: Condvar,
    name: String,
    timeout: Duration,
}

impl Emulator {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arn(&self) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}", self.name)
    }
}

/// Starts the Runtime API (on a free loopback port) and the Invoke API (on `invoke`); returns the
/// function's environment.
pub(super) fn start(
    name: &str,
    invoke: TcpListener,
    timeout: Duration,
) -> std::io::Result<Vec<(String, String)>> {
    let runtime = bind(0)?;
    let runtime_addr = runtime.local_addr()?;
    let emulator = Arc::new(Emulator {
        name: name.to_owned(),
        timeout,
        ..Emulator::default()
    });
    let e = Arc::clone(&emulator);
    serve(runtime, move |req| runtime_api(&e, req));
    serve(invoke, move |req| invoke_api(&emulator, req));
    let date = chrono_less_date();
    let vars = [
        ("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("{date}/[$LATEST]{}", random_hex(32)),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_RUNTIME_DIR", "/var/runtime".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ];
    Ok(vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// Today as `YYYY/MM/DD` (the log stream's prefix), without a date library.
fn chrono_less_date() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // `YYYY-MM-DDThh:mm:ssZ`: its date, with slashes.
    fnkit_oci::rfc3339(now)[..10].replace('-', "/")
}

fn error_json(status: u16, kind: &str, message: &str) -> Response {
    Response::json(
        status,
        &json!({ "errorType": kind, "errorMessage": message }),
    )
}

/// The Runtime API: `/2018-06-01/runtime/…`.
fn runtime_api(e: &Emulator, req: Request) -> Response {
    let path = req.path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return error_json(404, "NotFound", &format!("no such path: {path}"));
    };
    match (
        req.method.as_str(),
        rest.split('/').collect::<Vec<_>>().as_slice(),
    ) {
        ("GET", ["invocation", "next"]) => next(e),
        ("POST", ["invocation", id, verdict @ ("response" | "error")]) => {
            let outcome = if *verdict == "error" {
                Outcome::Error(req.body.clone())
            } else {
                streamed_error(&req).unwrap_or_else(|| Outcome::Response(req.body.clone()))
            };
            answer(e, id, outcome)
        }
        ("POST", ["init", "error"]) => {
            e.lock().init_error = Some(req.body);
            e.changed.notify_all();
            Response::json(202, &json!({ "status": "OK" }))
        }
        _ => error_json(
            404,
            "NotFound",
            &format!("no such path: {} {path}", req.method),
        ),
    }
}

/// A streamed `/response` that failed: the error document from the trailers (§1.7).
fn streamed_error(req: &Request) -> Option<Outcome> {
    let trailer = |name| crate::http1::header(&req.headers, name);
    let body = trailer("Lambda-Runtime-Function-Error-Body")?;
    let doc = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|_| body.as_bytes().to_vec());
    Some(Outcome::Error(doc))
}

/// `GET /next`: blocks until an invocation is queued, then hands it over with Lambda's headers.
fn next(e: &Emulator) -> Response {
    let mut state = e.lock();
    let inv = loop {
        if let Some(inv) = state.queue.pop_front() {
            break inv;
        }
        state = e.changed.wait(state).unwrap_or_else(|p| p.into_inner());
    };
    state.in_flight.insert(inv.id.clone(), inv.clone());
    drop(state);
    let deadline_ms = inv
        .deadline
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Response::new(200, "application/json", inv.payload)
        .with_header("Lambda-Runtime-Aws-Request-Id", inv.id)
        .with_header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
        .with_header("Lambda-Runtime-Invoked-Function-Arn", e.arn())
        .with_header("Lambda-Runtime-Trace-Id", inv.trace)
}

/// `/response` or `/error` for `id`: exactly one per invocation.
fn answer(e: &Emulator, id: &str, outcome: Outcome) -> Response {
    let mut state = e.lock();
    if state.in_flight.remove(id).is_none() {
        return if state.done.contains_key(id) {
            error_json(
                403,
                "InvalidStateTransition",
                "this invocation was already answered",
            )
        } else {
            error_json(
                400,
                "InvalidRequestID",
                &format!("no invocation {id} in flight"),
            )
        };
    }
    state.done.insert(id.to_owned(), outcome);
    e.changed.notify_all();
    Response::json(202, &json!({ "status": "OK" }))
}

/// The Invoke API: queues the event and answers what the function answered.
fn invoke_api(e: &Emulator, req: Request) -> Response {
    let path = req.path();
    let is_invoke = path.starts_with("/2015-03-31/functions/") && path.ends_with("/invocations");
    if !is_invoke {
        return error_json(
            404,
            "ResourceNotFoundException",
            "POST /2015-03-31/functions/function/invocations invokes the function",
        );
    }
    if req.method != "POST" {
        return error_json(405, "MethodNotAllowed", "the Invoke API takes POST");
    }
    if req.body.len() > MAX_PAYLOAD {
        return error_json(
            413,
            "RequestEntityTooLargeException",
            &format!(
                "the payload is {} bytes; the limit is {MAX_PAYLOAD}",
                req.body.len()
            ),
        );
    }
    let asynchronous = req
        .header("X-Amz-Invocation-Type")
        .is_some_and(|t| t.eq_ignore_ascii_case("Event"));
    let inv = Invocation {
        id: uuid(),
        payload: if req.body.is_empty() {
            b"{}".to_vec()
        } else {
            req.body
        },
        deadline: SystemTime::now() + e.timeout,
        trace: format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            random_hex(24),
            random_hex(16)
        ),
    };
    let id = inv.id.clone();
    e.lock().queue.push_back(inv);
    e.changed.notify_all();
    if asynchronous {
        return Response::new(202, "application/json", "").with_header("X-Amzn-RequestId", id);
    }
    // Wait for the verdict: a little past the deadline, as fnkit reports its own Timeout 50 ms
    // before it.
    let until = Instant::now() + e.timeout + Duration::from_secs(1);
    let mut state = e.lock();
    let outcome = loop {
        if let Some(outcome) = state.done.get(&id) {
            break Some(outcome.clone());
        }
        if let Some(doc) = state.init_error.clone() {
            state.queue.retain(|i| i.id != id);
            break Some(Outcome::Error(doc));
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            state.queue.retain(|i| i.id != id);
            state.in_flight.remove(&id);
            break None;
        }
        state = e
            .changed
            .wait_timeout(state, left)
            .map(|(s, _)| s)
            .unwrap_or_else(|p| p.into_inner().0);
    };
    drop(state);
    let done = |r: Response| {
        r.with_header("X-Amzn-RequestId", id.clone())
            .with_header("X-Amz-Executed-Version", "$LATEST")
    };
    match outcome {
        Some(Outcome::Response(body)) => done(Response::new(200, "application/json", body)),
        Some(Outcome::Error(doc)) => done(
            Response::new(200, "application/json", doc)
                .with_header("X-Amz-Function-Error", "Unhandled"),
        ),
        None => done(
            error_json(
                200,
                "Sandbox.Timedout",
                &format!(
                    "RequestId: {id} Error: Task timed out after {:.2} seconds",
                    e.timeout.as_secs_f64()
                ),
            )
            .with_header("X-Amz-Function-Error", "Unhandled"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{get, send};
    use std::thread;

    fn post(addr: &str, target: &str, body: &str) -> Response {
        let req = Request {
            method: "POST".into(),
            target: target.into(),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        send(addr, &req, Some(Instant::now() + Duration::from_secs(10))).expect("an answer")
    }

    /// The emulator started with a 5 s timeout: its Invoke API address and the
    /// `AWS_LAMBDA_RUNTIME_API` it gives the function.
    fn emulator() -> (String, String) {
        let invoke = bind(0).expect("a port");
        let invoke_addr = invoke.local_addr().expect("an address").to_string();
        let env = start("fn", invoke, Duration::from_secs(5)).expect("started");
        let rt = env
            .iter()
            .find(|(k, _)| k == "AWS_LAMBDA_RUNTIME_API")
            .map(|(_, v)| v.clone())
            .expect("the runtime address");
        (invoke_addr, rt)
    }

    /// `GET …/invocation/next` as a runtime does: the event and its request id.
    fn next_invocation(rt: &str) -> (Response, String) {
        let next = get(rt, "/2018-06-01/runtime/invocation/next");
        let id = next
            .header("Lambda-Runtime-Aws-Request-Id")
            .expect("id")
            .to_owned();
        (next, id)
    }

    /// A runtime written against the Runtime API as a real one would: next, then response/error.
    #[test]
    fn an_invocation_travels_through_next_and_response_back_to_the_caller() {
        let (invoke_addr, rt) = emulator();
        let worker = thread::spawn(move || {
            let (next, id) = next_invocation(&rt);
            assert!(next.header("Lambda-Runtime-Deadline-Ms").is_some());
            assert!(next
                .header("Lambda-Runtime-Trace-Id")
                .is_some_and(|t| t.starts_with("Root=1-")));
            assert_eq!(
                next.header("Lambda-Runtime-Invoked-Function-Arn"),
                Some("arn:aws:lambda:us-east-1:000000000000:function:fn")
            );
            let reply = format!("{{\"got\":{}}}", String::from_utf8_lossy(&next.body));
            let posted = post(
                &rt,
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                &reply,
            );
            assert_eq!(posted.status, 202);
            let again = post(
                &rt,
                &format!("/2018-06-01/runtime/invocation/{id}/response"),
                "{}",
            );
            assert_eq!(again.status, 403, "a second answer is refused");
            let (_, id) = next_invocation(&rt);
            let doc = r#"{"errorType":"HandlerError","errorMessage":"no"}"#;
            post(
                &rt,
                &format!("/2018-06-01/runtime/invocation/{id}/error"),
                doc,
            );
        });
        let ok = post(
            &invoke_addr,
            "/2015-03-31/functions/function/invocations",
            "{\"a\":1}",
        );
        assert_eq!(
            (ok.status, ok.body.as_slice()),
            (200, &b"{\"got\":{\"a\":1}}"[..])
        );
        assert_eq!(ok.header("X-Amz-Function-Error"), None);
        let failed = post(
            &invoke_addr,
            "/2015-03-31/functions/function/invocations",
            "{}",
        );
        assert_eq!(failed.status, 200);
        assert_eq!(failed.header("X-Amz-Function-Error"), Some("Unhandled"));
        let doc: serde_json::Value = serde_json::from_slice(&failed.body).expect("JSON");
        assert_eq!(doc["errorType"], "HandlerError");
        worker.join().expect("the runtime thread");
    }

    #[test]
    fn an_init_error_answers_the_pending_invocation() {
        let (invoke_addr, rt) = emulator();
        let doc = r#"{"errorType":"Runtime.InvalidConfig","errorMessage":"AWS_LAMBDA_FUNCTION_NAME is missing"}"#;
        let init = post(&rt, "/2018-06-01/runtime/init/error", doc);
        assert_eq!(init.status, 202);
        let answer = post(
            &invoke_addr,
            "/2015-03-31/functions/function/invocations",
            "{}",
        );
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("X-Amz-Function-Error"), Some("Unhandled"));
        assert_eq!(answer.body, doc.as_bytes());
    }

    #[test]
    fn an_unanswered_invocation_times_out_as_lambda_reports_it() {
        let invoke = bind(0).expect("a port");
        let invoke_addr = invoke.local_addr().expect("an address").to_string();
        // Nobody polls /next: the invocation stays queued until the deadline (+1 s).
        start("fn", invoke, Duration::from_millis(200)).expect("started");
        let answer = post(&invoke_addr, "/2015-03-31/functions/fn/invocations", "{}");
        assert_eq!(answer.header("X-Amz-Function-Error"), Some("Unhandled"));
        let doc: serde_json::Value = serde_json::from_slice(&answer.body).expect("JSON");
        assert_eq!(doc["errorType"], "Sandbox.Timedout");
        assert!(doc["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("Task timed out after 0.20 seconds")));
        let wrong = post(&invoke_addr, "/2015-03-31/functions/fn", "{}");
        assert_eq!(wrong.status, 404);
    }

    #[test]
    fn a_streamed_response_that_fails_reports_the_error_of_its_trailers() {
        use std::io::Write as _;
        let (invoke_addr, rt) = emulator();
        let worker = thread::spawn(move || {
            let (_, id) = next_invocation(&rt);
            let doc = base64::engine::general_purpose::STANDARD
                .encode(r#"{"errorType":"HandlerError","errorMessage":"cut"}"#);
            // As fnkit streams (docs/platforms.md §1.7): chunked, the error in trailers.
            let mut s = std::net::TcpStream::connect(&rt).expect("connects");
            write!(
                s,
                "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: x\r\n\
                 Lambda-Runtime-Function-Response-Mode: streaming\r\n\
                 Transfer-Encoding: chunked\r\n\
                 Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\
                 Connection: close\r\n\r\n\
                 6\r\nchunk1\r\n0\r\n\
                 Lambda-Runtime-Function-Error-Type: HandlerError\r\n\
                 Lambda-Runtime-Function-Error-Body: {doc}\r\n\r\n"
            )
            .expect("the streamed response");
            let mut answer = String::new();
            std::io::Read::read_to_string(&mut s, &mut answer).expect("an answer");
            assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        });
        let failed = post(
            &invoke_addr,
            "/2015-03-31/functions/function/invocations",
            "{}",
        );
        assert_eq!(failed.header("X-Amz-Function-Error"), Some("Unhandled"));
        let doc: serde_json::Value = serde_json::from_slice(&failed.body).expect("JSON");
        assert_eq!(doc["errorMessage"], "cut");
        worker.join().expect("the runtime thread");
    }

    #[test]
    fn the_log_stream_date_is_a_calendar_date() {
        let date = chrono_less_date();
        let parts: Vec<u32> = date
            .split('/')
            .map(|p| p.parse().expect("a number"))
            .collect();
        assert!(parts[0] >= 2024 && (1..=12).contains(&parts[1]) && (1..=31).contains(&parts[2]));
    }
}
