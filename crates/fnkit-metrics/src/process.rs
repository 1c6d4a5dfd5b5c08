//! What the process knows about itself from Linux's `/proc`: when it was started (`exec`), and
//! how much memory it holds. Read on demand (a scrape, a Lambda invocation's end), never at
//! start-up.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The clock ticks per second of `/proc`'s times (`USER_HZ`, what `sysconf(_SC_CLK_TCK)` returns):
/// 100 on every architecture Linux runs fnkit on (x86_64, aarch64).
const TICKS_PER_SEC: f64 = 100.0;

/// When the process started, measured once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Times {
    /// From `exec` to ready (listening, or about to ask for the first event), in seconds.
    pub(crate) cold_start: f64,
    /// The `exec` time, in seconds since the Unix epoch.
    pub(crate) start_time: f64,
}

impl Times {
    /// Measures them now, for a process that became ready at `ready` (an [`Instant`], so that
    /// `ready` costs one clock read and nothing else). `None` where there is no `/proc`.
    ///
    /// The kernel keeps a process's start time in `CLOCK_BOOTTIME` and shows it in clock ticks
    /// (`/proc/self/stat` field 22, 10 ms). `ready` is moved onto that clock through the time
    /// elapsed since (monotonic), so the cold start is exact but for the tick: it reads at most
    /// 10 ms more than the truth, never less.
    pub(crate) fn measure(ready: Instant) -> Option<Self> {
        let started = exec_boottime()?;
        let now = boottime()?;
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let ready_boot = now - ready.elapsed().as_secs_f64();
        Some(Self {
            cold_start: (ready_boot - started).max(0.0),
            start_time: wall.as_secs_f64() - (now - started),
        })
    }
}

/// The process's start, in seconds of `CLOCK_BOOTTIME`, at clock-tick resolution.
fn exec_boottime() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    start_ticks(&stat).map(|ticks| ticks as f64 / TICKS_PER_SEC)
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. Field 2, the command name, is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted after the last
/// `)`: field 3 is the first there.
fn start_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// `CLOCK_BOOTTIME` now, in seconds.
#[cfg(target_os = "linux")]
fn boottime() -> Option<f64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let d = std::time::Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    );
    Some(d.as_secs_f64())
}

#[cfg(not(target_os = "linux"))]
fn boottime() -> Option<f64> {
    None
}

/// The resident set size in bytes: `/proc/self/statm`'s second field (pages) times the page size,
/// as Prometheus's own clients compute `process_resident_memory_bytes`.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    resident_pages(&statm)?.checked_mul(page_size()?)
}

fn resident_pages(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

#[cfg(target_os = "linux")]
fn page_size() -> Option<u64> {
    u64::try_from(rustix::param::page_size()).ok()
}

#[cfg(not(target_os = "linux"))]
fn page_size() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_is_field_22_even_with_parentheses_in_the_name() {
        let line = "4242 (my (odd) fn) S 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 4096 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(start_ticks(line), Some(987_654));
        assert_eq!(start_ticks("no parenthesis"), None);
        assert_eq!(start_ticks("1 (short) S 1 2"), None);
    }

    #[test]
    fn resident_pages_is_the_second_field() {
        assert_eq!(resident_pages("2613 318 279 176 0 143 0\n"), Some(318));
        assert_eq!(resident_pages("2613"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_measures_itself() {
        let ready = Instant::now();
        let times = Times::measure(ready).expect("/proc is there on Linux");
        // This test process started before `ready`, at most as long ago as the test run.
        assert!(
            times.cold_start > 0.0 && times.cold_start < 3600.0,
            "{times:?}"
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(times.start_time <= now && times.start_time > now - 3600.0);
        let rss = resident_bytes().expect("statm");
        assert!(rss > 100_000, "{rss}");
    }
}
