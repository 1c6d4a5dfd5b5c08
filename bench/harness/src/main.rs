//! `make bench`: fnkit's `hello` beside the functions a user would write instead, measured in one
//! interleaved run on this machine. See `bench/README.md`.

mod cold;
mod http1;
mod image;
mod load;
mod procfs;
mod proxied;
mod rapi;
mod report;
mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use cold::{ColdError, Sample};

/// Where a variant runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    Lambda,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Lambda => "lambda",
        }
    }
}

/// One way to run the hello function.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) bin: PathBuf,
    pub(crate) kind: Kind,
    /// Loaded warm with the load generator too.
    pub(crate) warm: bool,
    /// Ours (highlighted), rather than a baseline.
    pub(crate) fnkit: bool,
    /// Added to the variant's (otherwise empty) environment.
    pub(crate) env: &'static [(&'static str, &'static str)],
}

/// Whether a variant could be measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State {
    Ok,
    /// Not built, or the binary does not (yet) do this: reported, never a failure.
    NotAvailable(String),
    /// It should work and did not.
    Failed(String),
}

/// The request bodies of the cold-start runs.
pub(crate) const BODIES: [(&str, usize); 3] = [("14 B", 0), ("1 MiB", 1 << 20), ("6 MiB", 6 << 20)];

/// Cold-start samples of one variant, per body.
#[derive(Debug, Clone)]
pub(crate) struct ColdResult {
    pub(crate) variant: Variant,
    pub(crate) state: State,
    pub(crate) samples: [Vec<Sample>; 3],
    pub(crate) failures: [Vec<String>; 3],
}

/// Warm levels of one variant, one `Vec` per round.
#[derive(Debug, Clone)]
pub(crate) struct WarmResult {
    pub(crate) variant: Variant,
    pub(crate) state: State,
    pub(crate) rounds: Vec<Vec<load::Level>>,
}

/// Size of one binary and its image layer.
#[derive(Debug, Clone)]
pub(crate) struct SizeResult {
    pub(crate) id: &'static str,
    pub(crate) bin: PathBuf,
    pub(crate) bytes: Option<u64>,
    pub(crate) layer: Option<image::Layer>,
}

/// Command-line options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) runs: usize,
    pub(crate) bin_dir: PathBuf,
    pub(crate) hello: PathBuf,
    pub(crate) hello_http_only: PathBuf,
    pub(crate) hello_observed: PathBuf,
    pub(crate) hello_lambda_only: PathBuf,
    pub(crate) hello_knative: PathBuf,
    pub(crate) hello_mt: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) wrk: PathBuf,
    pub(crate) wrk_threads: usize,
    pub(crate) load_secs: u64,
    pub(crate) load_rounds: usize,
    pub(crate) levels: Vec<usize>,
    pub(crate) no_load: bool,
}

