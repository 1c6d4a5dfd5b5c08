//! What a run found: `latest.json`, `latest.md` (also printed), `latest.svg`, and the targets of
//! issue 12 checked as ratios within this one run.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::stats::{median, Summary};
use crate::{ColdResult, Kind, Options, SizeResult, State, WarmResult, BODIES};

/// The machine the run happened on.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cores: usize,
    pub(crate) cpu: String,
    pub(crate) kernel: String,
    pub(crate) mem_total: String,
    pub(crate) loadavg_at_start: String,
    /// Filled in when the run ends.
    pub(crate) loadavg_at_end: String,
    pub(crate) rustc: String,
    pub(crate) date: String,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: field(&file("/proc/cpuinfo"), "model name"),
            kernel: format!("Linux {}", file("/proc/sys/kernel/osrelease").trim()),
            mem_total: field(&file("/proc/meminfo"), "MemTotal"),
            loadavg_at_start: loadavg(),
            loadavg_at_end: String::new(),
            rustc,
            date: utc_now(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything measured in one run.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) options: Options,
    pub(crate) machine: Machine,
    pub(crate) cold: Vec<ColdResult>,
    pub(crate) warm: Vec<WarmResult>,
    pub(crate) sizes: Vec<SizeResult>,
    pub(crate) elapsed_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    NotAvailable,
    /// A measurement that decides a default rather than a promise: "within" or "over" its limit,
    /// never a failure of the run (issue 11's cost of metrics and OpenTelemetry).
    Within,
    Over,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotAvailable => "n/a",
            Verdict::Within => "within (info)",
            Verdict::Over => "over (info)",
        }
    }
}

/// One promise of issue 12 (or a decision of issue 11), checked.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) id: &'static str,
    pub(crate) what: &'static str,
    /// `ours / theirs` (or the reason it could not be computed).
    pub(crate) measured: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) limit: f64,
    /// The limit is a floor (throughput) rather than a ceiling.
    pub(crate) higher_is_better: bool,
    pub(crate) result: Verdict,
}

type Figure = Result<f64, (Verdict, String)>;

fn state_err(id: &str, state: &State) -> (Verdict, String) {
    match state {
        State::Ok => (Verdict::Fail, format!("{id}: no samples")),
        State::NotAvailable(why) => (Verdict::NotAvailable, format!("{id} n/a ({why})")),
        State::Failed(why) => (Verdict::Fail, format!("{id} failed ({why})")),
    }
}

fn cold_of<'a>(run: &'a Run, id: &str) -> Result<&'a ColdResult, (Verdict, String)> {
    let c = run
        .cold
        .iter()
        .find(|c| c.variant.id == id)
        .ok_or((Verdict::NotAvailable, format!("{id}: not measured")))?;
    match c.state {
        State::Ok => Ok(c),
        ref s => Err(state_err(id, s)),
    }
}

fn cold_median(run: &Run, id: &str) -> Figure {
    let c = cold_of(run, id)?;
    let v: Vec<f64> = c.samples[0].iter().map(|s| s.first_ms).collect();
    median(&v).ok_or_else(|| state_err(id, &State::Ok))
}

fn rss_median(run: &Run, id: &str) -> Figure {
    let c = cold_of(run, id)?;
    let v: Vec<f64> = c.samples[0].iter().map(|s| s.hwm_kib as f64).collect();
    median(&v).ok_or_else(|| state_err(id, &State::Ok))
}

fn size_of(run: &Run, id: &str) -> Figure {
    run.sizes
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.bytes)
        .map(|b| b as f64)
        .ok_or((Verdict::NotAvailable, format!("{id}: not built")))
}

