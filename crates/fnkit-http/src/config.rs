//! The HTTP runtime's settings, read from the environment once at start-up.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fnkit_core::{Error, Platform};

/// How the HTTP runtime listens, limits and stops. [`Config::from_env`] reads it; every field can
/// also be set directly when embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen: `0.0.0.0:$PORT` (8080) locally and on Knative; on OpenFaaS the port of
    /// `upstream_url` (8082 when absent) on 127.0.0.1 (or on the IP literal `upstream_url`
    /// names, e.g. `[::1]`), behind the watchdog.
    pub addr: SocketAddr,
    /// The largest request body accepted (`FNKIT_MAX_BODY_BYTES`, 6 MiB). Larger ones get 413.
    pub max_body_bytes: usize,
    /// How long a handler may run (`FNKIT_TIMEOUT_SECS`, 300 s; on OpenFaaS the shorter of the
    /// watchdog's `exec_timeout` and `write_timeout`, and of `FNKIT_TIMEOUT_SECS` when set).
    /// Past it the request gets 504.
    pub timeout: Duration,
    /// How long a client may take to send headers and body (`FNKIT_READ_TIMEOUT_SECS`, 30 s;
    /// on OpenFaaS the watchdog's `read_timeout` unless `FNKIT_READ_TIMEOUT_SECS` is set, as
    /// the watchdog streams the body to fnkit at its client's pace).
    pub read_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM
    /// (`FNKIT_SHUTDOWN_TIMEOUT_SECS`, 25 s; on OpenFaaS the watchdog's `write_timeout`).
    pub shutdown_timeout: Duration,
    /// How long to go on accepting new connections after SIGTERM, answering `/ready` with 503
    /// (`FNKIT_SHUTDOWN_DELAY_SECS`): zero on Knative (its queue-proxy has drained before the
    /// signal) and locally; on OpenFaaS the watchdog's `healthcheck_interval` + `write_timeout`,
    /// as it keeps routing traffic that long. Plain Kubernetes wants a few seconds, the time
    /// endpoints take to drop the pod.
    pub accept_after_signal: Duration,
    /// The most requests handled at once (`max_inflight` on OpenFaaS); more get 429.
    pub max_inflight: Option<usize>,
    /// Serve `GET /_/health` and `/_/ready` too (OpenFaaS).
    pub watchdog_paths: bool,
}

const MIB: usize = 1024 * 1024;

impl Config {
    /// Reads the settings for `platform` from the environment.
    ///
    /// # Errors
    /// A variable that does not parse (a `PORT` that is not a port, a negative timeout, an
    /// `upstream_url` without a port ...), named with its value.
    pub fn from_env(platform: Platform) -> Result<Self, Error> {
        Self::from_lookup(platform, |name| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty())
        })
    }

    /// [`Config::from_env`] over any variable lookup.
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(
        platform: Platform,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let secs = |name: &str, default: u64| -> Result<Duration, Error> {
            var(name).map_or(Ok(Duration::from_secs(default)), |v| {
                parse_duration(name, &v)
            })
        };
        let mut config = Self {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080),
            max_body_bytes: match var("FNKIT_MAX_BODY_BYTES") {
                None => 6 * MIB,
                Some(v) => v.trim().parse().map_err(|_| {
                    bad(
                        "FNKIT_MAX_BODY_BYTES",
                        &v,
                        "a number of bytes, e.g. 6291456",
                    )
                })?,
            },
            timeout: secs("FNKIT_TIMEOUT_SECS", 300)?,
            read_timeout: secs("FNKIT_READ_TIMEOUT_SECS", 30)?,
            shutdown_timeout: secs("FNKIT_SHUTDOWN_TIMEOUT_SECS", 25)?,
            accept_after_signal: Duration::ZERO,
            max_inflight: None,
            watchdog_paths: false,
        };
        if platform == Platform::OpenFaas {
            config.apply_watchdog(&var)?;
        } else if let Some(port) = var("PORT") {
            config.addr.set_port(parse_port("PORT", &port)?);
        }
        if let Some(delay) = var("FNKIT_SHUTDOWN_DELAY_SECS") {
            config.accept_after_signal = parse_duration("FNKIT_SHUTDOWN_DELAY_SECS", &delay)?;
        }
        if config.timeout.is_zero() {
            return Err(bad(
                "FNKIT_TIMEOUT_SECS",
                "0",
                "a positive number of seconds",
            ));
        }
        Ok(config)
    }

    /// of-watchdog's contract (PLATFORMS.md §6): listen where `upstream_url` points, bound the
    /// handler by `exec_timeout`, limit concurrency by `max_inflight`, and keep accepting after
    /// SIGTERM for `healthcheck_interval` + `write_timeout`.
    fn apply_watchdog(&mut self, var: &impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        let upstream = var("upstream_url").or_else(|| var("http_upstream_url"));
        self.addr = match &upstream {
            Some(url) => upstream_addr(url)?,
            None => SocketAddr::new(
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
        let watchdog_limit = [exec_timeout, write_timeout]
            .into_iter()
            .filter(|d| !d.is_zero())
            .min();
        if let Some(limit) = watchdog_limit {
            self.timeout = match var("FNKIT_TIMEOUT_SECS") {
                Some(_) => self.timeout.min(limit),
                None => limit,
            };
        }
        if var("FNKIT_READ_TIMEOUT_SECS").is_none() {
            if let Some(read) = dur("read_timeout")?.filter(|d| !d.is_zero()) {
                self.read_timeout = read;
            }
        }
        let healthcheck = dur("healthcheck_interval")?.unwrap_or(write_timeout);
        self.accept_after_signal = healthcheck + write_timeout;
        if var("FNKIT_SHUTDOWN_TIMEOUT_SECS").is_none() {
            self.shutdown_timeout = write_timeout;
        }
        self.max_inflight = match var("max_inflight") {
            None => None,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => return Err(bad("max_inflight", &v, "a whole number (0 = no limit)")),
            },
        };
        self.watchdog_paths = true;
        Ok(())
    }
}

