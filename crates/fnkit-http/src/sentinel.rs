//! Probes that never wait for a busy handler (docs/runtime.md).
//!
//! The handler runtime accepts and serves every connection, as before. Beside it, a small thread
//! of its own (`fnkit-probes`: no Tokio runtime, one `epoll` through mio, blocking reads) watches
//! the same listening socket and does nothing while the runtime accepts. When a connection has
//! waited [`GRACE`] without the runtime accepting anything (a handler computing without `.await`
//! holds the only worker, or every worker), the thread accepts what is pending itself, reads the
//! first request head without consuming it (`MSG_PEEK`), answers health, readiness and probe
//! requests (`answer_platform_paths`: the same answers) and hands any other connection, unread,
//! to the handler runtime, which serves it once it is free.
//!
//! What it costs: a thread and its copy of the listening socket, both made once the first
//! request's answer is out (so a cold start does not wait for them; [`ProbeStart`]); a wake-up of
//! that thread when a new connection arrives after a quiet spell (at most one per [`GRACE`] while
//! they keep coming); per request, one atomic load. Nothing on keep-alive connections.
//!
//! What it does not cover: a probe on a keep-alive connection the busy runtime already serves
//! (kubelet and Knative's queue-proxy probe on a new connection each time); h2c connections,
//! which it hands over whole (their requests cannot be read by a peek); and the first request of
//! the process, if it computes before the thread has started.

use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::net::TcpStream as StdStream;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, Request};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::sync::Notify;

use crate::reply::Reply;
use crate::service::State;

/// How long a connection may wait to be accepted before the probe thread takes it.
pub(crate) const GRACE: Duration = Duration::from_millis(10);
/// How long a taken connection may take to send its request head before it is handed over
/// unjudged (probes send theirs at once; the thread judges one connection at a time).
const HEAD_WAIT: Duration = Duration::from_millis(200);
/// The longest request head read: a larger one is handed over.
const HEAD_MAX: usize = 8 * 1024;
/// Headers read from a request head: more and it is handed over.
const MAX_HEADERS: usize = 48;

const LISTENER: Token = Token(0);
const STOP: Token = Token(1);

/// Connections the probe thread took but does not answer, for the handler runtime: a list
/// and a wake-up (no channel type of its own: these are rare, and the binary stays smaller).
#[derive(Default)]
pub(crate) struct Handoff {
    streams: Mutex<Vec<StdStream>>,
    added: Notify,
}

