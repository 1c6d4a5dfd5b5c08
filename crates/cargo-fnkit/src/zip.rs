//! A reproducible one-entry zip: Lambda's `bootstrap.zip` (docs/platforms.md §3.1).
//!
//! Written here rather than with a zip library because the archive is one fixed shape: one
//! deflated file, Unix mode 0755, the DOS epoch as its time, no extra fields. The same binary
//! always gives the same bytes.

use std::io::Write as _;

use flate2::write::DeflateEncoder;
use flate2::Compression;

/// 1980-01-01 00:00:00, the earliest DOS date (time 0; date: day 1, month 1, year 0 = 1980).
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
/// "Version needed to extract" 2.0 (deflate); "made by" Unix (3) 2.0, so the mode is read.
const VERSION_NEEDED: u16 = 20;
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
const DEFLATE: u16 = 8;
/// A regular file with mode 0755, in the high half of the external attributes.
const EXTERNAL_ATTRS: u32 = 0o100_755 << 16;

/// A zip archive holding `data` as the executable file `name`.
///
/// # Errors
/// Only if the contents or the name exceed the 32-bit sizes of a zip without ZIP64 (4 GiB).
pub(crate) fn single_executable(name: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let too_big =
        || std::io::Error::other("over 4 GiB: needs ZIP64, which this writer does not do");
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    let compressed = encoder.finish()?;
    let crc = crc32fast::hash(data);
    let csize = u32::try_from(compressed.len()).map_err(|_| too_big())?;
    let usize_ = u32::try_from(data.len()).map_err(|_| too_big())?;
    let name_len = u16::try_from(name.len()).map_err(|_| too_big())?;

    let mut out = Vec::with_capacity(compressed.len() + 128);
    let u16le = |out: &mut Vec<u8>, v: u16| out.extend_from_slice(&v.to_le_bytes());
    let u32le = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_le_bytes());
    // Local file header.
    u32le(&mut out, 0x0403_4b50);
    for v in [VERSION_NEEDED, 0, DEFLATE, DOS_TIME, DOS_DATE] {
        u16le(&mut out, v);
    }
    for v in [crc, csize, usize_] {
        u32le(&mut out, v);
    }
    u16le(&mut out, name_len);
    u16le(&mut out, 0);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&compressed);
    // Central directory: one entry.
    let cd_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    u32le(&mut out, 0x0201_4b50);
    for v in [
        VERSION_MADE_BY,
        VERSION_NEEDED,
        0,
        DEFLATE,
        DOS_TIME,
        DOS_DATE,
    ] {
        u16le(&mut out, v);
    }
    for v in [crc, csize, usize_] {
        u32le(&mut out, v);
    }
    // name length, extra length, comment length, disk number, internal attributes
    for v in [name_len, 0, 0, 0, 0] {
        u16le(&mut out, v);
    }
    u32le(&mut out, EXTERNAL_ATTRS);
    u32le(&mut out, 0); // the local header's offset
    out.extend_from_slice(name.as_bytes());
    let cd_size = u32::try_from(out.len()).map_err(|_| too_big())? - cd_offset;
    // End of central directory.
    u32le(&mut out, 0x0605_4b50);
    for v in [0, 0, 1, 1] {
        u16le(&mut out, v);
    }
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }
    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    #[test]
    fn the_entry_inflates_to_the_input_with_mode_0755() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let zip = single_executable("bootstrap", &data).expect("a zip");
        // End of central directory: the last 22 bytes.
        let eocd = zip.len() - 22;
        assert_eq!(u32_at(&zip, eocd), 0x0605_4b50);
        assert_eq!(u16_at(&zip, eocd + 10), 1, "one entry");
        let cd = u32_at(&zip, eocd + 16) as usize;
        assert_eq!(u32_at(&zip, cd), 0x0201_4b50);
        assert_eq!(u32_at(&zip, cd + 38) >> 16, 0o100_755);
        assert_eq!(&zip[cd + 46..cd + 46 + 9], b"bootstrap");
        // The local entry's data inflates back to the input, whose CRC is recorded.
        let csize = u32_at(&zip, 18) as usize;
        let start = 30 + usize::from(u16_at(&zip, 26));
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&zip[start..start + csize])
            .read_to_end(&mut inflated)
            .expect("deflate data");
        assert_eq!(inflated, data);
        assert_eq!(u32_at(&zip, 14), crc32fast::hash(&data));
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let a = single_executable("bootstrap", b"\x7fELF...").expect("a zip");
        let b = single_executable("bootstrap", b"\x7fELF...").expect("a zip");
        assert_eq!(a, b);
    }
}
