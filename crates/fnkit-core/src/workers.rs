//! How many threads run handlers: from the CPU quota the container sees (cgroup v2 `cpu.max`,
//! else cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`), from Lambda's memory size where no
//! quota is visible, or from `FNKIT_WORKERS`. The rules are pure functions over a variable lookup
//! and a file reader, so they are tested against fake cgroup trees; `fnkit::run` calls them with
//! the real ones, once, at start-up (docs/runtime.md).

use std::path::Path;
use std::sync::OnceLock;

use crate::{Error, Platform};

/// Where the cgroup filesystem is mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// cgroup v2: `<quota> <period>` in microseconds, or `max <period>` for no limit.
const V2_CPU_MAX: &str = "cpu.max";
/// cgroup v1: the quota in microseconds per period, `-1` for no limit ...
const V1_QUOTA: &str = "cpu/cpu.cfs_quota_us";
/// ... and the period.
const V1_PERIOD: &str = "cpu/cpu.cfs_period_us";

/// Lambda grants CPU in proportion to memory: one vCPU's worth at 1,769 MB
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>).
pub const LAMBDA_MB_PER_VCPU: u32 = 1769;

/// The most worker threads `FNKIT_WORKERS` may ask for.
pub const MAX_WORKERS: usize = 1024;

/// The threads that run handlers, and what they were derived from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workers {
    /// Worker threads: 1 means a current-thread runtime, more a multi-thread one.
    pub count: usize,
    /// The CPUs the process may use by its quota, as seen (`2.0` for a cgroup `cpu.max` of
    /// `200000 100000`, `0.0724` for 128 MB on Lambda); `None` when no quota is visible.
    pub cpu_quota: Option<f64>,
    /// Where `count` came from.
    pub source: Source,
}

/// Where a worker count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `FNKIT_WORKERS`.
    Setting,
    /// The cgroup CPU quota, or on Lambda the memory size's vCPU share.
    Quota,
    /// Nothing said more than one: one worker.
    Default,
}

impl Source {
    /// The source as a word, for logs: `FNKIT_WORKERS`, `cpu quota`, `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setting => "FNKIT_WORKERS",
            Self::Quota => "cpu quota",
            Self::Default => "default",
        }
    }
}

/// Decides the worker count.
///
/// - `FNKIT_WORKERS` (1 to [`MAX_WORKERS`]) wins, as given: it may ask for a second worker even
///   at one CPU. Anything else in it is an error naming the variable.
/// - Otherwise the quota: ⌈quota⌉ workers, never more than `cpus()` (the CPUs the process may
///   run on, asked only when the quota is above one CPU); one at or below one CPU, and one when
///   no quota is visible (today's behaviour: a current-thread runtime).
/// - On Lambda, `lambda_concurrency` (`AWS_LAMBDA_MAX_CONCURRENCY`) invocations run at once: at
///   one, the loop is sequential and one worker is all it can use, so nothing is read; above
///   one, the quota is the cgroup's or, where none is visible, the memory size's vCPU share
///   (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` / [`LAMBDA_MB_PER_VCPU`]), and the count is at most
///   `lambda_concurrency`.
///
/// `read` reads a file under the cgroup root by its relative path (`cpu.max`,
/// `cpu/cpu.cfs_quota_us`, `cpu/cpu.cfs_period_us`): [`read_under`] over [`CGROUP_ROOT`] in
/// production. At most one file is read on cgroup v2 (`cpu.max` answers), two on v1 without a
/// quota, three with one.
///
/// ```
/// use fnkit_core::adapter::workers::{plan, Source};
/// use fnkit_core::Platform;
///
/// let cgroup = |path: &str| (path == "cpu.max").then(|| "150000 100000\n".to_owned());
/// let w = plan(Platform::Knative, 1, |_| None, cgroup, || 8).unwrap();
/// assert_eq!((w.count, w.cpu_quota, w.source), (2, Some(1.5), Source::Quota));
/// ```
///
/// # Errors
/// `FNKIT_WORKERS` set to something other than a whole number from 1 to [`MAX_WORKERS`].
pub fn plan(
    platform: Platform,
    lambda_concurrency: usize,
    var: impl Fn(&str) -> Option<String>,
    read: impl Fn(&str) -> Option<String>,
    cpus: impl FnOnce() -> usize,
) -> Result<Workers, Error> {
    let setting = var("FNKIT_WORKERS")
        .map(|v| parse_workers(&v))
        .transpose()?;
    let lambda = platform == Platform::Lambda;
    if lambda && lambda_concurrency <= 1 && setting.is_none() {
        // One invocation at a time: one worker whatever the CPUs, and no file to read.
        return Ok(Workers {
            count: 1,
            cpu_quota: lambda_share(&var),
            source: Source::Default,
        });
    }
    let quota = match cgroup_quota(&read) {
        Some(q) => Some(q),
        None if lambda => lambda_share(&var),
        None => None,
    };
    if let Some(count) = setting {
        return Ok(Workers {
            count,
            cpu_quota: quota,
            source: Source::Setting,
        });
    }
    let mut count = match quota {
        // ⌈quota⌉, computed on the f64 of a ratio of integers; 1e-9 absorbs its rounding.
        Some(q) if q > 1.0 => {
            let wanted = (q - 1e-9).ceil().min(MAX_WORKERS as f64) as usize;
            wanted.min(cpus().max(1))
        }
        _ => 1,
    };
    if lambda {
        count = count.min(lambda_concurrency.max(1));
    }
    Ok(Workers {
        count,
        cpu_quota: quota,
        source: if count > 1 {
            Source::Quota
        } else {
            Source::Default
        },
    })
}

