//! Extended attributes: setxattr(2), getxattr(2) and listxattr(2), which nix does not
//! wrap.
//!
//! fsetxattr(2) refuses an `O_PATH` descriptor, and the engine holds `O_PATH`
//! descriptors (see the `safe_path` module), of symlinks and device nodes too. So all
//! calls go through the descriptor's magic link, `/proc/self/fd/N`: the kernel jumps
//! from it to exactly the file the descriptor refers to and follows nothing further —
//! a symlink's own attributes are set, never its target's.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStringExt;

/// The NUL-terminated `/proc/self/fd/N` of `file`, and `name` as a C string.
fn c_strings(file: BorrowedFd<'_>, name: &str) -> nix::Result<(CString, CString)> {
    let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    let name = CString::new(name).map_err(|_| nix::errno::Errno::EINVAL)?;
    Ok((path, name))
}

/// Sets the extended attribute `name` of the file `file` refers to (see
/// [setxattr(2)](https://man7.org/linux/man-pages/man2/setxattr.2.html)), creating
/// or replacing it. `file` may be an `O_PATH` descriptor.
pub fn set_xattr(file: BorrowedFd<'_>, name: &str, value: &[u8]) -> nix::Result<()> {
    let (path, name) = c_strings(file, name)?;
    // SAFETY: `path` and `name` are valid NUL-terminated strings and `value` a valid
    // buffer of `value.len()` bytes, all outliving the call; the kernel only reads them.
    let result = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    nix::errno::Errno::result(result).map(drop)
}

/// The value of the extended attribute `name` of the file `file` refers to (see
/// [getxattr(2)](https://man7.org/linux/man-pages/man2/getxattr.2.html)); `Ok(None)`
/// when it has none. `file` may be an `O_PATH` descriptor.
pub fn get_xattr(file: BorrowedFd<'_>, name: &str) -> nix::Result<Option<Vec<u8>>> {
    let (path, name) = c_strings(file, name)?;
    // XATTR_SIZE_MAX: no value is larger, so one call always fits.
    let mut value = vec![0u8; 64 * 1024];
    // SAFETY: `path` and `name` are valid NUL-terminated strings, and `value` a
    // writable buffer of `value.len()` bytes; the kernel writes at most that many.
    let result = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    match nix::errno::Errno::result(result) {
        Ok(len) => {
            value.truncate(len as usize);
            Ok(Some(value))
        }
        Err(nix::errno::Errno::ENODATA) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The names of the extended attributes of the file `file` refers to (see
/// [listxattr(2)](https://man7.org/linux/man-pages/man2/listxattr.2.html)), in the
/// order the filesystem gives them. `file` may be an `O_PATH` descriptor.
pub fn list_xattrs(file: BorrowedFd<'_>) -> nix::Result<Vec<OsString>> {
    let path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .map_err(|_| nix::errno::Errno::EINVAL)?;
    // XATTR_LIST_MAX: no list is longer, so one call always fits.
    let mut list = vec![0u8; 64 * 1024];
    // SAFETY: `path` is a valid NUL-terminated string and `list` a writable buffer
    // of `list.len()` bytes; the kernel writes at most that many.
    let result = unsafe { libc::listxattr(path.as_ptr(), list.as_mut_ptr().cast(), list.len()) };
    let len = nix::errno::Errno::result(result)? as usize;
    // The names, each NUL-terminated, one after the other.
    Ok(list[..len]
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsString::from_vec(name.to_vec()))
        .collect())
}
