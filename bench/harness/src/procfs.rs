//! What the kernel says about a child: peak and current resident set, and thread count.

/// Fields of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcStatus {
    /// `VmHWM`: peak resident set size, KiB.
    pub(crate) hwm_kib: u64,
    /// `VmRSS`: current resident set size, KiB.
    pub(crate) rss_kib: u64,
    /// `Threads`.
    pub(crate) threads: u64,
}

/// Reads `/proc/<pid>/status`; `None` once the process is gone.
pub(crate) fn status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(parse(&text))
}

fn parse(text: &str) -> ProcStatus {
    let mut st = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        match key {
            "VmHWM" => st.hwm_kib = number(),
            "VmRSS" => st.rss_kib = number(),
            "Threads" => st.threads = number(),
            _ => {}
        }
    }
    st
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_fields() {
        let st =
            super::parse("Name:\thello\nVmHWM:\t    1316 kB\nVmRSS:\t    1200 kB\nThreads:\t2\n");
        assert_eq!((st.hwm_kib, st.rss_kib, st.threads), (1316, 1200, 2));
    }
}
