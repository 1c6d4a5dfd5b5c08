//! `cargo fnkit deploy lambda|knative|openfaas`: the platform's own tool, run with the files
//! `cargo fnkit new` wrote (sam/template.yaml, openfaas/stack.yml) and the image `cargo fnkit
//! image --push` pushed. `--dry-run` prints the commands instead.

use std::path::Path;
use std::process::Command;

use crate::project::Project;
use crate::{fail, say, DeployArgs, Result, Target};

/// One command to run in the crate's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    env: Vec<(String, String)>,
    program: &'static str,
    args: Vec<String>,
}

impl Step {
    fn new(program: &'static str, args: &[&str]) -> Step {
        Step {
            env: Vec::new(),
            program,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    fn env(mut self, name: &str, value: &str) -> Step {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The command as a shell line.
    pub(crate) fn to_shell(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(v)))
            .collect();
        words.push(self.program.to_owned());
        words.extend(self.args.iter().map(|a| quote(a)));
        words.join(" ")
    }
}

/// Quotes a shell word when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `cargo fnkit deploy`.
pub(crate) fn run(args: &DeployArgs) -> Result<()> {
    let project = Project::load(args.manifest_path.as_deref())?;
    let steps = steps(&project, args)?;
    if args.dry_run {
        say!("# in {}", project.dir.display());
        for step in &steps {
            say!("{}", step.to_shell());
        }
        return Ok(());
    }
    for step in &steps {
        say!("+ {}", step.to_shell());
        let status = Command::new(step.program)
            .args(&step.args)
            .envs(step.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&project.dir)
            .status()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => missing_tool(step.program),
                _ => fail!("cannot run {}: {e}", step.program),
            })?;
        if !status.success() {
            return Err(fail!("`{}` failed ({status})", step.to_shell()));
        }
    }
    Ok(())
}

fn missing_tool(program: &str) -> crate::Failure {
    let how = match program {
        "sam" => "install the AWS SAM CLI: `pip install aws-sam-cli` (or see https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/install-sam-cli.html)",
        "kn" => "install the Knative CLI: see https://knative.dev/docs/client/install-kn/",
        "faas-cli" => "install the OpenFaaS CLI: `curl -sSL https://cli.openfaas.com | sh` (or see https://github.com/openfaas/faas-cli)",
        _ => "install it",
    };
    fail!("`{program}` was not found on PATH: {how}")
}

/// The commands a deployment runs.
fn steps(project: &Project, args: &DeployArgs) -> Result<Vec<Step>> {
    let dir = &project.dir;
    match args.target {
        Target::Lambda => {
            if args.image.is_some() {
                return Err(fail!(
                    "--image is for knative and openfaas: Lambda runs the zip `sam build` makes"
                ));
            }
            let template = "sam/template.yaml";
            need_file(dir, template)?;
            let config = dir.join("sam/samconfig.toml").display().to_string();
            let arch = if args.arm64 { "arm64" } else { "x86_64" };
            let param = format!("Architecture={arch}");
            Ok(vec![
                Step::new(
                    "sam",
                    &[
                        "build",
                        "--template-file",
                        template,
                        "--config-file",
                        &config,
                        "--build-in-source",
                        "--parameter-overrides",
                        &param,
                    ],
                )
                .env("ARCH", arch),
                Step::new(
                    "sam",
                    &[
                        "deploy",
                        "--template-file",
                        ".aws-sam/build/template.yaml",
                        "--config-file",
                        &config,
                        "--parameter-overrides",
                        &param,
                    ],
                ),
            ])
        }
        Target::Knative => {
            let image = image(project, args.image.as_deref())?;
            Ok(vec![Step::new(
                "kn",
                &[
                    "service",
                    "create",
                    &project.name,
                    "--image",
                    &image,
                    "--force",
                ],
            )])
        }
        Target::Openfaas => {
            let stack = "openfaas/stack.yml";
            need_file(dir, stack)?;
            let image = image(project, args.image.as_deref())?;
            Ok(vec![
                Step::new("faas-cli", &["deploy", "-f", stack]).env("FNKIT_IMAGE", &image)
            ])
        }
    }
}

fn need_file(dir: &Path, rel: &str) -> Result<()> {
    if dir.join(rel).is_file() {
        Ok(())
    } else {
        Err(fail!(
            "{} is missing (`cargo fnkit new` writes one; copy it from a new crate)",
            dir.join(rel).display()
        ))
    }
}

/// `--image`, else the last `cargo fnkit image --push`, pinned by its digest.
fn image(project: &Project, given: Option<&str>) -> Result<String> {
    if let Some(image) = given {
        return Ok(image.to_owned());
    }
    let path = project.last_push();
    let text = std::fs::read_to_string(&path).map_err(|_| {
        fail!(
            "no image to deploy: push one with `cargo fnkit image --push --tag REF` (it is \
             remembered in {}) or pass --image REF",
            path.display()
        )
    })?;
    let record: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| fail!("{} is not valid JSON: {e}", path.display()))?;
    let (Some(reference), Some(digest)) = (record["reference"].as_str(), record["digest"].as_str())
    else {
        return Err(fail!("{} lacks reference or digest", path.display()));
    };
    Ok(format!("{}@{digest}", without_tag(reference)))
}

/// `host/name:tag` → `host/name` (a port's colon is kept).
fn without_tag(reference: &str) -> &str {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].find(':') {
        Some(i) => &reference[..name_start + i],
        None => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_dropped_but_a_registry_port_is_not() {
        assert_eq!(
            without_tag("127.0.0.1:5000/hello:v1"),
            "127.0.0.1:5000/hello"
        );
        assert_eq!(without_tag("ghcr.io/me/hello"), "ghcr.io/me/hello");
    }

    #[test]
    fn shell_lines_quote_what_needs_it() {
        let step = Step::new("kn", &["service", "create", "a b"]).env("X", "it's");
        assert_eq!(step.to_shell(), r"X='it'\''s' kn service create 'a b'");
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        assert!(missing_tool("kn")
            .0
            .contains("knative.dev/docs/client/install-kn"));
        assert!(missing_tool("sam").0.contains("pip install aws-sam-cli"));
    }
}
