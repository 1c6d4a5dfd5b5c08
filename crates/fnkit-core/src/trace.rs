//! The trace context of an invocation, built by one function from whatever the platform carries:
//! W3C Trace Context headers, the CloudEvents distributed-tracing extension, AWS X-Ray headers.

use http::{HeaderMap, HeaderName};

/// Distributed-tracing context of an invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C `traceparent`, from the HTTP header or the CloudEvent extension; only a well-formed
    /// one is kept (W3C Trace Context §3.2).
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that came with that `traceparent`, where present.
    pub tracestate: Option<String>,
    /// The AWS X-Ray trace header (`Lambda-Runtime-Trace-Id` or `X-Amzn-Trace-Id`).
    pub xray_trace_id: Option<String>,
}

impl TraceContext {
    /// The 32-hex-digit trace id of the `traceparent`, if there is one.
    ///
    /// ```
    /// let t = fnkit_core::TraceContext {
    ///     traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(t.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    /// ```
    pub fn trace_id(&self) -> Option<&str> {
        let tp = self.traceparent.as_deref()?;
        tp.get(3..35).filter(|_| is_traceparent(tp))
    }
}

/// Where an invocation's trace context may come from. Leave out what the transport lacks.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceInput<'a> {
    /// The incoming HTTP headers: `traceparent`, `tracestate`, `X-Amzn-Trace-Id`.
    pub headers: Option<&'a HeaderMap>,
    /// The platform's own X-Ray trace header (Lambda's `Lambda-Runtime-Trace-Id`), preferred to
    /// an `X-Amzn-Trace-Id` request header.
    pub xray: Option<&'a str>,
    /// The incoming CloudEvent, whose distributed-tracing extension (`traceparent`,
    /// `tracestate`) counts when the headers carry no valid `traceparent`.
    #[cfg(feature = "cloudevents")]
    pub event: Option<&'a cloudevents::Event>,
}

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

