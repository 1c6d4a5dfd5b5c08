//! What a handler knows about the invocation it serves and the function it is part of.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{Extensions, HeaderMap};

use crate::{Platform, TraceContext};

/// Facts about the deployed function that do not change between invocations.
///
/// Built once at start-up from the environment by [`FunctionInfo::from_env`], shared by every
/// [`Context`] through an `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The function's name: `AWS_LAMBDA_FUNCTION_NAME` on Lambda, `K_SERVICE` on Knative,
    /// `FNKIT_FUNCTION_NAME` anywhere, else the executable's file name.
    pub name: String,
    /// The function's version: `AWS_LAMBDA_FUNCTION_VERSION` on Lambda, `K_REVISION` on Knative,
    /// `FNKIT_FUNCTION_VERSION` anywhere, else `"0"`.
    pub version: String,
    /// The platform the function runs on.
    pub platform: Platform,
    /// The `source` of CloudEvents this function emits: `FNKIT_EVENT_SOURCE`, else
    /// `urn:fnkit:<name>`.
    pub event_source: String,
    /// Memory the platform grants, in MiB, where it says (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: Option<u32>,
    /// Knative's `K_CONFIGURATION`, where set.
    pub configuration: Option<String>,
}

impl FunctionInfo {
    /// Reads the function's identity from the environment of `platform`. Never fails: absent
    /// variables fall back as documented on each field (Knative's `K_*` are optional).
    pub fn from_env(platform: Platform) -> Self {
        Self::from_lookup(platform, crate::env::env_var)
    }

    /// [`FunctionInfo::from_env`] over any variable lookup.
    pub fn from_lookup(platform: Platform, var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| crate::env::from_value(var(name));
        let (name_var, version_var) = match platform {
            Platform::Lambda => ("AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION"),
            Platform::Knative => ("K_SERVICE", "K_REVISION"),
            Platform::OpenFaas | Platform::Local => {
                ("FNKIT_FUNCTION_NAME", "FNKIT_FUNCTION_VERSION")
            }
        };
        let name = var(name_var)
            .or_else(|| var("FNKIT_FUNCTION_NAME"))
            .unwrap_or_else(executable_name);
        let version = var(version_var)
            .or_else(|| var("FNKIT_FUNCTION_VERSION"))
            .unwrap_or_else(|| "0".to_owned());
        let event_source = var("FNKIT_EVENT_SOURCE").unwrap_or_else(|| format!("urn:fnkit:{name}"));
        Self {
            memory_mb: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.parse().ok()),
            configuration: var("K_CONFIGURATION"),
            name,
            version,
            platform,
            event_source,
        }
    }
}

fn executable_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "function".to_owned())
}

/// The invocation a handler serves: its id, deadline, trace, the function it belongs to, and the
/// incoming HTTP headers or CloudEvent attributes where there are some.
///
/// Adapters build it; handlers read it. Cloning is cheap where it matters (the function facts
/// are shared).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use fnkit_core::{Context, FunctionInfo, Platform};
///
/// let info = Arc::new(FunctionInfo::from_lookup(Platform::Local, |_| None));
/// let ctx = Context::new(info, "req-1").with_timeout(Duration::from_secs(30));
/// assert_eq!(ctx.request_id(), "req-1");
/// assert!(ctx.remaining_time().unwrap() <= Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct Context {
    request_id: String,
    deadline: Option<SystemTime>,
    function: Arc<FunctionInfo>,
    trace: TraceContext,
    headers: HeaderMap,
    #[cfg(feature = "cloudevents")]
    event: Option<Arc<cloudevents::Event>>,
    extensions: Extensions,
}

