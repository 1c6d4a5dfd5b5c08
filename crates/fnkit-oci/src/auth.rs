//! Registry credentials (`~/.docker/config.json`, credential helpers) and `WWW-Authenticate`
//! challenges.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

use crate::{Error, ErrorKind};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// `Basic base64(user:pass)`
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Where credentials for a host came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Credentials, and the file or helper they came from.
    Yes(Credentials, String),
    /// None; the string says where we looked.
    No(String),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "lowercase")]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub(crate) fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

/// The credentials for `host` (as written in the reference: `host[:port]`) from the docker
/// config at `path`: a credential helper named for the host (`credHelpers`) or for all
/// (`credsStore`) is run as `docker-credential-<name> get`; else `auths` is read (`auth` =
/// base64 `user:pass`, or `username` + `password`).
pub(crate) fn lookup(path: Option<&Path>, host: &str) -> Result<Found, Error> {
    let Some(path) = path else {
        return Ok(Found::No(
            "no DOCKER_CONFIG or HOME to find config.json".into(),
        ));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Found::No(format!("{} does not exist", path.display())))
        }
        Err(e) => {
            return Err(Error::new(
                ErrorKind::Credentials,
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    };
    lookup_in(&text, &path.display().to_string(), host, &run_helper)
}

/// A credential helper: `(helper name, server) -> Ok(Some(credentials))`.
type Helper<'a> = &'a dyn Fn(&str, &str) -> Result<Option<Credentials>, Error>;

fn lookup_in(text: &str, origin: &str, host: &str, helper: Helper<'_>) -> Result<Found, Error> {
    let config: DockerConfig = serde_json::from_str(text).map_err(|e| {
        Error::new(
            ErrorKind::Credentials,
            format!("{origin} is not a valid docker config.json: {e}"),
        )
    })?;
    let keys = host_keys(host);
    let helper_name = keys
        .iter()
        .find_map(|k| config.cred_helpers.get(k))
        .or(config.creds_store.as_ref());
    if let Some(name) = helper_name {
        for server in &keys {
            if let Some(creds) = helper(name, server)? {
                return Ok(Found::Yes(creds, format!("docker-credential-{name}")));
            }
        }
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| keys.iter().any(|k| normalize_key(key) == *k))
        .map(|(_, entry)| entry);
    let Some(entry) = entry else {
        return Ok(Found::No(format!("no entry for {host} in {origin}")));
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
        return match decoded {
            Some((username, password)) => Ok(Found::Yes(
                Credentials { username, password },
                origin.to_owned(),
            )),
            None => Err(Error::new(
                ErrorKind::Credentials,
                format!("{origin}: auths.\"{host}\".auth is not base64 of user:password"),
            )),
        };
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Found::Yes(
            Credentials {
                username: username.clone(),
                password: password.clone(),
            },
            origin.to_owned(),
        ));
    }
    if entry.identitytoken.is_some() {
        return Ok(Found::No(format!(
            "{origin} has only an identity token for {host}, which fnkit does not use \
             (log in with a user name and password or token)"
        )));
    }
    Ok(Found::No(format!(
        "the entry for {host} in {origin} has no auth"
    )))
}

