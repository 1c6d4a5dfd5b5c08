//! Which platform the process runs on, decided from a few environment variables.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The platforms fnkit runs a handler on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// AWS Lambda, through the Runtime API.
    Lambda,
    /// Knative Serving: HTTP on `$PORT`, CloudEvents from Knative Eventing.
    Knative,
    /// OpenFaaS, behind of-watchdog in HTTP mode.
    OpenFaas,
    /// No platform: an HTTP server on `$PORT` (default 8080).
    Local,
}

impl Platform {
    /// The lowercase name used by `FNKIT_PLATFORM` and in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Lambda => "lambda",
            Self::Knative => "knative",
            Self::OpenFaas => "openfaas",
            Self::Local => "local",
        }
    }

    /// Detects the platform from the process environment.
    ///
    /// In order: `FNKIT_PLATFORM` (`lambda`, `knative`, `openfaas` or `local`) forces one;
    /// otherwise `AWS_LAMBDA_RUNTIME_API` means Lambda, `K_SERVICE` means Knative,
    /// of-watchdog's `upstream_url` or `fprocess` means OpenFaaS, and nothing means local.
    /// Reads environment variables only: no I/O.
    ///
    /// # Errors
    /// An `FNKIT_PLATFORM` that names no platform is an [`ErrorKind::InvalidInput`] error naming
    /// the variable and its value.
    ///
    /// [`ErrorKind::InvalidInput`]: crate::ErrorKind::InvalidInput
    pub fn detect() -> Result<Self, Error> {
        Self::detect_from(crate::env::env_var)
    }

    /// [`Platform::detect`] over any variable lookup, for tests and embedders.
    ///
    /// ```
    /// use fnkit_core::Platform;
    ///
    /// let env = |name: &str| (name == "K_SERVICE").then(|| "hello".to_owned());
    /// assert_eq!(Platform::detect_from(env)?, Platform::Knative);
    /// # Ok::<(), fnkit_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Platform::detect`].
    pub fn detect_from(var: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |name: &str| crate::env::from_value(var(name));
        if let Some(forced) = var("FNKIT_PLATFORM") {
            return forced.parse();
        }
        let set = |name: &str| var(name).is_some();
        Ok(if set("AWS_LAMBDA_RUNTIME_API") {
            Self::Lambda
        } else if set("K_SERVICE") {
            Self::Knative
        } else if set("upstream_url") || set("fprocess") {
            Self::OpenFaas
        } else {
            Self::Local
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "lambda" | "aws-lambda" | "aws_lambda" => Ok(Self::Lambda),
            "knative" => Ok(Self::Knative),
            "openfaas" => Ok(Self::OpenFaas),
            "local" => Ok(Self::Local),
            _ => Err(Error::invalid_input(format!(
                "FNKIT_PLATFORM={s:?} names no platform; use lambda, knative, openfaas or local"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::adapter::env_from as env;

    #[test]
    fn nothing_set_means_local() {
        assert_eq!(Platform::detect_from(env(&[])).unwrap(), Platform::Local);
    }

    #[test]
    fn detection_order_is_lambda_knative_openfaas_local() {
        let all = env(&[
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("K_SERVICE", "hello"),
            ("upstream_url", "http://127.0.0.1:8082"),
        ]);
        assert_eq!(Platform::detect_from(all).unwrap(), Platform::Lambda);
        let kn = env(&[("K_SERVICE", "hello"), ("fprocess", "/fn")]);
        assert_eq!(Platform::detect_from(kn).unwrap(), Platform::Knative);
        let of = env(&[("fprocess", "/fn")]);
        assert_eq!(Platform::detect_from(of).unwrap(), Platform::OpenFaas);
        let of = env(&[("upstream_url", "http://127.0.0.1:8082")]);
        assert_eq!(Platform::detect_from(of).unwrap(), Platform::OpenFaas);
    }

    #[test]
    fn fnkit_platform_overrides_detection() {
        let forced = env(&[("FNKIT_PLATFORM", "Local"), ("AWS_LAMBDA_RUNTIME_API", "x")]);
        assert_eq!(Platform::detect_from(forced).unwrap(), Platform::Local);
        let forced = env(&[("FNKIT_PLATFORM", "openfaas")]);
        assert_eq!(Platform::detect_from(forced).unwrap(), Platform::OpenFaas);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        // Raw lookups, as a caller's own might give them: the rule applies all the same.
        let e = |name: &str| {
            ["FNKIT_PLATFORM", "K_SERVICE"]
                .contains(&name)
                .then(|| " ".to_owned())
        };
        assert_eq!(Platform::detect_from(e).unwrap(), Platform::Local);
    }

    #[test]
    fn unknown_fnkit_platform_is_an_error_naming_it() {
        let err = Platform::detect_from(env(&[("FNKIT_PLATFORM", "azure")])).unwrap_err();
        assert!(err.message().contains("FNKIT_PLATFORM"), "{err}");
        assert!(err.message().contains("azure"), "{err}");
    }
}
