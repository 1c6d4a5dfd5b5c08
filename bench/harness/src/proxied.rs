//! fnkit on OpenFaaS without and with a proxy in front: `hello` in direct mode (the container's
//! only process, as the `fnkit-direct` template runs it) beside `hello` behind
//! `baselines/proxy` (`stand-in-proxy`), which stands in for of-watchdog: it starts the function
//! itself, so a cold start is exec of the proxy → first answer through both, and the memory
//! figures add up both processes ([`status_of_tree`]).

use std::path::Path;

use crate::procfs::{self, ProcStatus};
use crate::{Kind, Variant};

/// The environment of `fnkit-direct`'s image that matters here (`port` is `PORT` in the bench).
const DIRECT_ENV: &[(&str, &str)] = &[
    ("FNKIT_PLATFORM", "openfaas"),
    ("FNKIT_OPENFAAS_MODE", "direct"),
];

/// The two OpenFaaS variants of `hello`.
pub(crate) fn variants(hello: &Path, bin_dir: &Path) -> Vec<Variant> {
    // The proxy passes its environment on to the function, as the watchdog does, plus
    // `upstream_url`: this is the watchdog template's environment (fnkit-side variables only).
    let fprocess: &'static str = Box::leak(hello.to_string_lossy().into_owned().into_boxed_str());
    let behind: &'static [(&'static str, &'static str)] = Box::leak(Box::new([
        ("FNKIT_PLATFORM", "openfaas"),
        ("fprocess", fprocess),
    ]));
    vec![
        Variant {
            id: "fnkit-of-direct",
            label: "fnkit hello, OpenFaaS direct mode",
            bin: hello.to_owned(),
            kind: Kind::Http,
            warm: true,
            fnkit: true,
            env: DIRECT_ENV,
        },
        Variant {
            id: "fnkit-of-proxy",
            label: "fnkit hello behind a stand-in watchdog (2 processes)",
            bin: bin_dir.join("stand-in-proxy"),
            kind: Kind::Http,
            warm: true,
            fnkit: true,
            env: behind,
        },
    ]
}

/// `pid`'s status with its children's added (peak RSS, RSS, threads): the memory a variant
/// costs, whether it is one process or a proxy that started the function. `None` once `pid` is
/// gone. (The peaks are each process's own, so their sum may exceed what was ever resident at
/// one moment; for a proxy and its function, both peak while serving, close to the same time.)
pub(crate) fn status_of_tree(pid: u32) -> Option<ProcStatus> {
    let mut total = procfs::status(pid)?;
    for child in children(pid) {
        if let Some(st) = procfs::status(child) {
            total.hwm_kib += st.hwm_kib;
            total.rss_kib += st.rss_kib;
            total.threads += st.threads;
        }
    }
    Some(total)
}

/// The processes whose parent is `pid` (from `/proc/*/stat`; this kernel has no
/// `/proc/<pid>/task/<pid>/children`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parent_of(&s))
                == Some(pid)
        })
        .collect()
}

/// The parent pid in a `/proc/<pid>/stat` line: the second field after the `(comm)`, which may
/// itself hold spaces and parentheses.
fn parent_of(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parent_pid_follows_the_command_name() {
        assert_eq!(
            super::parent_of("4242 (a) b (c)) S 17 4242 4242 0 -1"),
            Some(17)
        );
        assert_eq!(super::parent_of("1 (init) S 0 1 1"), Some(0));
        assert_eq!(super::parent_of("garbage"), None);
    }

    #[test]
    fn this_process_counts_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        // Let `sleep` finish starting, so that its peak no longer moves.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let me = std::process::id();
        let found = super::children(me).contains(&child.id());
        let own = crate::procfs::status(me).expect("own status");
        let sleep = crate::procfs::status(child.id()).expect("the child's status");
        let tree = super::status_of_tree(me).expect("own tree");
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "the child is not found by its parent pid");
        // Peaks only grow: the tree's is at least both peaks read before it.
        assert!(
            tree.hwm_kib >= own.hwm_kib + sleep.hwm_kib && sleep.hwm_kib > 0,
            "{tree:?} vs {own:?} + {sleep:?}"
        );
    }
}
