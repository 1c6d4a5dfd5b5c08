//! The JSON documents: image config, image manifest, image index (of a layout), `oci-layout`.
//!
//! Hand-written structs in the spec's field names; the fields serialize in declaration order and
//! maps are `BTreeMap`s, so the bytes (and so the digests) depend on the inputs only.

use std::collections::BTreeMap;

use serde::Serialize;

/// `application/vnd.oci.image.manifest.v1+json`
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.config.v1+json`
pub(crate) const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// `application/vnd.oci.image.layer.v1.tar+gzip`
pub(crate) const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `application/vnd.oci.image.index.v1+json`
pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation naming a manifest in a layout's `index.json`.
pub(crate) const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The user the function runs as: `nobody:nogroup` by number (the image has no `/etc/passwd`).
pub(crate) const USER: &str = "65534:65534";

/// An empty JSON object (`{}`), the value type of `ExposedPorts`.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// <https://github.com/opencontainers/image-spec/blob/main/config.md>
#[derive(Serialize)]
pub(crate) struct ImageConfig<'a> {
    pub(crate) created: String,
    pub(crate) architecture: &'a str,
    pub(crate) os: &'a str,
    pub(crate) config: RunConfig<'a>,
    pub(crate) rootfs: RootFs<'a>,
    pub(crate) history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RunConfig<'a> {
    pub(crate) user: &'a str,
    pub(crate) exposed_ports: BTreeMap<String, Empty>,
    pub(crate) env: Vec<String>,
    pub(crate) entrypoint: Vec<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
pub(crate) struct RootFs<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'a str,
    pub(crate) diff_ids: Vec<&'a str>,
}

/// A history entry without `created`: the layer's provenance, and nothing that changes per build.
#[derive(Serialize)]
pub(crate) struct History<'a> {
    pub(crate) created_by: &'a str,
}

/// <https://github.com/opencontainers/image-spec/blob/main/descriptor.md>
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor<'a> {
    pub(crate) media_type: &'a str,
    pub(crate) digest: &'a str,
    pub(crate) size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<Platform<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
pub(crate) struct Platform<'a> {
    pub(crate) architecture: &'a str,
    pub(crate) os: &'a str,
}

/// <https://github.com/opencontainers/image-spec/blob/main/manifest.md>
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest<'a> {
    pub(crate) schema_version: u32,
    pub(crate) media_type: &'a str,
    pub(crate) config: Descriptor<'a>,
    pub(crate) layers: Vec<Descriptor<'a>>,
}

/// <https://github.com/opencontainers/image-spec/blob/main/image-index.md>, used only as a
/// layout's `index.json` (never pushed).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index<'a> {
    pub(crate) schema_version: u32,
    pub(crate) media_type: &'a str,
    pub(crate) manifests: Vec<Descriptor<'a>>,
}

/// `seconds` since the Unix epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's `civil_from_days` (days since 1970-01-01 to year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_epoch_and_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
