//! fnkit-oci against real readers: skopeo and umoci read the layout, Debian's docker-registry
//! takes the push (with and without htpasswd auth), podman runs the image.
//!
//! A missing peer (not installed, not root) skips with a printed reason locally and fails under
//! `CI=true`; `make oci-peers` installs them.

#![allow(clippy::print_stdout, clippy::unwrap_used)]

mod util;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fnkit_oci::{ErrorKind, Image, ImageSpec};
use serde_json::Value;
use sha2::{Digest, Sha256};
use util::{peer, require, run, run_json, Registry, TempDir};

/// Held by the tests that set `DOCKER_CONFIG`.
static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An image of the test binary, with a CA bundle and a label; `None` when skipped. The bool says
/// whether the binary is the test server (which answers with its uid, /tmp and env).
fn build_image() -> Option<(Image, Vec<u8>, bool)> {
    let (binary, arch, is_test_server) = util::test_binary()?;
    let ca = TempDir::new("ca");
    let ca_path = ca.path().join("ca.pem");
    std::fs::write(
        &ca_path,
        "-----BEGIN CERTIFICATE-----\nfnkit test\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let spec = ImageSpec {
        binary: binary.clone(),
        arch,
        ca_bundle: Some(ca_path),
        env: vec![("FNKIT_TEST".into(), "1".into())],
        labels: [(
            "org.opencontainers.image.title".to_owned(),
            "fnkit-oci-test".to_owned(),
        )]
        .into(),
    };
    let start = Instant::now();
    let image = Image::build(&spec).unwrap();
    println!(
        "built {} from {} in {:?}: layer {} B, total {} B",
        image.manifest_digest(),
        binary.display(),
        start.elapsed(),
        image.layer_size(),
        image.total_size()
    );
    // Reproducible: the same inputs, the same digest.
    assert_eq!(
        Image::build(&spec).unwrap().manifest_digest(),
        image.manifest_digest()
    );
    Some((image, std::fs::read(&binary).unwrap(), is_test_server))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn assert_config(config: &Value, image: &Image) {
    assert_eq!(config["architecture"], image.arch().as_str(), "{config}");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["User"], "65534:65534");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/fn"]));
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/", "PORT=8080", "FNKIT_TEST=1"])
    );
    assert_eq!(
        config["config"]["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}})
    );
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "fnkit-oci-test"
    );
    assert_eq!(config["rootfs"]["diff_ids"][0], image.diff_id().as_str());
}

#[test]
fn layout_is_read_back_by_skopeo_and_unpacked_by_umoci() {
    let Some(skopeo) = peer("skopeo") else { return };
    let Some((image, binary, _)) = build_image() else {
        return;
    };
    let dir = TempDir::new("layout");
    let layout = dir.path().join("image");
    image.write_layout(&layout, Some("latest")).unwrap();

    // Our own check: every blob named by index.json and the manifest is there and hashes to its
    // name, and its size is the descriptor's.
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| {
        let bytes = std::fs::read(
            layout
                .join("blobs/sha256")
                .join(digest.trim_start_matches("sha256:")),
        )
        .unwrap();
        assert_eq!(sha256(&bytes), digest);
        bytes
    };
    let m = &index["manifests"][0];
    let manifest_bytes = blob(m["digest"].as_str().unwrap());
    assert_eq!(m["size"], manifest_bytes.len());
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    for d in std::iter::once(&manifest["config"]).chain(manifest["layers"].as_array().unwrap()) {
        assert_eq!(d["size"], blob(d["digest"].as_str().unwrap()).len());
    }

    // skopeo: the manifest as stored, its digest, and the config.
    let oci_ref = format!("oci:{}:latest", layout.display());
    let inspect = run_json(Command::new(&skopeo).args(["inspect", &oci_ref]));
    assert_eq!(
        inspect["Digest"],
        image.manifest_digest().as_str(),
        "{inspect}"
    );
    assert_eq!(inspect["Architecture"], image.arch().as_str());
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"], serde_json::json!([image.layer_digest()]));
    let raw = run(Command::new(&skopeo).args(["inspect", "--raw", &oci_ref]));
    assert_eq!(raw.stdout, image.manifest_json());
    let config = run_json(Command::new(&skopeo).args(["inspect", "--config", &oci_ref]));
    assert_config(&config, &image);
    // skopeo copies it to a plain directory, checking every digest on the way.
    let copied = dir.path().join("copied");
    run(Command::new(&skopeo)
        .args(["copy", "--quiet", &oci_ref])
        .arg(format!("dir:{}", copied.display())));
    assert_eq!(
        std::fs::read(copied.join("manifest.json")).unwrap(),
        image.manifest_json()
    );

    // umoci unpacks it into an OCI runtime bundle: the files, their modes, the user.
    let Some(umoci) = peer("umoci") else { return };
    if require(util::is_root(), || {
        "umoci unpack needs root here (not root)".into()
    })
    .is_none()
    {
        return;
    }
    let bundle = dir.path().join("bundle");
    run(Command::new(&umoci)
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(std::fs::read(rootfs.join("fn")).unwrap(), binary);
    assert_eq!(mode(&rootfs.join("fn")), 0o755);
    assert_eq!(mode(&rootfs.join("tmp")), 0o1777);
    assert!(rootfs.join("tmp").is_dir());
    assert_eq!(
        mode(&rootfs.join("etc/ssl/certs/ca-certificates.crt")),
        0o644
    );
    let mut names: Vec<_> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["etc", "fn", "tmp"],
        "nothing else: no shell, no libc"
    );
    let runtime: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(runtime["process"]["user"]["uid"], 65534);
    assert_eq!(runtime["process"]["user"]["gid"], 65534);
    assert_eq!(runtime["process"]["args"], serde_json::json!(["/fn"]));
}

