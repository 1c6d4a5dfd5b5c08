# AWS SAM: build and deploy the example functions to Lambda (issue 4). Included from the
# repository's Makefile; `sam build` runs the `build-<LogicalId>` targets below from the
# repository root (sam/template.yaml: CodeUri `..`, BuildMethod makefile, build_in_source in
# sam/samconfig.toml).
#
#   make sam-build     sam build: static musl `bootstrap` per function in .aws-sam/build/
#   make sam-deploy    sam deploy --guided (needs AWS credentials; not run in CI)
#   make sam-validate  sam validate --lint, cfn-lint, and the runtime/handler check
#
# All functions come from ONE cargo invocation (fat LTO on 2 cores is the expensive part);
# each build-<LogicalId> target then only copies its binary.
#
# ARCH=arm64 (the Makefile's variable) builds for Graviton: aarch64-unknown-linux-musl, linked
# by zig (see the Makefile). `sam build` runs `make build-<LogicalId>` with nothing but
# ARTIFACTS_DIR added to the caller's environment: `--parameter-overrides Architecture=arm64` does
# not reach make. So sam-build and sam-deploy pass ARCH twice: in sam's environment (for the make
# it runs) and as the template's Architecture parameter; sam-check-artifacts then checks the
# bootstraps are ELF for that architecture. Running `sam build` by hand: set both,
# `ARCH=arm64 sam build --parameter-overrides Architecture=arm64`.

SAM_TEMPLATE := sam/template.yaml
SAM_CONFIG   := sam/samconfig.toml
SAM          := $(CURDIR)/$(VENV)/bin/sam
SAM_ENV      := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0
# x86_64-unknown-linux-musl for `Architecture=x86_64`; aarch64-unknown-linux-musl for arm64.
SAM_TARGET   := $(MUSL_TARGET)
# The template's Architecture parameter for that target (Lambda's names).
SAM_ARCH     := $(if $(filter aarch64-%,$(SAM_TARGET)),arm64,x86_64)
SAM_PARAMS   := --parameter-overrides Architecture=$(SAM_ARCH)
SAM_TARGET_DIR = $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# LogicalId -> package of every function in the template.
SAM_FUNCTIONS := HelloFunction:hello HttpEchoFunction:http-echo EchoEventFunction:echo-event SqsBatchFunction:sqs-batch

.PHONY: sam-build sam-deploy sam-validate sam-release sam-check-template sam-test

sam-build: $(VENV)/.installed ## sam build: static musl bootstrap per function into .aws-sam/build
	ARCH=$(SAM_ARCH) $(SAM_ENV) $(SAM) build --template-file $(SAM_TEMPLATE) --config-file $(CURDIR)/$(SAM_CONFIG) --build-in-source $(SAM_PARAMS)
	@$(MAKE) --no-print-directory sam-check-artifacts

sam-deploy: sam-build ## sam deploy --guided (needs AWS credentials; ARCH=arm64 for Graviton)
	$(SAM) deploy --guided --template-file .aws-sam/build/template.yaml --config-file $(CURDIR)/$(SAM_CONFIG) $(SAM_PARAMS)

sam-validate: $(VENV)/.installed ## sam validate --lint + cfn-lint + Runtime/Handler check (offline)
	$(SAM_ENV) $(SAM) validate --lint --template-file $(SAM_TEMPLATE)
	$(VENV)/bin/cfn-lint $(SAM_TEMPLATE)
	@$(MAKE) --no-print-directory sam-check-template

# sam validate does not reject an unknown Runtime: check every function's Runtime and Handler,
# and that both values of the Architecture parameter give every function one architecture.
sam-check-template:
	@$(VENV)/bin/python sam/check_template.py $(SAM_TEMPLATE)
	@$(VENV)/bin/python sam/check_template.py --parameter Architecture=arm64 $(SAM_TEMPLATE)

# Each artifact is one executable static bootstrap for the architecture it was built as.
sam-check-artifacts:
	@$(VENV)/bin/python sam/check_template.py --artifacts .aws-sam/build --parameter Architecture=$(SAM_ARCH) $(SAM_TEMPLATE)

# One cargo invocation for every function; the build-<LogicalId> targets depend on it.
sam-release: musl-target
	$(CARGO) build --release --locked --target $(SAM_TARGET) $(foreach f,$(SAM_FUNCTIONS),-p $(lastword $(subst :, ,$(f))))

define sam_function_target
build-$(firstword $(subst :, ,$(1))): sam-release
	@test -n "$$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run this through 'make sam-build'"; exit 1; }
	cp $(SAM_TARGET_DIR)/$(SAM_TARGET)/release/$(lastword $(subst :, ,$(1))) $$(ARTIFACTS_DIR)/bootstrap
	chmod 0755 $$(ARTIFACTS_DIR)/bootstrap
endef
$(foreach f,$(SAM_FUNCTIONS),$(eval $(call sam_function_target,$(f))))

# `make test` runs these after the Rust and Python tests.
test-platforms: sam-validate sam-build
