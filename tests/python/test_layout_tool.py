"""The code-layout generator (tools/layout/profile.py, `make layout`): its rules, without a build.

What a profile run decides is checked end to end elsewhere (`sam build`'s artifact check, the CLI's
release test and the arm64 test require the five code segments, and `make bench` measures the RSS);
here are the rules that turn a linker map and a profile into patterns and groups, on fixed input.

Contract: docs/runtime.md, "Code layout".
"""

from __future__ import annotations

import importlib.util
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("layout_profile", ROOT / "tools/layout/profile.py")
layout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layout)


def test_patterns_leave_out_what_changes_between_builds():
    legacy = ".text._ZN10fnkit_core3env7env_var17h0123456789abcdefE"
    assert layout.pattern(legacy, "x.o") == "*(.text._ZN10fnkit_core3env7env_var17h*E*)"
    v0 = ".text._RNvMs5_NtNtCs2Nb3gJ4iU0I_3std2io5errorNtB5_5Error4kind"
    assert layout.pattern(v0, "x.o") == "*(.text._RNvMs5_NtNtCs*_3std2io5errorNtB5_5Error4kind*)"
    # An LTO clone and its original are one family.
    assert layout.pattern(v0 + ".1690", "x.o") == layout.pattern(v0, "x.o")
    assert layout.pattern(legacy + ".llvm.123456", "x.o") == layout.pattern(legacy, "x.o")


def test_libc_stays_in_text_and_other_archives_are_named_by_member():
    libc = "/sysroot/self-contained/libc.a(memcpy.lo)"
    assert layout.pattern(".text.memcpy", libc) is None
    assert layout.pattern(".text", libc) is None
    unwind = "/sysroot/self-contained/libunwind.a(84445457d4afd1cb-UnwindLevel1.o)"
    assert layout.pattern(".text", unwind) == "*libunwind.a:*UnwindLevel1.o(.text)"


def test_groups_follow_the_runs_that_executed_a_function():
    assert layout.group_of({"http", "lambda"}) == "common"
    assert layout.group_of({"http"}) == "http"
    assert layout.group_of({"http", "ce"}) == "http"
    assert layout.group_of({"ce"}) == "ce"
    assert layout.group_of({"lambda"}) == "lambda"
    assert layout.group_of({"lambda", "ce"}) == "common"
    assert layout.group_of(set()) == "cold"


def test_a_pattern_gets_what_any_of_its_sections_got(tmp_path):
    # Two monomorphised copies share a pattern: one ran over HTTP, one on Lambda.
    sections = [
        (".text._ZN5hyper5proto4poll17h1111111111111111E", 0x1000, 0x100, "a.o"),
        (".text._ZN5hyper5proto4poll17h2222222222222222E", 0x2000, 0x100, "a.o"),
        (".text._ZN3url5parse17h3333333333333333E", 0x3000, 0x80, "a.o"),
    ]
    runs = {"http": [0x1000], "lambda": [0x2040], "ce": []}
    hits = layout.hits_of(sections, runs)
    assert layout.group_of(hits["*(.text._ZN5hyper5proto4poll17h*E*)"]) == "common"
    assert layout.group_of(hits["*(.text._ZN3url5parse17h*E*)"]) == "cold"
    sizes = layout.sizes_of(sections, hits)
    assert sizes["common"] == 0x200 and sizes["cold"] == 0x80

    out = tmp_path / "layout.ld"
    layout.write_script(str(out), hits, sizes, "test")
    script = out.read_text()
    assert script.count("INSERT AFTER .text;") == 1
    assert "INSERT BEFORE .eh_frame_hdr;" in script
    for group in layout.GROUPS:
        assert f".text.fnkit_{group} ALIGN(CONSTANT (MAXPAGESIZE)) + CONSTANT (MAXPAGESIZE) :" \
            f" AT(ADDR(.text.fnkit_{group}))" in script
    cold = script.split("AT(ADDR(.text.fnkit_cold))")[1]
    assert "*(.text._ZN3url5parse17h*E*)" in cold
    assert "hyper5proto4poll" not in script, "a common function stays in .text, unnamed"


def test_the_map_reader_takes_sections_whose_names_wrap_onto_a_second_line(tmp_path):
    long_name = ".text._ZN4core3ptr" + "x" * 60 + "17h0123456789abcdefE"
    (tmp_path / "m.map").write_text(
        "Linker script and memory map\n\n"
        ".text           0x0000000000401000    0x3000\n"
        " *(.text.unlikely .text.*_unlikely .text.unlikely.*)\n"
        " .text.short    0x0000000000401000       0x40 /t/hello.o\n"
        f" {long_name}\n"
        "                0x0000000000401040       0x80 /t/hello.o\n"
        " .text.empty    0x00000000004010c0        0x0 /t/hello.o\n"
        " *fill*         0x00000000004010c0       0x10 \n"
        ".rodata         0x0000000000500000      0x100\n"
        " .rodata.x      0x0000000000500000      0x100 /t/hello.o\n"
    )
    assert layout.input_sections(str(tmp_path / "m.map")) == [
        (".text.short", 0x401000, 0x40, "/t/hello.o"),
        (long_name, 0x401040, 0x80, "/t/hello.o"),
    ]


def test_code_segments_reads_the_executable_loads(tmp_path):
    # A minimal ELF64 header with three program headers: R, R+X, R+X.
    phoff, phentsize = 64, 56
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    header[4], header[5] = 2, 1
    struct.pack_into("<Q", header, 32, phoff)
    struct.pack_into("<HH", header, 54, phentsize, 3)
    phdrs = b"".join(
        struct.pack("<IIQQQQQQ", 1, flags, 0, vaddr, vaddr, size, size, 0x1000)
        for flags, vaddr, size in [(4, 0x400000, 0x300), (5, 0x401000, 0x2000), (5, 0x404000, 0x10)]
    )
    (tmp_path / "elf").write_bytes(bytes(header) + phdrs)
    assert layout.code_segments(str(tmp_path / "elf")) == [(0x401000, 0x403000), (0x404000, 0x404010)]
