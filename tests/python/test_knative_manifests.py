"""The Knative manifests in knative/: one Service per example function, deployable as they are
(apart from the placeholder image) under the runtime contract of docs/platforms.md §4,
and the `kn service create` commands in knative/README.md saying the same thing.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO_ROOT

KNATIVE_DIR = REPO_ROOT / "knative"
FUNCTIONS = ["hello", "echo-event", "http-echo"]
NON_ROOT_UID = 65534
CONTAINER_PORT = 8080
# Reserved by queue-proxy and friends (§4.1): the function must not use them.
RESERVED_PORTS = {8012, 8013, 8022, 8112, 9090, 9091}
# Set by Knative itself; a Service may not set them (PORT is rejected by the webhook).
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (`10m`, `1`, `16Mi`, `64M`) as a plain number (cores or bytes)."""
    text = str(value)
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|Ki|Mi|Gi)?", text)
    assert match, f"not a quantity this test understands: {text!r}"
    number, suffix = float(match.group(1)), match.group(2) or ""
    scale = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[suffix]
    return number * scale


@pytest.fixture(params=FUNCTIONS)
def function_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def service(function_name: str) -> dict[str, Any]:
    path = KNATIVE_DIR / f"{function_name}.yaml"
    assert path.is_file(), f"missing {path}"
    docs = load_documents(path)
    assert len(docs) == 1, f"{path} should hold exactly one document, has {len(docs)}"
    return docs[0]


@pytest.fixture
def container(service: dict[str, Any]) -> dict[str, Any]:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per Service: the function"
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def test_each_example_function_has_a_knative_service(function_name: str, service: dict[str, Any]) -> None:
    assert service["apiVersion"] == "serving.knative.dev/v1"
    assert service["kind"] == "Service"
    assert service["metadata"]["name"] == function_name


def test_every_service_in_knative_dir_is_an_example_function() -> None:
    names = [
        doc["metadata"]["name"]
        for path in sorted(KNATIVE_DIR.glob("*.yaml"))
        for doc in load_documents(path)
        if doc.get("kind") == "Service"
    ]
    assert sorted(names) == sorted(FUNCTIONS)


def test_image_is_the_documented_placeholder(function_name: str, container: dict[str, Any]) -> None:
    assert container["image"] == f"ghcr.io/example/fnkit-{function_name}:latest"
    text = (KNATIVE_DIR / f"{function_name}.yaml").read_text(encoding="utf-8")
    assert "placeholder" in text.lower(), "the manifest must say the image is to be replaced"


def test_container_listens_on_one_unnamed_port_8080(container: dict[str, Any]) -> None:
    ports = container["ports"]
    assert len(ports) == 1, "Knative allows exactly one containerPort"
    port = ports[0]
    assert port["containerPort"] == CONTAINER_PORT
    assert port["containerPort"] not in RESERVED_PORTS
    assert "hostPort" not in port
    # No name: HTTP/1.1 and h2c both reach fnkit; "http1"/"h2c" would force one, others are invalid.
    assert port.get("name") in (None, "http1", "h2c")


def test_readiness_probe_gets_ready_on_the_container_port(container: dict[str, Any]) -> None:
    http_get = container["readinessProbe"]["httpGet"]
    assert http_get["path"] == "/ready"
    assert http_get.get("port", CONTAINER_PORT) == CONTAINER_PORT


def test_liveness_probe_gets_health_on_the_container_port(container: dict[str, Any]) -> None:
    http_get = container["livenessProbe"]["httpGet"]
    assert http_get["path"] == "/health"
    assert http_get.get("port", CONTAINER_PORT) == CONTAINER_PORT


def test_security_context_is_non_root_read_only_and_unprivileged(container: dict[str, Any]) -> None:
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == NON_ROOT_UID  # the Dockerfile's USER
    assert ctx.get("runAsGroup", NON_ROOT_UID) == NON_ROOT_UID
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert not ctx["capabilities"].get("add")
    assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert not ctx.get("privileged")


def test_tmp_is_a_writable_empty_dir_despite_the_read_only_root(
    service: dict[str, Any], container: dict[str, Any]
) -> None:
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    assert "/tmp" in mounts, "the runtime contract requires a writable /tmp"
    assert not mounts["/tmp"].get("readOnly")
    volumes = {v["name"]: v for v in service["spec"]["template"]["spec"].get("volumes", [])}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_resources_have_small_requests_below_limits(container: dict[str, Any]) -> None:
    requests_, limits = container["resources"]["requests"], container["resources"]["limits"]
    for key in ("cpu", "memory"):
        assert key in requests_ and key in limits, f"{key} request and limit are both required"
        assert quantity(requests_[key]) <= quantity(limits[key]), key
    assert quantity(requests_["cpu"]) <= 0.1
    assert quantity(requests_["memory"]) <= 32 * 2**20
    assert quantity(limits["cpu"]) <= 2
    assert quantity(limits["memory"]) <= 128 * 2**20


