//! Health, readiness and platform probes: answered by the runtime, never by the handler (and by
//! the probe thread, `sentinel.rs`, while handlers hold every worker).

use http::header::USER_AGENT;
use http::{HeaderMap, HeaderValue, Request, StatusCode};

use crate::reply::Reply;
use crate::service::{header_str, header_text, json_reply, State};

/// What the server reads from a request's headers for itself, before the handler's shape reads
/// its own: whether a probe sent it, and the caller's request id. Found in one pass over the
/// headers: a lookup by name hashes the name and probes the map, and five of them cost a request
/// more than looking once at each header of a usual one (BENCHMARKS.md, issue 12's fifth pass).
#[derive(Debug, Default)]
pub(crate) struct Seen<'a> {
    /// `K-Kubelet-Probe` is present, or the user agent starts with `kube-probe/`.
    pub(crate) probe: bool,
    /// The first of `X-Request-Id`, OpenFaaS's `X-Call-Id` and a CloudEvent's `ce-id` that is
    /// present, visible ASCII and not empty (each header's first value).
    pub(crate) request_id: Option<&'a str>,
}

impl<'a> Seen<'a> {
    pub(crate) fn of(headers: &'a HeaderMap) -> Self {
        let (mut kubelet, mut agent) = (false, None);
        let mut ids: [Option<&HeaderValue>; 3] = [None; 3];
        let first = |slot: &mut Option<&'a HeaderValue>, value| {
            slot.get_or_insert(value);
        };
        for (name, value) in headers {
            if *name == USER_AGENT {
                first(&mut agent, value);
                continue;
            }
            match name.as_str() {
                "x-request-id" => first(&mut ids[0], value),
                "x-call-id" => first(&mut ids[1], value),
                "ce-id" => first(&mut ids[2], value),
                "k-kubelet-probe" => kubelet = true,
                _ => {}
            }
        }
        Self {
            probe: kubelet
                || agent
                    .and_then(header_text)
                    .is_some_and(|ua| ua.starts_with("kube-probe/")),
            request_id: ids.into_iter().flatten().find_map(header_text),
        }
    }
}

impl State {
    /// The answer to a platform path or probe, or `None` for a request the handler serves:
    /// `GET /health` (liveness), `/ready`, any request from a Kubernetes or Knative probe
    /// (`K-Kubelet-Probe`, a `kube-probe/` user agent), and on OpenFaaS `/_/health`, `/_/ready`.
    /// `seen` is [`Seen::of`] its headers.
    pub(crate) fn answer_platform_paths<B>(
        &self,
        req: &Request<B>,
        seen: &Seen<'_>,
    ) -> Option<Reply> {
        let path = req.uri().path();
        let probe = seen.probe;
        let watchdog = self.config.watchdog_paths;
        if path == "/health" && !probe {
            return Some(self.health());
        }
        if path == "/metrics" && !probe {
            // Served only when an observer renders metrics (feature `metrics`); otherwise the
            // path is the handler's like any other.
            let accept = header_str(req.headers(), &http::header::ACCEPT);
            if let Some((content_type, body)) = fnkit_core::adapter::observe::render(accept) {
                let mut r = http::Response::new(crate::reply::ReplyBody::whole(body));
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(content_type),
                );
                return Some(r);
            }
        }
        if watchdog && path == "/_/ready" && self.at_capacity() {
            // of-watchdog's readiness: 429 while `max_inflight` requests are in flight, so the
            // platform routes elsewhere (docs/platforms.md §6).
            return Some(json_reply(
                StatusCode::TOO_MANY_REQUESTS,
                br#"{"status":"at max_inflight"}"#.to_vec(),
            ));
        }
        if probe || path == "/ready" || (watchdog && (path == "/_/health" || path == "/_/ready")) {
            return Some(self.readiness());
        }
        None
    }

    fn health(&self) -> Reply {
        // As `fnkit::run` set them; embedded in a runtime of one's own, that runtime's size.
        let (workers, cpu_quota) = match fnkit_core::adapter::workers::current() {
            Some(w) => (w.count, w.cpu_quota),
            None => (
                tokio::runtime::Handle::try_current().map_or(1, |h| h.metrics().num_workers()),
                None,
            ),
        };
        let body = serde_json::json!({
            "status": "ok",
            "function": self.info.name,
            "version": self.info.version,
            "platform": self.info.platform.as_str(),
            "fnkit": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "workers": workers,
            "cpu_quota": cpu_quota,
            "rss_bytes": rss_bytes(),
        });
        json_reply(StatusCode::OK, body.to_string().into_bytes())
    }

    fn readiness(&self) -> Reply {
        if self.ready() {
            json_reply(StatusCode::OK, br#"{"status":"ready"}"#.to_vec())
        } else {
            json_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                br#"{"status":"shutting down"}"#.to_vec(),
            )
        }
    }
}

/// The process's resident set size now, in bytes: `/proc/self/statm`'s resident pages (4 KiB
/// pages on x86_64); elsewhere, where pages may be 16 or 64 KiB, `VmRSS` of `/proc/self/status`.
/// `None` where `/proc` is not there.
fn rss_bytes() -> Option<u64> {
    if cfg!(target_arch = "x86_64") {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        return Some(pages * 4096);
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn rss_is_read_from_proc() {
        let rss = super::rss_bytes().expect("/proc/self is readable on Linux");
        assert!(rss > 100 * 1024, "{rss}");
    }

    #[test]
    fn the_request_id_is_the_callers_in_order_of_preference() {
        let h = headers(&[("ce-id", "event-1"), ("x-call-id", "call-1")]);
        assert_eq!(Seen::of(&h).request_id, Some("call-1"));
        let h = headers(&[
            ("ce-id", "event-1"),
            ("x-call-id", "call-1"),
            ("x-request-id", "req-1"),
        ]);
        assert_eq!(Seen::of(&h).request_id, Some("req-1"));
        // An empty one does not count; a repeated header's first value does.
        let h = headers(&[("x-request-id", ""), ("ce-id", "event-1")]);
        assert_eq!(Seen::of(&h).request_id, Some("event-1"));
        let h = headers(&[("x-request-id", "a"), ("x-request-id", "b")]);
        assert_eq!(Seen::of(&h).request_id, Some("a"));
        assert_eq!(Seen::of(&HeaderMap::new()).request_id, None);
    }

    #[test]
    fn probes_are_seen_by_their_header_or_user_agent() {
        assert!(Seen::of(&headers(&[("k-kubelet-probe", "queue")])).probe);
        assert!(Seen::of(&headers(&[("user-agent", "kube-probe/1.31")])).probe);
        assert!(!Seen::of(&headers(&[("user-agent", "curl/8.5.0")])).probe);
        assert!(!Seen::of(&headers(&[("accept", "kube-probe/1.31")])).probe);
        assert!(!Seen::of(&HeaderMap::new()).probe);
    }
}