const USAGE: &str = "\
usage: harness [options]
  --quick                 short run for CI smoke use (5 runs, 1 s load levels, 1 round)
  --runs N                cold-start runs per variant and body (default 60, at least 30 counts)
  --bin-dir DIR           where the release binaries are (default target/x86_64-unknown-linux-musl/release)
  --hello PATH            fnkit hello, all platforms (default BIN_DIR/hello)
  --hello-http-only PATH  hello built for HTTP only, plain JSON: feature `http` (default BIN_DIR/bench-bins/hello-http-only)
  --hello-observed PATH   hello with metrics and otel compiled in (default BIN_DIR/bench-bins/hello-observed)
  --hello-lambda-only PATH  hello built with Lambda only (default BIN_DIR/bench-bins/hello-lambda-only)
  --hello-knative PATH    hello built for Knative only: HTTP and CloudEvents (default BIN_DIR/bench-bins/hello-knative)
  --hello-mt PATH         hello with fnkit's defaults and `multi-thread`, run with two workers (default BIN_DIR/bench-bins/hello-mt)
  --out DIR               results directory (default bench/results)
  --wrk PATH              load generator (default wrk)
  --wrk-threads N         wrk threads (default 1: the other core is the server's)
  --load-secs S           seconds per load level (default 5)
  --load-rounds R         interleaved load rounds (default 3)
  --levels A,B,..         connection counts (default 1,16,64,256)
  --no-load               skip the warm load
";

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        quick: false,
        runs: 0,
        bin_dir: PathBuf::from("target/x86_64-unknown-linux-musl/release"),
        hello: PathBuf::new(),
        hello_http_only: PathBuf::new(),
        hello_observed: PathBuf::new(),
        hello_lambda_only: PathBuf::new(),
        hello_knative: PathBuf::new(),
        hello_mt: PathBuf::new(),
        out: PathBuf::from("bench/results"),
        wrk: PathBuf::from("wrk"),
        wrk_threads: 1,
        load_secs: 0,
        load_rounds: 0,
        levels: vec![1, 16, 64, 256],
        no_load: false,
    };
    let value = |args: &mut dyn Iterator<Item = String>, name: &str| {
        args.next().ok_or_else(|| format!("{name} needs a value"))
    };
    let number = |v: String, name: &str| -> Result<u64, String> {
        v.parse().map_err(|_| format!("{name}: not a number: {v}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => o.quick = true,
            "--no-load" => o.no_load = true,
            "--runs" => o.runs = number(value(&mut args, &arg)?, &arg)? as usize,
            "--bin-dir" => o.bin_dir = value(&mut args, &arg)?.into(),
            "--hello" => o.hello = value(&mut args, &arg)?.into(),
            "--hello-http-only" => o.hello_http_only = value(&mut args, &arg)?.into(),
            "--hello-observed" => o.hello_observed = value(&mut args, &arg)?.into(),
            "--hello-lambda-only" => o.hello_lambda_only = value(&mut args, &arg)?.into(),
            "--hello-knative" => o.hello_knative = value(&mut args, &arg)?.into(),
            "--hello-mt" => o.hello_mt = value(&mut args, &arg)?.into(),
            "--out" => o.out = value(&mut args, &arg)?.into(),
            "--wrk" => o.wrk = value(&mut args, &arg)?.into(),
            "--wrk-threads" => o.wrk_threads = number(value(&mut args, &arg)?, &arg)? as usize,
            "--load-secs" => o.load_secs = number(value(&mut args, &arg)?, &arg)?,
            "--load-rounds" => o.load_rounds = number(value(&mut args, &arg)?, &arg)? as usize,
            "--levels" => {
                o.levels = value(&mut args, &arg)?
                    .split(',')
                    .map(|v| number(v.to_owned(), "--levels").map(|n| n as usize))
                    .collect::<Result<_, _>>()?;
                o.levels.sort_unstable();
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let default = |v: &mut PathBuf, d: PathBuf| {
        if v.as_os_str().is_empty() {
            *v = d;
        }
    };
    default(&mut o.hello, o.bin_dir.join("hello"));
    let extra = o.bin_dir.join("bench-bins");
    default(&mut o.hello_http_only, extra.join("hello-http-only"));
    default(&mut o.hello_observed, extra.join("hello-observed"));
    default(&mut o.hello_lambda_only, extra.join("hello-lambda-only"));
    default(&mut o.hello_knative, extra.join("hello-knative"));
    default(&mut o.hello_mt, extra.join("hello-mt"));
    if o.runs == 0 {
        o.runs = if o.quick { 5 } else { 60 };
    }
    if o.load_secs == 0 {
        o.load_secs = if o.quick { 1 } else { 5 };
    }
    if o.load_rounds == 0 {
        o.load_rounds = if o.quick { 1 } else { 3 };
    }
    Ok(o)
}

fn variants(o: &Options) -> Vec<Variant> {
    let baseline = |name: &str| o.bin_dir.join(name);
    let v = |id, label, bin: PathBuf, kind, warm, fnkit| Variant {
        id,
        label,
        bin,
        kind,
        warm,
        fnkit,
        env: &[],
    };
    let mut all = vec![
        v(
            "std",
            "std-only limit",
            baseline("std-hello"),
            Kind::Http,
            false,
            false,
        ),
        v(
            "hyper",
            "bare hyper",
            baseline("hyper-hello"),
            Kind::Http,
            true,
            false,
        ),
        // The same bare hyper linked as fnkit's builds are (non-PIE, `.cargo/config.toml`), from
        // BIN_DIR/bench-bins/hyper-hello-nopie: fnkit's own share of a start, measured
        // (informational; the targets compare with the static-pie build users get).
        v(
            "hyper-static",
            "bare hyper, non-PIE (linked as fnkit is)",
            baseline("bench-bins/hyper-hello-nopie"),
            Kind::Http,
            false,
            false,
        ),
        // Bare hyper plus only what the platform contracts ask of any function server (JSON in
        // and out, a header-read timeout and a time limit, SIGTERM), linked as hyper-static is,
        // from BIN_DIR/bench-bins/hyper-contract-nopie: the floor under the HTTP-only cold-start
        // and warm targets (informational).
        v(
            "hyper-contract",
            "bare hyper + the contracts' least (JSON, time limits, SIGTERM), non-PIE",
            baseline("bench-bins/hyper-contract-nopie"),
            Kind::Http,
            true,
            false,
        ),
        v(
            "axum",
            "axum",
            baseline("axum-hello"),
            Kind::Http,
            true,
            false,
        ),
        v(
            "fnkit",
            "fnkit hello (default features)",
            o.hello.clone(),
            Kind::Http,
            true,
            true,
        ),
        v(
            "fnkit-http-only",
            "fnkit hello (http only, plain JSON)",
            o.hello_http_only.clone(),
            Kind::Http,
            false,
            true,
        ),
        // Knative's build: HTTP and CloudEvents (what `http only` leaves out, measured).
        v(
            "fnkit-knative",
            "fnkit hello (Knative: http + CloudEvents)",
            o.hello_knative.clone(),
            Kind::Http,
            false,
            true,
        ),
        // Issue 11: the same hello with metrics and OpenTelemetry compiled in (and not
        // configured, as a function that does not use them): what they cost at start.
        v(
            "fnkit-obs",
            "fnkit hello + metrics + otel",
            o.hello_observed.clone(),
            Kind::Http,
            false,
            true,
        ),
        // hello built with `multi-thread` (off by default) and run with two worker threads, as a
        // CPU quota of two CPUs would give it: warm throughput with 1 and 2 workers side by side.
        Variant {
            env: &[("FNKIT_WORKERS", "2")],
            ..v(
                "fnkit-2w",
                "fnkit hello + multi-thread, 2 workers",
                o.hello_mt.clone(),
                Kind::Http,
                true,
                true,
            )
        },
        v(
            "lambda_runtime",
            "bare lambda_runtime",
            baseline("lambda-hello"),
            Kind::Lambda,
            false,
            false,
        ),
        v(
            "fnkit-lambda",
            "fnkit hello on Lambda",
            o.hello.clone(),
            Kind::Lambda,
            false,
            true,
        ),
        v(
            "fnkit-obs-lambda",
            "fnkit hello + metrics + otel on Lambda",
            o.hello_observed.clone(),
            Kind::Lambda,
            false,
            true,
        ),
        v(
            "fnkit-lambda-only",
            "fnkit hello (lambda only)",
            o.hello_lambda_only.clone(),
            Kind::Lambda,
            false,
            true,
        ),
        // The same handler, Lambda only, on lambda_runtime's loop through
        // `fnkit::lambda::service`: fnkit's loop against lambda_runtime's, measured.
        v(
            "fnkit-lambda_runtime",
            "fnkit hello on lambda_runtime",
            baseline("fnkit-lambda-runtime-hello"),
            Kind::Lambda,
            false,
            true,
        ),
    ];
    // OpenFaaS: hello in direct mode, and behind a stand-in watchdog (bench/harness/src/proxied.rs).
    all.extend(proxied::variants(&o.hello, &o.bin_dir));
    all
}

fn cold_once(v: &Variant, body: &Arc<Vec<u8>>) -> Result<Sample, ColdError> {
    match v.kind {
        Kind::Http => cold::http(&v.bin, v.env, body),
        Kind::Lambda => rapi::lambda(&v.bin, body),
    }
}

/// Whether a variant can run at all: binary present and one cold start that works.
fn probe(v: &Variant, body: &Arc<Vec<u8>>) -> State {
    if !v.bin.is_file() {
        return State::NotAvailable(format!("{} not built", v.bin.display()));
    }
    let mut last = String::new();
    for _ in 0..3 {
        match cold_once(v, body) {
            Ok(_) => return State::Ok,
            Err(ColdError::NotAvailable(why)) => return State::NotAvailable(why),
            Err(ColdError::Failed(why)) => last = why,
        }
    }
    State::Failed(last)
}

fn cold_phase(o: &Options, vs: &[Variant]) -> Vec<ColdResult> {
    let bodies: Vec<Arc<Vec<u8>>> = BODIES
        .iter()
        .map(|&(_, size)| Arc::new(cold::body_of_size(size)))
        .collect();
    let mut results: Vec<ColdResult> = vs
        .iter()
        .map(|v| {
            let state = probe(v, &bodies[0]);
            match &state {
                State::Ok => eprintln!("  {:<18} {:<6} ok", v.id, v.kind.as_str()),
                State::NotAvailable(why) => eprintln!("  {:<18} n/a: {why}", v.id),
                State::Failed(why) => eprintln!("  {:<18} FAILED: {why}", v.id),
            }
            ColdResult {
                variant: v.clone(),
                state,
                samples: Default::default(),
                failures: Default::default(),
            }
        })
        .collect();
    // One more untimed start each, so every binary is in the page cache before timing.
    for r in results.iter().filter(|r| r.state == State::Ok) {
        let _ = cold_once(&r.variant, &bodies[0]);
    }
    let n = results.len();
    let started = Instant::now();
    for run in 0..o.runs {
        for (b, body) in bodies.iter().enumerate() {
            for k in 0..n {
                // Rotate the order every run, so no variant always follows the same one.
                let r = &mut results[(k + run) % n];
                if r.state != State::Ok {
                    continue;
                }
                match cold_once(&r.variant, body) {
                    Ok(s) => r.samples[b].push(s),
                    Err(e) => r.failures[b].push(e.to_string()),
                }
            }
        }
        if (run + 1) % 10 == 0 || run + 1 == o.runs {
            eprintln!(
                "  cold runs {}/{} ({:.0} s)",
                run + 1,
                o.runs,
                started.elapsed().as_secs_f64()
            );
        }
    }
    for r in &mut results {
        for (b, (body, _)) in BODIES.iter().enumerate() {
            let fails = &r.failures[b];
            if r.state == State::Ok && fails.len() > r.samples[b].len() {
                r.state = State::Failed(format!(
                    "{} of {} runs with a {body} body failed, first: {}",
                    fails.len(),
                    o.runs,
                    fails[0]
                ));
            }
        }
    }
    results
}

fn warm_phase(o: &Options, vs: &[Variant], cold: &[ColdResult]) -> Result<Vec<WarmResult>, String> {
    let wrk = load::Wrk::new(&o.wrk, o.wrk_threads, &o.out)?;
    eprintln!(
        "  load generator: {} (-t{}), {} s per level, {} round(s), levels {:?}",
        wrk.version, wrk.threads, o.load_secs, o.load_rounds, o.levels
    );
    let mut results: Vec<WarmResult> = vs
        .iter()
        .filter(|v| v.warm)
        .map(|v| {
            let state = cold
                .iter()
                .find(|c| c.variant.id == v.id)
                .map_or(State::Ok, |c| c.state.clone());
            WarmResult {
                variant: v.clone(),
                state,
                rounds: Vec::new(),
            }
        })
        .collect();
    let n = results.len();
    let warmup_secs = if o.quick { 0 } else { 1 };
    for round in 0..o.load_rounds {
        for k in 0..n {
            let r = &mut results[(k + round) % n];
            if r.state != State::Ok {
                continue;
            }
            let t = Instant::now();
            let v = &r.variant;
            match load::run_levels(&wrk, &v.bin, v.env, &o.levels, o.load_secs, warmup_secs) {
                Ok(levels) => r.rounds.push(levels),
                Err(e) => r.state = State::Failed(format!("under load: {e}")),
            }
            eprintln!(
                "  load round {}/{} {:<8} {:.0} s",
                round + 1,
                o.load_rounds,
                r.variant.id,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let _ = std::fs::remove_file(&wrk.script);
    Ok(results)
}

fn sizes(o: &Options, vs: &[Variant]) -> Vec<SizeResult> {
    let mut out: Vec<SizeResult> = Vec::new();
    let mut push = |id: &'static str, bin: &Path| {
        if out.iter().any(|s| s.bin == bin) {
            return;
        }
        let bytes = std::fs::metadata(bin).ok().map(|m| m.len());
        let layer = bytes.and_then(|_| image::layer(bin).ok());
        out.push(SizeResult {
            id,
            bin: bin.to_owned(),
            bytes,
            layer,
        });
    };
    for v in vs {
        push(v.id, &v.bin);
    }
    let _ = o;
    out
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("harness: {e}");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&o.out) {
        eprintln!("harness: {}: {e}", o.out.display());
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let machine = report::Machine::read();
    let vs = variants(&o);
    eprintln!(
        "bench: {} runs per variant and body, interleaved{}",
        o.runs,
        if o.quick { " (quick)" } else { "" }
    );
    let cold = cold_phase(&o, &vs);
    let warm = if o.no_load {
        Vec::new()
    } else {
        match warm_phase(&o, &vs, &cold) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("harness: warm load: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let sizes = sizes(&o, &vs);
    let machine = report::Machine {
        loadavg_at_end: report::loadavg(),
        ..machine
    };
    let run = report::Run {
        options: o,
        machine,
        cold,
        warm,
        sizes,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let targets = report::targets(&run);
    match report::write_all(&run, &targets) {
        Ok(markdown) => println!("{markdown}"),
        Err(e) => {
            eprintln!("harness: writing results: {e}");
            return ExitCode::from(2);
        }
    }
    let failed = targets
        .iter()
        .filter(|t| t.result == report::Verdict::Fail)
        .count();
    if failed > 0 {
        eprintln!("bench: {failed} target(s) FAILED");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
