"""Fixtures that run the example function binaries as real processes on loopback ports.

The binaries come from `target/debug/` at the repo root (two levels above this file), built by
`cargo build --workspace` before pytest runs; `FNKIT_BIN_DIR` points elsewhere (e.g. a release
build). Each process gets `PORT=<free port>`, is polled on `GET /health` until it answers (with a
deadline, no fixed sleeps), and is stopped with SIGTERM (then SIGKILL) at teardown.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("FNKIT_BIN_DIR") or REPO_ROOT / "target" / "debug")

# Every request in these tests is bounded: (connect, read) seconds.
HTTP_TIMEOUT = (2.0, 10.0)
STARTUP_DEADLINE_S = 15.0
SHUTDOWN_DEADLINE_S = 10.0

# Variables that would make fnkit pick another platform than the one a test asks for.
_PLATFORM_ENV = (
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "K_SERVICE",
    "K_CONFIGURATION",
    "K_REVISION",
    "FNKIT_PLATFORM",
    "FNKIT_EVENT_SOURCE",
    "FNKIT_MAX_BODY_BYTES",
    "upstream_url",
    "mode",
)


@dataclass
class RunningFunction:
    """A started function binary: its base URL and the process behind it."""

    name: str
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary_path(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"function binary {path} is missing: build it first (cargo build --workspace) "
            "or point FNKIT_BIN_DIR at the directory holding it",
            pytrace=False,
        )
    return path


def _wait_until_healthy(fn: RunningFunction, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    last_error: object = None
    pause = 0.005
    while time.monotonic() < deadline:
        if fn.process.poll() is not None:
            raise RuntimeError(
                f"{fn.name} exited with status {fn.process.returncode} before answering "
                f"GET /health; its output:\n{fn.log_tail()}"
            )
        try:
            resp = requests.get(fn.url("/health"), timeout=(0.5, 2.0))
            if resp.status_code == 200:
                return
            last_error = f"status {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:  # not listening yet
            last_error = exc
        # Poll interval, growing from 5 ms to 100 ms: this is polling, not a timing assumption.
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    raise RuntimeError(
        f"{fn.name} did not answer GET /health within {deadline_s} s (last: {last_error}); "
        f"its output:\n{fn.log_tail()}"
    )


def stop_function(fn: RunningFunction) -> int | None:
    """SIGTERM, wait for the exit, SIGKILL past the deadline. Returns the exit status."""
    proc = fn.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=SHUTDOWN_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=SHUTDOWN_DEADLINE_S)
    return proc.returncode


def launch(name: str, log_dir: Path, env: dict[str, str]) -> RunningFunction:
    """Start `name` from BIN_DIR on a free loopback port and wait until GET /health answers."""
    path = binary_path(name)
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k not in _PLATFORM_ENV}
    child_env.update(env)
    child_env["PORT"] = str(port)
    log_path = log_dir / f"{name}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(path)],
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(REPO_ROOT),
        )
    fn = RunningFunction(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_healthy(fn, STARTUP_DEADLINE_S)
    except RuntimeError as exc:
        stop_function(fn)
        pytest.fail(str(exc), pytrace=False)
    return fn


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the functions' stdout/stderr go (one file per process)."""
    return tmp_path_factory.mktemp("function-logs")


@pytest.fixture
def start_function(log_dir: Path) -> Iterator[Callable[..., RunningFunction]]:
    """Factory for one test: `start_function("echo-event", FNKIT_EVENT_SOURCE="/x")`.

    Keyword arguments are extra environment variables. The processes are stopped (SIGTERM, then
    SIGKILL) when the test ends.
    """
    started: list[RunningFunction] = []

    def start(name: str, **env: str) -> RunningFunction:
        fn = launch(name, log_dir, env)
        started.append(fn)
        return fn

    yield start
    for fn in started:
        stop_function(fn)


def _knative_env(name: str) -> dict[str, str]:
    # The Knative profile, as on the eventing path, with K_SERVICE as Knative sets it.
    return {"FNKIT_PLATFORM": "knative", "K_SERVICE": name}


@pytest.fixture(scope="module")
def echo_event(log_dir: Path) -> Iterator[RunningFunction]:
    """`echo-event` (CloudEvent handler) in the Knative profile, shared by a module."""
    fn = launch("echo-event", log_dir, _knative_env("echo-event"))
    yield fn
    stop_function(fn)


@pytest.fixture(scope="module")
def hello(log_dir: Path) -> Iterator[RunningFunction]:
    """`hello` (typed handler) in the Knative profile, shared by a module."""
    fn = launch("hello", log_dir, _knative_env("hello"))
    yield fn
    stop_function(fn)