#[test]
fn push_to_a_local_registry_is_read_back_by_skopeo_and_a_second_push_sends_no_blobs() {
    let Some(skopeo) = peer("skopeo") else { return };
    let Some((image, _, _)) = build_image() else {
        return;
    };
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let reference = format!("{}/fnkit/oci-test:v1", registry.host());

    let start = Instant::now();
    let report = image.push(&reference).unwrap();
    println!("first push: {report:?} in {:?}", start.elapsed());
    assert_eq!(report.digest, image.manifest_digest());
    assert_eq!(report.reference, reference);
    assert_eq!(report.blobs_uploaded, 2);
    assert_eq!(report.bytes_uploaded, image.total_size());

    let docker_ref = format!("docker://{reference}");
    let inspect =
        run_json(Command::new(&skopeo).args(["inspect", "--tls-verify=false", &docker_ref]));
    assert_eq!(
        inspect["Digest"],
        image.manifest_digest().as_str(),
        "{inspect}"
    );
    assert_eq!(inspect["Architecture"], image.arch().as_str());
    let raw =
        run(Command::new(&skopeo).args(["inspect", "--tls-verify=false", "--raw", &docker_ref]));
    assert_eq!(raw.stdout, image.manifest_json());
    let config = run_json(Command::new(&skopeo).args([
        "inspect",
        "--tls-verify=false",
        "--config",
        &docker_ref,
    ]));
    assert_config(&config, &image);

    let start = Instant::now();
    let again = image.push(&reference).unwrap();
    println!("second push: {again:?} in {:?}", start.elapsed());
    assert_eq!(again.digest, image.manifest_digest());
    assert_eq!(again.blobs_uploaded, 0);
    assert_eq!(again.blobs_skipped, 2);
    assert_eq!(again.bytes_uploaded, image.manifest_json().len() as u64);

    // The default tag is latest.
    let latest = image
        .push(&format!("{}/fnkit/oci-test", registry.host()))
        .unwrap();
    assert_eq!(
        latest.reference,
        format!("{}/fnkit/oci-test:latest", registry.host())
    );
}