/// Medians over rounds of (req/s, p99 ms) at `conns` connections.
fn warm_at(run: &Run, id: &str, conns: usize) -> Result<(f64, f64), (Verdict, String)> {
    let w = run
        .warm
        .iter()
        .find(|w| w.variant.id == id)
        .ok_or((Verdict::NotAvailable, format!("{id}: no warm load run")))?;
    if w.state != State::Ok {
        return Err(state_err(id, &w.state));
    }
    let at: Vec<_> = w
        .rounds
        .iter()
        .filter_map(|r| r.iter().find(|l| l.conns == conns))
        .collect();
    let rps = median(&at.iter().map(|l| l.rps).collect::<Vec<_>>());
    let p99 = median(&at.iter().map(|l| l.p99_ms).collect::<Vec<_>>());
    match (rps, p99) {
        (Some(r), Some(p)) => Ok((r, p)),
        _ => Err((
            Verdict::NotAvailable,
            format!("{id}: no level with {conns} connections"),
        )),
    }
}

fn check(
    id: &'static str,
    what: &'static str,
    ours: Figure,
    theirs: Figure,
    limit: f64,
    higher_is_better: bool,
    unit: &str,
) -> Target {
    let (measured, ratio, result) = match (ours, theirs) {
        (Ok(a), Ok(b)) if b > 0.0 => {
            let r = a / b;
            let ok = if higher_is_better {
                r >= limit
            } else {
                r <= limit
            };
            (
                format!("{r:.3} ({} / {} {unit})", fmt_num(a), fmt_num(b)),
                Some(r),
                if ok { Verdict::Pass } else { Verdict::Fail },
            )
        }
        (Ok(_), Ok(_)) => ("baseline is zero".into(), None, Verdict::Fail),
        (Err((v, why)), _) | (_, Err((v, why))) => (why, None, v),
    };
    Target {
        id,
        what,
        measured,
        ratio,
        limit,
        higher_is_better,
        result,
    }
}

/// A check that informs a default instead of failing the run.
fn decision(mut t: Target) -> Target {
    t.result = match t.result {
        Verdict::Pass => Verdict::Within,
        Verdict::Fail => Verdict::Over,
        other => other,
    };
    t
}

/// The gzipped image layer of a variant's binary, in bytes.
fn layer_gz_of(run: &Run, id: &str) -> Figure {
    run.sizes
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.layer.as_ref())
        .map(|l| l.gz_bytes as f64)
        .ok_or((Verdict::NotAvailable, format!("{id}: no image layer")))
}

