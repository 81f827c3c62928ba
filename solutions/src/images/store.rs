//! The local image store, in the OCI image-layout spirit, under `ROOT/images`:
//!
//! ```text
//! oci-layout, index.json      the layout marker; every image (a manifest), named
//!                             by the `org.opencontainers.image.ref.name` annotation
//! blobs/sha256/HEX            manifests, configs and layer blobs, named by digest
//! layers/CHAIN/diff           each layer unpacked once per chain id, shared by every
//!                             image and container that uses it (overlay lowers)
//! layers/CHAIN/link           its short name, and l/SHORT → ../layers/CHAIN/diff
//! tmp/                        where blobs and layers are written before a rename
//! lock                        flock(2): one writer at a time
//! ```
//!
//! Chapter 6 (chapters/06-images.md). Nothing unverified ever sits under a digest:
//! a blob is written to `tmp/`, hashed as it streams, checked, then renamed into
//! place; a layer is unpacked into `tmp/` and renamed whole. Concurrent ferry
//! processes take the lock for every change to the index and for each layer.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::digest::{Digest, Hashing};
use super::oci::{self, Descriptor, ImageConfig, Index, Manifest, ANNOTATION_REF_NAME};
use super::reference::Reference;
use super::ImageError;

/// The most ferry reads of a manifest, a config or an index (they are JSON).
pub const DOCUMENT_CAP: u64 = 4 << 20;

