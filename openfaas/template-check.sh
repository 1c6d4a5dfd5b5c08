#!/usr/bin/env bash
# Checks the OpenFaaS template (openfaas/template/fnkit) without Docker or faas-cli:
#  1. lays out ./build/fn/ as `faas-cli build` does (the template, the handler as function/),
#  2. builds the starter crate there against this checkout's fnkit (a [patch.crates-io] given on
#     the command line: the template itself names the published crate), with the workspace's
#     Cargo.lock as the seed so it gets the versions the rest of the repository is tested with,
#  3. starts the binary as of-watchdog starts `fprocess` (mode=http, upstream_url, fprocess ...),
#     waits for ready_path, sends a request with a chunked body as the watchdog does, checks the
#     answer, then sends SIGTERM and expects exit 0 after healthcheck_interval + write_timeout.
#
# Environment: CARGO (cargo), CARGO_TARGET_DIR (<repo>/target). Every wait is bounded.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work="$target_dir/openfaas-template/build/fn"

say() { printf 'openfaas-template-check: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
cp -R "$root/openfaas/template/fnkit/." "$work/"
cp "$root/Cargo.lock" "$work/function/Cargo.lock"

say "building the starter function against $root/crates/fnkit"
"$cargo" build --quiet \
  --manifest-path "$work/function/Cargo.toml" \
  --target-dir "$target_dir" \
  --config "patch.crates-io.fnkit.path='$root/crates/fnkit'"

name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$work/function/Cargo.toml" | head -n 1)
bin="$target_dir/debug/$name"
[[ -x $bin ]] || fail "no binary at $bin"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$work/fn.log"
# What the template's Dockerfile sets, with short timeouts; nothing else from this shell.
env -i PATH="$PATH" \
  mode=http fprocess="$bin" upstream_url="http://127.0.0.1:$port" \
  FNKIT_PLATFORM=openfaas prefix_logs=false ready_path=/ready \
  exec_timeout=5s read_timeout=5s write_timeout=1s healthcheck_interval=1s \
  "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill -9 "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 200); do
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready") == 200 ]]; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "the function exited at start"; }
  sleep 0.05
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready") == 200 ]] \
  || { cat "$log" >&2; fail "/ready did not answer 200 within 10 s"; }

reply=$(curl -sS --max-time 10 -H 'content-type: application/json' -H 'transfer-encoding: chunked' \
  --data '{"name":"OpenFaaS"}' "http://127.0.0.1:$port/")
[[ $reply == '{"message":"Hello, OpenFaaS!"}' ]] || { cat "$log" >&2; fail "unexpected reply: $reply"; }
say "POST / -> $reply"

health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_/health")
[[ $health == 200 ]] || fail "/_/health answered $health"

kill -TERM "$pid"
status=
for _ in $(seq 1 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" && status=0 || status=$?
    break
  fi
  sleep 0.1
done
[[ -n $status ]] || fail "still running 10 s after SIGTERM"
[[ $status == 0 ]] || { cat "$log" >&2; fail "exit status $status after SIGTERM"; }

while IFS= read -r line; do
  python3 -c 'import json, sys; assert isinstance(json.loads(sys.argv[1]), dict)' "$line" \
    || fail "log line is not one JSON object: $line"
done <"$log"
say "ok: built, served a request as of-watchdog would, exited 0 after SIGTERM; logs are JSON lines"
