# make bench: cold start, memory, size and warm throughput of `hello` beside the baselines in
# bench/baselines (see bench/README.md). Included from the top-level Makefile, so $(CURDIR) is the
# repository root. Builds everything in one release profile for static musl into the one target
# dir, then runs bench/harness (which exits non-zero when a target of issue 6 is missed).
#
#   make bench                  full run, ~5 minutes after the build (BENCH_ARGS adds options)
#   make bench-quick            short smoke run (5 cold runs, 1 s load levels)
#   make bench BENCH_ARGS='--runs 100 --load-secs 8'
#
# `hello` runs with one worker thread (`fnkit`, the default without a CPU quota) and, built with
# `multi-thread`, with FNKIT_WORKERS=2 (`fnkit-2w`, from bench-bins/hello-mt), so the warm
# table shows 1 and 2 workers at 64 connections (docs/runtime.md).

BENCH_DIR          ?= $(CURDIR)/bench
BENCH_TARGET       ?= x86_64-unknown-linux-musl
BENCH_TARGET_DIR   ?= $(CURDIR)/target
BENCH_BIN_DIR      := $(BENCH_TARGET_DIR)/$(BENCH_TARGET)/release
BENCH_EXTRA_DIR    := $(BENCH_BIN_DIR)/bench-bins
BENCH_RESULTS      ?= $(BENCH_DIR)/results
BENCH_CARGO        ?= nice -n 10 cargo
BENCH_WRK          ?= wrk
BENCH_ARGS         ?=
# `hello` as a user's function gets it: fnkit's default features only (the example itself turns
# on metrics, otel and http2). The targets of issue 12 are about this build.
BENCH_HELLO_DEFAULT     ?= --no-default-features --features fnkit/default
# The same with metrics and OpenTelemetry compiled in (issue 11: what they cost when unused).
BENCH_HELLO_OBSERVED    ?= --no-default-features --features fnkit/default,fnkit/metrics,fnkit/otel
# The single-platform builds of `hello`, for the binary-size targets: HTTP only is the plain-JSON
# build (local, Knative and OpenFaaS without CloudEvents: feature `http`); Knative's adds
# CloudEvents. Skipped (the targets then
# say n/a) when `hello` has no such features.
BENCH_HELLO_HTTP_ONLY   ?= --no-default-features --features fnkit/http
BENCH_HELLO_KNATIVE     ?= --no-default-features --features fnkit/knative
# fnkit's defaults and `multi-thread` (off by default), for the two-worker variant (`fnkit-2w`).
BENCH_HELLO_MT          ?= --no-default-features --features fnkit/default,fnkit/multi-thread
BENCH_HELLO_LAMBDA_ONLY ?= --no-default-features --features fnkit/lambda
# The baselines are built as their users build them: static-pie, Rust's default for musl.
# fnkit's own builds are non-PIE (.cargo/config.toml); an empty RUSTFLAGS replaces that setting
# for the bench workspace only.
BENCH_BASELINE_ENV      ?= RUSTFLAGS=
# Bare hyper once more, linked as fnkit's builds are (non-PIE, without the code layout): the
# informational row that shows fnkit's own share of a cold start (bench-bins/hyper-hello-nopie).
# Linked the same way, bare hyper plus the least the platform contracts ask of a function server
# (baselines/hyper-contract: JSON in and out, time limits, SIGTERM), bench-bins/hyper-contract-nopie.
BENCH_STATIC_ENV        ?= RUSTFLAGS="-C relocation-model=static"
# apt-get needs root; set BENCH_SUDO=sudo otherwise.
BENCH_SUDO         ?=

BENCH_CARGO_ENV := CARGO_TARGET_DIR=$(BENCH_TARGET_DIR)
BENCH_HARNESS   := $(BENCH_BIN_DIR)/harness
BENCH_RUN       := $(BENCH_HARNESS) --bin-dir $(BENCH_BIN_DIR) --out $(BENCH_RESULTS) --wrk $(BENCH_WRK)

.PHONY: bench bench-quick bench-build bench-tools bench-clippy bench-page-cache

bench: bench-build bench-tools bench-page-cache
	$(BENCH_RUN) $(BENCH_ARGS)

bench-quick: bench-build bench-tools bench-page-cache
	$(BENCH_RUN) --quick $(BENCH_ARGS)

