//! Images in and out of the store as tar archives: `load` (an OCI image layout or a
//! `docker save` archive, plain or gzip), `save` (both at once: `index.json` for OCI
//! tools, `manifest.json` for `docker load`), and `import` (a rootfs tarball as a
//! one-layer image).
//!
//! Chapter 6. An archive is read as a stream and never unpacked to disk by its own
//! names: blobs go into the store under the digest their content has (checked
//! against the name they came under), the few JSON documents are read into memory
//! with a cap, and everything else is skipped.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::SystemTime;

use super::digest::Digest;
use super::oci::{self, Descriptor, DockerArchiveEntry, History, ImageConfig, Index, Manifest};
use super::reference::Reference;
use super::store::{Store, DOCUMENT_CAP};
use super::{this_platform, Image, ImageError};

/// The most bytes a layer blob may have (a decompression bomb is the applier's).
pub const BLOB_CAP: u64 = 64 << 30;
/// The most entries an archive may have.
pub const ENTRY_CAP: usize = 1 << 20;

/// An image that `load` or `import` put in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<Reference>,
}

fn archive_error(why: impl Into<String>) -> ImageError {
    ImageError::Archive { why: why.into() }
}

/// A reader that is gunzipped when its first bytes are gzip's magic.
fn maybe_gunzip<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::new(reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::GzDecoder::new(buffered)))
    } else {
        Ok(Box::new(buffered))
    }
}

/// What an archive held, once read.
#[derive(Default)]
struct Contents {
    /// index.json and manifest.json, the only documents kept in memory.
    documents: BTreeMap<String, Vec<u8>>,
    /// Blobs stored, by the path they came under.
    blobs: BTreeMap<String, Digest>,
    /// Symlink and hard-link entries (docker save links identical layers).
    links: BTreeMap<String, String>,
}

