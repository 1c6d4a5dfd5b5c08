//! The HTTP platforms' metrics: live counters, a histogram and gauges in a prometheus-client
//! registry, served as Prometheus text 0.0.4 or OpenMetrics text 1.0.0.

use std::sync::Arc;

use fnkit_core::adapter::observe::Record;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::Clock;

/// `Content-Type` of the Prometheus text exposition format 0.0.4.
pub(crate) const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of the OpenMetrics text format 1.0.0.
pub(crate) const OPENMETRICS_TEXT: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The histogram's upper bounds, in seconds: 50 µs to 10 s, 1-2.5-5 steps, so that a handler that
/// answers in tens of microseconds and one that takes seconds both land in buckets of their own.
pub(crate) const DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    shape: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShapeLabels {
    shape: &'static str,
}

type Durations = Family<ShapeLabels, Histogram, fn() -> Histogram>;

/// The live metrics and the registry that encodes them; built at the first request or scrape.
#[derive(Debug)]
pub(crate) struct Live {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
    inflight: Gauge,
    registry: Registry,
}

impl Live {
    pub(crate) fn new(clock: Arc<Clock>) -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Durations =
            Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS));
        let inflight = Gauge::default();
        // prometheus-client ends each registered help text with a period.
        let mut registry = Registry::default();
        registry.register(
            "fnkit_requests",
            "Invocations of the handler, by handler shape and HTTP status",
            requests.clone(),
        );
        registry.register_with_unit(
            "fnkit_request_duration",
            "Time from a request's arrival to the handler's answer, by handler shape",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "fnkit_inflight_requests",
            "Invocations of the handler in progress",
            inflight.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector(clock)));
        Self {
            requests,
            durations,
            inflight,
            registry,
        }
    }

    pub(crate) fn started(&self) {
        self.inflight.inc();
    }

    pub(crate) fn finished(&self, record: &Record<'_>) {
        self.inflight.dec();
        self.requests
            .get_or_create(&RequestLabels {
                shape: record.shape,
                status: record.status,
            })
            .inc();
        self.durations
            .get_or_create(&ShapeLabels {
                shape: record.shape,
            })
            .observe(record.duration.as_secs_f64());
    }

    /// The exposition the `Accept` header asks for, with its content type.
    pub(crate) fn render(&self, accept: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
        let mut out = String::with_capacity(4096);
        if wants_openmetrics(accept) {
            prometheus_client::encoding::text::encode(&mut out, &self.registry).ok()?;
            Some((OPENMETRICS_TEXT, out.into_bytes()))
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).ok()?;
            Some((PROMETHEUS_TEXT, out.into_bytes()))
        }
    }
}

/// Cold start, resident memory and start time, read when a scrape encodes them: the cold start
/// and start time from `/proc` once, the memory each time. Each is left out where it is unknown.
#[derive(Debug)]
struct ProcessCollector(Arc<Clock>);

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(times) = self.0.times() {
            gauge(
                &mut encoder,
                "fnkit_cold_start",
                "Time from the process's exec to ready (listening), in seconds; the kernel's \
                 10 ms clock tick is its resolution.",
                &Unit::Seconds,
                times.cold_start,
            )?;
            gauge(
                &mut encoder,
                "process_start_time",
                "Start time of the process since the Unix epoch, in seconds.",
                &Unit::Seconds,
                times.start_time,
            )?;
        }
        if let Some(rss) = crate::process::resident_bytes().and_then(|b| i64::try_from(b).ok()) {
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size, in bytes.",
                &Unit::Bytes,
                rss,
            )?;
        }
        Ok(())
    }
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    unit: &Unit,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, Some(unit), g.metric_type())?)
}

