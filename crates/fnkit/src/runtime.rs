//! The Tokio runtime handlers run on, sized by the CPU quota (docs/runtime.md), the warning for
//! handlers that hold it, and [`blocking`] for CPU-bound work.

use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use fnkit_core::adapter::{env_var, workers};
use fnkit_core::{Error, ErrorKind, Platform};

/// The default of `FNKIT_BLOCKED_WARN_MS`.
const BLOCKED_WARN_MS: u64 = 100;

/// Builds the runtime for `platform`: current-thread at one worker (one thread: the cheapest
/// start, and all a sequential Lambda loop or a one-CPU container can use), multi-thread with
/// that many workers above. Also sets the blocked-handler warning.
///
/// # Errors
/// A bad `FNKIT_WORKERS` or `FNKIT_BLOCKED_WARN_MS`, or a runtime that cannot be built.
pub(crate) fn build(platform: Platform) -> Result<tokio::runtime::Runtime, Error> {
    // Without `multi-thread` one worker runs whatever the quota, so off Lambda (whose sequential
    // loop reads no cgroup file anyway) start-up does not read it: `/health` reads it when asked,
    // and the note about an unused quota waits for the first answer (seven system calls and two
    // pages of code fewer before it; BENCHMARKS.md).
    let quota_later = cfg!(not(feature = "multi-thread")) && platform != Platform::Lambda;
    let workers = if quota_later {
        workers::plan(platform, lambda_concurrency(), env_var, |_| None, || 1)?
    } else {
        workers::plan(
            platform,
            lambda_concurrency(),
            env_var,
            cgroup_files(),
            || std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        )?
    };
    #[cfg(not(feature = "multi-thread"))]
    let workers = one_worker(workers)?;
    if let Some(threshold) = blocked_warn(env_var)? {
        fnkit_core::adapter::watch_blocking(threshold, report_blocked);
    }
    if quota_later {
        workers::set_quota_later(workers, cgroup_quota);
        fnkit_core::adapter::after_first_answer(note_unused_quota);
    } else {
        workers::set(workers);
    }
    #[cfg(feature = "multi-thread")]
    if workers.count > 1 {
        tracing::info!(
            workers = workers.count,
            cpu_quota = workers.cpu_quota,
            from = workers.source.as_str(),
            "running handlers on {} worker threads",
            workers.count
        );
        return tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.count)
            .enable_all()
            .build()
            .map_err(Error::internal);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::internal)
}

/// A build without `multi-thread` runs one worker: a quota above one CPU is noted, an explicit
/// `FNKIT_WORKERS` above 1 is an error (it would not be honoured). Compiled in every build, so its
/// test runs in the workspace's (where the example functions turn `multi-thread` on).
#[cfg_attr(feature = "multi-thread", allow(dead_code))]
fn one_worker(workers: workers::Workers) -> Result<workers::Workers, Error> {
    if workers.count <= 1 {
        return Ok(workers);
    }
    if workers.source == workers::Source::Setting {
        return Err(Error::invalid_input(format!(
            "FNKIT_WORKERS={} asks for more than one worker, but this binary was built without \
             fnkit's `multi-thread` feature: enable it in Cargo.toml or unset FNKIT_WORKERS",
            workers.count
        )));
    }
    note_one_worker(workers.cpu_quota);
    Ok(workers::Workers {
        count: 1,
        source: workers::Source::Default,
        ..workers
    })
}

/// Reads the process's cgroup files (under [`workers::CGROUP_ROOT`]).
fn cgroup_files() -> impl Fn(&str) -> Option<String> {
    workers::read_under(Path::new(workers::CGROUP_ROOT))
}

/// The CPU quota the cgroup files give.
#[cfg_attr(feature = "multi-thread", allow(dead_code))]
fn cgroup_quota() -> Option<f64> {
    workers::cpu_quota(cgroup_files())
}

/// The note for a quota above one CPU in a binary without `multi-thread`.
#[cfg_attr(feature = "multi-thread", allow(dead_code))]
fn note_one_worker(cpu_quota: Option<f64>) {
    tracing::info!(
        cpu_quota,
        "one worker thread: this binary was built without fnkit's `multi-thread` feature"
    );
}

/// After the first answer, where start-up left the quota unread: the same note, when the quota
/// is above one CPU.
#[cfg_attr(feature = "multi-thread", allow(dead_code))]
fn note_unused_quota() {
    if let Some(quota) = workers::current()
        .and_then(|w| w.cpu_quota)
        .filter(|&q| q > 1.0)
    {
        note_one_worker(Some(quota));
    }
}

/// How many Lambda invocations run at once, by the Lambda runtime's own rule (the worker count
/// and the log format both follow it).
pub(crate) fn lambda_concurrency() -> usize {
    #[cfg(feature = "lambda")]
    return fnkit_lambda::max_concurrency();
    #[cfg(not(feature = "lambda"))]
    1
}

