//! `cargo fnkit new NAME`: a standalone function crate from templates compiled into the tool.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{fail, say, NewArgs, Result, Shape};

/// The release (and dev) profiles of the fnkit workspace. One file, kept equal to the workspace's
/// `Cargo.toml` (a unit test compares them).
pub(crate) const PROFILE: &str = include_str!("../templates/profile.toml");
/// The build flags of fnkit functions, written to the new crate's `.cargo/config.toml`.
pub(crate) const CARGO_CONFIG: &str = include_str!("../templates/cargo-config.toml");

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.tmpl");
const MAIN_TYPED: &str = include_str!("../templates/main-typed.rs");
const MAIN_HTTP: &str = include_str!("../templates/main-http.rs");
const MAIN_EVENT: &str = include_str!("../templates/main-event.rs");
const README: &str = include_str!("../templates/README.md.tmpl");
const SAM_TEMPLATE: &str = include_str!("../templates/sam-template.yaml");
const SAM_CONFIG: &str = include_str!("../templates/samconfig.toml");
const MAKEFILE: &str = include_str!("../templates/Makefile.tmpl");
const KNATIVE: &str = include_str!("../templates/knative-service.yaml");
const OPENFAAS: &str = include_str!("../templates/openfaas-stack.yml");
const GITIGNORE: &str = include_str!("../templates/gitignore");

/// Where the new crate gets fnkit from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FnkitSource {
    /// The `fnkit` crate's directory, and the workspace `Cargo.lock` beside it, if any.
    Path {
        crate_dir: PathBuf,
        lock: Option<PathBuf>,
    },
    /// A git repository.
    Git(String),
}

/// `cargo fnkit new`.
pub(crate) fn run(args: &NewArgs) -> Result<()> {
    validate_name(&args.name)?;
    let dir = PathBuf::from(&args.name);
    if dir.exists() {
        return Err(fail!(
            "`{}` already exists; choose another name or remove it first",
            dir.display()
        ));
    }
    let source = match (&args.fnkit_path, &args.fnkit_git) {
        (Some(path), _) => resolve_fnkit_path(path)?,
        (None, Some(url)) => FnkitSource::Git(url.clone()),
        (None, None) => default_source()?,
    };
    let files = render(&args.name, args.shape, &source);
    for (rel, contents) in &files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| fail!("cannot create {}: {e}", parent.display()))?;
        }
        fs::write(&path, contents).map_err(|e| fail!("cannot write {}: {e}", path.display()))?;
    }
    let lock_note = write_lockfile(&dir, &source);
    say!(
        "Created {} function `{}` in ./{} ({})",
        shape_name(args.shape),
        args.name,
        args.name,
        lock_note
    );
    say!("  cd {} && cargo test && cargo fnkit run", args.name);
    Ok(())
}

/// Checks `name` works as a crate, binary, Lambda function, Knative service and OpenFaaS function
/// name: the last two are Kubernetes names (RFC 1035 labels).
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let explain = "a function name is used for the crate, the binary, the Lambda function and the \
                   Kubernetes service, so it must be 1 to 63 lower-case letters, digits and `-`, \
                   starting with a letter and not ending with `-`";
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.starts_with(|c: char| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > 63 || !ok_chars || !starts || name.ends_with('-') {
        return Err(fail!("invalid function name `{name}`: {explain}"));
    }
    const RESERVED: &[&str] = &[
        "fnkit",
        "test",
        "core",
        "std",
        "alloc",
        "proc-macro",
        "build",
        "deps",
        "examples",
        "incremental",
        "self",
        "crate",
        "super",
    ];
    if RESERVED.contains(&name) {
        return Err(fail!(
            "invalid function name `{name}`: it clashes with a crate or directory cargo already uses"
        ));
    }
    Ok(())
}

