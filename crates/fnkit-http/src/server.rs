//! Listening, accepting, and shutting down gracefully.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fnkit_core::{Error, ErrorKind, FunctionInfo, Platform};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};

use crate::dispatch::Shape;
use crate::sentinel::{Handoff, Sentinel};
use crate::service::{handle, State};
use crate::Config;

/// Serves `function` over HTTP on the platform `info` names, with settings from the
/// environment ([`Config::from_env`]), until SIGTERM or SIGINT.
pub(crate) async fn serve<S: Shape + ?Sized>(
    function: Arc<S>,
    info: Arc<FunctionInfo>,
) -> Result<(), Error> {
    let config = Config::from_env(info.platform)?;
    serve_with(function, info, config, shutdown_signal()?).await
}

/// Resolves at the first SIGTERM or SIGINT. Handled explicitly: as PID 1 in a `FROM scratch`
/// image, an unhandled SIGTERM would be ignored. The handlers write into a socket
/// ([`fnkit_core::adapter::signals`]) read on the runtime's I/O driver: no Tokio signal driver.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()>, Error> {
    use fnkit_core::adapter::signals::{signal_pipe, SIGINT, SIGTERM};
    let pipe = signal_pipe(&[SIGTERM, SIGINT])
        .and_then(tokio::net::UnixStream::from_std)
        .map_err(Error::internal)?;
    Ok(async move {
        if delivered(&pipe).await == Some(SIGINT) {
            tracing::info!("SIGINT received; shutting down");
        } else {
            tracing::info!("SIGTERM received; shutting down");
        }
    })
}

/// Waits until the signal handler has written its byte (the signal's number) into `pipe`, and
/// returns the signal; `None` when the pipe failed.
async fn delivered(pipe: &tokio::net::UnixStream) -> Option<i32> {
    let mut byte = [0_u8; 1];
    loop {
        pipe.readable().await.ok()?;
        match pipe.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(1) => return Some(i32::from(byte[0])),
            _ => return None,
        }
    }
}

/// [`serve`] with explicit settings and shutdown trigger.
///
/// After `shutdown` resolves: readiness answers 503; new connections are still accepted for
/// [`Config::accept_after_signal`] (OpenFaaS) and then refused; in-flight requests finish, for
/// up to [`Config::shutdown_timeout`]; idle keep-alive connections are closed; then it returns
/// `Ok(())`.
///
/// Beside the runtime, the probe thread ([`Sentinel`]) answers health, readiness and probe
/// requests on new connections while a handler holds every worker.
///
/// # Errors
/// When the address cannot be bound.
pub(crate) async fn serve_with<S: Shape + ?Sized>(
    function: Arc<S>,
    info: Arc<FunctionInfo>,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let addr = config.addr;
    let listener = bind(addr)?;
    let platform = info.platform;
    let state = Arc::new(State::new(info, config));
    let accepted = Arc::new(AtomicU64::new(0));
    let (sentinel, handoff) = Sentinel::new(state.clone(), accepted.clone());
    state.probe_thread.set(sentinel.clone());
    let probes = Probes { sentinel, handoff };
    if platform == Platform::Local {
        tracing::info!(
            platform = platform.as_str(),
            "listening on http://{addr} (local mode: POST JSON to http://localhost:{}/)",
            addr.port()
        );
    } else {
        tracing::info!(platform = platform.as_str(), "listening on http://{addr}");
    }

    fnkit_core::adapter::observe::ready(platform);
    let builder = connection_builder(state.config.read_timeout);
    let graceful = GracefulShutdown::new();

    tokio::pin!(shutdown);
    let serving = Serving {
        builder: &builder,
        graceful: &graceful,
        state: &state,
        function: &function,
        accepted: &accepted,
    };
    serving
        .accept_until(&listener, &mut shutdown, &probes)
        .await;
    state.begin_shutdown();
    let linger = state.config.accept_after_signal;
    if !linger.is_zero() {
        tracing::info!("still accepting for {linger:?} as the platform keeps routing traffic");
        let deadline = tokio::time::sleep(linger);
        tokio::pin!(deadline);
        serving
            .accept_until(&listener, &mut deadline, &probes)
            .await;
    }
    drop(listener);
    probes.sentinel.stop();
    // Connections the probe thread took and handed over are in flight like any other.
    for stream in probes.handoff.take() {
        serving.serve_std(stream);
    }

    let open = graceful.count();
    tracing::info!(open_connections = open, "draining");
    let budget = state.config.shutdown_timeout;
    let started = std::time::Instant::now();
    match tokio::time::timeout(budget, graceful.shutdown()).await {
        Ok(()) => tracing::info!("drained"),
        Err(_) => tracing::warn!(
            "connections still busy after {budget:?} (FNKIT_SHUTDOWN_TIMEOUT_SECS); not waiting"
        ),
    }
    if fnkit_core::adapter::observe::observed() {
        // Spans and metrics buffered for export go out before the process does.
        let left = budget.saturating_sub(started.elapsed());
        let _ = tokio::time::timeout(left, fnkit_core::adapter::observe::flush()).await;
    }
    if fnkit_core::adapter::has_shutdown_hooks() {
        // What is left of the same budget: the platform's grace period does not stretch.
        let left = budget.saturating_sub(started.elapsed());
        let hooks = fnkit_core::adapter::run_shutdown_hooks(state.info.platform, |e| {
            tracing::error!("a shutdown hook failed: {}", e.message());
        });
        if tokio::time::timeout(left, hooks).await.is_err() {
            tracing::warn!("shutdown hooks still running after {budget:?} in all; exiting");
        }
    }
    tracing::info!("exiting");
    Ok(())
}

