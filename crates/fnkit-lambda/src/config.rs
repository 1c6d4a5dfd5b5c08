//! What the runtime reads from the environment before its first request, and the errors it
//! reports when that is wrong (docs/platforms.md §1.5, §1.8).

use fnkit_core::{Error, ErrorKind};

/// `errorType` of an init error caused by the environment (a missing or malformed variable).
pub(crate) const INVALID_CONFIG: &str = "Runtime.InvalidConfig";

/// Where the Runtime API is: the `Host` to send and the path prefix of every endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiAddress {
    /// `host:port`, as given.
    pub(crate) authority: String,
    /// The prefix before `/runtime/...`: `/2018-06-01`, or `/<path>/2018-06-01` when the variable
    /// carries a path (cargo-lambda's emulator gives `http://127.0.0.1:9000/.rt`).
    pub(crate) base_path: String,
    /// The prefix of the Extensions API: `/2020-01-01/extension`, after the same path.
    pub(crate) extension_path: String,
}

impl ApiAddress {
    /// Parses `AWS_LAMBDA_RUNTIME_API`: `host:port` (what Lambda sets), optionally with an
    /// `http://` scheme and a path prefix.
    pub(crate) fn parse(value: Option<&str>) -> Result<Self, Error> {
        let raw = value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                config_error(
                    "AWS_LAMBDA_RUNTIME_API is not set: this process was not started by Lambda",
                )
            })?;
        if raw.starts_with("https://") {
            return Err(config_error(format!(
                "AWS_LAMBDA_RUNTIME_API={raw:?}: the Runtime API is plain HTTP; https is not supported"
            )));
        }
        let rest = raw.strip_prefix("http://").unwrap_or(raw);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || !authority.contains(':') {
            return Err(config_error(format!(
                "AWS_LAMBDA_RUNTIME_API={raw:?} is not host:port"
            )));
        }
        Ok(Self {
            authority: authority.to_owned(),
            base_path: format!("{path}/2018-06-01"),
            extension_path: format!("{path}/2020-01-01/extension"),
        })
    }
}

/// Checks the function's identity variables that Lambda always sets (and that lambda_runtime
/// `expect()`s): each missing one is named, and the memory size must be a number of MiB.
pub(crate) fn check_function_env(var: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
    let missing: Vec<&str> = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ]
    .into_iter()
    .filter(|name| var(name).is_none())
    .collect();
    if !missing.is_empty() {
        return Err(config_error(format!(
            "missing environment variable{} {}: Lambda sets {}; a local harness must set {} too",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "them" } else { "it" },
            if missing.len() > 1 { "them" } else { "it" },
        )));
    }
    let memory = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").unwrap_or_default();
    match memory.trim().parse::<u32>() {
        Ok(mb) if mb > 0 => Ok(()),
        _ => Err(config_error(format!(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE={memory:?} is not a number of MiB"
        ))),
    }
}

/// How many invocations to run at once: `AWS_LAMBDA_MAX_CONCURRENCY` (set by Lambda Managed
/// Instances), 1 when unset (docs/platforms.md §1.11).
///
/// # Errors
/// A value that is not a whole number from 1 up, named with its value.
pub(crate) fn max_concurrency(var: impl Fn(&str) -> Option<String>) -> Result<usize, Error> {
    match var("AWS_LAMBDA_MAX_CONCURRENCY") {
        None => Ok(1),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(config_error(format!(
                "AWS_LAMBDA_MAX_CONCURRENCY={v:?} is not a whole number of invocations (1 or more)"
            ))),
        },
    }
}

/// An init error caused by the environment.
pub(crate) fn config_error(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    use fnkit_core::adapter::env_from as env;

    #[test]
    fn runtime_api_is_host_and_port() {
        let a = ApiAddress::parse(Some("127.0.0.1:9001")).unwrap();
        assert_eq!(a.authority, "127.0.0.1:9001");
        assert_eq!(a.base_path, "/2018-06-01");
    }

    #[test]
    fn runtime_api_may_carry_a_scheme_and_a_path() {
        let a = ApiAddress::parse(Some("http://127.0.0.1:9000/.rt")).unwrap();
        assert_eq!(a.authority, "127.0.0.1:9000");
        assert_eq!(a.base_path, "/.rt/2018-06-01");
        assert_eq!(a.extension_path, "/.rt/2020-01-01/extension");
        let a = ApiAddress::parse(Some("http://localhost:9000/")).unwrap();
        assert_eq!(a.base_path, "/2018-06-01");
    }

    #[test]
    fn concurrency_is_one_unless_lambda_says_more() {
        assert_eq!(max_concurrency(env(&[])).unwrap(), 1);
        let n = max_concurrency(env(&[("AWS_LAMBDA_MAX_CONCURRENCY", "8")]));
        assert_eq!(n.unwrap(), 8);
        for bad in ["0", "-1", "many"] {
            let pairs = [("AWS_LAMBDA_MAX_CONCURRENCY", bad)];
            let e = max_concurrency(env(&pairs)).unwrap_err();
            assert!(e.message().contains("AWS_LAMBDA_MAX_CONCURRENCY"), "{e}");
        }
    }

    #[test]
    fn missing_or_bad_runtime_api_is_named() {
        for bad in [None, Some(""), Some("localhost"), Some("https://x:1")] {
            let e = ApiAddress::parse(bad).unwrap_err();
            assert!(e.message().contains("AWS_LAMBDA_RUNTIME_API"), "{e}");
        }
    }

    #[test]
    fn every_missing_function_variable_is_named() {
        let e = check_function_env(env(&[("AWS_LAMBDA_FUNCTION_NAME", "f")])).unwrap_err();
        assert!(e.message().contains("AWS_LAMBDA_FUNCTION_VERSION"), "{e}");
        assert!(
            e.message().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "{e}"
        );
        assert!(!e.message().contains("AWS_LAMBDA_FUNCTION_NAME"), "{e}");
    }

    #[test]
    fn memory_size_must_be_a_number() {
        let e = check_function_env(env(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
        ]))
        .unwrap_err();
        assert!(e.message().contains("lots"), "{e}");
        check_function_env(env(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ]))
        .unwrap();
    }
}
