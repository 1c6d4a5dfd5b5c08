# fnkit — the commands a user and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO        ?= cargo
FUNCTION     ?= hello
PORT         ?= 8080
# Lambda's names for the two architectures: x86_64 (default) or arm64 (Graviton). Read from the
# command line or the environment (`sam build` runs make with the caller's environment, so
# `ARCH=arm64 sam build` reaches the build-<LogicalId> targets; see sam/README.md).
ARCH         ?= x86_64
MUSL_TARGET  := $(if $(filter arm64 aarch64,$(ARCH)),aarch64,x86_64)-unknown-linux-musl
VENV         := .venv
PY           := $(VENV)/bin/python
# One target dir for everything (tests, release builds, SAM, bench).
export CARGO_TARGET_DIR ?= $(CURDIR)/target
FUNCTIONS    := hello echo-event http-echo sqs-batch

.PHONY: help run build musl-target zig qemu-aarch64 arm64-hello test-arm64 plain-http-hello layout test test-deps test-platforms venv lint fmt clippy check-features image deploy-knative clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: ## Serve functions/$(FUNCTION) on http://localhost:$(PORT) (default: hello)
	@$(CARGO) build --quiet -p $(FUNCTION)
	@echo "fnkit: serving functions/$(FUNCTION) on http://localhost:$(PORT) (Ctrl-C stops it). Try:"
	@echo "  curl -H 'content-type: application/json' -d '{\"name\":\"Ada\"}' http://localhost:$(PORT)/"
	@echo "  curl http://localhost:$(PORT)/health"
	@PORT=$(PORT) exec $(CARGO_TARGET_DIR)/debug/$(FUNCTION)

build: musl-target ## Static release binaries of the example functions (musl; ARCH=arm64 for Graviton)
	$(CARGO) build --release --locked --target $(MUSL_TARGET) $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(addprefix $(CARGO_TARGET_DIR)/$(MUSL_TARGET)/release/,$(FUNCTIONS))

musl-target: $(if $(filter aarch64-%,$(MUSL_TARGET)),zig)
	@case "$(ARCH)" in x86_64|amd64|arm64|aarch64) ;; *) echo "ARCH must be x86_64 or arm64, not '$(ARCH)'"; exit 1;; esac
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)

# The code layout the musl builds link with (.cargo/config.toml): hello, with fnkit's default
# features, with metrics and otel added, and HTTP-only and Lambda-only, profiled under valgrind on
# the platforms each serves and checked natively with perf; functions are grouped by where they
# ran (docs/runtime.md, "Code layout"). Run it after changing fnkit's code and commit the result:
# a stale layout costs memory, never correctness. The copies are what `cargo fnkit new` and the
# OpenFaaS templates ship.
LAYOUT_COPIES := crates/cargo-fnkit/templates/fnkit-layout.ld openfaas/template/fnkit/fnkit-layout.ld \
  openfaas/template/fnkit-direct/fnkit-layout.ld
layout: musl-target ## Regenerate .cargo/fnkit-layout.ld by profiling hello (needs valgrind)
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; } || \
	  { echo "make layout needs valgrind (apt-get install valgrind)"; exit 1; }
	python3 tools/layout/profile.py
	@for f in $(LAYOUT_COPIES); do cp .cargo/fnkit-layout.ld $$f; done
	@echo "layout: copied to $(LAYOUT_COPIES)"

# --- arm64 (aarch64-unknown-linux-musl) from any host, without Docker -------------------------
# rustc needs a linker that can write an aarch64 ELF against musl. zig's `cc` can, for any target,
# and it is already here: the `ziglang` wheel is a dependency of cargo-lambda (sam/requirements.txt)
# and `make zig` installs just that wheel into .venv when it is missing. tools/zig-cc-aarch64 is a
# small wrapper (`python -m ziglang cc -target aarch64-linux-musl`, minus the arguments zig would
# reject or duplicate). We do not use cargo-zigbuild: it would be one more tool to compile from
# crates.io on every fresh machine for the same `zig cc` call, and it wraps cargo itself
# (`cargo zigbuild`), so `make build` and SAM's targets would need a second build command; with
# the linker variable, plain `cargo build --target aarch64-unknown-linux-musl` works.
# Exported for every target (they only act on aarch64-unknown-linux-musl builds); a linker of
# your own in the environment wins.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER ?= $(CURDIR)/tools/zig-cc-aarch64
export CC_aarch64_unknown_linux_musl ?= $(CURDIR)/tools/zig-cc-aarch64
export FNKIT_ZIG_PYTHON ?= $(abspath $(PY))
ARM64_TARGET := aarch64-unknown-linux-musl
# The binary `make test` runs for tests/integration/arm64.rs (ELF check, then under qemu).
ARM64_HELLO  := $(CARGO_TARGET_DIR)/$(ARM64_TARGET)/release/hello

zig: ## zig (the ziglang wheel) in .venv, the linker of ARCH=arm64 builds
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m ziglang version >/dev/null 2>&1 || $(PY) -m pip install --quiet --disable-pip-version-check ziglang
	@echo "zig $$($(PY) -m ziglang version) ($(VENV), ziglang wheel)"

# qemu-user runs the aarch64 binary here: Debian's qemu-user-static (qemu-aarch64-static), or
# qemu-user (qemu-aarch64). Installed with apt-get where we are root (CI is); elsewhere the arm64
# test only checks the ELF header and says it skipped the run.
qemu-aarch64:
	@if command -v qemu-aarch64-static >/dev/null || command -v qemu-aarch64 >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static \
	    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user; }; \
	else echo "note: no qemu-aarch64(-static) and not root: the arm64 test will not run the binary (apt-get install qemu-user-static)"; fi

