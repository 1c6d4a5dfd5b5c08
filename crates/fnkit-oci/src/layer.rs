//! The image's one layer: a tar of `/fn`, `/tmp` and the CA bundle, gzipped reproducibly; and the
//! check that the binary is a static ELF executable of the image's architecture.

use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};

use crate::{sha256_digest, Arch, Error, ErrorKind};

/// Where the function binary goes in the image (the entrypoint).
pub(crate) const BINARY_PATH: &str = "fn";
/// Where the CA bundle goes: the path rustls-native-certs, OpenSSL and Go look at on Debian-like
/// systems (and `SSL_CERT_FILE`'s usual value).
pub(crate) const CA_BUNDLE_PATH: &str = "etc/ssl/certs/ca-certificates.crt";

/// The layer, compressed and not.
pub(crate) struct Layer {
    /// The gzip bytes pushed as the blob.
    pub(crate) gz: Vec<u8>,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub(crate) diff_id: String,
}

/// A file or directory of the layer, in the order written.
struct Entry<'a> {
    path: &'a str,
    mode: u32,
    data: Option<&'a [u8]>, // None: a directory
}

/// Builds the tar (every entry owned by 0:0 with empty user/group names and mtime `mtime`) and
/// gzips it with a fixed level and a header without a file name or time: the same inputs give the
/// same bytes.
pub(crate) fn build(binary: &[u8], ca_bundle: Option<&[u8]>, mtime: u64) -> Result<Layer, Error> {
    let mut entries = Vec::new();
    if let Some(ca) = ca_bundle {
        entries.push(Entry {
            path: "etc/",
            mode: 0o755,
            data: None,
        });
        entries.push(Entry {
            path: "etc/ssl/",
            mode: 0o755,
            data: None,
        });
        entries.push(Entry {
            path: "etc/ssl/certs/",
            mode: 0o755,
            data: None,
        });
        entries.push(Entry {
            path: CA_BUNDLE_PATH,
            mode: 0o644,
            data: Some(ca),
        });
    }
    entries.push(Entry {
        path: BINARY_PATH,
        mode: 0o755,
        data: Some(binary),
    });
    entries.push(Entry {
        path: "tmp/",
        mode: 0o1777,
        data: None,
    });

    let tar = write_tar(&entries, mtime)
        .map_err(|e| Error::io("cannot write the layer's tar (in memory)", &e))?;
    let diff_id = sha256_digest(&tar);
    let gz = gzip(&tar).map_err(|e| Error::io("cannot gzip the layer (in memory)", &e))?;
    Ok(Layer { gz, diff_id })
}

fn write_tar(entries: &[Entry<'_>], mtime: u64) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        // ustar: every path here is short, so no GNU or PAX extension records are needed.
        let mut header = tar::Header::new_ustar();
        set_name(&mut header, entry.path)?;
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        header.set_mtime(mtime);
        match entry.data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, data)?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, std::io::empty())?;
            }
        }
    }
    builder.into_inner()
}