def test_container_concurrency_is_a_positive_hard_limit(service: dict[str, Any]) -> None:
    concurrency = service["spec"]["template"]["spec"]["containerConcurrency"]
    assert isinstance(concurrency, int) and 0 < concurrency <= 1000


def test_concurrent_bodies_fit_in_the_memory_limit(
    service: dict[str, Any], container: dict[str, Any]
) -> None:
    # containerConcurrency requests, each holding its body a few times (raw, parsed, reply: x4),
    # must fit in the memory limit, or a burst of large requests gets the pod OOM-killed.
    concurrency = service["spec"]["template"]["spec"]["containerConcurrency"]
    max_body = int(env_of(container).get("FNKIT_MAX_BODY_BYTES") or 6 * 2**20)
    assert concurrency * max_body * 4 <= quantity(container["resources"]["limits"]["memory"])


def test_request_timeout_is_300_seconds(service: dict[str, Any], container: dict[str, Any]) -> None:
    assert service["spec"]["template"]["spec"]["timeoutSeconds"] == 300
    handler_timeout = env_of(container).get("FNKIT_TIMEOUT_SECS")
    if handler_timeout is not None:
        assert int(handler_timeout) <= 300, "fnkit's own timeout must not outlast queue-proxy's"


def test_revision_can_scale_to_zero(service: dict[str, Any]) -> None:
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    # Annotation values are strings in Kubernetes: an unquoted 0 would be rejected.
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    max_scale = annotations["autoscaling.knative.dev/max-scale"]
    assert isinstance(max_scale, str) and int(max_scale) > 0


def test_env_sets_knative_platform_with_string_values(container: dict[str, Any]) -> None:
    env = env_of(container)
    assert env.get("FNKIT_PLATFORM") == "knative"
    for name, value in env.items():
        assert isinstance(value, str), f"env {name} must be a string (quote it in YAML), got {value!r}"
    assert not RESERVED_ENV & env.keys(), "Knative sets these itself"


def test_trigger_routes_broker_events_to_echo_event_without_a_reply_loop() -> None:
    docs = load_documents(KNATIVE_DIR / "trigger-echo-event.yaml")
    assert len(docs) == 1
    trigger = docs[0]
    assert trigger["apiVersion"] == "eventing.knative.dev/v1"
    assert trigger["kind"] == "Trigger"
    assert trigger["spec"]["broker"]
    assert trigger["spec"]["subscriber"]["ref"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "echo-event",
    }
    # echo-event's reply has type <incoming>.reply and goes back into the Broker: the filter must
    # not match it, or every reply is delivered again.
    event_type = trigger["spec"]["filter"]["attributes"]["type"]
    assert event_type and not event_type.endswith(".reply")


def kn_command(readme: str, name: str) -> list[str]:
    """The `kn service create NAME ...` command of README.md, as argv."""
    match = re.search(rf"^kn service create {re.escape(name)} (?:.*\\\n)*.*$", readme, re.MULTILINE)
    assert match, f"README.md has no `kn service create {name}` command"
    argv = shlex.split(match.group(0).replace("\\\n", " "))
    return argv


def flag_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def test_readme_kn_command_matches_the_manifest(
    function_name: str, service: dict[str, Any], container: dict[str, Any]
) -> None:
    argv = kn_command((KNATIVE_DIR / "README.md").read_text(encoding="utf-8"), function_name)
    spec = service["spec"]["template"]["spec"]
    annotations = service["spec"]["template"]["metadata"]["annotations"]

    assert flag_values(argv, "--image")[0].endswith(f"/fnkit-{function_name}:latest")
    assert flag_values(argv, "--port") == [str(CONTAINER_PORT)]
    assert dict(v.split("=", 1) for v in flag_values(argv, "--env")) == env_of(container)
    assert flag_values(argv, "--concurrency-limit") == [str(spec["containerConcurrency"])]
    assert flag_values(argv, "--scale-min") == [annotations["autoscaling.knative.dev/min-scale"]]
    assert flag_values(argv, "--scale-max") == [annotations["autoscaling.knative.dev/max-scale"]]
    assert flag_values(argv, "--timeout") == [str(spec["timeoutSeconds"])]
    assert flag_values(argv, "--probe-readiness") == [f"http::{CONTAINER_PORT}:/ready"]
    assert flag_values(argv, "--probe-liveness") == [f"http::{CONTAINER_PORT}:/health"]
    resources = container["resources"]
    for flag, key in (("--request", "requests"), ("--limit", "limits")):
        given = dict(item.split("=", 1) for v in flag_values(argv, flag) for item in v.split(","))
        assert given == {k: str(v) for k, v in resources[key].items()}, flag
    assert flag_values(argv, "--user") == [str(container["securityContext"]["runAsUser"])]
    assert flag_values(argv, "--security-context") == ["strict"]
    cluster_local = (
        service["metadata"].get("labels", {}).get("networking.knative.dev/visibility") == "cluster-local"
    )
    assert ("--cluster-local" in argv) == cluster_local
