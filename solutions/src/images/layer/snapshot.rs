//! Snapshots: a container's overlay upper directory written out as an image layer,
//! the inverse of [`apply`](super::apply).
//!
//! Chapter 11 (chapters/11-build.md). A container's overlay (chapter 5) collects every
//! change in its *upper* directory, in overlayfs's notation; a layer (chapter 6) says
//! the same in the OCI image-spec's (`layer.md`). A build step or `ferry commit`
//! translates one into the other, entry by entry:
//!
//! | in the upper directory | in the layer |
//! |---|---|
//! | file, directory, symlink, FIFO, device | itself: mode, owner, mtime, xattrs |
//! | whiteout: a character device 0:0 `NAME` | an empty file `.wh.NAME`: mode 0, 0:0, mtime 0 |
//! | opaque directory (`*.overlay.opaque=y`) | itself, then `.wh..wh..opq` first inside it |
//! | a second name of an inode (a hard link) | a tar hard link to the first name written |
//! | socket | left out, as docker does: it means nothing without its process |
//! | an engine's mount point, still empty | left out ([`SnapshotOptions::mount_points`]) |
//! | a name starting `.wh.` | refused: unpacking would read it as a whiteout |
//! | `metacopy` or `redirect` xattr | refused: the data is still in a lower layer |
//!
//! The markers are written as containerd 2 writes them (mode 0, owner 0:0, mtime 0)
//! rather than as moby does (mode 0600, the device's owner and time): nothing in a
//! marker then differs from one build to the next. The xattrs kept are those
//! [`XATTRS`](super::XATTRS) sets when unpacking (file capabilities, `user.*`, ACLs);
//! overlayfs's own (`trusted.overlay.*`, `user.overlay.*`) never go in a layer.
//!
//! **Reproducible**: the same upper directory gives the same bytes, so the same
//! digests (what the build cache and SOURCE_DATE_EPOCH rely on). Names are sorted
//! bytewise at each level, a directory before its contents, depth first; owners are
//! numbers, never names; only the mtime is kept, in whole seconds, clamped if asked;
//! xattrs are sorted; the gzip header has no time and no file name.
//!
//! **Safe**: the upper directory is the container's, so it is the attacker's too
//! (chapter 1). It is walked one name at a time with [`crate::safe_path`], as
//! `docker diff` walks it (`engine/diff.rs`): a symlink is an entry, never followed,
//! and a file is read through the very descriptor that was checked.
//!
//! **One pass**: tar → sha256 (the diff id) → gzip → sha256 (the blob digest) → `out`.
//! Snapshot a stopped or paused container (`docker commit` pauses it): a file that
//! changes while it is read makes the snapshot fail, or hold a mix of old and new.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use super::keeps_xattr;
use crate::images::digest::Digest;
use crate::safe_path::{Kind, Resolved, Root, SafePathError};
use crate::sys;

/// What a snapshot wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The digest of the uncompressed tar stream: the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The digest of the gzip blob: the manifest's layer descriptor.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The uncompressed tar stream's size in bytes.
    pub tar_size: u64,
    /// The tar entries written (extension headers not counted, as [`super::Applied`]).
    pub entries: u64,
}

/// How to take a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotOptions<'a> {
    /// Paths (relative, no leading '/', e.g. "etc/hosts") left out when they are an
    /// empty regular file or an empty directory: mount points the engine made for its
    /// own bind mounts (/etc/hosts, /etc/hostname, /etc/resolv.conf, volume targets)
    /// are not the image's. Their parent directories are kept.
    pub mount_points: &'a [&'a str],
    /// Clamp every mtime to at most this (seconds since the epoch): SOURCE_DATE_EPOCH,
    /// for reproducible layers.
    pub clamp_mtime: Option<u64>,
}

/// A snapshot that could not be taken. What was written to `out` is not a layer.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("failed to open the upper directory {upper}")]
    OpenUpper {
        upper: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("failed to open {path} in the upper directory")]
    Open {
        path: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("failed to list the directory {path} in the upper directory")]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the metadata of {path} in the upper directory")]
    Stat {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to read the xattrs of {path} in the upper directory")]
    Xattr {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("{path} in the upper directory starts with .wh., a whiteout in a layer: refusing it")]
    ReservedName { path: PathBuf },
    #[error(
        "{path} in the upper directory has {xattr}: its data is in a lower layer, refusing it"
    )]
    DataBelow { path: PathBuf, xattr: &'static str },
    #[error("failed to read {path} in the upper directory")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write layer entry {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to finish the layer's tar and gzip streams")]
    Finish {
        #[source]
        source: io::Error,
    },
}

impl SnapshotError {
    /// What usually causes this failure, for the hint line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            SnapshotError::DataBelow { .. } => {
                Some("mount the container's overlay with metacopy=off,redirect_dir=off (chapter 5)")
            }
            SnapshotError::Read { .. } => Some(
                "usually a file that changed while it was read: stop or pause the container first",
            ),
            _ => None,
        }
    }
}

