//! Builds an image of a static binary, writes it as an OCI layout and, optionally, pushes it:
//!
//! ```sh
//! cargo run -p fnkit-oci --example oci-image -- BINARY [amd64|arm64] LAYOUT_DIR [REFERENCE]
//! ```
//!
//! It prints the digest, the sizes and how long each step took (the figures in
//! `docs/oci-image.md` come from it).

#![allow(clippy::print_stdout)]

use std::time::Instant;

use fnkit_oci::{Image, ImageSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, arch, dir, rest @ ..] = args.as_slice() else {
        return Err("usage: oci-image BINARY amd64|arm64 LAYOUT_DIR [REFERENCE]".into());
    };
    let spec = ImageSpec {
        binary: binary.into(),
        arch: arch.parse()?,
        ca_bundle: None,
        env: Vec::new(),
        labels: Default::default(),
    };
    let start = Instant::now();
    let image = Image::build(&spec)?;
    println!(
        "built {} in {:?}: layer {} B, total {} B (binary {} B)",
        image.manifest_digest(),
        start.elapsed(),
        image.layer_size(),
        image.total_size(),
        std::fs::metadata(binary)?.len()
    );
    image.write_layout(dir.as_ref(), Some("latest"))?;
    println!("wrote the OCI layout {dir} (ref latest)");
    if let Some(reference) = rest.first() {
        let start = Instant::now();
        let report = image.push(reference)?;
        println!("pushed in {:?}: {report:?}", start.elapsed());
    }
    Ok(())
}
