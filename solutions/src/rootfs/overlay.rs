//! Copy-on-write: the container's root as an overlay of the image and a layer of
//! its own.
//!
//! Chapter 5 (chapters/05-overlay.md). The meetup's overhead projector: the image
//! is the base sheet (read-only *lower* directories, the top one first), the
//! container writes on a clear sheet laid over it (its *upper* directory), and the
//! projector shows both as one (the *merged* view, the container's `/`). A file
//! that is only read stays in the lower; the first write copies it up; a delete
//! leaves a *whiteout* in the upper (a 0:0 character device) and a directory
//! replaced wholesale is marked *opaque* (the `trusted.overlay.opaque` xattr).
//! The upper is the difference you can lift off: what `docker diff` shows, and what
//! a build commits as a layer (chapter 11).

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::RootfsError;

/// The directories of one overlay mount (see the kernel's overlayfs.rst).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// Read-only layers, the topmost first.
    pub lowers: Vec<PathBuf>,
    /// The container's own layer: every write lands here.
    pub upper: PathBuf,
    /// overlayfs's scratch space, on the same filesystem as `upper`.
    pub work: PathBuf,
}

/// How long mount(2)'s data may be: one page. 60 layers with long paths do not
/// fit; chapter 6 gives layers short names for that.
pub const MOUNT_DATA_MAX: usize = 4095;

/// The overlay's mount data: `lowerdir=L1:L2,upperdir=U,workdir=W` (lowers
/// topmost first, `:` between them). overlayfs splits on `:` and `,`, so a path
/// holding either (or a backslash, its escape) is refused rather than escaped.
pub fn mount_data(overlay: &Overlay) -> Result<String, RootfsError> {
    // BEGIN SOLUTION ch05 "write overlayfs's mount data: lowerdir (topmost first), upperdir, workdir"
    let all = overlay.lowers.iter().chain([&overlay.upper, &overlay.work]);
    for path in all {
        if path.to_string_lossy().contains([':', ',', '\\']) {
            return Err(RootfsError::OverlayPath { path: path.clone() });
        }
    }
    let lowers: Vec<String> = overlay
        .lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        overlay.upper.display(),
        overlay.work.display()
    );
    if data.len() > MOUNT_DATA_MAX {
        return Err(RootfsError::OverlayTooLong {
            layers: overlay.lowers.len(),
            length: data.len(),
        });
    }
    Ok(data)
    // END SOLUTION
}

/// Mounts the overlay on `target` (an empty directory in the container's state
/// directory) with mount(2): type and source `overlay`, the data from
/// [`mount_data`]. Returns whether it did: until chapter 5 is done the container
/// runs on its lower directory itself, and what it writes lands there.
pub fn mount_overlay(overlay: &Overlay, target: &Path) -> Result<bool, RootfsError> {
    // BEGIN SOLUTION ch05 "mount the container's root as an overlay (the chapter's entry point)"
    let data = mount_data(overlay)?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|source| RootfsError::Mount {
        fstype: "overlay".to_string(),
        target: target.to_path_buf(),
        source,
    })?;
    Ok(true)
    // BEGIN STUB
    // crate::note::chapter_not_done(5, "overlay", "the container writes into its rootfs directory");
    // Ok(false)
    // END SOLUTION
}
