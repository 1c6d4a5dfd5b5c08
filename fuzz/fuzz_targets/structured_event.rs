//! Any bytes as a structured CloudEvent, over HTTP (`application/cloudevents+json`) and as a
//! Lambda payload: no panic, and the same verdict (the same event, or the same error kind and
//! message) on both, unless the payload is EventBridge-shaped (Lambda's own reading, by design).
#![no_main]

use fnkit_core::ErrorKind;
use fnkit_fuzz::{check, eventbridge_shaped, http_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let http = http_decode("application/cloudevents+json", data);
    check(&http, &[ErrorKind::InvalidEvent]);
    let lambda = fnkit_lambda::fuzzing::decode_event(data).map(|e| vec![e]);
    check(&lambda, &[ErrorKind::InvalidEvent]);
    if eventbridge_shaped(data) {
        return;
    }
    match (&http, &lambda) {
        (Ok(h), Ok(l)) => assert_eq!(h, l, "HTTP and Lambda read different events"),
        (Err(h), Err(l)) => {
            assert_eq!(h.kind(), l.kind());
            assert_eq!(h.message(), l.message());
        }
        _ => panic!("HTTP {http:?} but Lambda {lambda:?}"),
    }
});
