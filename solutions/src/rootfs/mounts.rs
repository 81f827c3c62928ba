//! The kernel filesystems every container gets, as a table.
//!
//! Chapter 1. Each is a fresh instance (not a bind mount of the host's): /proc
//! shows the processes of the container's pid namespace (chapter 2 makes that its
//! own), devpts with `newinstance` has only the container's terminals, and sysfs is
//! read-only so nothing in the container can reconfigure the host's devices.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::RootfsError;

/// One filesystem to mount inside the new root (see mount(2)).
#[derive(Debug, Clone, Copy)]
pub struct KernelMount<'a> {
    /// Where, inside the container.
    pub target: &'a str,
    /// The filesystem type (`-t` of mount(8)); also used as the source name.
    pub fstype: &'a str,
    /// Generic mount flags.
    pub flags: MsFlags,
    /// Filesystem-specific options (`-o` of mount(8) that are not flags).
    pub data: Option<&'a str>,
}

/// The options of the tmpfs on /dev, used again when chapter 4 remounts it `nodev`.
pub const DEV_TMPFS_OPTIONS: &str = "mode=755,size=65536k";

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// In mount order: /dev before /dev/pts and /dev/shm, which live on it.
pub const KERNEL_MOUNTS: &[KernelMount<'static>] = &[
    KernelMount {
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    KernelMount {
        target: "/dev",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_STRICTATIME),
        data: Some(DEV_TMPFS_OPTIONS),
    },
    KernelMount {
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("newinstance,ptmxmode=0666,mode=0620"),
    },
    KernelMount {
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: Some("mode=1777,size=65536k"),
    },
    KernelMount {
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC.union(MsFlags::MS_RDONLY),
        data: None,
    },
];

/// Mounts a new instance of one kernel filesystem (see mount(2)) on `target` — the
/// target as the engine resolved it inside the root, `/proc/self/fd/N` (see
/// `safe_path`): mount(2) acts on exactly that directory, wherever a symlink in the
/// image would have led a plain path. Use the table's fstype (as source and type),
/// flags and data.
pub fn mount_kernel_fs(spec: &KernelMount, target: &Path) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "mount a kernel filesystem (proc, tmpfs, devpts, sysfs) inside the container"
    mount(
        Some(spec.fstype),
        target,
        Some(spec.fstype),
        spec.flags,
        spec.data,
    )
    .map_err(|source| RootfsError::Mount {
        fstype: spec.fstype.to_string(),
        target: PathBuf::from(spec.target),
        source,
    })
    // END SOLUTION
}
