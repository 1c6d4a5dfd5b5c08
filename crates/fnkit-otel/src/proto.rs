//! The part of the OTLP trace protocol fnkit sends, encoded by hand: protobuf varints, fixed-width
//! integers and length-delimited fields, for `ExportTraceServiceRequest` → `ResourceSpans` →
//! (`Resource`, `ScopeSpans` → (`InstrumentationScope`, `Span`…)).
//!
//! Field numbers are those of `opentelemetry/proto/{collector/trace,trace,resource,common}/v1/*.proto`
//! (OTLP 1.x); the integration tests decode what this writes with the official generated types.

/// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `Span.SpanKind.SPAN_KIND_SERVER`.
pub(crate) const KIND_SERVER: u64 = 2;
/// `Status.StatusCode.STATUS_CODE_ERROR`.
pub(crate) const STATUS_ERROR: u64 = 2;

pub(crate) fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v & 0x7F) as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from(field << 3 | wire));
}

/// A `bytes` field.
pub(crate) fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(buf, field, LEN);
    varint(buf, value.len() as u64);
    buf.extend_from_slice(value);
}

/// A `string` field.
pub(crate) fn string(buf: &mut Vec<u8>, field: u32, value: &str) {
    bytes(buf, field, value.as_bytes());
}

/// A varint field: `uint64`, `int64` (two's complement), `bool`, an enum.
pub(crate) fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    key(buf, field, VARINT);
    varint(buf, value);
}

/// A `fixed64` field.
pub(crate) fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    key(buf, field, FIXED64);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A `fixed32` field.
pub(crate) fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    key(buf, field, FIXED32);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A message field: `body` writes its fields after the key, then its length goes in front of
/// them (shifting only this message's bytes, no buffer of its own).
pub(crate) fn message(buf: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(buf, field, LEN);
    let start = buf.len();
    body(buf);
    let mut len = Vec::new();
    varint(&mut len, (buf.len() - start) as u64);
    buf.splice(start..start, len);
}

/// An attribute value (`AnyValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
}

/// A `KeyValue` field: `{1: key, 2: AnyValue {1: string | 2: bool | 3: int}}`. A `oneof` member
/// is written even when it is its type's default, so `false` and `0` are present.
pub(crate) fn attribute(buf: &mut Vec<u8>, field: u32, name: &str, value: Value<'_>) {
    message(buf, field, |kv| {
        string(kv, 1, name);
        message(kv, 2, |any| match value {
            Value::Str(s) => string(any, 1, s),
            Value::Bool(b) => uint(any, 2, u64::from(b)),
            Value::Int(i) => uint(any, 3, i as u64),
        });
    });
}

/// The `ExportTraceServiceRequest` of one resource and one scope: `head` is the encoded
/// `ResourceSpans.resource` field followed by the encoded `ScopeSpans.scope` field ([`head`]),
/// `spans` the encoded `ScopeSpans.spans` fields.
pub(crate) fn request(head: &Head, spans: &[u8]) -> Vec<u8> {
    let scope_spans = head.scope.len() + spans.len();
    let resource_spans = head.resource.len() + 1 + varint_len(scope_spans as u64) + scope_spans;
    let mut out = Vec::with_capacity(resource_spans + 8);
    key(&mut out, 1, LEN); // ExportTraceServiceRequest.resource_spans
    varint(&mut out, resource_spans as u64);
    out.extend_from_slice(&head.resource);
    key(&mut out, 2, LEN); // ResourceSpans.scope_spans
    varint(&mut out, scope_spans as u64);
    out.extend_from_slice(&head.scope);
    out.extend_from_slice(spans);
    out
}

/// What every request starts with, encoded once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Head {
    /// `ResourceSpans.resource` (field 1): `Resource {1: attributes}`.
    pub(crate) resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1): `InstrumentationScope {1: name, 2: version}`.
    pub(crate) scope: Vec<u8>,
}

