#!/usr/bin/env bash
# Checks the OpenFaaS templates (openfaas/template/fnkit, then fnkit-direct) without Docker or
# faas-cli. For the watchdog template (fnkit):
#  1. lays out ./build/fn/ as `faas-cli build` does (the template, the handler as function/),
#  2. builds the starter crate there against this checkout's fnkit (a [patch.crates-io] given on
#     the command line: the template itself names the published crate), with the workspace's
#     Cargo.lock as the seed so it gets the versions the rest of the repository is tested with,
#  3. starts the binary as of-watchdog starts `fprocess` (mode=http, upstream_url, fprocess ...),
#     waits for ready_path, sends a request with a chunked body as the watchdog does, checks the
#     answer, then sends SIGTERM and expects exit 0 after healthcheck_interval + write_timeout.
# For the direct template (fnkit-direct): the same build, then the binary started as its image
# starts it (ENTRYPOINT, the Dockerfile's ENV read from the file, `port` moved off 8080): /_/health,
# a request, SIGTERM -> /_/health 503 while requests are still served, then exit 0.
#
# Environment: CARGO (cargo), CARGO_TARGET_DIR (<repo>/target). Every wait is bounded.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
work="$target_dir/openfaas-template/build/fn"

say() { printf 'openfaas-template-check: %s\n' "$*"; }
fail() { say "FAILED: $*" >&2; exit 1; }

# answers_200 PATH PREFIX: waits up to 10 s for $pid to answer 200 on PATH.
answers_200() {
  for _ in $(seq 1 200); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1") == 200 ]] && return
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "${2}the function exited at start"; }
    sleep 0.05
  done
  cat "$log" >&2
  fail "${2}$1 did not answer 200 within 10 s"
}

# exits_0 PREFIX: waits up to 10 s for $pid (signalled already) to exit, and wants status 0.
exits_0() {
  local status=
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid" && status=0 || status=$?
      break
    fi
    sleep 0.1
  done
  [[ -n $status ]] || fail "${1}still running 10 s after SIGTERM"
  [[ $status == 0 ]] || { cat "$log" >&2; fail "${1}exit status $status after SIGTERM"; }
}

# json_lines PREFIX: every line of $log is one JSON object.
json_lines() {
  while IFS= read -r line; do
    python3 -c 'import json, sys; assert isinstance(json.loads(sys.argv[1]), dict)' "$line" \
      || fail "${1}log line is not one JSON object: $line"
  done <"$log"
}

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

answers_200 /ready ""

reply=$(curl -sS --max-time 10 -H 'content-type: application/json' -H 'transfer-encoding: chunked' \
  --data '{"name":"OpenFaaS"}' "http://127.0.0.1:$port/")
[[ $reply == '{"message":"Hello, OpenFaaS!"}' ]] || { cat "$log" >&2; fail "unexpected reply: $reply"; }
say "POST / -> $reply"

health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_/health")
[[ $health == 200 ]] || fail "/_/health answered $health"

kill -TERM "$pid"
exits_0 ""
json_lines ""
say "ok: built, served a request as of-watchdog would, exited 0 after SIGTERM; logs are JSON lines"

# --- the direct template: no watchdog, the binary is the entry point ------------------------------
work="$target_dir/openfaas-template/build/fn-direct"
dockerfile="$root/openfaas/template/fnkit-direct/Dockerfile"
rm -rf "$work"
mkdir -p "$work"
cp -R "$root/openfaas/template/fnkit-direct/." "$work/"
cp "$root/Cargo.lock" "$work/function/Cargo.lock"
grep -q '^ENTRYPOINT \["/home/app/fn"\]' "$dockerfile" || fail "fnkit-direct: the entry point is not /home/app/fn"
! grep -qE '^(FROM|COPY|CMD|ENTRYPOINT).*(of-watchdog|fwatchdog)' "$dockerfile" || fail "fnkit-direct: the image still has a watchdog"

say "building the direct starter function against $root/crates/fnkit"
"$cargo" build --quiet \
  --manifest-path "$work/function/Cargo.toml" \
  --target-dir "$target_dir" \
  --config "patch.crates-io.fnkit.path='$root/crates/fnkit'"
[[ -x $bin ]] || fail "no binary at $bin"

# The final stage's ENV as written in the Dockerfile (name="value" pairs), so that the check runs
# what the image sets; then `port` moved to a free port and shorter timeouts.
mapfile -t image_env < <(sed -n '/^ENV /,/^$/p' "$dockerfile" | grep -o '[A-Za-z_][A-Za-z0-9_]*="[^"]*"' | sed 's/="\(.*\)"$/=\1/')
printf '%s\n' "${image_env[@]}" | grep -qx 'FNKIT_OPENFAAS_MODE=direct' || fail "fnkit-direct: no FNKIT_OPENFAAS_MODE=direct in its ENV"
printf '%s\n' "${image_env[@]}" | grep -qx 'port=8080' || fail "fnkit-direct: no port=8080 in its ENV"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$work/fn.log"
env -i PATH="$PATH" "${image_env[@]}" port="$port" healthcheck_interval=1s write_timeout=1s \
  "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill -9 "$pid" 2>/dev/null || true' EXIT

answers_200 /_/health "direct: "
reply=$(curl -sS --max-time 10 -H 'content-type: application/json' --data '{"name":"direct"}' "http://127.0.0.1:$port/")
[[ $reply == '{"message":"Hello, direct!"}' ]] || { cat "$log" >&2; fail "direct: unexpected reply: $reply"; }
say "direct: POST / -> $reply"

kill -TERM "$pid"
sleep 0.2
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/_/health")
[[ $health == 503 ]] || fail "direct: /_/health answered $health after SIGTERM, not 503"
reply=$(curl -sS --max-time 5 -H 'content-type: application/json' --data '{"name":"late"}' "http://127.0.0.1:$port/")
[[ $reply == '{"message":"Hello, late!"}' ]] || fail "direct: a request during healthcheck_interval got: $reply"
exits_0 "direct: "
json_lines "direct: "
grep -q '"message":"listening on http://0.0.0.0:'"$port"'"' "$log" || { cat "$log" >&2; fail "direct: did not listen on 0.0.0.0:$port"; }
say "ok: direct template built, served /_/health and a request on 0.0.0.0, 503 then exit 0 after SIGTERM"
