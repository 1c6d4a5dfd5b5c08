//! The OpenFaaS profile: of-watchdog's HTTP-mode contract (docs/platforms.md §6) applied to the
//! HTTP runtime's [`Config`]. fnkit enforces the watchdog's limits itself, so the same settings
//! hold with or without a watchdog in front: behind of-watchdog (the default) or in its place,
//! as the container's only process (`FNKIT_OPENFAAS_MODE=direct`, docs/platforms.md §6.9).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fnkit_core::Error;

use crate::config::{bad, parse_duration, parse_port};
use crate::Config;

/// How requests reach the function on OpenFaaS (`FNKIT_OPENFAAS_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Behind of-watchdog: listen on loopback where `upstream_url` points.
    Watchdog,
    /// In the watchdog's place: listen on `0.0.0.0:$port` (8080) and answer `/_/health`,
    /// `/_/ready` and the watchdog's limits alone.
    Direct,
}

fn mode(var: &impl Fn(&str) -> Option<String>) -> Result<Mode, Error> {
    match var("FNKIT_OPENFAAS_MODE") {
        None => Ok(Mode::Watchdog),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "watchdog" => Ok(Mode::Watchdog),
            "direct" => Ok(Mode::Direct),
            _ => Err(bad("FNKIT_OPENFAAS_MODE", &v, "watchdog or direct")),
        },
    }
}

/// Applies of-watchdog's contract to `config`: listen where `upstream_url` points (behind the
/// watchdog) or on the watchdog's own `port` (direct), bound the handler by `exec_timeout`, limit
/// concurrency by `max_inflight`, and keep accepting after SIGTERM for `healthcheck_interval`
/// (+ `write_timeout` behind the watchdog, which drains for that long after it stops).
pub(crate) fn apply(
    config: &mut Config,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    let mode = mode(var)?;
    let upstream = var("upstream_url").or_else(|| var("http_upstream_url"));
    config.addr = match (mode, &upstream) {
        (Mode::Direct, Some(url)) => {
            return Err(Error::invalid_input(format!(
                "FNKIT_OPENFAAS_MODE=direct serves on the watchdog's port itself, but \
                 upstream_url={url:?} says a watchdog proxies to it: unset one of them"
            )))
        }
        (Mode::Direct, None) => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), direct_port(var)?)
        }
        (Mode::Watchdog, Some(url)) => upstream_addr(url)?,
        (Mode::Watchdog, None) => SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            var("FNKIT_OPENFAAS_PORT")
                .map(|p| parse_port("FNKIT_OPENFAAS_PORT", &p))
                .transpose()?
                .unwrap_or(8082),
        ),
    };
    let dur = |name: &str| var(name).map(|v| parse_duration(name, &v)).transpose();
    let write_timeout = dur("write_timeout")?.unwrap_or(Duration::from_secs(30));
    let exec_timeout = dur("exec_timeout")?.unwrap_or(Duration::from_secs(30));
    // The handler runs while both watchdog limits allow (0 disables either): past
    // exec_timeout the watchdog answers 504 and cancels the request, past write_timeout it
    // can no longer write the answer. FNKIT_TIMEOUT_SECS may only shorten that.
    let watchdog_limit = [
        (exec_timeout, "exec_timeout"),
        (write_timeout, "write_timeout"),
    ]
    .into_iter()
    .filter(|(d, _)| !d.is_zero())
    .min_by_key(|(d, _)| *d);
    if let Some((limit, setting)) = watchdog_limit {
        let shortened = var("FNKIT_TIMEOUT_SECS").is_some() && config.timeout < limit;
        if !shortened {
            config.timeout = limit;
            config.timeout_setting = setting;
        }
    }
    if var("FNKIT_READ_TIMEOUT_SECS").is_none() {
        if let Some(read) = dur("read_timeout")?.filter(|d| !d.is_zero()) {
            config.read_timeout = read;
        }
    }
    let healthcheck = dur("healthcheck_interval")?.unwrap_or(write_timeout);
    // After SIGTERM the watchdog serves for healthcheck_interval, then stops accepting and lets
    // in-flight requests finish (up to write_timeout). Behind it, fnkit must accept for both, as
    // requests the watchdog accepted late still arrive; in its place, fnkit does what it does.
    config.accept_after_signal = match mode {
        Mode::Watchdog => healthcheck + write_timeout,
        Mode::Direct => healthcheck,
    };
    if var("FNKIT_SHUTDOWN_TIMEOUT_SECS").is_none() {
        config.shutdown_timeout = write_timeout;
    }
    config.max_inflight = match var("max_inflight") {
        None => None,
        Some(v) => match v.trim().parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => return Err(bad("max_inflight", &v, "a whole number (0 = no limit)")),
        },
    };
    config.watchdog_paths = true;
    Ok(())
}

