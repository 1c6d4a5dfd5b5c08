#!/usr/bin/env python3
"""Generate .cargo/fnkit-layout.ld: which code of a fnkit function runs on which platform.

`make layout` runs this. It builds `hello` with fnkit's default features, again with metrics
and OpenTelemetry compiled in, and for one platform only (plain-JSON HTTP, Lambda) (static musl,
release, symbols kept, a linker map), runs each under valgrind's callgrind through the scenarios
its platforms serve, and sorts every function of the binaries into one of five groups by the
scenarios that ran it:

    common  ran on Lambda and over HTTP (start-up, the handler, JSON, the runtime)
    http    ran over HTTP only (local, Knative, OpenFaaS: the server side of hyper, fnkit-http)
    ce      ran only when CloudEvents arrived (the cloudevents-sdk, URL parsing)
    lambda  ran on Lambda only (the Runtime API client)
    cold    never ran (panic and backtrace printing, error paths no scenario reaches)

The linker script it writes gives each group but `common` its own output section, each after a
gap in the address space, so each becomes its own PT_LOAD segment and the kernel maps it as its
own VMA. Functions it does not name (`common`, the user's own code, anything newer than the list)
stay in `.text`, the first code segment. Why this lowers peak RSS, and by how much, is in
docs/runtime.md ("Code layout") and BENCHMARKS.md.

Patterns leave out what changes from build to build (legacy symbol hashes, v0 crate
disambiguators, LTO suffixes), so one list serves later builds of the same code; a function the
list does not know stays in `.text`, which costs memory, never correctness.

Needs valgrind, python3 and the musl target. Usage:
    python3 tools/layout/profile.py [--keep DIR]

It writes .cargo/fnkit-layout.ld, then (where `perf` is installed) builds with it and runs the
same scenarios natively, recording page faults: a function that valgrind's slower timing never ran
but a native run does shows as a fault outside its platform's segments, and is moved to its
group; it stops when a round moves nothing, or after six.
"""

import argparse
import bisect
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = "x86_64-unknown-linux-musl"
GROUPS = ["http", "ce", "lambda", "cold"]  # segment order after .text (common)
# The segments each run may touch: .text always, and its platform's groups (a CloudEvent is
# served by the HTTP server too). A fault anywhere else is a function in the wrong group.
REACHES = {"http": {"common", "http"}, "ce": {"common", "http", "ce"},
           "lambda": {"common", "lambda"}}


# The builds profiled, and the runs each serves: fnkit's defaults, the same with metrics and
# OpenTelemetry compiled in (issue 11: what a function does not use should cost it nothing, so
# their idle code goes cold), and the single-platform builds. A pattern gets the union of what
# every build's runs did with it.
ALL_RUNS = ("http", "ce", "lambda")
BUILDS = [("default", "fnkit/default", ALL_RUNS),
          ("observed", "fnkit/default,fnkit/metrics,fnkit/otel", ALL_RUNS),
          # The single-platform builds inline and merge differently: a function that runs over
          # HTTP in the plain-JSON build may be one that, in the default build, only Lambda ran.
          ("http-only", "fnkit/http", ("http",)),
          ("lambda-only", "fnkit/lambda", ("lambda",))]


def build(work, name, features):
    """hello with `features`, release, unstripped, with a linker map. Returns (binary, map)."""
    map_path = os.path.join(work, f"{name}.map")
    # Touch main.rs so that cargo relinks even when only the arguments after `--` changed.
    os.utime(os.path.join(ROOT, "functions/hello/src/main.rs"))
    subprocess.run(
        ["cargo", "rustc", "--release", "--locked", "--target", TARGET, "-p", "hello",
         "--bin", "hello", "--no-default-features", "--features", features, "--",
         "-C", "strip=none", "-C", f"link-arg=-Wl,-Map={map_path}"],
        cwd=ROOT, check=True)
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(work, name)
    shutil.copy(os.path.join(target_dir, TARGET, "release", "hello"), binary)
    # Touched again: the next plain `cargo build` relinks the stripped binary over this one.
    os.utime(os.path.join(ROOT, "functions/hello/src/main.rs"))
    return binary, map_path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def callgrind(binary, out):
    """Argv that runs `binary` under callgrind, writing its profile to `out`."""
    return ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", binary]


