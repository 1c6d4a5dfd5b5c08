//! arm64 (issue 10): `make build ARCH=arm64` makes static `aarch64-unknown-linux-musl` binaries on
//! an x86-64 machine (zig as the linker, `tools/zig-cc-aarch64`). `make test` builds `hello` that
//! way and points `FNKIT_ARM64_BIN` at it; these tests then
//! - read its ELF header: 64-bit, little endian, AArch64, executable, no interpreter and no needed
//!   library (static), which is what Lambda's `provided.al2023` on arm64 runs;
//! - run it under qemu-user (`qemu-aarch64-static`, Debian's qemu-user-static, which `make test`
//!   installs) against the mock Runtime API, as Lambda would start it.
//!
//! Without `FNKIT_ARM64_BIN` (a plain `cargo test`) they say SKIPPED and pass; under CI (`CI` set)
//! a missing binary or a missing qemu fails them, since `make test` provides both.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::lambda::lambda_env;
use crate::lambda::mock::{Event, MockApi};

const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// The aarch64 `hello` from `FNKIT_ARM64_BIN` (`make test-arm64` builds it and sets it).
fn arm64_bin() -> Option<PathBuf> {
    fnkit_tests::built_aside("FNKIT_ARM64_BIN", "arm64-hello")
}

/// qemu-user for aarch64: `FNKIT_QEMU_AARCH64`, else `qemu-aarch64-static` or `qemu-aarch64` on
/// `PATH`.
fn qemu() -> Option<PathBuf> {
    if let Some(q) = std::env::var_os("FNKIT_QEMU_AARCH64").filter(|q| !q.is_empty()) {
        return Some(PathBuf::from(q));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["qemu-aarch64-static", "qemu-aarch64"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    fnkit_tests::skip(
        "no qemu-aarch64-static or qemu-aarch64 on PATH (apt-get install qemu-user-static)",
    )
}

/// What the ELF header and program headers of a binary say.
#[derive(Debug)]
struct Elf {
    class: u8,
    data: u8,
    version: u8,
    osabi: u8,
    e_type: u16,
    machine: u16,
    entry: u64,
    /// `p_type` of every program header.
    segments: Vec<u32>,
    /// How many `PT_LOAD`s are executable.
    code_segments: usize,
    /// `DT_NEEDED` entries in `PT_DYNAMIC`, if any.
    needed: usize,
}

impl Elf {
    fn read(path: &std::path::Path) -> Self {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A 64-bit little-endian ELF file (the only kind asked about here).
    fn parse(b: &[u8]) -> Result<Self, String> {
        let u16_at = |o: usize| -> Result<u16, String> {
            b.get(o..o + 2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .ok_or_else(|| format!("truncated at {o}"))
        };
        let u32_at = |o: usize| -> Result<u32, String> {
            b.get(o..o + 4)
                .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
                .ok_or_else(|| format!("truncated at {o}"))
        };
        let u64_at = |o: usize| -> Result<u64, String> {
            b.get(o..o + 8)
                .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
                .ok_or_else(|| format!("truncated at {o}"))
        };
        if b.get(..4) != Some(b"\x7fELF".as_slice()) {
            return Err("not an ELF file".into());
        }
        let (class, data, version, osabi) = (b[4], b[5], b[6], b[7]);
        if class != 2 || data != 1 {
            return Err(format!(
                "not a 64-bit little-endian ELF (class {class}, data {data})"
            ));
        }
        let phoff = usize::try_from(u64_at(32)?).map_err(|e| e.to_string())?;
        let phentsize = usize::from(u16_at(54)?);
        let phnum = usize::from(u16_at(56)?);
        if phentsize != 56 {
            return Err(format!("e_phentsize is {phentsize}, not 56"));
        }
        let (mut segments, mut code_segments, mut needed) = (Vec::new(), 0, 0);
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            let (p_type, p_flags) = (u32_at(ph)?, u32_at(ph + 4)?);
            segments.push(p_type);
            code_segments += usize::from(p_type == PT_LOAD && p_flags & PF_X != 0);
            if p_type == PT_DYNAMIC {
                let (off, size) = (u64_at(ph + 8)?, u64_at(ph + 32)?);
                let (off, size) = (off as usize, size as usize);
                for d in (off..off + size).step_by(16) {
                    match u64_at(d)? {
                        DT_NULL => break,
                        DT_NEEDED => needed += 1,
                        _ => {}
                    }
                }
            }
        }
        Ok(Self {
            class,
            data,
            version,
            osabi,
            e_type: u16_at(16)?,
            machine: u16_at(18)?,
            entry: u64_at(24)?,
            segments,
            code_segments,
            needed,
        })
    }

    fn has(&self, p_type: u32) -> bool {
        self.segments.contains(&p_type)
    }
}

#[test]
fn arm64_hello_is_a_static_aarch64_elf() {
    let Some(path) = arm64_bin() else { return };
    let elf = Elf::read(&path);
    let what = format!("{}: {elf:?}", path.display());
    assert_eq!(elf.class, 2, "ELFCLASS64; {what}");
    assert_eq!(elf.data, 1, "ELFDATA2LSB (little endian); {what}");
    assert_eq!(elf.version, 1, "EV_CURRENT; {what}");
    assert!(
        elf.osabi == 0 || elf.osabi == 3,
        "OS ABI SYSV or GNU/Linux; {what}"
    );
    assert_eq!(elf.machine, EM_AARCH64, "e_machine AArch64 (183); {what}");
    // A static executable (ET_EXEC), or a static-pie (ET_DYN without an interpreter).
    assert!(
        elf.e_type == ET_EXEC || elf.e_type == ET_DYN,
        "ET_EXEC or ET_DYN; {what}"
    );
    assert_ne!(elf.entry, 0, "an entry point; {what}");
    assert!(elf.code_segments > 0, "an executable PT_LOAD; {what}");
    // zig's lld read .cargo/fnkit-layout.ld: .text and the layout's four groups each got a
    // segment of their own (docs/runtime.md, "Code layout").
    assert_eq!(
        elf.code_segments, 5,
        "five executable PT_LOADs (the code layout); {what}"
    );
    assert!(
        !elf.has(PT_INTERP),
        "no PT_INTERP: static, nothing for a dynamic loader to do; {what}"
    );
    assert_eq!(elf.needed, 0, "no DT_NEEDED library; {what}");
    if elf.e_type == ET_EXEC {
        assert!(
            !elf.has(PT_DYNAMIC),
            "a static ET_EXEC has no PT_DYNAMIC; {what}"
        );
    }
    eprintln!(
        "{}: {} bytes, AArch64, {}, static",
        path.display(),
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        if elf.e_type == ET_EXEC {
            "ET_EXEC"
        } else {
            "static-pie"
        }
    );
}

/// The same reader on the host's debug `hello` (x86-64, glibc, dynamic) sees the machine and the
/// interpreter: the static AArch64 verdict above is not the reader's blindness.
#[test]
fn arm64_the_elf_reader_sees_a_dynamic_x86_64_binary() {
    let elf = Elf::read(&fnkit_tests::bin("hello"));
    if cfg!(all(target_arch = "x86_64", target_env = "gnu")) {
        assert_eq!(elf.machine, EM_X86_64, "{elf:?}");
        assert!(elf.has(PT_INTERP), "{elf:?}");
        assert!(elf.needed > 0, "{elf:?}");
    }
    assert!(Elf::parse(b"#!/bin/sh\n").is_err());
}

/// A process whose stdout and stderr are collected; killed when dropped.
struct Guest {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Guest {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let output = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut o) = output.lock() {
                        o.push(line);
                    }
                }
            });
        }
        Self { child, output }
    }

    fn output(&self) -> Vec<String> {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn arm64_hello_answers_under_qemu_against_the_runtime_api() {
    let Some(path) = arm64_bin() else { return };
    let Some(qemu) = qemu() else { return };
    let mock = MockApi::start();
    // As `lambda::start_function` does for the native binaries: a clean platform environment,
    // then Lambda's.
    let mut cmd = fnkit_tests::clean_command(&qemu);
    cmd.arg(&path);
    cmd.envs(lambda_env(&mock.api()));
    let guest = Guest::spawn(cmd);

    mock.push(Event::new("arm64-1", r#"{"name":"Ada"}"#));
    let answer = mock.wait_answer("arm64-1");
    assert_eq!(
        answer.path,
        "/2018-06-01/runtime/invocation/arm64-1/response",
        "{answer:?}; output: {:?}",
        guest.output()
    );
    assert_eq!(answer.json(), json!({"message": "Hello, Ada!"}));
    eprintln!(
        "{} under {}: answered {}",
        path.display(),
        qemu.display(),
        String::from_utf8_lossy(&answer.body)
    );
}
