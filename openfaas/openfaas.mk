# OpenFaaS (issues 5, 12): the template checks `make test` runs, and the images of the examples.
# Included by the root Makefile, which defines CARGO, CARGO_TARGET_DIR and FUNCTIONS.

# Where `make openfaas-image(s)` tags images: <prefix>/<function>:latest, as in openfaas/stack.yml.
OPENFAAS_PREFIX ?= ttl.sh/fnkit
# PUSH=1 pushes what openfaas-image(s) built.
PUSH ?=

.PHONY: openfaas-template-check openfaas-image openfaas-images

test-platforms: openfaas-template-check

openfaas-template-check: ## Build both OpenFaaS templates' starter (fnkit, fnkit-direct) and serve requests as each image would
	CARGO="$(CARGO)" CARGO_TARGET_DIR="$(CARGO_TARGET_DIR)" bash openfaas/template-check.sh

openfaas-image: ## OpenFaaS image (of-watchdog + static binary) of $(FUNCTION) (needs docker or podman)
	@engine=$$(command -v docker || command -v podman) || { echo "no container engine (docker or podman) found"; exit 1; }; \
	set -x; \
	$$engine build -f openfaas/Dockerfile --build-arg FUNCTION=$(FUNCTION) -t $(OPENFAAS_PREFIX)/$(FUNCTION):latest . \
	&& if [ -n "$(PUSH)" ]; then $$engine push $(OPENFAAS_PREFIX)/$(FUNCTION):latest; fi

openfaas-images: ## OpenFaaS images of the three examples (PUSH=1 pushes them; then faas-cli up -f openfaas/stack.yml)
	@for f in $(FUNCTIONS); do $(MAKE) --no-print-directory openfaas-image FUNCTION=$$f || exit 1; done