/// `--fnkit-path DIR`: the fnkit crate itself, or the repository (workspace) that holds it.
pub(crate) fn resolve_fnkit_path(path: &Path) -> Result<FnkitSource> {
    let dir = path
        .canonicalize()
        .map_err(|e| fail!("--fnkit-path {}: {e}", path.display()))?;
    let is_fnkit_crate = |d: &Path| {
        fs::read_to_string(d.join("Cargo.toml"))
            .map(|t| t.lines().any(|l| l.trim() == "name = \"fnkit\""))
            .unwrap_or(false)
    };
    let (crate_dir, root) = if is_fnkit_crate(&dir) {
        // crates/fnkit inside the repository: the workspace root is two levels up.
        let root = dir.parent().and_then(Path::parent).map(Path::to_path_buf);
        (dir, root)
    } else if is_fnkit_crate(&dir.join("crates/fnkit")) {
        (dir.join("crates/fnkit"), Some(dir))
    } else {
        return Err(fail!(
            "--fnkit-path {}: neither the `fnkit` crate (a Cargo.toml with name = \"fnkit\") nor \
             a repository with crates/fnkit",
            path.display()
        ));
    };
    let lock = root.map(|r| r.join("Cargo.lock")).filter(|l| l.is_file());
    Ok(FnkitSource::Path { crate_dir, lock })
}

/// Without `--fnkit-path` or `--fnkit-git`: the fnkit repository this tool was built from, when it
/// is still there (fnkit is not on crates.io).
fn default_source() -> Result<FnkitSource> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    resolve_fnkit_path(&repo).map_err(|_| {
        fail!(
            "where should the function get fnkit from? Pass --fnkit-path DIR (the fnkit \
             repository or its crates/fnkit) or --fnkit-git URL"
        )
    })
}

fn shape_name(shape: Shape) -> &'static str {
    match shape {
        Shape::Typed => "typed",
        Shape::Http => "HTTP",
        Shape::Event => "CloudEvent",
    }
}

