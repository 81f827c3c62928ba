//! Paths inside a container's root, resolved without ever leaving it.
//!
//! Chapter 1 (chapters/01-filesystem.md, "The image is the attacker"). A rootfs is
//! somebody else's directory: its `/proc` may be a symlink to `/etc`, its
//! `/etc/passwd` a symlink to `/dev/zero`, its `/etc/hostname` a FIFO. A path joined
//! as a string (`rootfs + "/proc"`) follows all of that — out of the rootfs and onto
//! the host (runc's CVE-2019-16884 and CVE-2019-19921 were exactly this). So every
//! path the engine opens or mounts inside a root goes through this module:
//!
//! * resolution with openat2(2) and `RESOLVE_IN_ROOT`: `..` and absolute symlinks
//!   stop at the root, as they would for a process chrooted there;
//! * directory mount targets also with `RESOLVE_NO_SYMLINKS`: a symlink where a
//!   directory is expected is refused, never followed (a file bind's target is
//!   found as a process in the root would find it: [`Root::file_in_root`]);
//! * the result is an `O_PATH` descriptor, and the engine acts on the descriptor
//!   (mount onto `/proc/self/fd/N`, `fchdir`, reopen to read) — never on a path string
//!   re-joined afterwards, which a second lookup could resolve differently;
//! * files read from the root must be regular files, are opened non-blocking and
//!   are read with a size cap.
//!
//! Later chapters reuse it: volumes (chapter 5) and layer unpacking (chapter 6).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::stat::{fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::sys;

/// At most `cap` bytes of `reader`, all of them; `None` when there are more.
pub fn read_with_cap(reader: impl Read, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(cap + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= cap).then_some(bytes))
}

/// Why [`read_host_file`] refused a file.
#[derive(Debug, thiserror::Error)]
pub enum HostFileError {
    #[error("it is not a regular file")]
    NotRegular,
    #[error("it is larger than {cap} bytes")]
    TooLarge { cap: u64 },
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads a file outside any container's root that the engine did not write — one
/// of the host's (`/etc/resolv.conf`), or one its caller names (a Dockerfile, a
/// bundle's `config.json`) — as warily as one inside it ([`Root::read_file`]): a
/// regular file (a FIFO in its place would block forever, `/dev/zero` never end),
/// opened without blocking, at most `cap` bytes.
pub fn read_host_file(path: &Path, cap: u64) -> Result<Vec<u8>, HostFileError> {
    read_host_file_checked(path, cap, |_| Ok(()))
}

/// [`read_host_file`], with `check` asked about the file (its owner, its mode)
/// before anything is read.
pub fn read_host_file_checked(
    path: &Path,
    cap: u64,
    check: impl FnOnce(&std::fs::Metadata) -> Result<(), HostFileError>,
) -> Result<Vec<u8>, HostFileError> {
    // Looked at through an O_PATH descriptor first: opening a device node to read
    // it can already do something (a watchdog starts counting).
    let found = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)?;
    let metadata = found.metadata()?;
    if !metadata.is_file() {
        return Err(HostFileError::NotRegular);
    }
    check(&metadata)?;
    // Reopened through the descriptor: the same file, not a second lookup.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", found.as_raw_fd()))?;
    read_with_cap(file, cap)?.ok_or(HostFileError::TooLarge { cap })
}

