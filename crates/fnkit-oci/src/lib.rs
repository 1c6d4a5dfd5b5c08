//! OCI images of a static function binary, written directly: no container daemon, no base image,
//! no Dockerfile.
//!
//! [`Image::build`] makes one reproducible gzip layer (`/fn`, an empty `/tmp`, the CA bundle
//! when given), an image config (user `65534:65534`, entrypoint `/fn`, `PORT=8080`) and a
//! single-platform image manifest. [`Image::write_layout`] writes them as an OCI image layout
//! (readable by `skopeo`, `podman`, `umoci`); [`Image::push`] sends them to a registry over the
//! OCI distribution API. `cargo fnkit image` is built on this crate; `docs/oci-image.md` at the
//! repository's root explains what the image holds and why.
//!
//! ```no_run
//! use fnkit_oci::{Arch, Image, ImageSpec};
//!
//! # fn main() -> Result<(), fnkit_oci::Error> {
//! let spec = ImageSpec {
//!     binary: "target/x86_64-unknown-linux-musl/release/hello".into(),
//!     arch: Arch::Amd64,
//!     ca_bundle: Some("/etc/ssl/certs/ca-certificates.crt".into()),
//!     env: vec![("RUST_LOG".into(), "info".into())],
//!     labels: [("org.opencontainers.image.title".to_owned(), "hello".to_owned())].into(),
//! };
//! let image = Image::build(&spec)?;
//! println!("{} ({} bytes)", image.manifest_digest(), image.total_size());
//! image.write_layout("target/oci/hello".as_ref(), Some("latest"))?;
//! let report = image.push("127.0.0.1:5000/hello:latest")?;
//! println!("pushed {} as {}", report.reference, report.digest);
//! # Ok(())
//! # }
//! ```
//!
//! The same binary, CA bundle, environment, labels and `SOURCE_DATE_EPOCH` give the same bytes,
//! so the same manifest digest, on any machine.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

mod auth;
mod error;
mod json;
mod layer;
mod push;
mod reference;

pub use error::{Error, ErrorKind};
/// `seconds` since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`), the form of an
/// image's `created`; the CLI's Lambda emulator dates its log streams with it too.
#[doc(hidden)]
pub use json::rfc3339;

/// The README's example, compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The CPU architecture of the image (and of its binary), in OCI's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64: `amd64` in the image, `x86_64` on Lambda, `x86_64-unknown-linux-musl` for rustc.
    Amd64,
    /// AArch64 (Graviton): `arm64` in the image and on Lambda, `aarch64-unknown-linux-musl`.
    Arm64,
}

impl Arch {
    /// The OCI/Go name: `amd64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The static (musl) Rust target that builds a binary for this architecture.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Arch {
    type Err = Error;

    /// Accepts the OCI, Lambda and Rust spellings: `amd64`/`x86_64`/`x86-64`,
    /// `arm64`/`aarch64`.
    fn from_str(s: &str) -> Result<Arch, Error> {
        match s {
            "amd64" | "x86_64" | "x86-64" => Ok(Arch::Amd64),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            other => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown architecture '{other}' (amd64/x86_64 or arm64/aarch64)"),
            )),
        }
    }
}

/// What goes into the image.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// The static binary; it becomes `/fn` (mode 0755, owner 0:0) and the entrypoint. It must be
    /// a static (no ELF interpreter) 64-bit executable of `arch`: the image has no libc.
    pub binary: PathBuf,
    /// The image's architecture; must match the binary's.
    pub arch: Arch,
    /// A PEM bundle copied to `/etc/ssl/certs/ca-certificates.crt` (mode 0644) when `Some`, for
    /// functions that call HTTPS services and read the system's roots.
    pub ca_bundle: Option<PathBuf>,
    /// Environment variables after `PATH=/` and `PORT=8080`; one named `PATH` or `PORT` replaces
    /// that default in place (and a new `PORT` moves `ExposedPorts` with it).
    pub env: Vec<(String, String)>,
    /// Image config labels, e.g. `org.opencontainers.image.source`.
    pub labels: BTreeMap<String, String>,
}

