//! What each tar entry becomes in the layer directory (the table in the module
//! doc of [`super`]). Its name is checked first: made relative, `..` refused, the
//! `.wh.` prefix read as a whiteout or an opaque marker. Its parent directory is
//! then resolved in the layer without following a symlink ([`crate::safe_path`]),
//! whatever an earlier entry left at its name is removed, and the entry is created
//! with `*at` calls on that directory's descriptor: a file, directory, symlink, hard
//! link (to a file of this layer only), device or FIFO, then its owner, mode, the
//! xattrs [`XATTRS`](super::XATTRS) keeps, and its times.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::stream::HeaderBudget;
use super::{keeps_xattr, LayerError, Limits};
use crate::safe_path::{Kind, Resolved, Root, SafePathError};
use crate::sys;

/// The overlayfs xattr that makes a directory hide the lower layers' one.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What an entry does, by its last name (OCI image-spec, layer.md, "Whiteouts").
enum Action {
    /// `.wh.NAME`: NAME, from a lower layer, is deleted.
    Whiteout(OsString),
    /// `.wh..wh..opq`: its directory hides the lower layers' one.
    Opaque,
    /// Any other name: the entry itself.
    Create,
}

/// Why a name cannot be a path in the layer.
enum BadName {
    TooLong,
    DotDot,
}

/// The path an entry's name means in the layer, relative to it: empty components,
/// `.` and a leading `/` dropped; `..` refused.
fn layer_path(name: &[u8], max: usize) -> Result<PathBuf, BadName> {
    if name.len() > max {
        return Err(BadName::TooLong);
    }
    let mut path = PathBuf::new();
    for component in Path::new(OsStr::from_bytes(name)).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::ParentDir => return Err(BadName::DotDot),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(path)
}

/// What the entry at `path` does: a whiteout, an opaque marker, or itself. The
/// `.wh.` prefix means something only in the last name, and `.wh..wh.` only as
/// `.wh..wh..opq` (older prefixes were aufs's bookkeeping, never in an OCI layer).
fn action(entry: &Path, path: &Path) -> Result<Action, LayerError> {
    // BEGIN SOLUTION ch06 "recognise whiteouts: .wh.NAME deletes NAME, .wh..wh..opq makes its directory opaque"
    let reserved = || LayerError::ReservedName {
        entry: entry.to_path_buf(),
    };
    let mut names = path.iter().rev();
    let Some(last) = names.next() else {
        return Ok(Action::Create);
    };
    if names.any(|name| name.as_bytes().starts_with(b".wh.")) {
        return Err(reserved());
    }
    let last = last.as_bytes();
    if last == b".wh..wh..opq" {
        return Ok(Action::Opaque);
    }
    if last.starts_with(b".wh..wh.") {
        return Err(reserved());
    }
    match last.strip_prefix(b".wh.") {
        Some(b"" | b"." | b"..") => Err(LayerError::BadWhiteout {
            entry: entry.to_path_buf(),
        }),
        Some(name) => Ok(Action::Whiteout(OsStr::from_bytes(name).to_os_string())),
        None => Ok(Action::Create),
    }
    // END SOLUTION
}

/// An entry's type as people say it.
fn type_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Regular => "regular file",
        EntryType::Continuous => "contiguous file",
        EntryType::Directory => "directory",
        EntryType::Symlink => "symlink",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "FIFO",
        EntryType::GNUSparse => "GNU sparse file",
        EntryType::XGlobalHeader => "PAX global header",
        _ => "tar entry of an unknown type",
    }
}

/// What an entry says about the file it makes, besides its contents.
struct Metadata {
    /// Permission bits, setuid, setgid and sticky included.
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    /// `SCHILY.xattr.*` PAX records, unfiltered.
    xattrs: Vec<(String, Vec<u8>)>,
}

/// The metadata of `tar_entry` (`entry` names it in messages). PAX records override
/// the header: uid and gid (the `tar` crate applies them), mtime (with nanoseconds).
fn metadata<R: Read>(
    entry: &Path,
    tar_entry: &mut tar::Entry<'_, R>,
) -> Result<Metadata, LayerError> {
    let header_error = |source| LayerError::Header {
        entry: entry.to_path_buf(),
        source,
    };
    let id = |id: u64| {
        u32::try_from(id).map_err(|_| header_error(io::Error::other("uid or gid over 32 bits")))
    };
    let header = tar_entry.header();
    let mode = header.mode().map_err(header_error)? & 0o7777;
    let uid = id(header.uid().map_err(header_error)?)?;
    let gid = id(header.gid().map_err(header_error)?)?;
    let seconds = header.mtime().map_err(header_error)?;
    let mut mtime = TimeSpec::new(i64::try_from(seconds).unwrap_or(i64::MAX), 0);
    let mut xattrs = Vec::new();
    if let Some(records) = tar_entry.pax_extensions().map_err(header_error)? {
        for record in records {
            let record = record.map_err(header_error)?;
            let Ok(key) = record.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                xattrs.push((name.to_string(), record.value_bytes().to_vec()));
            } else if key == "mtime" {
                if let Some(time) = record.value().ok().and_then(pax_time) {
                    mtime = time;
                }
            }
        }
    }
    Ok(Metadata {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A PAX time, `SECONDS[.FRACTION]`; a negative one keeps only its seconds.
fn pax_time(value: &str) -> Option<TimeSpec> {
    let (seconds, fraction) = value.split_once('.').unwrap_or((value, ""));
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(9).collect();
    let nanos = match digits.parse::<i64>() {
        Ok(n) if seconds >= 0 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            n * 10i64.pow(9 - digits.len() as u32)
        }
        _ => 0,
    };
    Some(TimeSpec::new(seconds, nanos))
}

/// One layer's unpacking: the layer directory, and what is counted on the way.
pub(super) struct Unpacker<'a> {
    layer: &'a Root,
    limits: &'a Limits,
    /// Whether files get their owners (only root may give files away).
    owners: bool,
    pub(super) entries: u64,
    pub(super) dropped_xattrs: u64,
    /// Directories and their mtimes, set at the end: every entry created in a
    /// directory changes its mtime.
    directories: Vec<(PathBuf, TimeSpec)>,
}

