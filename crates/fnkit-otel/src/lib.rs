//! OpenTelemetry trace export for fnkit (the facade's feature `otel`): one server span per request
//! or invocation, sent to an OTLP collector over HTTP/1.1 as protobuf (OTLP/HTTP).
//!
//! [`install`] adds the exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` (spans go to
//! `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`) or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is) is
//! set; otherwise it does nothing and costs nothing after a few environment lookups.
//!
//! - Each invocation the adapters report ([`observe::Record`]) becomes a `SERVER` span in the
//!   invocation's trace (`Context::trace()`: W3C, CloudEvent or X-Ray carried, a new trace where
//!   none came), with the FaaS and HTTP semantic-convention attributes; the resource names the
//!   service (`OTEL_SERVICE_NAME`, else the function's name) and the platform.
//! - Spans are buffered and sent by [`Observer::flush`], which the adapters call where the process
//!   may stop: on Lambda after each invocation, before the next `/next` (the sandbox may freeze
//!   then), elsewhere at shutdown. On HTTP platforms a task, spawned at the first span, also
//!   exports every `OTEL_BSP_SCHEDULE_DELAY` ms (5000) and when 512 spans wait.
//! - Each export has `OTEL_EXPORTER_OTLP_TIMEOUT` ms (1000 here, not the spec's 10 s: on Lambda the
//!   export is on the invocation path). A collector that does not answer is logged once, its spans
//!   are dropped, and exports pause (1 s, doubling to 32 s) so that it delays nothing further;
//!   invocations never fail for it.
//! - Plain `http://` only: no TLS stack is linked. Export to a collector on localhost (the
//!   Lambda layer or sidecar) or in the cluster, which forwards over TLS if it must.
//!
//! The protobuf and the HTTP/1.1 POST are written by hand: a few hundred lines instead of prost,
//! tonic and reqwest (or a second copy of hyper's client) in every function binary.
//! docs/tracing.md has the details and the cost.

mod client;
mod proto;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fnkit_core::adapter::observe::{self, Observer, Record};
use fnkit_core::adapter::{env_var, BoxFuture};
use fnkit_core::{FunctionInfo, Platform, SpanContext, SpanId, TraceId};
use http::header::{HeaderName, HeaderValue};

use client::{Client, Target};
use proto::{span, Value};

/// At most this many spans wait for export; more are dropped (and counted in a log line).
const MAX_QUEUE: usize = 2048;
/// On HTTP platforms, this many waiting spans start an export at once.
const MAX_BATCH: usize = 512;

/// Adds the OTLP exporter as an observer when an endpoint is configured, and makes invocations
/// that arrive without a trace begin one (so their span, logs and replies share a trace id).
/// `fnkit::run` calls it with the feature `otel`; call it before serving otherwise.
///
/// A configuration that cannot work (an `https://` endpoint, a protocol other than
/// `http/protobuf`) is logged and nothing is exported.
pub fn install() {
    match Config::from_lookup(&env_var) {
        Ok(Some(config)) => {
            fnkit_core::adapter::begin_traces();
            observe::add_observer(Arc::new(Otlp(Arc::new(Exporter::new(config)))));
        }
        Ok(None) => {}
        Err(why) => tracing::warn!("{why}; spans are not exported"),
    }
}

/// What the environment configures (the OpenTelemetry SDK's variables, those that apply).
#[derive(Debug, Clone)]
struct Config {
    target: Target,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    delay: Duration,
    /// `OTEL_TRACES_SAMPLER=always_on`: every span, whatever the caller sampled.
    always_on: bool,
    service_name: Option<String>,
    resource: Vec<(String, String)>,
    region: Option<String>,
    log_stream: Option<String>,
}

