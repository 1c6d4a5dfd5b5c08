//! Health, readiness and platform probes: answered by the runtime, never by the handler (and by
//! the probe thread, `sentinel.rs`, while handlers hold every worker).

use http::header::USER_AGENT;
use http::{HeaderName, Request, StatusCode};

use crate::reply::Reply;
use crate::service::{header_str, json_reply, State};

static K_KUBELET_PROBE: HeaderName = HeaderName::from_static("k-kubelet-probe");

impl State {
    /// The answer to a platform path or probe, or `None` for a request the handler serves:
    /// `GET /health` (liveness), `/ready`, any request from a Kubernetes or Knative probe
    /// (`K-Kubelet-Probe`, a `kube-probe/` user agent), and on OpenFaaS `/_/health`, `/_/ready`.
    pub(crate) fn answer_platform_paths<B>(&self, req: &Request<B>) -> Option<Reply> {
        let path = req.uri().path();
        let probe = req.headers().contains_key(&K_KUBELET_PROBE)
            || header_str(req.headers(), &USER_AGENT)
                .is_some_and(|ua| ua.starts_with("kube-probe/"));
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
    #[test]
    fn rss_is_read_from_proc() {
        let rss = super::rss_bytes().expect("/proc/self is readable on Linux");
        assert!(rss > 100 * 1024, "{rss}");
    }
}
