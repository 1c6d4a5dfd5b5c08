//! Local mode and platform detection: docs/conformance.md #55–#56.

use std::time::Duration;

use fnkit_tests::{free_port, FnProcess, Request};

fn platform_of(f: &FnProcess) -> String {
    let v = f.send(&Request::get("/health")).json();
    v["platform"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn local_55_no_platform_environment_serves_http_on_port() {
    let f = FnProcess::start("hello", &[]);
    assert_eq!(platform_of(&f), "local");
    let r = f.post_json("/", r#"{"name":"Local"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Hello, Local!");
    // Same error semantics as on Knative.
    assert_eq!(f.post_json("/", "{").status, 400);
}

#[test]
fn local_56_k_service_means_knative() {
    let f = FnProcess::start("hello", &[("K_SERVICE", "svc")]);
    assert_eq!(platform_of(&f), "knative");
}

#[test]
fn local_56_the_watchdog_environment_means_openfaas_on_the_upstream_port() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let f = FnProcess::spawn(
        "hello",
        &[
            ("mode", "http"),
            ("fprocess", "hello"),
            ("upstream_url", &url),
            ("PORT", "1"),
        ],
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    );
    f.wait_healthy("/health");
    assert_eq!(platform_of(&f), "openfaas");
}

#[test]
fn local_56_fnkit_platform_overrides_detection() {
    let f = FnProcess::start(
        "hello",
        &[
            ("FNKIT_PLATFORM", "local"),
            ("K_SERVICE", "svc"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9"),
        ],
    );
    assert_eq!(platform_of(&f), "local");
    let f = FnProcess::start("hello", &[("FNKIT_PLATFORM", "knative")]);
    assert_eq!(platform_of(&f), "knative");
}

#[test]
fn local_56_an_unknown_fnkit_platform_is_a_clear_error() {
    let mut f = FnProcess::spawn(
        "hello",
        &[("FNKIT_PLATFORM", "azure")],
        "127.0.0.1:9".parse().unwrap(),
    );
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(!status.success());
    let (found, all) = f.wait_for_output(&["FNKIT_PLATFORM", "azure"], Duration::from_secs(2));
    assert!(found, "{all}");
}