impl Handoff {
    fn push(&self, stream: StdStream) {
        self.list().push(stream);
        self.added.notify_one();
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<StdStream>> {
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connections handed over so far, at once.
    pub(crate) fn take(&self) -> Vec<StdStream> {
        std::mem::take(&mut *self.list())
    }

    /// Waits until connections are handed over, and takes them.
    pub(crate) async fn next(&self) -> Vec<StdStream> {
        loop {
            let taken = self.take();
            if !taken.is_empty() {
                return taken;
            }
            self.added.notified().await;
        }
    }
}

/// The probe thread: not started until [`Sentinel::start`], running until [`Sentinel::stop`].
/// Cheap to clone (the clones share the thread).
#[derive(Clone)]
pub(crate) struct Sentinel(Arc<Shared>);

struct Shared {
    phase: Mutex<Phase>,
    /// Whether a request asked for the thread: a check without the lock.
    left_idle: AtomicBool,
    /// Wakes the accept loop to start it.
    asked: Notify,
}

enum Phase {
    /// Not started: what the thread will work with, but the listening socket.
    Idle(Box<Parts>),
    Running(Arc<Stop>, std::thread::JoinHandle<()>),
    Stopped,
}

/// How the runtime tells the thread to stop: a flag, and the thread's waker once it has one.
#[derive(Default)]
struct Stop {
    requested: AtomicBool,
    waker: OnceLock<Waker>,
}

impl Sentinel {
    /// The probe thread, with the runtime's count of accepted connections, and the receiving
    /// end of the connections it will hand over. No thread yet: the first request starts it
    /// ([`ProbeStart`]), after its answer, so that a cold start does not wait for it.
    pub(crate) fn new(state: Arc<State>, accepted: Arc<AtomicU64>) -> (Self, Arc<Handoff>) {
        let handoff = Arc::new(Handoff::default());
        let handed = handoff.clone();
        let parts = Parts {
            state,
            accepted,
            handoff,
            stop: Arc::new(Stop::default()),
        };
        let sentinel = Self(Arc::new(Shared {
            phase: Mutex::new(Phase::Idle(Box::new(parts))),
            left_idle: AtomicBool::new(false),
            asked: Notify::new(),
        }));
        (sentinel, handed)
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0
            .phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// True once: for the first request.
    fn claim(&self) -> bool {
        !self.0.left_idle.load(Ordering::Relaxed) && !self.0.left_idle.swap(true, Ordering::AcqRel)
    }

    /// Resolves once a request asked for the thread.
    pub(crate) async fn asked(&self) {
        self.0.asked.notified().await;
    }

    /// Starts the thread on a copy of `listener` (the runtime's listening socket), once (not
    /// after [`Sentinel::stop`]); a warning where it cannot start (the server then serves as
    /// before, probes waiting for a busy handler).
    pub(crate) fn start(&self, listener: &impl AsFd) {
        let mut phase = self.phase();
        if !matches!(*phase, Phase::Idle(_)) {
            return;
        }
        let Phase::Idle(parts) = std::mem::replace(&mut *phase, Phase::Stopped) else {
            return;
        };
        // The thread's own descriptor for the socket, closed when the thread stops.
        let listener = match listener.as_fd().try_clone_to_owned() {
            Ok(fd) => StdListener::from(fd),
            Err(e) => {
                tracing::warn!("no probe thread ({e}); probes wait for busy handlers");
                return;
            }
        };
        let watch = Watch {
            listener,
            parts: *parts,
        };
        let stop = watch.parts.stop.clone();
        // Its poller is made on the thread itself.
        let thread = std::thread::Builder::new()
            .name("fnkit-probes".to_owned())
            .stack_size(128 * 1024)
            .spawn(move || {
                if let Err(e) = watch.run() {
                    tracing::warn!("the probe thread stopped ({e}); probes wait for busy handlers");
                }
            });
        match thread {
            Ok(thread) => *phase = Phase::Running(stop, thread),
            Err(e) => {
                tracing::warn!(
                    "cannot start the probe thread ({e}); probes wait for busy handlers"
                );
            }
        }
    }

    /// Stops the thread and waits for it, so its copy of the listening socket is closed (or
    /// makes sure it never starts).
    pub(crate) fn stop(&self) {
        let phase = std::mem::replace(&mut *self.phase(), Phase::Stopped);
        if let Phase::Running(stop, thread) = phase {
            stop.requested.store(true, Ordering::SeqCst);
            if let Some(waker) = stop.waker.get() {
                let _ = waker.wake();
            }
            let _ = thread.join();
        }
    }
}

/// The probe thread as requests see it: the first one asks for it, and the accept loop starts
/// it when the runtime next turns to it, after that request's turn (which writes its answer):
/// the thread does not stand between a cold start and its first answer. Later requests check one
/// flag.
#[derive(Default)]
pub(crate) struct ProbeStart(OnceLock<Sentinel>);

impl ProbeStart {
    /// The thread to start.
    pub(crate) fn set(&self, sentinel: Sentinel) {
        let _ = self.0.set(sentinel);
    }

    /// Called as each request begins.
    pub(crate) fn on_request(&self) {
        if let Some(sentinel) = self.0.get() {
            if sentinel.claim() {
                sentinel.0.asked.notify_one();
            }
        }
    }
}

/// What the probe thread works with: its copy of the listening socket, and the rest.
struct Watch {
    listener: StdListener,
    parts: Parts,
}

/// What the probe thread works with, but the listening socket (copied when it starts).
struct Parts {
    state: Arc<State>,
    accepted: Arc<AtomicU64>,
    handoff: Arc<Handoff>,
    stop: Arc<Stop>,
}

/// The thread was asked to stop.
struct Stopped;

impl Watch {
    fn run(self) -> std::io::Result<()> {
        let mut poll = Poll::new()?;
        let fd = self.listener.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), LISTENER, Interest::READABLE)?;
        let _ = self
            .parts
            .stop
            .waker
            .set(Waker::new(poll.registry(), STOP)?);
        let mut events = Events::with_capacity(8);
        // Waits for the next connection (an edge: one event per arrival), then watches it.
        while self.wait(&mut poll, &mut events, None).is_ok() {
            if self.watch(&mut poll, &mut events).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Polls until `timeout` passes (forever for `None`; returns at the first event then),
    /// or the thread is asked to stop.
    fn wait(
        &self,
        poll: &mut Poll,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> Result<(), Stopped> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.parts.stop.requested.load(Ordering::SeqCst) {
                return Err(Stopped);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = poll.poll(events, left) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Stopped);
                }
            }
            if self.parts.stop.requested.load(Ordering::SeqCst) {
                return Err(Stopped);
            }
            match deadline {
                None if !events.is_empty() => return Ok(()),
                Some(d) if Instant::now() >= d => return Ok(()),
                _ => {}
            }
        }
    }