fn parse_workers(value: &str) -> Result<usize, Error> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_WORKERS).contains(n))
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "FNKIT_WORKERS={value:?} is not a number of worker threads (a whole number from 1 to {MAX_WORKERS})"
            ))
        })
}

/// The CPU quota in CPUs from the cgroup files `read` gives (relative to the cgroup root):
/// cgroup v2 `cpu.max` when it exists (v1 is then not read), else cgroup v1
/// `cpu/cpu.cfs_quota_us` and `cpu/cpu.cfs_period_us`. `None` for no limit (`max`, `-1`), a
/// missing file, or a value that does not parse.
///
/// ```
/// use fnkit_core::adapter::workers::cpu_quota;
/// assert_eq!(cpu_quota(|p| (p == "cpu.max").then(|| "max 100000".to_owned())), None);
/// assert_eq!(cpu_quota(|p| (p == "cpu.max").then(|| "200000 100000".to_owned())), Some(2.0));
/// ```
pub fn cpu_quota(read: impl Fn(&str) -> Option<String>) -> Option<f64> {
    cgroup_quota(&read)
}

fn cgroup_quota(read: &impl Fn(&str) -> Option<String>) -> Option<f64> {
    if let Some(max) = read(V2_CPU_MAX) {
        let mut parts = max.split_whitespace();
        let quota = parts.next()?;
        if quota == "max" {
            return None;
        }
        let quota: u64 = quota.parse().ok()?;
        // The period may be left out: the kernel's default is 100 ms.
        let period: u64 = parts.next().map_or(Some(100_000), |p| p.parse().ok())?;
        return ratio(quota, period);
    }
    let quota: i64 = read(V1_QUOTA)?.trim().parse().ok()?;
    if quota <= 0 {
        return None; // -1: no limit; the period is not read
    }
    let period: u64 = read(V1_PERIOD)?.trim().parse().ok()?;
    ratio(quota.unsigned_abs(), period)
}

fn ratio(quota: u64, period: u64) -> Option<f64> {
    (quota > 0 && period > 0).then(|| quota as f64 / period as f64)
}

/// Lambda's vCPU share of the memory size, where `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` says it.
fn lambda_share(var: &impl Fn(&str) -> Option<String>) -> Option<f64> {
    let mb: u32 = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")?
        .trim()
        .parse()
        .ok()?;
    (mb > 0).then(|| f64::from(mb) / f64::from(LAMBDA_MB_PER_VCPU))
}

/// A reader of files under `root` for [`plan`] and [`cpu_quota`]: `None` for a file that is
/// missing or unreadable.
pub fn read_under(root: &Path) -> impl Fn(&str) -> Option<String> + '_ {
    move |relative| std::fs::read_to_string(root.join(relative)).ok()
}

static CURRENT: OnceLock<Workers> = OnceLock::new();
/// Set by [`set_quota_later`]: how [`current`] reads the quota, once.
static QUOTA_LATER: OnceLock<fn() -> Option<f64>> = OnceLock::new();
static LATE_QUOTA: OnceLock<Option<f64>> = OnceLock::new();

/// Records the process's worker count, for `/health` (`fnkit::run` calls it once, before
/// serving). Later calls are ignored.
pub fn set(workers: Workers) {
    let _ = CURRENT.set(workers);
}

