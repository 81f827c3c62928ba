//! A filesystem of the container's own: a mount namespace, a new root, and the
//! kernel filesystems a program expects to find in it.
//!
//! Chapter 1 (chapters/01-filesystem.md). The order matters and is runc's:
//! 1. a new mount namespace (a flag of clone(2)), so mounts stay in the container;
//! 2. every mount made private, recursively — on a systemd host `/` is *shared*,
//!    and without this the container's mounts would appear on the host;
//! 3. the root switched with pivot_root(2) (or chroot(2) with `--no-pivot`);
//! 4. /proc, /dev (with its device nodes) and a read-only /sys mounted inside.

mod dev;
mod mounts;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

pub use dev::{DevLink, DeviceNode, DEVICES, DEV_LINKS};
pub use mounts::{mount_kernel_fs, KernelMount, KERNEL_MOUNTS};

/// Where a process's paths lead: into the container's root, or — before chapter 1
/// is done — still to the host's files, with the rootfs as a directory among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootView {
    /// `/` is the container's rootfs.
    Isolated,
    /// `/` is still the host's; the rootfs is this directory.
    Host(PathBuf),
}

impl RootView {
    /// The directory that holds the container's `/` in this process's view.
    pub fn path(&self) -> &Path {
        match self {
            RootView::Isolated => Path::new("/"),
            RootView::Host(dir) => dir,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("failed to make all mounts private (mount(2) with MS_REC|MS_PRIVATE on /)")]
    MakePrivate(#[source] Errno),
    #[error("failed to bind-mount the rootfs {path} onto itself")]
    BindRoot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to switch the root to {path} with pivot_root(2)")]
    PivotRoot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to detach the old root {path}")]
    DetachOldRoot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to chroot(2) into {path}")]
    Chroot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to remove {path} in the container")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create {path} in the container")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount {fstype} on {target}")]
    Mount {
        fstype: &'static str,
        target: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to create device node {path}")]
    Device {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to change directory to {path}")]
    Chdir {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

impl RootfsError {
    /// What usually causes this failure, for the hint line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RootfsError::PivotRoot {
                source: Errno::EINVAL,
                ..
            } => Some("pivot_root needs the new root to be a mount point (bind-mount it onto itself first) and the mounts to be private; a rootfs on a ramfs/initramfs cannot pivot: use --no-pivot (chapter 1)"),
            RootfsError::PivotRoot {
                source: Errno::EBUSY,
                ..
            } => Some("the new root is still on the current root's mount: bind-mount the rootfs onto itself first (chapter 1)"),
            RootfsError::MakePrivate(Errno::EPERM) | RootfsError::Mount { source: Errno::EPERM, .. } => {
                Some("mounting needs root and a mount namespace of the container's own (chapter 1)")
            }
            _ => None,
        }
    }
}

/// The namespace flag chapter 1 adds to clone(2): a mount namespace of its own.
pub fn mount_namespace() -> CloneFlags {
    // BEGIN SOLUTION ch01 "ask clone(2) for a new mount namespace (CLONE_NEWNS)"
    CloneFlags::CLONE_NEWNS
    // BEGIN STUB
    // crate::note::chapter_not_done(1, "filesystem", "the container sees the host's files");
    // CloneFlags::empty()
    // END SOLUTION
}

/// Moves the calling process (the container's first process) into its rootfs.
///
/// Without a mount namespace of its own the process would mount on the host, so
/// then nothing is mounted and the rootfs stays a directory among the host's files.
pub fn enter(
    rootfs: &Path,
    no_pivot: bool,
    namespaces: CloneFlags,
) -> Result<RootView, RootfsError> {
    if !namespaces.contains(CloneFlags::CLONE_NEWNS) {
        return Ok(RootView::Host(rootfs.to_path_buf()));
    }
    make_mounts_private()?;
    if no_pivot {
        log::debug!("entering {} with chroot (--no-pivot)", rootfs.display());
        chroot_into(rootfs)?;
    } else {
        log::debug!("entering {} with pivot_root", rootfs.display());
        pivot_into(rootfs)?;
    }
    for kernel_mount in KERNEL_MOUNTS {
        mount_kernel_fs(kernel_mount)?;
    }
    dev::populate()?;
    Ok(RootView::Isolated)
}

/// Makes every mount in this namespace private, recursively (see
/// mount_namespaces(7), "shared subtree"): mount(2) with `MS_REC | MS_PRIVATE` on `/`.
/// From then on nothing mounted here propagates to the host, nor the host's to here.
pub fn make_mounts_private() -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "make every mount private, recursively, before mounting anything"
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(RootfsError::MakePrivate)
    // END SOLUTION
}

/// The directory under the new root where pivot_root(2) parks the old root.
const OLD_ROOT: &str = ".ferry-old-root";

/// Makes `new_root` the process's `/` with pivot_root(2), then detaches and removes
/// the old root so no path leads back to the host's files.
///
/// Steps: bind-mount `new_root` onto itself (pivot_root needs a mount point; use
/// `bind_onto_itself`);
/// create `new_root/OLD_ROOT`; `pivot_root(new_root, new_root/OLD_ROOT)`;
/// chdir to `/`; unmount `/OLD_ROOT` with `MNT_DETACH`; remove the directory.
pub fn pivot_into(new_root: &Path) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "switch the root with pivot_root(2) and detach the old one"
    bind_onto_itself(new_root)?;
    let put_old = new_root.join(OLD_ROOT);
    std::fs::create_dir_all(&put_old).map_err(|source| RootfsError::Create {
        path: put_old.clone(),
        source,
    })?;
    nix::unistd::pivot_root(new_root, &put_old).map_err(|source| RootfsError::PivotRoot {
        path: new_root.to_path_buf(),
        source,
    })?;
    change_dir(Path::new("/"))?;
    let old_root = Path::new("/").join(OLD_ROOT);
    umount2(&old_root, MntFlags::MNT_DETACH).map_err(|source| RootfsError::DetachOldRoot {
        path: old_root.clone(),
        source,
    })?;
    std::fs::remove_dir(&old_root).map_err(|source| RootfsError::Remove {
        path: old_root,
        source,
    })
    // END SOLUTION
}

