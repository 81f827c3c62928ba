//! The few system calls std does not wrap, each in one small safe function.
//!
//! This is the only module allowed `unsafe`; every block says why it is sound.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Real and effective user and group ids (see getuid(2), getgid(2), geteuid(2), getegid(2)).
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// The process's user and group ids; these calls cannot fail.
pub fn ids() -> Ids {
    // SAFETY: these calls take no arguments, touch no memory of ours and always succeed.
    unsafe {
        Ids {
            uid: libc::getuid(),
            gid: libc::getgid(),
            euid: libc::geteuid(),
            egid: libc::getegid(),
        }
    }
}

/// The supplementary group ids (see getgroups(2)).
pub fn groups() -> io::Result<Vec<u32>> {
    // The kernel caps the list at NGROUPS_MAX (65536); ask for the size first.
    // SAFETY: with a size of 0 the kernel only returns the count and writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let count = usize::try_from(count).map_err(|_| io::Error::last_os_error())?;
    let mut groups: Vec<libc::gid_t> = vec![0; count];
    // SAFETY: the buffer holds `count` gids and we pass that length; the kernel writes at most that.
    let written = unsafe { libc::getgroups(count as libc::c_int, groups.as_mut_ptr()) };
    let written = usize::try_from(written).map_err(|_| io::Error::last_os_error())?;
    groups.truncate(written);
    Ok(groups)
}

/// The UTS namespace's host name (see gethostname(2)), as raw bytes.
pub fn hostname() -> io::Result<Vec<u8>> {
    // Host names are at most 64 bytes (HOST_NAME_MAX); one more for the terminating NUL.
    let mut buf = [0u8; 256];
    // SAFETY: we pass the buffer's real length; glibc writes at most that many bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(buf[..len].to_vec())
}

/// The session id of this process (see getsid(2)).
pub fn session_id() -> io::Result<i32> {
    // SAFETY: getsid only reads its integer argument; 0 means "this process".
    let sid = unsafe { libc::getsid(0) };
    if sid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sid)
}

/// The process group id of this process (see getpgid(2)).
pub fn process_group() -> io::Result<i32> {
    // SAFETY: getpgid only reads its integer argument; 0 means "this process".
    let pgid = unsafe { libc::getpgid(0) };
    if pgid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pgid)
}

/// Whether `fd` is an open file descriptor (see fcntl(2), `F_GETFD`).
pub fn is_fd_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; on a closed fd it fails with EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Creates a block device node `path` for `major:minor`, mode 0600 (see mknod(2)).
pub fn mknod_block(path: &Path, major: u32, minor: u32) -> io::Result<()> {
    let path = c_path(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mknod(path.as_ptr(), libc::S_IFBLK | 0o600, dev) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Removes the empty directory `name` inside the open directory `parent` (see unlinkat(2)).
///
/// Works through a file descriptor so that it still reaches the directory after a chroot.
pub fn rmdir_at(parent: &File, name: &str) -> io::Result<()> {
    let name = c_path(Path::new(name))?;
    // SAFETY: `parent` is an open descriptor for the duration of the call and `name` is a
    // NUL-terminated string that outlives it.
    let rc = unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}
