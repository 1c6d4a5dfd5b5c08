//! Metrics (issue 11, feature `metrics`, on in the example functions): `GET /metrics` on the HTTP
//! platforms in Prometheus text 0.0.4 or OpenMetrics text 1.0.0, answered by fnkit and never by
//! the handler; on Lambda one CloudWatch Embedded Metric Format line per invocation on stdout;
//! `FNKIT_METRICS=off` turns both off. The Prometheus text is also parsed by the Prometheus
//! project's Python client in tests/python/test_metrics.py.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fnkit_tests::{FnProcess, Request, Response};
use serde_json::{json, Value};

use crate::lambda::mock::{Event, MockApi};
use crate::lambda::{lambda_env, start_function};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A parsed text exposition: `# TYPE` per family, and the value of every sample, keyed by its
/// name and labels exactly as written (`name{a="x",b="y"}`).
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut e = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
                e.types.insert(name.to_owned(), ty.to_owned());
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else {
                // No timestamps are written: the value is the last field.
                let (series, value) = line.rsplit_once(' ').expect("a sample line");
                let value = match value {
                    "+Inf" => f64::INFINITY,
                    v => v
                        .parse()
                        .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}")),
                };
                assert!(
                    e.samples.insert(series.to_owned(), value).is_none(),
                    "duplicate series {series}"
                );
            }
        }
        e
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no sample {series}; have {:#?}", self.samples))
    }
}