/// `FNKIT_BLOCKED_WARN_MS`: milliseconds (100 by default), 0 for no warning.
fn blocked_warn(var: impl Fn(&str) -> Option<String>) -> Result<Option<Duration>, Error> {
    let ms = match var("FNKIT_BLOCKED_WARN_MS") {
        None => BLOCKED_WARN_MS,
        Some(v) => v.trim().parse::<u64>().map_err(|_| {
            Error::invalid_input(format!(
                "FNKIT_BLOCKED_WARN_MS={v:?} is not a number of milliseconds (0 turns the warning off)"
            ))
        })?,
    };
    Ok((ms > 0).then(|| Duration::from_millis(ms)))
}

/// The warning for a handler poll that held its thread: logged inside the request's span, so the
/// line carries its request id.
fn report_blocked(held: Duration) {
    let ms = u64::try_from(held.as_millis()).unwrap_or(u64::MAX);
    tracing::warn!(
        held_ms = ms,
        "the handler held its thread for {ms} ms without yielding (FNKIT_BLOCKED_WARN_MS); \
         requests on that thread waited: run CPU-bound or blocking work in fnkit::blocking(|| ...)"
    );
}

/// Runs CPU-bound or blocking work (an image resize, a hash, a synchronous client) on Tokio's
/// blocking thread pool and waits for it without holding the handler's thread, so probes and
/// other requests on that thread go on being answered.
///
/// ```no_run
/// use fnkit::{Context, Error};
///
/// async fn checksum(data: Vec<u8>, _ctx: Context) -> Result<u64, Error> {
///     fnkit::blocking(move || data.iter().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(*b)))
///         .await
/// }
///
/// fn main() -> Result<(), Error> {
///     fnkit::run(checksum)
/// }
/// ```
///
/// The pool's threads start on first use (the first call costs a thread start) and stop after
/// 10 s idle. The work is not cancelled when the request times out: it runs to its end, its
/// result unused.
///
/// # Errors
/// [`ErrorKind::Panic`] when `f` panics (the message is the panic's); [`ErrorKind::Internal`]
/// when the runtime is shutting down and no longer runs blocking work.
///
/// # Panics
/// Outside a Tokio runtime (a handler always runs inside one).
pub async fn blocking<F, T>(f: F) -> Result<T, Error>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = match fnkit_core::adapter::panic_message(&*payload) {
                Some(m) => format!("the blocking work panicked: {m}"),
                None => "the blocking work panicked".to_owned(),
            };
            Err(Error::new(ErrorKind::Panic, message))
        }
        Err(e) => Err(Error::new(
            ErrorKind::Internal,
            format!("the blocking work did not run: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::adapter::env_from;

    /// Without `multi-thread` (off by default): a quota above one CPU gives one worker, and an
    /// explicit `FNKIT_WORKERS` above 1 is refused, naming the feature.
    #[test]
    fn without_multi_thread_one_worker_runs_and_a_setting_for_more_is_refused() {
        let quota = workers::Workers {
            count: 2,
            cpu_quota: Some(2.0),
            source: workers::Source::Quota,
        };
        let one = one_worker(quota).unwrap();
        assert_eq!((one.count, one.cpu_quota), (1, Some(2.0)));
        assert_eq!(one.source, workers::Source::Default);
        let asked = workers::Workers {
            count: 3,
            cpu_quota: None,
            source: workers::Source::Setting,
        };
        let err = one_worker(asked).unwrap_err();
        assert!(err.message().contains("FNKIT_WORKERS=3"), "{err}");
        assert!(err.message().contains("`multi-thread`"), "{err}");
        let single = workers::Workers {
            count: 1,
            cpu_quota: None,
            source: workers::Source::Setting,
        };
        assert_eq!(one_worker(single).unwrap().source, workers::Source::Setting);
    }

    #[test]
    fn blocked_warn_defaults_to_100_ms_and_zero_turns_it_off() {
        assert_eq!(
            blocked_warn(env_from(&[])).unwrap(),
            Some(Duration::from_millis(100))
        );
        let env = [("FNKIT_BLOCKED_WARN_MS", "250")];
        assert_eq!(
            blocked_warn(env_from(&env)).unwrap(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            blocked_warn(env_from(&[("FNKIT_BLOCKED_WARN_MS", "0")])).unwrap(),
            None
        );
        let err = blocked_warn(env_from(&[("FNKIT_BLOCKED_WARN_MS", "soon")])).unwrap_err();
        assert!(
            err.message().starts_with("FNKIT_BLOCKED_WARN_MS=\"soon\""),
            "{err}"
        );
    }

    #[test]
    fn blocking_returns_the_value_and_a_panic_is_a_panic_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let main = std::thread::current().id();
            let (value, thread) = blocking(move || (6 * 7, std::thread::current().id()))
                .await
                .unwrap();
            assert_eq!(value, 42);
            assert_ne!(thread, main, "the work ran on the handler's thread");
            let err = blocking(|| -> u8 { panic!("resize failed") })
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Panic);
            assert_eq!(err.message(), "the blocking work panicked: resize failed");
        });
    }
}
