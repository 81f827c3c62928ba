//! `pull`: from a name to an image in the store, one verified blob at a time.
//!
//! Chapter 7. The walk: the tag's manifest (an index picks this platform's
//! manifest, fetched by digest), the config, then the layers — three at a time,
//! each streamed once through the hash, the decompressor and the layer applier
//! straight into the store (chapter 6's `put_layer`). Layers the store has are
//! not fetched. Only when every piece checked out does the name point to the image.

use std::io::{self, Read};
use std::sync::Mutex;

use super::platform::{self, Platform};
use super::progress::{short, Progress, Status};
use super::transport::{Access, Body, Client, Session};
use super::RegistryError;
use crate::images::oci::{self, Descriptor, ImageConfig, Index, Manifest};
use crate::images::store::DOCUMENT_CAP;
use crate::images::{Digest, ImageError, Reference, Store};

/// Layers downloaded at once, as docker's default `max-concurrent-downloads`.
pub const PARALLEL_DOWNLOADS: usize = 3;
/// Range requests tried to go on with one blob after its connection broke.
const RESUMES: u32 = 3;
/// The most a layer blob may be.
const LAYER_CAP: u64 = 64 << 30;
/// The most layers an image may have: docker's overlay2 limit (overlayfs stacks
/// at most about that many lower directories in one page of mount options).
pub const MAX_LAYERS: usize = 125;

/// Schema 1 (signed JSON, no digests of layers' contents): refused.
const MEDIA_SCHEMA1: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
];

/// What a pull asks for, in order of preference.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest the name points to on the registry (an index's, for a
    /// multi-platform image): docker's `Digest:` line.
    pub digest: Digest,
    /// The image's id (its config's digest).
    pub id: Digest,
    /// Whether anything was new: "Downloaded newer image" or "Image is up to date".
    pub newer: bool,
}

/// Whether a media type is an index (OCI index, Docker manifest list).
fn is_index(media_type: &str) -> bool {
    media_type == oci::MEDIA_OCI_INDEX || media_type == oci::MEDIA_DOCKER_LIST
}

/// A manifest or an index as it arrived.
#[derive(Clone)]
pub struct Document {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: Digest,
}

/// Checks a manifest that arrived: not schema 1; its `Content-Type` and the
/// `mediaType` inside agree (one may be missing); its digest is the one asked for
/// (`expected`, when the reference or an index named it) and the one the registry
/// says (`Docker-Content-Digest`). Gives the media type.
pub fn check_manifest(
    host: &str,
    reference: &str,
    content_type: Option<&str>,
    body: &[u8],
    expected: Option<&Digest>,
    header_digest: Option<&str>,
) -> Result<String, RegistryError> {
    // BEGIN SOLUTION ch07 "check a manifest before believing it: not schema 1, Content-Type against its mediaType, its digest against the one asked for and the registry's"
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        schema_version: Option<u32>,
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let bad = |why: String| RegistryError::BadManifest {
        host: host.to_string(),
        why,
    };
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain");
    if content_type
        .as_deref()
        .is_some_and(|c| MEDIA_SCHEMA1.contains(&c))
    {
        return Err(RegistryError::Schema1 {
            reference: reference.to_string(),
        });
    }
    let head: Head = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if head.schema_version == Some(1) {
        return Err(RegistryError::Schema1 {
            reference: reference.to_string(),
        });
    }
    // An index and a manifest at once could be read either way by two tools
    // (CVE-2021-41190): refused.
    if head.manifests.is_some() && (head.layers.is_some() || head.config.is_some()) {
        return Err(bad(
            "it has both manifests and layers: an index or a manifest?".into(),
        ));
    }
    let media_type = match (content_type, head.media_type) {
        (Some(header), Some(inside)) if header != inside => {
            return Err(bad(format!(
                "it is served as {header} but says it is {inside}"
            )))
        }
        (Some(media_type), _) | (None, Some(media_type)) => media_type,
        (None, None) if head.manifests.is_some() => oci::MEDIA_OCI_INDEX.to_string(),
        (None, None) => oci::MEDIA_OCI_MANIFEST.to_string(),
    };
    let got = Digest::of(body);
    let claimed = header_digest.and_then(|d| Digest::parse(d.trim()).ok());
    for want in [expected, claimed.as_ref()].into_iter().flatten() {
        if *want != got {
            return Err(RegistryError::DigestMismatch {
                host: host.to_string(),
                what: format!("the manifest of {reference}"),
                want: want.clone(),
                got,
            });
        }
    }
    Ok(media_type)
    // END SOLUTION
}

