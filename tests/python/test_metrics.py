"""`GET /metrics` read by an independent parser: the Prometheus project's Python client
(`prometheus_client`), its Prometheus text parser and its OpenMetrics parser (issue 11; the Rust
side is tests/integration/metrics.rs).
"""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from conftest import HTTP_TIMEOUT

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TEXT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
BUCKETS = [
    "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf",
]


def exercise(fn) -> None:
    """Three good requests and two that fail with 400."""
    for name in ("Ada", "Bo", "Cy"):
        r = requests.post(fn.url("/"), json={"name": name}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
    for body in ('{"name":', "not json"):
        r = requests.post(
            fn.url("/"),
            data=body,
            headers={"content-type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
        assert r.status_code == 400, r.text


def by_name(families) -> dict:
    return {f.name: f for f in families}


def sample(family, name: str, **labels: str) -> float:
    for s in family.samples:
        if s.name == name and s.labels == labels:
            return s.value
    pytest.fail(f"no sample {name}{labels} in {family.samples}")


def check(families: dict, counter_name: str) -> None:
    requests_family = families[counter_name]
    assert requests_family.type == "counter"
    assert sample(requests_family, "fnkit_requests_total", shape="typed", status="200") == 3
    assert sample(requests_family, "fnkit_requests_total", shape="typed", status="400") == 2
    assert len(requests_family.samples) == 2

    durations = families["fnkit_request_duration_seconds"]
    assert durations.type == "histogram"
    buckets = [s for s in durations.samples if s.name.endswith("_bucket")]
    assert [float(s.labels["le"]) for s in buckets] == [float(b) for b in BUCKETS]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and counts[-1] == 5
    assert sample(durations, "fnkit_request_duration_seconds_count", shape="typed") == 5
    assert 0 < sample(durations, "fnkit_request_duration_seconds_sum", shape="typed") < 5

    assert families["fnkit_inflight_requests"].type == "gauge"
    assert sample(families["fnkit_inflight_requests"], "fnkit_inflight_requests") == 0
    cold = sample(families["fnkit_cold_start_seconds"], "fnkit_cold_start_seconds")
    assert 0 < cold < 5
    assert sample(families["process_resident_memory_bytes"], "process_resident_memory_bytes") > 0
    started = sample(families["process_start_time_seconds"], "process_start_time_seconds")
    assert time.time() - 120 < started <= time.time() + 0.02


@pytest.mark.parametrize("profile", [{}, {"FNKIT_PLATFORM": "knative", "K_SERVICE": "hello"}])
def test_prometheus_text_parses_with_prometheus_client(start_function, profile) -> None:
    fn = start_function("hello", **profile)
    exercise(fn)
    r = requests.get(fn.url("/metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-type"] == PROMETHEUS_TEXT
    # The text parser names a counter family without `_total`.
    check(by_name(text_families(r.text)), "fnkit_requests")


def test_openmetrics_parses_with_prometheus_clients_openmetrics_parser(start_function) -> None:
    fn = start_function("hello")
    exercise(fn)
    r = requests.get(
        fn.url("/metrics"),
        headers={"accept": "application/openmetrics-text; version=1.0.0"},
        timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == OPENMETRICS_TEXT
    assert r.text.endswith("# EOF\n")
    # The OpenMetrics parser is strict: it rejects a missing `# EOF`, bad units, bad names.
    families = by_name(openmetrics_families(r.text))
    check(families, "fnkit_requests")
    assert families["fnkit_request_duration_seconds"].unit == "seconds"
    assert families["process_resident_memory_bytes"].unit == "bytes"


def test_metrics_off_is_the_handlers_path(start_function) -> None:
    fn = start_function("hello", FNKIT_METRICS="off")
    r = requests.get(fn.url("/metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 405