/// A built image, every blob in memory: one layer, the config and the manifest.
#[derive(Clone)]
pub struct Image {
    arch: Arch,
    layer: Vec<u8>,
    layer_digest: String,
    diff_id: String,
    config: Vec<u8>,
    config_digest: String,
    manifest: Vec<u8>,
    manifest_digest: String,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("arch", &self.arch)
            .field("manifest_digest", &self.manifest_digest)
            .field("config_digest", &self.config_digest)
            .field("layer_digest", &self.layer_digest)
            .field("layer_size", &self.layer.len())
            .finish()
    }
}

/// What [`Image::push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The manifest digest the registry stored (its `Docker-Content-Digest`, checked against
    /// ours), `sha256:…`; deploy by `host/name@digest` to pin exactly this image.
    pub digest: String,
    /// The reference pushed, normalised: `host[:port]/name:tag`.
    pub reference: String,
    /// Bytes sent: the blobs the registry did not have, plus the manifest.
    pub bytes_uploaded: u64,
    /// Blobs uploaded (of 2: layer and config).
    pub blobs_uploaded: usize,
    /// Blobs the registry already had, not sent again.
    pub blobs_skipped: usize,
}

/// `created_by` of the layer's history entry.
const CREATED_BY: &str = "fnkit-oci: /fn (static binary), /tmp, CA bundle";

