//! `cargo fnkit` driven as a user drives it: `new` for each shape, then the generated crate's own
//! `cargo test`, `run --as local|knative|lambda|openfaas` answering `invoke` with sample events,
//! `build --zip` (the suite's one release build), `image` into a layout, `deploy --dry-run`, and
//! the errors a user meets.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::path::Path;

use common::{err, ok, release_build, work_dir, Served};

#[test]
fn cargo_passes_fnkit_first_and_the_tool_takes_it() {
    let out = ok(Path::new("."), &["fnkit", "--help"]);
    for sub in ["new", "run", "invoke", "build", "image", "deploy"] {
        assert!(out.contains(sub), "--help lists {sub}:\n{out}");
    }
    let out = ok(Path::new("."), &["invoke", "--help"]);
    assert!(out.contains("cloudevent-structured"), "{out}");
}

#[test]
fn new_refuses_a_bad_name_and_an_existing_directory() {
    let dir = common::fresh_dir("refusals");
    let e = err(
        &dir,
        &[
            "new",
            "My_Function",
            "--fnkit-git",
            "https://example.invalid/f",
        ],
    );
    assert!(e.contains("invalid function name `My_Function`"), "{e}");
    std::fs::create_dir(dir.join("taken")).unwrap();
    let e = err(
        &dir,
        &["new", "taken", "--fnkit-git", "https://example.invalid/f"],
    );
    assert!(e.contains("`taken` already exists"), "{e}");
    let e = err(&dir, &["new", "x", "--fnkit-path", "/nonexistent/fnkit"]);
    assert!(e.contains("--fnkit-path /nonexistent/fnkit"), "{e}");
    let e = err(&dir, &["new", "x", "--shape", "grpc"]);
    assert!(e.contains("invalid value 'grpc'"), "{e}");
}

#[test]
fn invoke_and_deploy_explain_what_is_missing() {
    let e = err(Path::new("."), &["invoke", "--port", "1"]);
    assert!(e.contains("nothing to send: give --event NAME"), "{e}");
    let e = err(Path::new("."), &["invoke", "--event", "kafka"]);
    assert!(
        e.contains("invalid value 'kafka'") && e.contains("apigw-v2"),
        "{e}"
    );
    let e = err(Path::new("."), &["invoke", "--port", "1", "--data", "{}"]);
    assert!(e.contains("no answer from 127.0.0.1:1"), "{e}");
    let empty = common::fresh_dir("no-crate");
    let e = err(&empty, &["deploy", "lambda", "--dry-run"]);
    assert!(e.contains("no function crate here"), "{e}");
}

#[test]
fn build_arm64_without_a_linker_says_what_to_install() {
    // A crate from `new` is enough: the linker is looked for before cargo builds anything.
    let parent = common::fresh_dir("arm64-no-linker");
    let root = common::repo_root();
    ok(
        &parent,
        &["new", "fk-arm", "--fnkit-path", root.to_str().unwrap()],
    );
    let cargo = std::env::var_os("CARGO").expect("cargo sets CARGO for tests");
    let out = common::tool(&parent.join("fk-arm"))
        .args(["build", "--arm64"])
        .env("CARGO", cargo)
        .env("PATH", "/nonexistent")
        .env("FNKIT_ZIG_PYTHON", "/nonexistent/python")
        .env_remove("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("--arm64 needs a linker for aarch64-unknown-linux-musl")
            && e.contains("pip install ziglang")
            && e.contains("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"),
        "{e}"
    );
}

