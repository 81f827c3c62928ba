//! A filesystem of the container's own: a mount namespace, a new root, and the
//! kernel filesystems a program expects to find in it.
//!
//! Chapter 1 (chapters/01-filesystem.md). The order matters and is runc's:
//! 1. a new mount namespace (a flag of clone(2)), so mounts stay in the container;
//! 2. every mount made private, recursively — on a systemd host `/` is *shared*,
//!    and without this the container's mounts would appear on the host;
//! 3. the rootfs bind-mounted onto itself, and /proc, /dev (a tmpfs), /dev/pts,
//!    /dev/shm, a read-only /sys and the engine's files mounted inside it, onto
//!    targets resolved inside the rootfs, never out of it (`safe_path`);
//! 4. the root switched with pivot_root(2) (or MS_MOVE and chroot(2) with
//!    `--no-pivot`), and /dev filled with its device nodes.
//!
//! Nothing is created or written in the rootfs itself: it is the image's.

mod binds;
mod dev;
mod mounts;
pub mod options;
pub mod overlay;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::CloneFlags;

pub use binds::bind_directory;
pub use dev::{DevLink, DeviceNode, DEVICES, DEV_LINKS};
pub use mounts::{mount_kernel_fs, KernelMount, DEV_TMPFS_OPTIONS, KERNEL_MOUNTS};
pub use overlay::{mount_overlay, Overlay};

use crate::safe_path::{Kind, Resolved, Root, SafePathError};

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
    #[error("failed to open the old root before pivot_root(2)")]
    OpenOldRoot {
        #[source]
        source: std::io::Error,
    },
    #[error("failed to move the rootfs {path} onto / (mount(2) with MS_MOVE)")]
    MoveRoot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to bind-mount onto {target} in the container")]
    Bind {
        target: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("the overlay path {path} holds ':', ',' or '\\', which overlayfs's mount options cannot carry")]
    OverlayPath { path: PathBuf },
    #[error(
        "the overlay of {layers} layers needs {length} bytes of mount options, more than a page"
    )]
    OverlayTooLong { layers: usize, length: usize },
    #[error("an image of {layers} layers needs the overlay (chapter 5) to be mounted")]
    OverlayNeeded { layers: usize },
    #[error("failed to bind-mount onto {target} in the container")]
    BindFile {
        target: String,
        #[source]
        source: Errno,
    },
    #[error(
        "{target} in the container's root {}, on the container's {fstype}: refusing to mount over it",
        how_it_leads(target, link)
    )]
    OntoKernelFs {
        target: String,
        fstype: &'static str,
        /// The symlink that led there, and where it points.
        link: Option<(PathBuf, String)>,
    },
    #[error("failed to read /proc/self/mountinfo")]
    MountInfo {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Unsafe(#[from] SafePathError),
    #[error("failed to chroot(2) into {path}")]
    Chroot {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to create {path} in the container")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount {fstype} on {target}")]
    Mount {
        fstype: String,
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

/// How a file target came to lie on a kernel filesystem, for the message.
fn how_it_leads(target: &str, link: &Option<(PathBuf, String)>) -> String {
    match link {
        Some((path, to)) if path.as_os_str() == target => format!("is a symlink to {to}"),
        Some((path, to)) => format!("leads through {} (a symlink to {to})", path.display()),
        None => "lies".to_string(),
    }
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
            RootfsError::Unsafe(error) => error.hint(),
            RootfsError::OntoKernelFs { .. } => Some(
                "the rootfs is crafted or broken: ferry binds its files inside the root, never over the container's /proc or /sys (chapter 1, \"the image is the attacker\")",
            ),
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

/// A bind mount into the container: a volume's directory (chapter 5), one of the
/// engine's files over the image's (`/etc/hostname`, chapter 2; `/etc/hosts` and
/// `/etc/resolv.conf`, chapter 8) or a device node (`--device`). The
/// image's own files are never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// On the host.
    pub source: PathBuf,
    /// Where it appears in the container.
    pub target: String,
    /// A directory (a volume) or not (a file, a device node).
    pub directory: bool,
    pub read_only: bool,
    /// `noexec`: nothing on it can be executed.
    pub no_exec: bool,
}

/// One mount of the container's root, in the runtime spec's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountEntry {
    /// A new instance of a kernel filesystem (proc, tmpfs, devpts, sysfs, mqueue).
    Kernel {
        target: String,
        fstype: String,
        flags: MsFlags,
        data: Option<String>,
    },
    /// A bind mount.
    Bind(Bind),
}

impl MountEntry {
    /// Where it appears in the container.
    pub fn target(&self) -> &str {
        match self {
            MountEntry::Kernel { target, .. } => target,
            MountEntry::Bind(bind) => &bind.target,
        }
    }
}

/// Where the container's root ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entered {
    pub view: RootView,
    /// Whether the container may write its root (an overlay: the writes land in its
    /// own layer), so that missing mount targets and workdirs can be created.
    pub writable: bool,
}