/// Builds the trace context of an invocation: the one place fnkit reads trace headers, on every
/// platform.
///
/// - `traceparent` is the HTTP header's when it is well formed (exactly one header, W3C Trace
///   Context §3.2: version, 32-hex trace id and 16-hex parent id not all zeros, flags), else the
///   CloudEvent extension's when that is; a malformed one is dropped, as the spec asks.
/// - `tracestate` comes from the same carrier as the `traceparent` kept (repeated headers joined
///   with `,`), and is dropped with it.
/// - `xray_trace_id` is the platform's X-Ray header, else `X-Amzn-Trace-Id`.
///
/// ```
/// use fnkit_core::adapter::{trace_context, TraceInput};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?);
/// headers.insert("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793".parse()?);
/// let t = trace_context(TraceInput { headers: Some(&headers), ..Default::default() });
/// assert_eq!(t.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// assert_eq!(t.xray_trace_id.as_deref(), Some("Root=1-5759e988-bd862e3fe1be46a994272793"));
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn trace_context(input: TraceInput<'_>) -> TraceContext {
    let mut trace = TraceContext::default();
    if let Some(headers) = input.headers {
        let mut parents = headers.get_all(&TRACEPARENT).iter();
        if let (Some(tp), None) = (parents.next(), parents.next()) {
            if let Some(tp) = tp.to_str().ok().filter(|tp| is_traceparent(tp)) {
                trace.traceparent = Some(tp.to_owned());
                trace.tracestate = joined(headers, &TRACESTATE);
            }
        }
    }
    #[cfg(feature = "cloudevents")]
    if let (None, Some(event)) = (&trace.traceparent, input.event) {
        use cloudevents::event::ExtensionValue;
        let text = |name| match event.extension(name) {
            Some(ExtensionValue::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        if let Some(tp) = text("traceparent").filter(|tp| is_traceparent(tp)) {
            trace.traceparent = Some(tp);
            trace.tracestate = text("tracestate");
        }
    }
    trace.xray_trace_id = input
        .xray
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .or_else(|| input.headers.and_then(|h| joined(h, &X_AMZN_TRACE_ID)));
    trace
}

/// Every value of `name`, joined with `,` (how HTTP combines repeated list headers); `None` when
/// there is none, an empty one, or one that is not visible ASCII.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out = String::new();
    for value in headers.get_all(name) {
        let text = value.to_str().ok()?.trim();
        if !out.is_empty() && !text.is_empty() {
            out.push(',');
        }
        out.push_str(text);
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `tp` is a `traceparent` this version of W3C Trace Context accepts: `00` with exactly
/// the four fields, or a later version (not `ff`) with at least them.
fn is_traceparent(tp: &str) -> bool {
    let b = tp.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
    };
    let zeros = |r: std::ops::Range<usize>| b[r].iter().all(|&c| c == b'0');
    let shape = b.len() >= 55
        && hex(0..2)
        && b[2] == b'-'
        && hex(3..35)
        && b[35] == b'-'
        && hex(36..52)
        && b[52] == b'-'
        && hex(53..55);
    if !shape || &b[0..2] == b"ff" || zeros(3..35) || zeros(36..52) {
        return false;
    }
    if &b[0..2] == b"00" {
        b.len() == 55
    } else {
        b.len() == 55 || b[55] == b'-'
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn from(h: &HeaderMap) -> TraceContext {
        trace_context(TraceInput {
            headers: Some(h),
            ..TraceInput::default()
        })
    }

    #[test]
    fn traceparent_shapes() {
        assert!(is_traceparent(TP));
        for bad in [
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert!(!is_traceparent(bad), "{bad}");
        }
        // A later version may carry more fields.
        assert!(is_traceparent(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes"
        ));
    }

    #[test]
    fn headers_give_traceparent_tracestate_and_xray() {
        let t = from(&headers(&[
            ("traceparent", TP),
            ("tracestate", "a=1"),
            ("tracestate", "b=2"),
            (
                "x-amzn-trace-id",
                "Root=1-5759e988-bd862e3fe1be46a994272793",
            ),
        ]));
        assert_eq!(t.traceparent.as_deref(), Some(TP));
        assert_eq!(t.tracestate.as_deref(), Some("a=1,b=2"));
        assert_eq!(
            t.xray_trace_id.as_deref(),
            Some("Root=1-5759e988-bd862e3fe1be46a994272793")
        );
    }

    #[test]
    fn a_malformed_or_repeated_traceparent_is_dropped_with_its_tracestate() {
        let t = from(&headers(&[
            ("traceparent", "garbage"),
            ("tracestate", "a=1"),
        ]));
        assert_eq!(t, TraceContext::default());
        let t = from(&headers(&[("traceparent", TP), ("traceparent", TP)]));
        assert_eq!(t.traceparent, None);
    }

    #[test]
    fn the_platforms_xray_header_wins_over_the_request_header() {
        let h = headers(&[("x-amzn-trace-id", "Root=request")]);
        let t = trace_context(TraceInput {
            headers: Some(&h),
            xray: Some("Root=runtime"),
            ..TraceInput::default()
        });
        assert_eq!(t.xray_trace_id.as_deref(), Some("Root=runtime"));
    }

    #[cfg(feature = "cloudevents")]
    #[test]
    fn the_cloudevent_extension_counts_when_headers_have_no_valid_traceparent() {
        use cloudevents::{EventBuilder, EventBuilderV10};
        let event = EventBuilderV10::new()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("traceparent", TP)
            .extension("tracestate", "ce=1")
            .build()
            .unwrap();
        let h = headers(&[("traceparent", "garbage")]);
        let t = trace_context(TraceInput {
            headers: Some(&h),
            event: Some(&event),
            ..TraceInput::default()
        });
        assert_eq!(t.traceparent.as_deref(), Some(TP));
        assert_eq!(t.tracestate.as_deref(), Some("ce=1"));
        // A valid header wins, with its own tracestate.
        let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
        let h = headers(&[("traceparent", other)]);
        let t = trace_context(TraceInput {
            headers: Some(&h),
            event: Some(&event),
            ..TraceInput::default()
        });
        assert_eq!(t.traceparent.as_deref(), Some(other));
        assert_eq!(t.tracestate, None);
    }
}
