//! The trace context of an invocation, built by one function from whatever the platform carries:
//! W3C Trace Context headers, the CloudEvents distributed-tracing extension, AWS X-Ray headers.
//! One decoder, and the conversions between the carriers: an X-Ray `Root=1-5759e988-bd862e3f…`
//! is the W3C trace id `5759e988bd862e3f…`, and back (docs/tracing.md).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName};

/// Distributed-tracing context of an invocation: the carriers as they arrived, and this
/// invocation's own span in that trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// The W3C `traceparent`, from the HTTP header or the CloudEvent extension; only a well-formed
    /// one is kept (W3C Trace Context §3.2). Where neither has one, it is made from the X-Ray
    /// header when that has a `Root` and a `Parent` (`00-<root>-<parent>-<01 if Sampled=1>`).
    pub traceparent: Option<String>,
    /// The W3C `tracestate` that came with that `traceparent`, where present.
    pub tracestate: Option<String>,
    /// The AWS X-Ray trace header (`Lambda-Runtime-Trace-Id` or `X-Amzn-Trace-Id`), as received.
    pub xray_trace_id: Option<String>,
    /// This invocation's own span: the incoming trace id with a new span id (a child of
    /// [`parent_span_id`](Self::parent_span_id)). It is what log lines carry (`trace_id`,
    /// `span_id`), what reply CloudEvents carry (`traceparent`) and what an exporter sends. `None`
    /// when nothing carried a trace, unless an exporter is installed: then such an invocation
    /// begins a trace of its own.
    pub span: Option<SpanContext>,
}

impl TraceContext {
    /// The W3C trace id, whatever the carrier: this invocation's span's, else the `traceparent`'s,
    /// else the X-Ray `Root` converted (`1-5759e988-bd862e3fe1be46a994272793` →
    /// `5759e988bd862e3fe1be46a994272793`).
    ///
    /// ```
    /// let t = fnkit_core::TraceContext {
    ///     traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(t.trace_id().unwrap().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// let t = fnkit_core::TraceContext {
    ///     xray_trace_id: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(t.trace_id().unwrap().as_str(), "5759e988bd862e3fe1be46a994272793");
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        if let Some(span) = &self.span {
            return Some(span.trace_id);
        }
        match self.w3c() {
            Some((trace_id, _, _)) => Some(trace_id),
            None => self.xray().map(|x| x.trace_id),
        }
    }

    /// The caller's span id (the parent of this invocation's span): the `traceparent`'s
    /// parent-id, else the X-Ray `Parent`.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        match self.w3c() {
            Some((_, parent, _)) => Some(parent),
            None => self.xray().and_then(|x| x.parent),
        }
    }

    /// Whether the caller sampled (recorded) its span: the `traceparent`'s sampled flag, else
    /// X-Ray's `Sampled=1`/`0`; `None` when neither says (no trace, or `Sampled=?`).
    pub fn sampled(&self) -> Option<bool> {
        match self.w3c() {
            Some((_, _, sampled)) => Some(sampled),
            None => self.xray().and_then(|x| x.sampled),
        }
    }

    fn w3c(&self) -> Option<(TraceId, SpanId, bool)> {
        let tp = self
            .traceparent
            .as_deref()
            .filter(|tp| is_traceparent(tp))?;
        let trace_id = TraceId::parse(&tp[3..35])?;
        let parent = SpanId::parse(&tp[36..52])?;
        let flags = u8::from_str_radix(&tp[53..55], 16).ok()?;
        Some((trace_id, parent, flags & 1 == 1))
    }

    fn xray(&self) -> Option<XRay> {
        XRay::parse(self.xray_trace_id.as_deref()?)
    }
}

/// A W3C trace id: 32 lowercase hex digits, not all zeros. Kept as its text, so it costs no
/// allocation and reads as a `&str`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 32]);

/// A W3C span id (a `traceparent`'s parent-id, an X-Ray `Parent`): 16 lowercase hex digits, not
/// all zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 16]);

