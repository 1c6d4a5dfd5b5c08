//! The Lambda runtime's life beyond one invocation at a time (docs/platforms.md §1.11–§1.13):
//! concurrent invocations on Lambda Managed Instances, shutdown hooks through an internal
//! extension, and a Runtime API that misbehaves. Against the mock Runtime API, which records
//! every request and can answer with faults.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::mock::{Event, Fault, MockApi};
use super::{lambda_env, start_function};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

fn probe_with(mock: &MockApi, extra: &[(&'static str, &str)]) -> fnkit_tests::FnProcess {
    let mut env = lambda_env(&mock.api());
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    start_function("lambda-probe", &env)
}

/// Waits until `n` `GET /next` are outstanding (or have arrived).
fn wait_for_nexts(mock: &MockApi, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.next_count() < n {
        assert!(
            Instant::now() < deadline,
            "only {} /next arrived",
            mock.next_count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn lambda_concurrency_four_invocations_run_at_once_with_their_own_ids() {
    let mock = MockApi::start();
    let f = probe_with(&mock, &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")]);
    wait_for_nexts(&mock, 4);
    // Exactly four: the fifth /next comes only when an invocation is done.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(mock.next_count(), 4);

    let started = Instant::now();
    for i in 1..=4 {
        mock.push(Event::new(
            &format!("c-{i}"),
            r#"{"action":"sleep","ms":300}"#,
        ));
    }
    let mut answered = BTreeSet::new();
    for i in 1..=4 {
        let id = format!("c-{i}");
        let r = mock.wait_answer(&id);
        assert!(r.path.ends_with("/response"), "{r:?}");
        assert_eq!(r.json()["request_id"], id.as_str());
        answered.insert(id);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "four 300 ms invocations took {took:?}: they did not run at once"
    );
    assert_eq!(answered.len(), 4);

    // One "probe slept" line per invocation, each a JSON line with its own request id (logs are
    // JSON when invocations interleave, whatever AWS_LAMBDA_LOG_FORMAT says).
    let deadline = Instant::now() + Duration::from_secs(2);
    while f
        .logs()
        .iter()
        .filter(|l| l.contains("probe slept"))
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "{:?}", f.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    let slept: BTreeSet<String> = f
        .logs()
        .iter()
        .filter(|l| l.contains("probe slept"))
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["requestId"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(slept, answered);
}

#[test]
fn lambda_concurrency_leaves_the_process_wide_trace_variable_alone() {
    let mock = MockApi::start();
    let _f = probe_with(&mock, &[("AWS_LAMBDA_MAX_CONCURRENCY", "2")]);
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    mock.push(Event::new("t-1", "{}").header("Lambda-Runtime-Trace-Id", trace));
    let v = mock.wait_answer("t-1").json();
    assert_eq!(v["xray_trace_id"], trace, "{v}");
    assert_eq!(v["trace_env"], Value::Null, "{v}");
}

#[test]
fn lambda_concurrency_unset_is_one_next_at_a_time() {
    let mock = MockApi::start();
    let _f = probe_with(&mock, &[]);
    wait_for_nexts(&mock, 1);
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(mock.next_count(), 1);
}

#[test]
fn lambda_a_bad_concurrency_is_an_init_error() {
    let mock = MockApi::start();
    let mut f = probe_with(&mock, &[("AWS_LAMBDA_MAX_CONCURRENCY", "lots")]);
    let init = mock.wait_for(Duration::from_secs(10), "/init/error", |r| {
        r.path.ends_with("/runtime/init/error")
    });
    assert_eq!(init.json()["errorType"], "Runtime.InvalidConfig");
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(!status.success());
}

#[test]
fn lambda_a_shutdown_hook_registers_an_extension_and_runs_on_sigterm() {
    let mock = MockApi::start();
    let mut f = probe_with(&mock, &[("PROBE_SHUTDOWN_HOOK", "1")]);
    wait_for_nexts(&mock, 1);
    let requests = mock.requests();
    let register = requests
        .iter()
        .find(|r| r.path == "/2020-01-01/extension/register")
        .expect("the extension registered");
    let first_next = requests.iter().find(|r| r.path == NEXT).expect("a /next");
    assert!(register.seq < first_next.seq, "registered after init ended");
    assert_eq!(register.method, "POST");
    assert!(
        register.header("lambda-extension-name").is_some(),
        "{register:?}"
    );
    assert_eq!(register.json(), serde_json::json!({"events": []}));
    // The extension says it is ready with its own event/next, under the id it was given.
    let events = mock.wait_for(Duration::from_secs(5), "the extension's event/next", |r| {
        r.path == "/2020-01-01/extension/event/next"
    });
    assert_eq!(events.header("lambda-extension-identifier"), Some("ext-7"));

    // It still serves.
    mock.push(Event::new("h-1", "{}"));
    assert!(mock.wait_answer("h-1").path.ends_with("/response"));

    let signalled = Instant::now();
    f.signal("TERM");
    let status = f.wait_exit(Duration::from_secs(2)).expect("did not exit");
    assert!(status.success(), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_millis(500),
        "{:?}",
        signalled.elapsed()
    );
    assert!(
        f.logs()
            .iter()
            .any(|l| l.contains("probe shutdown hook ran")),
        "{:?}",
        f.logs()
    );
}

#[test]
fn lambda_without_a_shutdown_hook_registers_nothing() {
    let mock = MockApi::start();
    let _f = start_function("hello", &lambda_env(&mock.api()));
    wait_for_nexts(&mock, 1);
    mock.push(Event::new("n-1", r#"{"name":"Ada"}"#));
    mock.wait_answer("n-1");
    assert!(
        mock.requests()
            .iter()
            .all(|r| !r.path.contains("/extension/")),
        "{:?}",
        mock.requests()
    );
}

#[test]
fn lambda_fault_a_reset_or_503_on_next_is_retried() {
    let mock = MockApi::start();
    let _f = start_function("hello", &lambda_env(&mock.api()));
    mock.push(Event::fault(Fault::Reset));
    mock.push(Event::fault(Fault::Status(503)));
    mock.push(Event::new("r-1", r#"{"name":"Ada"}"#));
    let r = mock.wait_answer("r-1");
    assert_eq!(r.json()["message"], "Hello, Ada!");
}

#[test]
fn lambda_fault_next_answering_garbage_ends_the_process_after_bounded_retries() {
    let mock = MockApi::start();
    let mut f = start_function("hello", &lambda_env(&mock.api()));
    for _ in 0..10 {
        mock.push(Event::fault(Fault::Garbage));
    }
    let status = f.wait_exit(Duration::from_secs(5)).expect("kept retrying");
    assert!(!status.success(), "{status:?}");
    // 1 + 4 tries, no more.
    assert_eq!(mock.next_count(), 5);
    let errors: Vec<String> = f
        .logs()
        .into_iter()
        .filter(|l| l.contains("ERROR") && l.contains("Runtime API"))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn lambda_fault_next_answering_500_ends_the_process_at_once() {
    let mock = MockApi::start();
    let mut f = start_function("hello", &lambda_env(&mock.api()));
    wait_for_nexts(&mock, 1);
    let t = Instant::now();
    mock.push(Event::fault(Fault::Status(500)));
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(!status.success());
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(mock.next_count(), 1, "a 500 is not retried");
    assert!(
        f.logs().iter().any(|l| l.contains("/next with 500")),
        "{:?}",
        f.logs()
    );
}

#[test]
fn lambda_fault_a_reset_during_response_is_retried_then_the_loop_goes_on() {
    let mock = MockApi::start();
    let _f = start_function("hello", &lambda_env(&mock.api()));
    mock.fail_once("/response", Fault::Reset);
    mock.push(Event::new("p-1", r#"{"name":"Ada"}"#));
    mock.push(Event::new("p-2", r#"{"name":"Bob"}"#));
    let second = mock.wait_answer("p-2");
    assert_eq!(second.json()["message"], "Hello, Bob!");
    let first: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/p-1/response"))
        .collect();
    assert_eq!(first.len(), 2, "the reset /response was sent again");
    assert_eq!(first[1].json()["message"], "Hello, Ada!");
}

#[test]
fn lambda_fault_response_answered_500_ends_the_process() {
    let mock = MockApi::start();
    let mut f = start_function("hello", &lambda_env(&mock.api()));
    mock.answer("/response", 500);
    mock.push(Event::new("q-1", r#"{"name":"Ada"}"#));
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(!status.success());
    assert!(
        f.logs().iter().any(|l| l.contains("/response with 500")),
        "{:?}",
        f.logs()
    );
}

#[test]
fn lambda_fault_a_malformed_deadline_runs_without_one_and_says_so() {
    let mock = MockApi::start();
    let f = probe_with(&mock, &[]);
    mock.push(Event::new("d-1", "{}").header("Lambda-Runtime-Deadline-Ms", "soon"));
    let v = mock.wait_answer("d-1").json();
    assert_eq!(v["deadline_ms"], Value::Null, "{v}");
    assert!(
        f.wait_for_log("Lambda-Runtime-Deadline-Ms", Duration::from_secs(2))
            .is_some(),
        "{:?}",
        f.logs()
    );
}