/// The keys a host may be stored under, normalised (no scheme, no path): the host itself, and
/// Docker Hub's historical names for `docker.io`.
fn host_keys(host: &str) -> Vec<String> {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => vec![
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ],
        _ => vec![host.to_owned()],
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`.
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_owned()
}

/// Runs `docker-credential-<name> get` with the server on stdin, as docker does.
fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, Error> {
    let program = format!("docker-credential-{name}");
    let fail = |why: String| {
        Error::new(
            ErrorKind::Credentials,
            format!("credential helper {program} failed for {server}: {why}"),
        )
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "credentials not found in native keychain" is how helpers say "none".
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "{}: {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct HelperCreds {
        username: String,
        secret: String,
    }
    let creds: HelperCreds = serde_json::from_str(&stdout).map_err(|e| {
        fail(format!(
            "its answer is not JSON with Username and Secret: {e}"
        ))
    })?;
    Ok(Some(Credentials {
        username: creds.username,
        password: creds.secret,
    }))
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// `Basic realm="…"`
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`: get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (RFC 7235 `auth-scheme 1*SP auth-param *("," auth-param)`,
/// values quoted or not). Several challenges in one header are split at a scheme name; the first
/// Bearer one wins, else Basic. `None` when there is neither.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let mut challenges: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        // A token followed by a space (or the end) without '=' starts a new challenge.
        let token_end = rest.find([' ', ',', '=']).unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = &rest[token_end..];
        if !after.starts_with('=') {
            if !token.is_empty() {
                challenges.push((token.to_ascii_lowercase(), Vec::new()));
            }
            rest = after.trim_start_matches([' ', ',']);
            continue;
        }
        // key=value or key="quoted value"
        let mut value = String::new();
        let mut v = &after[1..];
        if let Some(q) = v.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            v = &q[end.min(q.len())..];
        } else {
            let end = v.find([',', ' ']).unwrap_or(v.len());
            value.push_str(&v[..end]);
            v = &v[end..];
        }
        if let Some((_, params)) = challenges.last_mut() {
            params.push((token.to_ascii_lowercase(), value));
        }
        rest = v.trim_start_matches([' ', ',']);
    }
    let param = |params: &[(String, String)], key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    for (scheme, params) in &challenges {
        if scheme == "bearer" {
            if let Some(realm) = param(params, "realm") {
                return Some(Challenge::Bearer {
                    realm,
                    service: param(params, "service"),
                    scope: param(params, "scope"),
                });
            }
        }
    }
    challenges
        .iter()
        .any(|(scheme, _)| scheme == "basic")
        .then_some(Challenge::Basic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_helper(_: &str, _: &str) -> Result<Option<Credentials>, Error> {
        panic!("no helper expected")
    }

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn auth_field_is_base64_user_colon_password() {
        // "ada:s3cr:et" — the password may hold a colon.
        let config = r#"{"auths":{"127.0.0.1:5000":{"auth":"YWRhOnMzY3I6ZXQ="}}}"#;
        let found = lookup_in(config, "cfg", "127.0.0.1:5000", &no_helper).expect("lookup");
        assert_eq!(found, Found::Yes(creds("ada", "s3cr:et"), "cfg".into()));
        assert_eq!(
            creds("ada", "s3cr:et").basic_header(),
            "Basic YWRhOnMzY3I6ZXQ="
        );
    }

    #[test]
    fn keys_with_scheme_and_path_match_the_host() {
        let config = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dTpw"},
            "https://ghcr.io":{"username":"gh","password":"tok"}}}"#;
        let hub = lookup_in(config, "cfg", "docker.io", &no_helper).expect("hub");
        assert_eq!(hub, Found::Yes(creds("u", "p"), "cfg".into()));
        let gh = lookup_in(config, "cfg", "ghcr.io", &no_helper).expect("ghcr");
        assert_eq!(gh, Found::Yes(creds("gh", "tok"), "cfg".into()));
        let none = lookup_in(config, "cfg", "quay.io", &no_helper).expect("quay");
        assert!(matches!(none, Found::No(why) if why.contains("no entry for quay.io")));
    }

    #[test]
    fn broken_auth_and_broken_json_are_credential_errors() {
        let e = lookup_in(
            r#"{"auths":{"h.io":{"auth":"!!"}}}"#,
            "cfg",
            "h.io",
            &no_helper,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credentials);
        assert!(e.to_string().contains("not base64 of user:password"), "{e}");
        let e = lookup_in("{", "cfg", "h.io", &no_helper).unwrap_err();
        assert!(
            e.to_string()
                .contains("cfg is not a valid docker config.json"),
            "{e}"
        );
    }

    #[test]
    fn credential_helper_for_the_host_wins_over_auths() {
        let config = r#"{"credsStore":"desktop","credHelpers":{"1.dkr.ecr.x.amazonaws.com":"ecr-login"},
            "auths":{"1.dkr.ecr.x.amazonaws.com":{"auth":"dTpw"}}}"#;
        let helper = |name: &str, server: &str| -> Result<Option<Credentials>, Error> {
            assert_eq!(server, "1.dkr.ecr.x.amazonaws.com");
            Ok(Some(creds("AWS", name)))
        };
        let found = lookup_in(config, "cfg", "1.dkr.ecr.x.amazonaws.com", &helper).expect("ecr");
        assert_eq!(
            found,
            Found::Yes(
                creds("AWS", "ecr-login"),
                "docker-credential-ecr-login".into()
            )
        );
        // The store is used for any other host; it finds nothing, so `auths` is read.
        let none = |_: &str, _: &str| Ok(None);
        let found = lookup_in(
            r#"{"credsStore":"desktop","auths":{"h.io":{"auth":"dTpw"}}}"#,
            "cfg",
            "h.io",
            &none,
        )
        .expect("h.io");
        assert_eq!(found, Found::Yes(creds("u", "p"), "cfg".into()));
    }

    #[test]
    fn missing_config_file_is_no_credentials_not_an_error() {
        let found = lookup(Some(Path::new("/nonexistent/fnkit/config.json")), "h.io").expect("ok");
        assert!(matches!(found, Found::No(why) if why.contains("does not exist")));
    }

    #[test]
    fn bearer_challenge_with_quoted_params() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
    }

    #[test]
    fn bearer_challenge_unquoted_mixed_case_and_spaces() {
        let c = parse_challenge(r#"bearer  Realm=https://ghcr.io/token , service=ghcr.io"#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
                scope: None,
            })
        );
    }

    #[test]
    fn basic_challenge_and_several_challenges_in_one_header() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        let c =
            parse_challenge(r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/t",service="s""#);
        assert!(
            matches!(c, Some(Challenge::Bearer { realm, .. }) if realm == "http://127.0.0.1:1/t")
        );
        assert_eq!(parse_challenge(r#"Negotiate"#), None);
        assert_eq!(
            parse_challenge(r#"Bearer realm="a\"b""#),
            Some(Challenge::Bearer {
                realm: "a\"b".into(),
                service: None,
                scope: None
            })
        );
    }
}