/// `GET /v2/REPOSITORY/manifests/REFERENCE`, checked.
fn fetch_manifest(
    session: &Session<'_>,
    reference: &str,
    shown: &str,
    expected: Option<&Digest>,
) -> Result<Document, RegistryError> {
    let response = session.send(
        "GET",
        &session.url(&format!("manifests/{reference}")),
        &[("Accept", ACCEPT)],
        Body::Empty,
    )?;
    let content_type = response.header("content-type").map(String::from);
    let header_digest = response.header("docker-content-digest").map(String::from);
    let bytes = read_capped(response.into_reader(), "manifest", &session.registry)?;
    let media_type = check_manifest(
        &session.registry,
        shown,
        content_type.as_deref(),
        &bytes,
        expected,
        header_digest.as_deref(),
    )?;
    Ok(Document {
        media_type,
        digest: Digest::of(&bytes),
        bytes,
    })
}

/// Reads a small document (a manifest, a config) with the store's cap.
fn read_capped(
    reader: impl Read,
    what: &'static str,
    host: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = Vec::new();
    reader
        .take(DOCUMENT_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Unreachable {
            host: host.to_string(),
            detail: format!("the {what} did not arrive whole: {e}"),
        })?;
    if bytes.len() as u64 > DOCUMENT_CAP {
        return Err(ImageError::TooLarge {
            what: what.to_string(),
            cap: DOCUMENT_CAP,
        }
        .into());
    }
    Ok(bytes)
}

/// Pulls `reference` for `wanted` into `store`, telling `progress` as it goes.
pub fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    wanted: &Platform,
    progress: &dyn Progress,
) -> Result<Pulled, RegistryError> {
    let tag_or_digest = match (&reference.digest, &reference.tag) {
        (Some(digest), _) => digest.to_string(),
        (None, tag) => tag.clone().unwrap_or_else(|| "latest".into()),
    };
    let shown = reference.to_string();
    let (session, top) = client.session_with(
        &reference.registry,
        &reference.repository,
        Access::Pull,
        &[],
        |session| fetch_manifest(session, &tag_or_digest, &shown, reference.digest.as_ref()),
    )?;
    // docker names the repository without its registry: "Pulling from library/busybox".
    progress.line(&format!(
        "{tag_or_digest}: Pulling from {}",
        reference.repository
    ));
    let manifest_doc = if is_index(&top.media_type) {
        let index: Index =
            serde_json::from_slice(&top.bytes).map_err(|e| RegistryError::BadManifest {
                host: session.registry.clone(),
                why: format!("the index is not valid: {e}"),
            })?;
        let entry = platform::select(&index, wanted, &shown)?;
        let doc = fetch_manifest(
            &session,
            entry.digest.as_str(),
            &format!("{shown} ({wanted})"),
            Some(&entry.digest),
        )?;
        if is_index(&doc.media_type) {
            return Err(RegistryError::BadManifest {
                host: session.registry.clone(),
                why: "an index names another index for this platform".into(),
            });
        }
        doc
    } else {
        top.clone()
    };
    let manifest: Manifest =
        serde_json::from_slice(&manifest_doc.bytes).map_err(|e| RegistryError::BadManifest {
            host: session.registry.clone(),
            why: format!("the manifest is not valid: {e}"),
        })?;
    check_sizes(&manifest, &session.registry)?;
    let up_to_date = store
        .resolve(&shown)
        .is_ok_and(|image| image.manifest_digest == manifest_doc.digest);

    let lease = store.lease()?;
    let result = fetch_image(
        &session,
        store,
        &manifest,
        &manifest_doc,
        reference,
        progress,
    );
    drop(lease);
    let id = match result {
        Ok(id) => id,
        Err(error) => {
            // What this pull wrote and no image uses goes (another pull's lease
            // keeps the collector away from what that one is writing).
            let _ = store.collect_garbage();
            return Err(error);
        }
    };
    progress.line(&format!("Digest: {}", top.digest));
    Ok(Pulled {
        digest: top.digest,
        id,
        newer: !up_to_date,
    })
}