    /// A connection is pending (or was a moment ago): leaves it to the runtime while the
    /// runtime accepts; takes everything pending once a [`GRACE`] passes without an accept.
    fn watch(&self, poll: &mut Poll, events: &mut Events) -> Result<(), Stopped> {
        loop {
            let seen = self.parts.accepted.load(Ordering::Relaxed);
            self.wait(poll, events, Some(GRACE))?;
            if self.parts.accepted.load(Ordering::Relaxed) != seen {
                continue; // the runtime accepts: look again after another spell
            }
            loop {
                match self.listener.accept() {
                    Ok((stream, _peer)) => self.triage(stream),
                    // Nothing (more) pending: the runtime took it, or we did.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => {
                        // Out of file descriptors and the like: the runtime will say so.
                        tracing::debug!("the probe thread could not accept: {e}");
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Reads the first request head of `stream` without consuming it; answers it when it is a
    /// platform path or a probe, hands the connection over otherwise.
    fn triage(&self, stream: StdStream) {
        match read_head(&stream, &self.parts.state) {
            Verdict::Answer(answer, head_len) => {
                let _ = answer_with(stream, &answer, head_len);
                tracing::debug!("answered a probe while the handler runtime was busy");
            }
            Verdict::HandOver => {
                // Served by the runtime when it is free (or closed at shutdown).
                if stream.set_nonblocking(true).is_ok() {
                    self.parts.handoff.push(stream);
                }
            }
            Verdict::Drop => {}
        }
    }
}

/// Consumes the request head, writes the answer, and closes.
fn answer_with(mut stream: StdStream, answer: &[u8], head_len: usize) -> std::io::Result<()> {
    let mut head = vec![0; head_len];
    stream.read_exact(&mut head)?;
    stream.set_write_timeout(Some(HEAD_WAIT))?;
    stream.write_all(answer)?;
    stream.shutdown(std::net::Shutdown::Write)
}

/// What to do with a taken connection.
enum Verdict {
    /// Answer it here: the answer, and how many bytes of request to consume first.
    Answer(Vec<u8>, usize),
    /// Hand it to the handler runtime.
    HandOver,
    /// The peer is gone.
    Drop,
}

fn read_head(stream: &StdStream, state: &State) -> Verdict {
    let deadline = Instant::now() + HEAD_WAIT;
    let mut buf = vec![0; HEAD_MAX];
    let mut seen = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Verdict::HandOver; // too slow to judge here
        }
        let n = match stream.peek(&mut buf) {
            Ok(0) => return Verdict::Drop,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Verdict::HandOver
            }
            Err(_) => return Verdict::Drop,
        };
        match judge(&buf[..n], state) {
            Some(verdict) => return verdict,
            None if n == buf.len() => return Verdict::HandOver,
            None => {
                // A partial head. A peek finds the same bytes again at once: wait for more.
                if n == seen {
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen = n;
            }
        }
    }
}

/// The verdict on a request head, `None` while it is incomplete.
fn judge(bytes: &[u8], state: &State) -> Option<Verdict> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    // Not HTTP/1 (an h2c preface), too many headers, malformed: the runtime's to answer.
    let head_len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Verdict::HandOver),
    };
    let answer = answer(&req, state).map_or(Verdict::HandOver, |a| Verdict::Answer(a, head_len));
    Some(answer)
}