impl Config {
    /// `Ok(None)` when nothing is to be exported; `Err` when the configuration cannot work.
    fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let signal = |specific: &str, general: &str| var(specific).or_else(|| var(general));
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return Ok(None);
        }
        let url = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(url) => url,
            None => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) => format!("{}/v1/traces", base.trim_end_matches('/')),
                None => return Ok(None),
            },
        };
        if let Some(protocol) = signal(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        )
        .filter(|p| p != "http/protobuf")
        {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: fnkit exports http/protobuf only"
            ));
        }
        let always_on = match var("OTEL_TRACES_SAMPLER").as_deref() {
            None | Some("parentbased_always_on") => false,
            Some("always_on") => true,
            Some("always_off") => return Ok(None),
            Some(other) => {
                tracing::warn!(
                    "OTEL_TRACES_SAMPLER={other} is not supported; using parentbased_always_on"
                );
                false
            }
        };
        let millis = |name: &str, general: &str, default: u64| {
            let value = signal(name, general);
            Duration::from_millis(value.and_then(|v| v.parse().ok()).unwrap_or(default))
        };
        let headers = pairs(
            signal(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            )
            .as_deref(),
        )
        .into_iter()
        .filter_map(|(k, v)| {
            let header = HeaderName::from_bytes(k.as_bytes()).ok()?;
            Some((header, HeaderValue::from_str(&v).ok()?))
        })
        .collect();
        Ok(Some(Self {
            target: Target::parse(&url)?,
            headers,
            timeout: millis(
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                1000,
            ),
            delay: millis("OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_SCHEDULE_DELAY", 5000)
                .max(Duration::from_millis(10)),
            always_on,
            service_name: var("OTEL_SERVICE_NAME"),
            resource: pairs(var("OTEL_RESOURCE_ATTRIBUTES").as_deref()),
            region: var("AWS_REGION"),
            log_stream: var("AWS_LAMBDA_LOG_STREAM_NAME"),
        }))
    }
}

/// `k1=v1,k2=v2` with percent-encoded values (`OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_HEADERS`); a member without `=` or a key is skipped.
fn pairs(list: Option<&str>) -> Vec<(String, String)> {
    list.unwrap_or("")
        .split(',')
        .filter_map(|member| {
            let (k, v) = member.split_once('=')?;
            let k = k.trim();
            let v = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
            (!k.is_empty()).then(|| (k.to_owned(), v.into_owned()))
        })
        .collect()
}

/// The observer `fnkit::run` adds.
struct Otlp(Arc<Exporter>);

impl Observer for Otlp {
    fn finished(&self, record: &Record<'_>) {
        self.0.record(record);
    }

    fn flush(&self) -> BoxFuture<'static, ()> {
        Box::pin(self.0.clone().export())
    }
}

struct Exporter {
    config: Config,
    /// The encoded resource and scope, and the spans' name: built at the first span, when the
    /// platform is known.
    statics: OnceLock<Statics>,
    queue: Mutex<Queue>,
    client: Client,
    periodic: AtomicBool,
    exporting: AtomicBool,
    health: Mutex<Health>,
}

struct Statics {
    head: proto::Head,
    name: String,
}

#[derive(Default)]
struct Queue {
    /// Encoded `ScopeSpans.spans` fields.
    spans: Vec<u8>,
    count: usize,
    dropped: u64,
}

