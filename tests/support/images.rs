//! Images made by the harness, offline and deterministically: layer tarballs from a
//! list of entries (hostile ones included), and OCI or `docker save` archives that
//! tie them to a config.

use std::io::Write;
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// One entry of a layer, as a tarball would carry it.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir(&'static str),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
    HardLink(String, String),
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// A tar of `entries`, names written raw (so that `../x` and `/x` can be made).
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        let (name, body): (&str, &[u8]) = match entry {
            Entry::Dir(name) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                (name, &[])
            }
            Entry::File(name, bytes, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                (name, bytes)
            }
            Entry::Symlink(name, target) | Entry::HardLink(name, target) => {
                let kind = if matches!(entry, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                header.set_entry_type(kind);
                header.set_mode(0o777);
                header.set_size(0);
                let link = &mut header.as_old_mut().linkname;
                link[..target.len()].copy_from_slice(target.as_bytes());
                (name, &[])
            }
        };
        let raw = &mut header.as_old_mut().name;
        raw[..name.len()].copy_from_slice(name.as_bytes());
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A tar of the directory `dir` (symlinks kept as links), as `import` takes it.
pub fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An image config with `diff_ids` and a `config` section (Env, Entrypoint, ...).
pub fn config(layers: &[Vec<u8>], run: serde_json::Value) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let history: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, _)| serde_json::json!({"created": "2026-01-01T00:00:00Z", "created_by": format!("step {i}")}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "created": "2026-01-01T00:00:00Z",
        "architecture": match std::env::consts::ARCH { "aarch64" => "arm64", _ => "amd64" },
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .unwrap()
}

fn append(builder: &mut tar::Builder<std::fs::File>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, bytes).unwrap();
}

/// Writes an OCI image layout archive to `path`: the uncompressed `layers` stored
/// gzipped, with `config`, named `name` in index.json (when given).
pub fn oci_archive(path: &Path, layers: &[Vec<u8>], config: &[u8], name: Option<&str>) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let blobs: Vec<Vec<u8>> = layers.iter().map(|l| gzip(l)).collect();
    let descriptors: Vec<serde_json::Value> = blobs
        .iter()
        .map(|b| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(b), "size": b.len()})
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
        "layers": descriptors,
    }))
    .unwrap();
    let mut annotations = serde_json::Map::new();
    if let Some(name) = name {
        annotations.insert("org.opencontainers.image.ref.name".into(), name.into());
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(&manifest), "size": manifest.len(), "annotations": annotations}],
    }))
    .unwrap();
    append(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    for blob in blobs.iter().chain([&manifest, &config.to_vec()]) {
        append(
            &mut builder,
            &format!("blobs/sha256/{}", &digest(blob)[7..]),
            blob,
        );
    }
    append(&mut builder, "index.json", &index);
    builder.finish().unwrap();
}

/// Writes a `docker save` archive (legacy layout: `ID/layer.tar`, `ID.json`).
pub fn docker_archive(path: &Path, layers: &[Vec<u8>], config: &[u8], tag: &str) {
    let mut builder = tar::Builder::new(std::fs::File::create(path).unwrap());
    let config_name = format!("{}.json", &digest(config)[7..]);
    append(&mut builder, &config_name, config);
    let mut names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        append(&mut builder, &name, layer);
        names.push(name);
    }
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]),
    )
    .unwrap();
    append(&mut builder, "manifest.json", &manifest);
    builder.finish().unwrap();
}
