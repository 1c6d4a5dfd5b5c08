//! `cargo fnkit`: create, run, invoke, build, package and deploy fnkit functions.
//!
//! The binary is `cargo-fnkit`, so cargo runs it for `cargo fnkit …` (passing `fnkit` as the first
//! argument, which is dropped here); `cargo-fnkit …` works as well. Each subcommand lives in its own
//! module; `docs/cli.md` in the repository is the user's guide.

mod build;
mod deploy;
mod events;
mod http1;
mod image;
mod invoke;
mod new;
mod project;
mod run;
mod zip;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A failure of the tool: one message, printed as `error: …`, exit status 1.
#[derive(Debug)]
struct Failure(String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(e.to_string())
    }
}

/// What every subcommand returns.
type Result<T, E = Failure> = std::result::Result<T, E>;

/// Builds a [`Failure`] from a format string.
macro_rules! fail {
    ($($arg:tt)*) => { $crate::Failure(format!($($arg)*)) };
}
pub(crate) use fail;

/// Writes a line of the tool's own output (stdout), ignoring a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
pub(crate) use say;

/// cargo fnkit: serverless functions in Rust, one handler for AWS Lambda, Knative, OpenFaaS and
/// local HTTP.
#[derive(Debug, Parser)]
#[command(name = "cargo fnkit", bin_name = "cargo fnkit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create a function crate in ./NAME (templates are built into the tool; nothing is downloaded)
    New(NewArgs),
    /// Build (debug by default) and serve the function of the crate in the current directory
    Run(RunArgs),
    /// Send an event to a function that `cargo fnkit run` serves, in the platform's shape
    Invoke(InvokeArgs),
    /// Build the static musl release binary (and with --zip, Lambda's bootstrap.zip)
    Build(BuildArgs),
    /// Build the function's OCI image (FROM scratch) into a layout dir and/or push it
    Image(ImageArgs),
    /// Deploy with the platform's own tool (sam, kn, faas-cli); --dry-run prints the commands
    Deploy(DeployArgs),
}

/// The handler shape of a new function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shape {
    /// typed JSON in, JSON out (`{"name":"Ada"}` → `{"message":"Hello, Ada!"}`)
    Typed,
    /// an `http::Request` in, an `http::Response` out (`fnkit::http`)
    Http,
    /// a CloudEvent in, an optional CloudEvent out (`fnkit::events`)
    Event,
}

/// Arguments of `cargo fnkit new`.
#[derive(Debug, Args)]
struct NewArgs {
    /// The crate's name (also the binary's and the function's)
    name: String,
    /// The handler shape
    #[arg(long, value_enum, default_value_t = Shape::Typed)]
    shape: Shape,
    /// Depend on fnkit by path: the `fnkit` crate's directory or the fnkit repository's root
    /// (its Cargo.lock then seeds the new crate's)
    #[arg(long, value_name = "DIR", conflicts_with = "fnkit_git")]
    fnkit_path: Option<PathBuf>,
    /// Depend on fnkit from a git repository
    #[arg(long, value_name = "URL")]
    fnkit_git: Option<String>,
}

/// The platform a command acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Platform {
    /// plain HTTP on PORT
    Local,
    /// AWS Lambda: a Runtime API for the function, an Invoke API on --port
    Lambda,
    /// Knative Serving: PORT, K_SERVICE, K_REVISION, K_CONFIGURATION
    Knative,
    /// OpenFaaS: an of-watchdog (HTTP mode) front on --port
    Openfaas,
}

impl Platform {
    /// The name `--as` takes.
    fn as_str(self) -> &'static str {
        match self {
            Platform::Local => "local",
            Platform::Lambda => "lambda",
            Platform::Knative => "knative",
            Platform::Openfaas => "openfaas",
        }
    }
}

/// Arguments of `cargo fnkit run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// The platform to emulate
    #[arg(long = "as", value_enum, default_value_t = Platform::Local)]
    platform: Platform,
    /// Where callers reach the function (the Invoke API on lambda, the watchdog on openfaas)
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Build with the release profile
    #[arg(long)]
    release: bool,
    /// Per-invocation limit in seconds: Lambda's Timeout, or the watchdog's exec_timeout
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
    /// At most this many requests at once on openfaas (the watchdog's max_inflight; 0 = no limit)
    #[arg(long, value_name = "N", default_value_t = 0)]
    max_inflight: usize,
    /// Path of the crate's Cargo.toml (default: the one in the current directory)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
}