/// The targets of issue 12 (performance: the default build against bare hyper and bare
/// `lambda_runtime`), and issue 11's question: what metrics and OpenTelemetry cost when compiled
/// in (on by default only under 2 % of cold start and RSS).
pub(crate) fn targets(run: &Run) -> Vec<Target> {
    let warm = |id| warm_at(run, id, 64);
    vec![
        check(
            "http-cold-vs-hyper",
            "default hello, HTTP cold start (median) <= 1.0 x bare hyper",
            cold_median(run, "fnkit"),
            cold_median(run, "hyper"),
            1.0,
            false,
            "ms",
        ),
        // fnkit's own share: the same comparison against bare hyper linked non-PIE, as fnkit is.
        decision(check(
            "http-cold-vs-hyper-static",
            "default hello, HTTP cold start <= 1.0 x bare hyper linked non-PIE as fnkit is (fnkit's own share)",
            cold_median(run, "fnkit"),
            cold_median(run, "hyper-static"),
            1.0,
            false,
            "ms",
        )),
        check(
            "http-cold-vs-std",
            "default hello, HTTP cold start (median) <= 1.3 x the std-only limit",
            cold_median(run, "fnkit"),
            cold_median(run, "std"),
            1.3,
            false,
            "ms",
        ),
        check(
            "http-rss-vs-hyper",
            "default hello, HTTP peak RSS <= 1.3 x bare hyper",
            rss_median(run, "fnkit"),
            rss_median(run, "hyper"),
            1.3,
            false,
            "KiB",
        ),
        check(
            "lambda-init-vs-lambda_runtime",
            "default hello, Lambda init (median) <= 0.8 x bare lambda_runtime",
            cold_median(run, "fnkit-lambda"),
            cold_median(run, "lambda_runtime"),
            0.8,
            false,
            "ms",
        ),
        check(
            "lambda-rss-vs-lambda_runtime",
            "default hello, Lambda peak RSS <= 1.0 x bare lambda_runtime",
            rss_median(run, "fnkit-lambda"),
            rss_median(run, "lambda_runtime"),
            1.0,
            false,
            "KiB",
        ),
        check(
            "http-only-cold-vs-hyper",
            "HTTP-only hello, cold start (median) <= 0.9 x bare hyper",
            cold_median(run, "fnkit-http-only"),
            cold_median(run, "hyper"),
            0.9,
            false,
            "ms",
        ),
        // The floor under the target above: bare hyper with only what the contracts ask of any
        // function server, linked non-PIE as fnkit is. Over 0.9: in this run, a server on hyper
        // doing only what the contracts ask misses the target too (BENCHMARKS.md, fifth pass).
        decision(check(
            "contract-floor-cold-vs-hyper",
            "floor: bare hyper + the contracts' least, non-PIE, cold start <= 0.9 x bare hyper",
            cold_median(run, "hyper-contract"),
            cold_median(run, "hyper"),
            0.9,
            false,
            "ms",
        )),
        decision(check(
            "http-only-cold-vs-contract-floor",
            "HTTP-only hello, cold start <= 1.0 x that floor (fnkit's own share above it)",
            cold_median(run, "fnkit-http-only"),
            cold_median(run, "hyper-contract"),
            1.0,
            false,
            "ms",
        )),
        check(
            "http-only-rss-vs-hyper",
            "HTTP-only hello, peak RSS <= 1.1 x bare hyper",
            rss_median(run, "fnkit-http-only"),
            rss_median(run, "hyper"),
            1.1,
            false,
            "KiB",
        ),
        check(
            "http-only-size-vs-hyper",
            "HTTP-only hello, binary <= 1.3 x bare hyper",
            size_of(run, "fnkit-http-only"),
            size_of(run, "hyper"),
            1.3,
            false,
            "B",
        ),
        check(
            "warm-rps-64-vs-hyper",
            "warm throughput at 64 connections, one worker >= 0.95 x bare hyper",
            warm("fnkit").map(|w| w.0),
            warm("hyper").map(|w| w.0),
            0.95,
            true,
            "req/s",
        ),
        // The same floor, warm: bare hyper that also reads and writes JSON and arms the
        // contracts' timers, against bare hyper; and fnkit against it.
        decision(check(
            "contract-floor-warm-vs-hyper",
            "floor: bare hyper + the contracts' least, warm at 64 connections >= 0.95 x bare hyper",
            warm("hyper-contract").map(|w| w.0),
            warm("hyper").map(|w| w.0),
            0.95,
            true,
            "req/s",
        )),
        decision(check(
            "warm-rps-64-vs-contract-floor",
            "warm throughput at 64 connections, one worker >= 0.95 x that floor",
            warm("fnkit").map(|w| w.0),
            warm("hyper-contract").map(|w| w.0),
            0.95,
            true,
            "req/s",
        )),
        check(
            "warm-rps-64-2w-vs-axum",
            "warm throughput at 64 connections, two workers >= 1.0 x axum (multi-thread)",
            warm("fnkit-2w").map(|w| w.0),
            warm("axum").map(|w| w.0),
            1.0,
            true,
            "req/s",
        ),
        check(
            "image-layer-gz",
            "default hello's image layer, gzipped <= 600 KB",
            layer_gz_of(run, "fnkit"),
            Ok(600_000.0),
            1.0,
            false,
            "B",
        ),
        decision(check(
            "observability-cold",
            "hello with metrics + otel compiled in: HTTP cold start <= 1.02 x default (issue 11: on by default only then)",
            cold_median(run, "fnkit-obs"),
            cold_median(run, "fnkit"),
            1.02,
            false,
            "ms",
        )),
        decision(check(
            "observability-lambda-init",
            "hello with metrics + otel compiled in: Lambda init <= 1.02 x default (issue 11)",
            cold_median(run, "fnkit-obs-lambda"),
            cold_median(run, "fnkit-lambda"),
            1.02,
            false,
            "ms",
        )),
        decision(check(
            "observability-rss",
            "hello with metrics + otel compiled in: HTTP peak RSS <= 1.02 x default (issue 11)",
            rss_median(run, "fnkit-obs"),
            rss_median(run, "fnkit"),
            1.02,
            false,
            "KiB",
        )),
    ]
}

