# cargo fnkit (issue 13), included from the repository's Makefile.
#
# `make test` runs the CLI's tests with the rest (`cargo test --workspace`): they generate crates
# with `cargo fnkit new` under $(CARGO_TARGET_DIR)/cargo-fnkit-tests (one target dir of their own,
# so their dependencies compile once), serve them with `cargo fnkit run --as …`, and make ONE
# release build (x86_64 musl) for `build --zip`, `image` and `sam build`. What they need beyond
# cargo: the x86_64 musl target, python3 (Python's zipfile reads bootstrap.zip back), the SAM CLI
# from .venv (`sam build` of a generated template) and docker-registry (`image --push`; installed
# by fnkit-oci's oci-peers) — all part of test-deps. Under CI=true a missing one fails its test.

.PHONY: cli-deps cli-install

test-deps: cli-deps

cli-deps: musl-target venv

cli-install: ## Install `cargo fnkit` from this checkout (cargo install --path crates/cargo-fnkit)
	$(CARGO) install --locked --path crates/cargo-fnkit