/// Records a worker count decided without the CPU quota (a binary that runs one worker whatever
/// the quota: start-up need not read it), and how to read the quota: [`current`] calls `quota`
/// on its first call and reports its answer from then on. Later calls are ignored.
pub fn set_quota_later(workers: Workers, quota: fn() -> Option<f64>) {
    if CURRENT.set(workers).is_ok() {
        let _ = QUOTA_LATER.set(quota);
    }
}

/// The worker count [`set`] or [`set_quota_later`] recorded, if any, with the quota.
pub fn current() -> Option<Workers> {
    let mut workers = CURRENT.get().copied()?;
    if let Some(quota) = QUOTA_LATER.get() {
        workers.cpu_quota = *LATE_QUOTA.get_or_init(quota);
    }
    Some(workers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::env_from;
    use std::path::PathBuf;

    /// A fake cgroup tree in a fresh temporary directory, removed when dropped.
    struct FakeCgroup(PathBuf);

    impl FakeCgroup {
        fn new(files: &[(&str, &str)]) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "fnkit-cgroup-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            for (path, text) in files {
                let path = dir.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn plan(&self, platform: Platform, env: &[(&str, &str)], cpus: usize) -> Workers {
            plan(platform, 1, env_from(env), read_under(&self.0), || cpus).unwrap()
        }
    }

    impl Drop for FakeCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A count recorded without the quota reports the quota its reader gives, read once, on the
    /// first ask (the one test in this binary that records a count).
    #[test]
    fn a_count_recorded_without_the_quota_reads_it_once_when_asked() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static READS: AtomicUsize = AtomicUsize::new(0);
        fn two_cpus() -> Option<f64> {
            READS.fetch_add(1, Ordering::SeqCst);
            cpu_quota(|p| (p == "cpu.max").then(|| "200000 100000\n".to_owned()))
        }
        let one = Workers {
            count: 1,
            cpu_quota: None,
            source: Source::Default,
        };
        set_quota_later(one, two_cpus);
        assert_eq!(
            READS.load(Ordering::SeqCst),
            0,
            "nothing is read when recorded"
        );
        let now = current().unwrap();
        assert_eq!(
            (now.count, now.cpu_quota, now.source),
            (1, Some(2.0), Source::Default)
        );
        assert_eq!(current().unwrap().cpu_quota, Some(2.0));
        assert_eq!(READS.load(Ordering::SeqCst), 1, "read once");
        set(Workers { count: 2, ..one });
        assert_eq!(current().unwrap().count, 1, "later calls are ignored");
    }

    #[test]
    fn cgroup_v2_quota_sets_the_worker_count() {
        let two = FakeCgroup::new(&[("cpu.max", "200000 100000\n")]);
        let w = two.plan(Platform::Knative, &[], 8);
        assert_eq!(
            (w.count, w.cpu_quota, w.source),
            (2, Some(2.0), Source::Quota)
        );

        let one_and_a_half = FakeCgroup::new(&[("cpu.max", "150000 100000\n")]);
        assert_eq!(one_and_a_half.plan(Platform::Knative, &[], 8).count, 2);

        let none = FakeCgroup::new(&[("cpu.max", "max 100000\n")]);
        let w = none.plan(Platform::Knative, &[], 8);
        assert_eq!((w.count, w.cpu_quota, w.source), (1, None, Source::Default));

        let half = FakeCgroup::new(&[("cpu.max", "50000 100000\n")]);
        let w = half.plan(Platform::Local, &[], 8);
        assert_eq!((w.count, w.cpu_quota), (1, Some(0.5)));

        let exactly_one = FakeCgroup::new(&[("cpu.max", "100000 100000")]);
        assert_eq!(exactly_one.plan(Platform::Local, &[], 8).count, 1);

        let no_period = FakeCgroup::new(&[("cpu.max", "300000")]);
        assert_eq!(no_period.plan(Platform::Local, &[], 8).cpu_quota, Some(3.0));
    }

    #[test]
    fn cgroup_v1_quota_sets_the_worker_count() {
        let three = FakeCgroup::new(&[
            ("cpu/cpu.cfs_quota_us", "300000\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
        ]);
        let w = three.plan(Platform::Knative, &[], 8);
        assert_eq!((w.count, w.cpu_quota), (3, Some(3.0)));

        let unlimited = FakeCgroup::new(&[
            ("cpu/cpu.cfs_quota_us", "-1\n"),
            ("cpu/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(unlimited.plan(Platform::Knative, &[], 8).cpu_quota, None);

        let empty = FakeCgroup::new(&[]);
        let w = empty.plan(Platform::Knative, &[], 8);
        assert_eq!((w.count, w.cpu_quota), (1, None));
    }

    #[test]
    fn v2_answers_alone_and_v1_is_read_only_as_needed() {
        let reads = std::cell::RefCell::new(Vec::new());
        let read = |files: &'static [(&'static str, &'static str)]| {
            let reads = &reads;
            move |p: &str| {
                reads.borrow_mut().push(p.to_owned());
                files
                    .iter()
                    .find(|(k, _)| *k == p)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        cpu_quota(read(&[("cpu.max", "max 100000")]));
        assert_eq!(*reads.borrow(), ["cpu.max"]);
        reads.borrow_mut().clear();
        cpu_quota(read(&[("cpu/cpu.cfs_quota_us", "-1")]));
        assert_eq!(*reads.borrow(), ["cpu.max", "cpu/cpu.cfs_quota_us"]);
    }

    #[test]
    fn never_more_workers_than_cpus_and_cpus_asked_only_above_one() {
        let four = FakeCgroup::new(&[("cpu.max", "400000 100000")]);
        assert_eq!(four.plan(Platform::Knative, &[], 2).count, 2);
        let half = FakeCgroup::new(&[("cpu.max", "50000 100000")]);
        let w = plan(
            Platform::Knative,
            1,
            env_from(&[]),
            read_under(&half.0),
            || panic!("the CPU count is not needed at or below one CPU"),
        )
        .unwrap();
        assert_eq!(w.count, 1);
    }

    #[test]
    fn fnkit_workers_wins_and_a_bad_value_is_an_error_naming_it() {
        let two = FakeCgroup::new(&[("cpu.max", "200000 100000")]);
        let w = two.plan(Platform::Knative, &[("FNKIT_WORKERS", "1")], 8);
        assert_eq!(
            (w.count, w.cpu_quota, w.source),
            (1, Some(2.0), Source::Setting)
        );
        // As given, even above the CPUs: a second worker at one CPU is a deliberate choice.
        let w = two.plan(Platform::Local, &[("FNKIT_WORKERS", " 4 ")], 1);
        assert_eq!(w.count, 4);
        for bad in ["abc", "0", "-2", "1.5", "99999"] {
            let err = plan(
                Platform::Local,
                1,
                env_from(&[("FNKIT_WORKERS", bad)]),
                |_| None,
                || 2,
            )
            .unwrap_err();
            assert!(
                err.message().starts_with(&format!("FNKIT_WORKERS={bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn lambda_keeps_one_worker_for_one_invocation_at_a_time() {
        let read_nothing = |p: &str| -> Option<String> { panic!("read {p} on sequential Lambda") };
        let env = env_from(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")]);
        let w = plan(Platform::Lambda, 1, env, read_nothing, || 2).unwrap();
        assert_eq!((w.count, w.cpu_quota), (1, Some(2.0)));
    }

    #[test]
    fn lambda_with_concurrency_uses_the_memory_share_where_no_quota_is_visible() {
        let env = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "3538")];
        // 3,538 MB = 2 vCPUs; 10 invocations at once; 4 CPUs visible.
        let w = plan(Platform::Lambda, 10, env_from(&env), |_| None, || 4).unwrap();
        assert_eq!(
            (w.count, w.cpu_quota, w.source),
            (2, Some(2.0), Source::Quota)
        );
        // 1,770 MB is a little over one vCPU: two workers.
        let env = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1770")];
        assert_eq!(
            plan(Platform::Lambda, 10, env_from(&env), |_| None, || 4)
                .unwrap()
                .count,
            2
        );
        // 128 MB: a fraction of a vCPU, one worker.
        let env = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")];
        let w = plan(Platform::Lambda, 10, env_from(&env), |_| None, || 4).unwrap();
        assert_eq!(w.count, 1);
        assert!((w.cpu_quota.unwrap() - 128.0 / 1769.0).abs() < 1e-9);
        // No more workers than invocations at once.
        let env = [("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10240")];
        assert_eq!(
            plan(Platform::Lambda, 3, env_from(&env), |_| None, || 8)
                .unwrap()
                .count,
            3
        );
        // FNKIT_WORKERS wins on Lambda too.
        let env = [("FNKIT_WORKERS", "2")];
        assert_eq!(
            plan(Platform::Lambda, 1, env_from(&env), |_| None, || 8)
                .unwrap()
                .count,
            2
        );
    }
}