/// Makes `new_root` the process's `/` with chroot(2) only (`--no-pivot`): bind it
/// onto itself, chdir into it, chroot("."), chdir("/").
///
/// Weaker than pivot_root: the host's root stays mounted in the namespace, and a
/// process allowed to call chroot can climb back out (chapter 1 shows how). The
/// rootfs is still bind-mounted onto itself first, so that `/` is a mount of its
/// own whose flags later chapters can change (read-only, nodev).
pub fn chroot_into(new_root: &Path) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "enter the rootfs with chroot(2) (the --no-pivot path)"
    bind_onto_itself(new_root)?;
    change_dir(new_root)?;
    nix::unistd::chroot(".").map_err(|source| RootfsError::Chroot {
        path: new_root.to_path_buf(),
        source,
    })?;
    change_dir(Path::new("/"))
    // END SOLUTION
}

/// Bind-mounts `dir` onto itself (recursively), making it a mount point.
pub(crate) fn bind_onto_itself(dir: &Path) -> Result<(), RootfsError> {
    mount(
        Some(dir),
        dir,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| RootfsError::BindRoot {
        path: dir.to_path_buf(),
        source,
    })
}

/// chdir(2), with the path in the error.
pub(crate) fn change_dir(path: &Path) -> Result<(), RootfsError> {
    nix::unistd::chdir(path).map_err(|source| RootfsError::Chdir {
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `path` and its parents inside the container (like `mkdir -p`).
pub(crate) fn create_dirs(path: &Path) -> Result<(), RootfsError> {
    std::fs::create_dir_all(path).map_err(|source| RootfsError::Create {
        path: path.to_path_buf(),
        source,
    })
}
