//! `cargo fnkit image`: the function's OCI image, FROM scratch, written by `fnkit_oci`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fnkit_oci::{Arch, Image, ImageSpec};

use crate::build::{self, human};
use crate::project::Project;
use crate::{fail, say, BuildArgs, ImageArgs, Result};

/// The CA bundle Debian, Ubuntu, Alpine and Arch keep (`update-ca-certificates`).
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Crates whose presence in the function's dependency tree means it speaks TLS and wants root
/// certificates.
const TLS_CRATES: &[&str] = &["rustls", "native-tls", "openssl"];

/// `cargo fnkit image`.
pub(crate) fn run(args: &ImageArgs) -> Result<()> {
    let started = Instant::now();
    let built = build::run(&BuildArgs {
        arm64: args.arm64,
        zip: false,
        manifest_path: args.manifest_path.clone(),
    })?;
    let project = &built.project;
    let ca_bundle = ca_bundle(args, project)?;
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.title".to_owned(),
        project.name.clone(),
    );
    labels.insert(
        "org.opencontainers.image.version".to_owned(),
        project.version.clone(),
    );
    let spec = ImageSpec {
        binary: built.binary.clone(),
        arch: if built.arm64 {
            Arch::Arm64
        } else {
            Arch::Amd64
        },
        ca_bundle: ca_bundle.clone(),
        env: Vec::new(),
        labels,
    };
    let image = Image::build(&spec).map_err(|e| fail!("cannot build the image: {e}"))?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| project.image_dir().join(&project.name));
    image
        .write_layout(&output, args.tag.as_deref())
        .map_err(|e| fail!("cannot write the image layout: {e}"))?;
    say!("Image of {} ({})", project.name, spec.arch);
    say!("  digest   {}", image.manifest_digest());
    say!("  layer    {} (gzip)", human(image.layer_size()));
    say!("  total    {}", human(image.total_size()));
    match &ca_bundle {
        Some(ca) => say!("  CA certs {} -> {SYSTEM_CA_BUNDLE}", ca.display()),
        None => say!(
            "  CA certs none (no TLS crate among the function's dependencies; --ca-certs PATH \
             adds some)"
        ),
    }
    say!("  layout   {}", output.display());
    if args.push {
        let tag = args
            .tag
            .as_deref()
            .ok_or_else(|| fail!("--push needs --tag REF"))?;
        let pushing = std::time::Instant::now();
        let report = image
            .push(tag)
            .map_err(|e| fail!("cannot push {tag}: {e}"))?;
        say!(
            "  pushed   {}@{} ({} uploaded in {:.2} s)",
            report.reference,
            report.digest,
            human(report.bytes_uploaded),
            pushing.elapsed().as_secs_f64()
        );
        save_last_push(project, &report.reference, &report.digest)?;
    }
    say!(
        "  took     {:.1} s in all (build included)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `--ca-certs`, else none with `--no-ca-certs`, else the system's bundle when the function depends
/// on a TLS crate (its own dependency tree, not the whole Cargo.lock: in a workspace the lock also
/// holds the other members' dependencies).
fn ca_bundle(args: &ImageArgs, project: &Project) -> Result<Option<PathBuf>> {
    if let Some(path) = &args.ca_certs {
        if !path.is_file() {
            return Err(fail!("--ca-certs {}: no such file", path.display()));
        }
        return Ok(Some(path.clone()));
    }
    if args.no_ca_certs {
        return Ok(None);
    }
    if !uses_tls(&dependency_tree(project)?) {
        return Ok(None);
    }
    let system = Path::new(SYSTEM_CA_BUNDLE);
    if system.is_file() {
        Ok(Some(system.to_path_buf()))
    } else {
        Err(fail!(
            "the function depends on a TLS crate, so the image wants root certificates, but \
             {SYSTEM_CA_BUNDLE} is missing: install ca-certificates, or pass --ca-certs PATH \
             (or --no-ca-certs)"
        ))
    }
}

/// The package's normal dependencies, one `name vX.Y.Z` per line (`cargo tree`, every platform).
fn dependency_tree(project: &Project) -> Result<String> {
    let out = crate::project::cargo()
        .args([
            "tree", "-e", "normal", "--prefix", "none", "--target", "all",
        ])
        .arg("--manifest-path")
        .arg(&project.manifest)
        .args(["-p", &project.name])
        .output()
        .map_err(|e| fail!("cannot run `cargo tree`: {e}"))?;
    if !out.status.success() {
        return Err(fail!(
            "`cargo tree` failed:\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a `cargo tree --prefix none` listing names one of [`TLS_CRATES`].
fn uses_tls(tree: &str) -> bool {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|name| TLS_CRATES.contains(&name))
}

/// Remembers the pushed reference and digest for `cargo fnkit deploy`.
fn save_last_push(project: &Project, reference: &str, digest: &str) -> Result<()> {
    fs::create_dir_all(project.image_dir())?;
    let record = serde_json::json!({
        "function": project.name,
        "reference": reference,
        "digest": digest,
    });
    let path = project.last_push();
    fs::write(&path, format!("{record:#}\n"))
        .map_err(|e| fail!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_crates_in_the_dependency_tree_ask_for_certificates() {
        let tree = "hello v0.1.0 (/src/hello)\nfnkit v0.1.0 (/src/fnkit)\nrustls v0.23.35\n";
        assert!(uses_tls(tree));
        assert!(!uses_tls("rustls-pki-types v1.13.0\nhyper v1.8.1\n"));
        assert!(!uses_tls(""));
    }
}
