//! The push: the OCI distribution API's blob and manifest endpoints, with Basic and Bearer
//! (token) authentication.
//!
//! <https://github.com/opencontainers/distribution-spec/blob/main/spec.md>

use std::time::Duration;

use serde::Deserialize;
use ureq::http::{Response, StatusCode};
use ureq::Body;

use crate::auth::{self, Challenge, Credentials, Found};
use crate::reference::Reference;
use crate::{Error, ErrorKind};

/// One blob or manifest to send.
pub(crate) struct Upload<'a> {
    pub(crate) digest: &'a str,
    pub(crate) bytes: &'a [u8],
}

/// What [`Session::push`] did.
pub(crate) struct Pushed {
    pub(crate) digest: String,
    pub(crate) bytes_uploaded: u64,
    pub(crate) blobs_uploaded: usize,
    pub(crate) blobs_skipped: usize,
}

/// One push's connection state: the agent, the credentials (looked up on the first 401) and the
/// `Authorization` value in use.
pub(crate) struct Session {
    agent: ureq::Agent,
    reference: Reference,
    base: String,
    authorization: Option<String>,
    credentials: Option<Found>,
}

type Resp = Response<Body>;

impl Session {
    pub(crate) fn new(reference: Reference) -> Session {
        let mut config = ureq::Agent::config_builder()
            // 4xx and 5xx are answers to read (401 starts the auth flow), not errors.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .user_agent(concat!("fnkit-oci/", env!("CARGO_PKG_VERSION")));
        if reference.is_loopback() {
            // A proxy from the environment must not take a loopback registry's traffic.
            config = config.proxy(None);
        }
        Session {
            agent: config.build().into(),
            base: reference.base_url(),
            reference,
            authorization: None,
            credentials: None,
        }
    }

    /// Blobs (skipping those the registry has), then the manifest by tag.
    pub(crate) fn push(
        &mut self,
        blobs: &[Upload<'_>],
        manifest: Upload<'_>,
        manifest_media_type: &str,
    ) -> Result<Pushed, Error> {
        let mut pushed = Pushed {
            digest: manifest.digest.to_owned(),
            bytes_uploaded: 0,
            blobs_uploaded: 0,
            blobs_skipped: 0,
        };
        for blob in blobs {
            if self.has_blob(blob)? {
                pushed.blobs_skipped += 1;
            } else {
                self.upload_blob(blob)?;
                pushed.blobs_uploaded += 1;
                pushed.bytes_uploaded += blob.bytes.len() as u64;
            }
        }
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base, self.reference.name, self.reference.tag
        );
        let resp = self.send("manifest upload", |agent, auth| {
            with_auth(agent.put(&url), auth)
                .content_type(manifest_media_type)
                .send(manifest.bytes)
        })?;
        let resp = self.expect(
            resp,
            &[StatusCode::CREATED, StatusCode::OK],
            "manifest upload",
        )?;
        pushed.bytes_uploaded += manifest.bytes.len() as u64;
        if let Some(digest) = header(&resp, "docker-content-digest") {
            if digest != manifest.digest {
                return Err(Error::new(
                    ErrorKind::Registry,
                    format!(
                        "registry {} stored the manifest as {digest}, but its bytes hash to {}",
                        self.reference.host, manifest.digest
                    ),
                ));
            }
            pushed.digest = digest;
        }
        Ok(pushed)
    }