/// A path in a root that cannot be used safely.
#[derive(Debug, thiserror::Error)]
pub enum SafePathError {
    #[error("failed to open the root {root}")]
    OpenRoot {
        root: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{path} in the container's root is a symlink to {target}: refusing to follow it")]
    Symlink { path: PathBuf, target: String },
    #[error("{path} in the container's root is a {found}, not a {expected}: refusing to use it")]
    WrongKind {
        path: PathBuf,
        found: &'static str,
        expected: &'static str,
    },
    #[error("{path} does not exist in the container's root")]
    Missing { path: PathBuf },
    #[error("{path} in the container's root is larger than {cap} bytes: refusing to read it")]
    TooLarge { path: PathBuf, cap: u64 },
    #[error("failed to resolve {path} inside the container's root (openat2(2))")]
    Resolve {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to read {path} in the container's root")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to create {path} in a filesystem of the engine's own")]
    Create {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to remove {path} in a filesystem of the engine's own")]
    Remove {
        path: PathBuf,
        #[source]
        source: Errno,
    },
}

impl SafePathError {
    /// What usually causes this failure, for the hint line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            SafePathError::Symlink { .. } | SafePathError::WrongKind { .. } => Some(
                "the rootfs is crafted or broken: ferry mounts and reads only plain files and directories inside the root (chapter 1, \"the image is the attacker\")",
            ),
            SafePathError::Missing { .. } => Some(
                "ferry does not write into the image: create the directory in the rootfs (chapter 5's overlay gives each container a layer of its own to write in)",
            ),
            SafePathError::Resolve {
                source: Errno::ENOSYS,
                ..
            } => Some("openat2(2) needs Linux 5.6 or later (see chapters/setup.md)"),
            _ => None,
        }
    }
}

/// What a path must be to be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Directory,
    RegularFile,
    /// A directory or a regular file (what a masked path may be).
    DirectoryOrFile,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Directory => "directory",
            Kind::RegularFile => "regular file",
            Kind::DirectoryOrFile => "directory or regular file",
        }
    }

    fn matches(self, mode: SFlag) -> bool {
        match self {
            Kind::Directory => mode == SFlag::S_IFDIR,
            Kind::RegularFile => mode == SFlag::S_IFREG,
            Kind::DirectoryOrFile => mode == SFlag::S_IFDIR || mode == SFlag::S_IFREG,
        }
    }
}

/// The kind of file a `st_mode` describes, as people say it.
fn kind_name(mode: SFlag) -> &'static str {
    match mode {
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        _ => "special file",
    }
}

/// A directory that paths are resolved in, as if it were `/`.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// A path resolved inside a root: an `O_PATH` descriptor, and the path it was
/// asked for (for messages).
#[derive(Debug)]
pub struct Resolved {
    fd: OwnedFd,
    /// The path as asked for, inside the root (`/proc`).
    pub path: PathBuf,
}

impl Resolved {
    /// The descriptor's path in `/proc/self/fd`: what mount(2), or any call that
    /// takes a path, can be given so that it acts on exactly this file. Needs a
    /// procfs mounted at `/proc` (the host's before pivot_root, the container's after).
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// The descriptor itself.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether it is a directory (fstat(2) of the descriptor).
    pub fn is_dir(&self) -> bool {
        self.is(SFlag::S_IFDIR)
    }

    /// Whether it is a symlink, opened itself rather than followed (fstat(2) of the
    /// descriptor).
    pub fn is_symlink(&self) -> bool {
        self.is(SFlag::S_IFLNK)
    }

    fn is(&self, kind: SFlag) -> bool {
        nix::sys::stat::fstat(self.fd.as_raw_fd())
            .is_ok_and(|stat| SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == kind)
    }
}

/// The path relative to the root, without `.` or leading `/` (openat2 resolves `..`
/// and symlinks within the root itself).
fn relative(path: &Path) -> PathBuf {
    let relative: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    }
}

