# make fuzz: coverage-guided fuzzing (cargo-fuzz on libFuzzer, nightly) of both adapters' decoding:
# structured events over HTTP and on Lambda (same verdict), binary-mode headers, Lambda HTTP
# events, batches (fuzz/fuzz_targets). Included from the top-level Makefile, so $(CURDIR) is the
# repository root. Not part of `make test`: the property tests (tests/properties.rs) are, and run
# in seconds; this searches for as long as you give it.
#
#   make fuzz                                       every target, 60 s each
#   make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS=binary_event
#   make fuzz FUZZ_ARGS='-jobs=2 -workers=2'        more libFuzzer options
#
# Prints, per target, libFuzzer's final `#N DONE cov: .. ft: .. corp: ..` line and its final stats
# (executions, peak RSS), then a one-line summary each. Full logs: fuzz/artifacts/logs/<target>.log;
# a crash is saved in fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run <target> <file>).
# The corpus grows in fuzz/corpus/<target>/; only the seed-* files there are tracked.

FUZZ_SECONDS   ?= 60
FUZZ_TARGETS   ?= structured_event binary_event lambda_http_event batch
FUZZ_TOOLCHAIN ?= nightly
FUZZ_ARGS      ?=
FUZZ_DIR       := $(CURDIR)/fuzz
FUZZ_LOGS      := $(FUZZ_DIR)/artifacts/logs
# Its own target dir (fuzz builds are instrumented): not the shared CARGO_TARGET_DIR.
FUZZ_CARGO     := cargo +$(FUZZ_TOOLCHAIN) fuzz
FUZZ_OPTS      := --fuzz-dir $(FUZZ_DIR) --target-dir $(FUZZ_DIR)/target

.PHONY: fuzz fuzz-tools

fuzz: fuzz-tools ## Fuzz both adapters' decoding (nightly cargo-fuzz), FUZZ_SECONDS each (default 60)
	$(FUZZ_CARGO) build $(FUZZ_OPTS)
	@mkdir -p $(FUZZ_LOGS); failed=""; summary=""; \
	for t in $(FUZZ_TARGETS); do \
	  log=$(FUZZ_LOGS)/$$t.log; dict=""; \
	  test -f $(FUZZ_DIR)/dict/$$t.dict && dict="-dict=$(FUZZ_DIR)/dict/$$t.dict"; \
	  echo "== fuzz $$t: $(FUZZ_SECONDS) s (log: $${log#$(CURDIR)/})"; \
	  $(FUZZ_CARGO) run $(FUZZ_OPTS) $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=5 \
	    -rss_limit_mb=2048 -print_final_stats=1 $$dict $(FUZZ_ARGS) > $$log 2>&1; \
	  status=$$?; \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::' $$log; \
	  if [ $$status -ne 0 ]; then \
	    failed="$$failed $$t"; \
	    grep -E -A12 'panicked at|ERROR: libFuzzer|deadly signal|SUMMARY:' $$log | head -40; \
	    grep -E 'Test unit written|artifact_prefix' $$log; \
	  fi; \
	  summary="$$summary$$(awk -v t=$$t -v rc=$$status ' \
	    /^#[0-9]+[[:space:]]+DONE/ { for (i = 1; i <= NF; i++) { if ($$i == "cov:") cov = $$(i+1); if ($$i == "ft:") ft = $$(i+1); \
	      if ($$i == "corp:") corp = $$(i+1); if ($$i == "exec/s:") rate = $$(i+1) } } \
	    /^stat::number_of_executed_units:/ { execs = $$2 } \
	    /^stat::peak_rss_mb:/ { rss = $$2 } \
	    END { printf "  %-18s %-6s %12s execs %8s exec/s  cov %6s  ft %6s  corpus %-12s rss %s MB", \
	      t, (rc == 0 ? "ok" : "FAILED"), execs, rate, cov, ft, corp, rss }' $$log)\n"; \
	done; \
	echo "== fuzz summary ($(FUZZ_SECONDS) s each)"; printf "$$summary"; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in fuzz/artifacts/)"; exit 1; fi

# cargo-fuzz and the nightly toolchain, when missing.
fuzz-tools:
	@rustup toolchain list | grep -q '^$(FUZZ_TOOLCHAIN)' || rustup toolchain install $(FUZZ_TOOLCHAIN) --profile minimal
	@command -v cargo-fuzz >/dev/null || env -u CARGO_TARGET_DIR cargo install cargo-fuzz --locked