    fn has_blob(&mut self, blob: &Upload<'_>) -> Result<bool, Error> {
        let url = format!(
            "{}/v2/{}/blobs/{}",
            self.base, self.reference.name, blob.digest
        );
        let resp = self.send("blob check", |agent, auth| {
            with_auth(agent.head(&url), auth).call()
        })?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.refused(resp, "blob check")),
        }
    }

    /// POST an upload session, then PUT the whole blob to its `Location` with `?digest=`
    /// (a monolithic upload in two requests; single-POST uploads are optional for registries).
    fn upload_blob(&mut self, blob: &Upload<'_>) -> Result<(), Error> {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base, self.reference.name);
        let resp = self.send("blob upload", |agent, auth| {
            with_auth(agent.post(&url), auth).send_empty()
        })?;
        let resp = self.expect(resp, &[StatusCode::ACCEPTED], "blob upload")?;
        let location = header(&resp, "location").ok_or_else(|| {
            Error::new(
                ErrorKind::Registry,
                format!(
                    "registry {} started a blob upload without a Location header",
                    self.reference.host
                ),
            )
        })?;
        let mut put_url = resolve(&self.base, &location);
        put_url.push(if put_url.contains('?') { '&' } else { '?' });
        put_url.push_str("digest=");
        put_url.push_str(&blob.digest.replace(':', "%3A"));
        let resp = self.send("blob upload", |agent, auth| {
            with_auth(agent.put(&put_url), auth)
                .content_type("application/octet-stream")
                .send(blob.bytes)
        })?;
        self.expect(resp, &[StatusCode::CREATED], "blob upload")?;
        Ok(())
    }

    /// Sends a request; on 401 authenticates as the challenge asks and sends it once more.
    fn send(
        &mut self,
        what: &str,
        request: impl Fn(&ureq::Agent, Option<&str>) -> Result<Resp, ureq::Error>,
    ) -> Result<Resp, Error> {
        let resp = request(&self.agent, self.authorization.as_deref())
            .map_err(|e| self.transport(what, &e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = header(&resp, "www-authenticate")
            .as_deref()
            .and_then(auth::parse_challenge);
        let Some(challenge) = challenge else {
            return Err(self.refused(resp, what));
        };
        let before = self.authorization.clone();
        let fresh = self.authenticate(&challenge, what)?;
        if fresh.is_none() || fresh == before {
            // Nothing new to try: the 401 stands, with where credentials were looked for.
            return Err(self.refused(resp, what));
        }
        self.authorization = fresh;
        let resp = request(&self.agent, self.authorization.as_deref())
            .map_err(|e| self.transport(what, &e))?;
        Ok(resp)
    }

    /// The `Authorization` value that answers `challenge`, or `None` without credentials (a
    /// Bearer realm may still hand out an anonymous token).
    fn authenticate(&mut self, challenge: &Challenge, what: &str) -> Result<Option<String>, Error> {
        let creds = self.credentials()?;
        match challenge {
            Challenge::Basic => Ok(creds.map(|c| c.basic_header())),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let wanted = format!("repository:{}:pull,push", self.reference.name);
                let mut url = format!("{realm}{}", if realm.contains('?') { '&' } else { '?' });
                let mut params = Vec::new();
                if let Some(service) = service {
                    params.push(format!("service={}", query_escape(service)));
                }
                params.push(format!("scope={}", query_escape(&wanted)));
                if let Some(scope) = scope.as_deref().filter(|s| *s != wanted) {
                    params.push(format!("scope={}", query_escape(scope)));
                }
                url.push_str(&params.join("&"));
                let basic = creds.as_ref().map(Credentials::basic_header);
                let mut token_agent = self.agent.get(&url);
                if let Some(basic) = &basic {
                    token_agent = token_agent.header("Authorization", basic);
                }
                let mut resp = token_agent
                    .call()
                    .map_err(|e| self.transport(&format!("token request to {realm}"), &e))?;
                let status = resp.status();
                if !status.is_success() {
                    let body = error_text(&mut resp);
                    let kind =
                        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                            ErrorKind::Unauthorized
                        } else {
                            ErrorKind::Registry
                        };
                    return Err(Error::new(
                        kind,
                        format!(
                            "registry {} refused the {what} of {}: its token service {realm} \
                             answered {}{body} ({})",
                            self.reference.host,
                            self.reference.name,
                            status_text(status),
                            self.where_credentials()
                        ),
                    ));
                }
                #[derive(Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let text = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 20)
                    .read_to_string()
                    .map_err(|e| self.transport(&format!("token request to {realm}"), &e))?;
                let token: Token = serde_json::from_str(&text).map_err(|e| {
                    Error::new(
                        ErrorKind::Registry,
                        format!("token service {realm} answered no JSON token: {e}"),
                    )
                })?;
                let token = token.token.or(token.access_token).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Registry,
                        format!("token service {realm} answered JSON without a token"),
                    )
                })?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// The credentials for the reference's host, looked up once.
    fn credentials(&mut self) -> Result<Option<Credentials>, Error> {
        if self.credentials.is_none() {
            let path = auth::docker_config_path();
            self.credentials = Some(auth::lookup(path.as_deref(), &self.reference.host)?);
        }
        Ok(match &self.credentials {
            Some(Found::Yes(c, _)) => Some(c.clone()),
            _ => None,
        })
    }

    fn where_credentials(&self) -> String {
        match &self.credentials {
            Some(Found::Yes(c, from)) => {
                format!("credentials of user '{}' from {from}", c.username)
            }
            Some(Found::No(why)) => format!("no credentials: {why}"),
            None => "no credentials looked up".into(),
        }
    }

    fn expect(&self, resp: Resp, ok: &[StatusCode], what: &str) -> Result<Resp, Error> {
        if ok.contains(&resp.status()) {
            return Ok(resp);
        }
        Err(self.refused(resp, what))
    }

    /// `registry HOST refused the WHAT: 401 Unauthorized (authentication required; …)`
    fn refused(&self, mut resp: Resp, what: &str) -> Error {
        let status = resp.status();
        let body = error_text(&mut resp);
        let (kind, why) = if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            (
                ErrorKind::Unauthorized,
                format!(" ({})", self.where_credentials()),
            )
        } else {
            (ErrorKind::Registry, String::new())
        };
        Error::new(
            kind,
            format!(
                "registry {} refused the {what} of {}: {}{body}{why}",
                self.reference.host,
                self.reference.name,
                status_text(status)
            ),
        )
    }

    fn transport(&self, what: &str, err: &ureq::Error) -> Error {
        Error::new(
            ErrorKind::Transport,
            format!(
                "cannot reach registry {} for the {what} ({}): {err}",
                self.reference.host, self.base
            ),
        )
    }
}

fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: Option<&str>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(value) => req.header("Authorization", value),
        None => req,
    }
}

fn header(resp: &Resp, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .trim_end()
    .to_owned()
}

/// The distribution spec's error body (`{"errors":[{"code","message"}]}`) as ` (CODE: message)`,
/// or the start of a text body; empty when there is none.
fn error_text(resp: &mut Resp) -> String {
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    if let Ok(errors) = serde_json::from_str::<Errors>(&text) {
        let parts: Vec<String> = errors
            .errors
            .iter()
            .map(|e| match (&e.code, &e.message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => String::new(),
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return format!(" ({})", parts.join("; "));
        }
    }
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        let cut: String = text.chars().take(200).collect();
        format!(" ({cut})")
    }
}

/// A `Location` may be absolute or relative to the registry.
fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_resolves_against_the_registry() {
        let base = "http://127.0.0.1:5000";
        assert_eq!(
            resolve(base, "/v2/a/blobs/uploads/x?_state=y"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=y"
        );
        assert_eq!(
            resolve(base, "https://s3.example/u?x=1"),
            "https://s3.example/u?x=1"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(query_escape("registry.docker.io"), "registry.docker.io");
    }
}
