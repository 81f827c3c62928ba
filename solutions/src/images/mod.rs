//! Images: what a container's root is made of, in a local store.
//!
//! Chapter 6 (chapters/06-images.md). An image is a stack of layers (tarballs of
//! the files each step added, changed or deleted) plus a config (how to run it),
//! tied together by a manifest; every piece is named by its digest. ferry keeps
//! them in a store under the state root ([`store`]), unpacks each layer once
//! ([`layer`], securely: a layer is the attacker's tarball) and gives a container
//! its image's layer directories as the overlay's lower stack (chapter 5).

pub mod archive;
pub mod digest;
pub mod layer;
pub mod oci;
pub mod reference;
pub mod store;
pub mod unpack;

use std::path::PathBuf;

pub use digest::Digest;
pub use reference::{Reference, ReferenceError};
pub use store::{Image, Store};

/// Everything the image store and its commands can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {name}")]
    NotFound { name: String },
    #[error("image id prefix {prefix} names more than one image: give more digits")]
    Ambiguous { prefix: String },
    #[error(transparent)]
    Reference(ReferenceError),
    #[error("the {what} does not match its digest: it is {got}")]
    DigestMismatch { what: String, got: Digest },
    #[error("blob {digest} should be {want} bytes, it is {got}")]
    SizeMismatch { digest: Digest, want: u64, got: u64 },
    #[error("the {what} is larger than {cap} bytes: refusing it")]
    TooLarge { what: String, cap: u64 },
    #[error("blob {digest} is missing from the store or the archive")]
    MissingBlob { digest: Digest },
    #[error("the {what} {digest} is not valid JSON of its kind")]
    Document {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported layer media type {media_type:?}: ferry reads tar, tar+gzip and tar+zstd layers")]
    MediaType { media_type: String },
    #[error("the archive is not an OCI image layout nor a docker save archive: {why}")]
    Archive { why: String },
    #[error("the archive holds no image for this machine ({platform})")]
    NoPlatform { platform: String },
    #[error(
        "image {name} is used by container {container}: remove the container first, or use --force"
    )]
    InUse { name: String, container: String },
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How a layer blob is compressed, from its media type.
pub fn compression_of(media_type: &str) -> Result<layer::Compression, ImageError> {
    layer::Compression::from_media_type(media_type).ok_or_else(|| ImageError::MediaType {
        media_type: media_type.to_string(),
    })
}

/// This machine's platform as image indexes name it (`linux/amd64`, `linux/arm64/v8`).
pub fn this_platform() -> (&'static str, &'static str, Option<&'static str>) {
    match std::env::consts::ARCH {
        "x86_64" => ("linux", "amd64", None),
        "aarch64" => ("linux", "arm64", Some("v8")),
        "riscv64" => ("linux", "riscv64", None),
        other => ("linux", other, None),
    }
}