impl Context {
    /// A context for one invocation of `function`.
    pub fn new(function: Arc<FunctionInfo>, request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            deadline: None,
            function,
            trace: TraceContext::default(),
            headers: HeaderMap::new(),
            #[cfg(feature = "cloudevents")]
            event: None,
            extensions: Extensions::new(),
        }
    }

    /// Sets the wall-clock deadline of the invocation.
    #[must_use]
    pub fn with_deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the deadline `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(SystemTime::now() + timeout)
    }

    /// Sets the trace context.
    #[must_use]
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.trace = trace;
        self
    }

    /// Sets the incoming HTTP headers.
    #[must_use]
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the incoming CloudEvent (its attributes and extensions; adapters leave `data` out).
    #[cfg(feature = "cloudevents")]
    #[must_use]
    pub fn with_event(mut self, event: Arc<cloudevents::Event>) -> Self {
        self.event = Some(event);
        self
    }

    /// The invocation's id: Lambda's request id, the incoming `X-Request-Id` or CloudEvent id
    /// over HTTP, else one fnkit made. It is on every log line of the invocation.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The wall-clock deadline of the invocation, if the platform gives one.
    pub fn deadline(&self) -> Option<SystemTime> {
        self.deadline
    }

    /// The deadline in milliseconds since the Unix epoch, as Lambda gives it.
    pub fn deadline_ms(&self) -> Option<u64> {
        let since = self.deadline?.duration_since(UNIX_EPOCH).ok()?;
        u64::try_from(since.as_millis()).ok()
    }

    /// Time left before the deadline (zero once it has passed), if there is one.
    pub fn remaining_time(&self) -> Option<Duration> {
        let deadline = self.deadline?;
        Some(
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }

    /// The function this invocation belongs to.
    pub fn function(&self) -> &FunctionInfo {
        &self.function
    }

    /// The function's name.
    pub fn function_name(&self) -> &str {
        &self.function.name
    }

    /// The function's version.
    pub fn function_version(&self) -> &str {
        &self.function.version
    }

    /// The platform serving this invocation.
    pub fn platform(&self) -> Platform {
        self.function.platform
    }

    /// The trace context.
    pub fn trace(&self) -> &TraceContext {
        &self.trace
    }

    /// The incoming HTTP headers of a typed or CloudEvent invocation over HTTP (empty on other
    /// transports). An HTTP handler reads them from its request; they are not copied here.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The incoming CloudEvent's attributes and extensions, where the input was a CloudEvent.
    /// Its `data` has been handed to the handler and is not kept here.
    #[cfg(feature = "cloudevents")]
    pub fn event(&self) -> Option<&cloudevents::Event> {
        self.event.as_deref()
    }

    /// Platform-specific extras an adapter attaches (e.g. Lambda's invoked function ARN).
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// Mutable access to the extras, for adapters.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    /// Starts a reply to `incoming`: a new `id`, this function's `source`, `type` = the
    /// incoming type + `.reply`, and, when the invocation has a trace, the distributed-tracing
    /// extension: `traceparent` naming this invocation's span (same trace id, this invocation's
    /// span id: the reply is its child) and the `tracestate` that came with the trace. Set
    /// `data` and anything else on the builder, then `build()`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
    /// use fnkit_core::{Context, FunctionInfo, Platform};
    ///
    /// let info = Arc::new(FunctionInfo::from_lookup(Platform::Local, |_| None));
    /// let ctx = Context::new(info, "r1");
    /// let incoming = EventBuilderV10::new()
    ///     .id("1").source("/orders").ty("com.example.order").build()?;
    /// let reply = ctx.reply_to(&incoming).data("application/json", serde_json::json!({})).build()?;
    /// assert_eq!(reply.ty(), "com.example.order.reply");
    /// assert_ne!(reply.id(), "1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "cloudevents")]
    pub fn reply_to(&self, incoming: &cloudevents::Event) -> cloudevents::EventBuilderV10 {
        use cloudevents::{AttributesReader, EventBuilder};
        let mut reply = cloudevents::EventBuilderV10::new()
            .id(crate::new_id())
            .source(self.function.event_source.clone())
            .ty(format!("{}.reply", incoming.ty()));
        if let Some(span) = &self.trace.span {
            reply = reply.extension("traceparent", span.traceparent());
            if let Some(state) = &self.trace.tracestate {
                reply = reply.extension("tracestate", state.clone());
            }
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> Arc<FunctionInfo> {
        Arc::new(FunctionInfo::from_lookup(Platform::Local, |_| None))
    }

    #[test]
    fn function_info_reads_the_platforms_variables() {
        let knative = FunctionInfo::from_lookup(Platform::Knative, |n| match n {
            "K_SERVICE" => Some("hello".into()),
            "K_REVISION" => Some("hello-00001".into()),
            "K_CONFIGURATION" => Some("hello".into()),
            _ => None,
        });
        assert_eq!(knative.name, "hello");
        assert_eq!(knative.version, "hello-00001");
        assert_eq!(knative.configuration.as_deref(), Some("hello"));
        assert_eq!(knative.event_source, "urn:fnkit:hello");

        let lambda = FunctionInfo::from_lookup(Platform::Lambda, |n| match n {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("fn".into()),
            "AWS_LAMBDA_FUNCTION_VERSION" => Some("$LATEST".into()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("128".into()),
            _ => None,
        });
        assert_eq!(
            (lambda.name.as_str(), lambda.version.as_str()),
            ("fn", "$LATEST")
        );
        assert_eq!(lambda.memory_mb, Some(128));
    }

    #[test]
    fn missing_knative_variables_are_not_an_error() {
        let info = FunctionInfo::from_lookup(Platform::Knative, |_| None);
        assert!(!info.name.is_empty());
        assert_eq!(info.version, "0");
        assert_eq!(info.configuration, None);
    }

    #[cfg(feature = "cloudevents")]
    #[test]
    fn a_reply_carries_the_invocations_span_as_traceparent() {
        use cloudevents::{AttributesReader, EventBuilder, EventBuilderV10};
        let incoming = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        let untraced = Context::new(info(), "r")
            .reply_to(&incoming)
            .build()
            .unwrap();
        assert_eq!(untraced.extension("traceparent"), None);

        let mut headers = HeaderMap::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        headers.insert("traceparent", tp.parse().unwrap());
        headers.insert("tracestate", "a=1".parse().unwrap());
        let trace = crate::adapter::trace_context(crate::adapter::TraceInput {
            headers: Some(&headers),
            ..Default::default()
        });
        let span = trace.span.unwrap();
        let ctx = Context::new(info(), "r").with_trace(trace);
        let reply = ctx.reply_to(&incoming).build().unwrap();
        let traceparent = reply.extension("traceparent").unwrap().to_string();
        assert_eq!(
            traceparent,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", span.span_id)
        );
        assert_eq!(reply.extension("tracestate").unwrap().to_string(), "a=1");
        assert_eq!(reply.ty(), "t.reply");
    }

    #[test]
    fn remaining_time_decreases_and_stops_at_zero() {
        let ctx = Context::new(info(), "r").with_timeout(Duration::from_millis(50));
        let first = ctx.remaining_time().unwrap();
        let second = ctx.remaining_time().unwrap();
        assert!(second <= first);
        let past = Context::new(info(), "r").with_deadline(UNIX_EPOCH);
        assert_eq!(past.remaining_time(), Some(Duration::ZERO));
        assert_eq!(past.deadline_ms(), Some(0));
    }
}
