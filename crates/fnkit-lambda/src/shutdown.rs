//! Shutdown hooks on Lambda (docs/platforms.md §1.12): Lambda sends the runtime SIGTERM before
//! it ends a sandbox only when an extension is registered. With an `on_shutdown` hook set, fnkit
//! registers an internal extension that takes no events, during init; on SIGTERM the hooks run
//! within [`HOOK_BUDGET`] and the process exits 0.

use std::time::Duration;

use fnkit_core::{Error, Platform};

/// Resolves at SIGTERM: a byte the signal handler writes into a socket pair
/// ([`fnkit_core::adapter::signals`]), read on the runtime's own I/O driver. Nothing is installed
/// until [`prepare`] runs, so a function without hooks handles no signal and pays nothing at start.
pub(crate) struct Sigterm(tokio::net::UnixStream);

impl Sigterm {
    fn install() -> Result<Self, Error> {
        use fnkit_core::adapter::signals::{signal_pipe, SIGTERM};
        signal_pipe(&[SIGTERM])
            .and_then(tokio::net::UnixStream::from_std)
            .map(Self)
            .map_err(Error::internal)
    }

    /// Waits for the signal.
    pub(crate) async fn recv(&mut self) {
        let mut byte = [0_u8; 1];
        loop {
            if self.0.readable().await.is_err() {
                return;
            }
            match self.0.try_read(&mut byte) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => return,
            }
        }
    }
}

use crate::client::RuntimeApi;

/// The internal extension's name, as Lambda lists it.
const EXTENSION_NAME: &str = "fnkit-shutdown-hooks";

/// Lambda gives a runtime with an internal extension 500 ms between SIGTERM and SIGKILL.
const HOOK_BUDGET: Duration = Duration::from_millis(450);

/// Registers the extension, starts its `event/next` (which tells Lambda it is ready and then
/// waits for good), and listens for SIGTERM. A failed registration is logged and the function
/// runs on without hooks: it must not fail init for a goodbye.
///
/// # Errors
/// When the SIGTERM handler cannot be installed.
pub(crate) async fn prepare(api: &mut RuntimeApi) -> Result<Option<Sigterm>, Error> {
    let id = match api.register_extension(EXTENSION_NAME).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(
                "shutdown hooks will not run: the extension could not be registered ({})",
                e.message()
            );
            return Ok(None);
        }
    };
    let sigterm = Sigterm::install()?;
    let mut events = api.fresh();
    tokio::spawn(async move {
        match events.extension_next(&id).await {
            Ok(status) => tracing::debug!(%status, "the extension's event/next returned"),
            Err(e) => tracing::debug!("the extension's event/next failed: {}", e.message()),
        }
    });
    Ok(Some(sigterm))
}

/// Runs the hooks, bounded by [`HOOK_BUDGET`].
pub(crate) async fn run_hooks(platform: Platform) {
    tracing::info!("SIGTERM received; running shutdown hooks");
    let hooks = fnkit_core::adapter::run_shutdown_hooks(platform, |e| {
        tracing::error!("a shutdown hook failed: {}", e.message());
    });
    if tokio::time::timeout(HOOK_BUDGET, hooks).await.is_err() {
        tracing::warn!("shutdown hooks still running after {HOOK_BUDGET:?}; exiting");
    }
}