#[derive(Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Exporter {
    fn new(config: Config) -> Self {
        Self {
            config,
            statics: OnceLock::new(),
            queue: Mutex::new(Queue::default()),
            client: Client::default(),
            periodic: AtomicBool::new(false),
            exporting: AtomicBool::new(false),
            health: Mutex::new(Health::default()),
        }
    }

    /// Encodes the record's span into the queue (when sampled), and on HTTP platforms makes sure
    /// an export will follow.
    fn record(self: &Arc<Self>, r: &Record<'_>) {
        if !self.config.always_on && r.trace.span.is_some_and(|s| !s.sampled) {
            return;
        }
        let statics = self
            .statics
            .get_or_init(|| Statics::new(&self.config, &FunctionInfo::from_env(r.platform)));
        let waiting = {
            let mut q = lock(&self.queue);
            if q.count >= MAX_QUEUE {
                q.dropped += 1;
                return;
            }
            encode_span(&mut q.spans, &statics.name, r);
            q.count += 1;
            q.count
        };
        if r.platform != Platform::Lambda {
            self.schedule(waiting >= MAX_BATCH);
        }
    }

    /// Spawns the periodic export at the first span, and an export now when a batch is full.
    fn schedule(self: &Arc<Self>, now: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.periodic.swap(true, Ordering::Relaxed) {
            let exporter = self.clone();
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(exporter.config.delay).await;
                    exporter.clone().export().await;
                }
            });
        }
        if now && !self.exporting.swap(true, Ordering::AcqRel) {
            let exporter = self.clone();
            runtime.spawn(async move {
                exporter.clone().export().await;
                exporter.exporting.store(false, Ordering::Release);
            });
        }
    }

    /// Sends what waits, in one request, unless exports are paused after a failure.
    async fn export(self: Arc<Self>) {
        if lock(&self.health)
            .retry_at
            .is_some_and(|at| Instant::now() < at)
        {
            return;
        }
        let (body, count, dropped) = {
            let mut q = lock(&self.queue);
            let Some(statics) = self.statics.get().filter(|_| q.count > 0) else {
                return;
            };
            let body = proto::request(&statics.head, &q.spans);
            q.spans.clear();
            (
                body,
                std::mem::take(&mut q.count),
                std::mem::take(&mut q.dropped),
            )
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "{dropped} spans were dropped: more than {MAX_QUEUE} waited for export"
            );
        }
        let config = &self.config;
        let post = self
            .client
            .post(&config.target, &config.headers, Bytes::from(body));
        let outcome = match tokio::time::timeout(config.timeout, post).await {
            Ok(Ok(status)) if status.is_success() => Ok(()),
            Ok(Ok(status)) => Err(format!("the collector answered {status}")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "no answer within {:?} (OTEL_EXPORTER_OTLP_TIMEOUT)",
                config.timeout
            )),
        };
        self.outcome(outcome, count);
    }

    /// Logs the first failure of a run of them (once), and pauses exports after each.
    fn outcome(&self, outcome: Result<(), String>, count: usize) {
        let mut health = lock(&self.health);
        match outcome {
            Ok(()) => {
                if health.failures > 0 {
                    tracing::info!(
                        "exporting spans to {} again after {} failed exports",
                        self.config.target.url,
                        health.failures
                    );
                }
                *health = Health::default();
            }
            Err(why) => {
                let pause = Duration::from_secs(1 << health.failures.min(5));
                if health.failures == 0 {
                    tracing::warn!(
                        "could not export {count} spans to {}: {why}. They are dropped, \
                         invocations go on, and exports pause for {pause:?}, longer while it \
                         fails (logged once until an export succeeds)",
                        self.config.target.url
                    );
                }
                health.failures = health.failures.saturating_add(1);
                health.retry_at = Some(Instant::now() + pause);
            }
        }
    }
}