impl<'a> Unpacker<'a> {
    pub(super) fn new(layer: &'a Root, limits: &'a Limits) -> Unpacker<'a> {
        Unpacker {
            layer,
            limits,
            owners: nix::unistd::geteuid().is_root(),
            entries: 0,
            dropped_xattrs: 0,
            directories: Vec::new(),
        }
    }

    /// Applies every entry of `archive`, then sets the directories' mtimes.
    pub(super) fn unpack<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        budget: &HeaderBudget,
    ) -> Result<(), LayerError> {
        let tar_error = |source| LayerError::Tar { source };
        budget.start(self.limits.max_header);
        for tar_entry in archive.entries().map_err(tar_error)? {
            let mut tar_entry = tar_entry.map_err(tar_error)?;
            budget.stop();
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(LayerError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            self.apply_entry(&mut tar_entry)?;
            // What is left of its body (a directory's, say): the next headers are
            // then all the parser reads before it hands out the next entry.
            io::copy(&mut tar_entry, &mut io::sink()).map_err(tar_error)?;
            budget.start(self.limits.max_header);
        }
        budget.stop();
        self.set_directory_times()
    }

    fn apply_entry<R: Read>(
        &mut self,
        tar_entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let raw = tar_entry.path_bytes().into_owned();
        let entry = shown(&raw);
        let kind = tar_entry.header().entry_type();
        log::debug!("layer entry {} ({})", entry.display(), type_name(kind));
        if kind == EntryType::XGlobalHeader {
            // Defaults for the entries after it, which PAX writers repeat in each.
            return Ok(());
        }
        let path = layer_path(&raw, self.limits.max_name).map_err(|bad| match bad {
            BadName::TooLong => LayerError::NameTooLong {
                entry: entry.clone(),
                limit: self.limits.max_name,
            },
            BadName::DotDot => LayerError::Escapes {
                entry: entry.clone(),
            },
        })?;
        let action = action(&entry, &path)?;
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return self.apply_root(&entry, kind, tar_entry);
        };
        let parent = self.parent_dir(&entry, parent)?;
        match action {
            Action::Whiteout(name) => self.whiteout(&entry, &parent, &name),
            Action::Opaque => set_xattr(&entry, &parent, OPAQUE_XATTR, b"y"),
            Action::Create => self.create(&entry, &parent, name, kind, tar_entry),
        }
    }

    /// An entry for the layer's root itself (`./`): a directory updates it, anything
    /// else would replace the layer by a file or a link and is refused.
    fn apply_root<R: Read>(
        &mut self,
        entry: &Path,
        kind: EntryType,
        tar_entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        if kind != EntryType::Directory {
            return Err(LayerError::RootNotDirectory {
                entry: entry.to_path_buf(),
                kind: type_name(kind),
            });
        }
        let root = self
            .layer
            .require(Path::new("/"), Kind::Directory)
            .map_err(|source| self.parent_error(entry, source))?;
        let metadata = metadata(entry, tar_entry)?;
        self.set_metadata(entry, &root, &metadata)?;
        self.directories.push((root.path, metadata.mtime));
        Ok(())
    }

    /// The directory an entry goes in, resolved in the layer without following a
    /// symlink; missing directories are created (0755, as containerd does: not every
    /// tar lists its directories before their contents).
    fn parent_dir(&self, entry: &Path, parent: &Path) -> Result<Resolved, LayerError> {
        let parent = Path::new("/").join(parent);
        let resolved = if parent == Path::new("/") {
            self.layer.require(&parent, Kind::Directory)
        } else {
            self.layer.create_dirs(&parent)
        };
        resolved.map_err(|source| self.parent_error(entry, source))
    }

    fn parent_error(&self, entry: &Path, source: SafePathError) -> LayerError {
        match source {
            SafePathError::Symlink { path, target } => LayerError::ThroughSymlink {
                entry: entry.to_path_buf(),
                link: path,
                target,
            },
            source => LayerError::Parent {
                entry: entry.to_path_buf(),
                source,
            },
        }
    }

    /// A whiteout: the character device 0:0 named `name`. Whiteouts delete only from
    /// lower layers (the spec): if an entry of this layer is there, it stays, and
    /// hides the lower ones anyway.
    fn whiteout(&self, entry: &Path, parent: &Resolved, name: &OsStr) -> Result<(), LayerError> {
        // BEGIN SOLUTION ch06 "write a whiteout as overlayfs reads it: a character device 0:0 (mknodat(2))"
        if self.open(entry, parent, name)?.is_some() {
            log::debug!(
                "{} whites out an entry of its own layer: kept",
                entry.display()
            );
            return Ok(());
        }
        mknod(parent, name, SFlag::S_IFCHR, (0, 0)).map_err(|source| LayerError::Create {
            entry: entry.to_path_buf(),
            kind: "whiteout",
            source,
        })
        // END SOLUTION
    }

    /// Creates the entry `name` in `parent`, replacing what is there, and gives it
    /// its metadata.
    fn create<R: Read>(
        &mut self,
        entry: &Path,
        parent: &Resolved,
        name: &OsStr,
        kind: EntryType,
        tar_entry: &mut tar::Entry<'_, R>,
    ) -> Result<(), LayerError> {
        let create_error = |source| LayerError::Create {
            entry: entry.to_path_buf(),
            kind: type_name(kind),
            source,
        };
        let metadata = metadata(entry, tar_entry)?;
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                self.make_room(entry, parent, name, false)?;
                let mut file =
                    self.layer
                        .create_file_in(parent, name, 0o600)
                        .map_err(|source| LayerError::CreateFile {
                            entry: entry.to_path_buf(),
                            source,
                        })?;
                write_body(entry, tar_entry, &mut file)?;
            }
            EntryType::Directory => {
                if !self.make_room(entry, parent, name, true)? {
                    nix::sys::stat::mkdirat(Some(raw(parent)), name, Mode::S_IRWXU)
                        .map_err(create_error)?;
                }
            }
            EntryType::Symlink => {
                let target = self.link_target(entry, tar_entry)?;
                self.make_room(entry, parent, name, false)?;
                nix::unistd::symlinkat(target.as_os_str(), Some(raw(parent)), name)
                    .map_err(create_error)?;
            }
            EntryType::Link => {
                let target = self.link_target(entry, tar_entry)?;
                // A hard link shares its target's inode, and so its metadata.
                return self.hard_link(entry, parent, name, &target);
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (file_type, device) = node_kind(entry, kind, tar_entry.header())?;
                self.make_room(entry, parent, name, false)?;
                mknod(parent, name, file_type, device).map_err(create_error)?;
            }
            _ => {
                return Err(LayerError::UnsupportedType {
                    entry: entry.to_path_buf(),
                    kind: type_name(kind),
                })
            }
        }
        let node = self
            .open(entry, parent, name)?
            .ok_or_else(|| create_error(Errno::ENOENT))?;
        self.set_metadata(entry, &node, &metadata)?;
        if kind == EntryType::Directory {
            self.directories.push((node.path, metadata.mtime));
            Ok(())
        } else {
            set_times(entry, &node, metadata.mtime)
        }
    }

    /// A hard link `name` in `parent` to `target`, a file this layer already has:
    /// resolved without following symlinks, and linked as it is (a symlink itself).
    fn hard_link(
        &self,
        entry: &Path,
        parent: &Resolved,
        name: &OsStr,
        target: &Path,
    ) -> Result<(), LayerError> {
        let missing = || LayerError::LinkMissing {
            entry: entry.to_path_buf(),
            target: target.to_path_buf(),
        };
        let path =
            layer_path(target.as_os_str().as_bytes(), self.limits.max_name).map_err(|_| {
                LayerError::LinkEscapes {
                    entry: entry.to_path_buf(),
                    target: target.to_path_buf(),
                }
            })?;
        let (Some(target_dir), Some(target_name)) = (path.parent(), path.file_name()) else {
            return Err(missing());
        };
        let dir = match self
            .layer
            .resolve_no_symlinks(&Path::new("/").join(target_dir), Kind::Directory)
        {
            Ok(Some(dir)) => dir,
            Ok(None) | Err(SafePathError::WrongKind { .. }) => return Err(missing()),
            Err(SafePathError::Symlink { path, .. }) => {
                return Err(LayerError::LinkThroughSymlink {
                    entry: entry.to_path_buf(),
                    target: target.to_path_buf(),
                    link: path,
                })
            }
            Err(source) => return Err(self.parent_error(entry, source)),
        };
        match self.open(entry, &dir, target_name)? {
            Some(node) if !node.is_dir() => {}
            _ => return Err(missing()),
        }
        self.make_room(entry, parent, name, false)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink.
        nix::unistd::linkat(
            Some(raw(&dir)),
            target_name,
            Some(raw(parent)),
            name,
            AtFlags::empty(),
        )
        .map_err(|source| LayerError::Create {
            entry: entry.to_path_buf(),
            kind: "hard link",
            source,
        })
    }

    /// Clears the way for the entry `name` in `parent`: a later entry replaces an
    /// earlier one, so whatever is there is removed — a directory with all it holds, a
    /// symlink or hard link itself, never what it points to — unless both are
    /// directories, which merge. Returns whether a directory was kept.
    fn make_room(
        &self,
        entry: &Path,
        parent: &Resolved,
        name: &OsStr,
        directory: bool,
    ) -> Result<bool, LayerError> {
        let Some(existing) = self.open(entry, parent, name)? else {
            return Ok(false);
        };
        if directory && existing.is_dir() {
            return Ok(true);
        }
        self.layer
            .remove_in(parent, name)
            .map_err(|source| LayerError::Replace {
                entry: entry.to_path_buf(),
                source,
            })?;
        Ok(false)
    }

    /// What is at `name` in `parent`, opened itself (never followed).
    fn open(
        &self,
        entry: &Path,
        parent: &Resolved,
        name: &OsStr,
    ) -> Result<Option<Resolved>, LayerError> {
        self.layer
            .open_in(parent, name)
            .map_err(|source| LayerError::Parent {
                entry: entry.to_path_buf(),
                source,
            })
    }

    /// A link entry's target, within the name cap.
    fn link_target<R: Read>(
        &self,
        entry: &Path,
        tar_entry: &tar::Entry<'_, R>,
    ) -> Result<PathBuf, LayerError> {
        let target = tar_entry
            .link_name_bytes()
            .ok_or_else(|| LayerError::Header {
                entry: entry.to_path_buf(),
                source: io::Error::other("a link without a target"),
            })?;
        if target.len() > self.limits.max_name {
            return Err(LayerError::NameTooLong {
                entry: entry.to_path_buf(),
                limit: self.limits.max_name,
            });
        }
        Ok(PathBuf::from(OsStr::from_bytes(&target)))
    }

    /// Owner, then mode (chown clears setuid), then xattrs (chown clears
    /// `security.capability`), through the node's descriptor. Symlinks have no mode
    /// of their own.
    fn set_metadata(
        &mut self,
        entry: &Path,
        node: &Resolved,
        metadata: &Metadata,
    ) -> Result<(), LayerError> {
        let metadata_error = |what: &str| {
            let what = what.to_string();
            move |source| LayerError::Metadata {
                entry: entry.to_path_buf(),
                what,
                source,
            }
        };
        if self.owners {
            nix::unistd::fchownat(
                None,
                &node.fd_path(),
                Some(metadata.uid.into()),
                Some(metadata.gid.into()),
                AtFlags::empty(),
            )
            .map_err(metadata_error("owner"))?;
        }
        if !node.is_symlink() {
            nix::sys::stat::fchmodat(
                None,
                &node.fd_path(),
                Mode::from_bits_truncate(metadata.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(metadata_error("mode"))?;
        }
        for (name, value) in &metadata.xattrs {
            if keeps_xattr(name) {
                set_xattr(entry, node, name, value)?;
            } else {
                log::debug!("layer entry {}: xattr {name} dropped", entry.display());
                self.dropped_xattrs += 1;
            }
        }
        Ok(())
    }

    /// The directories' mtimes, once nothing more is created in them. A directory a
    /// later entry replaced is skipped.
    fn set_directory_times(&self) -> Result<(), LayerError> {
        for (path, mtime) in &self.directories {
            match self.layer.resolve_no_symlinks(path, Kind::Directory) {
                Ok(Some(dir)) => set_times(path, &dir, *mtime)?,
                Ok(None) | Err(SafePathError::WrongKind { .. } | SafePathError::Symlink { .. }) => {
                }
                Err(source) => return Err(self.parent_error(path, source)),
            }
        }
        Ok(())
    }
}

/// The descriptor of a resolved directory, for the `*at` calls.
fn raw(dir: &Resolved) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    dir.fd().as_raw_fd()
}