impl Head {
    pub(crate) fn new(attributes: &[(&str, Value<'_>)], scope: &str, version: &str) -> Self {
        let mut resource = Vec::new();
        message(&mut resource, 1, |r| {
            for (name, value) in attributes {
                attribute(r, 1, name, *value);
            }
        });
        let mut scope_field = Vec::new();
        message(&mut scope_field, 1, |s| {
            string(s, 1, scope);
            string(s, 2, version);
        });
        Self {
            resource,
            scope: scope_field,
        }
    }
}

/// `Span` field numbers.
pub(crate) mod span {
    pub(crate) const TRACE_ID: u32 = 1;
    pub(crate) const SPAN_ID: u32 = 2;
    pub(crate) const TRACE_STATE: u32 = 3;
    pub(crate) const PARENT_SPAN_ID: u32 = 4;
    pub(crate) const NAME: u32 = 5;
    pub(crate) const KIND: u32 = 6;
    pub(crate) const START: u32 = 7;
    pub(crate) const END: u32 = 8;
    pub(crate) const ATTRIBUTES: u32 = 9;
    pub(crate) const STATUS: u32 = 15;
    pub(crate) const FLAGS: u32 = 16;
    /// `ScopeSpans.spans`.
    pub(crate) const IN_SCOPE: u32 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        for (v, want) in [
            (0u64, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7F]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xAC, 0x02]),
            (
                u64::MAX,
                vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            ),
        ] {
            let mut buf = Vec::new();
            varint(&mut buf, v);
            assert_eq!(buf, want, "{v}");
            assert_eq!(varint_len(v), want.len(), "{v}");
        }
    }

    #[test]
    fn fields_have_their_keys_and_lengths() {
        let mut buf = Vec::new();
        string(&mut buf, 1, "ab");
        uint(&mut buf, 6, 2);
        fixed64(&mut buf, 7, 1);
        fixed32(&mut buf, 16, 0x0301);
        assert_eq!(
            buf,
            [
                0x0A, 2, b'a', b'b', // 1: LEN
                0x30, 2, // 6: VARINT
                0x39, 1, 0, 0, 0, 0, 0, 0, 0, // 7: FIXED64
                0x85, 0x01, 0x01, 0x03, 0, 0, // 16: FIXED32 (a two-byte key)
            ]
        );
    }

    #[test]
    fn a_message_longer_than_127_bytes_gets_a_two_byte_length() {
        let mut buf = vec![0xEE];
        message(&mut buf, 2, |m| string(m, 1, &"x".repeat(200)));
        assert_eq!(&buf[..4], [0xEE, 0x12, 0xCB, 0x01]); // 203 = 0xCB 0x01
        assert_eq!(buf.len(), 4 + 203);
        assert_eq!(&buf[4..7], [0x0A, 0xC8, 0x01]); // 200
    }

    #[test]
    fn attributes_are_key_values_with_any_values() {
        let mut buf = Vec::new();
        attribute(&mut buf, 9, "k", Value::Bool(false));
        assert_eq!(buf, [0x4A, 7, 0x0A, 1, b'k', 0x12, 2, 0x10, 0]);
        buf.clear();
        attribute(&mut buf, 9, "n", Value::Int(-1));
        assert_eq!(buf.len(), 2 + 3 + 2 + 11);
        assert_eq!(&buf[7..9], [0x18, 0xFF]);
    }

    #[test]
    fn a_request_wraps_head_and_spans() {
        let head = Head::new(&[("service.name", Value::Str("s"))], "fnkit", "1");
        let mut spans = Vec::new();
        message(&mut spans, span::IN_SCOPE, |s| string(s, span::NAME, "n"));
        let req = request(&head, &spans);
        // 1: ResourceSpans { 1: Resource, 2: ScopeSpans { 1: scope, 2: span } }
        assert_eq!(req[0], 0x0A);
        let total = usize::from(req[1]);
        assert_eq!(req.len(), 2 + total);
        assert_eq!(&req[2..2 + head.resource.len()], &head.resource[..]);
        let at = 2 + head.resource.len();
        assert_eq!(req[at], 0x12);
        assert_eq!(usize::from(req[at + 1]), head.scope.len() + spans.len());
        assert!(req.ends_with(&spans));
    }
}
