//! The function crate a command acts on, found with `cargo metadata --no-deps`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{fail, Result};

/// The function crate: its name, binary, directories.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The package's name (also the function's).
    pub(crate) name: String,
    /// The package's version.
    pub(crate) version: String,
    /// The binary target's name.
    pub(crate) bin: String,
    /// The directory holding the package's Cargo.toml.
    pub(crate) dir: PathBuf,
    /// The package's Cargo.toml.
    pub(crate) manifest: PathBuf,
    /// cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config.toml).
    pub(crate) target_dir: PathBuf,
    /// The workspace root (where Cargo.lock is).
    pub(crate) workspace_root: PathBuf,
}

/// The cargo that runs this tool (`CARGO` when cargo started it), else `cargo` on PATH.
pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

impl Project {
    /// The package of `manifest` (default: the current directory's Cargo.toml).
    pub(crate) fn load(manifest: Option<&Path>) -> Result<Project> {
        let mut cmd = cargo();
        cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
        if let Some(m) = manifest {
            cmd.arg("--manifest-path").arg(m);
        }
        let out = cmd
            .output()
            .map_err(|e| fail!("cannot run `cargo metadata`: {e}"))?;
        if !out.status.success() {
            return Err(fail!(
                "no function crate here (`cargo metadata` failed; run this in the crate's \
                 directory or pass --manifest-path):\n{}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let meta: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail!("cannot read `cargo metadata`'s output: {e}"))?;
        let wanted = match manifest {
            Some(m) => m.canonicalize().ok(),
            None => std::env::current_dir()
                .ok()
                .map(|d| d.join("Cargo.toml"))
                .and_then(|p| p.canonicalize().ok()),
        };
        Self::from_metadata(&meta, wanted.as_deref())
    }

    /// Picks the package from `cargo metadata` output: the one whose manifest is `wanted`, else
    /// the only package.
    fn from_metadata(meta: &Value, wanted: Option<&Path>) -> Result<Project> {
        let packages = meta["packages"].as_array().cloned().unwrap_or_default();
        let package = packages
            .iter()
            .find(|p| {
                wanted.is_some_and(|w| {
                    p["manifest_path"]
                        .as_str()
                        .and_then(|m| Path::new(m).canonicalize().ok())
                        .is_some_and(|m| m == w)
                })
            })
            .or(if packages.len() == 1 {
                packages.first()
            } else {
                None
            })
            .ok_or_else(|| {
                fail!(
                    "this is a workspace of {} packages: run the command in the function's own \
                     directory or pass --manifest-path",
                    packages.len()
                )
            })?;
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let bins: Vec<&str> = package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                t["kind"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "bin"))
            })
            .filter_map(|t| t["name"].as_str())
            .collect();
        let bin = match bins.as_slice() {
            [one] => (*one).to_owned(),
            [] => {
                return Err(fail!(
                    "package `{name}` has no binary: a function is a binary crate"
                ))
            }
            many if many.contains(&name.as_str()) => name.clone(),
            many => {
                return Err(fail!(
                    "package `{name}` has several binaries ({}) and none is named after it",
                    many.join(", ")
                ))
            }
        };
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Project {
            version: package["version"].as_str().unwrap_or("0.0.0").to_owned(),
            name,
            bin,
            dir,
            manifest,
            target_dir: PathBuf::from(meta["target_directory"].as_str().unwrap_or("target")),
            workspace_root: PathBuf::from(meta["workspace_root"].as_str().unwrap_or(".")),
        })
    }

    /// Where `cargo fnkit image` writes its layout and remembers its last push.
    pub(crate) fn image_dir(&self) -> PathBuf {
        self.target_dir.join("fnkit-image")
    }

    /// Where `cargo fnkit image --push` records what it pushed (reference and digest) for
    /// `cargo fnkit deploy`: `<target>/fnkit-image/<name>.last-push.json`, one per function, as
    /// several crates may share a target directory.
    pub(crate) fn last_push(&self) -> PathBuf {
        self.image_dir()
            .join(format!("{}.last-push.json", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_binary_is_found_in_cargo_metadata() {
        let meta = json!({
            "packages": [{
                "name": "orders",
                "manifest_path": "/nowhere/orders/Cargo.toml",
                "targets": [
                    {"name": "orders", "kind": ["bin"]},
                    {"name": "helper", "kind": ["lib"]}
                ]
            }],
            "target_directory": "/t",
            "workspace_root": "/nowhere/orders"
        });
        let p = Project::from_metadata(&meta, None).expect("one package");
        assert_eq!((p.name.as_str(), p.bin.as_str()), ("orders", "orders"));
        assert_eq!(p.dir, Path::new("/nowhere/orders"));
        assert_eq!(p.target_dir, Path::new("/t"));
    }

    #[test]
    fn a_library_is_not_a_function() {
        let meta = json!({
            "packages": [{"name": "lib", "manifest_path": "/x/Cargo.toml",
                          "targets": [{"name": "lib", "kind": ["lib"]}]}],
            "target_directory": "/t", "workspace_root": "/x"
        });
        let err = Project::from_metadata(&meta, None).expect_err("no bin").0;
        assert!(err.contains("has no binary"), "{err}");
    }
}
