//! `cargo fnkit build`: the static musl release binary, and Lambda's `bootstrap.zip`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::project::{cargo, Project};
use crate::{fail, say, zip, BuildArgs, Result};

/// What a build produced.
#[derive(Debug)]
pub(crate) struct Built {
    /// The crate.
    pub(crate) project: Project,
    /// The static binary.
    pub(crate) binary: PathBuf,
    /// Whether it is the aarch64 build.
    pub(crate) arm64: bool,
}

/// The rustc target of a build.
pub(crate) fn musl_target(arm64: bool) -> &'static str {
    if arm64 {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    }
}

/// `cargo fnkit build`.
pub(crate) fn run(args: &BuildArgs) -> Result<Built> {
    let project = Project::load(args.manifest_path.as_deref())?;
    let target = musl_target(args.arm64);
    ensure_rustup_target(target)?;
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        target,
        "--bin",
        &project.bin,
    ])
    .arg("--manifest-path")
    .arg(&project.manifest);
    if project.workspace_root.join("Cargo.lock").is_file() {
        cmd.arg("--locked");
    }
    if args.arm64 {
        for (var, value) in aarch64_linker(&project)? {
            cmd.env(var, value);
        }
    }
    say!("Building {} for {target} (release)", project.name);
    let status = cmd.status().map_err(|e| fail!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(fail!("cargo build failed ({status})"));
    }
    let binary = project
        .target_dir
        .join(target)
        .join("release")
        .join(&project.bin);
    let size = fs::metadata(&binary)
        .map_err(|e| fail!("no binary at {}: {e}", binary.display()))?
        .len();
    say!("  binary  {} ({})", binary.display(), human(size));
    if args.zip {
        let path = binary.with_file_name(format!("{}-bootstrap.zip", project.bin));
        let data = fs::read(&binary)?;
        let bytes = zip::single_executable("bootstrap", &data)
            .map_err(|e| fail!("cannot zip {}: {e}", binary.display()))?;
        fs::write(&path, &bytes).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
        say!(
            "  zip     {} ({})",
            path.display(),
            human(bytes.len() as u64)
        );
    }
    Ok(Built {
        project,
        binary,
        arm64: args.arm64,
    })
}

/// Sizes as people read them: bytes, then KiB/MiB with one decimal.
pub(crate) fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Adds the rustup target when rustup manages the toolchain and lacks it.
fn ensure_rustup_target(target: &str) -> Result<()> {
    let Ok(out) = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output()
    else {
        return Ok(()); // no rustup: the toolchain is managed otherwise; cargo will say
    };
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    say!("Adding the rustup target {target}");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status()
        .map_err(|e| fail!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail!("`rustup target add {target}` failed ({status})"))
    }
}

const LINKER_VAR: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER";

/// The environment that gives cargo an aarch64 musl linker: the caller's own linker variable, or
/// a `zig cc` wrapper (zig on PATH, or the `ziglang` Python wheel).
fn aarch64_linker(project: &Project) -> Result<Vec<(&'static str, PathBuf)>> {
    if std::env::var_os(LINKER_VAR).is_some_and(|v| !v.is_empty()) {
        return Ok(Vec::new());
    }
    let zig = find_zig().ok_or_else(|| {
        fail!(
            "--arm64 needs a linker for aarch64-unknown-linux-musl, and none was found. Either \
             install zig (`pip install ziglang`, then FNKIT_ZIG_PYTHON=<that python> if it is not \
             python3; or zig from https://ziglang.org on PATH), or set {LINKER_VAR} to a linker \
             of your own"
        )
    })?;
    let dir = project.target_dir.join("fnkit");
    fs::create_dir_all(&dir)?;
    let wrapper = dir.join("zig-cc-aarch64");
    fs::write(&wrapper, zig_wrapper(&zig))?;
    set_executable(&wrapper)?;
    Ok(vec![
        (LINKER_VAR, wrapper.clone()),
        ("CC_aarch64_unknown_linux_musl", wrapper),
    ])
}

/// How to run zig: `zig` on PATH, else `python -m ziglang` (FNKIT_ZIG_PYTHON, then python3).
fn find_zig() -> Option<String> {
    let works = |cmd: &mut Command| {
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works(Command::new("zig").arg("version")) {
        return Some("zig".to_owned());
    }
    let pythons = std::env::var("FNKIT_ZIG_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_owned()]);
    for python in pythons {
        if works(Command::new(&python).args(["-m", "ziglang", "version"])) {
            return Some(format!("{} -m ziglang", shell_quote(&python)));
        }
    }
    None
}

/// The linker wrapper: `zig cc -target aarch64-linux-musl`, minus the arguments zig rejects or
/// duplicates (rustc's self-contained crt objects and `-lc`: zig links its own musl), as the fnkit
/// repository's tools/zig-cc-aarch64 does.
fn zig_wrapper(zig: &str) -> String {
    format!(
        r#"#!/bin/sh
# Written by cargo fnkit build --arm64: zig as the aarch64-unknown-linux-musl linker.
set -eu
drop='/self-contained/crt[^/]*\.o$|^-lc$|^-Wl,-O1$|^--target='
for arg; do
  shift
  case $arg in
    */self-contained/crt*.o | -lc | -Wl,-O1 | --target=*) continue ;;
    @*) if [ -f "${{arg#@}}" ]; then
          grep -Ev "$drop" "${{arg#@}}" > "${{arg#@}}.zig" || true
          mv "${{arg#@}}.zig" "${{arg#@}}"
        fi ;;
  esac
  set -- "$@" "$arg"
done
exec {zig} cc -target aarch64-linux-musl "$@"
"#
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn the_zig_wrapper_targets_aarch64_musl_and_drops_rustc_s_crt() {
        let w = zig_wrapper("'/venv/bin/python' -m ziglang");
        assert!(
            w.contains("exec '/venv/bin/python' -m ziglang cc -target aarch64-linux-musl \"$@\"")
        );
        assert!(w.contains("*/self-contained/crt*.o | -lc"));
    }
}