# Every binary measured gets the same page-cache history: evicted (GNU dd's `iflag=nocache`), then
# read once whole. A binary's peak RSS depends on how its file reached the page cache (written by
# cargo or cp, read, or faulted in by exec): the same file measured up to 150 KiB apart
# (docs/metrics.md), more than some of the differences this bench is after.
bench-page-cache:
	@for f in $(BENCH_BIN_DIR)/*-hello $(BENCH_BIN_DIR)/hello $(BENCH_BIN_DIR)/stand-in-proxy $(BENCH_EXTRA_DIR)/*; do \
	  [ -f "$$f" ] || continue; dd if="$$f" iflag=nocache count=0 status=none && cat "$$f" > /dev/null; \
	done; echo "bench: page cache of the measured binaries reset (evicted, then read once)"

# The musl target, then: the single-platform `hello` builds (copied aside, since each build
# replaces target/.../release/hello), the all-platforms `hello` last, and the bench workspace
# (baselines + harness). Cargo keeps each feature set's artifacts, so rebuilding is cheap. The
# default-features `hello` is built last: it is the one left at $(BENCH_BIN_DIR)/hello.
bench-build:
	rustup target add $(BENCH_TARGET)
	mkdir -p $(BENCH_EXTRA_DIR)
	@if $(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_HTTP_ONLY); then \
	  cp $(BENCH_BIN_DIR)/hello $(BENCH_EXTRA_DIR)/hello-http-only; \
	else echo "bench: no HTTP-only build of hello ($(BENCH_HELLO_HTTP_ONLY)); its size target will say n/a"; \
	  rm -f $(BENCH_EXTRA_DIR)/hello-http-only; fi
	@if $(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_KNATIVE); then \
	  cp $(BENCH_BIN_DIR)/hello $(BENCH_EXTRA_DIR)/hello-knative; \
	else echo "bench: no Knative-only build of hello ($(BENCH_HELLO_KNATIVE))"; \
	  rm -f $(BENCH_EXTRA_DIR)/hello-knative; fi
	@if $(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_LAMBDA_ONLY); then \
	  cp $(BENCH_BIN_DIR)/hello $(BENCH_EXTRA_DIR)/hello-lambda-only; \
	else echo "bench: no Lambda-only build of hello ($(BENCH_HELLO_LAMBDA_ONLY)); its size target will say n/a"; \
	  rm -f $(BENCH_EXTRA_DIR)/hello-lambda-only; fi
	$(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_MT)
	cp $(BENCH_BIN_DIR)/hello $(BENCH_EXTRA_DIR)/hello-mt
	$(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_OBSERVED)
	cp $(BENCH_BIN_DIR)/hello $(BENCH_EXTRA_DIR)/hello-observed
	$(BENCH_CARGO_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) -p hello $(BENCH_HELLO_DEFAULT)
	$(BENCH_CARGO_ENV) $(BENCH_STATIC_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) \
	  --manifest-path $(BENCH_DIR)/Cargo.toml -p hyper-hello -p hyper-contract --locked
	cp $(BENCH_BIN_DIR)/hyper-hello $(BENCH_EXTRA_DIR)/hyper-hello-nopie
	cp $(BENCH_BIN_DIR)/hyper-contract $(BENCH_EXTRA_DIR)/hyper-contract-nopie
	$(BENCH_CARGO_ENV) $(BENCH_BASELINE_ENV) $(BENCH_CARGO) build --release --target $(BENCH_TARGET) \
	  --manifest-path $(BENCH_DIR)/Cargo.toml --workspace --locked

# wrk, the load generator, from Debian's packages.
bench-tools:
	@command -v $(BENCH_WRK) >/dev/null 2>&1 || { \
	  $(BENCH_SUDO) apt-get update -qq && $(BENCH_SUDO) apt-get install -y -qq wrk; }
	@$(BENCH_WRK) -v 2>&1 | head -n 1 || true

# Lints and unit tests of the bench workspace itself (not part of `make test`).
bench-clippy:
	$(BENCH_CARGO_ENV) $(BENCH_CARGO) clippy --manifest-path $(BENCH_DIR)/Cargo.toml --workspace --all-targets -- -D warnings
	$(BENCH_CARGO_ENV) $(BENCH_CARGO) test --manifest-path $(BENCH_DIR)/Cargo.toml -p harness