/// The direct mode's port: the watchdog's own `port` variable (8080, where the gateway and
/// faas-netes send traffic), else `PORT` (for running it elsewhere, and tests).
fn direct_port(var: &impl Fn(&str) -> Option<String>) -> Result<u16, Error> {
    for name in ["port", "PORT"] {
        if let Some(p) = var(name) {
            return parse_port(name, &p);
        }
    }
    Ok(8080)
}

/// Where to listen for an `http://host:port[/path]` upstream URL: the port (80 when absent) on
/// the host when it is an IP literal (`127.0.0.1`, `[::1]`), else on 127.0.0.1 (`localhost`).
fn upstream_addr(url: &str) -> Result<SocketAddr, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("upstream_url", url, "an http:// URL with a port"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, parse_port("upstream_url", port)?),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = host.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnkit_core::adapter::env_from as env;
    use fnkit_core::Platform;

    #[test]
    fn openfaas_listens_on_the_upstream_port_on_loopback() {
        let c = Config::from_lookup(
            Platform::OpenFaas,
            env(&[
                ("upstream_url", "http://127.0.0.1:8099"),
                ("PORT", "8080"),
                ("exec_timeout", "10s"),
                ("write_timeout", "15s"),
                ("healthcheck_interval", "5s"),
                ("max_inflight", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:8099".parse().unwrap());
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.accept_after_signal, Duration::from_secs(20));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(15));
        assert_eq!(c.max_inflight, Some(3));
        assert!(c.watchdog_paths);
    }

    #[test]
    fn openfaas_handler_limit_is_the_shorter_watchdog_timeout() {
        let c = |pairs| Config::from_lookup(Platform::OpenFaas, env(pairs)).unwrap();
        // write_timeout shorter than exec_timeout: the answer must be written before it.
        let t = c(&[("exec_timeout", "60s"), ("write_timeout", "20s")]);
        assert_eq!(t.timeout, Duration::from_secs(20));
        assert_eq!(t.timeout_setting, "write_timeout");
        // exec_timeout = 0 disables that limit only.
        let t = c(&[("exec_timeout", "0"), ("write_timeout", "45s")]).timeout;
        assert_eq!(t, Duration::from_secs(45));
        // Both disabled: fnkit's own default.
        let t = c(&[("exec_timeout", "0"), ("write_timeout", "0")]).timeout;
        assert_eq!(t, Duration::from_secs(300));
        // FNKIT_TIMEOUT_SECS can shorten the watchdog's limit, not lengthen it: past
        // exec_timeout the watchdog has already answered 504 and cancelled the request.
        let t = c(&[("exec_timeout", "5s"), ("FNKIT_TIMEOUT_SECS", "120")]).timeout;
        assert_eq!(t, Duration::from_secs(5));
        let t = c(&[("exec_timeout", "5s"), ("FNKIT_TIMEOUT_SECS", "2")]);
        assert_eq!(t.timeout, Duration::from_secs(2));
        assert_eq!(t.timeout_setting, "FNKIT_TIMEOUT_SECS");
    }

    #[test]
    fn openfaas_read_timeout_follows_the_watchdog() {
        let c = |pairs| Config::from_lookup(Platform::OpenFaas, env(pairs)).unwrap();
        assert_eq!(
            c(&[("read_timeout", "2m")]).read_timeout,
            Duration::from_secs(120)
        );
        assert_eq!(c(&[]).read_timeout, Duration::from_secs(30));
        let explicit = c(&[("read_timeout", "2m"), ("FNKIT_READ_TIMEOUT_SECS", "7")]);
        assert_eq!(explicit.read_timeout, Duration::from_secs(7));
        // Other platforms ignore the watchdog's variable.
        let kn = Config::from_lookup(Platform::Knative, env(&[("read_timeout", "2m")])).unwrap();
        assert_eq!(kn.read_timeout, Duration::from_secs(30));
    }

    #[test]
    fn openfaas_upstream_url_forms() {
        let addr = |url: &str| upstream_addr(url).unwrap();
        assert_eq!(
            addr("http://127.0.0.1:8082"),
            "127.0.0.1:8082".parse().unwrap()
        );
        assert_eq!(
            addr("http://127.0.0.1:8083/"),
            "127.0.0.1:8083".parse().unwrap()
        );
        assert_eq!(
            addr("http://localhost:9000/fn?x=1"),
            "127.0.0.1:9000".parse().unwrap()
        );
        assert_eq!(addr("http://[::1]:8082"), "[::1]:8082".parse().unwrap());
        assert_eq!(addr("http://[::1]"), "[::1]:80".parse().unwrap());
        assert_eq!(addr("http://127.0.0.1"), "127.0.0.1:80".parse().unwrap());
        let err = upstream_addr("https://127.0.0.1:8082").unwrap_err();
        assert!(err.message().contains("upstream_url"), "{err}");
        assert!(upstream_addr("http://127.0.0.1:port").is_err());
        // http_upstream_url is the watchdog's other name for it.
        let c = Config::from_lookup(
            Platform::OpenFaas,
            env(&[("http_upstream_url", "http://127.0.0.1:8123")]),
        )
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:8123".parse().unwrap());
    }

    #[test]
    fn openfaas_without_upstream_url_uses_8082() {
        let c = Config::from_lookup(Platform::OpenFaas, env(&[])).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8082".parse().unwrap());
        // healthcheck_interval defaults to write_timeout (30 s).
        assert_eq!(c.accept_after_signal, Duration::from_secs(60));
    }

    #[test]
    fn openfaas_direct_mode_takes_the_watchdogs_place() {
        let c = Config::from_lookup(
            Platform::OpenFaas,
            env(&[
                ("FNKIT_OPENFAAS_MODE", "direct"),
                ("exec_timeout", "10s"),
                ("write_timeout", "15s"),
                ("healthcheck_interval", "5s"),
                ("max_inflight", "3"),
            ]),
        )
        .unwrap();
        // The watchdog's port, on every interface: the pod's 8080 is where traffic arrives.
        assert_eq!(c.addr, "0.0.0.0:8080".parse().unwrap());
        // The same limits as behind the watchdog ...
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.timeout_setting, "exec_timeout");
        assert_eq!(c.max_inflight, Some(3));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(15));
        assert!(c.watchdog_paths);
        // ... but after SIGTERM only the watchdog's own healthcheck_interval: no proxy is left
        // to deliver requests it accepted late.
        assert_eq!(c.accept_after_signal, Duration::from_secs(5));
    }

    #[test]
    fn openfaas_direct_mode_port_comes_from_port_then_port_upper() {
        let addr = |pairs: &[(&str, &str)]| {
            let mut all = vec![("FNKIT_OPENFAAS_MODE", "Direct")];
            all.extend_from_slice(pairs);
            Config::from_lookup(Platform::OpenFaas, env(&all))
                .unwrap()
                .addr
        };
        assert_eq!(addr(&[("port", "9001")]), "0.0.0.0:9001".parse().unwrap());
        assert_eq!(addr(&[("PORT", "9002")]), "0.0.0.0:9002".parse().unwrap());
        let both = addr(&[("port", "9001"), ("PORT", "9002")]);
        assert_eq!(both, "0.0.0.0:9001".parse().unwrap());
        // FNKIT_OPENFAAS_PORT is the port behind a watchdog only.
        let ignored = addr(&[("FNKIT_OPENFAAS_PORT", "9003")]);
        assert_eq!(ignored, "0.0.0.0:8080".parse().unwrap());
        let err = Config::from_lookup(
            Platform::OpenFaas,
            env(&[("FNKIT_OPENFAAS_MODE", "direct"), ("port", "http")]),
        )
        .unwrap_err();
        assert!(err.message().contains(r#"port="http""#), "{err}");
    }

    #[test]
    fn openfaas_mode_errors_name_the_variable() {
        let err = Config::from_lookup(
            Platform::OpenFaas,
            env(&[("FNKIT_OPENFAAS_MODE", "sidecar")]),
        )
        .unwrap_err();
        assert!(err.message().contains("FNKIT_OPENFAAS_MODE"), "{err}");
        assert!(err.message().contains("watchdog or direct"), "{err}");
        // Direct mode and a watchdog's upstream_url contradict each other: refused, not guessed.
        let err = Config::from_lookup(
            Platform::OpenFaas,
            env(&[
                ("FNKIT_OPENFAAS_MODE", "direct"),
                ("upstream_url", "http://127.0.0.1:8082"),
            ]),
        )
        .unwrap_err();
        assert!(err.message().contains("upstream_url"), "{err}");
        // `watchdog` is the default, spelled out.
        let c = Config::from_lookup(
            Platform::OpenFaas,
            env(&[("FNKIT_OPENFAAS_MODE", "watchdog")]),
        )
        .unwrap();
        assert_eq!(c.addr, "127.0.0.1:8082".parse().unwrap());
        // Other platforms ignore it.
        let kn = Config::from_lookup(
            Platform::Knative,
            env(&[("FNKIT_OPENFAAS_MODE", "direct"), ("PORT", "9100")]),
        )
        .unwrap();
        assert_eq!(kn.addr, "0.0.0.0:9100".parse().unwrap());
    }
}