impl Image {
    /// Builds the image from `spec`. The time in `created` and in the tar's mtimes is
    /// `SOURCE_DATE_EPOCH` when set, else the Unix epoch.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when the binary or CA bundle cannot be read; [`ErrorKind::InvalidInput`]
    /// when the binary is not a static ELF executable of `spec.arch`, an environment variable's
    /// name is empty or holds `=`, or `SOURCE_DATE_EPOCH` is not a number of seconds.
    pub fn build(spec: &ImageSpec) -> Result<Image, Error> {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse::<u64>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("SOURCE_DATE_EPOCH='{v}' is not a number of seconds since 1970"),
                )
            })?,
            _ => 0,
        };
        Image::build_at(spec, epoch)
    }

    fn build_at(spec: &ImageSpec, epoch: u64) -> Result<Image, Error> {
        let binary = std::fs::read(&spec.binary).map_err(|e| {
            Error::io(
                format!("cannot read the binary {}", spec.binary.display()),
                &e,
            )
        })?;
        layer::check_binary(&spec.binary, &binary, spec.arch)?;
        let ca = match &spec.ca_bundle {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                Error::io(format!("cannot read the CA bundle {}", path.display()), &e)
            })?),
            None => None,
        };
        Image::from_parts(&binary, ca.as_deref(), spec, epoch)
    }

    fn from_parts(
        binary: &[u8],
        ca: Option<&[u8]>,
        spec: &ImageSpec,
        epoch: u64,
    ) -> Result<Image, Error> {
        let env = environment(&spec.env)?;
        let port = env
            .iter()
            .find_map(|kv| kv.strip_prefix("PORT="))
            .and_then(|p| p.parse::<u16>().ok());
        let exposed_ports = port
            .map(|p| (format!("{p}/tcp"), json::Empty {}))
            .into_iter()
            .collect();

        let layer = layer::build(binary, ca, epoch)?;
        let layer_digest = sha256_digest(&layer.gz);

        let config = json::ImageConfig {
            created: json::rfc3339(epoch),
            architecture: spec.arch.as_str(),
            os: "linux",
            config: json::RunConfig {
                user: json::USER,
                exposed_ports,
                env,
                entrypoint: vec!["/fn"],
                labels: &spec.labels,
            },
            rootfs: json::RootFs {
                kind: "layers",
                diff_ids: vec![&layer.diff_id],
            },
            history: vec![json::History {
                created_by: CREATED_BY,
            }],
        };
        let config = to_json(&config);
        let config_digest = sha256_digest(&config);

        let manifest = json::Manifest {
            schema_version: 2,
            media_type: json::MANIFEST_MEDIA_TYPE,
            config: json::Descriptor {
                media_type: json::CONFIG_MEDIA_TYPE,
                digest: &config_digest,
                size: config.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            layers: vec![json::Descriptor {
                media_type: json::LAYER_MEDIA_TYPE,
                digest: &layer_digest,
                size: layer.gz.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            }],
        };
        let manifest = to_json(&manifest);
        let manifest_digest = sha256_digest(&manifest);

        Ok(Image {
            arch: spec.arch,
            layer: layer.gz,
            layer_digest,
            diff_id: layer.diff_id,
            config,
            config_digest,
            manifest,
            manifest_digest,
        })
    }

    /// The manifest's digest, `sha256:…`: the image's identity in a registry
    /// (`host/name@sha256:…`).
    pub fn manifest_digest(&self) -> String {
        self.manifest_digest.clone()
    }

    /// The compressed layer's size in bytes (what a pull downloads, less ~1 KiB of JSON).
    pub fn layer_size(&self) -> u64 {
        self.layer.len() as u64
    }

    /// Layer + config + manifest, in bytes.
    pub fn total_size(&self) -> u64 {
        (self.layer.len() + self.config.len() + self.manifest.len()) as u64
    }

    /// The architecture the image was built for.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The config blob's digest, `sha256:…` (podman and docker show its start as the image id).
    pub fn config_digest(&self) -> String {
        self.config_digest.clone()
    }

    /// The compressed layer's digest, `sha256:…`.
    pub fn layer_digest(&self) -> String {
        self.layer_digest.clone()
    }

    /// The uncompressed layer's digest (the config's `rootfs.diff_ids[0]`), `sha256:…`.
    pub fn diff_id(&self) -> String {
        self.diff_id.clone()
    }

    /// The manifest's bytes (`application/vnd.oci.image.manifest.v1+json`), exactly as hashed.
    pub fn manifest_json(&self) -> &[u8] {
        &self.manifest
    }

    /// The config's bytes (`application/vnd.oci.image.config.v1+json`), exactly as hashed.
    pub fn config_json(&self) -> &[u8] {
        &self.config
    }

    /// Writes the image as an OCI image layout in `dir` (created if missing): `oci-layout`,
    /// `index.json` naming the manifest (with `org.opencontainers.image.ref.name` = `ref_name`
    /// when given, so `skopeo copy oci:DIR:REF …` finds it) and `blobs/sha256/…`. An existing
    /// `index.json` is replaced: the layout holds this one image; blobs already there stay.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when a file cannot be written; [`ErrorKind::InvalidInput`] when
    /// `ref_name` is empty or holds characters outside `A-Za-z0-9._:@/+-`.
    pub fn write_layout(&self, dir: &Path, ref_name: Option<&str>) -> Result<(), Error> {
        if let Some(name) = ref_name {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:@/+".contains(&b));
            if !ok {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("'{name}' is not a valid OCI ref name (letters, digits and -._:@/+)"),
                ));
            }
        }
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs)
            .map_err(|e| Error::io(format!("cannot create {}", blobs.display()), &e))?;
        for (digest, bytes) in [
            (&self.layer_digest, &self.layer),
            (&self.config_digest, &self.config),
            (&self.manifest_digest, &self.manifest),
        ] {
            let hex = digest.trim_start_matches("sha256:");
            write_file(&blobs.join(hex), bytes)?;
        }
        let mut annotations = BTreeMap::new();
        if let Some(name) = ref_name {
            annotations.insert(json::REF_NAME_ANNOTATION, name);
        }
        let index = json::Index {
            schema_version: 2,
            media_type: json::INDEX_MEDIA_TYPE,
            manifests: vec![json::Descriptor {
                media_type: json::MANIFEST_MEDIA_TYPE,
                digest: &self.manifest_digest,
                size: self.manifest.len() as u64,
                platform: Some(json::Platform {
                    architecture: self.arch.as_str(),
                    os: "linux",
                }),
                annotations,
            }],
        };
        write_file(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        write_file(&dir.join("index.json"), &to_json(&index))
    }

    /// Pushes the image to `reference` (`host[:port]/name[:tag]`, tag `latest` by default):
    /// each blob the registry lacks (checked with `HEAD`), uploaded with `POST` + `PUT ?digest=`,
    /// then the manifest by tag as `application/vnd.oci.image.manifest.v1+json`.
    ///
    /// Loopback hosts (`localhost`, `127.*`, `[::1]`) are spoken to in plain HTTP, others in HTTPS
    /// (webpki roots). On a 401 the registry's `WWW-Authenticate` challenge is answered: `Basic`
    /// with the credentials of `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), or
    /// `Bearer` with a token fetched from the challenge's realm with those credentials (or
    /// anonymously). A `credHelpers`/`credsStore` helper is run as `docker-credential-NAME get`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidReference`] for a reference without a registry host (Docker Hub is
    /// never assumed: write `docker.io/…`); [`ErrorKind::Unauthorized`] when the registry or its
    /// token service refuses the credentials, or there are none; [`ErrorKind::Credentials`] for
    /// an unreadable config or a failing helper; [`ErrorKind::Transport`] when the registry
    /// cannot be reached; [`ErrorKind::Registry`] for any other refusal.
    pub fn push(&self, reference: &str) -> Result<PushReport, Error> {
        let reference = reference::Reference::parse(reference)?;
        let normalized = reference.to_string();
        let mut session = push::Session::new(reference);
        let pushed = session.push(
            &[
                push::Upload {
                    digest: &self.layer_digest,
                    bytes: &self.layer,
                },
                push::Upload {
                    digest: &self.config_digest,
                    bytes: &self.config,
                },
            ],
            push::Upload {
                digest: &self.manifest_digest,
                bytes: &self.manifest,
            },
            json::MANIFEST_MEDIA_TYPE,
        )?;
        Ok(PushReport {
            digest: pushed.digest,
            reference: normalized,
            bytes_uploaded: pushed.bytes_uploaded,
            blobs_uploaded: pushed.blobs_uploaded,
            blobs_skipped: pushed.blobs_skipped,
        })
    }
}