#[test]
fn a_typed_function_answers_on_every_platform() {
    let dir = new_checked("fk-typed", "typed");
    for f in [
        "Cargo.lock",
        ".cargo/config.toml",
        "sam/template.yaml",
        "Makefile",
    ] {
        assert!(dir.join(f).is_file(), "new wrote {f}");
    }
    // idna's stub adapter, as fnkit's own lock pins it (docs/cli.md, "Cargo.lock").
    let lock = std::fs::read_to_string(dir.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("name = \"idna_adapter\"\nversion = \"1.0.0\""),
        "idna_adapter pinned to 1.0.0"
    );
    common::cargo(&dir, &["test", "--offline", "--locked"]);

    for platform in ["local", "knative", "openfaas"] {
        let served = Served::start(&dir, platform);
        let direct = served.invoke(platform, &["--data", r#"{"name":"Ada"}"#]);
        assert_eq!(direct.status, 200, "{platform}: {direct:?}");
        assert_eq!(direct.json()["message"], "Hello, Ada!", "{platform}");
        // A Function URL sample (base64 body) becomes the HTTP request it describes.
        let url = served.invoke(platform, &["--event", "function-url"]);
        assert_eq!(url.json()["message"], "Hello, Ada!", "{platform}");
        let bad = served.invoke(platform, &["--data", "[1,2]"]);
        assert_eq!(bad.status, 400, "{platform}: {bad:?}");
        assert_eq!(bad.json()["error"], "InvalidInput", "{platform}");
        if platform == "openfaas" {
            let (status, body) = common::http_get(served.port, "/_/health").unwrap();
            assert_eq!((status, body.as_str()), (200, "OK"));
        }
        // Stopping the tool (SIGTERM, as Ctrl-C) stops the function with it.
        let port = served.port;
        drop(served);
        assert!(
            common::http_get(port, "/health").is_none(),
            "{platform}: nothing answers on {port} once the tool stopped"
        );
    }

    serves_as_its_openfaas_stack_says(&dir, "fk-typed");

    let served = Served::start(&dir, "lambda");
    let ada = served.invoke("lambda", &["--data", r#"{"name":"Ada"}"#]);
    assert_eq!(
        (ada.status, ada.json()["message"].as_str()),
        (200, Some("Hello, Ada!"))
    );
    // A typed handler gets the raw event: an SQS batch has no `name`.
    let sqs = served.invoke("lambda", &["--event", "sqs"]);
    assert_eq!(sqs.json()["message"], "Hello, world!");
    let bad = served.invoke("lambda", &["--data", "[1,2]"]);
    assert_eq!(
        bad.header("x-amz-function-error"),
        Some("Unhandled"),
        "{bad:?}"
    );
    assert_eq!(bad.json()["errorType"], "InvalidInput");
    assert!(bad.json()["errorMessage"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[test]
fn an_http_function_gets_api_gateway_and_alb_events_as_requests() {
    let dir = new_checked("fk-http", "http");
    common::cargo(&dir, &["test", "--offline", "--locked"]);

    let served = Served::start(&dir, "knative");
    let v1 = served.invoke("knative", &["--event", "apigw-v1", "--data", "hello"]);
    let v1 = v1.json();
    assert_eq!(v1["method"], "POST");
    assert_eq!(v1["path"], "/orders/42");
    assert_eq!(v1["query"], "verbose=true");
    assert_eq!(v1["body"], "hello");
    drop(served);

    let served = Served::start(&dir, "lambda");
    // On Lambda the answer is in the event source's response shape.
    let v2 = served.invoke("lambda", &["--event", "apigw-v2"]);
    let v2 = v2.json();
    assert_eq!(v2["statusCode"], 200, "{v2}");
    let inner: serde_json::Value = serde_json::from_str(v2["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["path"], "/orders/42");
    assert_eq!(inner["body"], r#"{"name":"Ada"}"#);
    let alb = served.invoke("lambda", &["--event", "alb"]).json();
    assert_eq!(alb["statusCode"], 200, "{alb}");
    assert_eq!(alb["statusDescription"], "200 OK");
    // An SQS batch is no HTTP event: the error names what was received.
    let sqs = served.invoke("lambda", &["--event", "sqs"]);
    assert_eq!(sqs.header("x-amz-function-error"), Some("Unhandled"));
    assert_eq!(sqs.json()["errorType"], "InvalidInput");
}

#[test]
fn an_event_function_replies_in_the_mode_it_was_called() {
    let dir = new_checked("fk-event", "event");
    common::cargo(&dir, &["test", "--offline", "--locked"]);

    let served = Served::start(&dir, "local");
    let binary = served.invoke(
        "local",
        &["--event", "cloudevent-binary", "--data", r#"{"id":7}"#],
    );
    assert_eq!(binary.status, 200, "{binary:?}");
    assert_eq!(
        binary.header("ce-type"),
        Some("com.example.order.created.reply")
    );
    assert_eq!(binary.header("ce-subject"), Some("order-42"));
    assert_eq!(binary.json()["id"], 7);
    let structured = served.invoke("local", &["--event", "cloudevent-structured"]);
    assert!(structured
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/cloudevents+json")));
    let reply = structured.json();
    assert_eq!(reply["type"], "com.example.order.created.reply");
    assert_eq!(reply["data"]["name"], "Ada");
    drop(served);

    let served = Served::start(&dir, "lambda");
    let eb = served.invoke(
        "lambda",
        &["--event", "eventbridge", "--data", r#"{"id":9}"#],
    );
    let reply = eb.json();
    assert_eq!(reply["type"], "OrderCreated.reply", "{reply}");
    assert_eq!(reply["data"]["id"], 9);
}

#[test]
fn build_zip_gives_a_static_binary_and_a_reproducible_bootstrap_zip() {
    let build = release_build();
    assert!(build.stdout.contains("binary") && build.stdout.contains("bootstrap.zip"));
    let elf = std::fs::read(&build.binary).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 62, "x86-64");
    assert!(!has_interpreter(&elf), "static: no PT_INTERP");
    // Linked with the crate's .cargo/fnkit-layout.ld: .text and the layout's four groups.
    assert_eq!(
        code_segments(&elf),
        5,
        "the code layout's five code segments"
    );

    let first = std::fs::read(&build.zip).unwrap();
    ok(&build.dir, &["build", "--zip"]);
    assert_eq!(
        std::fs::read(&build.zip).unwrap(),
        first,
        "same binary, same zip bytes"
    );
    // Read back by an independent reader: Python's zipfile.
    let listing = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None\n\
             for i in z.infolist(): print(i.filename, oct(i.external_attr >> 16), i.date_time, i.file_size)",
        ])
        .arg(&build.zip)
        .output();
    match listing {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let size = elf.len();
            assert_eq!(
                text.trim(),
                format!("bootstrap 0o100755 (1980, 1, 1, 0, 0, 0) {size}")
            );
        }
        other => {
            assert!(
                !common::in_ci(),
                "CI: python3 cannot read the zip: {other:?}"
            );
            println!("SKIPPED the zipfile cross-check: python3 unavailable ({other:?})");
        }
    }
}

#[test]
fn sam_builds_the_generated_template_into_a_bootstrap() {
    let build = release_build();
    let venv = common::repo_root().join(".venv/bin");
    let sam = venv.join("sam");
    if !sam.is_file() {
        assert!(
            !common::in_ci(),
            "CI: {} is missing (make venv installs it)",
            sam.display()
        );
        println!(
            "SKIPPED: no {} (make venv installs the SAM CLI)",
            sam.display()
        );
        return;
    }
    let _ = std::fs::remove_dir_all(build.dir.join(".aws-sam"));
    let config = build.dir.join("sam/samconfig.toml");
    let out = std::process::Command::new(&sam)
        .args([
            "build",
            "--template-file",
            "sam/template.yaml",
            "--config-file",
        ])
        .arg(&config)
        .args([
            "--build-in-source",
            "--parameter-overrides",
            "Architecture=x86_64",
        ])
        .current_dir(&build.dir)
        .env("CARGO_TARGET_DIR", common::shared_target())
        .env("ARCH", "x86_64")
        .env("SAM_CLI_TELEMETRY", "0")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sam build: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bootstrap = build.dir.join(".aws-sam/build/Function/bootstrap");
    assert_eq!(
        std::fs::read(&bootstrap).unwrap(),
        std::fs::read(&build.binary).unwrap()
    );
    // The repository's own check: provided.al2023, Handler bootstrap, a static ELF of the arch.
    let check = std::process::Command::new(venv.join("python"))
        .arg(common::repo_root().join("sam/check_template.py"))
        .args([
            "--artifacts",
            ".aws-sam/build",
            "--parameter",
            "Architecture=x86_64",
        ])
        .arg("sam/template.yaml")
        .current_dir(&build.dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn image_writes_an_oci_layout_of_the_release_binary() {
    let build = release_build();
    let out_dir = work_dir().join("image-layout");
    let _ = std::fs::remove_dir_all(&out_dir);
    let text = ok(
        &build.dir,
        &[
            "image",
            "--output",
            out_dir.to_str().unwrap(),
            "--tag",
            "fk-release:test",
        ],
    );
    let digest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("a digest line in {text}"));
    assert!(digest.starts_with("sha256:"), "{digest}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "fk-release:test"
    );
    let blob = out_dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert!(blob.is_file());
    assert!(
        text.contains("CA certs none"),
        "no TLS crate in the lock: {text}"
    );
}

#[test]
fn image_push_records_the_digest_that_deploy_pins() {
    let Some(registry) = common::Registry::start() else {
        assert!(
            !common::in_ci(),
            "CI: docker-registry is missing (make oci-peers installs it)"
        );
        println!("SKIPPED: no docker-registry (apt-get install docker-registry)");
        return;
    };
    let build = release_build();
    let tag = format!("127.0.0.1:{}/fk-release:v1", registry.port);
    let text = ok(&build.dir, &["image", "--push", "--tag", &tag]);
    let digest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("digest"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("a digest line in {text}"));
    assert!(text.contains(&format!("pushed   {tag}@{digest}")), "{text}");
    // The registry serves that manifest under the tag.
    let (status, head, _) = common::http_request(
        registry.port,
        "GET",
        "/v2/fk-release/manifests/v1",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
    )
    .expect("the registry answers");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("docker-content-digest: {digest}")),
        "{head}"
    );
    // deploy pins what was pushed.
    let kn = ok(&build.dir, &["deploy", "knative", "--dry-run"]);
    assert_eq!(
        kn.lines().nth(1),
        Some(
            format!(
                "kn service create fk-release --image 127.0.0.1:{}/fk-release@{digest} --force",
                registry.port
            )
            .as_str()
        )
    );
}

#[test]
fn deploy_dry_run_prints_each_platform_s_commands() {
    let parent = common::fresh_dir("deploy");
    let root = common::repo_root();
    ok(
        &parent,
        &["new", "fk-deploy", "--fnkit-path", root.to_str().unwrap()],
    );
    let dir = parent.join("fk-deploy");

    let lambda = ok(&dir, &["deploy", "lambda", "--dry-run"]);
    let config = dir.join("sam/samconfig.toml");
    let lines: Vec<&str> = lambda.lines().collect();
    assert_eq!(lines[0], format!("# in {}", dir.display()));
    assert_eq!(
        lines[1],
        format!(
            "ARCH=x86_64 sam build --template-file sam/template.yaml --config-file {} \
             --build-in-source --parameter-overrides Architecture=x86_64",
            config.display()
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "sam deploy --template-file .aws-sam/build/template.yaml --config-file {} \
             --parameter-overrides Architecture=x86_64",
            config.display()
        )
    );
    let arm = ok(&dir, &["deploy", "lambda", "--dry-run", "--arm64"]);
    assert!(arm.contains("ARCH=arm64 sam build") && arm.contains("Architecture=arm64"));

    // No image pushed yet: knative says how to get one.
    let _ =
        std::fs::remove_file(common::shared_target().join("fnkit-image/fk-deploy.last-push.json"));
    let e = err(&dir, &["deploy", "knative", "--dry-run"]);
    assert!(e.contains("cargo fnkit image --push --tag REF"), "{e}");
    // What `image --push` records, pinned by digest (the tag dropped).
    let digest = format!("sha256:{}", "ab".repeat(32));
    std::fs::create_dir_all(common::shared_target().join("fnkit-image")).unwrap();
    std::fs::write(
        common::shared_target().join("fnkit-image/fk-deploy.last-push.json"),
        serde_json::json!({
            "function": "fk-deploy",
            "reference": "127.0.0.1:5000/fk-deploy:v1",
            "digest": digest,
        })
        .to_string(),
    )
    .unwrap();
    let kn = ok(&dir, &["deploy", "knative", "--dry-run"]);
    assert_eq!(
        kn.lines().nth(1),
        Some(
            format!(
                "kn service create fk-deploy --image 127.0.0.1:5000/fk-deploy@{digest} --force"
            )
            .as_str()
        )
    );
    let of = ok(
        &dir,
        &[
            "deploy",
            "openfaas",
            "--dry-run",
            "--image",
            "ghcr.io/me/f:1",
        ],
    );
    assert_eq!(
        of.lines().nth(1),
        Some("FNKIT_IMAGE=ghcr.io/me/f:1 faas-cli deploy -f openfaas/stack.yml")
    );
    // Without --dry-run the same command runs, in the crate's folder.
    let bin = common::fresh_dir("fake-tools");
    let record = bin.join("kn.args");
    std::fs::write(
        bin.join("kn"),
        format!(
            "#!/bin/sh\npwd > {0}\necho \"$@\" >> {0}\n",
            record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        bin.join("kn"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = common::tool(&dir)
        .args(["deploy", "knative"])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        recorded,
        format!(
            "{}\nservice create fk-deploy --image 127.0.0.1:5000/fk-deploy@{digest} --force\n",
            dir.canonicalize().unwrap().display()
        )
    );
    let e = err(&dir, &["deploy", "lambda", "--image", "x"]);
    assert!(e.contains("--image is for knative and openfaas"), "{e}");
    // Without --dry-run, a missing tool is named with how to install it.
    let e = common::tool(&dir)
        .args(["deploy", "openfaas", "--image", "x"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&e.stderr);
    assert!(
        e.contains("`faas-cli` was not found on PATH") && e.contains("cli.openfaas.com"),
        "{e}"
    );
}

/// The generated openfaas/stack.yml runs the image without of-watchdog: the binary, with the
/// stack's `environment` (OpenFaaS direct mode), must itself listen on the watchdog's `port` and
/// answer the watchdog's probe paths.
fn serves_as_its_openfaas_stack_says(dir: &Path, name: &str) {
    let stack = std::fs::read_to_string(dir.join("openfaas/stack.yml")).unwrap();
    let env_block = stack
        .split("    environment:\n")
        .nth(1)
        .expect("an environment block");
    let port = common::free_port();
    let mut cmd = std::process::Command::new(common::shared_target().join("debug").join(name));
    for line in env_block.lines().take_while(|l| l.starts_with("      ")) {
        let (key, value) = line.trim().split_once(": ").expect("key: value");
        // The stack's port is 8080, as on OpenFaaS; here a free one.
        let value = if key == "port" {
            port.to_string()
        } else {
            value.to_owned()
        };
        cmd.env(key, value);
    }
    let mut child = cmd
        .env_remove("PORT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let health = loop {
        if let Some(answer) = common::http_get(port, "/_/health") {
            break answer;
        }
        assert!(
            std::time::Instant::now() < until,
            "the function never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let ready = common::http_get(port, "/_/ready");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(health.0, 200, "{health:?}");
    assert_eq!(ready.map(|r| r.0), Some(200));
}

/// `cargo fnkit new` into a fresh folder; checks the crate's files name it.
fn new_checked(name: &str, shape: &str) -> std::path::PathBuf {
    let dir = common::new_crate(name, shape);
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!("name = \"{name}\"")));
    let fnkit = common::repo_root().join("crates/fnkit");
    assert!(manifest.contains(&format!("fnkit = {{ path = \"{}\" }}", fnkit.display())));
    dir
}

/// Whether an ELF64 little-endian file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    program_headers(elf).any(|(p_type, _)| p_type == 3)
}

/// Executable `PT_LOAD`s.
fn code_segments(elf: &[u8]) -> usize {
    program_headers(elf)
        .filter(|&(p_type, p_flags)| p_type == 1 && p_flags & 1 != 0)
        .count()
}

/// `(p_type, p_flags)` of each program header of a 64-bit little-endian ELF.
fn program_headers(elf: &[u8]) -> impl Iterator<Item = (u32, u32)> + '_ {
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).map(move |i| (u32_at(phoff + i * size), u32_at(phoff + i * size + 4)))
}
