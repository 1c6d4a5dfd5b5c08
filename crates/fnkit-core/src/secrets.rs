//! Named secrets mounted as files: OpenFaaS's `/var/openfaas/secrets/<name>`, or any directory
//! named by `FNKIT_SECRETS_DIR` (a Kubernetes Secret volume on Knative, a test fixture).
//!
//! Read lazily, on the first [`secret`] call for a name, then cached for the life of the
//! process; nothing is read at start-up. A [`Secret`] never prints its value: `Debug` and
//! `Display` redact it, so it cannot end up in a log line by accident.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::{Error, ErrorKind};

/// The value of a named secret, as the bytes of its file.
///
/// Cheap to clone (the bytes are shared). `{:?}` and `{}` show the name, never the value:
///
/// ```
/// # use fnkit_core::Secret;
/// let dir = std::env::temp_dir().join(format!("fnkit-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("api-key"), "s3cr3t\n")?;
///
/// let key = Secret::read_from(&dir, "api-key")?;
/// assert_eq!(key.expose()?, "s3cr3t\n");
/// assert_eq!(key.trimmed()?, "s3cr3t");
/// assert!(key.verify(b"s3cr3t\n"));
/// assert!(!format!("{key:?} {key}").contains("s3cr3t"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    name: Arc<str>,
    value: Arc<[u8]>,
}

impl Secret {
    /// Where OpenFaaS mounts the secrets a function declares in `stack.yml`.
    pub const OPENFAAS_DIR: &'static str = "/var/openfaas/secrets";

    /// The variable naming another directory of secret files (`FNKIT_SECRETS_DIR`).
    pub const DIR_ENV: &'static str = "FNKIT_SECRETS_DIR";

    /// The directory [`secret`] reads from: `FNKIT_SECRETS_DIR` when set and not empty, else
    /// [`Secret::OPENFAAS_DIR`].
    pub fn dir() -> PathBuf {
        dir_from(crate::env::env_var(Self::DIR_ENV).map(PathBuf::from))
    }

    /// Reads the secret `name` from the file `dir/name`, every time (no cache). [`secret`] is
    /// this plus the directory from the environment and the cache.
    ///
    /// # Errors
    /// An invalid name ([`ErrorKind::InvalidInput`], see [`secret`]); no such file
    /// ([`ErrorKind::NotFound`], status 500); a file that cannot be read
    /// ([`ErrorKind::Internal`]). Each message names the secret and the directory, never
    /// the value.
    pub fn read_from(dir: &Path, name: &str) -> Result<Self, Error> {
        validate_name(name)?;
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(value) => Ok(Self {
                name: name.into(),
                value: value.into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "secret {name:?} not found: no file {} (declare it under `secrets:` in \
                     stack.yml on OpenFaaS, or mount it and set {} to its directory)",
                    path.display(),
                    Self::DIR_ENV
                ),
            )
            // To the caller of a function, a missing secret is the server's fault.
            .with_status(http::StatusCode::INTERNAL_SERVER_ERROR)),
            Err(e) => Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "secret {name:?} cannot be read from {}: {e}",
                    path.display()
                ),
            )
            .with_source(e)),
        }
    }

    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as text, exactly as in the file (a trailing newline included, if any).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] when the value is not UTF-8 (use [`Secret::as_bytes`]).
    pub fn expose(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.value).map_err(|_| {
            Error::invalid_input(format!(
                "secret {:?} is not UTF-8 text; read it with as_bytes()",
                self.name
            ))
        })
    }

    /// The value as text without one trailing `\n` or `\r\n` (the newline `echo` or an editor
    /// adds to a file made by hand; `faas-cli secret create --from-literal` adds none).
    ///
    /// # Errors
    /// As [`Secret::expose`].
    pub fn trimmed(&self) -> Result<&str, Error> {
        let text = self.expose()?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        Ok(text.strip_suffix('\r').unwrap_or(text))
    }

    /// The value, byte for byte.
    pub fn as_bytes(&self) -> &[u8] {
        &self.value
    }

    /// Whether `candidate` equals the value, comparing in time that does not depend on where
    /// they differ (for checking an API key a caller sent).
    pub fn verify(&self, candidate: &[u8]) -> bool {
        let value: &[u8] = &self.value;
        if value.len() != candidate.len() {
            return false;
        }
        let diff = value
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &format_args!("<redacted>"))
            .finish()
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {:?} redacted>", self.name)
    }
}

/// Reads the secret `name`: the file `name` in [`Secret::dir`] (`FNKIT_SECRETS_DIR`, else
/// OpenFaaS's `/var/openfaas/secrets`), on first use, then from a process-wide cache. A secret
/// rotated on disk is seen after a restart.
///
/// ```no_run
/// async fn handle(_: (), _ctx: fnkit_core::Context) -> Result<String, fnkit_core::Error> {
///     let key = fnkit_core::secret("api-key")?;
///     Ok(format!("the key has {} bytes", key.as_bytes().len()))
/// }
/// ```
///
/// # Errors
/// A name that is empty, longer than 253 bytes, contains `..` or anything but ASCII letters,
/// digits, `-`, `_` and `.` ([`ErrorKind::InvalidInput`], 400); no such file
/// ([`ErrorKind::NotFound`], answered with status 500 since the deployment is at fault); an
/// unreadable file ([`ErrorKind::Internal`]). Messages name the secret and the directory.
/// Failures are not cached: a later call reads again.
pub fn secret(name: &str) -> Result<Secret, Error> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Secret>>> = OnceLock::new();
    validate_name(name)?;
    let dir = Secret::dir();
    let key = dir.join(name);
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(hit.clone());
    }
    let read = Secret::read_from(&dir, name)?;
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, read.clone());
    Ok(read)
}

