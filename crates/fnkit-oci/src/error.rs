//! The one error type of this crate.

use std::fmt;

/// What went wrong, broadly; [`Error::kind`] returns it. The message says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The [`ImageSpec`](crate::ImageSpec) cannot make an image: a binary that is not a static ELF
    /// executable of the requested architecture, an invalid environment variable or ref name.
    InvalidInput,
    /// Reading an input or writing the image layout failed.
    Io,
    /// The image reference is not `host[:port]/name[:tag]`.
    InvalidReference,
    /// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) or a credential helper could not
    /// be read.
    Credentials,
    /// The registry (or its token service) answered 401 or 403: no credentials, or wrong ones.
    Unauthorized,
    /// The registry answered, but not with what the distribution API promises.
    Registry,
    /// The registry could not be reached (connection, TLS, timeout).
    Transport,
}

/// An error of this crate: a [`ErrorKind`] and a message that names the file, host or reference
/// concerned, e.g. `registry 127.0.0.1:5000 refused the blob upload: 401 Unauthorized
/// (authentication required)`.
///
/// The message is complete on its own (it already includes the underlying cause); its wording is
/// not API, the kind is.
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what}: {err}"))
    }

    /// What went wrong, broadly.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.kind, self.message)
    }
}

impl std::error::Error for Error {}