fn scrape(f: &FnProcess, accept: Option<&str>) -> Response {
    let mut req = Request::get("/metrics");
    if let Some(accept) = accept {
        req = req.header("accept", accept);
    }
    f.send(&req)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn metrics_prometheus_text_counts_the_handlers_invocations() {
    let f = FnProcess::start("hello", &[]);
    for name in ["Ada", "Bo", "Cy"] {
        let r = f.post_json("/", &format!(r#"{{"name":"{name}"}}"#));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for bad in [r#"{"name":"#, "not json"] {
        assert_eq!(f.post_json("/", bad).status, 400);
    }
    // Probes and scrapes are fnkit's, not invocations: they are not counted.
    assert_eq!(f.send(&Request::get("/health")).status, 200);
    assert_eq!(f.send(&Request::get("/ready")).status, 200);
    assert_eq!(scrape(&f, None).status, 200);

    let r = scrape(&f, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(PROMETHEUS_TEXT));
    let text = r.text();
    assert!(!text.contains("# EOF"), "{text}");
    let e = Exposition::parse(&text);

    let ty = |name: &str| e.types.get(name).map(String::as_str);
    assert_eq!(ty("fnkit_requests_total"), Some("counter"));
    assert_eq!(ty("fnkit_request_duration_seconds"), Some("histogram"));
    assert_eq!(ty("fnkit_inflight_requests"), Some("gauge"));
    assert_eq!(ty("fnkit_cold_start_seconds"), Some("gauge"));
    assert_eq!(ty("process_resident_memory_bytes"), Some("gauge"));
    assert_eq!(ty("process_start_time_seconds"), Some("gauge"));

    assert_eq!(
        e.get(r#"fnkit_requests_total{shape="typed",status="200"}"#),
        3.0
    );
    assert_eq!(
        e.get(r#"fnkit_requests_total{shape="typed",status="400"}"#),
        2.0
    );
    let requests: Vec<_> = e
        .samples
        .keys()
        .filter(|k| k.starts_with("fnkit_requests_total"))
        .collect();
    assert_eq!(requests.len(), 2, "{requests:?}");

    // The histogram: 5 observations, cumulative buckets from 50 µs to 10 s, then +Inf.
    assert_eq!(
        e.get(r#"fnkit_request_duration_seconds_count{shape="typed"}"#),
        5.0
    );
    let sum = e.get(r#"fnkit_request_duration_seconds_sum{shape="typed"}"#);
    assert!(sum > 0.0 && sum < 5.0, "{sum}");
    let bounds = [
        "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
        "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    let mut previous = 0.0;
    for le in bounds {
        let n = e.get(&format!(
            r#"fnkit_request_duration_seconds_bucket{{shape="typed",le="{le}"}}"#
        ));
        assert!(n >= previous, "bucket {le} is not cumulative");
        previous = n;
    }
    assert_eq!(previous, 5.0);
    let buckets = e
        .samples
        .keys()
        .filter(|k| k.starts_with("fnkit_request_duration_seconds_bucket"))
        .count();
    assert_eq!(buckets, bounds.len());

    assert_eq!(e.get("fnkit_inflight_requests"), 0.0);
    let cold = e.get("fnkit_cold_start_seconds");
    assert!(cold > 0.0 && cold < 5.0, "cold start {cold}");
    assert!(e.get("process_resident_memory_bytes") > 0.0);
    let started = e.get("process_start_time_seconds");
    let now = now_secs();
    assert!(
        started <= now + 0.02 && started > now - 120.0,
        "{started} vs {now}"
    );
    // Measured once: the same on the next scrape.
    let again = Exposition::parse(&scrape(&f, None).text());
    assert_eq!(again.get("fnkit_cold_start_seconds"), cold);
    assert_eq!(again.get("process_start_time_seconds"), started);
}

#[test]
fn metrics_openmetrics_when_accept_asks_for_it() {
    let f = FnProcess::start("hello", &[]);
    assert_eq!(f.post_json("/", "{}").status, 200);
    // What Prometheus sends when it scrapes.
    let prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,\
                             application/openmetrics-text;version=0.0.1;q=0.4,\
                             text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    for accept in ["application/openmetrics-text", prometheus_accept] {
        let r = scrape(&f, Some(accept));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(OPENMETRICS_TEXT), "{accept}");
        let text = r.text();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        let e = Exposition::parse(&text);
        // OpenMetrics names the counter family without `_total`, its sample with it.
        assert_eq!(
            e.types.get("fnkit_requests").map(String::as_str),
            Some("counter")
        );
        assert_eq!(
            e.get(r#"fnkit_requests_total{shape="typed",status="200"}"#),
            1.0
        );
        assert!(text.contains("# UNIT fnkit_request_duration_seconds seconds\n"));
        assert!(text.contains("# UNIT process_resident_memory_bytes bytes\n"));
    }
    // Asking for text, or for what fnkit does not serve, gets Prometheus text.
    for accept in ["text/plain", "application/json", "*/*"] {
        let r = scrape(&f, Some(accept));
        assert_eq!(r.header("content-type"), Some(PROMETHEUS_TEXT), "{accept}");
    }
}

#[test]
fn metrics_inflight_counts_a_request_in_progress_and_the_http_shape() {
    let f = FnProcess::start("http-echo", &[]);
    let addr = f.addr;
    let slow = std::thread::spawn(move || {
        fnkit_tests::request(addr, &Request::get("/sleep?ms=1500")).status
    });
    // Polls until the sleeping request is counted (it is, as soon as it reached fnkit).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let e = Exposition::parse(&scrape(&f, None).text());
        if e.samples.get("fnkit_inflight_requests") == Some(&1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "never 1 in flight: {e:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(slow.join().unwrap(), 200);
    let e = Exposition::parse(&scrape(&f, None).text());
    assert_eq!(e.get("fnkit_inflight_requests"), 0.0);
    assert_eq!(
        e.get(r#"fnkit_requests_total{shape="http",status="200"}"#),
        1.0
    );
    let sum = e.get(r#"fnkit_request_duration_seconds_sum{shape="http"}"#);
    assert!((1.5..10.0).contains(&sum), "{sum}");
    // The HTTP handler never saw /metrics: it would have echoed it.
    assert!(!scrape(&f, None).text().contains("\"path\""));
}

#[test]
fn metrics_a_client_that_leaves_mid_request_is_counted_and_not_left_in_flight() {
    use std::io::Write;
    let f = FnProcess::start("http-echo", &[]);
    {
        let mut s = std::net::TcpStream::connect(f.addr).unwrap();
        s.write_all(b"GET /sleep?ms=3000 HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    } // the client gives up: the connection closes under the sleeping request
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let e = Exposition::parse(&scrape(&f, None).text());
        let left = e
            .samples
            .get(r#"fnkit_requests_total{shape="http",status="499"}"#)
            .copied();
        if left == Some(1.0) {
            assert_eq!(e.get("fnkit_inflight_requests"), 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dropped request was never counted: {e:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_off_leaves_metrics_to_the_handler() {
    for off in ["off", "0", "false"] {
        let f = FnProcess::start("hello", &[("FNKIT_METRICS", off)]);
        assert_eq!(f.post_json("/", "{}").status, 200);
        // The typed handler takes POST only: GET /metrics is its 405, not fnkit's exposition.
        let r = scrape(&f, None);
        assert_eq!(r.status, 405, "FNKIT_METRICS={off}: {}", r.text());
        assert_ne!(r.header("content-type"), Some(PROMETHEUS_TEXT));
    }
    let f = FnProcess::start("http-echo", &[("FNKIT_METRICS", "off")]);
    let r = scrape(&f, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/metrics", "the handler answers /metrics");
}

/// The EMF lines on a function's stdout, parsed, waiting (at most 10 s) until there are `n`.
fn emf_lines(f: &FnProcess, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = f
            .logs()
            .into_iter()
            .filter(|l| l.contains("\"_aws\""))
            .collect();
        if lines.len() >= n || Instant::now() >= deadline {
            return lines
                .iter()
                .map(|l| {
                    serde_json::from_str(l)
                        .unwrap_or_else(|e| panic!("an EMF line is not one JSON object ({e}): {l}"))
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metrics_lambda_writes_one_emf_line_per_invocation() {
    let mock = MockApi::start();
    let f = start_function("hello", &lambda_env(&mock.api()));
    // EMF timestamps are whole milliseconds (truncated): compare against the whole millisecond
    // this test started in, or an invocation in that same millisecond would look early.
    let before_ms = (now_secs() * 1000.0).floor();
    mock.push(Event::new("m-1", r#"{"name":"Ada"}"#));
    mock.wait_answer("m-1");
    mock.push(Event::new("m-2", "{}"));
    mock.wait_answer("m-2");
    mock.push(Event::new("m-3", "not json"));
    assert!(mock.wait_answer("m-3").path.ends_with("/m-3/error"));

    let lines = emf_lines(&f, 3);
    assert_eq!(lines.len(), 3, "{:?}", f.logs());
    let after_ms = now_secs() * 1000.0 + 1.0;
    for (i, (line, (id, status, errors))) in lines
        .iter()
        .zip([("m-1", 200, 0), ("m-2", 200, 0), ("m-3", 400, 1)])
        .enumerate()
    {
        let aws = &line["_aws"];
        let ts = aws["Timestamp"].as_u64().expect("Timestamp in ms");
        assert!((before_ms..after_ms).contains(&(ts as f64)), "{line}");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1, "{line}");
        let d = &directives[0];
        assert_eq!(d["Namespace"], "fnkit");
        assert_eq!(d["Dimensions"], json!([["function", "shape"]]));
        let mut expected = vec![
            json!({"Name": "requests", "Unit": "Count"}),
            json!({"Name": "errors", "Unit": "Count"}),
            json!({"Name": "duration", "Unit": "Milliseconds"}),
        ];
        if i == 0 {
            expected.push(json!({"Name": "cold_start", "Unit": "Milliseconds"}));
        }
        assert_eq!(d["Metrics"], Value::Array(expected), "{line}");
        // Every dimension and metric it declares is a member of the line, of the right type.
        assert_eq!(line["function"], "probe", "AWS_LAMBDA_FUNCTION_NAME");
        assert_eq!(line["shape"], "typed");
        assert_eq!(line["requests"], 1);
        assert_eq!(line["errors"], errors, "{line}");
        let duration = line["duration"].as_f64().unwrap();
        assert!((0.0..5000.0).contains(&duration), "{line}");
        assert_eq!(line["request_id"], id);
        assert_eq!(line["status"], status);
        assert_eq!(line["version"], "$LATEST");
        if i == 0 {
            let cold = line["cold_start"].as_f64().unwrap();
            assert!(cold > 0.0 && cold < 5000.0, "{line}");
            assert!(line.get("error").is_none());
        } else {
            assert!(line.get("cold_start").is_none(), "{line}");
        }
    }
    assert_eq!(lines[2]["error"], "InvalidInput");
    // Whole lines: nothing else on stdout carries an EMF block.
    let others = f.logs().into_iter().filter(|l| l.contains("_aws")).count();
    assert_eq!(others, 3);
}

#[test]
fn metrics_lambda_off_writes_no_emf() {
    let mock = MockApi::start();
    let mut env = lambda_env(&mock.api());
    env.push(("FNKIT_METRICS", "off".into()));
    let f = start_function("hello", &env);
    mock.push(Event::new("o-1", "{}"));
    let answer = mock.wait_answer("o-1");
    // The next /next comes after the invocation's end, and so after its EMF line if any.
    mock.wait_for(Duration::from_secs(10), "the /next after o-1", |r| {
        r.path.ends_with("/runtime/invocation/next") && r.seq > answer.seq
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !f.logs().iter().any(|l| l.contains("_aws")),
        "{:?}",
        f.logs()
    );
}
