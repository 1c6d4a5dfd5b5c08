//! The HTTP runtime's settings, read from the environment once at start-up; the OpenFaaS
//! profile adjusts them in `openfaas.rs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use fnkit_core::{Error, Platform};

/// How the HTTP runtime listens, limits and stops. [`Config::from_env`] reads it; every field can
/// also be set directly when embedding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen: `0.0.0.0:$PORT` (8080) locally and on Knative; on OpenFaaS the port of
    /// `upstream_url` (8082 when absent) on 127.0.0.1 (or on the IP literal `upstream_url`
    /// names, e.g. `[::1]`), behind the watchdog; in its place (`FNKIT_OPENFAAS_MODE=direct`)
    /// `0.0.0.0` at the watchdog's `port` (else `PORT`, else 8080).
    pub addr: SocketAddr,
    /// The largest request body accepted (`FNKIT_MAX_BODY_BYTES`, 6 MiB). Larger ones get 413.
    pub max_body_bytes: usize,
    /// How long a handler may run (`FNKIT_TIMEOUT_SECS`, 300 s; on OpenFaaS the shorter of the
    /// watchdog's `exec_timeout` and `write_timeout`, and of `FNKIT_TIMEOUT_SECS` when set).
    /// Past it the request gets 504.
    pub timeout: Duration,
    /// The setting [`Config::timeout`] came from, named in the 504's message.
    pub timeout_setting: &'static str,
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
    /// as it keeps routing traffic that long (`healthcheck_interval` alone in direct mode). Plain
    /// Kubernetes wants a few seconds, the time endpoints take to drop the pod.
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
        Self::from_lookup(platform, fnkit_core::adapter::env_var)
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
            timeout_setting: "FNKIT_TIMEOUT_SECS",
            read_timeout: secs("FNKIT_READ_TIMEOUT_SECS", 30)?,
            shutdown_timeout: secs("FNKIT_SHUTDOWN_TIMEOUT_SECS", 25)?,
            accept_after_signal: Duration::ZERO,
            max_inflight: None,
            watchdog_paths: false,
        };
        if platform == Platform::OpenFaas {
            crate::openfaas::apply(&mut config, &var)?;
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
}

pub(crate) fn bad(name: &str, value: &str, expected: &str) -> Error {
    Error::invalid_input(format!("{name}={value:?} is not {expected}"))
}

pub(crate) fn parse_port(name: &str, value: &str) -> Result<u16, Error> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(name, value, "a TCP port (0-65535)"))
}

/// Parses seconds (`30`, `0.5`) or a Go duration (`10s`, `1m30s`, `500ms`, `1.5h`), exactly and
/// without floating point (float parsing would add about 20 KB to every binary for this alone):
/// digits past a nanosecond are dropped.
pub(crate) fn parse_duration(name: &str, value: &str) -> Result<Duration, Error> {
    let err = || {
        bad(
            name,
            value,
            "a duration such as 30, 0.5, 10s, 1m30s or 500ms",
        )
    };
    let v = value.trim();
    if v.is_empty() {
        return Err(err());
    }
    let mut nanos: u128 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            // A bare number is seconds, and only as the whole value.
            "" if num_len == v.len() => 1_000_000_000,
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let part = decimal_nanos(num, unit_nanos).ok_or_else(err)?;
        nanos = nanos.checked_add(part).ok_or_else(err)?;
        rest = tail;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| err())?;
    // Below 10^9: fits.
    let subsec = u32::try_from(nanos % 1_000_000_000).map_err(|_| err())?;
    Ok(Duration::new(secs, subsec))
}

/// `num` (`30`, `0.5`, `.5`, `1.`) units of `unit_nanos` nanoseconds, in nanoseconds; `None` for
/// no digits, a second `.`, or more than `u128` holds.
fn decimal_nanos(num: &str, unit_nanos: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let mut nanos: u128 = 0;
    for b in int.bytes() {
        nanos = nanos.checked_mul(10)?.checked_add(u128::from(b - b'0'))?;
    }
    nanos = nanos.checked_mul(unit_nanos)?;
    let mut scale = unit_nanos;
    for b in frac.bytes() {
        scale /= 10;
        nanos = nanos.checked_add(u128::from(b - b'0') * scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    use fnkit_core::adapter::env_from as env;

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
    fn go_durations_parse() {
        let p = |v| parse_duration("x", v).unwrap();
        assert_eq!(p("10s"), Duration::from_secs(10));
        assert_eq!(p("1m30s"), Duration::from_secs(90));
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert_eq!(p("2"), Duration::from_secs(2));
        assert!(parse_duration("x", "ten").is_err());
        assert!(parse_duration("x", "-1").is_err());
        assert!(parse_duration("x", "5d").is_err());
        assert_eq!(p("0.5"), Duration::from_millis(500));
        assert_eq!(p(" .25 "), Duration::from_millis(250));
        assert_eq!(p("1.5h"), Duration::from_secs(5400));
        assert_eq!(p("1.000000001s"), Duration::new(1, 1));
        assert_eq!(
            p("1.0000000019"),
            Duration::new(1, 1),
            "past a nanosecond: dropped"
        );
        assert_eq!(p("2m0.5s"), Duration::from_millis(120_500));
        assert_eq!(p("1500us"), Duration::from_micros(1500));
        assert_eq!(p("7ns"), Duration::from_nanos(7));
        assert_eq!(p("0"), Duration::ZERO);
        for bad in [
            "", " ", ".", "1.2.3", "1e3", "10 s", "s", "10s5", "inf", "NaN", "+1",
        ] {
            assert!(parse_duration("x", bad).is_err(), "{bad:?}");
        }
        let huge = "9".repeat(40);
        assert!(parse_duration("x", &huge).is_err());
        assert!(parse_duration("x", "99999999999999999999h").is_err());
    }
}