/// Arguments of `cargo fnkit invoke`.
#[derive(Debug, Args)]
struct InvokeArgs {
    /// A sample event built into the tool, in the shape AWS (or CloudEvents) documents
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(events::NAMES))]
    event: Option<String>,
    /// The payload: replaces the event's body / message / detail / data (alone: the whole request)
    #[arg(long, value_name = "JSON", conflicts_with = "data_file")]
    data: Option<String>,
    /// Like --data, read from a file
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Where `cargo fnkit run` listens
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The platform `cargo fnkit run` emulates (lambda posts to the Invoke API; others send HTTP)
    #[arg(long = "as", value_enum, default_value_t = Platform::Local)]
    platform: Platform,
}

/// Arguments of `cargo fnkit build`.
#[derive(Debug, Args, Clone)]
struct BuildArgs {
    /// Build for aarch64-unknown-linux-musl (Graviton) instead of x86_64
    #[arg(long)]
    arm64: bool,
    /// Also write Lambda's bootstrap.zip (one entry `bootstrap`, mode 0755, reproducible)
    #[arg(long)]
    zip: bool,
    /// Path of the crate's Cargo.toml (default: the one in the current directory)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
}

/// Arguments of `cargo fnkit image`.
#[derive(Debug, Args)]
struct ImageArgs {
    /// The image reference to push to (and to name in the layout's index)
    #[arg(long, value_name = "REF")]
    tag: Option<String>,
    /// Push the image to --tag
    #[arg(long, requires = "tag")]
    push: bool,
    /// Where to write the OCI image layout (default: <target>/fnkit-image/<name>)
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Build an arm64 image
    #[arg(long)]
    arm64: bool,
    /// A CA bundle to put at /etc/ssl/certs/ca-certificates.crt (default: the system's, when the
    /// function depends on a TLS crate)
    #[arg(long, value_name = "PATH")]
    ca_certs: Option<PathBuf>,
    /// Never include a CA bundle
    #[arg(long, conflicts_with = "ca_certs")]
    no_ca_certs: bool,
    /// Path of the crate's Cargo.toml (default: the one in the current directory)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
}

/// Where `cargo fnkit deploy` deploys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// sam build && sam deploy with sam/template.yaml
    Lambda,
    /// kn service create NAME --image REF@DIGEST --force
    Knative,
    /// faas-cli deploy -f openfaas/stack.yml
    Openfaas,
}

/// Arguments of `cargo fnkit deploy`.
#[derive(Debug, Args)]
struct DeployArgs {
    /// The platform
    #[arg(value_enum)]
    target: Target,
    /// Print the commands instead of running them
    #[arg(long)]
    dry_run: bool,
    /// The image (default: the last `image --push`, pinned by its digest); knative and openfaas
    #[arg(long, value_name = "REF")]
    image: Option<String>,
    /// Deploy for arm64 (Graviton); lambda
    #[arg(long)]
    arm64: bool,
    /// Path of the crate's Cargo.toml (default: the one in the current directory)
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
}

/// The arguments without the `fnkit` cargo inserts when it runs `cargo-fnkit` for `cargo fnkit`.
fn user_args(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "fnkit") {
        args.remove(1);
    }
    args
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(user_args(std::env::args_os().collect()));
    let outcome = match cli.command {
        Command::New(args) => new::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Invoke(args) => invoke::run(&args),
        Command::Build(args) => build::run(&args).map(|_| ()),
        Command::Image(args) => image::run(&args),
        Command::Deploy(args) => deploy::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cargo_s_fnkit_argument_is_dropped_once() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            user_args(args(&["cargo-fnkit", "fnkit", "new", "x"])),
            args(&["cargo-fnkit", "new", "x"])
        );
        assert_eq!(
            user_args(args(&["cargo-fnkit", "new", "fnkit"])),
            args(&["cargo-fnkit", "new", "fnkit"])
        );
    }
}
