//! Probes that never wait for a busy handler, the worker count, and the warning for a handler
//! that holds its thread (docs/runtime.md). `http-echo`'s `/spin?ms=N` computes for N ms without
//! yielding, as a first CPU-bound handler does.

use std::thread;
use std::time::{Duration, Instant};

use fnkit_tests::{FnProcess, Request, Response};

/// Generous for CI: the design answers in about 10 to 20 ms.
const PROBE_BUDGET: Duration = Duration::from_millis(300);

/// Sends `req` and says how long the answer took.
fn timed(f: &FnProcess, req: &Request) -> (Response, Duration) {
    let t = Instant::now();
    let r = f.send(req);
    (r, t.elapsed())
}

/// Starts `/spin?ms=N` on a thread of its own and waits until the handler is computing.
fn spin(f: &FnProcess, ms: u64, id: &str) -> thread::JoinHandle<(Response, Duration)> {
    let addr = f.addr;
    let req = Request::get(&format!("/spin?ms={ms}")).header("x-request-id", id);
    let spinning = thread::spawn(move || {
        let t = Instant::now();
        let r = fnkit_tests::request(addr, &req);
        (r, t.elapsed())
    });
    // The request is on its way and the handler starts at once; give it a moment to.
    thread::sleep(Duration::from_millis(150));
    spinning
}

#[test]
fn health_ready_and_probes_answer_while_a_handler_computes() {
    let f = FnProcess::start("http-echo", &[]);
    let spinning = spin(&f, 3000, "spin-1");
    let probes = [
        ("health", Request::get("/health")),
        ("ready", Request::get("/ready")),
        (
            "knative probe",
            Request::get("/").header("k-kubelet-probe", "queue"),
        ),
        (
            "kubelet probe",
            Request::get("/healthz").header("user-agent", "kube-probe/1.30"),
        ),
    ];
    for (what, req) in &probes {
        let (r, took) = timed(&f, req);
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(
            took < PROBE_BUDGET,
            "{what} took {took:?} while a handler computed"
        );
    }
    let health = f.send(&Request::get("/health")).json();
    assert_eq!(health["workers"], 1, "{health}");
    assert!(health["rss_bytes"].as_u64().unwrap() > 0, "{health}");
    assert!(
        health.get("cpu_quota").is_some(),
        "cpu_quota is there, null without a quota: {health}"
    );

    // The spinning request itself is answered in full, after its 3 s.
    let (r, took) = spinning.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["request_id"], "spin-1");
    assert!(took >= Duration::from_millis(2900), "{took:?}");

    // ... and named in a warning with its request id and how long it held the thread.
    let line = f
        .wait_for_log("held its thread", Duration::from_secs(5))
        .expect("no warning about the blocked handler");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "WARN", "{line}");
    assert_eq!(v["request_id"], "spin-1", "{line}");
    assert!(v["held_ms"].as_u64().unwrap() >= 2900, "{line}");

    // A request for the handler sent during the spin was served after it, not lost.
    assert_eq!(f.send(&Request::get("/after")).json()["path"], "/after");
}

#[test]
fn a_request_sent_during_a_spin_is_served_after_it() {
    let f = FnProcess::start("http-echo", &[]);
    let spinning = spin(&f, 1000, "spin-2");
    // Taken by the probe thread (the runtime accepts nothing while it spins), handed back.
    let (r, took) = timed(&f, &Request::get("/queued").header("x-request-id", "q-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["request_id"], "q-1");
    assert!(
        took >= Duration::from_millis(500),
        "{took:?}: it did not wait"
    );
    assert_eq!(spinning.join().unwrap().0.status, 200);
}

#[test]
fn the_warning_is_off_at_zero_and_absent_for_blocking_work() {
    let f = FnProcess::start("http-echo", &[("FNKIT_BLOCKED_WARN_MS", "0")]);
    assert_eq!(f.send(&Request::get("/spin?ms=300")).status, 200);
    let f2 = FnProcess::start("http-echo", &[]);
    // Through fnkit::blocking: the handler's thread is free, probes answer, and no warning.
    let addr = f2.addr;
    let blocking = thread::spawn(move || {
        fnkit_tests::request(
            addr,
            &Request::get("/spin?ms=1000&blocking=1").header("x-request-id", "b-1"),
        )
    });
    thread::sleep(Duration::from_millis(150));
    let (r, took) = timed(&f2, &Request::get("/health"));
    assert_eq!(r.status, 200);
    assert!(took < PROBE_BUDGET, "{took:?}");
    assert_eq!(blocking.join().unwrap().json()["request_id"], "b-1");
    thread::sleep(Duration::from_millis(100));
    for p in [&f, &f2] {
        assert!(
            !p.logs().iter().any(|l| l.contains("held its thread")),
            "{:?}",
            p.logs()
        );
    }
}

#[test]
fn fnkit_workers_2_runs_two_handlers_at_once() {
    let f = FnProcess::start("http-echo", &[("FNKIT_WORKERS", "2")]);
    let health = f.send(&Request::get("/health")).json();
    assert_eq!(health["workers"], 2, "{health}");
    let t = Instant::now();
    let a = spin(&f, 1000, "w-a");
    let b = spin(&f, 1000, "w-b");
    assert_eq!(a.join().unwrap().0.status, 200);
    assert_eq!(b.join().unwrap().0.status, 200);
    // One after the other would take 2 s and more.
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(1800),
        "{took:?}: they did not overlap"
    );
    // Both workers busy: probes still answer.
    let a = spin(&f, 1500, "w-c");
    let b = spin(&f, 1500, "w-d");
    let (r, took) = timed(&f, &Request::get("/ready"));
    assert_eq!(r.status, 200);
    assert!(took < PROBE_BUDGET, "{took:?}");
    let _ = (a.join(), b.join());
}

#[test]
fn a_bad_fnkit_workers_is_a_clear_start_up_error() {
    for (var, value) in [("FNKIT_WORKERS", "abc"), ("FNKIT_BLOCKED_WARN_MS", "soon")] {
        let port = fnkit_tests::free_port().to_string();
        let mut f = FnProcess::spawn(
            "http-echo",
            &[("PORT", &port), (var, value)],
            std::net::SocketAddr::from(([127, 0, 0, 1], 9)),
        );
        let status = f
            .wait_exit(Duration::from_secs(10))
            .expect("it went on running");
        assert!(!status.success(), "{var}={value}: exited 0");
        let (found, all) =
            f.wait_for_output(&[&format!("{var}=\"{value}\"")], Duration::from_secs(2));
        assert!(found, "{var}={value}: no message naming it: {all}");
    }
}