macro_rules! hex_id {
    ($ty:ident, $digits:literal, $bytes:literal) => {
        impl $ty {
            /// Reads the id from exactly its hex digits (either case; kept lowercase). `None`
            /// for anything else, or all zeros (an invalid id in W3C Trace Context).
            pub fn parse(hex: &str) -> Option<Self> {
                let b = hex.as_bytes();
                if b.len() != $digits || !b.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                if b.iter().all(|&c| c == b'0') {
                    return None;
                }
                let mut out = [0u8; $digits];
                for (o, c) in out.iter_mut().zip(b) {
                    *o = c.to_ascii_lowercase();
                }
                Some(Self(out))
            }

            /// The id as hex text.
            pub fn as_str(&self) -> &str {
                // Only ASCII hex digits are ever stored.
                std::str::from_utf8(&self.0).unwrap_or_default()
            }

            /// The id as bytes (big-endian), as OTLP carries it.
            pub fn to_bytes(&self) -> [u8; $bytes] {
                let mut out = [0u8; $bytes];
                for (i, o) in out.iter_mut().enumerate() {
                    *o = (nibble(self.0[2 * i]) << 4) | nibble(self.0[2 * i + 1]);
                }
                out
            }

            fn from_u64s(words: &[u64]) -> Self {
                let mut out = [0u8; $digits];
                let bytes = words.iter().flat_map(|w| w.to_be_bytes());
                for (i, byte) in bytes.enumerate() {
                    out[2 * i..2 * i + 2].copy_from_slice(&crate::HEX_PAIRS[usize::from(byte)]);
                }
                Self(out)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.as_str())
            }
        }
    };
}

hex_id!(TraceId, 32, 16);
hex_id!(SpanId, 16, 8);

fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    }
}

impl TraceId {
    /// A new trace id: the current Unix time in seconds in its first 8 hex digits, 96 random
    /// bits after them. W3C asks for randomness in the right-most part; X-Ray reads the first 8
    /// digits as the trace's start time and refuses ids whose time is far off, so an id begun
    /// here is a valid X-Ray root too (as OpenTelemetry's X-Ray id generator makes them).
    pub fn random() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let hi = (secs & 0xFFFF_FFFF) << 32 | (crate::random_u64() >> 32);
        Self::from_u64s(&[hi.max(1), crate::random_u64()])
    }
}

impl SpanId {
    /// A new random span id (never all zeros).
    pub fn random() -> Self {
        Self::from_u64s(&[crate::random_u64().max(1)])
    }
}

/// One span's place in a trace: what a child of it (a call this invocation makes, a reply
/// event) names as its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
    /// Whether the span is sampled (recorded and exported): the caller's decision when it made
    /// one, else yes.
    pub sampled: bool,
}

impl SpanContext {
    /// The W3C `traceparent` naming this span as the parent: `00-<trace>-<span>-<flags>`.
    ///
    /// ```
    /// use fnkit_core::{SpanContext, SpanId, TraceId};
    /// let span = SpanContext {
    ///     trace_id: TraceId::parse("5759e988bd862e3fe1be46a994272793").unwrap(),
    ///     span_id: SpanId::parse("53995c3f42cd8ad8").unwrap(),
    ///     sampled: true,
    /// };
    /// assert_eq!(span.traceparent(), "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01");
    /// assert_eq!(
    ///     span.xray_header(),
    ///     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    /// );
    /// ```
    pub fn traceparent(&self) -> String {
        w3c_header(self.trace_id, self.span_id, self.sampled)
    }