/// Moves the calling process (the container's first process) into its rootfs.
///
/// Without a mount namespace of its own the process would mount on the host, so
/// then nothing is mounted and the rootfs stays a directory among the host's files.
/// Otherwise, in runc's order: make every mount private; mount the overlay (chapter
/// 5) and make the root a mount point of its own; mount the kernel filesystems,
/// volumes and the engine's files onto targets resolved inside the root (never
/// following a symlink out of it); switch the root; fill /dev. Nothing is written
/// in the image: with an overlay the container's writes land in its upper layer.
/// `root_owned` says the root is the caller's own for this container (an OCI
/// bundle's, chapter 12), where missing mount targets are created, as runc does.
pub fn enter(
    rootfs: &Path,
    overlay: Option<&Overlay>,
    no_pivot: bool,
    namespaces: CloneFlags,
    mounts: &[MountEntry],
    root_owned: bool,
) -> Result<Entered, RootfsError> {
    // Without the overlay (or before chapter 5), the root is the image's directory.
    let lower = overlay
        .and_then(|o| o.lowers.first())
        .map_or(rootfs.to_path_buf(), PathBuf::clone);
    if !namespaces.contains(CloneFlags::CLONE_NEWNS) {
        return Ok(Entered {
            view: RootView::Host(lower),
            writable: false,
        });
    }
    make_mounts_private()?;
    let shortened = overlay.map(shorten_lowers);
    if let Some((_, Some(base))) = &shortened {
        // Relative lowerdir paths are resolved from the current directory.
        change_dir(base)?;
    }
    let overlay = shortened.as_ref().map(|(overlay, _)| overlay);
    let (root_dir, writable) = match overlay {
        Some(overlay) if overlay::mount_overlay(overlay, rootfs)? => (rootfs.to_path_buf(), true),
        Some(overlay) if overlay.lowers.len() > 1 => {
            return Err(RootfsError::OverlayNeeded {
                layers: overlay.lowers.len(),
            })
        }
        _ => (lower, root_owned),
    };
    // pivot_root needs the new root to be a mount point; later chapters also
    // change this mount's flags (nodev, read-only).
    bind_onto_itself(&root_dir)?;
    // Opened after the bind, so that every target below is on the new mount.
    let root = Root::open(&root_dir)?;
    for (at, entry) in mounts.iter().enumerate() {
        let may_create = writable || on_engine_tmpfs(&mounts[..at], entry.target());
        match entry {
            MountEntry::Kernel {
                target,
                fstype,
                flags,
                data,
            } => {
                let spec = KernelMount {
                    target,
                    fstype,
                    flags: *flags,
                    data: data.as_deref(),
                };
                mount_in_root(&root, &spec, may_create)?;
            }
            MountEntry::Bind(bind) => bind_in_root(&root, bind, may_create)?,
        }
    }
    if no_pivot {
        log::debug!(
            "entering {} with MS_MOVE and chroot (--no-pivot)",
            root_dir.display()
        );
        detach_host_kernel_fs(&root_dir)?;
        chroot_into(&root_dir)?;
    } else {
        log::debug!("entering {} with pivot_root", root_dir.display());
        pivot_into(&root_dir)?;
    }
    dev::populate()?;
    Ok(Entered {
        view: RootView::Isolated,
        writable,
    })
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

/// Makes `new_root` — already a mount point, the current directory's mount — the
/// process's `/` with pivot_root(2), then detaches the old root so no path leads
/// back to the host's files. Nothing is created in the rootfs.
///
/// Steps, as runc does them: open the old root (`/`) as a directory; chdir to
/// `new_root`; `pivot_root(".", ".")` — the old root ends up mounted on top of
/// the new one; fchdir(2) to the old root; unmount `.` with `MNT_DETACH`; chdir to `/`.
pub fn pivot_into(new_root: &Path) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "switch the root with pivot_root(2) and detach the old one"
    let old_root =
        std::fs::File::open("/").map_err(|source| RootfsError::OpenOldRoot { source })?;
    change_dir(new_root)?;
    nix::unistd::pivot_root(".", ".").map_err(|source| RootfsError::PivotRoot {
        path: new_root.to_path_buf(),
        source,
    })?;
    nix::unistd::fchdir(old_root.as_raw_fd()).map_err(|source| RootfsError::Chdir {
        path: PathBuf::from("(the old root)"),
        source,
    })?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|source| RootfsError::DetachOldRoot {
        path: PathBuf::from("/"),
        source,
    })?;
    change_dir(Path::new("/"))
    // END SOLUTION
}

