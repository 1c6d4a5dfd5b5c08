//! Knative Serving's runtime contract: docs/platforms.md §4, checked as docs/conformance.md #26–#33.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fnkit_tests::{free_port, read_response, try_request, FnProcess, Request};

const KNATIVE: &[(&str, &str)] = &[
    ("K_SERVICE", "hello-svc"),
    ("K_REVISION", "hello-svc-00003"),
    ("K_CONFIGURATION", "hello-svc"),
];

/// Whether the process listens on `0.0.0.0:port` (from /proc/net/tcp: state 0A = LISTEN).
fn listens_on_all_interfaces(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!("00000000:{port:04X}");
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.get(1) == Some(&wanted.as_str()) && cols.get(3) == Some(&"0A")
    })
}

#[test]
fn knative_26_binds_all_interfaces_on_port_and_serves_http1() {
    let f = FnProcess::start("hello", KNATIVE);
    assert!(
        listens_on_all_interfaces(f.addr.port()),
        "not bound to 0.0.0.0:{}",
        f.addr.port()
    );
    let r = f.post_json("/", r#"{"name":"Kn"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Hello, Kn!");
}

#[test]
fn knative_26_serves_h2c_with_prior_knowledge_on_the_same_port() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let f = FnProcess::start("hello", KNATIVE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(f.addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("no HTTP/2 with prior knowledge");
        tokio::spawn(conn);
        for name in ["H2", "Again"] {
            let req = http::Request::post(format!("http://{}/", f.addr))
                .header("content-type", "application/json")
                .body(Full::new(bytes::Bytes::from(format!(
                    r#"{{"name":"{name}"}}"#
                ))))
                .unwrap();
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.version(), http::Version::HTTP_2);
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["message"], format!("Hello, {name}!"));
        }
    });
}

#[test]
fn knative_26_port_defaults_to_8080() {
    if std::net::TcpListener::bind("0.0.0.0:8080").is_err() {
        eprintln!("port 8080 is busy on this machine; the default port cannot be checked here");
        return;
    }
    let f = FnProcess::spawn("hello", KNATIVE, "127.0.0.1:8080".parse().unwrap());
    f.wait_healthy("/health");
    let v = f.send(&Request::get("/health")).json();
    assert_eq!(v["function"], "hello-svc");
}

#[test]
fn knative_27_ready_within_a_second_and_503_after_sigterm() {
    let port = free_port();
    let port_s = port.to_string();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    let mut env = KNATIVE.to_vec();
    env.push(("PORT", &port_s));
    // A shutdown delay keeps the listener open after SIGTERM so readiness can be asked.
    env.push(("FNKIT_SHUTDOWN_DELAY_SECS", "1"));
    let mut f = FnProcess::spawn("hello", &env, addr);
    loop {
        if let Ok(r) = try_request(addr, &Request::get("/ready")) {
            assert_eq!(r.status, 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not ready within 1 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    f.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let r = f.send(&Request::get("/ready"));
        if r.status == 503 {
            assert_eq!(r.json()["status"], "shutting down");
            break;
        }
        assert!(Instant::now() < deadline, "/ready never turned 503");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Liveness stays 200 while draining; the process then exits 0.
    assert_eq!(f.send(&Request::get("/health")).status, 200);
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(status.success());
}

#[test]
fn knative_28_sigterm_lets_the_in_flight_request_finish_then_exits_0() {
    let mut f = FnProcess::start("http-echo", KNATIVE);
    let addr = f.addr;
    let in_flight =
        std::thread::spawn(move || fnkit_tests::request(addr, &Request::get("/sleep?ms=1500")));
    // Give the request time to reach the handler, then stop the process under it.
    std::thread::sleep(Duration::from_millis(300));
    f.signal("TERM");
    let r = in_flight.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["path"], "/sleep");
    let status = f
        .wait_exit(Duration::from_secs(5))
        .expect("did not exit after draining");
    assert!(status.success(), "{status:?}");
    // http-echo's `on_shutdown` hook ran once, after the drain.
    let logs = f.logs();
    let at = |needle: &str| logs.iter().position(|l| l.contains(needle));
    let (drained, hook) = (at("\"drained\""), at("shutdown hook ran"));
    assert!(drained.is_some() && hook > drained, "{logs:?}");
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("shutdown hook ran"))
            .count(),
        1
    );
}

