"""The Dockerfile, read as text (no container engine is needed): a static musl build of one
function, run from `FROM scratch` as the non-root user the Knative manifests expect.
"""

from __future__ import annotations

import json
import re

import yaml

from conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, comments dropped, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def build_stage() -> list[tuple[str, str]]:
    steps = instructions()
    froms = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and the final image"
    return steps[froms[0] : froms[-1]]


def test_final_image_is_scratch_with_exec_form_entrypoint() -> None:
    stage = final_stage()
    assert stage[0] == ("FROM", "scratch")
    entrypoints = [args for keyword, args in stage if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["/fn"], "exec form: scratch has no shell"


def test_final_image_runs_as_the_manifests_non_root_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users == ["65534:65534"]
    for name in ("hello", "echo-event", "http-echo"):
        service = yaml.safe_load((REPO_ROOT / "knative" / f"{name}.yaml").read_text(encoding="utf-8"))
        container = service["spec"]["template"]["spec"]["containers"][0]
        assert container["securityContext"]["runAsUser"] == 65534, name


def test_final_image_listens_on_port_8080() -> None:
    stage = final_stage()
    assert ("EXPOSE", "8080") in stage
    assert ("ENV", "PORT=8080") in stage


def test_build_stage_compiles_one_function_statically_for_musl() -> None:
    stage = build_stage()
    assert re.fullmatch(r"rust:\S*(alpine|slim)\S* AS build", stage[0][1].replace("${RUST_VERSION}", "1"))
    assert ("ARG", "FUNCTION=hello") in stage
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    assert "rustup target add x86_64-unknown-linux-musl" in runs
    build = re.search(r"cargo build [^&]*", runs)
    assert build, "no cargo build"
    flags = build.group(0).split()
    for flag in ("--release", "--locked", "x86_64-unknown-linux-musl", '"${FUNCTION}"'):
        assert flag in flags, flag
    assert flags[flags.index("--target") + 1] == "x86_64-unknown-linux-musl"


def test_dockerignore_keeps_build_output_out_of_the_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in ("target", ".venv", ".git", "bench/target"):
        assert pattern in patterns, pattern
    # --locked needs the lock file, and every workspace member needs its manifest.
    assert not {"Cargo.lock", "crates", "functions", "tests", "*.toml"} & patterns