#[test]
fn push_to_a_registry_with_auth_uses_docker_config_and_names_the_401_without_it() {
    let Some((image, _, _)) = build_image() else {
        return;
    };
    let Some(registry) = Registry::start(Some(("fnkit", "s3cret"))) else {
        return;
    };
    let reference = format!("{}/fnkit/private:v1", registry.host());
    let config_dir = TempDir::new("docker-config");
    let write_config = |user: &str, password: &str| {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({"auths": {registry.host(): {"auth": auth}}});
        std::fs::write(config_dir.path().join("config.json"), config.to_string()).unwrap();
    };
    // The tests with auth set DOCKER_CONFIG, one at a time; the others' registries never ask for
    // credentials, so they never read it.
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("DOCKER_CONFIG", config_dir.path());

    // No config.json: 401, and the message says so.
    let err = image.push(&reference).unwrap_err();
    println!("without credentials: {err}");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let text = err.to_string();
    let refused = format!(
        "registry {} refused the blob check of fnkit/private: 401",
        registry.host()
    );
    assert!(text.contains(&refused), "{text}");
    assert!(text.contains("config.json does not exist"), "{text}");

    // Wrong password: 401, naming the user and where the credentials came from.
    write_config("fnkit", "wrong");
    let err = image.push(&reference).unwrap_err();
    println!("wrong password: {err}");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(err.to_string().contains("user 'fnkit'"), "{err}");

    // The right one: pushed.
    write_config("fnkit", "s3cret");
    let report = image.push(&reference).unwrap();
    println!("with credentials: {report:?}");
    assert_eq!(report.digest, image.manifest_digest());
    assert_eq!(report.blobs_uploaded, 2);
    std::env::remove_var("DOCKER_CONFIG");

    if let Some(skopeo) = util::which("skopeo") {
        let inspect = run_json(
            Command::new(skopeo)
                .args(["inspect", "--tls-verify=false", "--creds", "fnkit:s3cret"])
                .arg(format!("docker://{reference}")),
        );
        assert_eq!(inspect["Digest"], image.manifest_digest().as_str());
    }
}

#[test]
fn push_to_a_registry_with_token_auth_follows_the_bearer_challenge() {
    let Some((image, _, _)) = build_image() else {
        return;
    };
    let Some(tokens) = util::token::TokenServer::start("fnkit", "t0ken-pass") else {
        return;
    };
    let Some(registry) = Registry::start_with_tokens(&tokens) else {
        return;
    };
    let reference = format!("{}/fnkit/bearer:v1", registry.host());
    let config_dir = TempDir::new("docker-config-bearer");
    let _env = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("DOCKER_CONFIG", config_dir.path());

    // No credentials: the token service refuses, and the message says who refused what.
    let err = image.push(&reference).unwrap_err();
    println!("without credentials: {err}");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let text = err.to_string();
    assert!(
        text.contains(&format!("its token service {}", tokens.realm())),
        "{text}"
    );
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("bad credentials"), "{text}");

    // Credentials in config.json (username/password fields this time): a token, then the push.
    let config = serde_json::json!({"auths": {format!("http://{}", registry.host()):
        {"username": "fnkit", "password": "t0ken-pass"}}});
    std::fs::write(config_dir.path().join("config.json"), config.to_string()).unwrap();
    let report = image.push(&reference).unwrap();
    std::env::remove_var("DOCKER_CONFIG");
    println!("with credentials: {report:?}");
    assert_eq!(report.digest, image.manifest_digest());
    assert_eq!(report.blobs_uploaded, 2);
    let issued = tokens.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=2).contains(&issued),
        "one token for pull,push (got {issued})"
    );

    if let Some(skopeo) = util::which("skopeo") {
        let inspect = run_json(
            Command::new(skopeo)
                .args([
                    "inspect",
                    "--tls-verify=false",
                    "--creds",
                    "fnkit:t0ken-pass",
                ])
                .arg(format!("docker://{reference}")),
        );
        assert_eq!(inspect["Digest"], image.manifest_digest().as_str());
    }
}