/// The image store of one state root.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// One image as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its names (full references), possibly none (a dangling image).
    pub names: Vec<Reference>,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// The image id: its config's digest, as docker's.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The sum of its layer blobs' sizes.
    pub fn size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// The store under `state_root` (created on first write).
    pub fn new(state_root: &Path) -> Store {
        Store {
            dir: state_root.join("images"),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ensure_layout(&self) -> Result<(), ImageError> {
        // Root's alone (0700): layers hold the images' setuid files and devices.
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .and_then(|()| {
                    std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                })
                .map_err(io_error("create", &self.dir))?;
        }
        for sub in ["blobs/sha256", "layers", "l", "tmp"] {
            let dir = self.dir.join(sub);
            std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        }
        let marker = self.dir.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io_error("write", &marker))?;
        }
        Ok(())
    }

    /// Takes the store's lock (flock(2), exclusive) until the guard is dropped.
    pub fn lock(&self) -> Result<Flock<File>, ImageError> {
        self.ensure_layout()?;
        let path = self.dir.join("lock");
        let file = File::create(&path).map_err(io_error("open", &path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| ImageError::Io {
            action: "lock",
            path,
            source: errno.into(),
        })
    }

    /// Takes a lease for a load or an import: until it is dropped, garbage
    /// collection leaves the store alone, so the blobs and layers written before the
    /// image is in the index are not taken for garbage (containerd's leases). A
    /// lease is a file in `tmp/` naming its process; one whose process is gone is
    /// stale and ignored.
    pub fn lease(&self) -> Result<Lease, ImageError> {
        // Under the lock: a collection already running finishes first (it empties
        // tmp/), and one that starts later sees the lease.
        let _guard = self.lock()?;
        let path = self.temp_path("lease")?;
        let pid = std::process::id() as i32;
        let start = crate::process::start_time(pid).unwrap_or(0);
        std::fs::write(&path, format!("{pid} {start}")).map_err(io_error("write", &path))?;
        Ok(Lease { path })
    }

    /// Whether a lease of a live process other than this one is held.
    fn leased(&self) -> bool {
        let own = std::process::id() as i32;
        std::fs::read_dir(self.dir.join("tmp"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("lease-"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .any(|text| {
                let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
                match (fields.next().flatten(), fields.next().flatten()) {
                    (Some(pid), Some(start)) if pid as i32 != own => {
                        crate::process::start_time(pid as i32) == Some(start)
                    }
                    _ => false,
                }
            })
    }

    /// Where the blob `digest` lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A new private temporary path under `tmp/`.
    pub fn temp_path(&self, what: &str) -> Result<PathBuf, ImageError> {
        self.ensure_layout()?;
        let id = crate::id::ContainerId::generate().map_err(io_error("name", &self.dir))?;
        Ok(self
            .dir
            .join("tmp")
            .join(format!("{what}-{}", &id.as_str()[..16])))
    }

    /// Stores what `reader` gives as a blob: written to `tmp/`, hashed on the way,
    /// checked against `expected` (digest, and size when known), renamed under its
    /// digest. At most `cap` bytes. Returns the digest and size.
    pub fn put_blob(
        &self,
        reader: impl Read,
        expected: Option<(&Digest, Option<u64>)>,
        cap: u64,
    ) -> Result<(Digest, u64), ImageError> {
        let temp = self.temp_path("blob")?;
        let result = (|| {
            let mut file = File::create(&temp).map_err(io_error("create", &temp))?;
            let mut hashing = Hashing::new(reader.take(cap.saturating_add(1)));
            io::copy(&mut hashing, &mut file).map_err(io_error("write", &temp))?;
            file.sync_all().map_err(io_error("sync", &temp))?;
            let (digest, size) = hashing.finish();
            if size > cap {
                return Err(ImageError::TooLarge {
                    what: "blob".into(),
                    cap,
                });
            }
            if let Some((want, want_size)) = expected {
                if *want != digest {
                    return Err(ImageError::DigestMismatch {
                        what: format!("blob {want}"),
                        got: digest,
                    });
                }
                if want_size.is_some_and(|s| s != size) {
                    return Err(ImageError::SizeMismatch {
                        digest: want.clone(),
                        want: want_size.unwrap_or(0),
                        got: size,
                    });
                }
            }
            let path = self.blob_path(&digest);
            std::fs::rename(&temp, &path).map_err(io_error("rename", &path))?;
            Ok((digest, size))
        })();
        let _ = std::fs::remove_file(&temp);
        result
    }

    /// Reads a small blob (a manifest, a config), at most [`DOCUMENT_CAP`] bytes.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let file = File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ImageError::MissingBlob {
                digest: digest.clone(),
            },
            _ => io_error("read", &path)(source),
        })?;
        let mut bytes = Vec::new();
        file.take(DOCUMENT_CAP + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error("read", &path))?;
        if bytes.len() as u64 > DOCUMENT_CAP {
            return Err(ImageError::TooLarge {
                what: format!("document {digest}"),
                cap: DOCUMENT_CAP,
            });
        }
        // What is read is checked again: a blob file changed behind the store's back
        // must not be believed.
        if Digest::of(&bytes) != *digest {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {digest}"),
                got: Digest::of(&bytes),
            });
        }
        Ok(bytes)
    }

    /// Parses a stored JSON blob.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        digest: &Digest,
        what: &'static str,
    ) -> Result<T, ImageError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Document {
            what,
            digest: digest.clone(),
            source,
        })
    }

    /// Stores a JSON document as a blob; its descriptor.
    pub fn put_json<T: serde::Serialize>(
        &self,
        value: &T,
        media_type: &str,
    ) -> Result<Descriptor, ImageError> {
        let bytes = serde_json::to_vec(value).expect("a document serializes");
        let (digest, size) = self.put_blob(&bytes[..], None, DOCUMENT_CAP)?;
        Ok(Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            annotations: Default::default(),
            platform: None,
        })
    }

    /// The directory of the unpacked layer `chain` (its `diff`), if present.
    pub fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join("layers").join(chain.hex()).join("diff")
    }

    /// The layer's short path for overlay's lowerdir: `l/SHORT`. The short name
    /// read back from disk is checked before it becomes part of a path.
    pub fn layer_link(&self, chain: &Digest) -> Result<PathBuf, ImageError> {
        let link = self.dir.join("layers").join(chain.hex()).join("link");
        let short = std::fs::read_to_string(&link).map_err(io_error("read", &link))?;
        let short = short.trim();
        if !is_short_name(short) {
            return Err(ImageError::MissingBlob {
                digest: chain.clone(),
            });
        }
        Ok(self.dir.join("l").join(short))
    }

    /// Whether the layer `chain` is unpacked in the store.
    pub fn has_layer(&self, chain: &Digest) -> bool {
        self.dir
            .join("layers")
            .join(chain.hex())
            .join("link")
            .exists()
    }

    /// Unpacks the stored blob `layer` as the layer `chain` unless it is already
    /// there.
    pub fn unpack_layer(
        &self,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
    ) -> Result<(), ImageError> {
        if self.has_layer(chain) {
            return Ok(());
        }
        let blob = self.blob_path(&layer.digest);
        let file = File::open(&blob).map_err(io_error("open", &blob))?;
        self.unpack_stream(file, None, layer, diff_id, chain)
    }

    /// Stores the layer blob `layer` as it arrives from `reader` (a registry) and
    /// unpacks it as the layer `chain` in the same pass: the bytes are written to a
    /// temporary blob file while they are hashed, decompressed and unpacked. Only
    /// when the digest, the size and the diff id check out are the blob and the
    /// layer renamed into place; nothing unverified is ever under a digest.
    pub fn put_layer(
        &self,
        reader: impl Read,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
    ) -> Result<(), ImageError> {
        if self.has_layer(chain) {
            // Only the blob is missing (the layer came with another image).
            self.put_blob(reader, Some((&layer.digest, Some(layer.size))), layer.size)?;
            return Ok(());
        }
        let temp_blob = self.temp_path("blob")?;
        let file = File::create(&temp_blob).map_err(io_error("create", &temp_blob))?;
        let mut tee = Tee {
            inner: reader,
            copy: io::BufWriter::new(file),
        };
        let mut result = self.unpack_stream(&mut tee, Some(&temp_blob), layer, diff_id, chain);
        if result.is_err() && temp_blob.exists() {
            // A blob that is not the one named often fails as a broken gzip or tar
            // stream before its digest can be compared: read the rest and say so.
            // Only a blob that arrived whole is judged: a broken connection stays
            // a broken connection.
            let drained = io::copy(
                &mut (&mut tee).take(layer.size.saturating_add(1)),
                &mut io::sink(),
            );
            let copied = io::Write::flush(&mut tee.copy);
            let got = File::open(&temp_blob).and_then(|file| {
                let mut hashing = Hashing::new(file);
                io::copy(&mut hashing, &mut io::sink())?;
                Ok(hashing.finish().0)
            });
            if let (Ok(_), Ok(()), Ok(got)) = (drained, copied, got) {
                if got != layer.digest {
                    result = Err(ImageError::DigestMismatch {
                        what: format!("blob {}", layer.digest),
                        got,
                    });
                }
            }
        }
        let _ = std::fs::remove_file(&temp_blob);
        result
    }

    /// Unpacks `reader` into `tmp/`, then renames it whole to `layers/CHAIN` with
    /// its short link; with `temp_blob` (where a [`Tee`] wrote the same bytes), the
    /// blob is renamed into place first.
    fn unpack_stream(
        &self,
        reader: impl Read,
        temp_blob: Option<&Path>,
        layer: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
    ) -> Result<(), ImageError> {
        let final_dir = self.dir.join("layers").join(chain.hex());
        let temp = self.temp_path("layer")?;
        let diff = temp.join("diff");
        std::fs::create_dir_all(&diff).map_err(io_error("create", &diff))?;
        let result = (|| {
            let compression = super::compression_of(&layer.media_type)?;
            let unpacked = super::unpack::apply_layer(
                reader,
                compression,
                &diff,
                &layer.digest,
                Some(layer.size),
                diff_id,
            )?;
            if let Some(temp_blob) = temp_blob {
                let file = File::open(temp_blob).map_err(io_error("open", temp_blob))?;
                file.sync_all().map_err(io_error("sync", temp_blob))?;
                let path = self.blob_path(&layer.digest);
                std::fs::rename(temp_blob, &path).map_err(io_error("rename", &path))?;
            }
            let short = short_name()?;
            std::fs::write(temp.join("link"), &short).map_err(io_error("write", &temp))?;
            std::fs::write(temp.join("size"), unpacked.to_string())
                .map_err(io_error("write", &temp))?;
            let _guard = self.lock()?;
            if final_dir.join("link").exists() {
                return Ok(()); // another ferry unpacked it meanwhile
            }
            // The short link first: a crash before the rename leaves a dangling
            // link (garbage collection removes it), never a layer without its link.
            let link = self.dir.join("l").join(&short);
            std::os::unix::fs::symlink(format!("../layers/{}/diff", chain.hex()), &link)
                .map_err(io_error("link", &link))?;
            std::fs::rename(&temp, &final_dir).map_err(io_error("rename", &final_dir))
        })();
        if temp.exists() {
            let _ = std::fs::remove_dir_all(&temp);
        }
        result
    }

    /// Records that the blob `digest` came from the repository `name`
    /// (`REGISTRY/REPOSITORY`), so that a push to another repository of the same
    /// registry can mount it instead of uploading it again (docker's "Mounted from").
    pub fn record_source(&self, digest: &Digest, name: &str) -> Result<(), ImageError> {
        let dir = self.dir.join("sources");
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let path = dir.join(digest.hex());
        let mut names = self.sources(digest);
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        names.push(name.to_string());
        let temp = self.temp_path("sources")?;
        std::fs::write(&temp, names.join("\n") + "\n").map_err(io_error("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(io_error("rename", &path))
    }

    /// The repositories the blob `digest` is known to come from.
    pub fn sources(&self, digest: &Digest) -> Vec<String> {
        let path = self.dir.join("sources").join(digest.hex());
        let mut text = String::new();
        if let Ok(file) = File::open(&path) {
            let _ = file.take(64 << 10).read_to_string(&mut text);
        }
        text.lines().map(str::to_string).collect()
    }

    fn read_index(&self) -> Result<Index, ImageError> {
        let path = self.dir.join("index.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ImageError::Document {
                what: "the store's index.json",
                digest: Digest::of(&bytes),
                source,
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Index {
                schema_version: 2,
                media_type: Some(oci::MEDIA_OCI_INDEX.to_string()),
                manifests: Vec::new(),
            }),
            Err(error) => Err(io_error("read", &path)(error)),
        }
    }

    fn write_index(&self, index: &Index) -> Result<(), ImageError> {
        let path = self.dir.join("index.json");
        let bytes = serde_json::to_vec_pretty(index).expect("an index serializes");
        let temp = self.temp_path("index")?;
        std::fs::write(&temp, &bytes).map_err(io_error("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(io_error("rename", &path))
    }

    /// Records the manifest `manifest` (already stored) under `names` (none: a
    /// dangling image). A name moves from whatever image had it before.
    pub fn add_image(&self, manifest: &Descriptor, names: &[Reference]) -> Result<(), ImageError> {
        let _guard = self.lock()?;
        if !self.has_blob(&manifest.digest) {
            return Err(ImageError::MissingBlob {
                digest: manifest.digest.clone(),
            });
        }
        let mut index = self.read_index()?;
        let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        names.sort();
        names.dedup();
        index.manifests.retain(|entry| match ref_name(entry) {
            Some(name) => !names.contains(&name.to_string()),
            None => entry.digest != manifest.digest,
        });
        let entry = |name: Option<&String>| {
            let mut entry = manifest.clone();
            entry.annotations.clear();
            if let Some(name) = name {
                entry
                    .annotations
                    .insert(ANNOTATION_REF_NAME.to_string(), name.clone());
            }
            entry
        };
        if names.is_empty() {
            index.manifests.push(entry(None));
        }
        for name in &names {
            index.manifests.push(entry(Some(name)));
        }
        self.write_index(&index)?;
        Ok(())
    }

    /// Every image, with its names, most recent first.
    pub fn images(&self) -> Result<Vec<Image>, ImageError> {
        let index = self.read_index()?;
        let mut images: Vec<Image> = Vec::new();
        for entry in &index.manifests {
            let name = ref_name(entry).and_then(|n| Reference::parse(n).ok());
            if let Some(image) = images
                .iter_mut()
                .find(|i| i.manifest_digest == entry.digest)
            {
                image.names.extend(name);
                continue;
            }
            // One broken entry (a blob changed or lost behind the store's back) must
            // not take every command down: it is skipped, and `rmi NAME` still
            // removes its name.
            let documents = self
                .read_json::<Manifest>(&entry.digest, "manifest")
                .and_then(|m| {
                    let config = self.read_json::<ImageConfig>(&m.config.digest, "image config")?;
                    Ok((m, config))
                });
            let (manifest, config) = match documents {
                Ok(documents) => documents,
                Err(error) => {
                    log::warn!(
                        "skipping a broken image in the store: {}",
                        crate::errors::chain(&error)
                    );
                    continue;
                }
            };
            images.push(Image {
                names: name.into_iter().collect(),
                manifest_digest: entry.digest.clone(),
                manifest,
                config,
            });
        }
        images.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        Ok(images)
    }

    /// The image `text` names: a reference (name:tag or @digest), an id (the
    /// config digest, `sha256:` optional) or an unambiguous id prefix.
    pub fn resolve(&self, text: &str) -> Result<Image, ImageError> {
        let images = self.images()?;
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let looks_like_id = hex.len() >= 4 && hex.chars().all(|c| c.is_ascii_hexdigit());
        if looks_like_id {
            let matches: Vec<&Image> = images
                .iter()
                .filter(|i| {
                    i.id().hex().starts_with(hex) || i.manifest_digest.hex().starts_with(hex)
                })
                .collect();
            match matches.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ if matches.iter().all(|m| m.id() == matches[0].id()) => {
                    return Ok(matches[0].clone())
                }
                _ => {
                    return Err(ImageError::Ambiguous {
                        prefix: text.to_string(),
                    })
                }
            }
        }
        // A build's intermediate step (chapter 11) is a manifest the index does not
        // list: named by its full digest, it is found all the same.
        if let Some(digest) = text
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64)
            .and_then(|_| Digest::parse(text).ok())
        {
            if self.has_blob(&digest) {
                return self.image_of_manifest(&digest);
            }
        }
        let reference = Reference::parse(text).map_err(ImageError::Reference)?;
        images
            .into_iter()
            .find(|image| {
                image.names.iter().any(|name| {
                    name.name() == reference.name()
                        && match (&reference.digest, &reference.tag) {
                            // A name can pin the digest of a multi-platform index
                            // (what was pulled), not the manifest's.
                            (Some(digest), _) => {
                                *digest == image.manifest_digest
                                    || name.digest.as_ref() == Some(digest)
                            }
                            (None, tag) => name.tag == *tag,
                        }
                })
            })
            .ok_or_else(|| ImageError::NotFound {
                name: text.to_string(),
            })
    }

    /// The image whose manifest is the stored blob `digest`, listed in the index
    /// or not (a build's step), without names.
    pub fn image_of_manifest(&self, digest: &Digest) -> Result<Image, ImageError> {
        let manifest = self.read_json::<Manifest>(digest, "manifest")?;
        let config = self.read_json::<ImageConfig>(&manifest.config.digest, "image config")?;
        Ok(Image {
            names: Vec::new(),
            manifest_digest: digest.clone(),
            manifest,
            config,
        })
    }

    /// Stores an image made here (a build's step, a commit): its config and its
    /// manifest over `layers` (already stored). Returns its manifest's descriptor;
    /// [`Store::add_image`] names it.
    pub fn write_image(
        &self,
        config: &ImageConfig,
        layers: &[Descriptor],
    ) -> Result<Descriptor, ImageError> {
        let config = self.put_json(config, oci::MEDIA_OCI_CONFIG)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_OCI_MANIFEST.to_string()),
            config,
            layers: layers.to_vec(),
        };
        self.put_json(&manifest, oci::MEDIA_OCI_MANIFEST)
    }

    /// The build cache's records: `build-cache/KEY` holds the manifest digest of
    /// the step whose cache key is KEY. They keep what they name from garbage
    /// collection, as the index does.
    fn cache_dir(&self) -> PathBuf {
        self.dir.join("build-cache")
    }

    /// The manifest a build step with cache key `key` made, if it is still here.
    pub fn cached_step(&self, key: &Digest) -> Option<Digest> {
        let text = std::fs::read_to_string(self.cache_dir().join(key.hex())).ok()?;
        let digest = Digest::parse(text.trim()).ok()?;
        self.has_blob(&digest).then_some(digest)
    }

    /// Records that the step with cache key `key` made the manifest `manifest`.
    pub fn cache_step(&self, key: &Digest, manifest: &Digest) -> Result<(), ImageError> {
        let dir = self.cache_dir();
        std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
        let temp = self.temp_path("cache")?;
        std::fs::write(&temp, manifest.to_string()).map_err(io_error("write", &temp))?;
        let path = dir.join(key.hex());
        std::fs::rename(&temp, &path).map_err(io_error("rename", &path))
    }

    /// Forgets the build cache (`builder prune`); garbage collection then removes
    /// what only the cache kept. Returns how many records went.
    pub fn clear_cache(&self) -> Result<usize, ImageError> {
        let dir = self.cache_dir();
        let mut removed = 0;
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            std::fs::remove_file(entry.path()).map_err(io_error("remove", &entry.path()))?;
            removed += 1;
        }
        self.collect_garbage()?;
        Ok(removed)
    }

    /// The manifests the build cache names.
    fn cached_manifests(&self) -> Vec<Digest> {
        std::fs::read_dir(self.cache_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| Digest::parse(text.trim()).ok())
            .collect()
    }

    /// Removes the name `reference` from its image; the image itself goes when it
    /// has no name left. Returns whether the image went.
    pub fn untag(&self, reference: &Reference) -> Result<bool, ImageError> {
        let _guard = self.lock()?;
        let mut index = self.read_index()?;
        let name = reference.to_string();
        let Some(at) = index
            .manifests
            .iter()
            .position(|e| ref_name(e) == Some(name.as_str()))
        else {
            return Err(ImageError::NotFound { name });
        };
        let digest = index.manifests.remove(at).digest;
        let still_named = index.manifests.iter().any(|e| e.digest == digest);
        self.write_index(&index)?;
        Ok(!still_named)
    }

    /// Removes the image (every name of it), then what nothing else uses.
    pub fn remove_image(&self, image: &Image) -> Result<(), ImageError> {
        {
            let _guard = self.lock()?;
            let mut index = self.read_index()?;
            index
                .manifests
                .retain(|e| e.digest != image.manifest_digest);
            self.write_index(&index)?;
        }
        self.collect_garbage()
    }

    /// Removes the blobs and layers no image in the index refers to.
    /// Nothing is collected while another process holds a lease (a load in
    /// progress); then `tmp/` is emptied too.
    pub fn collect_garbage(&self) -> Result<(), ImageError> {
        let _guard = self.lock()?;
        if self.leased() {
            log::debug!("a load is in progress: garbage collection waits for the next time");
            return Ok(());
        }
        let index = self.read_index()?;
        let mut blobs = Vec::new();
        let mut chains = Vec::new();
        let roots = index
            .manifests
            .iter()
            .map(|entry| entry.digest.clone())
            .chain(self.cached_manifests());
        for root in roots {
            // A broken entry keeps what it still names.
            blobs.push(root.hex().to_string());
            let Ok(manifest) = self.read_json::<Manifest>(&root, "manifest") else {
                continue;
            };
            blobs.push(manifest.config.digest.hex().to_string());
            blobs.extend(manifest.layers.iter().map(|l| l.digest.hex().to_string()));
            let Ok(config) = self.read_json::<ImageConfig>(&manifest.config.digest, "image config")
            else {
                continue;
            };
            chains.extend(
                oci::chain_ids(&config.rootfs.diff_ids)
                    .iter()
                    .map(|c| c.hex().to_string()),
            );
        }
        let entries = |dir: &str| {
            std::fs::read_dir(self.dir.join(dir))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect::<Vec<_>>()
        };
        for (name, path) in entries("blobs/sha256") {
            if !blobs.contains(&name) {
                std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
            }
        }
        for (name, path) in entries("sources") {
            if !blobs.contains(&name) {
                let _ = std::fs::remove_file(&path);
            }
        }
        for (name, path) in entries("layers") {
            if !chains.contains(&name) {
                std::fs::remove_dir_all(&path).map_err(io_error("remove", &path))?;
            }
        }
        // Short links whose layer is gone (or never arrived), and whatever a
        // killed load left in tmp/ (no lease is held now).
        for (name, path) in entries("l") {
            if !is_short_name(&name) || !path.exists() {
                let _ = std::fs::remove_file(&path);
            }
        }
        for (_, path) in entries("tmp") {
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        Ok(())
    }

    /// The unpacked size of each layer of `image`, bottom first (0 when unknown).
    pub fn layer_sizes(&self, image: &Image) -> Vec<u64> {
        oci::chain_ids(&image.config.rootfs.diff_ids)
            .iter()
            .map(|chain| {
                let path = self.dir.join("layers").join(chain.hex()).join("size");
                std::fs::read_to_string(path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The unpacked size of `image`: what `images` shows as SIZE.
    pub fn unpacked_size(&self, image: &Image) -> u64 {
        self.layer_sizes(image).iter().sum()
    }

    /// The layer directories of `image` for overlay's lowerdir, topmost first (as
    /// short links: 60 layers fit in one page of mount options).
    pub fn lowers(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        // BEGIN SOLUTION ch06 "the overlay's lower directories: the image's layers, topmost first"
        let chains = oci::chain_ids(&image.config.rootfs.diff_ids);
        let mut lowers = Vec::new();
        for chain in chains.iter().rev() {
            lowers.push(self.layer_link(chain)?);
        }
        Ok(lowers)
        // END SOLUTION
    }
}

/// A lease on the store (see [`Store::lease`]), released on drop.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `name` is a short layer name as ferry makes them: 26 of `A-Z0-9`.
fn is_short_name(name: &str) -> bool {
    name.len() == 26
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The name an index entry carries, if any.
pub fn ref_name(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations
        .get(ANNOTATION_REF_NAME)
        .map(String::as_str)
}

/// 26 random upper-case letters and digits, as docker's overlay2 link names.
fn short_name() -> Result<String, ImageError> {
    let mut bytes = [0u8; 26];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_error("read", Path::new("/dev/urandom")))?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect())
}

/// A reader that writes a copy of everything read through it.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: io::Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        if n == 0 {
            self.copy.flush()?;
        }
        Ok(n)
    }
}
