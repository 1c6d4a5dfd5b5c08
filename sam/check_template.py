"""Checks sam/template.yaml beyond what `sam validate --lint` does (docs/platforms.md §3;
docs/conformance.md #24-#25).

    check_template.py [--parameter NAME=VALUE]... TEMPLATE
        every function: Runtime provided.al2023, Handler bootstrap, one Architecture,
        BuildMethod makefile
    check_template.py --artifacts DIR [--parameter NAME=VALUE]... TEMPLATE
        also: DIR/<LogicalId>/bootstrap is an executable, static ELF for that architecture,
        linked with fnkit's code layout (five executable segments)

A `!Ref` to a template parameter (`Architectures: [!Ref Architecture]`) takes the value given with
--parameter (as `sam build --parameter-overrides` would), else the parameter's Default, and must be
one of its AllowedValues.

Uses cfn-lint's YAML loader (it understands !GetAtt and friends); cfn-lint comes with the SAM CLI.
"""

import os
import struct
import sys

from cfnlint.decode import decode

ELF_MACHINE = {"x86_64": 62, "arm64": 183}


def fail(message):
    print(f"sam check: {message}", file=sys.stderr)
    sys.exit(1)


def resolve(value, parameters, overrides):
    """`{"Ref": P}` for a template parameter P becomes its value; anything else is kept."""
    if isinstance(value, list):
        return [resolve(v, parameters, overrides) for v in value]
    if isinstance(value, dict) and list(value) == ["Ref"] and value["Ref"] in parameters:
        name = value["Ref"]
        param = parameters[name] or {}
        got = overrides.get(name, param.get("Default"))
        if got is None:
            fail(f"parameter {name} has no Default and no --parameter {name}=...")
        allowed = param.get("AllowedValues")
        if allowed is not None and got not in allowed:
            fail(f"parameter {name}={got!r} is not one of {list(allowed)}")
        return got
    return value


def functions(path, overrides):
    template, matches = decode(path)
    if matches or template is None:
        fail(f"{path} does not parse: {matches}")
    parameters = template.get("Parameters") or {}
    unknown = set(overrides) - set(parameters)
    if unknown:
        fail(f"--parameter {', '.join(sorted(unknown))}: no such parameter in {path}")
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    for name, res in (template.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = dict(globals_fn)
        props.update(res.get("Properties") or {})
        props = {k: resolve(v, parameters, overrides) for k, v in props.items()}
        yield name, props, res.get("Metadata") or {}


def check_template(path, overrides):
    found = []
    for name, props, meta in functions(path, overrides):
        if props.get("Runtime") != "provided.al2023":
            fail(f"{name}: Runtime is {props.get('Runtime')!r}, not 'provided.al2023'")
        if props.get("Handler") != "bootstrap":
            fail(f"{name}: Handler is {props.get('Handler')!r}, not 'bootstrap'")
        arch = props.get("Architectures") or ["x86_64"]
        if len(arch) != 1 or arch[0] not in ELF_MACHINE:
            fail(f"{name}: Architectures must be one of x86_64, arm64: {arch!r}")
        if meta.get("BuildMethod") != "makefile":
            fail(f"{name}: Metadata.BuildMethod is {meta.get('BuildMethod')!r}, not 'makefile'")
        found.append((name, arch[0]))
    if not found:
        fail(f"{path} has no AWS::Serverless::Function")
    return found


def check_bootstrap(path, arch):
    if not os.path.isfile(path):
        fail(f"{path} is missing")
    if not os.access(path, os.X_OK):
        fail(f"{path} is not executable")
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        fail(f"{path} is not a 64-bit ELF binary")
    machine = struct.unpack_from("<H", data, 18)[0]
    if machine != ELF_MACHINE[arch]:
        fail(f"{path} is built for ELF machine {machine}, the template says {arch}")
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    code_segments = 0
    for i in range(phnum):
        p_type, p_flags = struct.unpack_from("<II", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            fail(f"{path} is dynamically linked; Lambda's provided.al2023 wants a static binary")
        code_segments += p_type == 1 and p_flags & 1  # PT_LOAD, PF_X
    # .text and the four groups of .cargo/fnkit-layout.ld (docs/runtime.md, "Code layout").
    if code_segments != 5:
        fail(f"{path} has {code_segments} executable segments, not 5: "
             "was it linked without .cargo/fnkit-layout.ld?")


def main(argv):
    artifacts, overrides = None, {}
    while len(argv) >= 2 and argv[0] in ("--artifacts", "--parameter"):
        if argv[0] == "--artifacts":
            artifacts = argv[1]
        else:
            key, eq, value = argv[1].partition("=")
            if not eq or not key:
                fail(f"--parameter wants NAME=VALUE, not {argv[1]!r}")
            overrides[key] = value
        argv = argv[2:]
    if len(argv) != 1:
        fail(__doc__)
    found = check_template(argv[0], overrides)
    for name, arch in found:
        if artifacts is not None:
            check_bootstrap(os.path.join(artifacts, name, "bootstrap"), arch)
    what = "artifacts" if artifacts else "template"
    archs = ", ".join(sorted({a for _, a in found}))
    print(f"sam check: {what} OK for {archs} ({', '.join(n for n, _ in found)})")


if __name__ == "__main__":
    main(sys.argv[1:])