/// Writes the name field byte for byte: `Header::set_path` drops a directory's trailing `/`,
/// which GNU tar and the container tools write and expect.
fn set_name(header: &mut tar::Header, path: &str) -> std::io::Result<()> {
    let name = &mut header.as_old_mut().name;
    if path.len() > name.len() {
        return Err(std::io::Error::other(format!("tar path too long: {path}")));
    }
    name.fill(0);
    name[..path.len()].copy_from_slice(path.as_bytes());
    Ok(())
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // GzBuilder writes mtime 0, no file name, no comment and OS = 255 (unknown) unless told
    // otherwise. Level 9: the layer is built once and pulled on every cold start of a new
    // instance, so the smaller blob is worth the extra half second here.
    let mut encoder =
        GzBuilder::new().write(Vec::with_capacity(data.len() / 2), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// Checks that `bytes` (read from `path`) is a 64-bit little-endian ELF executable for `arch`
/// without a program interpreter: the image has no dynamic loader and no libc, so a dynamically
/// linked binary would fail at start with a bare "no such file or directory".
pub(crate) fn check_binary(path: &Path, bytes: &[u8], arch: Arch) -> Result<(), Error> {
    let invalid = |why: String| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{} cannot be the image's /fn: {why}", path.display()),
        )
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err(invalid("it is not an ELF executable".into()));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(invalid(
            "it is not a 64-bit little-endian ELF (x86-64 or AArch64)".into(),
        ));
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let e_type = u16_at(16);
    if e_type != 2 && e_type != 3 {
        return Err(invalid(format!(
            "its ELF type is {e_type}, not an executable"
        )));
    }
    let machine = match u16_at(18) {
        0x3e => Some(Arch::Amd64),
        0xb7 => Some(Arch::Arm64),
        _ => None,
    };
    match machine {
        Some(found) if found == arch => {}
        Some(found) => {
            return Err(invalid(format!(
                "it is an {} executable ({}), but the image is for {arch}",
                found,
                found.rust_target()
            )))
        }
        None => {
            return Err(invalid(format!(
                "its ELF machine is {:#x}, neither x86-64 nor AArch64",
                u16_at(18)
            )))
        }
    }
    let truncated = || invalid("its ELF program headers are truncated".into());
    let phoff = u64_at(32).ok_or_else(truncated)?;
    let phentsize = u64::from(u16_at(54));
    let phnum = u64::from(u16_at(56));
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).map_err(|_| truncated())?;
        let p_type = u32_at(at).ok_or_else(truncated)?;
        if p_type == 3 {
            // PT_INTERP: the path of the dynamic loader.
            let off = u64_at(at + 8).ok_or_else(truncated)? as usize;
            let len = u64_at(at + 32).ok_or_else(truncated)? as usize;
            let interp = bytes
                .get(off..off.saturating_add(len))
                .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_owned())
                .unwrap_or_default();
            return Err(invalid(format!(
                "it is dynamically linked (its loader is {interp}) and the image has no libc; \
                 build it for {} (`cargo build --release --target {}`)",
                arch.rust_target(),
                arch.rust_target()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// path, type, mode, uid, gid, mtime, user name, data
    type Listed = (String, tar::EntryType, u32, u64, u64, u64, Vec<u8>, Vec<u8>);

    fn entries(gz: &[u8]) -> Vec<Listed> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let h = entry.header().clone();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read");
            out.push((
                String::from_utf8(h.path_bytes().into_owned()).expect("utf8"),
                h.entry_type(),
                h.mode().expect("mode"),
                h.uid().expect("uid"),
                h.gid().expect("gid"),
                h.mtime().expect("mtime"),
                h.username_bytes().unwrap_or_default().to_vec(),
                data,
            ));
        }
        out
    }

    #[test]
    fn layer_holds_fn_and_tmp_owned_by_root_at_the_fixed_time() {
        let layer = build(b"\x7fELF binary", None, 0).expect("build");
        let got = entries(&layer.gz);
        assert_eq!(got.len(), 2);
        let (path, kind, mode, uid, gid, mtime, uname, data) = &got[0];
        assert_eq!(path, "fn");
        assert!(kind.is_file());
        assert_eq!((*mode, *uid, *gid, *mtime), (0o755, 0, 0, 0));
        assert!(uname.is_empty());
        assert_eq!(data, b"\x7fELF binary");
        let (path, kind, mode, uid, gid, mtime, _, _) = &got[1];
        assert_eq!(path, "tmp/");
        assert!(kind.is_dir());
        assert_eq!((*mode, *uid, *gid, *mtime), (0o1777, 0, 0, 0));
    }

    #[test]
    fn ca_bundle_goes_to_etc_ssl_certs_with_its_parent_directories() {
        let layer = build(b"bin", Some(b"-----BEGIN CERTIFICATE-----\n"), 86400).expect("build");
        let got = entries(&layer.gz);
        let paths: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/ssl/",
                "etc/ssl/certs/",
                CA_BUNDLE_PATH,
                "fn",
                "tmp/"
            ]
        );
        let ca = &got[3];
        assert_eq!((ca.2, ca.3, ca.4, ca.5), (0o644, 0, 0, 86400));
        assert_eq!(ca.7, b"-----BEGIN CERTIFICATE-----\n");
        assert!(got[..3].iter().all(|e| e.1.is_dir() && e.2 == 0o755));
    }

    #[test]
    fn same_input_gives_the_same_bytes_and_gzip_header_has_no_time_or_name() {
        let a = build(b"same binary", Some(b"ca"), 0).expect("a");
        let b = build(b"same binary", Some(b"ca"), 0).expect("b");
        assert_eq!(a.gz, b.gz);
        assert_eq!(a.diff_id, b.diff_id);
        // RFC 1952: ID1 ID2 CM FLG MTIME(4) XFL OS
        assert_eq!(&a.gz[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(a.gz[3], 0, "no FNAME/FCOMMENT/FEXTRA flags");
        assert_eq!(&a.gz[4..8], &[0, 0, 0, 0], "mtime 0");
        let c = build(b"other binary", Some(b"ca"), 0).expect("c");
        assert_ne!(a.diff_id, c.diff_id);
    }

    #[test]
    fn diff_id_is_the_sha256_of_the_uncompressed_tar() {
        let layer = build(b"x", None, 0).expect("build");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer.gz[..])
            .read_to_end(&mut tar)
            .expect("gunzip");
        assert_eq!(layer.diff_id, sha256_digest(&tar));
        assert_eq!(tar.len() % 512, 0);
    }

    /// A minimal ELF64 header (+ program headers) for the checks.
    fn elf(machine: u16, interp: Option<&str>) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN (static-pie)
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let mut ph = vec![0u8; 56];
        let p_type: u32 = if interp.is_some() { 3 } else { 1 };
        ph[..4].copy_from_slice(&p_type.to_le_bytes());
        let interp = interp.unwrap_or("");
        ph[8..16].copy_from_slice(&120u64.to_le_bytes());
        ph[32..40].copy_from_slice(&(interp.len() as u64 + 1).to_le_bytes());
        b.extend(ph);
        b.extend(interp.as_bytes());
        b.push(0);
        b
    }

    #[test]
    fn binary_check_accepts_static_elf_of_the_right_arch() {
        let p = Path::new("fn");
        check_binary(p, &elf(0x3e, None), Arch::Amd64).expect("amd64");
        check_binary(p, &elf(0xb7, None), Arch::Arm64).expect("arm64");
    }

    #[test]
    fn binary_check_names_wrong_arch_dynamic_linking_and_non_elf() {
        let p = Path::new("target/hello");
        let e = check_binary(p, &elf(0xb7, None), Arch::Amd64).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("arm64"), "{e}");
        assert!(e.to_string().contains("image is for amd64"), "{e}");
        let e = check_binary(
            p,
            &elf(0x3e, Some("/lib64/ld-linux-x86-64.so.2")),
            Arch::Amd64,
        )
        .unwrap_err();
        assert!(e.to_string().contains("dynamically linked"), "{e}");
        assert!(e.to_string().contains("/lib64/ld-linux-x86-64.so.2"), "{e}");
        assert!(e.to_string().contains("x86_64-unknown-linux-musl"), "{e}");
        let e = check_binary(p, b"#!/bin/sh\necho hi\n", Arch::Amd64).unwrap_err();
        assert!(e.to_string().contains("not an ELF"), "{e}");
    }
}