/// An entry's name for messages: at most 256 bytes of it, and `...` if there is more.
fn shown(name: &[u8]) -> PathBuf {
    if name.len() <= 256 {
        return PathBuf::from(OsStr::from_bytes(name));
    }
    PathBuf::from(OsStr::from_bytes(&[&name[..256], b"..."].concat()))
}

/// The file type and the device numbers (major, minor) of a device or FIFO entry.
/// A FIFO has none: its header's device fields are often left empty.
fn node_kind(
    entry: &Path,
    kind: EntryType,
    header: &tar::Header,
) -> Result<(SFlag, (u32, u32)), LayerError> {
    let file_type = match kind {
        EntryType::Char => SFlag::S_IFCHR,
        EntryType::Block => SFlag::S_IFBLK,
        _ => return Ok((SFlag::S_IFIFO, (0, 0))),
    };
    let number = |number: io::Result<Option<u32>>| {
        number
            .map(|number| number.unwrap_or(0))
            .map_err(|source| LayerError::Header {
                entry: entry.to_path_buf(),
                source,
            })
    };
    let device = (
        number(header.device_major())?,
        number(header.device_minor())?,
    );
    Ok((file_type, device))
}

/// Creates the device node or FIFO `name` in `parent` (mknodat(2)); its mode is set
/// afterwards, past the umask.
fn mknod(
    parent: &Resolved,
    name: &OsStr,
    kind: SFlag,
    (major, minor): (u32, u32),
) -> nix::Result<()> {
    let device = nix::sys::stat::makedev(major.into(), minor.into());
    nix::sys::stat::mknodat(Some(raw(parent)), name, kind, Mode::empty(), device)
}

