# fnkit-oci (issue 13): the Debian peers of crates/fnkit-oci/tests/integration.rs. skopeo and
# umoci read the image layout; docker-registry takes the pushes (htpasswd from apache2-utils for
# its Basic auth, openssl signs the tokens of its Bearer auth); podman + runc run the image.
# Installed with apt-get where we are root (CI is); elsewhere the tests that need a missing one
# print why they skip (and fail under CI=true). Each package is named with the command that
# shows it is there.
OCI_PEERS := docker-registry:docker-registry skopeo:skopeo podman:podman runc:runc umoci:umoci htpasswd:apache2-utils openssl:openssl

.PHONY: oci-peers
oci-peers: ## Install fnkit-oci's test peers (docker-registry, skopeo, podman, runc, umoci, htpasswd)
	@missing=""; \
	for peer in $(OCI_PEERS); do \
	  cmd=$${peer%%:*}; pkg=$${peer#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "apt-get install$$missing (fnkit-oci's test peers)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "note: missing$$missing and not root: fnkit-oci's layout, registry and podman tests will skip (apt-get install$$missing)"; \
	fi

test-deps: oci-peers
