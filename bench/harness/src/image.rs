//! Image size without a container engine: a `FROM scratch` image holding one static binary is one
//! layer, and that layer is a tar of the binary. Registries store and ship it gzip-compressed.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

/// Sizes of the layer that holds `bin` alone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layer {
    pub(crate) tar_bytes: u64,
    pub(crate) gz_bytes: u64,
}

/// Builds the layer tarball in memory (ustar, one regular file at `/<name>`, mode 0755) and
/// gzips it at the default level, as `docker push` does.
pub(crate) fn layer(bin: &Path) -> std::io::Result<Layer> {
    let data = std::fs::read(bin)?;
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bootstrap".into());
    let tar = tar_one(&name, &data);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar)?;
    let gz = gz.finish()?;
    Ok(Layer {
        tar_bytes: tar.len() as u64,
        gz_bytes: gz.len() as u64,
    })
}

fn tar_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let name = name.as_bytes();
    let n = name.len().min(99);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], 0o755);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 0);
    h[148..156].fill(b' ');
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    octal(&mut h[148..155], sum);
    let padded = data.len().div_ceil(512) * 512;
    let mut tar = Vec::with_capacity(512 + padded + 1024);
    tar.extend_from_slice(&h);
    tar.extend_from_slice(data);
    tar.resize(512 + padded + 1024, 0);
    tar
}

/// Writes `v` as zero-padded octal digits followed by NUL into `field`.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    #[test]
    fn tar_of_one_file_is_header_data_padding_and_two_zero_blocks() {
        let tar = super::tar_one("hello", &[7u8; 1000]);
        assert_eq!(tar.len(), 512 + 1024 + 1024);
        assert_eq!(&tar[257..262], b"ustar");
        assert_eq!(&tar[124..135], b"00000001750");
        assert_eq!(tar[512], 7);
    }
}