/// A string as a TOML basic string (quotes included).
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Replaces each `{{key}}` of `template`.
fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (key, value) in vars {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

/// The new crate's files, relative to its directory.
pub(crate) fn render(name: &str, shape: Shape, source: &FnkitSource) -> Vec<(PathBuf, String)> {
    let fnkit_dep = match source {
        FnkitSource::Path { crate_dir, .. } => format!(
            "fnkit = {{ path = {} }}",
            toml_string(&crate_dir.to_string_lossy())
        ),
        FnkitSource::Git(url) => format!("fnkit = {{ git = {} }}", toml_string(url)),
    };
    let (main, shape_desc, try_it, sample, sam_events) = match shape {
        Shape::Typed => (
            MAIN_TYPED,
            "typed: JSON in, JSON out",
            "curl -H 'content-type: application/json' -d '{\"name\":\"Ada\"}' localhost:8080/",
            "--data '{\"name\":\"Ada\"}'",
            SAM_TYPED,
        ),
        Shape::Http => (
            MAIN_HTTP,
            "HTTP request in, HTTP response out",
            "curl localhost:8080/",
            "--event apigw-v2",
            SAM_HTTP,
        ),
        Shape::Event => (
            MAIN_EVENT,
            "a CloudEvent in, a CloudEvent out",
            "cargo fnkit invoke --event cloudevent-binary",
            "--event eventbridge",
            SAM_EVENT,
        ),
    };
    let vars = [
        ("name", name),
        ("fnkit_dep", fnkit_dep.as_str()),
        ("profile", PROFILE),
        ("shape_desc", shape_desc),
        ("try_it", try_it),
        ("sample", sample),
        ("sam_events", sam_events),
    ];
    let file = |rel: &str, template: &str| (PathBuf::from(rel), fill(template, &vars));
    vec![
        file("Cargo.toml", CARGO_TOML),
        file("src/main.rs", main),
        file("README.md", README),
        file(".gitignore", GITIGNORE),
        file(".cargo/config.toml", CARGO_CONFIG),
        file("Makefile", MAKEFILE),
        file("sam/template.yaml", SAM_TEMPLATE),
        file("sam/samconfig.toml", SAM_CONFIG),
        file("knative/service.yaml", KNATIVE),
        file("openfaas/stack.yml", OPENFAAS),
    ]
}

// The shape's part of the SAM template (under the function's Properties), and its Outputs.
const SAM_TYPED: &str = "      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: BUFFERED

Outputs:
  FunctionUrl:
    Description: The function's URL (POST {\"name\":\"Ada\"})
    Value: !GetAtt FunctionUrl.FunctionUrl";
const SAM_HTTP: &str = "      Events:
        Api:
          Type: HttpApi
          Properties:
            Path: /{proxy+}
            Method: ANY
        Root:
          Type: HttpApi
          Properties:
            Path: /
            Method: ANY

Outputs:
  ApiUrl:
    Description: The HTTP API's endpoint
    Value: !Sub https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/";
const SAM_EVENT: &str = "      Events:
        Events:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source:
                - com.example.orders

Outputs:
  FunctionArn:
    Description: The function's ARN (an EventBridge target for source com.example.orders)
    Value: !GetAtt Function.Arn";

/// Writes `Cargo.lock`: from fnkit's own lock file when there is one (the versions fnkit was tested
/// with, and a build that works offline), else resolved offline, else online. Says which.
fn write_lockfile(dir: &Path, source: &FnkitSource) -> String {
    let manifest = dir.join("Cargo.toml");
    let cargo = |args: &[&str]| {
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(args)
            .arg("--manifest-path")
            .arg(&manifest)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // idna's Unicode tables (ICU4X), which `url` links for host names, are 126 KB of every
    // binary: the stub adapter, as fnkit's own lock file pins it, refuses non-ASCII host names
    // instead (docs/cli.md, "Cargo.lock").
    let pin_idna = || {
        let pin = [
            "update",
            "-p",
            "idna_adapter",
            "--precise",
            IDNA_ADAPTER_STUB,
        ];
        // Best effort: a lock file that cannot take the pin builds as it is.
        let _pinned = cargo(&[&pin[..], &["--offline"]].concat()) || cargo(&pin);
    };
    if let FnkitSource::Path {
        lock: Some(lock), ..
    } = source
    {
        if fs::copy(lock, dir.join("Cargo.lock")).is_ok() {
            // Resolving against the seed keeps its versions and drops what the crate does not use.
            let meta = ["metadata", "--format-version", "1"];
            if cargo(&[&meta[..], &["--offline"]].concat()) || cargo(&meta) {
                pin_idna();
                return format!("Cargo.lock seeded from {}", lock.display());
            }
        }
    }
    if cargo(&["generate-lockfile", "--offline"]) || cargo(&["generate-lockfile"]) {
        pin_idna();
        "Cargo.lock generated".to_owned()
    } else {
        "no Cargo.lock yet: the first build resolves one".to_owned()
    }
}

/// The version of `idna_adapter` without Unicode tables (ASCII host names only).
const IDNA_ADAPTER_STUB: &str = "1.0.0";

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    #[test]
    fn names_that_work_on_every_platform_are_accepted() {
        for name in ["hello", "a", "order-events2", "x-1-y"] {
            assert!(validate_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_kubernetes_or_cargo_refuse_are_rejected_with_the_rule() {
        for name in [
            "",
            "Hello",
            "1st",
            "my_fn",
            "ends-",
            "a b",
            "fnkit",
            "test",
            &"a".repeat(64),
        ] {
            let err = validate_name(name).expect_err(name).0;
            assert!(err.contains(&format!("`{name}`")), "{err}");
        }
        let err = validate_name("my_fn").expect_err("underscore").0;
        assert!(err.contains("lower-case letters, digits and `-`"), "{err}");
    }

    #[test]
    fn fnkit_path_accepts_the_repository_or_the_crate() {
        let from_root = resolve_fnkit_path(&repo_root()).expect("the repository");
        let from_crate = resolve_fnkit_path(&repo_root().join("crates/fnkit")).expect("the crate");
        assert_eq!(from_root, from_crate);
        let FnkitSource::Path { crate_dir, lock } = from_root else {
            panic!("a path source")
        };
        assert!(crate_dir.ends_with("crates/fnkit"));
        assert!(lock
            .expect("the repository's Cargo.lock")
            .ends_with("Cargo.lock"));
        let err = resolve_fnkit_path(&repo_root().join("crates")).expect_err("not fnkit");
        assert!(err.0.contains("neither the `fnkit` crate"), "{}", err.0);
    }

    #[test]
    fn templates_render_without_leftover_placeholders() {
        let source = FnkitSource::Git("https://example.invalid/fnkit.git".to_owned());
        for shape in [Shape::Typed, Shape::Http, Shape::Event] {
            let files = render("orders", shape, &source);
            for (path, text) in &files {
                assert!(
                    !text.contains("{{"),
                    "{} keeps a placeholder",
                    path.display()
                );
            }
            let get = |p: &str| {
                files
                    .iter()
                    .find(|(path, _)| path == Path::new(p))
                    .map(|(_, t)| t.as_str())
                    .expect(p)
            };
            let manifest = get("Cargo.toml");
            assert!(manifest.contains("name = \"orders\""));
            assert!(manifest.contains("fnkit = { git = \"https://example.invalid/fnkit.git\" }"));
            assert!(manifest.contains("[profile.release]\nopt-level = \"s\"\nlto = \"fat\""));
            assert!(get("Makefile").contains("release/orders $(ARTIFACTS_DIR)/bootstrap"));
            let sam = get("sam/template.yaml");
            assert!(
                sam.contains("Runtime: provided.al2023") && sam.contains("BuildMethod: makefile")
            );
            assert!(get("knative/service.yaml").contains("name: orders"));
            assert!(get("openfaas/stack.yml").contains("\n  orders:\n"));
            assert!(get("src/main.rs").contains("#[cfg(test)]"));
        }
    }

    #[test]
    fn a_path_with_quotes_is_written_as_a_valid_toml_string() {
        assert_eq!(toml_string(r#"C:\a "b""#), r#""C:\\a \"b\"""#);
    }

    /// The lines of the TOML sections whose header `keep` accepts, without comments and blank
    /// lines, in order.
    fn section_lines(toml: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let mut kept = false;
        let mut lines = Vec::new();
        for line in toml.lines().map(str::trim) {
            if line.starts_with('[') {
                kept = keep(line);
            }
            if kept && !line.is_empty() && !line.starts_with('#') {
                lines.push(line.to_owned());
            }
        }
        lines
    }

    fn profile_lines(toml: &str) -> Vec<String> {
        section_lines(toml, |header| header.starts_with("[profile."))
    }

    /// The musl targets' headers and `rustflags` (a machine's `linker` path is not copied).
    fn musl_lines(toml: &str) -> Vec<String> {
        section_lines(toml, |header| header.contains("linux-musl"))
            .into_iter()
            .filter(|l| l.starts_with('[') || l.starts_with("rustflags"))
            .collect()
    }

    #[test]
    fn the_build_flags_template_follows_the_repository_s() {
        let template = musl_lines(CARGO_CONFIG);
        for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
            let header = format!("[target.{target}]");
            let at = template.iter().position(|l| *l == header).expect(target);
            assert!(
                template
                    .get(at + 1)
                    .is_some_and(|l| l.starts_with("rustflags = [")),
                "{target} has rustflags"
            );
        }
        // When the repository gives its builds flags of its own, new crates get the same.
        if let Ok(repo) = fs::read_to_string(repo_root().join(".cargo/config.toml")) {
            assert_eq!(
                template,
                musl_lines(&repo),
                "templates/cargo-config.toml must carry the repository's musl build flags"
            );
        }
    }

    #[test]
    fn the_profile_template_is_the_workspace_s() {
        let workspace =
            fs::read_to_string(repo_root().join("Cargo.toml")).expect("the workspace Cargo.toml");
        assert_eq!(
            profile_lines(PROFILE),
            profile_lines(&workspace),
            "templates/profile.toml must carry the workspace's [profile.*] sections"
        );
    }
}
