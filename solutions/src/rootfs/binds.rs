//! Bind mounts into the container: volumes (a host directory, or one of the
//! engine's named volumes), the engine's own files, and devices.
//!
//! Chapter 5 (chapters/05-overlay.md). A bind mount shows an existing directory or
//! file at a second place — the same inodes, not a copy: what the container writes
//! in a volume is on the host at once, and outlives the container. Its target is
//! resolved inside the container's root like every mount target (`safe_path`): an
//! image whose `/data` is a symlink to `/` must not get the volume mounted onto the
//! host's root.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::RootfsError;
use crate::safe_path::Resolved;

/// Binds the directory `source` (on the host) onto `target` (resolved inside the
/// root), recursively (`MS_BIND | MS_REC`: mounts inside `source` come along). Then
/// resolve `target` again with `retarget` (the descriptor still points below the
/// new mount) and restrict the new mount tree with `sys::restrict_mount_tree`
/// (mount_setattr(2)): always `nodev` and `nosuid` — a volume is a place the
/// container writes, like its root — and read-only all the way down with `read_only`.
pub fn bind_directory(
    source: &Path,
    target: &Resolved,
    read_only: bool,
    retarget: &dyn Fn() -> Result<Resolved, RootfsError>,
) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch05 "bind a volume's directory into the container, read-only all the way down with :ro"
    let error = |source| RootfsError::Bind {
        target: target.path.clone(),
        source,
    };
    mount(
        Some(source),
        &target.fd_path(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(error)?;
    let bound = retarget()?;
    crate::sys::restrict_mount_tree(bound.fd(), read_only).map_err(error)
    // END SOLUTION
}
