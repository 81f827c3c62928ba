//! `push`: an image of the store up to a registry, the pull's walk backwards —
//! blobs first, the manifest last, so that a registry never names an image whose
//! pieces it does not have.
//!
//! Chapter 7. Each blob: `HEAD` asks whether the registry has it already; a blob
//! the store knows came from another repository of the same registry is *mounted*
//! from there (`POST .../blobs/uploads/?mount=DIGEST&from=REPO`: no bytes sent);
//! any other is uploaded — `POST` opens an upload session, then one `PUT` with
//! the whole blob (monolithic), or `PATCH`es of [`CHUNK`] bytes and a final `PUT`
//! (chunked), the digest given at the end for the registry to check.

use std::io::Read;

use super::progress::{short, Progress, Status};
use super::transport::{absolute, Access, Body, Client, Session};
use super::RegistryError;
use crate::images::oci::{self, Descriptor};
use crate::images::{Digest, Image, ImageError, Reference, Store};

/// Blobs larger than this go up in chunks of this size.
pub const CHUNK: u64 = 8 << 20;

/// What a push did: docker's last line, `TAG: digest: DIGEST size: SIZE`.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub digest: Digest,
    pub size: u64,
}

/// Pushes `image` to `target` (its registry, repository and tag).
pub fn push(
    client: &Client,
    store: &Store,
    image: &Image,
    target: &Reference,
    progress: &dyn Progress,
) -> Result<Pushed, RegistryError> {
    progress.line(&format!(
        "The push refers to repository [{}]",
        target.name()
    ));
    let blobs: Vec<&Descriptor> = image
        .manifest
        .layers
        .iter()
        .rev()
        .chain([&image.manifest.config])
        .collect();
    // Other repositories of this registry the blobs are known to come from.
    let source_of = |digest: &Digest| {
        store.sources(digest).into_iter().find_map(|name| {
            let repository = name.strip_prefix(&format!("{}/", target.registry))?;
            (repository != target.repository).then(|| repository.to_string())
        })
    };
    let mut mount_from: Vec<String> = blobs.iter().filter_map(|b| source_of(&b.digest)).collect();
    mount_from.sort();
    mount_from.dedup();
    mount_from.truncate(5);
    let session = client.session(
        &target.registry,
        &target.repository,
        Access::Push,
        &mount_from,
    )?;
    for layer in &image.manifest.layers {
        progress.layer(&short(&layer.digest), Status::Preparing);
    }
    for blob in blobs {
        let is_layer = blob.digest != image.manifest.config.digest;
        let status = push_blob(&session, store, blob, source_of(&blob.digest), progress)?;
        if is_layer {
            progress.layer(&short(&blob.digest), status);
        }
        store.record_source(&blob.digest, &target.name())?;
    }

    let bytes = store.read_blob(&image.manifest_digest)?;
    let media_type = image
        .manifest
        .media_type
        .clone()
        .unwrap_or_else(|| oci::MEDIA_OCI_MANIFEST.to_string());
    let reference = match (&target.tag, &target.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(digest)) => digest.to_string(),
        (None, None) => "latest".to_string(),
    };
    let response = session.send(
        "PUT",
        &session.url(&format!("manifests/{reference}")),
        &[],
        Body::Bytes(&bytes, &media_type),
    )?;
    let digest = Digest::of(&bytes);
    if let Some(claimed) = response.header("docker-content-digest") {
        if claimed.trim() != digest.as_str() {
            return Err(RegistryError::DigestMismatch {
                host: session.registry.clone(),
                what: "the manifest the registry stored".into(),
                want: digest,
                got: Digest::parse(claimed.trim()).unwrap_or_else(|_| Digest::of(b"")),
            });
        }
    }
    progress.line(&format!(
        "{reference}: digest: {digest} size: {}",
        bytes.len()
    ));
    Ok(Pushed {
        digest,
        size: bytes.len() as u64,
    })
}

/// Makes sure the registry has `blob`: already there, mounted from `source`, or
/// uploaded.
fn push_blob(
    session: &Session<'_>,
    store: &Store,
    blob: &Descriptor,
    source: Option<String>,
    progress: &dyn Progress,
) -> Result<Status, RegistryError> {
    let digest = &blob.digest;
    match session.send(
        "HEAD",
        &session.url(&format!("blobs/{digest}")),
        &[],
        Body::Empty,
    ) {
        Ok(_) => return Ok(Status::LayerExists),
        Err(RegistryError::NotFound { .. }) => {}
        Err(error) => return Err(error),
    }
    let start = match &source {
        Some(from) => format!("blobs/uploads/?mount={digest}&from={from}"),
        None => "blobs/uploads/".to_string(),
    };
    let response = session.send("POST", &session.url(&start), &[], Body::Empty)?;
    if response.status() == 201 {
        let from = source.unwrap_or_default();
        return Ok(Status::Mounted { from });
    }
    let mut location = upload_location(session, &response)?;

    let path = store.blob_path(digest);
    let open_error = |source| {
        RegistryError::Image(ImageError::Io {
            action: "read",
            path: path.clone(),
            source,
        })
    };
    let mut file = std::fs::File::open(&path).map_err(open_error)?;
    let id = short(digest);
    let mut sent = 0u64;
    let mut chunk = Vec::new();
    if blob.size > CHUNK {
        // Chunked: PATCH each piece with its Content-Range, follow the new
        // Location each time.
        loop {
            chunk.clear();
            (&mut file)
                .take(CHUNK)
                .read_to_end(&mut chunk)
                .map_err(open_error)?;
            if chunk.is_empty() {
                break;
            }
            let range = format!("{}-{}", sent, sent + chunk.len() as u64 - 1);
            let response = session.send(
                "PATCH",
                &location,
                &[("Content-Range", &range)],
                Body::Bytes(&chunk, "application/octet-stream"),
            )?;
            location = upload_location(session, &response)?;
            sent += chunk.len() as u64;
            progress.layer(
                &id,
                Status::Pushing {
                    done: sent,
                    total: blob.size,
                },
            );
        }
        chunk.clear();
    } else {
        file.read_to_end(&mut chunk).map_err(open_error)?;
    }
    // Monolithic (the whole blob in this PUT) or the end of a chunked upload
    // (an empty PUT): the digest lets the registry check what it got.
    let separator = if location.contains('?') { '&' } else { '?' };
    let url = format!("{location}{separator}digest={digest}");
    session.send(
        "PUT",
        &url,
        &[],
        Body::Bytes(&chunk, "application/octet-stream"),
    )?;
    progress.layer(
        &id,
        Status::Pushing {
            done: blob.size,
            total: blob.size,
        },
    );
    Ok(Status::Pushed)
}

/// The `Location` of an upload session, as an absolute URL.
fn upload_location(
    session: &Session<'_>,
    response: &ureq::Response,
) -> Result<String, RegistryError> {
    let location = response
        .header("location")
        .ok_or_else(|| RegistryError::Http {
            host: session.registry.clone(),
            method: "POST",
            path: format!("/v2/{}/blobs/uploads/", session.repository),
            status: response.status(),
            detail: "the upload answer has no Location".into(),
        })?;
    Ok(absolute(response.get_url(), location))
}