/// The bytes of the answer to a platform path or probe, `None` for the handler's requests and
/// for any request with a body (left to the runtime, which reads bodies).
fn answer(parsed: &httparse::Request<'_, '_>, state: &State) -> Option<Vec<u8>> {
    let method = Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let mut req = Request::builder().method(method.clone()).uri(parsed.path?);
    for h in parsed.headers.iter() {
        req = req.header(h.name, h.value);
    }
    let req = req.body(()).ok()?;
    let has_body = req.headers().contains_key(TRANSFER_ENCODING)
        || req
            .headers()
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return None;
    }
    let reply = state.answer_platform_paths(&req, &crate::probes::Seen::of(req.headers()))?;
    Some(encode(reply, method == Method::HEAD))
}

/// An HTTP/1.1 answer that closes the connection.
fn encode(reply: Reply, head: bool) -> Vec<u8> {
    let (parts, body) = reply.into_parts();
    let body = body.into_whole().unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        parts.status.as_str(),
        parts.status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if !head {
        out.extend_from_slice(&body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::adapter::env_from;
    use fnkit_core::{FunctionInfo, Platform};

    fn state() -> State {
        let info = Arc::new(FunctionInfo::from_lookup(Platform::Knative, |_| None));
        let config = crate::Config::from_lookup(Platform::Knative, env_from(&[])).unwrap();
        State::new(info, config)
    }

    fn answered(head: &str) -> String {
        match judge(head.as_bytes(), &state()) {
            Some(Verdict::Answer(bytes, len)) => {
                assert_eq!(len, head.len(), "the whole head is consumed");
                String::from_utf8(bytes).unwrap()
            }
            Some(Verdict::HandOver) => "handed over".to_owned(),
            Some(Verdict::Drop) => "dropped".to_owned(),
            None => "incomplete".to_owned(),
        }
    }

    #[test]
    fn platform_paths_and_probes_are_answered_and_close() {
        let health = answered("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health}");
        assert!(
            health.contains("content-type: application/json\r\n"),
            "{health}"
        );
        assert!(health.contains("connection: close\r\n"), "{health}");
        let body = health.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["status"], "ok");
        assert!(health.contains(&format!("content-length: {}\r\n", body.len())));

        let ready = answered("GET /ready HTTP/1.1\r\n\r\n");
        assert!(ready.ends_with(r#"{"status":"ready"}"#), "{ready}");
        let probe = answered("GET /any HTTP/1.1\r\nK-Kubelet-Probe: queue\r\n\r\n");
        assert!(probe.ends_with(r#"{"status":"ready"}"#), "{probe}");
        let kube = answered("GET /healthz HTTP/1.1\r\nUser-Agent: kube-probe/1.30\r\n\r\n");
        assert!(kube.starts_with("HTTP/1.1 200 OK"), "{kube}");
        let head = answered("HEAD /ready HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");
    }

    #[test]
    fn everything_else_goes_to_the_handler_runtime() {
        assert_eq!(
            answered("GET /orders HTTP/1.1\r\nHost: x\r\n\r\n"),
            "handed over"
        );
        assert_eq!(
            answered("POST /health HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}"),
            "handed over",
            "a request with a body is the runtime's"
        );
        // h2c with prior knowledge: not HTTP/1.
        assert_eq!(answered("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "handed over");
        assert_eq!(answered("GET /health HTTP/1.1\r\nHost:"), "incomplete");
        assert_eq!(answered("nonsense\r\n\r\n"), "handed over");
    }

    #[test]
    fn readiness_turns_503_once_shutdown_began() {
        let state = state();
        state.begin_shutdown();
        let Some(Verdict::Answer(bytes, _)) = judge(b"GET /ready HTTP/1.1\r\n\r\n", &state) else {
            panic!("not answered");
        };
        assert!(bytes.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
    }

    #[test]
    fn a_handover_list_gives_what_was_pushed_once() {
        let handoff = Handoff::default();
        let listener = StdListener::bind("127.0.0.1:0").unwrap();
        let a = StdStream::connect(listener.local_addr().unwrap()).unwrap();
        handoff.push(a);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(handoff.next()).len(), 1);
        assert!(handoff.take().is_empty());
    }
}
