//! A function built with fnkit's `http` feature alone: the HTTP runtime without CloudEvents
//! (no cloudevents-sdk), the smallest HTTP build. `make test` builds `hello` that way
//! (`make plain-http-hello`: `--no-default-features --features fnkit/http`) and points
//! `FNKIT_PLAIN_HTTP_BIN` at it; a workspace build cannot make it, as Cargo unifies the features of
//! every member it builds. These tests check that it
//! - serves plain JSON as the default build does, locally, on Knative and on OpenFaaS;
//! - answers a CloudEvent, in every mode, 415 with fnkit's JSON error naming the feature that
//!   reads it, and never hands the event to the handler as plain JSON (`hello` would greet it).
//!
//! Without `FNKIT_PLAIN_HTTP_BIN` (a plain `cargo test`) they say SKIPPED and pass; under CI (`CI`
//! set) a missing binary fails them, since `make test` provides it.

use fnkit_tests::{FnProcess, Request};

/// The `http`-only `hello` from `FNKIT_PLAIN_HTTP_BIN`, as the path `FnProcess` starts in place
/// of a name.
fn plain_http_hello() -> Option<String> {
    fnkit_tests::built_aside("FNKIT_PLAIN_HTTP_BIN", "plain-http-hello")
        .map(|path| path.to_string_lossy().into_owned())
}

#[test]
fn plain_http_serves_plain_json_locally_on_knative_and_on_openfaas() {
    let Some(bin) = plain_http_hello() else {
        return;
    };
    for (platform, env) in [
        ("local", &[][..]),
        ("knative", &[("K_SERVICE", "svc")][..]),
        (
            "openfaas",
            &[
                ("FNKIT_PLATFORM", "openfaas"),
                ("FNKIT_OPENFAAS_MODE", "direct"),
            ][..],
        ),
    ] {
        let f = FnProcess::start(&bin, env);
        let health = f.send(&Request::get("/health")).json();
        assert_eq!(health["platform"], platform);
        let r = f.post_json("/", r#"{"name":"Ada"}"#);
        assert_eq!(r.status, 200, "{platform}: {}", r.text());
        assert_eq!(r.json()["message"], "Hello, Ada!", "{platform}");
        // No Content-Type is JSON too; malformed JSON is a 400, as in the default build.
        let r = f.send(&Request::post("/", r#"{"name":"Bo"}"#));
        assert_eq!(r.json()["message"], "Hello, Bo!", "{platform}");
        assert_eq!(f.post_json("/", "{").status, 400, "{platform}");
    }
}

#[test]
fn plain_http_answers_a_cloudevent_415_naming_the_cloudevents_feature() {
    let Some(bin) = plain_http_hello() else {
        return;
    };
    let f = FnProcess::start(&bin, &[]);
    let event = r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"name":"Ada"}}"#;
    let binary = Request::post("/", r#"{"name":"Ada"}"#)
        .header("content-type", "application/json")
        .header("ce-specversion", "1.0")
        .header("ce-id", "1")
        .header("ce-source", "/s")
        .header("ce-type", "t");
    let structured = Request::post("/", event).header(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    );
    let batch = Request::post("/", format!("[{event}]"))
        .header("content-type", "application/cloudevents-batch+json");
    for (mode, req) in [
        ("binary", binary),
        ("structured", structured),
        ("batch", batch),
    ] {
        let r = f.send(&req);
        assert_eq!(r.status, 415, "{mode}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{mode}");
        let v = r.json();
        assert_eq!(v["error"], "UnsupportedMediaType", "{mode}");
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("built without CloudEvents")
                && message.contains("`cloudevents` feature"),
            "{mode}: {message}"
        );
    }
}