#[test]
fn knative_28_shutdown_gives_up_after_fnkit_shutdown_timeout_secs() {
    let mut f = FnProcess::start(
        "http-echo",
        &[("FNKIT_SHUTDOWN_TIMEOUT_SECS", "0.5"), ("K_SERVICE", "x")],
    );
    let addr = f.addr;
    let _stuck = std::thread::spawn(move || {
        fnkit_tests::try_request(addr, &Request::get("/sleep?ms=20000"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    f.signal("TERM");
    let status = f.wait_exit(Duration::from_secs(5)).expect("did not exit");
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn knative_29_new_connections_are_refused_and_idle_keep_alive_does_not_block_exit() {
    let mut f = FnProcess::start("hello", KNATIVE);
    // An idle keep-alive connection, left open.
    let s = TcpStream::connect(f.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(
        &Request::post("/", "{}")
            .header("connection", "keep-alive")
            .to_bytes(),
    )
    .unwrap();
    let r = read_response(&mut BufReader::new(s), false).unwrap();
    assert_eq!(r.status, 200);

    let t = Instant::now();
    f.signal("TERM");
    let status = f
        .wait_exit(Duration::from_secs(5))
        .expect("idle keep-alive kept it alive");
    assert!(status.success());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        TcpStream::connect(f.addr).is_err(),
        "a new connection was accepted"
    );
}

#[test]
fn knative_30_runs_as_uid_65534_from_an_unwritable_directory() {
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if !setpriv.exists() || !is_root {
        eprintln!("needs root and setpriv(1) to drop to uid 65534; not checked here");
        return;
    }
    let port = free_port();
    let bin = fnkit_tests::bin("hello");
    let mut child = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .current_dir("/")
        .env("PORT", port.to_string())
        .env("K_SERVICE", "hello")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        match try_request(addr, &Request::post("/", r#"{"name":"nobody"}"#)) {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("never served as uid 65534: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["message"], "Hello, nobody!");
}

#[test]
fn knative_31_k_variables_reach_the_function_and_their_absence_is_fine() {
    let f = FnProcess::start(
        "hello",
        &[
            ("FNKIT_PLATFORM", "knative"),
            ("K_SERVICE", "svc"),
            ("K_REVISION", "svc-00009"),
        ],
    );
    let v = f.send(&Request::get("/health")).json();
    assert_eq!(v["platform"], "knative");
    assert_eq!(v["function"], "svc");
    assert_eq!(v["version"], "svc-00009");

    let bare = FnProcess::start("hello", &[("FNKIT_PLATFORM", "knative")]);
    let v = bare.send(&Request::get("/health")).json();
    assert_eq!(v["platform"], "knative");
    assert_eq!(v["function"], "hello");
    assert_eq!(bare.post_json("/", "{}").status, 200);
}

#[test]
fn knative_32_probe_requests_never_reach_the_handler() {
    let f = FnProcess::start("http-echo", KNATIVE);
    for req in [
        Request::get("/").header("K-Kubelet-Probe", "queue"),
        Request::post("/anything", "x").header("k-kubelet-probe", "queue"),
        Request::get("/healthz").header("user-agent", "kube-probe/1.30"),
    ] {
        let r = f.send(&req);
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["status"], "ready", "{v}");
        assert!(
            v.get("method").is_none(),
            "the handler answered a probe: {v}"
        );
    }
    // The same path without probe headers does reach the handler.
    assert_eq!(f.send(&Request::get("/healthz")).json()["path"], "/healthz");
}