/// The prefix that marks a whiteout in a layer (OCI image-spec, layer.md).
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The entry that makes its directory opaque in a layer.
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The xattrs overlayfs marks an opaque directory with: `trusted.` normally,
/// `user.` when mounted with `userxattr` (Linux 5.11, rootless).
const OPAQUE_XATTRS: &[&str] = &["trusted.overlay.opaque", "user.overlay.opaque"];
/// The xattrs of an entry whose contents are still in a lower layer: a file copied
/// up for its metadata only (`metacopy=on`), a directory renamed (`redirect_dir=on`).
const DATA_BELOW_XATTRS: &[&str] = &[
    "trusted.overlay.metacopy",
    "trusted.overlay.redirect",
    "user.overlay.metacopy",
    "user.overlay.redirect",
];

/// Writes the changes in the overlay upper directory `upper` as an OCI layer: a
/// gzip-compressed tar to `out`, hashed as it is written.
pub fn snapshot(
    upper: &Path,
    options: &SnapshotOptions,
    out: impl Write,
) -> Result<Snapshot, SnapshotError> {
    let open_error = |source| SnapshotError::OpenUpper {
        upper: upper.to_path_buf(),
        source,
    };
    let root = Root::open(upper).map_err(open_error)?;
    let top = root
        .require(Path::new("/"), Kind::Directory)
        .map_err(open_error)?;
    log::debug!("snapshotting the upper directory {}", upper.display());
    let gzip = GzEncoder::new(Hashing::new(out), flate2::Compression::default());
    let mut writer = LayerWriter {
        upper: &root,
        options,
        tar: tar::Builder::new(Hashing::new(gzip)),
        first_names: HashMap::new(),
        entries: 0,
    };
    writer.walk(&top)?;
    let entries = writer.entries;
    let finish_error = |source| SnapshotError::Finish { source };
    // The end-of-archive marker (two zero blocks), then the gzip trailer.
    let (gzip, diff_id, tar_size) = writer.tar.into_inner().map_err(finish_error)?.finish();
    let (mut out, digest, size) = gzip.finish().map_err(finish_error)?.finish();
    out.flush().map_err(finish_error)?;
    log::debug!("snapshot {digest} (diff id {diff_id}): {entries} entries");
    Ok(Snapshot {
        diff_id,
        digest,
        size,
        tar_size,
        entries,
    })
}

/// What one entry of the upper directory becomes in the layer, in order.
#[derive(Debug, PartialEq, Eq)]
enum LayerEntry {
    /// The entry itself, at its own name.
    Itself,
    /// An empty marker file at this path: a whiteout or an opaque marker.
    Marker(PathBuf),
}

/// The layer entries that the upper directory's entry `path` (opened as `entry`,
/// with the lstat `stat`) becomes, in the order they are written. A whiteout, a
/// character device 0:0 named NAME, becomes the marker `.wh.NAME` beside it; an
/// opaque directory is itself, then the marker `.wh..wh..opq` inside it (before
/// anything else in it: the walk writes its contents afterwards); anything else is
/// itself. Refused: a name that already starts with `.wh.` (in a layer it would
/// delete, not be), and an entry overlayfs left with its data in a lower layer.
fn layer_entries(
    entry: &Resolved,
    stat: &FileStat,
    path: &Path,
) -> Result<Vec<LayerEntry>, SnapshotError> {
    // BEGIN SOLUTION ch11 "turn one overlay entry into its layer entry: a whiteout becomes .wh.NAME, an opaque directory gains .wh..wh..opq"
    let name = path.file_name().unwrap_or_default().as_bytes();
    if name.starts_with(WHITEOUT_PREFIX) {
        return Err(SnapshotError::ReservedName {
            path: path.to_path_buf(),
        });
    }
    if is_whiteout(stat) {
        let marker = [WHITEOUT_PREFIX, name].concat();
        let marker = path.with_file_name(OsStr::from_bytes(&marker));
        return Ok(vec![LayerEntry::Marker(marker)]);
    }
    if let Some(xattr) = find_xattr(entry, path, DATA_BELOW_XATTRS, |_| true)? {
        return Err(SnapshotError::DataBelow {
            path: path.to_path_buf(),
            xattr,
        });
    }
    let mut entries = vec![LayerEntry::Itself];
    if file_type(stat) == SFlag::S_IFDIR
        && find_xattr(entry, path, OPAQUE_XATTRS, |value| value == b"y")?.is_some()
    {
        entries.push(LayerEntry::Marker(path.join(OPAQUE_MARKER)));
    }
    Ok(entries)
    // END SOLUTION
}

/// The walk of the upper directory, and the tar stream it writes.
struct LayerWriter<'a, W: Write> {
    upper: &'a Root,
    options: &'a SnapshotOptions<'a>,
    tar: tar::Builder<W>,
    /// The first name written of each inode (device, inode) with more than one link:
    /// its other names become hard links to it.
    first_names: HashMap<(u64, u64), PathBuf>,
    entries: u64,
}