/// A path of an archive entry, normalised (`./a/b` → `a/b`); `None` when it
/// leaves the archive (`..`, absolute): such an entry is never used.
fn entry_name(path: &std::path::Path) -> Option<String> {
    use std::path::Component;
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

/// The most bytes of extension headers (GNU long names, PAX records) before one
/// entry: the tar parser reads them into memory whole.
const HEADER_CAP: u64 = 1 << 20;

/// Reads an archive: blobs into the store, the two top documents into memory.
fn read_archive(store: &Store, reader: impl Read) -> Result<Contents, ImageError> {
    let reader = maybe_gunzip(reader).map_err(|e| archive_error(e.to_string()))?;
    let budget = std::rc::Rc::new(super::layer::HeaderBudget::default());
    let reader = super::layer::Budgeted {
        inner: reader,
        budget: std::rc::Rc::clone(&budget),
    };
    let mut archive = tar::Archive::new(reader);
    let mut contents = Contents::default();
    let mut entries = archive
        .entries()
        .map_err(|e| archive_error(e.to_string()))?;
    let mut count = 0;
    loop {
        budget.start(HEADER_CAP);
        let next = entries.next();
        budget.stop();
        let Some(entry) = next else {
            break;
        };
        count += 1;
        if count > ENTRY_CAP {
            return Err(archive_error(format!("more than {ENTRY_CAP} entries")));
        }
        let mut entry = entry.map_err(|e| archive_error(format!("a broken tar entry: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| archive_error(e.to_string()))?
            .into_owned();
        let Some(name) = entry_name(&path) else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Ok(Some(target)) = entry.link_name() {
                let base = std::path::Path::new(&name)
                    .parent()
                    .unwrap_or(std::path::Path::new(""));
                let joined = if kind.is_symlink() {
                    base.join(&target)
                } else {
                    target.into_owned()
                };
                if let Some(target) = normalise(&joined) {
                    contents.links.insert(name, target);
                }
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            let digest = Digest::parse(&format!("sha256:{hex}"))
                .map_err(|_| archive_error(format!("{name} is not named by a sha256 digest")))?;
            let size = entry.size();
            store.put_blob(&mut entry, Some((&digest, Some(size))), BLOB_CAP)?;
            contents.blobs.insert(name, digest);
        } else if name.ends_with(".json") || name == "repositories" || name == "oci-layout" {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(DOCUMENT_CAP + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| archive_error(e.to_string()))?;
            if bytes.len() as u64 > DOCUMENT_CAP {
                return Err(ImageError::TooLarge {
                    what: name,
                    cap: DOCUMENT_CAP,
                });
            }
            if name == "index.json" || name == "manifest.json" {
                contents.documents.insert(name, bytes);
            } else {
                // Legacy configs (`HEX.json`) are blobs; only the two top documents
                // stay in memory.
                let (digest, _) = store.put_blob(&bytes[..], None, DOCUMENT_CAP)?;
                contents.blobs.insert(name, digest);
            }
        } else if name.ends_with("/layer.tar") || name.ends_with(".tar") {
            let (digest, _) = store.put_blob(&mut entry, None, BLOB_CAP)?;
            contents.blobs.insert(name, digest);
        }
    }
    Ok(contents)
}

/// `a/../b` → `b`; `None` when it climbs out.
fn normalise(path: &std::path::Path) -> Option<String> {
    use std::path::Component;
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

impl Contents {
    /// The blob an archive path names, following links.
    fn blob(&self, path: &str) -> Option<&Digest> {
        let mut path = path.to_string();
        for _ in 0..16 {
            if let Some(digest) = self.blobs.get(&path) {
                return Some(digest);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }
}

/// Loads every image of an archive into the store; what was loaded. While it runs,
/// a lease keeps the store's garbage collection from taking the blobs it wrote
/// before their image is in the index; if it fails, what it wrote goes.
pub fn load(store: &Store, reader: impl Read) -> Result<Vec<Loaded>, ImageError> {
    let lease = store.lease()?;
    let loaded = load_leased(store, reader);
    drop(lease);
    if loaded.is_err() {
        let _ = store.collect_garbage();
    }
    loaded
}

fn load_leased(store: &Store, reader: impl Read) -> Result<Vec<Loaded>, ImageError> {
    let contents = read_archive(store, reader)?;
    let mut loaded = Vec::new();
    if let Some(bytes) = contents.documents.get("index.json") {
        let index: Index =
            serde_json::from_slice(bytes).map_err(|e| archive_error(format!("index.json: {e}")))?;
        for entry in &index.manifests {
            let names = entry_names(entry);
            let manifest_descriptor = choose_manifest(store, entry)?;
            loaded.push(add(store, &manifest_descriptor, names)?);
        }
    } else if let Some(bytes) = contents.documents.get("manifest.json") {
        let entries: Vec<DockerArchiveEntry> = serde_json::from_slice(bytes)
            .map_err(|e| archive_error(format!("manifest.json: {e}")))?;
        for entry in &entries {
            let manifest = docker_manifest(store, &contents, entry)?;
            let descriptor = store.put_json(&manifest, oci::MEDIA_OCI_MANIFEST)?;
            let names = entry
                .repo_tags
                .iter()
                .flatten()
                .filter_map(|tag| Reference::parse(tag).ok())
                .collect();
            loaded.push(add(store, &descriptor, names)?);
        }
    } else {
        return Err(archive_error("it has neither index.json nor manifest.json"));
    }
    Ok(loaded)
}

/// The names an index entry gives its image: containerd's full name, or the OCI
/// `ref.name` when it is a whole reference (a bare tag such as `latest` names
/// nothing: the image stays nameless, as with docker).
fn entry_names(entry: &Descriptor) -> Vec<Reference> {
    let full = entry.annotations.get(oci::ANNOTATION_IMAGE_NAME);
    let short = entry
        .annotations
        .get(oci::ANNOTATION_REF_NAME)
        .filter(|name| name.contains([':', '/']));
    full.or(short)
        .and_then(|name| Reference::parse(name).ok())
        .into_iter()
        .collect()
}

/// The manifest for this machine: the entry itself, or the matching one of a
/// multi-platform index (attestation manifests, `unknown/unknown`, skipped).
fn choose_manifest(store: &Store, entry: &Descriptor) -> Result<Descriptor, ImageError> {
    let is_index =
        entry.media_type == oci::MEDIA_OCI_INDEX || entry.media_type == oci::MEDIA_DOCKER_LIST;
    if !is_index {
        return Ok(entry.clone());
    }
    let index: Index = store.read_json(&entry.digest, "image index")?;
    let (os, arch, variant) = this_platform();
    index
        .manifests
        .iter()
        .find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os == os
                    && p.architecture == arch
                    && (variant.is_none()
                        || p.variant.as_deref().is_none_or(|v| Some(v) == variant))
            })
        })
        .cloned()
        .ok_or_else(|| ImageError::NoPlatform {
            platform: format!("{os}/{arch}"),
        })
}

/// An OCI manifest for one image of a `docker save` archive.
fn docker_manifest(
    store: &Store,
    contents: &Contents,
    entry: &DockerArchiveEntry,
) -> Result<Manifest, ImageError> {
    let config = contents
        .blob(&entry.config)
        .ok_or_else(|| archive_error(format!("its config {} is missing", entry.config)))?;
    let mut layers = Vec::new();
    for path in &entry.layers {
        let digest = contents
            .blob(path)
            .ok_or_else(|| archive_error(format!("its layer {path} is missing")))?;
        let size = std::fs::metadata(store.blob_path(digest))
            .map(|m| m.len())
            .unwrap_or(0);
        layers.push(Descriptor {
            media_type: layer_media_type(store, digest)?.to_string(),
            digest: digest.clone(),
            size,
            annotations: Default::default(),
            platform: None,
        });
    }
    let config_size = std::fs::metadata(store.blob_path(config))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(Manifest {
        schema_version: 2,
        media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: oci::MEDIA_OCI_CONFIG.to_string(),
            digest: config.clone(),
            size: config_size,
            annotations: Default::default(),
            platform: None,
        },
        layers,
    })
}

/// A stored layer blob's media type, from its first bytes (docker save archives
/// do not say).
fn layer_media_type(store: &Store, digest: &Digest) -> Result<&'static str, ImageError> {
    let path = store.blob_path(digest);
    let mut head = [0u8; 4];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|source| ImageError::Io {
            action: "read",
            path,
            source,
        })?;
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => oci::MEDIA_OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => oci::MEDIA_OCI_LAYER_ZSTD,
        _ => oci::MEDIA_OCI_LAYER,
    })
}