/// `path` (absolute, or relative to the root) with `.` and `..` worked out by
/// its text alone, `..` stopping at `/`: where a symlink's target lies when every
/// directory before it is a real one.
pub fn lexically_in_root(path: &Path) -> PathBuf {
    let mut clean = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => clean.push(name),
            Component::ParentDir => {
                clean.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    clean
}

impl Root {
    /// Opens `dir` as a root to resolve paths in (`O_PATH | O_DIRECTORY`).
    pub fn open(dir: &Path) -> Result<Root, SafePathError> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        sys::openat2(None, dir, flags, ResolveFlag::empty())
            .map(|fd| Root { fd })
            .map_err(|source| SafePathError::OpenRoot {
                root: dir.to_path_buf(),
                source,
            })
    }

    /// Resolves `path` inside the root without following any symlink — not even
    /// one that would stay inside — and checks it is a `kind`. What a mount target
    /// must be (runc since CVE-2019-19921). `Ok(None)` when it does not exist.
    pub fn resolve_no_symlinks(
        &self,
        path: &Path,
        kind: Kind,
    ) -> Result<Option<Resolved>, SafePathError> {
        let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS;
        match self.open_path(path, resolve, true) {
            Ok(resolved) => self.check_kind(resolved, kind).map(Some),
            Err(Errno::ENOENT) => Ok(None),
            Err(Errno::ELOOP) => Err(self.find_symlink(path)),
            Err(source) => Err(SafePathError::Resolve {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Like [`Root::resolve_no_symlinks`], but a missing path is an error that
    /// says so.
    pub fn require(&self, path: &Path, kind: Kind) -> Result<Resolved, SafePathError> {
        self.resolve_no_symlinks(path, kind)?
            .ok_or_else(|| SafePathError::Missing {
                path: path.to_path_buf(),
            })
    }

    /// Resolves `path` inside the root as a process chrooted there would: symlinks
    /// are followed, but `..` and absolute links stop at the root, and magic links
    /// (`/proc/self/fd/N`) are refused. `Ok(None)` when it does not exist.
    pub fn resolve_in_root(
        &self,
        path: &Path,
        kind: Kind,
    ) -> Result<Option<Resolved>, SafePathError> {
        let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS;
        match self.open_path(path, resolve, false) {
            Ok(resolved) => self.check_kind(resolved, kind).map(Some),
            Err(Errno::ENOENT) => Ok(None),
            Err(source) => Err(SafePathError::Resolve {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads a regular file inside the root (symlinks followed within it), at most
    /// `cap` bytes. `Ok(None)` when it does not exist. A FIFO, a device or a
    /// directory is refused before anything is read: a FIFO would block forever and
    /// `/dev/zero` would never end.
    pub fn read_file(&self, path: &Path, cap: u64) -> Result<Option<Vec<u8>>, SafePathError> {
        let Some(resolved) = self.resolve_in_root(path, Kind::RegularFile)? else {
            return Ok(None);
        };
        let read_error = |source| SafePathError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Reopen the O_PATH descriptor for reading: the same file, not a new lookup.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(resolved.fd_path())
            .map_err(read_error)?;
        match read_with_cap(file, cap).map_err(read_error)? {
            Some(bytes) => Ok(Some(bytes)),
            None => Err(SafePathError::TooLarge {
                path: path.to_path_buf(),
                cap,
            }),
        }
    }

    /// Creates the directory `name` in `parent` (a directory of a filesystem the
    /// engine mounted itself, such as /dev's tmpfs — never in the image) and
    /// resolves it.
    pub fn create_dir_in(
        &self,
        parent: &Resolved,
        name: &str,
        mode: u32,
    ) -> Result<Resolved, SafePathError> {
        let path = parent.path.join(name);
        match nix::sys::stat::mkdirat(
            Some(parent.fd.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(source) => return Err(SafePathError::Create { path, source }),
        }
        self.require(&path, Kind::Directory)
    }

    /// Creates the missing directories of `path` inside the root, one component at a
    /// time, each resolved without following a symlink, and resolves the last one.
    /// Only for a root the container may write: an overlay's merged view, whose
    /// writes land in the container's own layer, or a filesystem of the engine's.
    pub fn create_dirs(&self, path: &Path) -> Result<Resolved, SafePathError> {
        let mut parent = self.require(Path::new("/"), Kind::Directory)?;
        for component in relative(path).components() {
            let name = component.as_os_str().to_string_lossy().into_owned();
            let next = parent.path.join(&name);
            parent = match self.resolve_no_symlinks(&next, Kind::Directory)? {
                Some(dir) => dir,
                None => self.create_dir_in(&parent, &name, 0o755)?,
            };
        }
        Ok(parent)
    }

    /// Creates an empty regular file at `path` (its directories too, as
    /// [`Root::create_dirs`]) unless one is there, and resolves it: a target for a
    /// bind mount of a file or a device node.
    pub fn create_file(&self, path: &Path) -> Result<Resolved, SafePathError> {
        if let Some(file) = self.resolve_no_symlinks(path, Kind::RegularFile)? {
            return Ok(file);
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(SafePathError::Missing {
                path: path.to_path_buf(),
            });
        };
        let parent = self.create_dirs(parent)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        sys::openat2(
            Some(parent.fd.as_fd()),
            Path::new(name),
            flags,
            ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|source| SafePathError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        self.require(path, Kind::RegularFile)
    }

    /// Resolves the regular file `path` as a process chrooted in the root would —
    /// symlinks followed, but never out of the root — and, with `create`, creates
    /// it empty where it is missing: where the last symlink on the way points, if
    /// one does (runc's securejoin). An image's `/etc/resolv.conf ->
    /// ../run/systemd/resolve/stub-resolv.conf` so gets `/run/systemd/resolve/`
    /// and the file made inside the root. Each link is read with readlinkat(2) and
    /// its target joined to where it sits, `..` stopping at the root; the
    /// directories are made as [`Root::create_dirs`] makes them. Only for a root
    /// the container may write. `Ok(None)` when it is missing and not `create`.
    pub fn file_in_root(
        &self,
        path: &Path,
        create: bool,
    ) -> Result<Option<Resolved>, SafePathError> {
        let mut wanted = path.to_path_buf();
        // Linux's own limit on links in one lookup (path_resolution(7)).
        for _ in 0..40 {
            if let Some(file) = self.resolve_in_root(&wanted, Kind::RegularFile)? {
                return Ok(Some(Resolved {
                    path: path.to_path_buf(),
                    ..file
                }));
            }
            if !create {
                return Ok(None);
            }
            match self.resolve_no_symlinks(&wanted, Kind::RegularFile) {
                // Missing, and no link on the way: make it there.
                Ok(None) => {
                    let file = self.create_file(&wanted)?;
                    return Ok(Some(Resolved {
                        path: path.to_path_buf(),
                        ..file
                    }));
                }
                Ok(Some(file)) => return Ok(Some(file)),
                Err(SafePathError::Symlink { path: link, target }) => {
                    let rest = wanted.strip_prefix(&link).unwrap_or(Path::new(""));
                    let base = link.parent().unwrap_or(Path::new("/"));
                    wanted = lexically_in_root(&base.join(&target).join(rest));
                }
                Err(error) => return Err(error),
            }
        }
        Err(SafePathError::Resolve {
            path: path.to_path_buf(),
            source: Errno::ELOOP,
        })
    }

    /// Opens the entry `name` (one path component) of the directory `parent` as it
    /// is, whatever its kind — a symlink is opened itself, never followed (openat2(2)
    /// with `O_PATH | O_NOFOLLOW` and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).
    /// `Ok(None)` when there is no such entry.
    pub fn open_in(
        &self,
        parent: &Resolved,
        name: &OsStr,
    ) -> Result<Option<Resolved>, SafePathError> {
        let path = parent.path.join(name);
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
        match sys::openat2(Some(parent.fd.as_fd()), Path::new(name), flags, resolve) {
            Ok(fd) => Ok(Some(Resolved { fd, path })),
            Err(Errno::ENOENT) => Ok(None),
            Err(source) => Err(SafePathError::Resolve { path, source }),
        }
    }

    /// Creates the regular file `name` in the directory `parent` with `mode` (before
    /// the umask) and opens it for writing. Anything already there, a symlink
    /// included, makes it fail (`O_CREAT | O_EXCL | O_NOFOLLOW`): the file written is
    /// always a new one, never an old one written through.
    pub fn create_file_in(
        &self,
        parent: &Resolved,
        name: &OsStr,
        mode: u32,
    ) -> Result<std::fs::File, SafePathError> {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
        sys::openat2_with_mode(
            Some(parent.fd.as_fd()),
            Path::new(name),
            flags,
            resolve,
            mode,
        )
        .map(std::fs::File::from)
        .map_err(|source| SafePathError::Create {
            path: parent.path.join(name),
            source,
        })
    }

    /// Removes the entry `name` of the directory `parent` (unlinkat(2)), a directory
    /// with everything in it, depth first. A symlink is removed itself, never
    /// followed, and each directory is opened without following one, so nothing
    /// outside `parent` is ever reached. Nothing happens when there is no such entry.
    pub fn remove_in(&self, parent: &Resolved, name: &OsStr) -> Result<(), SafePathError> {
        remove_at(parent.fd.as_fd(), name, &parent.path.join(name))
    }

    /// openat2(2) of `path` in the root as an `O_PATH` descriptor. With `nofollow`,
    /// a symlink as the last component is opened itself, so that `check_kind` can
    /// name it.
    fn open_path(
        &self,
        path: &Path,
        resolve: ResolveFlag,
        nofollow: bool,
    ) -> Result<Resolved, Errno> {
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if nofollow {
            flags |= OFlag::O_NOFOLLOW;
        }
        sys::openat2(Some(self.fd.as_fd()), &relative(path), flags, resolve).map(|fd| Resolved {
            fd,
            path: path.to_path_buf(),
        })
    }

    fn check_kind(&self, resolved: Resolved, kind: Kind) -> Result<Resolved, SafePathError> {
        let stat = nix::sys::stat::fstat(resolved.fd.as_raw_fd()).map_err(|source| {
            SafePathError::Resolve {
                path: resolved.path.clone(),
                source,
            }
        })?;
        let mode = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
        if kind.matches(mode) {
            return Ok(resolved);
        }
        if mode == SFlag::S_IFLNK {
            return Err(SafePathError::Symlink {
                target: link_target(&resolved.fd),
                path: resolved.path,
            });
        }
        Err(SafePathError::WrongKind {
            path: resolved.path,
            found: kind_name(mode),
            expected: kind.name(),
        })
    }

    /// Names the symlink that stopped a `RESOLVE_NO_SYMLINKS` lookup (ELOOP says
    /// only that there was one): the first prefix of `path` that is a link.
    fn find_symlink(&self, path: &Path) -> SafePathError {
        let mut prefix = PathBuf::from("/");
        for component in relative(path).components() {
            prefix.push(component);
            let resolve = ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_SYMLINKS;
            match self.open_path(&prefix, resolve, true) {
                Ok(resolved) => {
                    if let Err(error) = self.check_kind(resolved, Kind::Directory) {
                        if matches!(error, SafePathError::Symlink { .. }) {
                            return error;
                        }
                    }
                }
                Err(_) => break,
            }
        }
        SafePathError::Resolve {
            path: path.to_path_buf(),
            source: Errno::ELOOP,
        }
    }
}

/// Removes `name` in the directory `dir` (`path` names it in messages): its entries
/// first when it is a directory, then itself (unlinkat(2), `AT_REMOVEDIR` for a
/// directory).
fn remove_at(dir: BorrowedFd<'_>, name: &OsStr, path: &Path) -> Result<(), SafePathError> {
    let remove_error = |source| SafePathError::Remove {
        path: path.to_path_buf(),
        source,
    };
    let stat = match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(source) => return Err(remove_error(source)),
    };
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
            .map_err(remove_error);
    }
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS;
    let fd = sys::openat2(Some(dir), Path::new(name), flags, resolve).map_err(remove_error)?;
    // The names first (through the descriptor's magic link, so the very directory
    // opened): removing entries while reading the directory could skip some.
    let listing_error = |error: std::io::Error| {
        remove_error(Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO)))
    };
    let children = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(listing_error)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<Result<Vec<OsString>, _>>()
        .map_err(listing_error)?;
    for child in children {
        remove_at(fd.as_fd(), &child, &path.join(&child))?;
    }
    unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir).map_err(remove_error)
}

/// Where a symlink opened with `O_PATH | O_NOFOLLOW` points (readlinkat(2) with an
/// empty path), for the error message.
fn link_target(fd: &OwnedFd) -> String {
    nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")
        .map(|target: OsString| target.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "(unreadable)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ferry-safe-path-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root/etc")).unwrap();
        dir
    }

    #[test]
    fn symlinks_are_refused_as_mount_targets_and_named() {
        let dir = scratch("links");
        let root_dir = dir.join("root");
        std::fs::create_dir(dir.join("outside")).unwrap();
        symlink(dir.join("outside"), root_dir.join("proc")).unwrap();
        symlink("etc", root_dir.join("sys")).unwrap();
        std::fs::create_dir(root_dir.join("dev")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        let error = root
            .require(Path::new("/proc"), Kind::Directory)
            .unwrap_err();
        assert!(
            matches!(&error, SafePathError::Symlink { path, target } if path == Path::new("/proc") && target.ends_with("outside")),
            "{error:?}"
        );
        // A relative link that stays inside is still refused.
        let error = root
            .require(Path::new("/sys"), Kind::Directory)
            .unwrap_err();
        assert!(matches!(error, SafePathError::Symlink { .. }), "{error:?}");
        // A link in the middle of the path is found and named.
        let error = root
            .require(Path::new("/sys/fs"), Kind::Directory)
            .unwrap_err();
        assert!(
            matches!(&error, SafePathError::Symlink { path, .. } if path == Path::new("/sys")),
            "{error:?}"
        );
        assert!(root.require(Path::new("/dev"), Kind::Directory).is_ok());
        assert!(matches!(
            root.require(Path::new("/missing"), Kind::Directory),
            Err(SafePathError::Missing { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_target_follows_links_inside_the_root_and_is_made_there() {
        let dir = scratch("file-in-root");
        let root_dir = dir.join("root");
        std::fs::create_dir(dir.join("outside")).unwrap();
        // Docker-style: a relative link to a file that is not there yet.
        symlink(
            "../run/systemd/resolve/stub-resolv.conf",
            root_dir.join("etc/resolv.conf"),
        )
        .unwrap();
        // Absolute and climbing links stay in the root.
        symlink(dir.join("outside/hosts"), root_dir.join("etc/hosts")).unwrap();
        symlink("../../../../outside", root_dir.join("up")).unwrap();
        let root = Root::open(&root_dir).unwrap();
        let missing = root.file_in_root(Path::new("/etc/resolv.conf"), false);
        assert!(missing.unwrap().is_none());
        let made = root
            .file_in_root(Path::new("/etc/resolv.conf"), true)
            .unwrap()
            .unwrap();
        assert_eq!(made.path, Path::new("/etc/resolv.conf"));
        assert!(root_dir
            .join("run/systemd/resolve/stub-resolv.conf")
            .is_file());
        root.file_in_root(Path::new("/etc/hosts"), true)
            .unwrap()
            .unwrap();
        root.file_in_root(Path::new("/up/x"), true)
            .unwrap()
            .unwrap();
        let absolute = dir.join("outside/hosts");
        assert!(root_dir.join(absolute.strip_prefix("/").unwrap()).is_file());
        assert!(root_dir.join("outside/x").is_file());
        assert_eq!(std::fs::read_dir(dir.join("outside")).unwrap().count(), 0);
        // A loop ends.
        symlink("loop", root_dir.join("loop")).unwrap();
        assert!(root.file_in_root(Path::new("/loop"), true).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn files_are_read_inside_the_root_with_a_cap() {
        let dir = scratch("read");
        let root_dir = dir.join("root");
        std::fs::write(dir.join("secret"), "host secret").unwrap();
        std::fs::write(root_dir.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        // An absolute link resolves inside the root, not to the host's file.
        symlink(dir.join("secret"), root_dir.join("etc/group")).unwrap();
        nix::unistd::mkfifo(
            &root_dir.join("etc/hostname"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        std::fs::write(root_dir.join("big"), vec![b'x'; 100]).unwrap();
        let root = Root::open(&root_dir).unwrap();
        let passwd = root.read_file(Path::new("/etc/passwd"), 1 << 20).unwrap();
        assert_eq!(passwd.as_deref(), Some(&b"root:x:0:0::/root:/bin/sh\n"[..]));
        assert!(root
            .read_file(Path::new("/etc/group"), 1 << 20)
            .unwrap()
            .is_none());
        let fifo = root
            .read_file(Path::new("/etc/hostname"), 1 << 20)
            .unwrap_err();
        assert!(
            matches!(fifo, SafePathError::WrongKind { found: "FIFO", .. }),
            "{fifo:?}"
        );
        assert!(matches!(
            root.read_file(Path::new("/big"), 10),
            Err(SafePathError::TooLarge { cap: 10, .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
