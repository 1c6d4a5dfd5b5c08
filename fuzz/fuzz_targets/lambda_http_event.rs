//! Any bytes as a Lambda HTTP event (API Gateway REST or HTTP API, ALB, Function URL): no panic;
//! a refusal is `InvalidInput`; an accepted event is an origin-form request whose trace context
//! keeps its one `traceparent` header exactly when W3C Trace Context calls it valid.
#![no_main]

use fnkit_core::adapter::{trace_context, TraceInput};
use fnkit_core::ErrorKind;
use fnkit_fuzz::w3c_traceparent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = match fnkit_lambda::fuzzing::decode_http_event(data) {
        Ok(req) => req,
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            return;
        }
    };
    assert!(req.uri().path().starts_with('/'), "{}", req.uri());
    let trace = trace_context(TraceInput {
        headers: Some(req.headers()),
        ..TraceInput::default()
    });
    let mut parents = req.headers().get_all("traceparent").iter();
    let expected = match (parents.next(), parents.next()) {
        (Some(tp), None) => tp.to_str().ok().filter(|tp| w3c_traceparent(tp)),
        _ => None,
    };
    assert_eq!(trace.traceparent.as_deref(), expected);
    if trace.traceparent.is_none() {
        assert_eq!(trace.tracestate, None);
    }
});