/// What a manifest may ask for before anything is fetched: a layer format ferry
/// reads, at most [`MAX_LAYERS`] layers, and sizes within the caps.
fn check_sizes(manifest: &Manifest, host: &str) -> Result<(), RegistryError> {
    let bad = |why: String| RegistryError::BadManifest {
        host: host.to_string(),
        why,
    };
    if manifest.layers.len() > MAX_LAYERS {
        return Err(bad(format!(
            "it has {} layers; overlayfs (and docker) stop at {MAX_LAYERS}",
            manifest.layers.len()
        )));
    }
    if manifest.config.size > DOCUMENT_CAP {
        return Err(bad(format!(
            "its config would be {} bytes, more than {DOCUMENT_CAP}",
            manifest.config.size
        )));
    }
    for layer in &manifest.layers {
        crate::images::compression_of(&layer.media_type)?;
        if layer.size > LAYER_CAP {
            return Err(bad(format!(
                "layer {} would be {} bytes, more than {LAYER_CAP}",
                layer.digest, layer.size
            )));
        }
    }
    Ok(())
}

/// Refuses to start downloads the store's filesystem cannot hold: each layer is
/// kept as its blob and unpacked at least as large again, so twice the blobs is
/// the least it needs (statvfs(3)). A floor, not a promise: a layer may unpack to
/// much more, and the applier's own caps stop that.
fn check_space(store: &Store, layers: &[&Descriptor]) -> Result<(), RegistryError> {
    let needed: u64 = layers
        .iter()
        .map(|l| l.size)
        .fold(0u64, u64::saturating_add)
        .saturating_mul(2);
    let dir = store.dir();
    let Ok(stat) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(()); // the store is made on first write; nothing to measure yet
    };
    let available = stat.blocks_available().saturating_mul(stat.fragment_size());
    if needed > available {
        return Err(RegistryError::NoSpace {
            path: dir.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The config, the layers and the manifest into the store, then the name.
fn fetch_image(
    session: &Session<'_>,
    store: &Store,
    manifest: &Manifest,
    document: &Document,
    reference: &Reference,
    progress: &dyn Progress,
) -> Result<Digest, RegistryError> {
    let source = format!("{}/{}", session.registry, session.repository);
    let config_digest = &manifest.config.digest;
    if !store.has_blob(config_digest) {
        let response = session.send(
            "GET",
            &session.url(&format!("blobs/{config_digest}")),
            &[],
            Body::Empty,
        )?;
        store
            .put_blob(
                response.into_reader(),
                Some((config_digest, Some(manifest.config.size))),
                DOCUMENT_CAP,
            )
            .map_err(|e| blame_blob(e, session, "the config", config_digest))?;
    }
    let config: ImageConfig = store.read_json(config_digest, "image config")?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::BadManifest {
            host: session.registry.clone(),
            why: format!(
                "the manifest has {} layers but the config lists {} diff ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let chains = oci::chain_ids(diff_ids);
    let mut queue = Vec::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        if store.has_layer(&chains[i]) && store.has_blob(&layer.digest) {
            progress.layer(&short(&layer.digest), Status::AlreadyExists);
        } else {
            progress.layer(&short(&layer.digest), Status::Waiting);
            queue.push(i);
        }
    }
    let fetching: Vec<&Descriptor> = queue.iter().map(|&i| &manifest.layers[i]).collect();
    check_space(store, &fetching)?;
    fetch_layers(session, store, manifest, diff_ids, &chains, queue, progress)?;

    let (digest, _) = store
        .put_blob(
            &document.bytes[..],
            Some((&document.digest, None)),
            DOCUMENT_CAP,
        )
        .map_err(RegistryError::Image)?;
    for blob in manifest.layers.iter().chain([&manifest.config]) {
        store.record_source(&blob.digest, &source)?;
    }
    let descriptor = Descriptor {
        media_type: document.media_type.clone(),
        digest,
        size: document.bytes.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    store.add_image(&descriptor, std::slice::from_ref(reference))?;
    Ok(config_digest.clone())
}

/// Downloads the layers `queue` names, [`PARALLEL_DOWNLOADS`] at a time; the first
/// error stops the others from starting new ones.
fn fetch_layers(
    session: &Session<'_>,
    store: &Store,
    manifest: &Manifest,
    diff_ids: &[Digest],
    chains: &[Digest],
    queue: Vec<usize>,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let queue = Mutex::new(queue.into_iter());
    let failure: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL_DOWNLOADS {
            scope.spawn(|| loop {
                if failure.lock().expect("failure lock").is_some() {
                    return;
                }
                let Some(i) = queue.lock().expect("queue lock").next() else {
                    return;
                };
                let layer = &manifest.layers[i];
                match fetch_layer(session, store, layer, &diff_ids[i], &chains[i], progress) {
                    Ok(()) => progress.layer(&short(&layer.digest), Status::PullComplete),
                    Err(error) => {
                        failure.lock().expect("failure lock").get_or_insert(error);
                    }
                }
            });
        }
    });
    match failure.into_inner().expect("failure lock") {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// One layer: streamed into the store's `put_layer`, resumed with Range requests
/// when the connection breaks.
fn fetch_layer(
    session: &Session<'_>,
    store: &Store,
    layer: &Descriptor,
    diff_id: &Digest,
    chain: &Digest,
    progress: &dyn Progress,
) -> Result<(), RegistryError> {
    let url = session.url(&format!("blobs/{}", layer.digest));
    let response = session.send("GET", &url, &[], Body::Empty)?;
    let stream = BlobStream {
        session,
        url: &url,
        inner: response.into_reader(),
        offset: 0,
        total: layer.size,
        resumes: 0,
        reported: 0,
        id: short(&layer.digest),
        progress,
    };
    store
        .put_layer(stream.take(LAYER_CAP), layer, diff_id, chain)
        .map_err(|e| {
            let what = format!("layer {}", short(&layer.digest));
            blame_blob(e, session, &what, &layer.digest)
        })
}

/// A digest mismatch of a blob is the registry's (or the network's) fault: say
/// where it came from.
fn blame_blob(
    error: ImageError,
    session: &Session<'_>,
    what: &str,
    want: &Digest,
) -> RegistryError {
    let mismatch = |got: Digest| RegistryError::DigestMismatch {
        host: session.registry.clone(),
        what: what.to_string(),
        want: want.clone(),
        got,
    };
    match error {
        ImageError::DigestMismatch { got, .. } => mismatch(got),
        ImageError::Layer(crate::images::layer::LayerError::DigestMismatch { actual, .. }) => {
            mismatch(Digest::parse(&actual).unwrap_or_else(|_| Digest::of(b"")))
        }
        other => RegistryError::Image(other),
    }
}

/// A blob's body that goes on after a broken connection: a `Range: bytes=N-`
/// request for the rest, accepted only as `206 Partial Content` (anything else
/// would feed the unpacker the wrong bytes; the error then stands).
struct BlobStream<'a> {
    session: &'a Session<'a>,
    url: &'a str,
    inner: Box<dyn Read + Send + Sync>,
    offset: u64,
    total: u64,
    resumes: u32,
    reported: u64,
    id: String,
    progress: &'a dyn Progress,
}

impl BlobStream<'_> {
    fn resume(&mut self) -> bool {
        let range = format!("bytes={}-", self.offset);
        match self
            .session
            .send("GET", self.url, &[("Range", &range)], Body::Empty)
        {
            Ok(response)
                if response.status() == 206
                    && response
                        .header("content-range")
                        .is_some_and(|r| r.starts_with(&format!("bytes {}-", self.offset))) =>
            {
                log::debug!("resumed {} at byte {}", self.url, self.offset);
                self.inner = response.into_reader();
                true
            }
            Ok(response) => {
                log::debug!("no resume: the registry answered {}", response.status());
                false
            }
            Err(error) => {
                log::debug!("no resume: {error}");
                false
            }
        }
    }
}

impl Read for BlobStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.offset += n as u64;
                    if self.offset - self.reported >= 256 << 10 || n == 0 {
                        self.reported = self.offset;
                        self.progress.layer(
                            &self.id,
                            Status::Downloading {
                                done: self.offset,
                                total: self.total,
                            },
                        );
                    }
                    return Ok(n);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) if self.resumes < RESUMES && self.offset < self.total => {
                    self.resumes += 1;
                    self.progress.layer(
                        &self.id,
                        Status::Retrying {
                            attempt: self.resumes,
                        },
                    );
                    std::thread::sleep(std::time::Duration::from_millis(
                        200 * u64::from(self.resumes),
                    ));
                    if !self.resume() {
                        return Err(error);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;

    #[test]
    fn a_manifest_is_its_content_type_and_its_digest() {
        let digest = Digest::of(MANIFEST);
        let media = check_manifest(
            "h",
            "r",
            Some(oci::MEDIA_OCI_MANIFEST),
            MANIFEST,
            Some(&digest),
            Some(digest.as_str()),
        );
        assert_eq!(media.unwrap(), oci::MEDIA_OCI_MANIFEST);
        let other = Digest::of(b"other");
        assert!(matches!(
            check_manifest("h", "r", None, MANIFEST, Some(&other), None),
            Err(RegistryError::DigestMismatch { .. })
        ));
        assert!(matches!(
            check_manifest("h", "r", None, MANIFEST, None, Some(other.as_str())),
            Err(RegistryError::DigestMismatch { .. })
        ));
        assert!(matches!(
            check_manifest(
                "h",
                "r",
                Some(oci::MEDIA_DOCKER_MANIFEST),
                MANIFEST,
                None,
                None
            ),
            Err(RegistryError::BadManifest { .. })
        ));
    }

    #[test]
    fn a_document_both_index_and_manifest_is_refused() {
        let body = br#"{"schemaVersion":2,"manifests":[],"layers":[],"config":{}}"#;
        assert!(matches!(
            check_manifest("h", "r", None, body, None, None),
            Err(RegistryError::BadManifest { .. })
        ));
    }

    #[test]
    fn a_manifest_asking_too_much_is_refused_before_any_download() {
        let layer = |size| serde_json::json!({"mediaType": oci::MEDIA_OCI_LAYER_GZIP, "digest": Digest::of(b"x"), "size": size});
        let manifest = |layers: Vec<serde_json::Value>| -> Manifest {
            serde_json::from_value(serde_json::json!({
                "schemaVersion": 2,
                "config": {"mediaType": oci::MEDIA_OCI_CONFIG, "digest": Digest::of(b"c"), "size": 2},
                "layers": layers,
            }))
            .unwrap()
        };
        assert!(check_sizes(&manifest(vec![layer(10)]), "h").is_ok());
        assert!(check_sizes(&manifest(vec![layer(u64::MAX)]), "h").is_err());
        assert!(check_sizes(&manifest(vec![layer(1); MAX_LAYERS + 1]), "h").is_err());
    }

    #[test]
    fn schema1_is_refused() {
        let body = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(matches!(
            check_manifest("h", "r", Some("application/json"), body, None, None),
            Err(RegistryError::Schema1 { .. })
        ));
        assert!(matches!(
            check_manifest("h", "r", Some(MEDIA_SCHEMA1[1]), body, None, None),
            Err(RegistryError::Schema1 { .. })
        ));
    }
}
