//! From the store to the layer applier: a stored blob applied to a new layer
//! directory, with what the manifest and the config promise checked.

use std::io::Read;
use std::path::Path;

use super::layer::{self, Compression, Expected, Limits};
use super::{Digest, ImageError};

/// Applies `blob` (compressed as `compression`) to the empty directory `root`,
/// checking its digest, its size and the digest of the tar inside (the diff id).
/// Returns the unpacked size in bytes.
pub fn apply_layer(
    blob: impl Read,
    compression: Compression,
    root: &Path,
    digest: &Digest,
    size: Option<u64>,
    diff_id: &Digest,
) -> Result<u64, ImageError> {
    let expected = Expected {
        digest: Some(digest.to_string()),
        size,
        diff_id: Some(diff_id.to_string()),
    };
    let applied = layer::apply(blob, compression, root, &expected, &Limits::default())?;
    Ok(applied.tar_size)
}
