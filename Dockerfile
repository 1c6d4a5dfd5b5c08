# fnkit function image: one statically linked binary in an empty (`scratch`) image.
#
#   docker build --build-arg FUNCTION=hello -t fnkit-hello .
#   podman build --build-arg FUNCTION=echo-event -t fnkit-echo-event .
#   docker run --rm -p 8080:8080 fnkit-hello
#
# FUNCTION is the cargo package of the function (`functions/<name>`); its binary has the same name.
# The image is linux/amd64 (target x86_64-unknown-linux-musl).
#
# Why rust:1-alpine for the build stage: Alpine's own libc is musl, so x86_64-unknown-linux-musl is
# the host target there. rustc, the linker (gcc + musl-dev) and any C code a dependency compiles
# through the `cc` crate all agree on musl, and the result is static by default (crt-static).
# On rust:1-slim (Debian, glibc) the musl target links with the glibc gcc plus Rust's self-contained
# musl objects: fine for pure Rust, but a dependency with C code would be compiled against glibc
# headers unless musl-tools is installed and CC_x86_64_unknown_linux_musl=musl-gcc is set.
# `rustup target add` is kept for clarity (on Alpine the target is already installed).

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-alpine AS build
ARG FUNCTION=hello
# musl-dev: crt objects and libc.a for the linker (not in every rust:alpine tag); binutils: readelf
# for the static check below; ca-certificates: a CA bundle for functions that call TLS endpoints.
RUN apk add --no-cache musl-dev binutils ca-certificates \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# --locked: build exactly what Cargo.lock says. The final image's whole tree is assembled in
# /rootfs (copying a directory's contents keeps the metadata of what is inside it, so /tmp keeps
# its mode 1777 there): the binary as /fn, a world-writable /tmp, the CA bundle.
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p "${FUNCTION}" \
 && mkdir -p /rootfs/tmp /rootfs/etc/ssl/certs \
 && chmod 1777 /rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && cp "target/x86_64-unknown-linux-musl/release/${FUNCTION}" /rootfs/fn \
 && if readelf -l /rootfs/fn | grep -q 'program interpreter'; then \
      echo "/fn is dynamically linked: it cannot run in a scratch image" >&2; exit 1; \
    fi

FROM scratch
ARG FUNCTION=hello
LABEL org.opencontainers.image.title="fnkit-${FUNCTION}" \
      org.opencontainers.image.description="fnkit function ${FUNCTION} (static musl binary)"
COPY --from=build /rootfs/ /
# Numeric non-root user (nobody): Kubernetes can check runAsNonRoot only against a numeric USER,
# and `kn`'s default strict security context requires one.
USER 65534:65534
ENV PORT=8080
EXPOSE 8080
# Exec form: there is no shell in scratch, and /fn must be PID 1 to receive SIGTERM itself.
ENTRYPOINT ["/fn"]