/// Writes `latest.json`, `latest.md` and `latest.svg` into the results directory; returns the
/// markdown.
pub(crate) fn write_all(run: &Run, targets: &[Target]) -> std::io::Result<String> {
    let out: &PathBuf = &run.options.out;
    let md = markdown(run, targets);
    let json =
        serde_json::to_string_pretty(&to_json(run, targets)).map_err(std::io::Error::other)?;
    std::fs::write(out.join("latest.json"), json + "\n")?;
    std::fs::write(out.join("latest.md"), &md)?;
    std::fs::write(out.join("latest.svg"), svg(run))?;
    Ok(md)
}

fn env_json(env: &[(&str, &str)]) -> Value {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

fn state_json(state: &State) -> Value {
    match state {
        State::Ok => json!({ "status": "ok" }),
        State::NotAvailable(why) => json!({ "status": "n/a", "reason": why }),
        State::Failed(why) => json!({ "status": "failed", "reason": why }),
    }
}

fn summary_json(v: &[f64]) -> Value {
    Summary::of(v).map_or(Value::Null, Summary::to_json)
}

fn to_json(run: &Run, targets: &[Target]) -> Value {
    let o = &run.options;
    let m = &run.machine;
    let cold: Vec<Value> = run
        .cold
        .iter()
        .map(|c| {
            let bodies: Vec<Value> = BODIES
                .iter()
                .enumerate()
                .map(|(b, (name, size))| {
                    let s = &c.samples[b];
                    let first: Vec<f64> = s.iter().map(|x| x.first_ms).collect();
                    let invoke: Vec<f64> = s.iter().filter_map(|x| x.invoke_ms).collect();
                    let hwm: Vec<f64> = s.iter().map(|x| x.hwm_kib as f64).collect();
                    let threads: Vec<f64> = s.iter().map(|x| x.threads as f64).collect();
                    json!({
                        "body": name,
                        "body_bytes": crate::cold::body_of_size(*size).len(),
                        "first_ms": summary_json(&first),
                        "invoke_ms": summary_json(&invoke),
                        "peak_rss_kib": summary_json(&hwm),
                        "threads": summary_json(&threads),
                        "failures": c.failures[b].len(),
                        "first_failure": c.failures[b].first(),
                        "samples_ms": first,
                    })
                })
                .collect();
            json!({
                "id": c.variant.id,
                "label": c.variant.label,
                "platform": c.variant.kind.as_str(),
                "binary": c.variant.bin,
                "env": env_json(c.variant.env),
                "state": state_json(&c.state),
                "first_means": match c.variant.kind {
                    Kind::Http => "exec -> first complete response",
                    Kind::Lambda => "exec -> first GET /next (init)",
                },
                "bodies": bodies,
            })
        })
        .collect();
    let warm: Vec<Value> = run
        .warm
        .iter()
        .map(|w| {
            let levels: Vec<Value> = o
                .levels
                .iter()
                .map(|&conns| {
                    let at: Vec<_> = w
                        .rounds
                        .iter()
                        .filter_map(|r| r.iter().find(|l| l.conns == conns))
                        .collect();
                    let f = |g: &dyn Fn(&crate::load::Level) -> f64| {
                        summary_json(&at.iter().map(|l| g(l)).collect::<Vec<_>>())
                    };
                    json!({
                        "connections": conns,
                        "rps": f(&|l| l.rps),
                        "p50_ms": f(&|l| l.p50_ms),
                        "p99_ms": f(&|l| l.p99_ms),
                        "max_ms": f(&|l| l.max_ms),
                        "peak_rss_kib": f(&|l| l.proc.hwm_kib as f64),
                        "threads": f(&|l| l.proc.threads as f64),
                        "errors": at.iter().map(|l| l.errors).sum::<u64>(),
                        "requests": at.iter().map(|l| l.requests).sum::<u64>(),
                    })
                })
                .collect();
            json!({
                "id": w.variant.id,
                "binary": w.variant.bin,
                "env": env_json(w.variant.env),
                "state": state_json(&w.state),
                "rounds": w.rounds.len(),
                "levels": levels,
            })
        })
        .collect();
    let sizes: Vec<Value> = run
        .sizes
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "binary": s.bin,
                "bytes": s.bytes,
                "layer_tar_bytes": s.layer.map(|l| l.tar_bytes),
                "layer_tar_gz_bytes": s.layer.map(|l| l.gz_bytes),
            })
        })
        .collect();
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "id": t.id,
                "target": t.what,
                "ratio": t.ratio,
                "limit": t.limit,
                "measured": t.measured,
                "result": t.result.as_str(),
            })
        })
        .collect();
    json!({
        "schema": 1,
        "date": m.date,
        "command": command_line(),
        "quick": o.quick,
        "runs": o.runs,
        "elapsed_s": run.elapsed_s,
        "machine": {
            "cores": m.cores,
            "cpu": m.cpu,
            "kernel": m.kernel,
            "mem_total": m.mem_total,
            "loadavg_at_start": m.loadavg_at_start,
            "loadavg_at_end": m.loadavg_at_end,
            "rustc": m.rustc,
        },
        "load_generator": {
            "tool": "wrk",
            "binary": o.wrk,
            "threads": o.wrk_threads,
            "seconds_per_level": o.load_secs,
            "rounds": o.load_rounds,
            "levels": o.levels,
            "request": "POST / {\"name\":\"Ada\"}, keep-alive",
            "skipped": o.no_load,
        },
        "image": "FROM scratch layer = ustar of the single binary (no container engine used); gz = gzip -6 of it",
        "cold": cold,
        "warm": warm,
        "sizes": sizes,
        "targets": targets,
    })
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// `1234567.8` → `1,234,568`; small values keep two decimals.
fn fmt_num(v: f64) -> String {
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let s = format!("{:.0}", v.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn markdown(run: &Run, targets: &[Target]) -> String {
    let o = &run.options;
    let m = &run.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## fnkit bench, {}{}\n",
        m.date,
        if o.quick { " (quick)" } else { "" }
    );
    let _ = writeln!(
        s,
        "Machine: {} cores, {}, {}, {} RAM; load average {} at start, {} at end; {}.  ",
        m.cores, m.cpu, m.kernel, m.mem_total, m.loadavg_at_start, m.loadavg_at_end, m.rustc
    );
    let _ = writeln!(
        s,
        "All binaries static musl, one release profile (fat LTO, 1 codegen unit, panic = unwind, stripped).  "
    );
    let _ = writeln!(
        s,
        "Cold starts: {} runs per variant and body, interleaved (order rotated every run). Run took {:.0} s.\n",
        o.runs, run.elapsed_s
    );

    let _ = writeln!(s, "### Cold start\n");
    let _ = writeln!(
        s,
        "HTTP: exec → first complete response to `POST {{\"name\":\"Ada\"}}`, polling `connect` on a fresh loopback port. \
         Lambda: exec → first `GET /next` (init) and → first `POST /response` (first invoke), against the harness's Runtime API.\n"
    );
    let _ = writeln!(
        s,
        "| variant | platform | min ms | median ms | p90 ms | first invoke median ms | peak RSS KiB (median) | threads |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for c in &run.cold {
        let name = variant_name(c);
        let kind = c.variant.kind.as_str();
        match &c.state {
            State::Ok => {
                let v = &c.samples[0];
                let first = Summary::of(&v.iter().map(|x| x.first_ms).collect::<Vec<_>>());
                let invoke = median(&v.iter().filter_map(|x| x.invoke_ms).collect::<Vec<_>>());
                let hwm = median(&v.iter().map(|x| x.hwm_kib as f64).collect::<Vec<_>>());
                let thr = median(&v.iter().map(|x| x.threads as f64).collect::<Vec<_>>());
                let (mn, md, p90) = first.map_or(("–".into(), "–".into(), "–".into()), |f| {
                    (ms(f.min), ms(f.median), ms(f.p90))
                });
                let _ = writeln!(
                    s,
                    "| {name} | {kind} | {mn} | {md} | {p90} | {} | {} | {} |",
                    invoke.map_or("–".into(), ms),
                    hwm.map_or("–".into(), fmt_num),
                    thr.map_or("–".into(), |t| format!("{t:.0}")),
                );
            }
            other => {
                let why = state_text(other);
                let _ = writeln!(s, "| {name} | {kind} | {why} | | | | | |");
            }
        }
    }

    let _ = writeln!(s, "\n### Cost of growth: request body\n");
    let _ = writeln!(
        s,
        "Median cold start (HTTP: to first response; Lambda: to first `/response`) and median peak RSS, per body size.\n"
    );
    let mut head = String::from("| variant | platform |");
    let mut rule = String::from("|---|---|");
    for (name, _) in BODIES {
        let _ = write!(head, " {name} ms | {name} KiB |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for c in run.cold.iter().filter(|c| c.state == State::Ok) {
        let _ = write!(s, "| {} | {} |", variant_name(c), c.variant.kind.as_str());
        for b in 0..BODIES.len() {
            let v = &c.samples[b];
            let t = median(
                &v.iter()
                    .map(|x| x.invoke_ms.unwrap_or(x.first_ms))
                    .collect::<Vec<_>>(),
            );
            let r = median(&v.iter().map(|x| x.hwm_kib as f64).collect::<Vec<_>>());
            let _ = write!(
                s,
                " {} | {} |",
                t.map_or("–".into(), ms),
                r.map_or("–".into(), fmt_num)
            );
        }
        s.push('\n');
    }

    let _ = writeln!(s, "\n### Size\n");
    let _ = writeln!(
        s,
        "Stripped static binary; `FROM scratch` image = one layer holding the binary (ustar; no container engine was used), and that layer gzipped as a registry stores it.\n"
    );
    let _ = writeln!(
        s,
        "| binary | bytes | layer tar bytes | layer tar.gz bytes |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|");
    for z in &run.sizes {
        let file = z
            .bin
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match (z.bytes, z.layer) {
            (Some(b), Some(l)) => {
                let _ = writeln!(
                    s,
                    "| `{file}` ({}) | {} | {} | {} |",
                    z.id,
                    fmt_num(b as f64),
                    fmt_num(l.tar_bytes as f64),
                    fmt_num(l.gz_bytes as f64)
                );
            }
            _ => {
                let _ = writeln!(s, "| `{file}` ({}) | not built | | |", z.id);
            }
        }
    }

    if !run.warm.is_empty() {
        let _ = writeln!(s, "\n### Warm load and cost of growth: connections\n");
        let _ = writeln!(
            s,
            "Load generator: wrk (Debian package), `-t{}`, keep-alive `POST {{\"name\":\"Ada\"}}` on 127.0.0.1, {} s per level, \
             levels in ascending order on one fresh process per round, {} round(s) interleaved; medians over rounds. \
             Peak RSS is `VmHWM` after the level.\n",
            o.wrk_threads, o.load_secs, o.load_rounds
        );
        let _ = writeln!(
            s,
            "| variant | connections | req/s | p50 ms | p99 ms | peak RSS KiB | threads | errors |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for w in &run.warm {
            if w.state != State::Ok {
                let _ = writeln!(
                    s,
                    "| {} | {} | | | | | | |",
                    w.variant.id,
                    state_text(&w.state)
                );
                continue;
            }
            for &conns in &o.levels {
                let at: Vec<_> = w
                    .rounds
                    .iter()
                    .filter_map(|r| r.iter().find(|l| l.conns == conns))
                    .collect();
                let med = |g: &dyn Fn(&crate::load::Level) -> f64| {
                    median(&at.iter().map(|l| g(l)).collect::<Vec<_>>()).unwrap_or(f64::NAN)
                };
                let _ = writeln!(
                    s,
                    "| {} | {conns} | {} | {:.3} | {:.3} | {} | {:.0} | {} |",
                    w.variant.id,
                    fmt_num(med(&|l| l.rps)),
                    med(&|l| l.p50_ms),
                    med(&|l| l.p99_ms),
                    fmt_num(med(&|l| l.proc.hwm_kib as f64)),
                    med(&|l| l.proc.threads as f64),
                    at.iter().map(|l| l.errors).sum::<u64>(),
                );
            }
        }
        // The same binary with one worker (the default) and two (FNKIT_WORKERS=2).
        if let (Ok(one), Ok(two)) = (warm_at(run, "fnkit", 64), warm_at(run, "fnkit-2w", 64)) {
            let _ = writeln!(
                s,
                "\nfnkit hello at 64 connections: 1 worker {} req/s (p99 {:.3} ms), 2 workers \
                 (`FNKIT_WORKERS=2`) {} req/s (p99 {:.3} ms): {:.2}x. wrk takes one of the two cores.",
                fmt_num(one.0),
                one.1,
                fmt_num(two.0),
                two.1,
                two.0 / one.0
            );
        }
    }

    let _ = writeln!(s, "\n### Targets (ratios within this run)\n");
    let _ = writeln!(
        s,
        "| target | measured ratio (ours / theirs) | limit | result |"
    );
    let _ = writeln!(s, "|---|---|---:|---|");
    for t in targets {
        let limit = if t.higher_is_better {
            format!("≥ {}", t.limit)
        } else {
            format!("≤ {}", t.limit)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {limit} | **{}** |",
            t.what,
            t.measured,
            t.result.as_str()
        );
    }
    let pass = targets.iter().filter(|t| t.result == Verdict::Pass).count();
    let fail = targets.iter().filter(|t| t.result == Verdict::Fail).count();
    let info = targets
        .iter()
        .filter(|t| matches!(t.result, Verdict::Within | Verdict::Over))
        .count();
    let na = targets.len() - pass - fail - info;
    let _ = writeln!(
        s,
        "\n{pass} PASS, {fail} FAIL, {na} n/a; {info} informational (issue 11's defaults, fnkit's own share, the contracts' floor)."
    );
    s
}

fn variant_name(c: &ColdResult) -> String {
    if c.variant.fnkit {
        format!("**{}**", c.variant.label)
    } else {
        c.variant.label.to_owned()
    }
}

fn state_text(state: &State) -> String {
    match state {
        State::Ok => "ok".into(),
        State::NotAvailable(why) => format!("n/a: {why}"),
        State::Failed(why) => format!("FAILED: {why}"),
    }
}

/// Cold start and peak RSS per variant, as horizontal bars (median) with min–p90 whiskers.
fn svg(run: &Run) -> String {
    struct Row {
        label: String,
        fnkit: bool,
        ms: Option<Summary>,
        kib: Option<Summary>,
        note: Option<String>,
    }
    let mut rows = Vec::new();
    for c in &run.cold {
        let v = &c.samples[0];
        let hwm = Summary::of(&v.iter().map(|x| x.hwm_kib as f64).collect::<Vec<_>>());
        let note = match &c.state {
            State::Ok => None,
            State::NotAvailable(_) => Some("n/a".to_owned()),
            State::Failed(_) => Some("failed".to_owned()),
        };
        let first = Summary::of(&v.iter().map(|x| x.first_ms).collect::<Vec<_>>());
        let name = c.variant.label.to_owned();
        match c.variant.kind {
            Kind::Http => rows.push(Row {
                label: name,
                fnkit: c.variant.fnkit,
                ms: first,
                kib: hwm,
                note,
            }),
            Kind::Lambda => {
                rows.push(Row {
                    label: format!("{name}: init"),
                    fnkit: c.variant.fnkit,
                    ms: first,
                    kib: hwm,
                    note: note.clone(),
                });
                let invoke = Summary::of(&v.iter().filter_map(|x| x.invoke_ms).collect::<Vec<_>>());
                rows.push(Row {
                    label: format!("{name}: 1st invoke"),
                    fnkit: c.variant.fnkit,
                    ms: invoke,
                    kib: None,
                    note: note.map(|_| String::new()),
                });
            }
        }
    }
    let max_ms = nice_ceil(
        rows.iter()
            .filter_map(|r| r.ms.map(|s| s.p90))
            .fold(0.0, f64::max),
    );
    let max_kib = nice_ceil(
        rows.iter()
            .filter_map(|r| r.kib.map(|s| s.median))
            .fold(0.0, f64::max),
    );
    let (label_w, panel_w, gap, row_h, top) = (290.0, 300.0, 70.0, 24.0, 70.0);
    let x1 = label_w;
    let x2 = label_w + panel_w + gap;
    let width = x2 + panel_w + 30.0;
    let height = top + rows.len() as f64 * row_h + 50.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">fnkit bench: cold start and peak RSS ({} runs, {}, {} cores)</text>"#,
        run.options.runs,
        xml(&run.machine.date),
        run.machine.cores
    );
    let _ = writeln!(
        s,
        r#"<text x="{x1}" y="48" font-weight="bold">cold start, ms (bar median, line min–p90)</text><text x="{x2}" y="48" font-weight="bold">peak RSS after first response, KiB (median)</text>"#
    );
    for (x0, max) in [(x1, max_ms), (x2, max_kib)] {
        for i in 0..=5 {
            let v = max * f64::from(i) / 5.0;
            let x = x0 + panel_w * f64::from(i) / 5.0;
            let y_end = top + rows.len() as f64 * row_h;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{y_end}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#555">{}</text>"##,
                top - 6.0,
                y_end + 16.0,
                if max <= 5.0 {
                    format!("{v:.1}")
                } else if max < 100.0 {
                    format!("{v:.0}")
                } else {
                    fmt_num(v)
                }
            );
        }
    }
    for (i, r) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let color = if r.fnkit { "#e8590c" } else { "#4c6ef5" };
        let weight = if r.fnkit { "bold" } else { "normal" };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end" font-weight="{weight}">{}</text>"#,
            x1 - 8.0,
            y + 16.0,
            xml(&r.label)
        );
        if let Some(note) = &r.note {
            if !note.is_empty() {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" fill="#888">{note}</text><text x="{}" y="{}" fill="#888">{note}</text>"##,
                    x1 + 4.0,
                    y + 16.0,
                    x2 + 4.0,
                    y + 16.0
                );
            }
            continue;
        }
        if let Some(m) = r.ms {
            let scale = |v: f64| x1 + panel_w * (v / max_ms).min(1.0);
            let _ = writeln!(
                s,
                r##"<rect x="{x1}" y="{}" width="{:.1}" height="14" fill="{color}"/><line x1="{:.1}" y1="{}" x2="{:.1}" y2="{}" stroke="#222" stroke-width="1.5"/><text x="{:.1}" y="{}" fill="#222">{:.2}</text>"##,
                y + 5.0,
                scale(m.median) - x1,
                scale(m.min),
                y + 12.0,
                scale(m.p90),
                y + 12.0,
                scale(m.p90) + 4.0,
                y + 16.0,
                m.median
            );
        }
        if let Some(k) = r.kib {
            let w = panel_w * (k.median / max_kib).min(1.0);
            let _ = writeln!(
                s,
                r##"<rect x="{x2}" y="{}" width="{w:.1}" height="14" fill="{color}"/><text x="{:.1}" y="{}" fill="#222">{}</text>"##,
                y + 5.0,
                x2 + w + 4.0,
                y + 16.0,
                fmt_num(k.median)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The next of 1, 2, 2.5, 5 × 10^k at or above `v`.
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Now, as `YYYY-MM-DD HH:MM UTC`, from the system's `date` (the calendar arithmetic is
/// fnkit's logger's job, not the harness's); seconds since the epoch where `date` is missing.
fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("{secs} s after the Unix epoch")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_and_scales() {
        assert_eq!(super::fmt_num(1_234_567.4), "1,234,567");
        assert_eq!(super::fmt_num(1.234), "1.23");
        assert_eq!(super::nice_ceil(1.3), 2.0);
        assert_eq!(super::nice_ceil(1068.0), 2000.0);
        assert_eq!(super::nice_ceil(2.2), 2.5);
    }
}
