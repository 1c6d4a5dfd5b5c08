"""The Knative runtime contract as a client sees it: health and readiness, probe requests,
SIGTERM. docs/platforms.md §4; checklist items docs/conformance.md #27-#29, #32.

The HTTP/1.1 exchanges that must be observed step by step use a raw socket.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import HTTP_TIMEOUT, SHUTDOWN_DEADLINE_S, RunningFunction

FUNCTIONS = ["hello", "echo-event", "http-echo"]
KNATIVE = {"FNKIT_PLATFORM": "knative"}


def read_head(sock: socket.socket) -> bytes:
    """Reads one response head (status line and headers) from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def wait_exit(fn: RunningFunction) -> int:
    try:
        return fn.process.wait(timeout=SHUTDOWN_DEADLINE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{fn.name} still running {SHUTDOWN_DEADLINE_S} s after SIGTERM\n{fn.log_tail()}")


def wait_refused(fn: RunningFunction, deadline_s: float = SHUTDOWN_DEADLINE_S) -> None:
    """Polls until a new connection to the function's port is refused (its listener closed)."""
    port = int(fn.base_url.rsplit(":", 1)[1])
    deadline = time.monotonic() + deadline_s
    pause = 0.005
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return
        except OSError:
            pass
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    pytest.fail(f"{fn.name} still accepts connections {deadline_s} s after SIGTERM")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_health_and_ready_answer_200_while_serving(start_function, name: str) -> None:
    fn = start_function(name, **KNATIVE)

    health = requests.get(fn.url("/health"), timeout=HTTP_TIMEOUT)
    ready = requests.get(fn.url("/ready"), timeout=HTTP_TIMEOUT)

    assert health.status_code == 200
    assert health.json().get("status") == "ok"
    assert ready.status_code == 200


@pytest.mark.parametrize(
    "probe_header",
    [{"K-Kubelet-Probe": "queue"}, {"User-Agent": "kube-probe/1.31"}],
    ids=["k-kubelet-probe", "kube-probe-user-agent"],
)
def test_probe_requests_never_reach_the_handler(start_function, probe_header: dict[str, str]) -> None:
    # http-echo answers every request it sees with a description of it: a probe must not get one.
    fn = start_function("http-echo", **KNATIVE)

    resp = requests.get(fn.url("/"), headers=probe_header, timeout=HTTP_TIMEOUT)

    assert resp.status_code == 200, resp.text
    assert "method" not in resp.text, f"the handler answered a probe: {resp.text}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_sigterm_exits_zero(start_function, name: str) -> None:
    fn = start_function(name, **KNATIVE)

    fn.process.send_signal(signal.SIGTERM)

    assert wait_exit(fn) == 0, fn.log_tail()


def test_sigterm_exits_despite_an_idle_keep_alive_connection(start_function) -> None:
    fn = start_function("hello", **KNATIVE)
    with requests.Session() as session:
        resp = session.post(fn.url("/"), json={"name": "Ada"}, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200
        assert resp.headers.get("connection", "").lower() != "close"  # the connection stays open, idle

        fn.process.send_signal(signal.SIGTERM)

        assert wait_exit(fn) == 0, fn.log_tail()


def test_sigterm_lets_the_in_flight_request_finish(start_function) -> None:
    fn = start_function("http-echo", **KNATIVE)
    port = int(fn.base_url.rsplit(":", 1)[1])
    body = b"drain me"
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(
            b"POST /in-flight HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body)
        )
        # 100 Continue comes when the server starts reading the body: the request is in flight.
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 100"), head

        fn.process.send_signal(signal.SIGTERM)
        wait_refused(fn)  # shutdown has begun: no new connections
        sock.sendall(body)

        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
            head_end = response.find(b"\r\n\r\n")
            if head_end >= 0:
                headers = response[:head_end].decode("latin-1").lower()
                length = next(
                    (
                        int(line.split(":", 1)[1])
                        for line in headers.split("\r\n")
                        if line.startswith("content-length:")
                    ),
                    None,
                )
                if length is not None and len(response) - head_end - 4 >= length:
                    break

    assert response.startswith(b"HTTP/1.1 200"), response[:500]
    echoed = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert echoed["path"] == "/in-flight"
    assert echoed["body"] == body.decode()
    assert wait_exit(fn) == 0, fn.log_tail()