/// Checks a manifest's blobs, unpacks its layers and records it under `names`.
fn add(
    store: &Store,
    descriptor: &Descriptor,
    names: Vec<Reference>,
) -> Result<Loaded, ImageError> {
    let manifest: Manifest = store.read_json(&descriptor.digest, "manifest")?;
    let config: ImageConfig = store.read_json(&manifest.config.digest, "image config")?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(archive_error(format!(
            "the manifest has {} layers but the config {} diff ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let chains = oci::chain_ids(&config.rootfs.diff_ids);
    for ((layer, diff_id), chain) in manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .zip(&chains)
    {
        if !store.has_blob(&layer.digest) {
            return Err(ImageError::MissingBlob {
                digest: layer.digest.clone(),
            });
        }
        store.unpack_layer(layer, diff_id, chain)?;
    }
    let mut descriptor = descriptor.clone();
    descriptor.media_type = manifest
        .media_type
        .clone()
        .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
    store.add_image(&descriptor, &names)?;
    Ok(Loaded {
        id: manifest.config.digest,
        names,
    })
}

/// Imports a rootfs tarball (plain or gzip) as a one-layer image.
pub fn import(
    store: &Store,
    reader: impl Read,
    name: Option<Reference>,
) -> Result<Loaded, ImageError> {
    let reader = maybe_gunzip(reader).map_err(|e| archive_error(e.to_string()))?;
    let (diff_id, size) = store.put_blob(reader, None, BLOB_CAP)?;
    let created = crate::clock::rfc3339(SystemTime::now());
    let (os, architecture, _) = this_platform();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: architecture.to_string(),
        os: os.to_string(),
        config: Some(Default::default()),
        rootfs: oci::RootFs {
            kind: "layers".to_string(),
            diff_ids: vec![diff_id.clone()],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some(format!("{} import", crate::ENGINE)),
            comment: Some("Imported from a tarball".to_string()),
            empty_layer: false,
        }],
    };
    let config = store.put_json(&config, oci::MEDIA_OCI_CONFIG)?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
        config,
        layers: vec![Descriptor {
            media_type: oci::MEDIA_OCI_LAYER.to_string(),
            digest: diff_id,
            size,
            annotations: Default::default(),
            platform: None,
        }],
    };
    let descriptor = store.put_json(&manifest, oci::MEDIA_OCI_MANIFEST)?;
    add(store, &descriptor, name.into_iter().collect())
}

