//! Platforms: which manifest of a multi-platform index this machine runs.
//!
//! Chapter 7. An index (or Docker's manifest list) has one entry per platform,
//! `{"os": "linux", "architecture": "arm64", "variant": "v8"}`. Names differ
//! between kernels and Go (`uname -m` says `x86_64` and `aarch64`; images say
//! `amd64` and `arm64`), so both sides are normalised first, as containerd does.
//! Build tools add entries that are not images at all: attestations (provenance,
//! SBOMs) with the platform `unknown/unknown`.

use std::fmt;

use super::RegistryError;
use crate::images::oci::{Descriptor, Index};

/// The annotation buildkit puts on an attestation entry of an index.
const ATTESTATION: (&str, &str) = ("vnd.docker.reference.type", "attestation-manifest");

/// An `os/architecture[/variant]`, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// This machine's platform (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Platform {
        Platform::normalised("linux", std::env::consts::ARCH, None)
    }

    /// Parses `--platform os/arch[/variant]`.
    pub fn parse(text: &str) -> Result<Platform, RegistryError> {
        let error = |why| RegistryError::BadPlatform {
            text: text.to_string(),
            why,
        };
        let parts: Vec<&str> = text.split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !parts.iter().all(valid) {
            return Err(error("parts are letters, digits, '_' and '-'"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::normalised(os, arch, None)),
            [os, arch, variant] => Ok(Platform::normalised(os, arch, Some(variant))),
            _ => Err(error("it is os/architecture or os/architecture/variant")),
        }
    }

    /// A platform with containerd's normalisation: `x86_64` is `amd64`,
    /// `aarch64` is `arm64` whose default variant is `v8`, `armhf` is `arm/v7`.
    pub fn normalised(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        // BEGIN SOLUTION ch07 "normalise a platform as containerd does: x86_64 → amd64, aarch64 → arm64/v8, armhf → arm/v7"
        let os = os.to_ascii_lowercase();
        let architecture = architecture.to_ascii_lowercase();
        let variant = variant.map(str::to_ascii_lowercase);
        let (architecture, variant) = match (architecture.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", None | Some("v1")) => ("amd64", None),
            ("x86_64" | "x86-64" | "amd64", Some(v)) => ("amd64", Some(v.to_string())),
            ("aarch64" | "arm64", None | Some("8") | Some("v8")) => ("arm64", Some("v8".into())),
            ("aarch64" | "arm64", Some(v)) => ("arm64", Some(v.to_string())),
            ("armhf", _) => ("arm", Some("v7".into())),
            ("armel", _) => ("arm", Some("v6".into())),
            ("arm", None | Some("7")) => ("arm", Some("v7".into())),
            ("arm", Some(v)) if !v.starts_with('v') => ("arm", Some(format!("v{v}"))),
            ("i386" | "i686" | "386", _) => ("386", None),
            (other, v) => (other, v.map(String::from)),
        };
        Platform {
            os,
            architecture: architecture.to_string(),
            variant,
        }
        // END SOLUTION
    }

    fn of(entry: &Descriptor) -> Option<Platform> {
        let p = entry.platform.as_ref()?;
        Some(Platform::normalised(
            &p.os,
            &p.architecture,
            p.variant.as_deref(),
        ))
    }
}

/// Whether an index entry is an attestation rather than an image.
fn is_attestation(entry: &Descriptor) -> bool {
    entry.annotations.get(ATTESTATION.0).map(String::as_str) == Some(ATTESTATION.1)
        || entry
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown")
}

/// The entry of `index` for `wanted`: the first that is not an attestation and
/// whose normalised platform is `wanted`.
fn matching<'a>(index: &'a Index, wanted: &Platform) -> Option<&'a Descriptor> {
    // BEGIN SOLUTION ch07 "pick the index entry for this platform, skipping attestation manifests"
    index
        .manifests
        .iter()
        .filter(|entry| !is_attestation(entry))
        .find(|entry| Platform::of(entry).as_ref() == Some(wanted))
    // END SOLUTION
}

/// The entry of `index` for `wanted`; the error lists what the index has.
pub fn select<'a>(
    index: &'a Index,
    wanted: &Platform,
    reference: &str,
) -> Result<&'a Descriptor, RegistryError> {
    if let Some(entry) = matching(index, wanted) {
        return Ok(entry);
    }
    let available: Vec<String> = index
        .manifests
        .iter()
        .filter(|entry| !is_attestation(entry))
        .filter_map(Platform::of)
        .map(|p| p.to_string())
        .collect();
    Err(RegistryError::NoPlatform {
        reference: reference.to_string(),
        wanted: wanted.to_string(),
        available: if available.is_empty() {
            "nothing with a platform".into()
        } else {
            available.join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, digit: char) -> Descriptor {
        Descriptor {
            media_type: crate::images::oci::MEDIA_OCI_MANIFEST.into(),
            digest: crate::images::Digest::parse(&format!(
                "sha256:{}",
                digit.to_string().repeat(64)
            ))
            .unwrap(),
            size: 1,
            annotations: Default::default(),
            platform: Some(crate::images::oci::Platform {
                architecture: arch.into(),
                os: if arch == "unknown" {
                    "unknown"
                } else {
                    "linux"
                }
                .into(),
                variant: variant.map(String::from),
            }),
        }
    }

    #[test]
    fn kernel_names_become_image_names() {
        assert_eq!(
            Platform::normalised("linux", "x86_64", None).to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::normalised("linux", "aarch64", None).to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/../x").is_err());
    }

    #[test]
    fn the_hosts_entry_is_chosen_and_attestations_are_not() {
        let index = Index {
            schema_version: 2,
            media_type: None,
            manifests: vec![
                entry("unknown", None, 'a'),
                entry("arm64", Some("v8"), 'b'),
                entry("amd64", None, 'c'),
                entry("arm", Some("v7"), 'd'),
            ],
        };
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(select(&index, &amd64, "x")
            .unwrap()
            .digest
            .hex()
            .starts_with('c'));
        // arm64 entries without a variant are v8.
        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(select(&index, &arm64, "x")
            .unwrap()
            .digest
            .hex()
            .starts_with('b'));
        let s390x = Platform::parse("linux/s390x").unwrap();
        let error = select(&index, &s390x, "x").unwrap_err().to_string();
        assert!(
            error.contains("linux/arm64/v8, linux/amd64, linux/arm/v7"),
            "{error}"
        );
    }
}
