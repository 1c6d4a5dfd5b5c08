# fnkit — the commands a user and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO        ?= cargo
FUNCTION     ?= hello
PORT         ?= 8080
MUSL_TARGET  := x86_64-unknown-linux-musl
VENV         := .venv
PY           := $(VENV)/bin/python
# One target dir for everything (tests, release builds, SAM, bench).
export CARGO_TARGET_DIR ?= $(CURDIR)/target
FUNCTIONS    := hello echo-event http-echo sqs-batch

.PHONY: help run build musl-target test test-deps test-platforms venv lint fmt clippy check-features image deploy-knative clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: ## Serve functions/$(FUNCTION) on http://localhost:$(PORT) (default: hello)
	@$(CARGO) build --quiet -p $(FUNCTION)
	@echo "fnkit: serving functions/$(FUNCTION) on http://localhost:$(PORT) (Ctrl-C stops it). Try:"
	@echo "  curl -H 'content-type: application/json' -d '{\"name\":\"Ada\"}' http://localhost:$(PORT)/"
	@echo "  curl http://localhost:$(PORT)/health"
	@PORT=$(PORT) exec $(CARGO_TARGET_DIR)/debug/$(FUNCTION)

build: musl-target ## Static release binaries of the example functions (musl)
	$(CARGO) build --release --locked --target $(MUSL_TARGET) $(addprefix -p ,$(FUNCTIONS))
	@ls -l $(addprefix $(CARGO_TARGET_DIR)/$(MUSL_TARGET)/release/,$(FUNCTIONS))

musl-target:
	@rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)

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
	$(CARGO) build --workspace --bins --locked
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) test --workspace --locked --no-fail-fast
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
	@for features in "" lambda knative openfaas json-logs; do \
	  echo "cargo check -p fnkit --no-default-features --features '$$features'"; \
	  RUSTFLAGS="-D warnings" $(CARGO) check --quiet --locked -p fnkit --no-default-features --features "$$features" || exit 1; \
	done
	RUSTFLAGS="-D warnings" $(CARGO) check --quiet --locked -p fnkit-http --no-default-features

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