/// Writes `images` as one tar archive that OCI tools (skopeo, umoci, podman) read
/// as an image layout and `docker load` reads by its `manifest.json`.
pub fn save(
    store: &Store,
    images: &[(Image, Vec<Reference>)],
    out: impl Write,
) -> Result<(), ImageError> {
    let io_error = |source: io::Error| ImageError::Io {
        action: "write",
        path: "the archive".into(),
        source,
    };
    let mut builder = tar::Builder::new(out);
    let add_bytes = |builder: &mut tar::Builder<_>, name: &str, bytes: &[u8]| -> io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes)
    };
    let mut index = Index {
        schema_version: 2,
        media_type: Some(oci::MEDIA_OCI_INDEX.to_string()),
        manifests: Vec::new(),
    };
    let mut docker = Vec::new();
    let mut written: Vec<Digest> = Vec::new();
    for (image, names) in images {
        let blobs = std::iter::once(&image.manifest_digest)
            .chain(std::iter::once(&image.manifest.config.digest))
            .chain(image.manifest.layers.iter().map(|l| &l.digest));
        for digest in blobs {
            if written.contains(digest) {
                continue;
            }
            let path = store.blob_path(digest);
            let mut file = std::fs::File::open(&path).map_err(|source| ImageError::Io {
                action: "read",
                path: path.clone(),
                source,
            })?;
            let mut header = tar::Header::new_ustar();
            header.set_size(file.metadata().map(|m| m.len()).unwrap_or(0));
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder
                .append_data(
                    &mut header,
                    format!("blobs/sha256/{}", digest.hex()),
                    &mut file,
                )
                .map_err(io_error)?;
            written.push(digest.clone());
        }
        let manifest_size = std::fs::metadata(store.blob_path(&image.manifest_digest))
            .map(|m| m.len())
            .unwrap_or(0);
        let entry = |name: Option<&Reference>| {
            let mut annotations = BTreeMap::new();
            if let Some(name) = name {
                annotations.insert(oci::ANNOTATION_IMAGE_NAME.to_string(), name.to_string());
                annotations.insert(oci::ANNOTATION_REF_NAME.to_string(), name.to_string());
            }
            Descriptor {
                media_type: oci::MEDIA_OCI_MANIFEST.to_string(),
                digest: image.manifest_digest.clone(),
                size: manifest_size,
                annotations,
                platform: None,
            }
        };
        if names.is_empty() {
            index.manifests.push(entry(None));
        }
        for name in names {
            index.manifests.push(entry(Some(name)));
        }
        docker.push(DockerArchiveEntry {
            config: format!("blobs/sha256/{}", image.manifest.config.digest.hex()),
            repo_tags: Some(
                names
                    .iter()
                    .filter(|n| n.tag.is_some())
                    .map(|n| {
                        format!(
                            "{}:{}",
                            n.familiar_name(),
                            n.tag.as_deref().unwrap_or("latest")
                        )
                    })
                    .collect(),
            ),
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                .collect(),
        });
    }
    add_bytes(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(io_error)?;
    let index = serde_json::to_vec(&index).expect("an index serializes");
    add_bytes(&mut builder, "index.json", &index).map_err(io_error)?;
    let docker = serde_json::to_vec(&docker).expect("a manifest serializes");
    add_bytes(&mut builder, "manifest.json", &docker).map_err(io_error)?;
    builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(io_error)
}