/// Makes `new_root` — already a mount point — the process's `/` without
/// pivot_root (`--no-pivot`, for roots that cannot pivot, such as an initramfs), as
/// runc does: chdir into it, move its mount onto `/` (`MS_MOVE`), chroot("."),
/// chdir("/").
///
/// A bare chroot(2) can be climbed out of (chapter 1 shows the double-chroot
/// escape); after `MS_MOVE` the rootfs's mount covers the old `/`, so `..` from
/// the root leads back into the rootfs and the host's files are out of reach.
pub fn chroot_into(new_root: &Path) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "enter the rootfs with MS_MOVE and chroot(2) (the --no-pivot path)"
    change_dir(new_root)?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|source| {
        RootfsError::MoveRoot {
            path: new_root.to_path_buf(),
            source,
        }
    })?;
    nix::unistd::chroot(".").map_err(|source| RootfsError::Chroot {
        path: new_root.to_path_buf(),
        source,
    })?;
    change_dir(Path::new("/"))
    // END SOLUTION
}

/// Mounts one kernel filesystem onto its target inside `root`, resolved without
/// following symlinks. A missing target is created only when `may_create` says it
/// lies on a filesystem the engine mounted itself (such as /dev's tmpfs); every
/// other target must already exist in the image, which ferry never writes.
pub fn mount_in_root(root: &Root, spec: &KernelMount, may_create: bool) -> Result<(), RootfsError> {
    let target = mount_target(root, Path::new(spec.target), may_create)?;
    log::debug!("mounting {} on {}", spec.fstype, spec.target);
    mount_kernel_fs(spec, &target.fd_path())
}

/// Many layers: overlay's mount data is one page, and 60 layers with paths such as
/// `/var/lib/ferry/images/l/ABC…` may not fit. When every lower sits in one
/// directory (the image store's `l/`, docker's overlay2 trick), the lowers become
/// names relative to it and the caller changes into it before mounting.
fn shorten_lowers(overlay: &Overlay) -> (Overlay, Option<PathBuf>) {
    let parent = overlay
        .lowers
        .first()
        .and_then(|l| l.parent())
        .map(Path::to_path_buf);
    match parent {
        Some(parent)
            if overlay.lowers.len() > 1
                && overlay.lowers.iter().all(|l| l.parent() == Some(&parent)) =>
        {
            let lowers = overlay
                .lowers
                .iter()
                .map(|l| PathBuf::from(l.file_name().unwrap_or_default()))
                .collect();
            let short = Overlay {
                lowers,
                ..overlay.clone()
            };
            (short, Some(parent))
        }
        _ => (overlay.clone(), None),
    }
}

/// Whether `target` lies on a tmpfs mounted by one of the `earlier` entries (such
/// as /dev/pts on /dev's tmpfs): then ferry may create it, since it is not the image.
fn on_engine_tmpfs(earlier: &[MountEntry], target: &str) -> bool {
    earlier.iter().any(|entry| match entry {
        MountEntry::Kernel {
            target: parent,
            fstype,
            ..
        } => fstype == "tmpfs" && Path::new(target).starts_with(parent) && parent != target,
        MountEntry::Bind(_) => false,
    })
}

/// Resolves a mount target inside `root`: a plain directory, reached without any
/// symlink. A missing one is created only when `may_create` says the container may
/// write there (its overlay, or a filesystem of the engine's own); in the image it
/// is an error.
fn mount_target(root: &Root, target: &Path, may_create: bool) -> Result<Resolved, RootfsError> {
    if let Some(resolved) = root.resolve_no_symlinks(target, Kind::Directory)? {
        return Ok(resolved);
    }
    if !may_create {
        return Err(SafePathError::Missing {
            path: target.to_path_buf(),
        }
        .into());
    }
    Ok(root.create_dirs(target)?)
}

