//! Files: openat2(2), the resolution the `safe_path` module builds on.

/// Opens `path` relative to `dirfd` (the current directory when `None`) with
/// openat2(2), which resolves the path as `resolve` says (`RESOLVE_IN_ROOT`,
/// `RESOLVE_NO_SYMLINKS`, ...; see the `safe_path` module).
pub fn openat2(
    dirfd: Option<std::os::fd::BorrowedFd<'_>>,
    path: &std::path::Path,
    flags: nix::fcntl::OFlag,
    resolve: nix::fcntl::ResolveFlag,
) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut how = nix::fcntl::OpenHow::new().flags(flags).resolve(resolve);
    if flags.contains(nix::fcntl::OFlag::O_CREAT) {
        // New files get mode 0644 before the umask; openat2 refuses a mode otherwise.
        how = how.mode(nix::sys::stat::Mode::from_bits_truncate(0o644));
    }
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let fd = nix::fcntl::openat2(dirfd, path, how)?;
    // SAFETY: openat2 succeeded, so `fd` is a new descriptor that nothing else owns;
    // the OwnedFd becomes its only owner and closes it once.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// The kernel's `struct mount_attr` (see mount_setattr(2)).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `MOUNT_ATTR_RDONLY` of mount_setattr(2).
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// Makes the mount at `mount` and every mount below it read-only, in one call
/// (mount_setattr(2) with `AT_RECURSIVE`; Linux 5.12). A bind remount changes only
/// the top mount, so a `-v DIR:/x:ro` with mounts inside DIR would stay writable
/// below them without this. `mount` is an `O_PATH` descriptor of the mount's root.
pub fn set_read_only_recursively(mount: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // correctly laid out mount_attr that outlives the call, and its size is passed;
    // the kernel only reads both.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    nix::errno::Errno::result(result).map(drop)
}
