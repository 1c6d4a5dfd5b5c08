//! Image references: `host[:port]/name[:tag]`.

use std::fmt;

use crate::{Error, ErrorKind};

/// A parsed `host[:port]/name[:tag]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// As written (`127.0.0.1:5000`, `[::1]:5000`, `docker.io`, `ghcr.io`).
    pub(crate) host: String,
    /// The repository, `a/b/c`.
    pub(crate) name: String,
    pub(crate) tag: String,
}

impl Reference {
    /// Parses a reference. The registry host is required: a reference whose first component is
    /// not a host (no `.` or `:`, and not `localhost`) is an error rather than a guess at Docker
    /// Hub, so an image never goes to a public registry by accident.
    pub(crate) fn parse(s: &str) -> Result<Reference, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidReference,
                format!(
                    "invalid image reference '{s}': {why} (expected host[:port]/name[:tag], \
                     e.g. 127.0.0.1:5000/hello:latest or \
                     123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:v1)"
                ),
            )
        };
        if s.contains('@') {
            return Err(bad("push by digest is not supported; give a tag"));
        }
        let (host, rest) = s
            .split_once('/')
            .ok_or_else(|| bad("it names no registry host"))?;
        let is_host = host == "localhost" || host.contains('.') || host.contains(':');
        if !is_host {
            return Err(bad(&format!(
                "'{host}' is not a registry host; fnkit does not assume Docker Hub, \
                 write docker.io/{s} for it"
            )));
        }
        if !valid_host(host) {
            return Err(bad(&format!("'{host}' is not a valid host[:port]")));
        }
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (rest, "latest"),
        };
        if name.is_empty() {
            return Err(bad("the repository name is empty"));
        }
        if let Some(component) = name.split('/').find(|c| !valid_component(c)) {
            return Err(bad(&format!(
                "'{component}' is not a valid repository name component (lowercase letters, \
                 digits and single separators . _ __ - between them)"
            )));
        }
        if !valid_tag(tag) {
            return Err(bad(&format!(
                "'{tag}' is not a valid tag (letters, digits, _ . -; at most 128, not starting \
                 with . or -)"
            )));
        }
        Ok(Reference {
            host: host.to_owned(),
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The host of the API (`docker.io` is served by `registry-1.docker.io`).
    pub(crate) fn api_host(&self) -> &str {
        match self.host.as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        }
    }

    /// The host without its port or brackets.
    pub(crate) fn hostname(&self) -> &str {
        let host = self.host.as_str();
        if let Some(rest) = host.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        host.split(':').next().unwrap_or(host)
    }

    /// Loopback registries are spoken to in plain HTTP; every other one in HTTPS.
    pub(crate) fn is_loopback(&self) -> bool {
        let h = self.hostname();
        h == "localhost"
            || h == "::1"
            || h.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.is_loopback())
    }

    /// `http://host` or `https://host`, for the API.
    pub(crate) fn base_url(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        format!("{scheme}://{}", self.api_host())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.host, self.name, self.tag)
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, tail)) => {
                if addr.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                match tail {
                    "" => return true,
                    t => match t.strip_prefix(':') {
                        Some(port) => ("x", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    name_ok && port_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` (the distribution spec's path component).
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_host_port_name_and_tag() {
        let r = parse("127.0.0.1:5000/fnkit/hello:v1.2");
        assert_eq!(
            (r.host.as_str(), r.name.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "fnkit/hello", "v1.2")
        );
        assert!(r.is_loopback());
        assert_eq!(r.base_url(), "http://127.0.0.1:5000");
        assert_eq!(r.to_string(), "127.0.0.1:5000/fnkit/hello:v1.2");
    }

    #[test]
    fn tag_defaults_to_latest() {
        let r = parse("localhost:5000/hello");
        assert_eq!(r.tag, "latest");
        assert!(r.is_loopback());
        let r = parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/hello");
        assert_eq!(r.tag, "latest");
        assert_eq!(r.name, "team/hello");
        assert!(!r.is_loopback());
        assert_eq!(
            r.base_url(),
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
    }

    #[test]
    fn ipv6_loopback_is_plain_http() {
        let r = parse("[::1]:5000/hello:t");
        assert_eq!(r.host, "[::1]:5000");
        assert_eq!(r.hostname(), "::1");
        assert!(r.is_loopback());
        assert_eq!(r.base_url(), "http://[::1]:5000");
    }

    #[test]
    fn docker_io_goes_to_registry_1() {
        let r = parse("docker.io/someone/hello:1");
        assert_eq!(r.base_url(), "https://registry-1.docker.io");
        assert_eq!(r.name, "someone/hello");
    }

    #[test]
    fn reference_without_a_host_is_a_clear_error() {
        for s in ["hello", "hello:latest", "someone/hello:1"] {
            let e = Reference::parse(s).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidReference);
            assert!(e.to_string().contains(&format!("'{s}'")), "{e}");
        }
        let e = Reference::parse("someone/hello").unwrap_err().to_string();
        assert!(e.contains("does not assume Docker Hub"), "{e}");
        assert!(e.contains("docker.io/someone/hello"), "{e}");
    }

    #[test]
    fn invalid_names_tags_and_hosts_are_rejected() {
        for s in [
            "127.0.0.1:5000/Hello",
            "127.0.0.1:5000/a..b",
            "127.0.0.1:5000/-a",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/a:",
            "127.0.0.1:5000/a:.x",
            "127.0.0.1:99999/a",
            "[zz]:5000/a",
            "127.0.0.1:5000/a@sha256:abcd",
        ] {
            assert!(Reference::parse(s).is_err(), "{s} should be rejected");
        }
        parse("ghcr.io/a_b/c__d/e-f.g---h:X_1.0-rc");
    }
}