#[test]
fn podman_runs_the_image_as_nobody_without_a_shell() {
    let Some(podman) = peer("podman") else { return };
    peer("runc");
    if require(util::is_root(), || {
        "podman runs rootful here, and we are not root".into()
    })
    .is_none()
    {
        return;
    }
    let Some((image, _, is_test_server)) = build_image() else {
        return;
    };
    let dir = TempDir::new("podman");
    let layout = dir.path().join("image");
    image.write_layout(&layout, Some("latest")).unwrap();
    // Its own storage in the temp dir: nothing left in the machine's podman store.
    let podman_cmd = || {
        let mut cmd = Command::new(&podman);
        cmd.arg("--root")
            .arg(dir.path().join("storage"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args([
                "--storage-driver",
                "vfs",
                "--runtime",
                "runc",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ]);
        cmd
    };
    let pulled = run(podman_cmd()
        .args(["pull", "--quiet"])
        .arg(format!("oci:{}:latest", layout.display())));
    let id = String::from_utf8_lossy(&pulled.stdout).trim().to_owned();
    assert!(
        image.config_digest().ends_with(&id),
        "podman's image id {id} is the config digest"
    );
    // The way a platform gets it: pushed to a registry, pulled from there. The same image.
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let reference = format!("{}/fnkit/podman:v1", registry.host());
    image.push(&reference).unwrap();
    let pulled = run(podman_cmd()
        .args(["pull", "--quiet", "--tls-verify=false"])
        .arg(format!("docker://{reference}")));
    assert_eq!(String::from_utf8_lossy(&pulled.stdout).trim(), id);
    let digest =
        run(podman_cmd().args(["image", "inspect", "--format", "{{.Digest}}", &reference]));
    assert_eq!(
        String::from_utf8_lossy(&digest.stdout).trim(),
        image.manifest_digest()
    );

    let port = util::free_port();
    let name = format!("fnkit-oci-test-{}", std::process::id());
    let start = Instant::now();
    let started = podman_cmd()
        .args(["run", "-d", "--rm", "--network", "host", "--name", &name])
        // podman asks runc for RLIMIT_NOFILE/NPROC at least as high as ours, and runc may only
        // lower them: this machine's root lacks CAP_SYS_RESOURCE (EPERM otherwise).
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .arg("-e")
        .arg(format!("PORT={port}"))
        .arg(&reference)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    if !started.status.success() {
        let why = format!(
            "podman run failed here: {}",
            String::from_utf8_lossy(&started.stderr).trim()
        );
        require(false, || why);
        return;
    }
    let answer = util::wait_for(Duration::from_secs(30), || {
        util::http_get(port, if is_test_server { "/" } else { "/health" })
    });
    println!(
        "podman run → first answer in {:?}: {answer:?}",
        start.elapsed()
    );
    let _ = podman_cmd().args(["kill", &name]).output();
    let _ = podman_cmd().args(["rm", "-f", &name]).output();
    let (status, body) = answer.expect("the function in the container answered");
    assert_eq!(status, 200, "{body}");
    if is_test_server {
        assert!(body.contains("uid=65534"), "{body}");
        assert!(body.contains("gid=65534"), "{body}");
        assert!(body.contains("tmp_writable=true"), "{body}");
        assert!(body.contains("shell=false"), "{body}");
        assert!(body.contains("ca=true"), "{body}");
        assert!(body.contains(&format!("PORT={port}")), "{body}");
        assert!(body.contains("PATH=/"), "{body}");
    }
}

#[test]
fn a_dynamically_linked_or_foreign_binary_is_refused_with_what_to_build() {
    // This test executable is a real dynamically linked ELF (glibc): it has a loader.
    let me = std::env::current_exe().unwrap();
    let host_arch = if cfg!(target_arch = "aarch64") {
        fnkit_oci::Arch::Arm64
    } else {
        fnkit_oci::Arch::Amd64
    };
    let spec = |binary: std::path::PathBuf, arch| ImageSpec {
        binary,
        arch,
        ca_bundle: None,
        env: Vec::new(),
        labels: Default::default(),
    };
    let err = Image::build(&spec(me.clone(), host_arch)).unwrap_err();
    println!("{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("dynamically linked"), "{err}");
    assert!(err.to_string().contains(host_arch.rust_target()), "{err}");

    // The static test binary, declared as the other architecture.
    let Some((binary, arch, _)) = util::test_binary() else {
        return;
    };
    let other = match arch {
        fnkit_oci::Arch::Amd64 => fnkit_oci::Arch::Arm64,
        fnkit_oci::Arch::Arm64 => fnkit_oci::Arch::Amd64,
    };
    let err = Image::build(&spec(binary, other)).unwrap_err();
    println!("{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains(&format!("the image is for {other}")),
        "{err}"
    );
}

#[test]
fn a_registry_that_does_not_answer_is_a_transport_error_naming_it() {
    let Some((image, _, _)) = build_image() else {
        return;
    };
    let port = util::free_port(); // bound and released: nothing listens there
    let err = image
        .push(&format!("127.0.0.1:{port}/fnkit/nowhere:v1"))
        .unwrap_err();
    println!("{err}");
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(
        err.to_string()
            .contains(&format!("cannot reach registry 127.0.0.1:{port}")),
        "{err}"
    );
    let err = image.push("fnkit/hello:v1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidReference);
}
