//! Paths the container must not read or change, and devices it must not open.
//!
//! /proc and /sys expose the host kernel: some files leak what the host does
//! (masked: they read as empty), others would reconfigure it (read-only). Device
//! nodes are guarded by mount flags: every place the container can write is
//! mounted `nodev`, so a node it makes with mknod(2) cannot be opened, and the
//! default devices are bind mounts of their own that stay usable.
//!
//! Chapter 4, part B (chapters/04b-hardening.md).

use std::path::Path;

use nix::mount::{mount, MsFlags};

use super::PrivilegeError;
use crate::rootfs::DEVICES;
use crate::safe_path::{Kind, Resolved, Root};

/// Paths that read as empty inside a container (Docker's list; those that exist).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths that stay readable but cannot be written.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The kernel filesystem each masked or read-only path must be on, by its first
/// component (statfs(2) magic numbers, see statfs(2)).
const KERNEL_FILESYSTEMS: &[(&str, &str, nix::sys::statfs::FsType)] = &[
    ("/proc", "proc", nix::sys::statfs::PROC_SUPER_MAGIC),
    ("/sys", "sysfs", nix::sys::statfs::SYSFS_MAGIC),
];

/// Resolves a path of the tables above inside the container's root, failing
/// closed: no symlink on the way, and its top directory must really be the kernel
/// filesystem (a rootfs whose /proc is not procfs would otherwise get its "masks"
/// on some other directory and an unmasked procfs elsewhere). `Ok(None)` only when
/// the kernel itself has no such file (an older or newer kernel, no ACPI).
pub fn kernel_path(path: &str) -> Result<Option<Resolved>, PrivilegeError> {
    let root = Root::open(Path::new("/"))?;
    let (top, fstype, magic) = KERNEL_FILESYSTEMS
        .iter()
        .find(|(top, _, _)| Path::new(path).starts_with(top))
        .ok_or_else(|| PrivilegeError::NotKernelFs {
            path: path.into(),
            expected: "proc or sysfs",
        })?;
    let top_dir = root.require(Path::new(top), Kind::Directory)?;
    let on_kernel_fs =
        nix::sys::statfs::fstatfs(top_dir.fd()).is_ok_and(|stat| stat.filesystem_type() == *magic);
    if !on_kernel_fs {
        return Err(PrivilegeError::NotKernelFs {
            path: top.into(),
            expected: fstype,
        });
    }
    Ok(root.resolve_no_symlinks(Path::new(path), Kind::DirectoryOrFile)?)
}

fn mount_error(target: &Path) -> impl FnOnce(nix::Error) -> PrivilegeError + '_ {
    move |source| PrivilegeError::Mount {
        target: target.to_path_buf(),
        source,
    }
}

/// Hides each existing path of `paths`: a directory gets an empty read-only tmpfs
/// on top, a file gets /dev/null bind-mounted on top (see mount(2)).
pub fn mask_paths(paths: &[String]) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "mask paths: an empty read-only tmpfs on directories, /dev/null on files"
    for path in paths.iter().map(Path::new) {
        let Some(target) = kernel_path(&path.to_string_lossy())? else {
            continue;
        };
        if target.is_dir() {
            mount(
                Some("tmpfs"),
                &target.fd_path(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(mount_error(path))?;
        } else {
            mount(
                Some("/dev/null"),
                &target.fd_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(mount_error(path))?;
        }
    }
    Ok(())
    // BEGIN STUB
    // crate::note::chapter_not_done(4, "privileges, part B", "/proc/kcore and friends are not masked");
    // Ok(())
    // END SOLUTION
}

/// Makes each existing path of `paths` read-only: bind-mount it onto itself (a
/// mount of its own), then remount that bind mount with `MS_RDONLY` — flags of a
/// bind mount can only be changed by a remount. Keep `nosuid,nodev,noexec`.
pub fn make_readonly(paths: &[String]) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "make paths read-only: bind-mount onto itself, then remount read-only"
    let locked = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for path in paths.iter().map(Path::new) {
        let Some(target) = kernel_path(&path.to_string_lossy())? else {
            continue;
        };
        mount(
            Some(&target.fd_path()),
            &target.fd_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(mount_error(path))?;
        // Resolve again: the descriptor still points into the mount below.
        let Some(bound) = kernel_path(&path.to_string_lossy())? else {
            continue;
        };
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked;
        mount(
            None::<&str>,
            &bound.fd_path(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .map_err(mount_error(path))?;
    }
    Ok(())
    // BEGIN STUB
    // crate::note::chapter_not_done(4, "privileges, part B", "/proc/sys and friends stay writable");
    // Ok(())
    // END SOLUTION
}

/// The per-mount flags `path`'s mount has now (see statvfs(3)). A remount replaces
/// them all, so keep what was there (a rootfs on a `nosuid,noexec` mount stays so).
pub fn current_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(stat) = statvfs(path) else {
        return MsFlags::empty();
    };
    let kept = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    kept.iter()
        .filter(|(stat_flag, _)| stat.flags().contains(*stat_flag))
        .fold(MsFlags::empty(), |flags, (_, mount_flag)| {
            flags | *mount_flag
        })
}

/// Makes device nodes the container creates useless, keeping the default ones:
/// bind-mount each node of [`DEVICES`] onto itself (its own mount, without
/// `nodev`), then remount /dev (a tmpfs) and `/` (the rootfs bind mount) with
/// `MS_NODEV` — `/` also `MS_RDONLY` with `--read-only`, and with the flags it has
/// already ([`current_flags`]), since a remount replaces them all.
pub fn seal_devices(read_only_root: bool) -> Result<(), PrivilegeError> {
    // BEGIN SOLUTION ch04 "seal devices: bind the default nodes, remount /dev and / nodev"
    for device in DEVICES {
        let node = Path::new(device.path);
        mount(
            Some(node),
            node,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(mount_error(node))?;
    }
    let dev = Path::new("/dev");
    let dev_flags =
        MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_NODEV;
    mount(
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        dev_flags,
        Some(crate::rootfs::DEV_TMPFS_OPTIONS),
    )
    .map_err(mount_error(dev))?;
    let root = Path::new("/");
    let mut root_flags =
        current_flags(root) | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NODEV;
    if read_only_root {
        root_flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, root, None::<&str>, root_flags, None::<&str>).map_err(mount_error(root))
    // BEGIN STUB
    // crate::note::chapter_not_done(4, "privileges, part B", "device nodes the container makes can be opened");
    // Ok(())
    // END SOLUTION
}
