//! Against cargo-lambda's Runtime API emulator (`cargo lambda watch --only-lambda-apis`), a peer
//! we did not write: each example function is started as Lambda starts it and invoked as a
//! caller invokes it (docs/conformance.md #3–#6 end to end).
//!
//! cargo-lambda comes from PyPI into `.venv` (`make test` installs it). Without it these tests
//! say so and pass; CI always has it.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use fnkit_tests::{free_port, request, FnProcess, Request};

use super::{fixture, start_function};

/// A running `cargo lambda watch --only-lambda-apis` on a free loopback port; killed on drop.
pub(super) struct Emulator {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cargo_lambda() -> Option<PathBuf> {
    let venv = fnkit_tests::workspace_root().join(".venv/bin/cargo-lambda");
    if venv.exists() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("cargo-lambda"))
            .find(|p| p.exists())
    })
}

impl Emulator {
    /// Starts the emulator, or returns `None` (with a message) when cargo-lambda is missing on a
    /// developer's machine. Under CI (`CI` set, as `.ci/run` runs) a missing emulator fails the
    /// test: `make test` installs it, so its absence is a broken setup, not a skip.
    pub(super) fn start(test: &str) -> Option<Self> {
        let Some(bin) = cargo_lambda() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: cargo-lambda is not installed; `make venv` installs it into .venv"
            );
            eprintln!(
                "SKIPPED {test}: cargo-lambda is not installed (`make venv` installs it into .venv)"
            );
            return None;
        };
        // cargo-lambda runs `cargo metadata` in its working directory: give it an empty project.
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("fnkit-cargo-lambda-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("src")).expect("temp dir");
        std::fs::write(
            dir.join("Cargo.toml"),
            "[package]\nname = \"emulator\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .expect("write Cargo.toml");
        std::fs::write(dir.join("src/main.rs"), "fn main() {}\n").expect("write main.rs");
        let child = Command::new(bin)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start cargo-lambda");
        let emulator = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: TempDir(dir),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&emulator.addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo-lambda did not listen on {}",
                emulator.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(emulator)
    }

    /// Starts `binary` with the environment the emulator asks for.
    fn function(&self, binary: &str) -> FnProcess {
        self.function_with(binary, &[])
    }

    /// [`Emulator::function`] with `extra` variables too.
    pub(super) fn function_with(
        &self,
        binary: &str,
        extra: &[(&'static str, String)],
    ) -> FnProcess {
        let mut env = vec![
            (
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://{}/.rt", self.addr),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", "_".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096".to_owned()),
        ];
        env.extend_from_slice(extra);
        start_function(binary, &env)
    }

    /// Invokes the function synchronously and returns the payload (or error document).
    pub(super) fn invoke(&self, payload: impl Into<Vec<u8>>) -> Value {
        let req = Request::post("/2015-03-31/functions/_/invocations", payload.into())
            .header("content-type", "application/json");
        let resp = request(self.addr, &req);
        // cargo-lambda answers a function error with 500, AWS with 200: judge by the body.
        assert!(
            resp.status == 200 || resp.status == 500,
            "{} {}",
            resp.status,
            resp.text()
        );
        resp.json()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_error(v: &Value, error_type: &str, message_starts: &str) {
    assert_eq!(v["errorType"], error_type, "{v}");
    let msg = v["errorMessage"].as_str().unwrap_or_default();
    assert!(msg.starts_with(message_starts), "{v}");
}

#[test]
fn emulator_hello_answers_then_reports_a_bad_payload_then_answers_again() {
    let Some(emu) = Emulator::start("emulator_hello") else {
        return;
    };
    let _f = emu.function("hello");
    assert_eq!(
        emu.invoke(r#"{"name":"Ada"}"#),
        json!({"message": "Hello, Ada!"})
    );
    // docs/conformance.md #6: a payload that does not fit names the field.
    let err = emu.invoke(r#"{"name":5}"#);
    assert_error(&err, "InvalidInput", "input does not fit");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("`name`"),
        "{err}"
    );
    assert_error(&emu.invoke("{"), "InvalidInput", "malformed JSON");
    assert_eq!(emu.invoke("{}"), json!({"message": "Hello, world!"}));
}

#[test]
fn emulator_probe_panic_then_error_then_success() {
    let Some(emu) = Emulator::start("emulator_probe") else {
        return;
    };
    let _f = emu.function("lambda-probe");
    // docs/conformance.md #5: a panic is reported and the runtime goes on.
    assert_error(
        &emu.invoke(r#"{"action":"panic"}"#),
        "Panic",
        "Lambda panicked: the probe was asked to panic",
    );
    // docs/conformance.md #4.
    assert_error(
        &emu.invoke(r#"{"action":"fail"}"#),
        "HandlerError",
        "the probe was asked to fail",
    );
    let ok = emu.invoke("{}");
    assert_eq!(ok["function_name"], "_");
    assert_eq!(ok["memory_mb"], 4096);
    assert!(
        ok["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{ok}"
    );
    // An async handler gets the emulator's deadline, not an instant timeout.
    let slept = emu.invoke(r#"{"action":"sleep","ms":20}"#);
    assert_eq!(slept["slept_ms"], 20, "{slept}");
}

#[test]
fn emulator_http_echo_serves_api_gateway_and_survives_a_panic() {
    let Some(emu) = Emulator::start("emulator_http_echo") else {
        return;
    };
    let _f = emu.function("http-echo");
    let mut event: Value = serde_json::from_slice(&fixture("apigw-v2-request.json")).unwrap();
    event["rawPath"] = json!("/panic");
    assert_error(&emu.invoke(event.to_string()), "Panic", "Lambda panicked");
    event["rawPath"] = json!("/sleep");
    event["rawQueryString"] = json!("ms=10");
    let resp = emu.invoke(event.to_string());
    assert_eq!(resp["statusCode"], 200, "{resp}");
    let seen: Value = serde_json::from_str(resp["body"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(
        (seen["path"].as_str(), seen["query"].as_str()),
        (Some("/sleep"), Some("ms=10"))
    );
    assert_eq!(seen["platform"], "lambda");
    // Not an HTTP event: an invocation error, and the runtime goes on.
    assert_error(
        &emu.invoke(r#"{"name":"Ada"}"#),
        "InvalidInput",
        "the event is not an API Gateway",
    );
    let resp = emu.invoke(fixture("apigw-v1-request.json"));
    assert_eq!(resp["statusCode"], 200, "{resp}");
}

#[test]
fn emulator_echo_event_turns_eventbridge_into_a_cloudevent() {
    let Some(emu) = Emulator::start("emulator_echo_event") else {
        return;
    };
    let _f = emu.function("echo-event");
    let reply = emu.invoke(fixture("eventbridge-event.json"));
    assert_eq!(
        reply["type"], "EC2 Instance State-change Notification.reply",
        "{reply}"
    );
    assert_eq!(
        reply["data"],
        json!({"instance-id": "i-abcd1111", "state": "pending"})
    );
    assert_error(
        &emu.invoke(r#"[]"#),
        "InvalidEvent",
        "a structured CloudEvent must be a JSON object",
    );
}

#[test]
fn emulator_sqs_batch_reports_partial_failures() {
    let Some(emu) = Emulator::start("emulator_sqs_batch") else {
        return;
    };
    let _f = emu.function("sqs-batch");
    let mut event: Value = serde_json::from_slice(&fixture("sqs-event.json")).unwrap();
    let mut bad = event["Records"][0].clone();
    bad["messageId"] = json!("bad-1");
    bad["body"] = json!("{\"id\":9,\"quantity\":0}");
    let mut good = event["Records"][0].clone();
    good["body"] = json!("{\"id\":1,\"quantity\":1}");
    event["Records"] = json!([good, bad]);
    assert_eq!(
        emu.invoke(event.to_string()),
        json!({"batchItemFailures": [{"itemIdentifier": "bad-1"}]})
    );
}
