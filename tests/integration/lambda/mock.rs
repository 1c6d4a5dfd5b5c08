//! A Runtime API of our own, on std threads: it serves queued events to `GET /next`, answers
//! every POST with 202 (or a status or fault the test chooses), serves the Extensions API
//! (`register` answers with an id; `event/next` never answers, as for an extension with no
//! events), and records every request exactly as it arrived, for what the cargo-lambda emulator
//! cannot show.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One request the runtime made.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    /// Lowercased names.
    pub(crate) headers: BTreeMap<String, String>,
    pub(crate) body: Vec<u8>,
    /// When it arrived, in ms since the Unix epoch.
    pub(crate) at_ms: u64,
    /// Its place in the order of arrival (0 first).
    pub(crate) seq: usize,
    /// A chunked body's chunks (data only) with when each arrived, in ms since the Unix epoch.
    pub(crate) chunks: Vec<(u64, Vec<u8>)>,
    /// A chunked body's trailers; names lowercased.
    pub(crate) trailers: BTreeMap<String, String>,
}

impl Recorded {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {} body is not JSON ({e}): {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A way for the mock to misbehave, in place of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer with this status and an empty JSON object.
    Status(u16),
    /// Write bytes that are not HTTP, then close.
    Garbage,
    /// Close the connection without answering.
    Reset,
}

/// An event for `GET /next`.
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
    /// Served instead of the event: the `/next` that takes it misbehaves.
    pub(crate) fault: Option<Fault>,
}

impl Event {
    /// An event with the usual headers: a deadline 30 s away and an invoked ARN.
    pub(crate) fn new(request_id: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            request_id: request_id.to_owned(),
            headers: vec![
                (
                    "Lambda-Runtime-Deadline-Ms".into(),
                    (now_ms() + 30_000).to_string(),
                ),
                (
                    "Lambda-Runtime-Invoked-Function-Arn".into(),
                    "arn:aws:lambda:us-east-1:123456789012:function:probe:live".into(),
                ),
            ],
            body: body.into(),
            delay: Duration::ZERO,
            fault: None,
        }
    }

    /// A `/next` that misbehaves with `fault` instead of serving an event.
    pub(crate) fn fault(fault: Fault) -> Self {
        let mut e = Self::new("fault", Vec::new());
        e.fault = Some(fault);
        e
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

type Log = Arc<(Mutex<Vec<Recorded>>, Condvar)>;

/// The mock; stops serving `/next` when dropped.
pub(crate) struct MockApi {
    pub(crate) addr: SocketAddr,
    events: Option<Sender<Event>>,
    log: Log,
    statuses: Arc<Mutex<HashMap<String, u16>>>,
    faults: Faults,
}

/// Faults queued per path suffix, each served once, before any status.
type Faults = Arc<Mutex<Vec<(String, Fault)>>>;

impl MockApi {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the mock Runtime API");
        let addr = listener.local_addr().expect("mock address");
        let (tx, rx) = mpsc::channel::<Event>();
        let rx = Arc::new(Mutex::new(rx));
        let log: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let statuses = Arc::new(Mutex::new(HashMap::new()));
        let faults: Faults = Arc::new(Mutex::new(Vec::new()));
        {
            let (log, statuses, faults) = (log.clone(), statuses.clone(), faults.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { break };
                    let (rx, log) = (rx.clone(), log.clone());
                    let (statuses, faults) = (statuses.clone(), faults.clone());
                    std::thread::spawn(move || serve(stream, &rx, &log, &statuses, &faults));
                }
            });
        }
        Self {
            addr,
            events: Some(tx),
            faults,
            log,
            statuses,
        }
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn api(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn push(&self, event: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Makes POSTs to paths ending in `suffix` answer `status`.
    pub(crate) fn answer(&self, suffix: &str, status: u16) {
        if let Ok(mut s) = self.statuses.lock() {
            s.insert(suffix.to_owned(), status);
        }
    }

    /// The next request whose path ends with `suffix` gets `fault` instead of an answer.
    pub(crate) fn fail_once(&self, suffix: &str, fault: Fault) {
        if let Ok(mut f) = self.faults.lock() {
            f.push((suffix.to_owned(), fault));
        }
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until a recorded request satisfies `pred` (at most `timeout`) and returns it.
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Recorded {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.log;
        let mut log = lock.lock().expect("mock log");
        loop {
            if let Some(r) = log.iter().find(|r| pred(r)) {
                return r.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; requests so far: {:#?}",
                summary(&log)
            );
            log = cvar.wait_timeout(log, left).expect("mock log").0;
        }
    }

    /// Waits for the POST that answers `request_id` (`/response` or `/error`).
    pub(crate) fn wait_answer(&self, request_id: &str) -> Recorded {
        let prefix = format!("/2018-06-01/runtime/invocation/{request_id}/");
        self.wait_for(
            Duration::from_secs(20),
            &format!("the answer to {request_id}"),
            |r| r.method == "POST" && r.path.starts_with(&prefix),
        )
    }

    /// How many `GET /next` arrived so far.
    pub(crate) fn next_count(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.ends_with("/runtime/invocation/next"))
            .count()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.events = None;
    }
}

fn summary(log: &[Recorded]) -> Vec<String> {
    log.iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.path,
                String::from_utf8_lossy(&r.body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )
        })
        .collect()
}