/// Copies an entry's body into its new file. A failed read is the stream's failure,
/// a failed write the file's.
fn write_body<R: Read>(
    entry: &Path,
    tar_entry: &mut tar::Entry<'_, R>,
    file: &mut std::fs::File,
) -> Result<(), LayerError> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match tar_entry.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(LayerError::Tar { source }),
        };
        file.write_all(&buffer[..n])
            .map_err(|source| LayerError::Write {
                entry: entry.to_path_buf(),
                source,
            })?;
    }
}

/// Sets the xattr `name` of `node` (setxattr(2) through its descriptor).
fn set_xattr(entry: &Path, node: &Resolved, name: &str, value: &[u8]) -> Result<(), LayerError> {
    sys::set_xattr(node.fd(), name, value).map_err(|source| LayerError::Metadata {
        entry: entry.to_path_buf(),
        what: format!("xattr {name}"),
        source,
    })
}

/// Sets the access and modification times of `node` to `mtime` (utimensat(2)
/// through its descriptor's magic link, which lands on a symlink itself).
fn set_times(entry: &Path, node: &Resolved, mtime: TimeSpec) -> Result<(), LayerError> {
    nix::sys::stat::utimensat(
        None,
        &node.fd_path(),
        &mtime,
        &mtime,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .map_err(|source| LayerError::Metadata {
        entry: entry.to_path_buf(),
        what: "times".to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_refused, case, Case, Tarball};
    use super::super::{Compression, Expected, Limits};
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)
            .unwrap();
        sys::get_xattr(file.as_fd(), name).unwrap()
    }

    #[test]
    fn dotdot_names_are_refused_shallow_and_deep() {
        for (i, name) in [
            "../canary",
            "../../canary",
            "a/../../canary",
            "a/b/../../../canary",
            "./../outside/x",
            "a/..",
        ]
        .into_iter()
        .enumerate()
        {
            let case = case(&format!("dotdot-{i}"));
            let tar = Tarball::new().dir("a/").file(name, b"evil").finish();
            assert_refused!(case.apply(&tar), LayerError::Escapes { .. });
            case.assert_canaries();
        }
    }

    #[test]
    fn absolute_names_are_made_relative_to_the_layer() {
        let case = case("absolute");
        let canary = case.canary();
        let tar = Tarball::new()
            .file("/etc/passwd", b"inside")
            .file(&canary, b"inside")
            .finish();
        case.apply(&tar).unwrap();
        assert_eq!(std::fs::read(case.at("etc/passwd")).unwrap(), b"inside");
        assert_eq!(
            std::fs::read(case.at(canary.trim_start_matches('/'))).unwrap(),
            b"inside"
        );
        case.assert_canaries();
    }

    #[test]
    fn writing_through_a_symlink_of_the_same_layer_is_refused() {
        let targets = |case: &Case| {
            [
                case.outside(),
                "../outside".into(),
                "../..".into(),
                "/".into(),
                "sub/../..".into(),
            ]
        };
        for i in 0..5 {
            for (j, name) in ["evil/canary", "evil/dir/", "evil/a/b/c"]
                .into_iter()
                .enumerate()
            {
                let case = case(&format!("through-link-{i}-{j}"));
                let tar = Tarball::new()
                    .symlink("evil", &targets(&case)[i])
                    .file(name, b"evil")
                    .finish();
                assert_refused!(case.apply(&tar), LayerError::ThroughSymlink { .. });
                case.assert_canaries();
            }
        }
    }

    #[test]
    fn writing_through_a_symlink_of_an_earlier_layer_is_refused() {
        let case = case("through-earlier-link");
        let first = Tarball::new()
            .symlink("etc", &case.outside())
            .symlink("up", "../..")
            .finish();
        case.apply(&first).unwrap();
        for second in [
            Tarball::new().file("etc/passwd", b"evil").finish(),
            Tarball::new().file("up/canary", b"evil").finish(),
            Tarball::new().dir("etc/cron.d/").finish(),
            Tarball::new().symlink("etc/x", "/").finish(),
        ] {
            assert_refused!(case.apply(&second), LayerError::ThroughSymlink { .. });
            case.assert_canaries();
        }
    }

    #[test]
    fn hard_links_out_of_the_layer_are_refused() {
        // Each layer has `a/` and `evil`, a symlink to the directory of the canary.
        let applied = |name: &str, target: &dyn Fn(&Case) -> String| {
            let case = case(name);
            let tar = Tarball::new()
                .dir("a/")
                .symlink("evil", &case.dir.display().to_string())
                .hard_link("x", &target(&case))
                .finish();
            let result = case.apply(&tar);
            case.assert_canaries();
            result
        };
        for (i, target) in ["../canary", "a/../../canary", "/../canary"]
            .into_iter()
            .enumerate()
        {
            let result = applied(&format!("hard-link-up-{i}"), &|_| target.to_string());
            assert_refused!(result, LayerError::LinkEscapes { .. });
        }
        let result = applied("hard-link-through", &|_| "evil/canary".to_string());
        assert_refused!(result, LayerError::LinkThroughSymlink { .. });
        // An absolute target means the same path in the layer: not there.
        let result = applied("hard-link-absolute", &|case| case.canary());
        assert_refused!(result, LayerError::LinkMissing { .. });
        let result = applied("hard-link-missing", &|_| "missing".to_string());
        assert_refused!(result, LayerError::LinkMissing { .. });
        let result = applied("hard-link-dir", &|_| "a".to_string());
        assert_refused!(result, LayerError::LinkMissing { .. });
    }

    #[test]
    fn hard_links_inside_the_layer_share_the_file() {
        let case = case("hard-link-inside");
        let tar = Tarball::new()
            .file("bin/busybox", b"#!busybox")
            .hard_link("bin/sh", "bin/busybox")
            .hard_link("/bin/ls", "/bin/busybox")
            .symlink("bin/link", "busybox")
            .hard_link("bin/link2", "bin/link")
            .finish();
        case.apply(&tar).unwrap();
        let busybox = std::fs::metadata(case.at("bin/busybox")).unwrap();
        assert_eq!(busybox.nlink(), 3);
        assert_eq!(
            std::fs::metadata(case.at("bin/sh")).unwrap().ino(),
            busybox.ino()
        );
        // A hard link to a symlink links the symlink itself.
        let link2 = std::fs::symlink_metadata(case.at("bin/link2")).unwrap();
        assert!(link2.file_type().is_symlink());
        case.assert_canaries();
    }

    #[test]
    fn whiteouts_through_symlinks_are_refused() {
        for (i, name) in [
            "evil/.wh.canary",
            "evil/.wh..wh..opq",
            "evil/outside/.wh..wh..opq",
        ]
        .into_iter()
        .enumerate()
        {
            let case = case(&format!("whiteout-link-{i}"));
            let tar = Tarball::new()
                .symlink("evil", &case.dir.display().to_string())
                .file(name, b"")
                .finish();
            assert_refused!(case.apply(&tar), LayerError::ThroughSymlink { .. });
            case.assert_canaries();
            assert_eq!(xattr(&case.dir.join("outside"), OPAQUE_XATTR), None);
        }
    }

    #[test]
    fn whiteouts_of_no_name_and_misplaced_prefixes_are_refused() {
        for (i, name) in [".wh.", ".wh..", ".wh...", "a/.wh...", "a/.wh."]
            .into_iter()
            .enumerate()
        {
            let case = case(&format!("whiteout-name-{i}"));
            let tar = Tarball::new().dir("a/").file(name, b"").finish();
            assert_refused!(case.apply(&tar), LayerError::BadWhiteout { .. });
            case.assert_canaries();
        }
        for (i, name) in [".wh..wh.plnk/1", ".wh..wh.aufs", ".wh.a/b"]
            .into_iter()
            .enumerate()
        {
            let case = case(&format!("whiteout-reserved-{i}"));
            let tar = Tarball::new().file(name, b"").finish();
            assert_refused!(case.apply(&tar), LayerError::ReservedName { .. });
        }
    }

    #[test]
    fn only_a_directory_may_stand_for_the_layer_root() {
        for (i, tar) in [
            Tarball::new().file("./", b"evil").finish(),
            Tarball::new().symlink("/", "/etc").finish(),
            Tarball::new().symlink(".", "..").finish(),
            Tarball::new()
                .entry(EntryType::Fifo, "./.", "", 0o644, b"")
                .finish(),
        ]
        .into_iter()
        .enumerate()
        {
            let case = case(&format!("root-kind-{i}"));
            assert_refused!(case.apply(&tar), LayerError::RootNotDirectory { .. });
            assert!(std::fs::symlink_metadata(&case.root).unwrap().is_dir());
            case.assert_canaries();
        }
        let case = case("root-dir");
        let tar = Tarball::new()
            .entry(EntryType::Directory, "./", "", 0o750, b"")
            .finish();
        case.apply(&tar).unwrap();
        let root = std::fs::metadata(&case.root).unwrap();
        assert_eq!(root.permissions().mode() & 0o7777, 0o750);
        assert_eq!(root.mtime(), 1_000_000);
    }

    #[test]
    fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
        let case = case("replace-symlink");
        let tar = Tarball::new()
            .symlink("abs", &case.canary())
            .symlink("rel", "../canary")
            .symlink("dir", &case.outside())
            .file("abs", b"evil")
            .file("rel", b"evil")
            .dir("dir/")
            .file("dir/file", b"inside")
            .finish();
        case.apply(&tar).unwrap();
        for name in ["abs", "rel"] {
            let meta = std::fs::symlink_metadata(case.at(name)).unwrap();
            assert!(meta.is_file(), "{name} is still a link");
            assert_eq!(std::fs::read(case.at(name)).unwrap(), b"evil");
        }
        assert!(std::fs::symlink_metadata(case.at("dir")).unwrap().is_dir());
        assert_eq!(std::fs::read(case.at("dir/file")).unwrap(), b"inside");
        case.assert_canaries();
    }

    #[test]
    fn a_file_replaces_a_hard_link_instead_of_writing_through_it() {
        let case = case("replace-hard-link");
        let tar = Tarball::new()
            .file("original", b"original")
            .hard_link("x", "original")
            .file("x", b"replaced")
            .finish();
        case.apply(&tar).unwrap();
        assert_eq!(std::fs::read(case.at("original")).unwrap(), b"original");
        assert_eq!(std::fs::metadata(case.at("original")).unwrap().nlink(), 1);
        assert_eq!(std::fs::read(case.at("x")).unwrap(), b"replaced");
        case.assert_canaries();
    }

    #[test]
    fn symlink_loops_are_refused_without_hanging() {
        for (i, name) in ["a/x", "b/x", "self/x", "a/b/c/d"].into_iter().enumerate() {
            let case = case(&format!("loop-{i}"));
            let tar = Tarball::new()
                .symlink("a", "b")
                .symlink("b", "a")
                .symlink("self", "self")
                .file(name, b"evil")
                .finish();
            assert_refused!(case.apply(&tar), LayerError::ThroughSymlink { .. });
            case.assert_canaries();
        }
        // A link to a loop is only a symlink, and a file may replace the loop.
        let case = case("loop-replaced");
        let tar = Tarball::new()
            .symlink("a", "b")
            .symlink("b", "a")
            .hard_link("c", "a")
            .file("a", b"file")
            .finish();
        case.apply(&tar).unwrap();
        assert_eq!(std::fs::read(case.at("a")).unwrap(), b"file");
        assert!(std::fs::symlink_metadata(case.at("c"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn files_and_directories_replace_each_other() {
        let case = case("replace-kinds");
        let tar = Tarball::new()
            .file("d/a/deep", b"deep")
            .symlink("d/link", &case.outside())
            .file("d", b"now a file")
            .file("f", b"a file")
            .dir("f/")
            .file("f/inside", b"inside")
            .dir("kept/")
            .file("kept/x", b"x")
            .entry(EntryType::Directory, "kept/", "", 0o700, b"")
            .finish();
        case.apply(&tar).unwrap();
        assert_eq!(std::fs::read(case.at("d")).unwrap(), b"now a file");
        assert!(std::fs::metadata(case.at("f")).unwrap().is_dir());
        assert_eq!(std::fs::read(case.at("f/inside")).unwrap(), b"inside");
        // A directory entry for an existing directory updates it and keeps its files.
        assert_eq!(std::fs::read(case.at("kept/x")).unwrap(), b"x");
        assert_eq!(
            std::fs::metadata(case.at("kept"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        case.assert_canaries();
    }

    #[test]
    fn pax_and_gnu_long_names_work() {
        let case = case("long-names");
        let long_dir = format!("{}/{}", "d".repeat(150), "e".repeat(150));
        let gnu = format!("{long_dir}/gnu-{}", "g".repeat(120));
        let pax = format!("{long_dir}/pax-{}", "p".repeat(120));
        let target = format!("/{}", "t".repeat(300));
        let tar = Tarball::new()
            .file(&gnu, b"gnu")
            .pax(&[("path", pax.as_bytes()), ("linkpath", target.as_bytes())])
            .symlink("short-name", "ignored")
            .symlink("gnu-link", &target)
            .finish();
        let applied = case.apply(&tar).unwrap();
        assert_eq!(applied.entries, 3);
        assert_eq!(std::fs::read(case.at(&gnu)).unwrap(), b"gnu");
        assert_eq!(
            std::fs::read_link(case.at(&pax)).unwrap(),
            Path::new(&target)
        );
        assert_eq!(
            std::fs::read_link(case.at("gnu-link")).unwrap(),
            Path::new(&target)
        );
        assert!(!case.at("short-name").exists());
    }

    #[test]
    fn names_over_the_cap_are_refused() {
        let case = case("name-cap");
        let name = "n/".repeat(2100);
        let tar = Tarball::new().file(&name, b"").finish();
        assert_refused!(
            case.apply(&tar),
            LayerError::NameTooLong { limit: 4096, .. }
        );
        let target = "t".repeat(300);
        let tar = Tarball::new().symlink("link", &target).finish();
        let limits = Limits {
            max_name: 200,
            ..Limits::default()
        };
        assert_refused!(
            case.apply_with(&tar, Compression::None, &Expected::default(), &limits),
            LayerError::NameTooLong { limit: 200, .. }
        );
    }

    #[test]
    fn a_whiteout_becomes_a_character_device_0_0() {
        let case = case("whiteout");
        let tar = Tarball::new()
            .file("etc/.wh.motd", b"")
            .file("etc/own", b"of this layer")
            .file("etc/.wh.own", b"")
            .finish();
        case.apply(&tar).unwrap();
        let whiteout = std::fs::symlink_metadata(case.at("etc/motd")).unwrap();
        assert!(whiteout.file_type().is_char_device());
        assert_eq!(whiteout.rdev(), 0);
        assert!(!case.at("etc/.wh.motd").exists());
        // A whiteout deletes only from lower layers.
        assert_eq!(std::fs::read(case.at("etc/own")).unwrap(), b"of this layer");
        case.assert_canaries();
    }

    #[test]
    fn an_opaque_whiteout_marks_its_directory() {
        let case = case("opaque");
        let tar = Tarball::new()
            .dir("var/")
            .file("var/.wh..wh..opq", b"")
            .file("var/new", b"new")
            .finish();
        case.apply(&tar).unwrap();
        assert_eq!(
            xattr(&case.at("var"), OPAQUE_XATTR).as_deref(),
            Some(&b"y"[..])
        );
        assert!(!case.at("var/.wh..wh..opq").exists());
        assert_eq!(std::fs::read(case.at("var/new")).unwrap(), b"new");
    }

    #[test]
    fn overlay_and_other_trusted_or_security_xattrs_are_dropped() {
        let case = case("xattrs");
        let tar = Tarball::new()
            .pax(&[
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.trusted.other", b"x"),
                (
                    "SCHILY.xattr.security.selinux",
                    b"system_u:object_r:shadow_t:s0",
                ),
                ("SCHILY.xattr.user.note", b"kept"),
            ])
            .dir("d/")
            .finish();
        let applied = case.apply(&tar).unwrap();
        assert_eq!(applied.dropped_xattrs, 4);
        for name in [
            "trusted.overlay.redirect",
            "trusted.overlay.opaque",
            "trusted.other",
        ] {
            assert_eq!(xattr(&case.at("d"), name), None, "{name}");
        }
        assert_eq!(
            xattr(&case.at("d"), "user.note").as_deref(),
            Some(&b"kept"[..])
        );
    }

    #[test]
    fn modes_owners_times_and_special_files_are_preserved() {
        let case = case("metadata");
        let owned = |mut tar: Tarball, kind, name: &str, link: &str, mode| {
            tar = tar.entry(kind, name, link, mode, b"");
            // Give the entry just written 1234:5678 (in the raw header).
            let at = tar.bytes.len() - 512;
            let mut header = tar::Header::new_gnu();
            header.as_mut_bytes().copy_from_slice(&tar.bytes[at..]);
            header.set_uid(1234);
            header.set_gid(5678);
            header.set_cksum();
            tar.bytes[at..].copy_from_slice(header.as_bytes());
            tar
        };
        let mut tar = Tarball::new().entry(EntryType::Regular, "bin/su", "", 0o4755, b"su");
        tar = owned(tar, EntryType::Symlink, "link", "bin/su", 0o777);
        tar = owned(tar, EntryType::Fifo, "fifo", "", 0o640);
        tar = tar.pax(&[("mtime", b"1234567890.5")]);
        tar = owned(tar, EntryType::Regular, "owned", "", 0o600);
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::Char);
        header.set_device_major(1).unwrap();
        header.set_device_minor(3).unwrap();
        header.set_mode(0o666);
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_000_000);
        header.as_old_mut().name[..4].copy_from_slice(b"null");
        header.set_cksum();
        tar.bytes.extend_from_slice(header.as_bytes());
        let tar = tar
            .entry(EntryType::Directory, "bin/", "", 0o711, b"")
            .finish();
        case.apply(&tar).unwrap();

        let su = std::fs::metadata(case.at("bin/su")).unwrap();
        assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(su.mtime(), 1_000_000);
        let link = std::fs::symlink_metadata(case.at("link")).unwrap();
        assert_eq!((link.uid(), link.gid()), (1234, 5678));
        assert_eq!(
            std::fs::read_link(case.at("link")).unwrap(),
            Path::new("bin/su")
        );
        let fifo = std::fs::symlink_metadata(case.at("fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.permissions().mode() & 0o7777, 0o640);
        let owned = std::fs::metadata(case.at("owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
        assert_eq!(
            (owned.mtime(), owned.mtime_nsec()),
            (1_234_567_890, 500_000_000)
        );
        let null = std::fs::symlink_metadata(case.at("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        // Directories get their mtime once their entries are in.
        let bin = std::fs::metadata(case.at("bin")).unwrap();
        assert_eq!(
            (bin.mtime(), bin.permissions().mode() & 0o7777),
            (1_000_000, 0o711)
        );
    }
}
