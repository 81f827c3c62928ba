//! Files: openat2(2), the resolution the `safe_path` module builds on.

/// Opens `path` relative to `dirfd` (the current directory when `None`) with
/// openat2(2), which resolves the path as `resolve` says (`RESOLVE_IN_ROOT`,
/// `RESOLVE_NO_SYMLINKS`, ...; see the `safe_path` module). A file it creates
/// (`O_CREAT`) gets mode 0644 before the umask.
pub fn openat2(
    dirfd: Option<std::os::fd::BorrowedFd<'_>>,
    path: &std::path::Path,
    flags: nix::fcntl::OFlag,
    resolve: nix::fcntl::ResolveFlag,
) -> nix::Result<std::os::fd::OwnedFd> {
    openat2_with_mode(dirfd, path, flags, resolve, 0o644)
}

/// Like [`openat2`], but a file it creates (`O_CREAT`) gets `mode` before the umask.
pub fn openat2_with_mode(
    dirfd: Option<std::os::fd::BorrowedFd<'_>>,
    path: &std::path::Path,
    flags: nix::fcntl::OFlag,
    resolve: nix::fcntl::ResolveFlag,
    mode: u32,
) -> nix::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut how = nix::fcntl::OpenHow::new().flags(flags).resolve(resolve);
    if flags.contains(nix::fcntl::OFlag::O_CREAT) {
        // openat2 refuses a mode unless it creates a file.
        how = how.mode(nix::sys::stat::Mode::from_bits_truncate(mode));
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

/// Attributes of mount_setattr(2).
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// Makes the mount at `mount` and every mount below it `nodev` and `nosuid` — and
/// read-only with `read_only` — in one call (mount_setattr(2) with `AT_RECURSIVE`;
/// Linux 5.12). A volume is a place the container can write: without `nodev` a
/// device node it makes there with mknod(2) would open the host's device (chapter 4
/// guards devices with mount flags), and without `nosuid` a setuid file there
/// would give privileges inside the container (the flag is the mount's: it does not
/// change the files themselves on the host). A bind remount would change only
/// the top mount, not the mounts inside the volume's directory. `mount` is an
/// `O_PATH` descriptor of the mount's root.
pub fn restrict_mount_tree(mount: std::os::fd::BorrowedFd<'_>, read_only: bool) -> nix::Result<()> {
    let mut set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
    if read_only {
        set |= MOUNT_ATTR_RDONLY;
    }
    set_mount_tree_attributes(mount, set)
}

/// Makes the mount tree at `mount` `noexec` too (a spec's bind with `noexec`).
pub fn forbid_exec_in_mount_tree(mount: std::os::fd::BorrowedFd<'_>) -> nix::Result<()> {
    set_mount_tree_attributes(mount, MOUNT_ATTR_NOEXEC)
}

/// mount_setattr(2) of `set` on the whole tree at `mount`.
fn set_mount_tree_attributes(mount: std::os::fd::BorrowedFd<'_>, set: u64) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let attr = MountAttr {
        attr_set: set,
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