impl<W: Write> LayerWriter<'_, W> {
    /// Writes the entries of the directory `dir`, sorted by name, each directory
    /// followed by its contents.
    fn walk(&mut self, dir: &Resolved) -> Result<(), SnapshotError> {
        for name in names(dir)? {
            let open_error = |source| SnapshotError::Open {
                path: layer_path(&dir.path.join(&name)),
                source,
            };
            // The container may be running: an entry gone since the listing is skipped.
            let Some(entry) = self.upper.open_in(dir, &name).map_err(open_error)? else {
                continue;
            };
            let path = layer_path(&entry.path);
            let stat = stat_of(&entry, &path)?;
            if self.is_mount_point(&entry, &stat, &path)? {
                log::debug!("{}: an engine's mount point, left out", path.display());
                continue;
            }
            for layer_entry in layer_entries(&entry, &stat, &path)? {
                match layer_entry {
                    LayerEntry::Itself => self.write_entry(&entry, &stat, &path)?,
                    LayerEntry::Marker(marker) => self.write_marker(&marker)?,
                }
            }
            if file_type(&stat) == SFlag::S_IFDIR {
                self.walk(&entry)?;
            }
        }
        Ok(())
    }

    /// Whether `path` is one of the engine's mount points, still empty.
    fn is_mount_point(
        &self,
        entry: &Resolved,
        stat: &FileStat,
        path: &Path,
    ) -> Result<bool, SnapshotError> {
        let listed = self
            .options
            .mount_points
            .iter()
            .any(|point| Path::new(point.trim_matches('/')) == path);
        Ok(listed
            && match file_type(stat) {
                SFlag::S_IFREG => stat.st_size == 0,
                SFlag::S_IFDIR => names(entry)?.is_empty(),
                _ => false,
            })
    }

    /// Writes a whiteout or opaque marker: an empty regular file with no mode, owned
    /// by root, at time 0, whatever the entry it stands for (as containerd 2 writes
    /// them): nothing in it can differ from one build to the next.
    fn write_marker(&mut self, path: &Path) -> Result<(), SnapshotError> {
        self.append(
            blank_header(EntryType::Regular),
            path.as_os_str(),
            io::empty(),
        )
    }

    /// Writes the entry itself: its header (with its xattrs before it), then a
    /// regular file's contents.
    fn write_entry(
        &mut self,
        entry: &Resolved,
        stat: &FileStat,
        path: &Path,
    ) -> Result<(), SnapshotError> {
        let kind = file_type(stat);
        if kind == SFlag::S_IFSOCK {
            log::warn!("{}: a socket, left out of the layer", path.display());
            return Ok(());
        }
        let mut header = self.header(stat);
        // Whiteouts never come here: overlayfs makes them links to one shared inode
        // (Linux 5.8), which must not become hard links in the layer.
        if kind != SFlag::S_IFDIR && stat.st_nlink > 1 {
            let inode = (stat.st_dev, stat.st_ino);
            if let Some(first) = self.first_names.get(&inode).cloned() {
                // A hard link shares the first name's inode, and so its metadata.
                header.set_entry_type(EntryType::Link);
                return self.append_link(header, path, &first);
            }
            self.first_names.insert(inode, path.to_path_buf());
        }
        if kind != SFlag::S_IFLNK {
            // Symlinks have no xattrs an image can use (the kernel refuses user.*).
            self.write_xattrs(entry, path)?;
        }
        match kind {
            SFlag::S_IFDIR => {
                header.set_entry_type(EntryType::Directory);
                // A directory's name ends with '/' in a layer, as docker writes it.
                let mut name = path.as_os_str().to_os_string();
                name.push("/");
                self.append(header, &name, io::empty())
            }
            SFlag::S_IFREG => self.write_file(header, entry, stat, path),
            SFlag::S_IFLNK => {
                header.set_entry_type(EntryType::Symlink);
                let target =
                    nix::fcntl::readlinkat(Some(entry.fd().as_raw_fd()), "").map_err(|errno| {
                        SnapshotError::Read {
                            path: path.to_path_buf(),
                            source: errno.into(),
                        }
                    })?;
                self.write_symlink(header, path, &target)
            }
            // A device or a FIFO: a header alone.
            _ => {
                header.set_entry_type(match kind {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                if kind != SFlag::S_IFIFO {
                    set_device(&mut header, stat, path)?;
                }
                self.append(header, path.as_os_str(), io::empty())
            }
        }
    }

    /// The header fields every entry has: mode (setuid, setgid and sticky bits
    /// too), numeric owner, mtime (clamped). No user or group names, no atime or
    /// ctime: they would tie the layer to the host and the moment.
    fn header(&self, stat: &FileStat) -> Header {
        let mut header = blank_header(EntryType::Regular);
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(stat.st_uid.into());
        header.set_gid(stat.st_gid.into());
        // Before 1970 is 1970: a tar header's mtime has no sign.
        let mtime = u64::try_from(stat.st_mtime).unwrap_or(0);
        header.set_mtime(
            self.options
                .clamp_mtime
                .map_or(mtime, |clamp| mtime.min(clamp)),
        );
        header
    }

    /// Writes a regular file's header and contents, streamed from the descriptor
    /// opened for it (reopened for reading through its magic link: the same file).
    fn write_file(
        &mut self,
        mut header: Header,
        entry: &Resolved,
        stat: &FileStat,
        path: &Path,
    ) -> Result<(), SnapshotError> {
        let read_error = |source| SnapshotError::Read {
            path: path.to_path_buf(),
            source,
        };
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        header.set_entry_type(EntryType::Regular);
        header.set_size(size);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(entry.fd_path())
            .map_err(read_error)?;
        let mut contents = Contents {
            inner: file.take(size),
            failure: None,
        };
        let written = self.append(header, path.as_os_str(), &mut contents);
        if let Some(source) = contents.failure {
            return Err(read_error(source));
        }
        if written.is_ok() && contents.inner.limit() > 0 {
            // Fewer bytes than the header says: the archive is broken from here.
            let shrank = io::Error::new(io::ErrorKind::UnexpectedEof, "it shrank while read");
            return Err(read_error(shrank));
        }
        written
    }

    /// Writes a symlink with its target byte for byte: never resolved, never
    /// cleaned up (the tar crate's `set_link_name` would drop `.` and `//`).
    fn write_symlink(
        &mut self,
        mut header: Header,
        path: &Path,
        target: &OsStr,
    ) -> Result<(), SnapshotError> {
        if header.set_link_name_literal(target.as_bytes()).is_ok() {
            return self.append(header, path.as_os_str(), io::empty());
        }
        // Over 100 bytes: a GNU long-link entry holds the whole target.
        self.append_link(header, path, Path::new(target))
    }

    /// Appends a hard link or symlink entry (GNU long-name and long-link entries
    /// first when its name or target is over 100 bytes), and counts it.
    fn append_link(
        &mut self,
        mut header: Header,
        path: &Path,
        target: &Path,
    ) -> Result<(), SnapshotError> {
        self.tar
            .append_link(&mut header, path, target)
            .map_err(write_error(path))?;
        self.entries += 1;
        Ok(())
    }

    /// Writes the xattrs [`XATTRS`](super::XATTRS) keeps as a PAX header
    /// (`SCHILY.xattr.NAME` records, sorted), before the entry they belong to.
    /// overlayfs's own (`trusted.overlay.*`, `user.overlay.*`) never go in a layer.
    fn write_xattrs(&mut self, entry: &Resolved, path: &Path) -> Result<(), SnapshotError> {
        let xattr_error = &xattr_error(path);
        let mut names: Vec<String> = match sys::list_xattrs(entry.fd()) {
            Ok(names) => names
                .into_iter()
                // get_xattr asks by a str: no name XATTRS keeps is other than UTF-8.
                .filter_map(|n| n.into_string().ok())
                .collect(),
            Err(Errno::EOPNOTSUPP) => return Ok(()),
            Err(source) => return Err(xattr_error(source)),
        };
        names.retain(|name| !name.starts_with("user.overlay.") && keeps_xattr(name));
        names.sort();
        let mut records = Vec::new();
        for name in names {
            // Gone since the listing: nothing to keep.
            let Some(value) = sys::get_xattr(entry.fd(), &name).map_err(xattr_error)? else {
                continue;
            };
            records.extend(pax_record(&format!("SCHILY.xattr.{name}"), &value));
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut header = blank_header(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(records.len() as u64);
        // A PAX header's own name means nothing: GNU tar's, for the tools that show it.
        let name = b"././@PaxHeader";
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        self.tar
            .append(&header, records.as_slice())
            .map_err(write_error(path))
    }

    /// Appends an entry named `name` (a GNU long-name entry first when it is over
    /// 100 bytes) with the contents `data`, and counts it.
    fn append(
        &mut self,
        mut header: Header,
        name: &OsStr,
        data: impl Read,
    ) -> Result<(), SnapshotError> {
        self.tar
            .append_data(&mut header, Path::new(name), data)
            .map_err(write_error(Path::new(name)))?;
        self.entries += 1;
        Ok(())
    }
}

/// A GNU header of the type `kind` with every field zero: no mode, owner 0:0,
/// mtime 0, no contents.
fn blank_header(kind: EntryType) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(0);
    header
}

/// One PAX record: `LENGTH KEY=VALUE\n`, where LENGTH counts the whole record, its
/// own digits included (POSIX pax, "extended header").
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=' and '\n'
    let mut length = rest + 1;
    while length != rest + length.to_string().len() {
        length = rest + length.to_string().len();
    }
    [format!("{length} {key}=").as_bytes(), value, b"\n"].concat()
}

/// Sets a device entry's major and minor numbers.
fn set_device(header: &mut Header, stat: &FileStat, path: &Path) -> Result<(), SnapshotError> {
    let number = |number: u64| u32::try_from(number).unwrap_or(u32::MAX);
    header
        .set_device_major(number(nix::sys::stat::major(stat.st_rdev)))
        .and_then(|()| header.set_device_minor(number(nix::sys::stat::minor(stat.st_rdev))))
        .map_err(write_error(path))
}

/// The first of `xattrs` that `entry` has with a value `wanted` accepts. A
/// filesystem without xattrs has none; a symlink cannot have `user.*` ones.
fn find_xattr(
    entry: &Resolved,
    path: &Path,
    xattrs: &[&'static str],
    wanted: impl Fn(&[u8]) -> bool,
) -> Result<Option<&'static str>, SnapshotError> {
    for name in xattrs {
        match sys::get_xattr(entry.fd(), name) {
            Ok(Some(value)) if wanted(&value) => return Ok(Some(name)),
            Ok(_) | Err(Errno::EOPNOTSUPP | Errno::EPERM) => {}
            Err(errno) => return Err(xattr_error(path)(errno)),
        }
    }
    Ok(None)
}

/// The names in a directory opened with `O_PATH`, sorted bytewise: read through its
/// magic link, so that it is that very directory.
fn names(dir: &Resolved) -> Result<Vec<OsString>, SnapshotError> {
    let list_error = |source| SnapshotError::List {
        path: layer_path(&dir.path),
        source,
    };
    let mut names = std::fs::read_dir(dir.fd_path())
        .map_err(list_error)?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(list_error)?;
    names.sort();
    Ok(names)
}

/// The error of a failed write of the entry `path`.
fn write_error(path: &Path) -> impl Fn(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// The error of a failed listxattr(2) or getxattr(2) of the entry `path`.
fn xattr_error(path: &Path) -> impl Fn(Errno) -> SnapshotError + '_ {
    move |source| SnapshotError::Xattr {
        path: path.to_path_buf(),
        source,
    }
}

/// An entry's name in the layer: its path in the upper directory, relative.
fn layer_path(path: &Path) -> PathBuf {
    path.strip_prefix("/").unwrap_or(path).to_path_buf()
}

/// fstat(2) of an opened entry: the entry itself, a symlink included.
fn stat_of(entry: &Resolved, path: &Path) -> Result<FileStat, SnapshotError> {
    nix::sys::stat::fstat(entry.fd().as_raw_fd()).map_err(|source| SnapshotError::Stat {
        path: path.to_path_buf(),
        source,
    })
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

/// An overlayfs whiteout: a character device with device number 0:0.
fn is_whiteout(stat: &FileStat) -> bool {
    file_type(stat) == SFlag::S_IFCHR && stat.st_rdev == 0
}

/// A file's contents, at most as many bytes as its header says (a file that grew
/// since its lstat is cut), its read error kept: blamed on the file, not the output.
struct Contents {
    inner: io::Take<std::fs::File>,
    failure: Option<io::Error>,
}

impl Read for Contents {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(error) if error.kind() != io::ErrorKind::Interrupted => {
                let kind = error.kind();
                self.failure.get_or_insert(error);
                Err(io::Error::new(kind, "the file being read failed"))
            }
            result => result,
        }
    }
}

