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
    let how = nix::fcntl::OpenHow::new().flags(flags).resolve(resolve);
    let dirfd = dirfd.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    let fd = nix::fcntl::openat2(dirfd, path, how)?;
    // SAFETY: openat2 succeeded, so `fd` is a new descriptor that nothing else owns;
    // the OwnedFd becomes its only owner and closes it once.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}