def perf_faults(binary, out):
    """Argv that runs `binary` natively, perf recording each page fault and its address."""
    return ["perf", "record", "-q", "-e", "page-faults", "-c", "1", "-d", "-o", out, binary]


def run(argv, env, drive):
    """Run argv with `env` added, call drive(proc), SIGTERM it, wait."""
    full = dict(os.environ, **env)
    proc = subprocess.Popen(argv, env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        drive(proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_scenarios(binary, wrap, work, tag, runs=ALL_RUNS):
    """Every scenario of `runs` once, under wrap(binary, out). Returns {run: [output files]}."""
    outputs = {"http": [], "ce": [], "lambda": []}

    def one(run_name, file, env, drive):
        if run_name not in runs:
            return
        out = os.path.join(work, f"{tag}.{file}")
        run(wrap(binary, out), env, drive)
        outputs[run_name].append(out)

    port = free_port()
    one("http", "http", {"PORT": str(port), "FNKIT_PLATFORM": "local"}, drive_http(port))
    # OpenFaaS without the watchdog; a short linger after SIGTERM keeps the run short.
    port = free_port()
    one("http", "openfaas", {"port": str(port), "fprocess": "hello",
                             "FNKIT_OPENFAAS_MODE": "direct", "healthcheck_interval": "1s"},
        drive_openfaas(port))
    port = free_port()
    one("ce", "ce", {"PORT": str(port), "K_SERVICE": "hello"}, drive_cloudevents(port))

    if "lambda" not in runs:
        return outputs
    RuntimeApiHandler.served = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApiHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lambda_env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "hello", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/hello",
        "AWS_LAMBDA_LOG_STREAM_NAME": "profile", "_HANDLER": "hello",
    }
    one("lambda", "lambda", lambda_env, drive_lambda)
    server.shutdown()
    server.server_close()
    return outputs


def wait_port(port, proc):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"hello exited ({proc.returncode}) before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"hello never listened on {port}")


def exchange(port, method, path, body=None, headers=None, close=False):
    """One request on its own connection, its answer read and dropped."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = dict(headers or {})
    if close:
        headers["Connection"] = "close"
    conn.request(method, path, body=body, headers=headers)
    conn.getresponse().read()
    conn.close()


def drive_http(port):
    def drive(proc):
        wait_port(port, proc)
        json_ct = {"Content-Type": "application/json"}
        # Several requests on one keep-alive connection, the way a load balancer sends them.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for body in ['{"name":"Ada"}', '{}', '{"name":"Grace","pad":"' + "x" * 2000 + '"}']:
            conn.request("POST", "/", body=body, headers=json_ct)
            conn.getresponse().read()
        conn.close()
        # What a cold start gets in make bench and from most clients: one request, then close.
        exchange(port, "POST", "/", '{"name":"Ada"}', json_ct, close=True)
        exchange(port, "GET", "/")
        exchange(port, "POST", "/", "")
        # Refusals a function meets in its first minutes: bad JSON, a wrong media type.
        exchange(port, "POST", "/", "{not json", json_ct)
        exchange(port, "POST", "/", "hello", {"Content-Type": "text/plain"})
    return drive


def drive_openfaas(port):
    def drive(proc):
        wait_port(port, proc)
        exchange(port, "GET", "/_/health")
        exchange(port, "GET", "/_/ready")
        exchange(port, "POST", "/", '{"name":"Ada"}', {"Content-Type": "application/json"})
    return drive


def drive_cloudevents(port):
    def drive(proc):
        wait_port(port, proc)
        binary = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/profile",
                  "ce-type": "dev.fnkit.profile", "Content-Type": "application/json"}
        exchange(port, "POST", "/", '{"name":"Ada"}', binary)
        event = {"specversion": "1.0", "id": "2", "source": "/profile",
                 "type": "dev.fnkit.profile", "datacontenttype": "application/json",
                 "data": {"name": "Ada"}}
        structured = {"Content-Type": "application/cloudevents+json"}
        exchange(port, "POST", "/", json.dumps(event), structured)
        batch = {"Content-Type": "application/cloudevents-batch+json"}
        exchange(port, "POST", "/", json.dumps([event, dict(event, id="3")]), batch)
    return drive


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    """Just enough of the Lambda Runtime API: a few events, then a long poll that never ends."""

    protocol_version = "HTTP/1.1"
    events = [b'{"name":"Ada"}', b"{}", b"not json", b'{"name":"Grace"}']
    served = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        with RuntimeApiHandler.lock:
            n = RuntimeApiHandler.served
            RuntimeApiHandler.served += 1
        if n >= len(RuntimeApiHandler.events):
            time.sleep(3600)  # the next event never comes; SIGTERM ends the run
            return
        body = RuntimeApiHandler.events[n]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"profile-{n}")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 600_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                         "arn:aws:lambda:us-east-1:123456789012:function:hello")
        self.send_header("Lambda-Runtime-Trace-Id",
                         "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def drive_lambda(proc):
    """Waits until every event was served and the next long poll has started."""
    deadline = time.time() + 120
    while RuntimeApiHandler.served <= len(RuntimeApiHandler.events) and time.time() < deadline:
        if proc.poll() is not None:
            # Under valgrind, rustix's vDSO lookup (fnkit-metrics' CPU clock) faults on
            # valgrind's own auxiliary vector; natively it does not. Keep what the profile
            # saw: the native check finds the rest.
            print(f"layout: hello exited ({proc.returncode}) on Lambda; profile kept")
            return
        time.sleep(0.1)
    time.sleep(1)  # the last answer's POST


def executed(cg_path, addresses):
    """Start addresses of the functions a callgrind profile saw run."""
    names = {}
    found = set()
    for line in open(cg_path, errors="replace"):
        m = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        if m.group(2):
            names[m.group(1)] = m.group(2)
        name = names.get(m.group(1), "")
        if name.startswith("0x"):
            found.add(int(name, 16))
        else:
            addr = addresses.get(name.split("'")[0])
            if addr is not None:
                found.add(addr)
    return sorted(found)


def symbols(binary):
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                         check=True).stdout
    addresses = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            addresses.setdefault(parts[2], int(parts[0], 16))
    return addresses


def input_sections(map_path):
    """(section name, address, size, input file) of every code input section in the map."""
    sections = []
    in_text = False
    pending = None
    for line in open(map_path, errors="replace"):
        line = line.rstrip("\n")
        if line and not line.startswith(" "):
            in_text = line.startswith(".text")
            pending = None
            continue
        if not in_text:
            continue
        m = re.match(r"^ (\.text\S*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
        if m:
            sections.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4)))
            pending = None
            continue
        m = re.match(r"^ (\.text\S*)$", line)
        if m:
            pending = m.group(1)
            continue
        m = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
        if m and pending:
            sections.append((pending, int(m.group(1), 16), int(m.group(2), 16), m.group(3)))
            pending = None
    return [s for s in sections if s[2] > 0]


def pattern(name, input_file):
    """The linker-script pattern for one input section, or None to leave it in .text."""
    base = input_file.rsplit("/", 1)[-1]
    # musl's libc: valgrind runs its own str*/mem* and hides start-up and the signal trampoline,
    # so a profile cannot tell what of it runs. It stays in .text (a few tens of KB).
    if base.startswith("libc.a("):
        return None
    if name == ".text":
        m = re.match(r"(lib\w+\.a)\((.*)\)", base)
        if not m:
            return None
        member = re.sub(r"^[0-9a-f]{16}-", "*", m.group(2))
        return f"*{m.group(1)}:{member}(.text)"
    p = re.sub(r"17h[0-9a-f]{16}E", "17h*E", name)   # legacy mangling's hash
    p = re.sub(r"Cs[0-9a-zA-Z]+_", "Cs*_", p)          # v0 crate disambiguators
    p = re.sub(r"\.(llvm\.)?\d+$", "", p)              # LTO and clone suffixes: one family
    return f"*({p}*)"


def group_of(hit):
    """The group of a function that the runs in `hit` executed."""
    if "http" in hit:
        return "common" if "lambda" in hit else "http"
    if "lambda" in hit:
        return "common" if "ce" in hit else "lambda"
    return "ce" if "ce" in hit else "cold"


def hits_of(sections, runs):
    """For each pattern, the runs that executed a section it matches. Several sections can share
    a pattern (monomorphised copies of one generic function, LTO clones): the pattern gets what
    all of them got."""
    hits = {}
    for name, addr, size, input_file in sections:
        p = pattern(name, input_file)
        if p is None:
            continue
        hit = hits.setdefault(p, set())
        for run_name, starts in runs.items():
            i = bisect.bisect_left(starts, addr)
            if i < len(starts) and starts[i] < addr + size:
                hit.add(run_name)
    return hits


def sizes_of(sections, hits):
    sizes = {g: 0 for g in ["common"] + GROUPS}
    for name, _addr, size, input_file in sections:
        p = pattern(name, input_file)
        sizes[group_of(hits[p]) if p in hits else "common"] += size
    return sizes


def write_script(path, hits, sizes, commit):
    lines = [
        "/* fnkit code layout, generated by `make layout` (tools/layout/profile.py); do not edit.",
        f" * Profiled: functions/hello for {TARGET}, with fnkit's default features, with",
        f" * metrics and otel added, and HTTP-only and Lambda-only; commit {commit}.",
        " *",
        " * An INSERT script: it adds output sections after .text and leaves the default script in",
        " * place. Each group below starts a page past the end of the one before and has its own",
        " * load address (AT), so GNU ld and lld give it its own PT_LOAD segment and the kernel its",
        " * own mapping: a group that never runs is never resident, however widely the kernel maps",
        " * a file's pages around a fault. Functions not named here (code run on every platform,",
        " * the function's own code, anything newer than this list) stay in .text.",
        " * See docs/runtime.md, \"Code layout\".",
        " *",
        " * Bytes per group in the default build: "
        + ", ".join(f"{g} {sizes[g]:,}" for g in ["common"] + GROUPS) + ".",
        " */",
        "SECTIONS",
        "{",
    ]
    for g in GROUPS:
        patterns = sorted(p for p, hit in hits.items() if group_of(hit) == g)
        # Start a page past the previous section's last page: the gap keeps the kernel from
        # merging the two mappings. AT() makes lld start a new PT_LOAD (GNU ld does on the gap).
        lines.append(f"  .text.fnkit_{g} ALIGN(CONSTANT (MAXPAGESIZE)) + CONSTANT (MAXPAGESIZE) :"
                     f" AT(ADDR(.text.fnkit_{g})) {{")
        lines.extend(f"    {p}" for p in patterns)
        lines.append("  }")
    lines.append("}")
    lines.append("INSERT AFTER .text;")
    lines += [
        "",
        "/* The unwind tables (.eh_frame_hdr, .eh_frame, .gcc_except_table) are read only while a",
        " * panic unwinds: a gap before them ends the read-only data's segment, so they get one",
        " * of their own (GNU ld) instead of being mapped with the data every start reads. */",
        "SECTIONS",
        "{",
        "  . = ALIGN(CONSTANT (MAXPAGESIZE)) + CONSTANT (MAXPAGESIZE);",
        "}",
        "INSERT BEFORE .eh_frame_hdr;",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def code_segments(binary):
    """(start, end) of each executable PT_LOAD, in file order; the first is .text."""
    with open(binary, "rb") as f:
        data = f.read()
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segments = []
    for i in range(phnum):
        p_type, p_flags, _off, vaddr, _pa, _fsz, memsz = struct.unpack_from(
            "<IIQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_flags & 1:
            segments.append((vaddr, vaddr + memsz))
    return segments


def native_strays(binary, work, tag, runs=ALL_RUNS):
    """Run the scenarios natively under perf and return {pattern: runs} for the functions that
    took an instruction fault outside .text: code the valgrind profile did not see run (a path
    that only native timing takes, such as a read that finds no data yet)."""
    segments = code_segments(binary)
    if len(segments) != 1 + len(GROUPS):
        sys.exit(f"{binary} has {len(segments)} code segments, not {1 + len(GROUPS)}: "
                 "was it linked with .cargo/fnkit-layout.ld?")
    addresses = symbols(binary)
    starts = sorted((a, n) for n, a in addresses.items())
    keys = [a for a, _ in starts]
    strays = {}
    for run_name, outs in run_scenarios(binary, perf_faults, work, tag, runs).items():
        for out in outs:
            text = subprocess.run(["perf", "script", "-i", out, "-F", "ip,addr"],
                                  capture_output=True, text=True).stdout
            for line in text.splitlines():
                try:
                    ip, addr = (int(x, 16) for x in line.split())
                except ValueError:
                    continue
                # An instruction fetch (ip == addr) in a segment this run should not touch.
                segment = next((g for g, (lo, hi) in zip(["common"] + GROUPS, segments)
                                if lo <= ip < hi), "common")
                if ip != addr or segment in REACHES[run_name]:
                    continue
                i = bisect.bisect_right(keys, ip) - 1
                if i < 0:
                    continue
                name = starts[i][1]
                for section in (f".text.{name}", f".text.unlikely.{name}"):
                    strays.setdefault(pattern(section, ""), set()).add(run_name)
    return strays


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", help="keep the profiles and the map in this directory")
    args = ap.parse_args()
    out = os.path.join(ROOT, ".cargo", "fnkit-layout.ld")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install valgrind")
    work = args.keep or tempfile.mkdtemp(prefix="fnkit-layout-")
    os.makedirs(work, exist_ok=True)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"

    hits = {}
    default_sections = None
    for name, features, build_runs in BUILDS:
        binary, map_path = build(work, name, features)
        addresses = symbols(binary)
        runs = {run_name: sorted({a for f in files for a in executed(f, addresses)})
                for run_name, files in run_scenarios(binary, callgrind, work, f"cg-{name}",
                                                     build_runs).items()}
        sections = input_sections(map_path)
        default_sections = default_sections or sections
        for p, hit in hits_of(sections, runs).items():
            hits.setdefault(p, set()).update(hit)
    sections = default_sections
    write_script(out, hits, sizes_of(sections, hits), commit)

    # The builds link with `out` (.cargo/config.toml names it): check them natively, where timing
    # differs from valgrind's, and move what ran where its run should not reach to its group.
    # A round sees one stray per mapping it touched (the first fault maps the rest), so it
    # repeats; the metrics build keeps finding one now and then, hence the cap.
    rounds = range(1, 7)
    if shutil.which("perf") is None:
        print("layout: no perf here, so the layout was not checked natively (apt-get install "
              "linux-perf)")
        rounds = ()
    for round_no in rounds:
        moved = 0
        for name, features, build_runs in BUILDS:
            binary, _ = build(work, name, features)
            for p, found in native_strays(binary, work, f"perf{round_no}-{name}",
                                          build_runs).items():
                if p in hits and group_of(hits[p] | found) != group_of(hits[p]):
                    hits[p] |= found
                    moved += 1
        print(f"layout: native check {round_no}: {moved} function(s) moved")
        if moved == 0:
            break
        write_script(out, hits, sizes_of(sections, hits), commit)
    sizes = sizes_of(sections, hits)
    print(f"layout: wrote {out}: " + ", ".join(f"{g} {sizes[g]:,} B" for g in sizes))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