/// `PATH=/`, `PORT=8080`, then `extra`; an extra `PATH` or `PORT` replaces the default in place.
fn environment(extra: &[(String, String)]) -> Result<Vec<String>, Error> {
    let mut env: Vec<(String, String)> =
        vec![("PATH".into(), "/".into()), ("PORT".into(), "8080".into())];
    for (key, value) in extra {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("invalid environment variable name '{key}' (empty, or holds '=' or NUL)"),
            ));
        }
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing these structs (strings, numbers, maps with string keys) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn spec() -> ImageSpec {
        ImageSpec {
            binary: "unused".into(),
            arch: Arch::Arm64,
            ca_bundle: None,
            env: vec![("RUST_LOG".into(), "info".into())],
            labels: [(
                "org.opencontainers.image.title".to_owned(),
                "hello".to_owned(),
            )]
            .into(),
        }
    }

    fn image(spec: &ImageSpec, epoch: u64) -> Image {
        Image::from_parts(b"binary bytes", None, spec, epoch).expect("image")
    }

    #[test]
    fn two_builds_of_the_same_input_have_the_same_digest() {
        let a = image(&spec(), 0);
        let b = image(&spec(), 0);
        assert_eq!(a.manifest_digest(), b.manifest_digest());
        assert_eq!(a.layer, b.layer);
        let mut other = spec();
        other.env.push(("X".into(), "1".into()));
        assert_ne!(image(&other, 0).manifest_digest(), a.manifest_digest());
        assert_ne!(image(&spec(), 1).manifest_digest(), a.manifest_digest());
    }

    #[test]
    fn config_has_user_entrypoint_env_ports_labels_and_no_history_time() {
        let img = image(&spec(), 0);
        let c: Value = serde_json::from_slice(img.config_json()).expect("json");
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["architecture"], "arm64");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["config"]["User"], "65534:65534");
        assert_eq!(c["config"]["Entrypoint"], serde_json::json!(["/fn"]));
        assert_eq!(
            c["config"]["Env"],
            serde_json::json!(["PATH=/", "PORT=8080", "RUST_LOG=info"])
        );
        assert_eq!(
            c["config"]["ExposedPorts"],
            serde_json::json!({"8080/tcp": {}})
        );
        assert_eq!(
            c["config"]["Labels"]["org.opencontainers.image.title"],
            "hello"
        );
        assert!(c["config"].get("Cmd").is_none());
        assert_eq!(c["rootfs"]["type"], "layers");
        assert_eq!(c["rootfs"]["diff_ids"], serde_json::json!([img.diff_id()]));
        let history = c["history"].as_array().expect("history");
        assert_eq!(history.len(), 1);
        assert!(history[0].get("created").is_none());
    }

    #[test]
    fn source_date_epoch_sets_created() {
        let c: Value =
            serde_json::from_slice(image(&spec(), 1_700_000_000).config_json()).expect("json");
        assert_eq!(c["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn env_port_and_path_replace_the_defaults() {
        let mut s = spec();
        s.env = vec![
            ("PORT".into(), "9000".into()),
            ("PATH".into(), "/bin".into()),
        ];
        let c: Value = serde_json::from_slice(image(&s, 0).config_json()).expect("json");
        assert_eq!(
            c["config"]["Env"],
            serde_json::json!(["PATH=/bin", "PORT=9000"])
        );
        assert_eq!(
            c["config"]["ExposedPorts"],
            serde_json::json!({"9000/tcp": {}})
        );
        s.env = vec![("A=B".into(), "x".into())];
        let e = Image::from_parts(b"x", None, &s, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn manifest_is_a_single_platform_oci_manifest_with_one_gzip_layer() {
        let img = image(&spec(), 0);
        let m: Value = serde_json::from_slice(img.manifest_json()).expect("json");
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(m["config"]["digest"], img.config_digest());
        assert_eq!(m["config"]["size"], img.config_json().len());
        let layers = m["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1);
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(layers[0]["digest"], img.layer_digest());
        assert_eq!(layers[0]["size"], img.layer_size());
        assert!(m.get("manifests").is_none());
        assert_eq!(img.manifest_digest(), sha256_digest(img.manifest_json()));
        assert_eq!(img.config_digest(), sha256_digest(img.config_json()));
        assert_eq!(img.layer_digest(), sha256_digest(&img.layer));
        assert_eq!(
            img.total_size(),
            img.layer_size() + img.config_json().len() as u64 + img.manifest_json().len() as u64
        );
    }

    #[test]
    fn labels_are_omitted_when_empty() {
        let mut s = spec();
        s.labels.clear();
        let c: Value = serde_json::from_slice(image(&s, 0).config_json()).expect("json");
        assert!(c["config"].get("Labels").is_none());
    }

    #[test]
    fn layout_has_oci_layout_index_with_ref_name_and_blobs() {
        let img = image(&spec(), 0);
        let dir = std::env::temp_dir().join(format!("fnkit-oci-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        img.write_layout(&dir, Some("v1")).expect("layout");
        let layout: Value =
            serde_json::from_slice(&std::fs::read(dir.join("oci-layout")).expect("oci-layout"))
                .expect("json");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        let m = &index["manifests"][0];
        assert_eq!(m["digest"], img.manifest_digest());
        assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "v1");
        assert_eq!(m["platform"]["architecture"], "arm64");
        for digest in [
            img.manifest_digest(),
            img.config_digest(),
            img.layer_digest(),
        ] {
            let path = dir
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:"));
            let bytes = std::fs::read(&path).expect("blob");
            assert_eq!(sha256_digest(&bytes), digest);
        }
        img.write_layout(&dir, None).expect("rewrite");
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
                .expect("json");
        assert!(index["manifests"][0].get("annotations").is_none());
        assert!(img.write_layout(&dir, Some("bad name")).is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn arch_parses_oci_lambda_and_rust_names() {
        assert_eq!("x86_64".parse::<Arch>().expect("x86_64"), Arch::Amd64);
        assert_eq!("amd64".parse::<Arch>().expect("amd64"), Arch::Amd64);
        assert_eq!("aarch64".parse::<Arch>().expect("aarch64"), Arch::Arm64);
        assert_eq!(Arch::Arm64.to_string(), "arm64");
        assert!("riscv64".parse::<Arch>().is_err());
    }

    #[test]
    fn build_reads_and_checks_the_binary() {
        let mut s = spec();
        s.binary = "/nonexistent/fnkit/fn".into();
        let e = Image::build_at(&s, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.to_string().contains("/nonexistent/fnkit/fn"), "{e}");
    }
}