    /// The same as an AWS X-Ray header: `Root=1-<first 8>-<last 24>;Parent=<span>;Sampled=<0|1>`.
    /// (X-Ray reads the first 8 digits of a root as its start time; a W3C trace id made elsewhere
    /// has random ones there, which X-Ray accepts.)
    pub fn xray_header(&self) -> String {
        let t = self.trace_id.as_str();
        format!(
            "Root=1-{}-{};Parent={};Sampled={}",
            &t[..8],
            &t[8..],
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

fn w3c_header(trace_id: TraceId, parent: SpanId, sampled: bool) -> String {
    format!(
        "00-{trace_id}-{parent}-{}",
        if sampled { "01" } else { "00" }
    )
}

/// The parts of an X-Ray trace header fnkit uses. Unknown keys (`Lineage`, `Self`) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct XRay {
    trace_id: TraceId,
    parent: Option<SpanId>,
    sampled: Option<bool>,
}

impl XRay {
    /// Reads `Root=1-{8 hex}-{24 hex}[;Parent={16 hex}][;Sampled={0|1|?}]`, keys in any order;
    /// `None` without a well-formed `Root`. A malformed `Parent` or `Sampled` is left out.
    fn parse(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for part in header.split(';') {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "Root" => root = xray_root(value),
                "Parent" => parent = SpanId::parse(value),
                "Sampled" => {
                    sampled = match value {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Some(Self {
            trace_id: root?,
            parent,
            sampled,
        })
    }
}

/// `1-5759e988-bd862e3fe1be46a994272793` → the 32-hex trace id.
fn xray_root(root: &str) -> Option<TraceId> {
    let b = root.as_bytes();
    if b.len() != 35 || &b[..2] != b"1-" || b[10] != b'-' {
        return None;
    }
    let mut hex = [0u8; 32];
    hex[..8].copy_from_slice(&b[2..10]);
    hex[8..].copy_from_slice(&b[11..]);
    TraceId::parse(std::str::from_utf8(&hex).ok()?)
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
    /// The invocation's span id when an adapter reads its trace a second time with more carriers
    /// (the payload's headers or event after the platform's headers): the span stays the same.
    pub span_id: Option<SpanId>,
}

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
static X_AMZN_TRACE_ID: HeaderName = HeaderName::from_static("x-amzn-trace-id");

static BEGIN_TRACES: AtomicBool = AtomicBool::new(false);

/// From now on, an invocation that arrives with no trace begins one: [`trace_context`] gives it
/// a new trace id (its span then is the trace's root). An exporter calls it when it is installed,
/// so every exported span has a trace that its logs and replies share; without one, fnkit only
/// continues the traces it is given.
pub fn begin_traces() {
    BEGIN_TRACES.store(true, Ordering::Relaxed);
}

/// Builds the trace context of an invocation: the one place fnkit reads trace headers, on every
/// platform.
///
/// - `traceparent` is the HTTP header's when it is well formed (exactly one header, W3C Trace
///   Context §3.2: version, 32-hex trace id and 16-hex parent id not all zeros, flags), else the
///   CloudEvent extension's when that is; a malformed one is dropped, as the spec asks. Where
///   neither has one, it is made from the X-Ray header, when that has a well-formed `Root` and
///   `Parent`: `00-<Root's 32 hex>-<Parent>-<01 if Sampled=1, else 00>`.
/// - `tracestate` comes from the same carrier as the `traceparent` kept (repeated headers joined
///   with `,`), and is dropped with it.
/// - `xray_trace_id` is the platform's X-Ray header, else `X-Amzn-Trace-Id`, as received.
/// - `span` is this invocation's span: the trace id the carriers give (an X-Ray `Root` without
///   `Parent` counts), a new span id (or `input.span_id`), sampled as the caller says (yes when
///   it does not say); with [`begin_traces`], a new trace when nothing carried one.
///
/// ```
/// use fnkit_core::adapter::{trace_context, TraceInput};
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse()?);
/// headers.insert("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793".parse()?);
/// let t = trace_context(TraceInput { headers: Some(&headers), ..Default::default() });
/// assert_eq!(t.trace_id().unwrap().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(t.xray_trace_id.as_deref(), Some("Root=1-5759e988-bd862e3fe1be46a994272793"));
///
/// // Lambda with X-Ray only: the W3C context is the X-Ray one, converted.
/// let t = trace_context(TraceInput {
///     xray: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
///     ..Default::default()
/// });
/// assert_eq!(
///     t.traceparent.as_deref(),
///     Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
/// );
/// let span = t.span.unwrap();
/// assert_eq!(span.trace_id.as_str(), "5759e988bd862e3fe1be46a994272793");
/// assert_ne!(span.span_id.as_str(), "53995c3f42cd8ad8"); // a child: a span of its own
/// # Ok::<(), http::header::InvalidHeaderValue>(())
/// ```
pub fn trace_context(input: TraceInput<'_>) -> TraceContext {
    build(input, BEGIN_TRACES.load(Ordering::Relaxed))
}

fn build(input: TraceInput<'_>, begin: bool) -> TraceContext {
    let mut trace = TraceContext::default();
    // Most requests carry no trace header: one look at each header name finds that, where a
    // lookup by name would hash each name and probe the map for nothing.
    let (mut parent_sent, mut xray_sent) = (false, false);
    for name in input.headers.into_iter().flat_map(HeaderMap::keys) {
        match name.as_str() {
            "traceparent" => parent_sent = true,
            "x-amzn-trace-id" => xray_sent = true,
            _ => {}
        }
    }
    if let Some(headers) = input.headers.filter(|_| parent_sent) {
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
        .or_else(|| {
            input
                .headers
                .filter(|_| xray_sent)
                .and_then(|h| joined(h, &X_AMZN_TRACE_ID))
        });
    if trace.traceparent.is_none() {
        if let Some(XRay {
            trace_id,
            parent: Some(parent),
            sampled,
        }) = trace.xray()
        {
            trace.traceparent = Some(w3c_header(trace_id, parent, sampled == Some(true)));
        }
    }
    let span_id = || input.span_id.unwrap_or_else(SpanId::random);
    trace.span = match trace.trace_id() {
        Some(trace_id) => Some(SpanContext {
            trace_id,
            span_id: span_id(),
            sampled: trace.sampled().unwrap_or(true),
        }),
        None if begin => Some(SpanContext {
            trace_id: TraceId::random(),
            span_id: span_id(),
            sampled: true,
        }),
        None => None,
    };
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

    const ROOT: &str = "Root=1-5759e988-bd862e3fe1be46a994272793";
    const XRAY: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const XRAY_W3C: &str = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";

    fn xray(header: &str) -> TraceContext {
        trace_context(TraceInput {
            xray: Some(header),
            ..TraceInput::default()
        })
    }

    #[test]
    fn xray_alone_gives_a_w3c_context_and_stays_as_received() {
        let t = xray(XRAY);
        assert_eq!(t.traceparent.as_deref(), Some(XRAY_W3C));
        assert_eq!(t.tracestate, None);
        assert_eq!(t.xray_trace_id.as_deref(), Some(XRAY));
        assert_eq!(
            t.trace_id().unwrap().as_str(),
            "5759e988bd862e3fe1be46a994272793"
        );
        assert_eq!(t.parent_span_id().unwrap().as_str(), "53995c3f42cd8ad8");
        assert_eq!(t.sampled(), Some(true));
        let span = t.span.unwrap();
        assert_eq!(span.trace_id, t.trace_id().unwrap());
        assert_ne!(Some(span.span_id), t.parent_span_id());
        assert!(span.sampled);

        // Keys in any order, with spaces and keys fnkit does not use; Sampled=0 is flag 00.
        let t = xray(" Lineage=a87bd80c:0 ; Sampled=0;Parent=53995C3F42CD8AD8; Root=1-5759E988-BD862E3FE1BE46A994272793");
        assert_eq!(
            t.traceparent.as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00")
        );
        assert_eq!(t.sampled(), Some(false));
        assert!(!t.span.unwrap().sampled);
    }

    #[test]
    fn an_xray_root_without_parent_gives_a_trace_id_but_no_traceparent() {
        for header in [ROOT, "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?"] {
            let t = xray(header);
            assert_eq!(t.traceparent, None, "{header}");
            assert_eq!(
                t.trace_id().unwrap().as_str(),
                "5759e988bd862e3fe1be46a994272793"
            );
            assert_eq!(t.parent_span_id(), None);
            assert_eq!(t.sampled(), None);
            // Undecided: this invocation's span is sampled.
            assert!(t.span.unwrap().sampled);
        }
    }

    #[test]
    fn malformed_xray_headers_carry_no_trace() {
        for bad in [
            "",
            "garbage",
            "Root=1-a;Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279x;Parent=53995c3f42cd8ad8",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793é;Parent=53995c3f42cd8ad8",
            "Parent=53995c3f42cd8ad8;Sampled=1",
        ] {
            let t = xray(bad);
            assert_eq!(t.traceparent, None, "{bad}");
            assert_eq!(t.trace_id(), None, "{bad}");
            assert_eq!(t.span, None, "{bad}");
        }
        // A malformed Parent leaves the Root: a trace id, no traceparent.
        for parent in [
            "0000000000000000",
            "53995c3f42cd8ad",
            "53995c3f42cd8ad8x",
            "zz995c3f42cd8ad8",
        ] {
            let t = xray(&format!("{ROOT};Parent={parent};Sampled=1"));
            assert_eq!(t.traceparent, None, "{parent}");
            assert!(t.trace_id().is_some(), "{parent}");
            assert_eq!(t.parent_span_id(), None, "{parent}");
        }
    }

    #[test]
    fn a_w3c_context_wins_over_xray_which_stays_as_received() {
        let h = headers(&[("traceparent", TP), ("x-amzn-trace-id", XRAY)]);
        let t = from(&h);
        assert_eq!(t.traceparent.as_deref(), Some(TP));
        assert_eq!(t.xray_trace_id.as_deref(), Some(XRAY));
        assert_eq!(
            t.trace_id().unwrap().as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(t.parent_span_id().unwrap().as_str(), "00f067aa0ba902b7");
        // A request header X-Ray fills in when the traceparent is malformed.
        let h = headers(&[("traceparent", "garbage"), ("x-amzn-trace-id", XRAY)]);
        assert_eq!(from(&h).traceparent.as_deref(), Some(XRAY_W3C));
    }

    #[test]
    fn w3c_to_xray_and_back() {
        let t = from(&headers(&[("traceparent", TP)]));
        let span = t.span.unwrap();
        let header = span.xray_header();
        assert_eq!(
            header,
            format!(
                "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent={};Sampled=1",
                span.span_id
            )
        );
        // Read back, the X-Ray header is the same trace with this span as the parent.
        let back = xray(&header);
        assert_eq!(back.trace_id(), Some(span.trace_id));
        assert_eq!(back.parent_span_id(), Some(span.span_id));
        assert_eq!(
            back.traceparent.as_deref(),
            Some(span.traceparent().as_str())
        );
        let unsampled = SpanContext {
            sampled: false,
            ..span
        };
        assert!(unsampled.xray_header().ends_with(";Sampled=0"));
        assert!(unsampled.traceparent().ends_with("-00"));
    }

    #[test]
    fn the_span_is_a_child_of_the_incoming_trace_and_may_be_kept() {
        let t = from(&headers(&[("traceparent", TP)]));
        let span = t.span.unwrap();
        assert_eq!(span.trace_id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(span.span_id.as_str(), "00f067aa0ba902b7");
        assert_ne!(
            from(&headers(&[("traceparent", TP)])).span.unwrap().span_id,
            span.span_id
        );
        let again = trace_context(TraceInput {
            headers: Some(&headers(&[("traceparent", TP)])),
            span_id: Some(span.span_id),
            ..TraceInput::default()
        });
        assert_eq!(again.span, Some(span));
        // The flags of the traceparent decide sampling.
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        assert!(
            !from(&headers(&[("traceparent", unsampled)]))
                .span
                .unwrap()
                .sampled
        );
    }

    #[test]
    fn with_no_carrier_a_trace_is_begun_only_when_asked() {
        assert_eq!(from(&HeaderMap::new()).span, None);
        let begun = build(TraceInput::default(), true);
        let span = begun.span.unwrap();
        assert!(span.sampled);
        assert_eq!(begun.traceparent, None);
        assert_eq!(begun.parent_span_id(), None);
        assert_eq!(begun.trace_id(), Some(span.trace_id));
        let other = build(TraceInput::default(), true).span.unwrap();
        assert_ne!(other.trace_id, span.trace_id);
        // An incoming trace is continued, not replaced.
        let h = headers(&[("traceparent", TP)]);
        let t = build(
            TraceInput {
                headers: Some(&h),
                ..TraceInput::default()
            },
            true,
        );
        assert_eq!(
            t.span.unwrap().trace_id.as_str(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn ids_parse_render_and_convert_to_bytes() {
        let id = TraceId::parse("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
        assert_eq!(id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(id.to_string(), id.as_str());
        assert_eq!(
            id.to_bytes(),
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        let span = SpanId::parse("00f067aa0ba902b7").unwrap();
        assert_eq!(
            span.to_bytes(),
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        for bad in [
            "",
            "00f067aa0ba902b",
            "00f067aa0ba902b7a",
            "0000000000000000",
            "00f067aa0ba902g7",
            "00f067aa0ba902b\u{e9}",
        ] {
            assert_eq!(SpanId::parse(bad), None, "{bad}");
        }
        let random = SpanId::random();
        assert_eq!(SpanId::parse(random.as_str()), Some(random));
        let random = TraceId::random();
        assert_eq!(TraceId::parse(random.as_str()), Some(random));
        // Its first 8 digits are now, in seconds: a valid X-Ray root.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let secs = u64::from_str_radix(&random.as_str()[..8], 16).unwrap();
        assert!(now.abs_diff(secs) <= 2, "{random}");
        assert_ne!(TraceId::random(), random);
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
