//! Shutdown hooks on Lambda (docs/platforms.md §1.12): Lambda sends the runtime SIGTERM before
//! it ends a sandbox only when an extension is registered. With an `on_shutdown` hook set, fnkit
//! registers an internal extension that takes no events, during init; on SIGTERM the hooks run
//! within [`HOOK_BUDGET`] and the process exits 0.

use std::time::Duration;

use fnkit_core::{Error, Platform};
use tokio::signal::unix::{signal, Signal, SignalKind};

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
pub(crate) async fn prepare(api: &mut RuntimeApi) -> Result<Option<Signal>, Error> {
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
    let sigterm = signal(SignalKind::terminate()).map_err(Error::internal)?;
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