# One release build of one function (fat LTO: the expensive part), whatever ARCH says.
arm64-hello: zig qemu-aarch64
	@rustup target list --installed 2>/dev/null | grep -qx $(ARM64_TARGET) || rustup target add $(ARM64_TARGET)
	$(CARGO) build --release --locked --target $(ARM64_TARGET) -p hello
	@ls -l $(ARM64_HELLO)

test-arm64: arm64-hello ## Build hello for aarch64 and check it: static AArch64 ELF, and under qemu
	FNKIT_ARM64_BIN=$(ARM64_HELLO) $(CARGO) test --locked -p fnkit-tests --test integration arm64

# `hello` built with fnkit's `http` feature alone (plain JSON, no CloudEvents), for
# tests/integration/plain_http.rs. A workspace build cannot make it (Cargo unifies the features of
# the members it builds), so it is a build of its own: debug, in the one target dir, copied aside.
# Run before the workspace build: that build puts the workspace's `hello` back (removed here, so a
# test run that skipped it says "hello is missing" instead of testing the wrong binary). Only the
# fnkit crates and a few dependencies with other features are compiled for it (at most about 30 s
# on two cores the first time; nothing once built).
PLAIN_HTTP_HELLO := $(CARGO_TARGET_DIR)/plain-http/hello

plain-http-hello:
	$(CARGO) build --locked -p hello --no-default-features --features fnkit/http
	@mkdir -p $(dir $(PLAIN_HTTP_HELLO))
	@cp $(CARGO_TARGET_DIR)/debug/hello $(PLAIN_HTTP_HELLO)
	@rm -f $(CARGO_TARGET_DIR)/debug/hello

# --- tests ------------------------------------------------------------------------------------

PY_REQS := tests/python/requirements.txt $(wildcard sam/requirements.txt)

$(VENV)/.installed: $(PY_REQS)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check $(addprefix -r ,$(PY_REQS))
	@touch $@

venv: $(VENV)/.installed ## Install the Python peers (CloudEvents SDK, cargo-lambda, SAM CLI) into .venv

test-deps: venv musl-target
	@rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt

test: test-deps lint ## Everything CI runs: lint, unit, doc, integration and interop tests
	@$(MAKE) --no-print-directory plain-http-hello
	$(CARGO) build --workspace --bins --locked
	@$(MAKE) --no-print-directory arm64-hello
	FNKIT_ARM64_BIN=$(ARM64_HELLO) FNKIT_PLAIN_HTTP_BIN=$(PLAIN_HTTP_HELLO) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) test --workspace --locked --no-fail-fast
	@# fnkit-http's unit tests without CloudEvents (the workspace's run has them on).
	$(CARGO) test --locked -p fnkit-http --no-default-features --lib
	$(VENV)/bin/pytest -q tests/python
	@$(MAKE) --no-print-directory test-platforms

# Platform checks contributed by the adapters' fragments (SAM validate/build, OpenFaaS template).
test-platforms:

lint: fmt clippy check-features ## cargo fmt --check, clippy -D warnings, each feature alone

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets --all-features --locked -- -D warnings

# Each platform of the facade builds alone (and with none), warning-free: a feature that leaks or
# a cfg that forgets a case shows here, not in a user's build.
check-features:
	@for features in "" lambda http knative openfaas http2 json-logs lambda-runtime metrics otel multi-thread; do \
	  echo "cargo check -p fnkit --no-default-features --features '$$features'"; \
	  RUSTFLAGS="-D warnings" $(CARGO) check --quiet --locked -p fnkit --no-default-features --features "$$features" || exit 1; \
	done
	RUSTFLAGS="-D warnings" $(CARGO) check --quiet --locked -p fnkit-http --no-default-features
	@# `http` alone is the build without CloudEvents: nothing may bring cloudevents-sdk back in.
	@tree=$$($(CARGO) tree --locked -p fnkit --no-default-features --features http -e normal --prefix none) || exit 1; \
	if grep -q '^cloudevents-sdk ' <<<"$$tree"; then echo "fnkit's http feature alone links cloudevents-sdk"; exit 1; fi
	@# make bench builds its own workspace with --locked: its Cargo.lock must follow fnkit's deps.
	@$(CARGO) metadata --locked --offline --format-version 1 --manifest-path bench/Cargo.toml >/dev/null \
	  || { echo "bench/Cargo.lock is stale: run 'cargo tree --manifest-path bench/Cargo.toml' and commit it"; exit 1; }

# --- deploy -----------------------------------------------------------------------------------

image: ## Build the FROM-scratch image of $(FUNCTION) (needs docker or podman)
	@engine=$$(command -v docker || command -v podman) || { echo "no container engine (docker or podman) found"; exit 1; }; \
	$$engine build --build-arg FUNCTION=$(FUNCTION) -t fnkit-$(FUNCTION):latest .

deploy-knative: ## kubectl apply the Knative Service of $(FUNCTION) (edit its image first)
	kubectl apply -f knative/$(FUNCTION).yaml

clean:
	$(CARGO) clean
	rm -rf $(VENV) .aws-sam

-include sam/sam.mk
-include openfaas/openfaas.mk
-include bench/bench.mk
-include fuzz/fuzz.mk
# cargo fnkit (issue 13): the CLI's and the OCI writer's test peers (apt packages, registry).
-include crates/cargo-fnkit/cli.mk
-include crates/fnkit-oci/oci.mk
