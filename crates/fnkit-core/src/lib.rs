//! The platform-free core of [fnkit](https://docs.rs/fnkit): the handler API, [`Context`],
//! [`Error`] and [`Platform`] detection.
//!
//! Adapters (the HTTP runtime for Knative, OpenFaaS and local mode; the Lambda runtime) depend on
//! this crate; this crate depends on no platform. Users depend on the `fnkit` facade, which
//! re-exports everything here.
//!
//! Features:
//! - `cloudevents`: the CloudEvent handler shape ([`events()`]) and the incoming event in
//!   [`Context`], on `cloudevents-sdk`'s data model.

mod body;
mod context;
mod error;
mod handler;
mod platform;
mod secrets;

pub use body::Body;
pub use context::{Context, FunctionInfo, TraceContext};
pub use error::{Error, ErrorKind};
#[cfg(feature = "cloudevents")]
pub use handler::{events, EventFunction, EventShape, Events};
pub use handler::{
    http, BoxFuture, Function, Handler, Http, HttpFunction, HttpShape, IntoFunction, Payload,
    TypedFunction, TypedShape,
};
pub use platform::Platform;
pub use secrets::{secret, Secret};

#[cfg(feature = "cloudevents")]
pub use cloudevents;

/// A new identifier in the form of a random UUID (version 4), for request and event ids.
///
/// Ids are unique within the process and unpredictable across processes: the first call takes a
/// 128-bit key from the OS's randomness (as `std`'s `RandomState` does) and every id is a keyed
/// hash of a counter. No system call after the first: a request id costs nanoseconds. Not for
/// secrets or tokens.
///
/// ```
/// let a = fnkit_core::new_id();
/// let b = fnkit_core::new_id();
/// assert_ne!(a, b);
/// assert_eq!(a.len(), 36);
/// assert_eq!(a.as_bytes()[14], b'4'); // version 4
/// ```
pub fn new_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = KEYS.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Version 4 in the 13th hex digit, variant 10xx in the 17th.
    let hi = (keys.hash_one((n, 0u8)) & !0xF000) | 0x4000;
    let lo = (keys.hash_one((n, 1u8)) & !(0xC000 << 48)) | (0x8000 << 48);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| super::new_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let groups: Vec<&str> = id.split('-').collect();
            let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
            assert!(groups[2].starts_with('4'), "{id}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{id}"
            );
        }
    }
}