/// Bind-mounts `bind.source` onto its target inside `root`. A directory (a volume)
/// needs a directory there, reached without any symlink, created when
/// `may_create`. A file or device node needs a plain file there, found as a
/// process in the root would find it — a symlink followed inside the root, as runc
/// does, so an image's `/etc/resolv.conf -> ../run/...` gets the bind where its
/// link leads — and created when `may_create`; otherwise a missing one is left out
/// (creating it would write into the image). A file on the container's /proc or
/// /sys is refused: a bind over one would fake what the kernel says there (runc's
/// CVE-2019-19921).
fn bind_in_root(root: &Root, bind: &Bind, may_create: bool) -> Result<(), RootfsError> {
    let path = Path::new(&bind.target);
    if bind.directory {
        let target = mount_target(root, path, may_create)?;
        let retarget = || Ok(root.require(path, Kind::Directory)?);
        log::debug!("binding {} on {}", bind.source.display(), bind.target);
        binds::bind_directory(&bind.source, &target, bind.read_only, &retarget)?;
        if bind.no_exec {
            let bound = retarget()?;
            crate::sys::forbid_exec_in_mount_tree(bound.fd()).map_err(|source| {
                RootfsError::Bind {
                    target: bound.path.clone(),
                    source,
                }
            })?;
        }
        return Ok(());
    }
    let Some(target) = root.file_in_root(path, may_create)? else {
        log::debug!("{} is not in the image: not bound", bind.target);
        return Ok(());
    };
    refuse_kernel_fs(root, bind, &target)?;
    log::debug!("binding {} on {}", bind.source.display(), bind.target);
    mount(
        Some(&bind.source),
        &target.fd_path(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|source| RootfsError::BindFile {
        target: bind.target.clone(),
        source,
    })?;
    if bind.read_only || bind.no_exec {
        let bound = root
            .file_in_root(path, false)?
            .ok_or_else(|| SafePathError::Missing {
                path: path.to_path_buf(),
            })?;
        let error = |source| RootfsError::BindFile {
            target: bind.target.clone(),
            source,
        };
        crate::sys::restrict_mount_tree(bound.fd(), bind.read_only).map_err(error)?;
        if bind.no_exec {
            crate::sys::forbid_exec_in_mount_tree(bound.fd()).map_err(error)?;
        }
    }
    Ok(())
}

/// Refuses a file bind whose target lies on procfs or sysfs (fstatfs(2) of the
/// resolved descriptor), naming the symlink that led there when one did.
fn refuse_kernel_fs(root: &Root, bind: &Bind, target: &Resolved) -> Result<(), RootfsError> {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    let kind = fstatfs(target.fd())
        .map(|stat| stat.filesystem_type())
        .map_err(|source| RootfsError::BindFile {
            target: bind.target.clone(),
            source,
        })?;
    let fstype = match kind {
        PROC_SUPER_MAGIC => "procfs",
        SYSFS_MAGIC => "sysfs",
        _ => return Ok(()),
    };
    let link = match root.resolve_no_symlinks(Path::new(&bind.target), Kind::RegularFile) {
        Err(SafePathError::Symlink { path, target }) => Some((path, target)),
        _ => None,
    };
    Err(RootfsError::OntoKernelFs {
        target: bind.target.clone(),
        fstype,
        link,
    })
}

/// Detaches the host's procfs and sysfs mounts outside `rootfs` (runc does the same
/// for `--no-pivot`): the host's root stays in this namespace under the rootfs's
/// mount, and a fully visible host /proc or /sys must not be among what it holds.
fn detach_host_kernel_fs(rootfs: &Path) -> Result<(), RootfsError> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|source| RootfsError::MountInfo { source })?;
    let mut points: Vec<PathBuf> = crate::mountinfo::parse(&text)
        .into_iter()
        .filter(|m| m.fstype == "proc" || m.fstype == "sysfs")
        .map(|m| PathBuf::from(m.mount_point))
        .filter(|point| !point.starts_with(rootfs))
        .collect();
    // Deepest first, so that a mount under another goes before it.
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    for point in points {
        match umount2(&point, MntFlags::MNT_DETACH) {
            // EINVAL: already gone with a mount above it.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(source) => {
                return Err(RootfsError::DetachOldRoot {
                    path: point,
                    source,
                })
            }
        }
    }
    Ok(())
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
