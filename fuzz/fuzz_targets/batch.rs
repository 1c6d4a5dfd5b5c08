//! Any bytes as a CloudEvents batch (`application/cloudevents-batch+json`) over HTTP: no panic;
//! an accepted batch has one event per array entry, each the event that entry is on its own.
#![no_main]

use fnkit_core::adapter::ce;
use fnkit_core::ErrorKind;
use fnkit_fuzz::{check, http_decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let batch = http_decode("application/cloudevents-batch+json", data);
    check(&batch, &[ErrorKind::InvalidEvent]);
    if let Ok(events) = &batch {
        let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice(data) else {
            panic!("accepted a batch that is not a JSON array");
        };
        assert_eq!(entries.len(), events.len());
        // Each entry as a structured event of its own, from the parsed value (not its text
        // written again: serde_json's default float parsing does not round-trip every float).
        for (entry, event) in entries.into_iter().zip(events) {
            let alone =
                ce::decode_value(entry).expect("an entry accepted in a batch is accepted alone");
            assert_eq!(&alone, event);
        }
    }
});