fn serve(
    stream: TcpStream,
    rx: &Mutex<Receiver<Event>>,
    log: &Log,
    statuses: &Mutex<HashMap<String, u16>>,
    faults: &Mutex<Vec<(String, Fault)>>,
) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let mut headers = BTreeMap::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let chunked = headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let (mut body, mut chunks, mut trailers) = (Vec::new(), Vec::new(), BTreeMap::new());
        if chunked {
            if read_chunked(&mut reader, &mut chunks, &mut trailers).is_none() {
                return;
            }
            body = chunks
                .iter()
                .flat_map(|(_, c): &(u64, Vec<u8>)| c.clone())
                .collect();
        } else {
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            body.resize(len, 0);
            if reader.read_exact(&mut body).is_err() {
                return;
            }
        }
        let is_next = method == "GET" && path.ends_with("/runtime/invocation/next");
        {
            let (lock, cvar) = &**log;
            if let Ok(mut l) = lock.lock() {
                let seq = l.len();
                l.push(Recorded {
                    method: method.clone(),
                    path: path.clone(),
                    headers,
                    body,
                    at_ms: now_ms(),
                    seq,
                    chunks: std::mem::take(&mut chunks),
                    trailers: std::mem::take(&mut trailers),
                });
            }
            cvar.notify_all();
        }
        let queued = faults.lock().ok().and_then(|mut f| {
            let at = f
                .iter()
                .position(|(suffix, _)| path.ends_with(suffix.as_str()))?;
            Some(f.remove(at).1)
        });
        let reply = if let Some(fault) = queued {
            match misbehave(fault, &mut writer) {
                Some(bytes) => bytes,
                None => return,
            }
        } else if method == "POST" && path.ends_with("/extension/register") {
            let body =
                br#"{"functionName":"probe","functionVersion":"$LATEST","handler":"bootstrap"}"#;
            let mut bytes = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlambda-extension-identifier: ext-7\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            bytes.extend_from_slice(body);
            bytes
        } else if method == "GET" && path.ends_with("/extension/event/next") {
            // An extension with no events gets none: hold the request until the client goes.
            let _ = reader.read(&mut [0_u8; 1]);
            return;
        } else if is_next {
            // Blocks until the test queues an event; the mock going away ends the connection.
            let event = match rx.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok(event) = event else { return };
            std::thread::sleep(event.delay);
            if let Some(fault) = event.fault {
                match misbehave(fault, &mut writer) {
                    Some(bytes) => {
                        if writer.write_all(&bytes).is_err() {
                            return;
                        }
                        continue;
                    }
                    None => return,
                }
            }
            let mut head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nlambda-runtime-aws-request-id: {}\r\n",
                event.body.len(),
                event.request_id
            );
            for (k, v) in &event.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&event.body);
            bytes
        } else {
            let status = statuses
                .lock()
                .ok()
                .and_then(|s| {
                    s.iter()
                        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
                        .map(|(_, st)| *st)
                })
                .unwrap_or(202);
            let body = br#"{"status":"OK"}"#;
            let mut bytes = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            bytes.extend_from_slice(body);
            bytes
        };
        if writer.write_all(&reply).is_err() {
            return;
        }
    }
}

/// Reads a chunked body: each chunk with its arrival time, then the trailers. `None` when the
/// framing is broken or the connection ends first.
fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    chunks: &mut Vec<(u64, Vec<u8>)>,
    trailers: &mut BTreeMap<String, String>,
) -> Option<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16).ok()?;
        if size == 0 {
            break;
        }
        let mut data = vec![0; size];
        reader.read_exact(&mut data).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
        if &crlf != b"\r\n" {
            return None;
        }
        chunks.push((now_ms(), data));
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some(());
        }
        if let Some((k, v)) = l.split_once(':') {
            trailers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
}

/// The bytes of a faulty answer, or `None` when the fault has closed the connection.
fn misbehave(fault: Fault, writer: &mut TcpStream) -> Option<Vec<u8>> {
    match fault {
        Fault::Status(status) => {
            Some(format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}").into_bytes())
        }
        Fault::Garbage => {
            let _ = writer.write_all(b"this is not HTTP at all\r\n\r\n");
            let _ = writer.shutdown(std::net::Shutdown::Both);
            None
        }
        Fault::Reset => {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            None
        }
    }
}