/// A writer that hashes (sha256) and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The writer, and the digest and size of everything written.
    fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{apply, Compression, Expected, Limits};
    use super::*;
    use nix::sys::stat::{makedev, mknod, utimensat, Mode, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// A v2 `security.capability` value: cap_net_raw, permitted and effective (what
    /// `setcap cap_net_raw+ep` writes).
    const CAP_NET_RAW: &[u8] = &[
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// A test's directory: `upper`, the overlay upper directory built by hand, and
    /// `unpacked`, where a snapshot of it is applied back.
    struct Scratch {
        dir: PathBuf,
    }

    impl Scratch {
        fn new(name: &str) -> Scratch {
            if !nix::unistd::geteuid().is_root() {
                panic!(
                    "this test needs root to make whiteouts (mknod) and trusted.* xattrs: \
                     run it through the cargo runner (cargo test -p ferry --lib snapshot)"
                );
            }
            let dir =
                std::env::temp_dir().join(format!("ferry-snapshot-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("upper")).unwrap();
            std::fs::create_dir_all(dir.join("unpacked")).unwrap();
            Scratch { dir }
        }

        fn upper(&self) -> PathBuf {
            self.dir.join("upper")
        }

        fn at(&self, path: &str) -> PathBuf {
            let at = self.upper().join(path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            at
        }

        fn file(&self, path: &str, contents: &str, mode: u32) -> &Self {
            let at = self.at(path);
            std::fs::write(&at, contents).unwrap();
            std::fs::set_permissions(at, PermissionsExt::from_mode(mode)).unwrap();
            self
        }

        fn dir(&self, path: &str, mode: u32) -> &Self {
            let at = self.at(path);
            std::fs::create_dir_all(&at).unwrap();
            std::fs::set_permissions(at, PermissionsExt::from_mode(mode)).unwrap();
            self
        }

        fn symlink(&self, path: &str, target: &str) -> &Self {
            std::os::unix::fs::symlink(target, self.at(path)).unwrap();
            self
        }

        fn node(&self, path: &str, kind: SFlag, mode: u32, (major, minor): (u64, u64)) -> &Self {
            let mode = Mode::from_bits_truncate(mode);
            mknod(&self.at(path), kind, mode, makedev(major, minor)).unwrap();
            self
        }

        fn xattr(&self, path: &str, name: &str, value: &[u8]) -> &Self {
            set_xattr(&self.upper().join(path), name, value);
            self
        }

        fn snapshot(&self, options: &SnapshotOptions) -> (Snapshot, Vec<u8>) {
            let mut blob = Vec::new();
            let snapshot = snapshot(&self.upper(), options, &mut blob).unwrap();
            (snapshot, blob)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn set_xattr(path: &Path, name: &str, value: &[u8]) {
        let file = open_path(path);
        sys::set_xattr(file.as_fd(), name, value).unwrap();
    }

    fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        sys::get_xattr(open_path(path).as_fd(), name).unwrap()
    }

    fn open_path(path: &Path) -> std::fs::File {
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)
            .unwrap()
    }

    /// An upper directory with one of everything a container leaves.
    fn sample(name: &str) -> Scratch {
        let scratch = Scratch::new(name);
        scratch
            .file("bin/tool", "#!/bin/sh\n", 0o4755)
            .dir("data", 0o755)
            .file(&format!("deep/{}", "n".repeat(150)), "long\n", 0o644)
            .node("dev/null", SFlag::S_IFCHR, 0o666, (1, 3))
            .file("etc/hostname", "box\n", 0o644)
            .file("etc/hosts", "", 0o644)
            .symlink("etc/link", "/etc/passwd")
            .node("etc/motd", SFlag::S_IFCHR, 0, (0, 0))
            .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644)
            .file("home/user.txt", "hi\n", 0o640)
            .xattr("home/user.txt", "user.comment", b"hello")
            .xattr("home/user.txt", "trusted.secret", b"host only")
            .dir("mnt", 0o755)
            .symlink("opt", "/etc")
            .node("run/fifo", SFlag::S_IFIFO, 0o600, (0, 0))
            .file("srv/index.html", "<p>\n", 0o644)
            .xattr("srv", "user.overlay.opaque", b"y")
            .dir("tmp", 0o1777)
            .file("usr/bin/ping", "\x7fELF", 0o755)
            .xattr("usr/bin/ping", "security.capability", CAP_NET_RAW)
            .symlink("usr/lib/long", &"x/".repeat(60))
            .file("var/cache/new", "new\n", 0o644)
            .xattr("var/cache", "trusted.overlay.opaque", b"y");
        std::fs::hard_link(scratch.at("bin/tool"), scratch.at("bin/tool-link")).unwrap();
        // overlayfs's whiteouts are links to one shared inode.
        std::fs::hard_link(scratch.at("etc/motd"), scratch.at("etc/issue")).unwrap();
        std::os::unix::net::UnixListener::bind(scratch.at("run/sock")).unwrap();
        let owner = Some(nix::unistd::Uid::from_raw(1000));
        let group = Some(nix::unistd::Gid::from_raw(1001));
        nix::unistd::chown(&scratch.at("home/user.txt"), owner, group).unwrap();
        scratch
    }

    const MOUNT_POINTS: &[&str] = &["etc/hosts", "etc/hostname", "/data/"];

    /// A tar entry as read back.
    #[derive(Debug)]
    struct Seen {
        path: String,
        kind: EntryType,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        link: Option<String>,
        xattrs: Vec<(String, Vec<u8>)>,
        contents: Vec<u8>,
    }

    fn read_back(blob: &[u8]) -> Vec<Seen> {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut xattrs = Vec::new();
            if let Some(records) = entry.pax_extensions().unwrap() {
                for record in records {
                    let record = record.unwrap();
                    let name = record.key().unwrap().strip_prefix("SCHILY.xattr.").unwrap();
                    xattrs.push((name.to_string(), record.value_bytes().to_vec()));
                }
            }
            let header = entry.header().clone();
            let link = entry
                .link_name_bytes()
                .map(|link| String::from_utf8(link.into_owned()).unwrap());
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            seen.push(Seen {
                path: String::from_utf8(entry.path_bytes().into_owned()).unwrap(),
                kind: header.entry_type(),
                mode: header.mode().unwrap(),
                owner: (header.uid().unwrap(), header.gid().unwrap()),
                mtime: header.mtime().unwrap(),
                link,
                xattrs,
                contents,
            });
        }
        seen
    }

    fn find<'a>(seen: &'a [Seen], path: &str) -> &'a Seen {
        seen.iter()
            .find(|entry| entry.path == path)
            .unwrap_or_else(|| panic!("no entry {path} in {seen:#?}"))
    }

    #[test]
    fn an_upper_directory_becomes_a_layer_in_name_order() {
        let scratch = sample("order");
        let options = SnapshotOptions {
            mount_points: MOUNT_POINTS,
            clamp_mtime: None,
        };
        let (snapshot, blob) = scratch.snapshot(&options);
        let seen = read_back(&blob);
        let long = format!("deep/{}", "n".repeat(150));
        let expected: Vec<(&str, EntryType)> = vec![
            ("bin/", EntryType::Directory),
            ("bin/tool", EntryType::Regular),
            ("bin/tool-link", EntryType::Link),
            ("deep/", EntryType::Directory),
            (&long, EntryType::Regular),
            ("dev/", EntryType::Directory),
            ("dev/null", EntryType::Char),
            ("etc/", EntryType::Directory),
            ("etc/hostname", EntryType::Regular),
            ("etc/.wh.issue", EntryType::Regular),
            ("etc/link", EntryType::Symlink),
            ("etc/.wh.motd", EntryType::Regular),
            ("etc/passwd", EntryType::Regular),
            ("home/", EntryType::Directory),
            ("home/user.txt", EntryType::Regular),
            ("mnt/", EntryType::Directory),
            ("opt", EntryType::Symlink),
            ("run/", EntryType::Directory),
            ("run/fifo", EntryType::Fifo),
            ("srv/", EntryType::Directory),
            ("srv/.wh..wh..opq", EntryType::Regular),
            ("srv/index.html", EntryType::Regular),
            ("tmp/", EntryType::Directory),
            ("usr/", EntryType::Directory),
            ("usr/bin/", EntryType::Directory),
            ("usr/bin/ping", EntryType::Regular),
            ("usr/lib/", EntryType::Directory),
            ("usr/lib/long", EntryType::Symlink),
            ("var/", EntryType::Directory),
            ("var/cache/", EntryType::Directory),
            ("var/cache/.wh..wh..opq", EntryType::Regular),
            ("var/cache/new", EntryType::Regular),
        ];
        let got: Vec<(&str, EntryType)> = seen
            .iter()
            .map(|entry| (entry.path.as_str(), entry.kind))
            .collect();
        assert_eq!(got, expected, "{seen:#?}");
        assert_eq!(snapshot.entries, expected.len() as u64);

        assert_eq!(find(&seen, "bin/tool").mode, 0o4755);
        assert_eq!(find(&seen, "bin/tool").contents, b"#!/bin/sh\n");
        assert_eq!(
            find(&seen, "bin/tool-link").link.as_deref(),
            Some("bin/tool")
        );
        assert_eq!(find(&seen, "tmp/").mode, 0o1777);
        // The symlink is stored, never read through (the host's /etc/passwd).
        let link = find(&seen, "etc/link");
        assert_eq!(
            (link.link.as_deref(), link.contents.len()),
            (Some("/etc/passwd"), 0)
        );
        assert!(!seen.iter().any(|entry| entry.path.starts_with("opt/")));
        assert_eq!(
            find(&seen, "usr/lib/long").link.as_deref(),
            Some("x/".repeat(60).as_str())
        );
        // Whiteouts and opaque markers: empty, no mode, root's, at time 0.
        for marker in [
            "etc/.wh.issue",
            "etc/.wh.motd",
            "srv/.wh..wh..opq",
            "var/cache/.wh..wh..opq",
        ] {
            let marker = find(&seen, marker);
            assert_eq!((marker.mode, marker.owner, marker.mtime), (0, (0, 0), 0));
            assert!(marker.contents.is_empty() && marker.xattrs.is_empty());
        }
        let user = find(&seen, "home/user.txt");
        assert_eq!(user.owner, (1000, 1001));
        assert_eq!(
            user.xattrs,
            [("user.comment".to_string(), b"hello".to_vec())]
        );
        let ping = find(&seen, "usr/bin/ping");
        assert_eq!(
            ping.xattrs,
            [("security.capability".to_string(), CAP_NET_RAW.to_vec())]
        );
        // overlayfs's own xattrs never go in a layer.
        assert!(find(&seen, "srv/").xattrs.is_empty());
        assert!(find(&seen, "var/cache/").xattrs.is_empty());
    }

    #[test]
    fn a_snapshot_applies_back_to_the_same_files() {
        let scratch = sample("round-trip");
        let options = SnapshotOptions {
            mount_points: MOUNT_POINTS,
            clamp_mtime: None,
        };
        let (snapshot, blob) = scratch.snapshot(&options);
        let unpacked = scratch.dir.join("unpacked");
        let expect = Expected {
            digest: Some(snapshot.digest.to_string()),
            size: Some(snapshot.size),
            diff_id: Some(snapshot.diff_id.to_string()),
        };
        let applied = apply(
            blob.as_slice(),
            Compression::Gzip,
            &unpacked,
            &expect,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(
            (applied.entries, applied.tar_size),
            (snapshot.entries, snapshot.tar_size)
        );
        assert_eq!(applied.dropped_xattrs, 0);

        let at = |path: &str| unpacked.join(path);
        let meta = |path: &str| std::fs::symlink_metadata(at(path)).unwrap();
        for whiteout in ["etc/issue", "etc/motd"] {
            let whiteout = meta(whiteout);
            assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
        }
        assert_eq!(meta("dev/null").rdev(), makedev(1, 3));
        assert!(meta("run/fifo").file_type().is_fifo());
        for opaque in ["srv", "var/cache"] {
            let value = get_xattr(&at(opaque), "trusted.overlay.opaque");
            assert_eq!(value.as_deref(), Some(&b"y"[..]), "{opaque}");
        }
        assert_eq!(
            std::fs::read_link(at("etc/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(std::fs::read_link(at("opt")).unwrap(), Path::new("/etc"));
        assert_eq!(meta("bin/tool").ino(), meta("bin/tool-link").ino());
        assert_eq!(meta("bin/tool").mode() & 0o7777, 0o4755);
        assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
        let user = meta("home/user.txt");
        assert_eq!(
            (user.uid(), user.gid(), user.mode() & 0o7777),
            (1000, 1001, 0o640)
        );
        let comment = get_xattr(&at("home/user.txt"), "user.comment");
        assert_eq!(comment.as_deref(), Some(&b"hello"[..]));
        assert_eq!(get_xattr(&at("home/user.txt"), "trusted.secret"), None);
        let capability = get_xattr(&at("usr/bin/ping"), "security.capability");
        assert_eq!(capability.as_deref(), Some(CAP_NET_RAW));
        let long = at(&format!("deep/{}", "n".repeat(150)));
        assert_eq!(std::fs::read_to_string(long).unwrap(), "long\n");
        for gone in ["etc/hosts", "data", "run/sock"] {
            assert!(std::fs::symlink_metadata(at(gone)).is_err(), "{gone}");
        }
        assert!(meta("mnt").is_dir() && meta("etc/hostname").is_file());

        // What apply made, snapshotted again, is the same layer byte for byte.
        let mut again = Vec::new();
        super::snapshot(&unpacked, &SnapshotOptions::default(), &mut again).unwrap();
        assert!(again == blob, "{:#?}", read_back(&again));
    }

    #[test]
    fn snapshots_are_reproducible_and_mtimes_clamped() {
        let scratch = sample("reproducible");
        let future = TimeSpec::new(4_000_000_000, 123);
        let passwd = scratch.upper().join("etc/passwd");
        utimensat(
            None,
            &passwd,
            &future,
            &future,
            UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
        let (first, blob) = scratch.snapshot(&SnapshotOptions::default());
        let (second, again) = scratch.snapshot(&SnapshotOptions::default());
        assert_eq!(first, second);
        assert!(blob == again, "two snapshots of one directory differ");
        assert_eq!(find(&read_back(&blob), "etc/passwd").mtime, 4_000_000_000);

        let clamped = SnapshotOptions {
            mount_points: &[],
            clamp_mtime: Some(1_000_000),
        };
        let (clamped, blob) = scratch.snapshot(&clamped);
        let seen = read_back(&blob);
        assert!(
            seen.iter().all(|entry| entry.mtime <= 1_000_000),
            "{seen:#?}"
        );
        assert_eq!(find(&seen, "etc/passwd").mtime, 1_000_000);
        assert_ne!(clamped.diff_id, first.diff_id);
    }

    #[test]
    fn an_empty_upper_directory_is_an_empty_layer() {
        let scratch = Scratch::new("empty");
        let (snapshot, blob) = scratch.snapshot(&SnapshotOptions::default());
        // The end-of-archive marker alone: docker's well-known empty layer.
        assert_eq!(
            snapshot.diff_id.as_str(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!((snapshot.tar_size, snapshot.entries), (1024, 0));
        assert_eq!(
            (snapshot.size, snapshot.digest),
            (blob.len() as u64, Digest::of(&blob))
        );
        assert!(read_back(&blob).is_empty());
    }

    #[test]
    fn mount_points_are_left_out_only_while_empty() {
        let scratch = Scratch::new("mount-points");
        scratch
            .file("etc/hosts", "", 0o644)
            .file("etc/resolv.conf", "nameserver 10.0.0.1\n", 0o644)
            .dir("data", 0o755)
            .file("srv/www/index.html", "<p>\n", 0o644);
        let options = SnapshotOptions {
            mount_points: &["etc/hosts", "etc/resolv.conf", "data", "srv/www"],
            clamp_mtime: None,
        };
        let (_, blob) = scratch.snapshot(&options);
        let paths: Vec<String> = read_back(&blob)
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/resolv.conf",
                "srv/",
                "srv/www/",
                "srv/www/index.html"
            ]
        );
    }

    #[test]
    fn entries_a_layer_cannot_hold_are_refused() {
        let scratch = Scratch::new("refused");
        scratch
            .file("etc/passwd", "", 0o644)
            .xattr("etc/passwd", "trusted.overlay.metacopy", b"");
        let error = snapshot(&scratch.upper(), &SnapshotOptions::default(), io::sink());
        match error {
            Err(error @ SnapshotError::DataBelow { .. }) => assert_eq!(
                error.to_string(),
                "etc/passwd in the upper directory has trusted.overlay.metacopy: \
                 its data is in a lower layer, refusing it"
            ),
            other => panic!("expected DataBelow, got {other:?}"),
        }
        let scratch = Scratch::new("refused-name");
        scratch.file("srv/.wh.index.html", "", 0o644);
        let error = snapshot(&scratch.upper(), &SnapshotOptions::default(), io::sink());
        let refused = Path::new("srv/.wh.index.html");
        assert!(
            matches!(&error, Err(SnapshotError::ReservedName { path }) if path == refused),
            "{error:?}"
        );
    }

    #[test]
    fn one_entry_becomes_its_layer_entries() {
        let scratch = Scratch::new("layer-entries");
        scratch
            .node("etc/motd", SFlag::S_IFCHR, 0, (0, 0))
            .dir("var/cache", 0o755)
            .xattr("var/cache", "trusted.overlay.opaque", b"y")
            .dir("var/lib", 0o755)
            .xattr("var/lib", "trusted.overlay.opaque", b"x")
            .node("dev/tty", SFlag::S_IFCHR, 0o666, (5, 0));
        let root = Root::open(&scratch.upper()).unwrap();
        let entries = |path: &str| {
            let path = Path::new(path);
            let parent = root
                .require(path.parent().unwrap(), Kind::Directory)
                .unwrap();
            let entry = root
                .open_in(&parent, path.file_name().unwrap())
                .unwrap()
                .unwrap();
            let stat = nix::sys::stat::fstat(entry.fd().as_raw_fd()).unwrap();
            layer_entries(&entry, &stat, &layer_path(&entry.path)).unwrap()
        };
        assert_eq!(
            entries("/etc/motd"),
            [LayerEntry::Marker("etc/.wh.motd".into())]
        );
        assert_eq!(
            entries("/var/cache"),
            [
                LayerEntry::Itself,
                LayerEntry::Marker("var/cache/.wh..wh..opq".into())
            ]
        );
        // `x` marks a directory holding overlayfs "xwhiteouts": not opaque.
        assert_eq!(entries("/var/lib"), [LayerEntry::Itself]);
        assert_eq!(entries("/dev/tty"), [LayerEntry::Itself]);
    }
}