fn bad(name: &str, value: &str, expected: &str) -> Error {
    Error::invalid_input(format!("{name}={value:?} is not {expected}"))
}

fn parse_port(name: &str, value: &str) -> Result<u16, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(name, value, "a TCP port (0-65535)"))
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

/// Parses seconds (`30`, `0.5`) or a Go duration (`10s`, `1m30s`, `500ms`, `1h`).
pub(crate) fn parse_duration(name: &str, value: &str) -> Result<Duration, Error> {
    let err = || {
        bad(
            name,
            value,
            "a duration such as 30, 0.5, 10s, 1m30s or 500ms",
        )
    };
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let mut total = Duration::ZERO;
    let mut rest = v;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (num, tail) = rest.split_at(digits);
        let num: f64 = num.parse().map_err(|_| err())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += Duration::try_from_secs_f64(num * scale).map_err(|_| err())?;
        rest = tail;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_listen_on_all_interfaces_port_8080() {
        let c = Config::from_lookup(Platform::Local, env(&[])).unwrap();
        assert_eq!(c.addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.max_body_bytes, 6 * 1024 * 1024);
        assert_eq!(c.timeout, Duration::from_secs(300));
        assert_eq!(c.shutdown_timeout, Duration::from_secs(25));
        assert_eq!(c.accept_after_signal, Duration::ZERO);
        assert_eq!(c.max_inflight, None);
    }

    #[test]
    fn port_and_limits_come_from_the_environment() {
        let c = Config::from_lookup(
            Platform::Knative,
            env(&[
                ("PORT", "9000"),
                ("FNKIT_MAX_BODY_BYTES", "1024"),
                ("FNKIT_TIMEOUT_SECS", "0.25"),
            ]),
        )
        .unwrap();
        assert_eq!(c.addr.port(), 9000);
        assert_eq!(c.max_body_bytes, 1024);
        assert_eq!(c.timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_bad_port_is_an_error_naming_the_variable() {
        let err = Config::from_lookup(Platform::Local, env(&[("PORT", "http")])).unwrap_err();
        assert!(err.message().contains("PORT=\"http\""), "{err}");
    }

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
        let t = c(&[("exec_timeout", "60s"), ("write_timeout", "20s")]).timeout;
        assert_eq!(t, Duration::from_secs(20));
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
        let t = c(&[("exec_timeout", "5s"), ("FNKIT_TIMEOUT_SECS", "2")]).timeout;
        assert_eq!(t, Duration::from_secs(2));
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
    fn go_durations_parse() {
        let p = |v| parse_duration("x", v).unwrap();
        assert_eq!(p("10s"), Duration::from_secs(10));
        assert_eq!(p("1m30s"), Duration::from_secs(90));
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert_eq!(p("2"), Duration::from_secs(2));
        assert!(parse_duration("x", "ten").is_err());
        assert!(parse_duration("x", "-1").is_err());
        assert!(parse_duration("x", "5d").is_err());
    }
}