/// Whether `Accept` prefers OpenMetrics text: an `application/openmetrics-text` range with a
/// q-value above 0 and at least as high as that of every other range fnkit serves (`text/plain`,
/// `text/*`, `*/*`). Ranges fnkit cannot serve (protobuf) are ignored; no `Accept`, or nothing
/// acceptable, gets Prometheus text, as Prometheus's own clients answer.
pub(crate) fn wants_openmetrics(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    let (mut openmetrics, mut text) = (0.0_f64, 0.0_f64);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let mut q = 1.0;
        for param in parts {
            if let Some((name, value)) = param.split_once('=') {
                if name.trim().eq_ignore_ascii_case("q") {
                    q = value.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 1.0);
                }
            }
        }
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            openmetrics = openmetrics.max(q);
        } else if media.eq_ignore_ascii_case("text/plain")
            || media.eq_ignore_ascii_case("text/*")
            || media == "*/*"
        {
            text = text.max(q);
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::{Platform, TraceContext};
    use std::time::{Duration, SystemTime};

    fn record<'a>(
        shape: &'static str,
        status: u16,
        micros: u64,
        trace: &'a TraceContext,
    ) -> Record<'a> {
        Record {
            platform: Platform::Knative,
            shape,
            request_id: "r",
            trace,
            started: SystemTime::now(),
            duration: Duration::from_micros(micros),
            status,
            error: None,
            http: Some(("POST", "/")),
            trigger: "http",
            cold_start: false,
        }
    }

    fn text(live: &Live, accept: Option<&str>) -> (&'static str, String) {
        let (ct, body) = live.render(accept).unwrap();
        (ct, String::from_utf8(body).unwrap())
    }

    #[test]
    fn counts_requests_by_shape_and_status_and_times_them() {
        let live = Live::new(Arc::new(Clock::default()));
        let trace = TraceContext::default();
        live.started();
        live.started();
        live.finished(&record("typed", 200, 30, &trace));
        let (ct, body) = text(&live, None);
        assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        assert!(body.contains("fnkit_inflight_requests 1\n"), "{body}");
        live.finished(&record("typed", 400, 700, &trace));
        live.started();
        live.finished(&record("typed", 200, 20_000, &trace));
        let (_, body) = text(&live, None);
        for line in [
            "# TYPE fnkit_requests_total counter",
            "fnkit_requests_total{shape=\"typed\",status=\"200\"} 2",
            "fnkit_requests_total{shape=\"typed\",status=\"400\"} 1",
            "# TYPE fnkit_request_duration_seconds histogram",
            "fnkit_request_duration_seconds_bucket{shape=\"typed\",le=\"5e-05\"} 1",
            "fnkit_request_duration_seconds_bucket{shape=\"typed\",le=\"0.001\"} 2",
            "fnkit_request_duration_seconds_bucket{shape=\"typed\",le=\"0.025\"} 3",
            "fnkit_request_duration_seconds_bucket{shape=\"typed\",le=\"+Inf\"} 3",
            "# HELP fnkit_inflight_requests Invocations of the handler in progress.",
            "fnkit_request_duration_seconds_count{shape=\"typed\"} 3",
            "fnkit_inflight_requests 0",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "{line:?} missing in:\n{body}"
            );
        }
        assert!(!body.contains("# EOF"));
        assert!(!body.contains("# UNIT"));
    }

    #[test]
    fn openmetrics_when_accept_prefers_it() {
        let live = Live::new(Arc::new(Clock::default()));
        let trace = TraceContext::default();
        live.started();
        live.finished(&record("http", 200, 10, &trace));
        // What Prometheus 2.x/3.x sends.
        let prometheus = "application/openmetrics-text;version=1.0.0;q=0.5,\
                          application/openmetrics-text;version=0.0.1;q=0.4,\
                          text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let (ct, body) = text(&live, Some(prometheus));
        assert_eq!(
            ct,
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(body.contains("# UNIT fnkit_request_duration_seconds seconds\n"));
        assert!(body.contains("fnkit_requests_total{shape=\"http\",status=\"200\"} 1\n"));
    }

    #[test]
    fn accept_negotiation() {
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(Some("text/plain")));
        assert!(!wants_openmetrics(Some("application/json")));
        assert!(wants_openmetrics(Some("application/openmetrics-text")));
        assert!(wants_openmetrics(Some(
            "Application/OpenMetrics-Text; version=1.0.0; charset=utf-8"
        )));
        assert!(!wants_openmetrics(Some("application/openmetrics-text;q=0")));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0.2, text/plain;q=0.9"
        )));
        assert!(wants_openmetrics(Some(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
             encoding=delimited;q=0.7,application/openmetrics-text;version=1.0.0;q=0.5,\
             text/plain;version=0.0.4;q=0.3"
        )));
    }

    #[test]
    fn process_metrics_appear_once_ready() {
        let clock = Arc::new(Clock::default());
        let live = Live::new(clock.clone());
        let (_, before) = text(&live, None);
        assert!(!before.contains("fnkit_cold_start_seconds"));
        clock.ready();
        let (_, body) = text(&live, None);
        if cfg!(target_os = "linux") {
            assert!(
                body.contains("# TYPE fnkit_cold_start_seconds gauge\n"),
                "{body}"
            );
            assert!(body.contains("# TYPE process_start_time_seconds gauge\n"));
            assert!(body.contains("# TYPE process_resident_memory_bytes gauge\n"));
        }
    }
}