fn dir_from(var: Option<PathBuf>) -> PathBuf {
    var.filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(Secret::OPENFAAS_DIR))
}

/// Secret names are file names in one directory: Kubernetes' key syntax (`[-._a-zA-Z0-9]+`,
/// at most 253 bytes), without `..` — no way out of the directory, and none into the
/// `..data` links of a Kubernetes Secret volume.
fn validate_name(name: &str) -> Result<(), Error> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty()
        || name.len() > 253
        || name == "."
        || name.contains("..")
        || !name.chars().all(allowed)
    {
        return Err(Error::invalid_input(format!(
            "{name:?} is not a secret name: use 1 to 253 ASCII letters, digits, '-', '_' or '.', \
             without '..' or '/'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("fnkit-secrets-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_default_directory_is_openfaas_and_the_variable_overrides_it() {
        assert_eq!(dir_from(None), Path::new("/var/openfaas/secrets"));
        assert_eq!(
            dir_from(Some(PathBuf::new())),
            Path::new("/var/openfaas/secrets")
        );
        assert_eq!(
            dir_from(Some(PathBuf::from("/etc/secrets"))),
            Path::new("/etc/secrets")
        );
        // The file read for `api-key` on OpenFaaS.
        assert_eq!(
            dir_from(None).join("api-key"),
            Path::new("/var/openfaas/secrets/api-key")
        );
    }

    #[test]
    fn a_secret_reads_as_bytes_and_text() {
        let tmp = TempDir::new("read");
        std::fs::write(tmp.0.join("api-key"), "k3y\r\n").unwrap();
        let s = Secret::read_from(&tmp.0, "api-key").unwrap();
        assert_eq!(s.name(), "api-key");
        assert_eq!(s.as_bytes(), b"k3y\r\n");
        assert_eq!(s.expose().unwrap(), "k3y\r\n");
        assert_eq!(s.trimmed().unwrap(), "k3y");
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let tmp = TempDir::new("redact");
        std::fs::write(tmp.0.join("db-password"), "hunter2").unwrap();
        let s = Secret::read_from(&tmp.0, "db-password").unwrap();
        for shown in [format!("{s:?}"), format!("{s:#?}"), format!("{s}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("db-password"), "{shown}");
            assert!(shown.contains("redacted"), "{shown}");
        }
    }

    #[test]
    fn a_missing_secret_names_itself_and_the_directory() {
        let tmp = TempDir::new("missing");
        let err = Secret::read_from(&tmp.0, "api-key").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.message().contains("\"api-key\""), "{err}");
        assert!(err.message().contains(&*tmp.0.to_string_lossy()), "{err}");
        assert!(err.message().contains("FNKIT_SECRETS_DIR"), "{err}");
    }

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let tmp = TempDir::new("names");
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "/abs",
            "..data",
            "a..b",
            "sp ace",
            "nul\0",
        ] {
            let err = Secret::read_from(&tmp.0, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
            assert!(secret(bad).is_err(), "{bad:?}");
        }
        assert!(Secret::read_from(&tmp.0, &"x".repeat(254)).is_err());
        for good in ["api-key", "API_KEY", ".dockerconfigjson", "tls.crt"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn a_directory_is_not_a_secret() {
        let tmp = TempDir::new("isdir");
        std::fs::create_dir(tmp.0.join("sub")).unwrap();
        let err = Secret::read_from(&tmp.0, "sub").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("\"sub\""), "{err}");
    }

    #[test]
    fn non_utf8_values_are_bytes_only() {
        let tmp = TempDir::new("binary");
        std::fs::write(tmp.0.join("keystore"), [0xff, 0x00, 0xfe]).unwrap();
        let s = Secret::read_from(&tmp.0, "keystore").unwrap();
        assert_eq!(s.as_bytes(), [0xff, 0x00, 0xfe]);
        assert_eq!(s.expose().unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn verify_compares_the_whole_value() {
        let tmp = TempDir::new("verify");
        std::fs::write(tmp.0.join("k"), "abc").unwrap();
        let s = Secret::read_from(&tmp.0, "k").unwrap();
        assert!(s.verify(b"abc"));
        assert!(!s.verify(b"abd"));
        assert!(!s.verify(b"ab"));
        assert!(!s.verify(b"abcd"));
        assert!(!s.verify(b""));
    }

    /// The only test in this crate that touches `FNKIT_SECRETS_DIR`, so it cannot race another.
    #[test]
    fn secret_reads_once_then_serves_from_the_cache() {
        let tmp = TempDir::new("cache");
        std::fs::write(tmp.0.join("token"), "first").unwrap();
        std::env::set_var(Secret::DIR_ENV, &tmp.0);
        let missing = secret("not-there").unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(secret("token").unwrap().expose().unwrap(), "first");
        // Changed on disk: the cached value stays until the process restarts.
        std::fs::write(tmp.0.join("token"), "second").unwrap();
        assert_eq!(secret("token").unwrap().expose().unwrap(), "first");
        // Failures are not cached: a secret mounted later is found.
        std::fs::write(tmp.0.join("not-there"), "now").unwrap();
        assert_eq!(secret("not-there").unwrap().expose().unwrap(), "now");
        std::env::remove_var(Secret::DIR_ENV);
    }
}
