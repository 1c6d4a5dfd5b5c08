//! fnkit's metrics (the `metrics` feature of `fnkit`): an
//! [`Observer`](fnkit_core::adapter::observe::Observer) that counts the handler's invocations.
//!
//! - On the HTTP platforms (Knative, OpenFaaS, local), fnkit answers `GET /metrics` itself with
//!   Prometheus text 0.0.4, or OpenMetrics text 1.0.0 when `Accept` prefers
//!   `application/openmetrics-text`: `fnkit_requests_total{shape,status}`,
//!   `fnkit_request_duration_seconds{shape}` (a histogram, 50 µs to 10 s),
//!   `fnkit_inflight_requests`, `fnkit_cold_start_seconds`, `process_resident_memory_bytes` and
//!   `process_start_time_seconds`. The request never reaches the handler.
//! - On Lambda, where nothing scrapes, each invocation writes one CloudWatch Embedded Metric
//!   Format line on stdout (namespace `fnkit`, dimensions `function` and `shape`: `requests`,
//!   `errors`, `duration`, and `cold_start` on the first).
//!
//! `fnkit::run` calls [`install`], which adds the observer unless `FNKIT_METRICS` is `off`, `0`
//! or `false`. Nothing is built or read at start-up but one clock reading when the function is
//! ready: the registry comes with the first request or scrape, `/proc` is read by scrapes (and on
//! Lambda once, after the first invocation). `docs/metrics.md` has the details and the cost.

mod emf;
mod process;
mod prom;

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use fnkit_core::adapter::observe::{Observer, Record, Start};
use fnkit_core::Platform;

/// Adds the metrics observer, unless `FNKIT_METRICS` turns it off (see [`enabled`]) or it was
/// added already. Call it before serving starts; `fnkit::run` does (feature `metrics`).
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if !enabled(fnkit_core::adapter::env_var("FNKIT_METRICS").as_deref()) {
        return;
    }
    if INSTALLED.set(()).is_ok() {
        fnkit_core::adapter::observe::add_observer(Arc::new(Metrics::new()));
    }
}

/// Whether a value of `FNKIT_METRICS` leaves metrics on: anything but `off`, `0` or `false` (in
/// any case), and unset.
///
/// ```
/// assert!(fnkit_metrics::enabled(None));
/// assert!(fnkit_metrics::enabled(Some("on")));
/// assert!(!fnkit_metrics::enabled(Some("OFF")));
/// assert!(!fnkit_metrics::enabled(Some("0")));
/// ```
pub fn enabled(value: Option<&str>) -> bool {
    !value.is_some_and(|v| {
        let v = v.trim();
        v == "0" || v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("false")
    })
}

/// The metrics observer: Prometheus/OpenMetrics exposition on the HTTP platforms, EMF lines on
/// Lambda. [`install`] adds one to fnkit's observers.
#[derive(Debug, Default)]
pub struct Metrics {
    clock: Arc<Clock>,
    platform: OnceLock<Platform>,
    /// The HTTP platforms' registry, built at the first request or scrape.
    live: OnceLock<prom::Live>,
    /// Lambda's function name and version, read at the first invocation's end.
    function: OnceLock<emf::Function>,
    sink: Sink,
}

impl Metrics {
    /// A new observer; it allocates nothing more until it is used.
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self) -> &prom::Live {
        self.live
            .get_or_init(|| prom::Live::new(self.clock.clone()))
    }

    fn is_lambda(&self) -> bool {
        self.platform.get() == Some(&Platform::Lambda)
    }
}

impl Observer for Metrics {
    fn ready(&self, platform: Platform) {
        self.clock.ready();
        let _ = self.platform.set(platform);
    }

    fn started(&self, start: &Start) {
        if start.platform != Platform::Lambda {
            self.live().started();
        }
    }

    fn finished(&self, record: &Record<'_>) {
        if record.platform != Platform::Lambda {
            self.live().finished(record);
            return;
        }
        let function = self.function.get_or_init(emf::Function::from_env);
        let cold_start = if record.cold_start {
            self.clock.times().map(|t| t.cold_start)
        } else {
            None
        };
        self.sink.write(&emf::line(function, record, cold_start));
    }

