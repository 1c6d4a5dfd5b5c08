//! The platform-free core of [fnkit](https://docs.rs/fnkit): the handler API, [`Context`],
//! [`Error`] and [`Platform`] detection, and in [`adapter`] the rules every platform adapter
//! shares. It does no I/O beyond reading the environment and secret files on request.
//!
//! Adapters (the HTTP runtime for Knative, OpenFaaS and local mode; the Lambda runtime) depend on
//! this crate; this crate depends on no platform. Users depend on the `fnkit` facade, which
//! re-exports everything here but [`adapter`].
//!
//! Features:
//! - `cloudevents`: the CloudEvent handler shape ([`events()`]), the incoming event in
//!   [`Context`], and [`adapter::ce`], on `cloudevents-sdk`'s data model.

mod body;
#[cfg(feature = "cloudevents")]
mod ce;
mod context;
mod deferred;
mod env;
mod error;
mod guard;
mod handler;
mod logscope;
mod media;
mod observe;
mod platform;
mod secrets;
mod shutdown;
#[cfg(feature = "signals")]
mod signals;
mod trace;
mod workers;

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub use body::{Body, BodySender};
pub use context::{Context, FunctionInfo};
pub use error::{Error, ErrorKind};
#[cfg(feature = "cloudevents")]
pub use handler::{events, Events};
pub use handler::{http, Handler, Http, IntoFunction};
pub use platform::Platform;
pub use secrets::{secret, Secret};
pub use shutdown::on_shutdown;
pub use trace::{SpanContext, SpanId, TraceContext, TraceId};

#[cfg(feature = "cloudevents")]
pub use cloudevents;

/// What only platform adapters need: the handlers' type-erased forms, the shared decoding rules,
/// and the guard around a handler's run. Function authors never use it (`fnkit` does not
/// re-export it).
///
/// Every rule about input lives here once, and every adapter calls it, so the same input gets the
/// same verdict on every platform: [`env_var`] for the environment, [`trace_context`] for trace
/// headers, [`ce`] for CloudEvents, [`guard`] for panics and time limits.
pub mod adapter {
    pub use crate::handler::{
        BoxFuture, HttpFunction, HttpShape, Payload, ShapeVisitor, TypedFunction, TypedShape,
    };
    #[cfg(feature = "cloudevents")]
    pub use crate::handler::{EventFunction, EventShape};

    pub use crate::deferred::{after_first_answer, first_answer_out};
    pub use crate::env::{env_from, env_var};

    /// What adapters report about invocations, and what observers (metrics, traces) receive.
    pub mod observe {
        pub use crate::observe::*;
    }
    pub use crate::guard::{guard, panic_message, watch_blocking, Limit};

    /// How many threads run handlers: the CPU quota (cgroup v2 or v1, Lambda's memory share)
    /// and `FNKIT_WORKERS`, read once (at start-up, or on first ask where only `/health` needs
    /// the quota).
    pub mod workers {
        pub use crate::workers::*;
    }
    pub use crate::shutdown::{has_shutdown_hooks, run_shutdown_hooks};
    /// Which request a log line belongs to: the adapters wrap each request in
    /// [`logscope::in_request`], the log subscriber reads [`logscope::current`].
    pub mod logscope {
        pub use crate::logscope::*;
    }
    /// Termination signals as a readable socket (a self-pipe of our own), without Tokio's
    /// signal driver.
    #[cfg(feature = "signals")]
    pub mod signals {
        pub use crate::signals::*;
    }
    pub use crate::trace::{begin_traces, trace_context, TraceInput};

    /// Media types of `Content-Type` values (lowercased, parameters dropped; which are JSON), in
    /// every build; `ce` (feature `cloudevents`) reads them with these same functions.
    pub mod media {
        pub use crate::media::*;
    }

    /// CloudEvents without a transport: attribute rules, the JSON format, data splitting.
    #[cfg(feature = "cloudevents")]
    pub mod ce {
        pub use crate::ce::*;
    }

    pub use crate::new_id;
}

/// A new identifier in the form of a random UUID (version 4), for request and event ids.
#[doc(hidden)] // reached as `adapter::new_id`
///
/// Ids are unique within the process and unpredictable across processes: the first call takes a
/// 128-bit seed from the OS's randomness (through `std`'s `RandomState`), and every id is that
/// seed and a counter run through a 64-bit mixer (SplitMix64's finaliser, a bijection, so two
/// counter values never give the same id). No system call after the first: an id costs
/// nanoseconds. Not for secrets or tokens.
///
/// ```
/// let a = fnkit_core::adapter::new_id();
/// let b = fnkit_core::adapter::new_id();
/// assert_ne!(a, b);
/// assert_eq!(a.len(), 36);
/// assert_eq!(a.as_bytes()[14], b'4'); // version 4
/// ```
pub fn new_id() -> String {
    let (k0, k1) = seed();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Version 4 in the 13th hex digit, variant 10xx in the 17th.
    let hi = (mix(n ^ k0) & !0xF000) | 0x4000;
    let lo = (mix(n.wrapping_add(k1)) & !(0xC000 << 48)) | (0x8000 << 48);
    let (hi, lo) = (hi.to_be_bytes(), lo.to_be_bytes());
    // 8-4-4-4-12 hex digits, a byte (two digits) at a time: the dashes stay where they are.
    let mut buf = [b'-'; 36];
    for (at, bytes) in [
        (0, &hi[..4]),
        (9, &hi[4..6]),
        (14, &hi[6..]),
        (19, &lo[..2]),
        (24, &lo[2..]),
    ] {
        for (i, &b) in bytes.iter().enumerate() {
            buf[at + 2 * i..at + 2 * i + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        }
    }
    String::from_utf8(buf.to_vec()).unwrap_or_default()
}

/// Each byte's two lowercase hex digits (request ids here, trace and span ids in `trace`).
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 0xF]];
        b += 1;
    }
    pairs
};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The process's 128-bit seed, from the OS's randomness (through `std`'s `RandomState`), taken
/// once.
fn seed() -> (u64, u64) {
    static SEED: OnceLock<(u64, u64)> = OnceLock::new();
    *SEED.get_or_init(|| {
        let keys = RandomState::new();
        (keys.hash_one(0u8), keys.hash_one(1u8))
    })
}

/// A random 64-bit number for trace and span ids, made as [`new_id`] makes ids (seed and counter
/// through the mixer): distinct within the process, unpredictable across processes, nanoseconds.
pub(crate) fn random_u64() -> u64 {
    let (k0, k1) = seed();
    mix(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_add(k1) ^ k0)
}

/// SplitMix64's output function: a bijection on `u64` that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_pairs_are_each_byte_in_two_lowercase_digits() {
        for b in 0..=255_u8 {
            assert_eq!(
                super::HEX_PAIRS[usize::from(b)],
                *format!("{b:02x}").as_bytes()
            );
        }
    }

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