impl Statics {
    /// The resource (service, SDK, cloud and FaaS attributes, then `OTEL_RESOURCE_ATTRIBUTES`,
    /// which wins on a shared key) and the scope, encoded once.
    fn new(config: &Config, info: &FunctionInfo) -> Self {
        let from_list = |key: &str| {
            config
                .resource
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let service = config
            .service_name
            .as_deref()
            .or_else(|| from_list("service.name"))
            .unwrap_or(&info.name);
        let mut attributes: Vec<(&str, Value<'_>)> = vec![
            ("service.name", Value::Str(service)),
            ("telemetry.sdk.name", Value::Str("fnkit")),
            ("telemetry.sdk.language", Value::Str("rust")),
            (
                "telemetry.sdk.version",
                Value::Str(env!("CARGO_PKG_VERSION")),
            ),
        ];
        match info.platform {
            Platform::Lambda => {
                attributes.push(("cloud.provider", Value::Str("aws")));
                attributes.push(("cloud.platform", Value::Str("aws_lambda")));
                if let Some(region) = &config.region {
                    attributes.push(("cloud.region", Value::Str(region)));
                }
                if let Some(stream) = &config.log_stream {
                    attributes.push(("faas.instance", Value::Str(stream)));
                }
            }
            Platform::Knative => attributes.push(("cloud.platform", Value::Str("knative"))),
            Platform::OpenFaas => attributes.push(("cloud.platform", Value::Str("openfaas"))),
            Platform::Local => {}
        }
        attributes.push(("faas.name", Value::Str(&info.name)));
        attributes.push(("faas.version", Value::Str(&info.version)));
        if let Some(mb) = info.memory_mb {
            attributes.push(("faas.max_memory", Value::Int(i64::from(mb) * 1024 * 1024)));
        }
        for (key, value) in config.resource.iter().filter(|(k, _)| k != "service.name") {
            match attributes.iter_mut().find(|(k, _)| k == key) {
                Some(kv) => kv.1 = Value::Str(value),
                None => attributes.push((key, Value::Str(value))),
            }
        }
        Self {
            head: proto::Head::new(&attributes, "fnkit", env!("CARGO_PKG_VERSION")),
            name: info.name.clone(),
        }
    }
}

/// One `Span` (as a `ScopeSpans.spans` field): the record's trace and span ids, its caller as
/// parent, `SERVER`, the times, the FaaS and HTTP attributes, and an error status.
fn encode_span(buf: &mut Vec<u8>, name: &str, r: &Record<'_>) {
    // Every invocation has a span once an exporter is installed; one that failed before its
    // trace was read gets ids of its own.
    let own = r.trace.span.unwrap_or_else(|| SpanContext {
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        sampled: true,
    });
    let parent = r.trace.parent_span_id().filter(|_| r.trace.span.is_some());
    let start = nanos(r.started);
    let end = start.saturating_add(u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX));
    // Semantic conventions: a server span's 4xx is the client's fault, not an error of the span.
    let failed = r.error.filter(|_| r.http.is_none() || r.status >= 500);
    proto::message(buf, span::IN_SCOPE, |s| {
        proto::bytes(s, span::TRACE_ID, &own.trace_id.to_bytes());
        proto::bytes(s, span::SPAN_ID, &own.span_id.to_bytes());
        if let Some(state) = r.trace.tracestate.as_deref() {
            proto::string(s, span::TRACE_STATE, state);
        }
        if let Some(parent) = parent {
            proto::bytes(s, span::PARENT_SPAN_ID, &parent.to_bytes());
        }
        proto::string(s, span::NAME, name);
        proto::uint(s, span::KIND, proto::KIND_SERVER);
        proto::fixed64(s, span::START, start);
        proto::fixed64(s, span::END, end);
        let mut attribute =
            |key: &str, value: Value<'_>| proto::attribute(s, span::ATTRIBUTES, key, value);
        attribute("faas.trigger", Value::Str(r.trigger));
        attribute("faas.invocation_id", Value::Str(r.request_id));
        attribute("faas.coldstart", Value::Bool(r.cold_start));
        if let Some((method, path)) = r.http {
            attribute("http.request.method", Value::Str(method));
            attribute("url.path", Value::Str(path));
            attribute("http.response.status_code", Value::Int(i64::from(r.status)));
        }
        if let Some(kind) = r.error {
            attribute("error.type", Value::Str(kind.as_str()));
        }
        if let Some(kind) = failed {
            proto::message(s, span::STATUS, |status| {
                proto::string(status, 2, kind.as_str());
                proto::uint(status, 3, proto::STATUS_ERROR);
            });
        }
        // W3C flags in bits 0-7; bits 8 and 9: the parent is known to be remote (another
        // process's span); left unknown for a root span.
        let remote = if parent.is_some() { 0x300 } else { 0 };
        proto::fixed32(s, span::FLAGS, u32::from(own.sampled) | remote);
    });
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
