//! Lambda cold start: the harness is the Runtime API on loopback. It answers the first
//! `GET /2018-06-01/runtime/invocation/next` with one event, takes the `POST …/response`, and holds
//! any later `/next` open (as Lambda does while no event waits) until the run ends.
//!
//! The first request of each connection is read on the accepting thread itself, so the time of the
//! first `/next` carries no thread start-up of the harness; the rest of a connection is served on a
//! thread of its own.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cold::{contains, ColdError, Guard, Sample};
use crate::http1::{Conn, Message};
use crate::procfs;

/// A binary that has not called `/next` this long after exec is not a Lambda runtime (yet).
pub(crate) const NEXT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-run limit once `/next` was called.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:hello";
const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0";

enum Event {
    Next(Instant),
    Response(Instant, Vec<u8>),
    Error(String),
}

struct State {
    event: Arc<Vec<u8>>,
    next_served: AtomicBool,
    tx: Sender<Event>,
}

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(event: Arc<Vec<u8>>, tx: Sender<Event>) -> std::io::Result<Server> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(State {
            event,
            next_served: AtomicBool::new(false),
            tx,
        });
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("runtime-api".into())
            .spawn(move || accept_loop(&listener, &stopping, &state))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, state: &Arc<State>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(RUN_TIMEOUT));
        let mut conn = Conn::new(stream);
        // First request inline, the rest of the connection on its own thread.
        if !serve_one(&mut conn, state) {
            continue;
        }
        let state = Arc::clone(state);
        let _ = std::thread::Builder::new()
            .name("runtime-api-conn".into())
            .spawn(move || while serve_one(&mut conn, &state) {});
    }
}

/// Serves one request; false when the connection is done.
fn serve_one(conn: &mut Conn<TcpStream>, state: &State) -> bool {
    let msg = match conn.read_message(false) {
        Ok(Some(m)) => m,
        _ => return false,
    };
    let at = Instant::now();
    let (method, path) = msg.method_path();
    let path = path.to_owned();
    let reply = match (method, path.strip_prefix("/2018-06-01/runtime/")) {
        ("GET", Some("invocation/next")) => {
            if state.next_served.swap(true, Ordering::SeqCst) {
                // No second event: hold the long poll until the run ends and the peer is killed.
                conn.drain();
                return false;
            }
            let _ = state.tx.send(Event::Next(at));
            next_response(&state.event)
        }
        ("POST", Some(rest)) if rest.ends_with("/response") => {
            let _ = state.tx.send(Event::Response(at, msg.body));
            accepted()
        }
        ("POST", Some(rest)) if rest.ends_with("/error") => {
            let _ = state.tx.send(Event::Error(describe_error(&path, &msg)));
            accepted()
        }
        _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
    };
    conn.stream.write_all(&reply).is_ok()
}

fn describe_error(path: &str, msg: &Message) -> String {
    format!(
        "{path} ({}): {}",
        msg.header("lambda-runtime-function-error-type")
            .unwrap_or("no error type"),
        String::from_utf8_lossy(&msg.body[..msg.body.len().min(300)])
    )
}

fn next_response(event: &[u8]) -> Vec<u8> {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 900_000)
        .unwrap_or(0);
    let mut res = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         lambda-runtime-aws-request-id: {REQUEST_ID}\r\n\
         lambda-runtime-deadline-ms: {deadline}\r\n\
         lambda-runtime-invoked-function-arn: {FUNCTION_ARN}\r\n\
         lambda-runtime-trace-id: {TRACE_ID}\r\n\
         content-length: {}\r\n\r\n",
        event.len()
    )
    .into_bytes();
    res.extend_from_slice(event);
    res
}

fn accepted() -> Vec<u8> {
    b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"status\":\"OK\"}"
        .to_vec()
}

/// One Lambda cold start: exec → first `/next` (init) and → first `/response` (first invoke).
pub(crate) fn lambda(bin: &Path, event: &Arc<Vec<u8>>) -> Result<Sample, ColdError> {
    let (tx, rx) = mpsc::channel();
    let server = Server::start(Arc::clone(event), tx)
        .map_err(|e| ColdError::Failed(format!("runtime API: {e}")))?;
    let t0 = Instant::now();
    let child = Command::new(bin)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", server.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "hello")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("FNKIT_PLATFORM", "lambda")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| ColdError::NotAvailable(format!("cannot exec {}: {e}", bin.display())))?;
    let mut child = Guard(child);
    let mut init = None;
    let outcome = loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Event::Next(at)) => init = Some(at - t0),
            Ok(Event::Response(at, body)) => {
                let st = procfs::status(child.0.id()).unwrap_or_default();
                break Ok((at - t0, body, st));
            }
            Ok(Event::Error(what)) => {
                break Err(ColdError::Failed(format!("posted an error: {what}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                break Err(ColdError::Failed("runtime API stopped".into()))
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = child.0.try_wait() {
                    let why = format!("exited with {status} before calling /next");
                    break Err(match init {
                        None => ColdError::NotAvailable(why),
                        Some(_) => ColdError::Failed(format!("exited with {status}")),
                    });
                }
                let waited = t0.elapsed();
                if init.is_none() && waited > NEXT_TIMEOUT {
                    break Err(ColdError::NotAvailable(format!(
                        "no /next within {NEXT_TIMEOUT:?}"
                    )));
                }
                if waited > RUN_TIMEOUT {
                    break Err(ColdError::Failed(format!(
                        "no /response within {RUN_TIMEOUT:?}"
                    )));
                }
            }
        }
    };
    drop(child);
    drop(server);
    let (invoke, body, st) = outcome?;
    let init = init.ok_or_else(|| ColdError::Failed("responded without /next".into()))?;
    if !contains(&body, b"Hello, ") {
        return Err(ColdError::Failed(format!(
            "answered {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )));
    }
    Ok(Sample {
        first_ms: init.as_secs_f64() * 1e3,
        invoke_ms: Some(invoke.as_secs_f64() * 1e3),
        hwm_kib: st.hwm_kib,
        threads: st.threads,
    })
}