/// HTTP/1.1 and h2c with prior knowledge on one port (feature `http2`, on by default)...
#[cfg(feature = "http2")]
type ConnBuilder = hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>;
/// ... or HTTP/1.1 alone, about 270 KB smaller (`hello`: 1,184,728 against 1,459,288 bytes),
/// for platforms that never speak HTTP/2 to the function (of-watchdog proxies HTTP/1.1).
#[cfg(not(feature = "http2"))]
type ConnBuilder = hyper::server::conn::http1::Builder;

fn connection_builder(read_timeout: Duration) -> ConnBuilder {
    #[cfg(feature = "http2")]
    {
        let mut builder = ConnBuilder::new(hyper_util::rt::TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(read_timeout);
        builder
    }
    #[cfg(not(feature = "http2"))]
    {
        let mut builder = ConnBuilder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(read_timeout);
        builder
    }
}

/// The listening socket, registered with the runtime: made non-blocking by `socket` itself,
/// `SO_REUSEADDR` (a restarted function binds at once), a backlog of 1,024 (the kernel caps it
/// at `net.core.somaxconn`).
fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, Error> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    listen().map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot listen on {addr}: {e} (set PORT to another port)"),
        )
        .with_source(e)
    })
}

/// What the accept loop needs, borrowed.
struct Serving<'a, S: ?Sized> {
    builder: &'a ConnBuilder,
    graceful: &'a GracefulShutdown,
    state: &'a Arc<State>,
    function: &'a Arc<S>,
    /// Connections accepted so far: the probe thread's sign that the runtime is not stuck.
    accepted: &'a AtomicU64,
}

impl<S: Shape + ?Sized> Serving<'_, S> {
    /// Accepts connections, and takes those the probe thread hands over, and serves each on its
    /// own task until `stop` resolves.
    async fn accept_until<F: Future<Output = ()> + Unpin>(
        &self,
        listener: &TcpListener,
        stop: &mut F,
        probes: &Probes,
    ) {
        loop {
            tokio::select! {
                biased;
                () = &mut *stop => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        self.accepted.fetch_add(1, Ordering::Relaxed);
                        self.serve_connection(stream);
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                event = probes.next() => match event {
                    ProbeEvent::Start(sentinel) => {
                        sentinel.start(listener);
                        // The first answer is out: what start-up deferred runs now.
                        fnkit_core::adapter::first_answer_out();
                    }
                    ProbeEvent::HandedOver(streams) => {
                        for stream in streams {
                            self.serve_std(stream);
                        }
                    }
                },
            }
        }
    }

    /// Serves a connection the probe thread accepted (its first request still unread).
    fn serve_std(&self, stream: std::net::TcpStream) {
        match tokio::net::TcpStream::from_std(stream) {
            Ok(stream) => self.serve_connection(stream),
            Err(e) => tracing::debug!("a handed-over connection was lost: {e}"),
        }
    }

    fn serve_connection(&self, stream: tokio::net::TcpStream) {
        let _ = stream.set_nodelay(true);
        let state = self.state.clone();
        let function = self.function.clone();
        let service = service_fn(move |req| handle(state.clone(), function.clone(), req));
        let conn = self.builder.serve_connection(TokioIo::new(stream), service);
        #[cfg(feature = "http2")]
        let conn = conn.into_owned();
        let conn = self.graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended with an error: {e}");
            }
        });
    }
}

/// The probe thread and the connections it hands over.
struct Probes {
    sentinel: Sentinel,
    handoff: Arc<Handoff>,
}

impl Probes {
    /// What the accept loop is to do for the probe thread: start it (a request asked for it),
    /// or serve the connections it handed over.
    async fn next(&self) -> ProbeEvent<'_> {
        tokio::select! {
            () = self.sentinel.asked() => ProbeEvent::Start(&self.sentinel),
            streams = self.handoff.next() => ProbeEvent::HandedOver(streams),
        }
    }
}

enum ProbeEvent<'a> {
    Start(&'a Sentinel),
    HandedOver(Vec<std::net::TcpStream>),
}