    fn render(&self, accept: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
        if self.is_lambda() {
            return None;
        }
        self.live().render(accept)
    }
}

/// When the function became ready, and what `/proc` says about its start, measured once.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    ready: OnceLock<Instant>,
    times: OnceLock<Option<process::Times>>,
}

impl Clock {
    /// Records the moment the function is ready: one clock reading, nothing else.
    pub(crate) fn ready(&self) {
        let _ = self.ready.set(Instant::now());
    }

    /// The cold start and start time, measured on first use after `ready`.
    pub(crate) fn times(&self) -> Option<process::Times> {
        let ready = *self.ready.get()?;
        *self.times.get_or_init(|| process::Times::measure(ready))
    }
}

/// Where EMF lines go: stdout, one locked write per line so that they never interleave with log
/// lines (fnkit's log subscriber writes the same way); a buffer in tests.
#[derive(Debug, Default)]
enum Sink {
    #[default]
    Stdout,
    #[cfg(test)]
    Buffer(std::sync::Mutex<Vec<u8>>),
}

impl Sink {
    fn write(&self, line: &[u8]) {
        match self {
            Self::Stdout => {
                let _ = std::io::stdout().lock().write_all(line);
            }
            #[cfg(test)]
            Self::Buffer(b) => b.lock().unwrap().extend_from_slice(line),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use fnkit_core::{ErrorKind, TraceContext};
    use std::time::{Duration, SystemTime};

    fn record<'a>(
        platform: Platform,
        request_id: &'a str,
        error: Option<ErrorKind>,
        cold_start: bool,
        trace: &'a TraceContext,
    ) -> Record<'a> {
        Record {
            platform,
            shape: "typed",
            request_id,
            trace,
            started: SystemTime::now(),
            duration: Duration::from_micros(120),
            status: if error.is_some() { 400 } else { 200 },
            error,
            http: None,
            trigger: "other",
            cold_start,
        }
    }

    #[test]
    fn values_that_turn_metrics_off() {
        for off in ["off", "Off", "0", "false", "FALSE", " off "] {
            assert!(!enabled(Some(off)), "{off}");
        }
        for on in ["on", "1", "true", "yes"] {
            assert!(enabled(Some(on)), "{on}");
        }
        assert!(enabled(None));
    }

    #[test]
    fn lambda_writes_one_emf_line_per_invocation_and_renders_nothing() {
        let m = Metrics {
            sink: Sink::Buffer(Default::default()),
            ..Metrics::new()
        };
        m.ready(Platform::Lambda);
        let start = Start {
            platform: Platform::Lambda,
            shape: "typed",
        };
        let trace = TraceContext::default();
        m.started(&start);
        m.finished(&record(Platform::Lambda, "a", None, true, &trace));
        m.started(&start);
        m.finished(&record(
            Platform::Lambda,
            "b",
            Some(ErrorKind::InvalidInput),
            false,
            &trace,
        ));
        assert!(m.render(None).is_none());
        assert!(m.live.get().is_none(), "no registry on Lambda");
        let Sink::Buffer(buf) = &m.sink else {
            unreachable!()
        };
        let out = String::from_utf8(buf.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["request_id"], "a");
        assert_eq!(lines[0]["errors"], 0);
        if cfg!(target_os = "linux") {
            let cold = lines[0]["cold_start"].as_f64().unwrap();
            assert!(cold > 0.0, "{cold}");
        }
        assert_eq!(lines[1]["request_id"], "b");
        assert_eq!(lines[1]["errors"], 1);
        assert!(lines[1].get("cold_start").is_none());
    }

    #[test]
    fn http_platforms_render_their_counters() {
        let m = Metrics::new();
        m.ready(Platform::Local);
        assert!(
            m.live.get().is_none(),
            "nothing built before the first request"
        );
        let trace = TraceContext::default();
        m.started(&Start {
            platform: Platform::Local,
            shape: "typed",
        });
        m.finished(&record(Platform::Local, "a", None, true, &trace));
        let (ct, body) = m.render(None).unwrap();
        assert_eq!(ct, prom::PROMETHEUS_TEXT);
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("fnkit_requests_total{shape=\"typed\",status=\"200\"} 1\n"),
            "{body}"
        );
    }
}
