//! `docker diff`: what a container changed in its files, read from its overlay.
//!
//! Chapter 5 gave each container an overlay: the image's layers below, read-only,
//! and the container's own *upper* directory, where every write lands. So the upper
//! directory *is* the list of changes, in the kernel's notation:
//!
//! * an entry there that no lower layer has was **added** (`A`);
//! * an entry there that a lower layer has was **changed** (`C`): overlayfs copied
//!   it up to write it, or to change its owner, mode or times;
//! * a *whiteout*, a character device 0:0, says the entry of that name was
//!   **deleted** (`D`); a deleted directory is one whiteout, so one line;
//! * an *opaque* directory (xattr `trusted.overlay.opaque` = `y`) was deleted and
//!   made again: it hides everything below it. It is changed, and each entry the
//!   lower layers had in it and it has not is deleted.
//!
//! A directory the lower layers have is in the upper one as soon as anything below
//! it changed (overlayfs copies the parents up first, with their times). It is
//! reported changed only when its listing changed (an entry directly in it added or
//! deleted) or its own mode, owner or times did — docker's rules (moby's
//! `pkg/archive` changes, moby PR 13590) — so writing `/etc/passwd` reports
//! `C /etc/passwd` but not `/etc`.
//!
//! Both sides are somebody else's files: the upper directory the container's, the
//! layers the image author's. Nothing here follows a symlink: every entry is opened
//! one name at a time with the `safe_path` module (`RESOLVE_NO_SYMLINKS`,
//! `O_NOFOLLOW`), so a symlink is an entry like any other, never a directory to
//! walk into, and a crafted layer cannot make the engine read outside it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{FileStat, SFlag};

use crate::safe_path::{Kind, Resolved, Root, SafePathError};
use crate::sys;

/// Marks a directory made again after its lower one was deleted.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Deleted,
}

/// One line of `docker diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute in the container: `/etc/passwd`.
    pub path: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = match self.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        write!(f, "{letter} {}", self.path)
    }
}

/// The changes a container made: its overlay's `upper` directory compared with the
/// image's layers, `lowers` (top first, as overlayfs's `lowerdir=` lists them).
/// Sorted as docker prints them: by path, a directory before what is in it.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> io::Result<Vec<Change>> {
    let upper = Root::open(upper).map_err(io::Error::other)?;
    let lowers = Lowers {
        layers: lowers
            .iter()
            .map(|lower| Root::open(lower).map_err(io::Error::other))
            .collect::<io::Result<_>>()?,
    };
    let top = upper
        .require(Path::new("/"), Kind::Directory)
        .map_err(io::Error::other)?;
    let mut found = Vec::new();
    walk(&upper, &lowers, &top, Path::new("/"), true, &mut found)?;
    // Path's order compares component by component: `/etc/passwd` before `/etc-old`.
    found.sort_by(|a, b| Path::new(&a.path).cmp(Path::new(&b.path)));
    Ok(found)
}

/// Records the changes under the upper directory `dir`, which is `path` in the
/// container (`in_lowers`: the lower layers have a directory there), and says
/// whether its listing changed: an entry directly in it added or deleted.
fn walk(
    upper: &Root,
    lowers: &Lowers,
    dir: &Resolved,
    path: &Path,
    in_lowers: bool,
    found: &mut Vec<Change>,
) -> io::Result<bool> {
    let mut listing_changed = false;
    for name in names(dir)? {
        // The container may be running: an entry gone since the listing is skipped.
        let Some(entry) = upper.open_in(dir, &name).map_err(io::Error::other)? else {
            continue;
        };
        let child = path.join(&name);
        let stat = stat_of(&entry)?;
        if is_whiteout(&stat) {
            found.push(change(ChangeKind::Deleted, &child));
            listing_changed = true;
            continue;
        }
        let below = match in_lowers {
            true => lowers.find(&child)?,
            false => None,
        };
        let Some(below) = below else {
            if is_dir(&stat) {
                walk(upper, lowers, &entry, &child, false, found)?;
            }
            found.push(change(ChangeKind::Added, &child));
            listing_changed = true;
            continue;
        };
        if !is_dir(&stat) || directory_changed(upper, lowers, &entry, &child, &stat, &below, found)?
        {
            found.push(change(ChangeKind::Changed, &child));
        }
    }
    Ok(listing_changed)
}

/// Walks an upper directory the lower layers also have at `path` (`below`), and
/// says whether it changed itself: its listing, its metadata, or it is opaque.
fn directory_changed(
    upper: &Root,
    lowers: &Lowers,
    entry: &Resolved,
    path: &Path,
    stat: &FileStat,
    below: &FileStat,
    found: &mut Vec<Change>,
) -> io::Result<bool> {
    let listing_changed = walk(upper, lowers, entry, path, is_dir(below), found)?;
    let mut changed = listing_changed || !same_metadata(stat, below);
    if is_dir(below) && is_opaque(entry)? {
        // What the lower layers have here and the new directory has not is gone.
        let kept: BTreeSet<OsString> = names(entry)?.into_iter().collect();
        for name in lowers.names(path)?.difference(&kept) {
            found.push(change(ChangeKind::Deleted, &path.join(name)));
        }
        changed = true;
    }
    Ok(changed)
}

fn change(kind: ChangeKind, path: &Path) -> Change {
    Change {
        kind,
        path: path.to_string_lossy().into_owned(),
    }
}

/// Whether a copied-up directory still has its lower's mode, owner and times:
/// overlayfs copies them up with it, so a difference is the container's doing.
fn same_metadata(upper: &FileStat, lower: &FileStat) -> bool {
    (
        upper.st_mode,
        upper.st_uid,
        upper.st_gid,
        upper.st_mtime,
        upper.st_mtime_nsec,
    ) == (
        lower.st_mode,
        lower.st_uid,
        lower.st_gid,
        lower.st_mtime,
        lower.st_mtime_nsec,
    )
}

/// The image's layers as overlayfs merges them: the top one first; a whiteout, or a
/// file where a directory would be, hides what the layers below have there; an
/// opaque directory hides everything the layers below have in it.
struct Lowers {
    layers: Vec<Root>,
}

/// What one layer says about a path.
enum Probe {
    /// It has the path: its lstat(2).
    Found(FileStat),
    /// It hides the path from the layers below (a whiteout, or a non-directory on
    /// the way).
    Hidden,
    /// It does not have the path; `below_opaque`: one of the path's directories
    /// in it is opaque, so the layers below do not count either.
    Missing { below_opaque: bool },
}

impl Lowers {
    /// The lstat(2) of `path` in the merged layers, `None` when it is not there.
    fn find(&self, path: &Path) -> io::Result<Option<FileStat>> {
        for layer in &self.layers {
            match probe(layer, path)? {
                Probe::Found(stat) => return Ok(Some(stat)),
                Probe::Hidden | Probe::Missing { below_opaque: true } => return Ok(None),
                Probe::Missing {
                    below_opaque: false,
                } => {}
            }
        }
        Ok(None)
    }

    /// The names in the directory `path` of the merged layers.
    fn names(&self, path: &Path) -> io::Result<BTreeSet<OsString>> {
        let mut candidates = BTreeSet::new();
        for layer in &self.layers {
            if let Some(dir) = open(layer, path)? {
                if is_dir(&stat_of(&dir)?) {
                    candidates.extend(names(&dir)?);
                }
            }
        }
        // A name is there only if no layer above hides it (a whiteout is a name too).
        let mut present = BTreeSet::new();
        for name in candidates {
            if self.find(&path.join(&name))?.is_some() {
                present.insert(name);
            }
        }
        Ok(present)
    }
}

/// Looks `path` up in one layer, a name at a time, following no symlink.
fn probe(layer: &Root, path: &Path) -> io::Result<Probe> {
    let mut dir = layer
        .require(Path::new("/"), Kind::Directory)
        .map_err(io::Error::other)?;
    let mut below_opaque = false;
    let mut names = path.iter().filter(|name| *name != "/").peekable();
    while let Some(name) = names.next() {
        let Some(entry) = layer.open_in(&dir, name).map_err(io::Error::other)? else {
            return Ok(Probe::Missing { below_opaque });
        };
        let stat = stat_of(&entry)?;
        if is_whiteout(&stat) {
            return Ok(Probe::Hidden);
        }
        if names.peek().is_none() {
            return Ok(Probe::Found(stat));
        }
        if !is_dir(&stat) {
            return Ok(Probe::Hidden);
        }
        below_opaque |= is_opaque(&entry)?;
        dir = entry;
    }
    // The path was `/` itself.
    Ok(Probe::Found(stat_of(&dir)?))
}

/// Opens `path` in `root` a name at a time, following no symlink; `None` when it
/// is missing or something on the way is not a directory.
fn open(root: &Root, path: &Path) -> io::Result<Option<Resolved>> {
    match root.resolve_no_symlinks(path, Kind::Directory) {
        Ok(dir) => Ok(dir),
        Err(SafePathError::Symlink { .. } | SafePathError::WrongKind { .. }) => Ok(None),
        Err(SafePathError::Resolve {
            source: Errno::ENOTDIR,
            ..
        }) => Ok(None),
        Err(error) => Err(io::Error::other(error)),
    }
}

/// The names in a directory opened with `O_PATH`, read through its magic link so
/// that it is that very directory.
fn names(dir: &Resolved) -> io::Result<Vec<OsString>> {
    std::fs::read_dir(dir.fd_path())?
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect()
}

/// fstat(2) of an opened entry: the entry itself, a symlink included.
fn stat_of(entry: &Resolved) -> io::Result<FileStat> {
    use std::os::fd::AsRawFd;
    Ok(nix::sys::stat::fstat(entry.fd().as_raw_fd())?)
}

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn is_dir(stat: &FileStat) -> bool {
    file_type(stat) == SFlag::S_IFDIR
}

/// An overlayfs whiteout: a character device with device number 0:0.
fn is_whiteout(stat: &FileStat) -> bool {
    file_type(stat) == SFlag::S_IFCHR && stat.st_rdev == 0
}

/// Whether a directory is opaque. A filesystem without xattrs has none.
fn is_opaque(dir: &Resolved) -> io::Result<bool> {
    match sys::get_xattr(dir.fd(), OPAQUE_XATTR) {
        Ok(value) => Ok(value.as_deref() == Some(b"y")),
        Err(Errno::EOPNOTSUPP) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::{mknod, utimensat, Mode, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{symlink, OpenOptionsExt};

    /// A container's overlay built by hand: `upper` and lower layers `lower0`
    /// (the top one), `lower1`, ...
    struct Overlay {
        dir: PathBuf,
    }

    impl Overlay {
        fn new(name: &str) -> Overlay {
            if !nix::unistd::geteuid().is_root() {
                panic!(
                    "this test needs root to make whiteouts (mknod) and trusted.* xattrs: \
                     run it through the cargo runner (cargo test -p ferry --lib diff)"
                );
            }
            let dir =
                std::env::temp_dir().join(format!("ferry-diff-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for layer in ["upper", "lower0", "lower1"] {
                std::fs::create_dir_all(dir.join(layer)).unwrap();
            }
            Overlay { dir }
        }

        fn at(&self, layer: &str, path: &str) -> PathBuf {
            self.dir.join(layer).join(path.trim_start_matches('/'))
        }

        fn file(&self, layer: &str, path: &str) -> &Self {
            let at = self.at(layer, path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(at, path).unwrap();
            self
        }

        fn dir(&self, layer: &str, path: &str) -> &Self {
            std::fs::create_dir_all(self.at(layer, path)).unwrap();
            self
        }

        fn whiteout(&self, layer: &str, path: &str) -> &Self {
            let at = self.at(layer, path);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            mknod(&at, SFlag::S_IFCHR, Mode::from_bits_truncate(0o000), 0).unwrap();
            self
        }

        fn opaque(&self, layer: &str, path: &str) -> &Self {
            let dir = std::fs::File::options()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
                .open(self.at(layer, path))
                .unwrap();
            sys::set_xattr(dir.as_fd(), OPAQUE_XATTR, b"y").unwrap();
            self
        }

        /// Gives the upper directory `path` the lower's mode and times, as
        /// overlayfs's copy-up does.
        fn copied_up(&self, path: &str) -> &Self {
            let lower = nix::sys::stat::lstat(&self.at("lower0", path)).unwrap();
            let upper = self.at("upper", path);
            let mode = Mode::from_bits_truncate(lower.st_mode & 0o7777);
            nix::sys::stat::fchmodat(
                None,
                &upper,
                mode,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .unwrap();
            let atime = TimeSpec::new(lower.st_atime, lower.st_atime_nsec);
            let mtime = TimeSpec::new(lower.st_mtime, lower.st_mtime_nsec);
            utimensat(
                None,
                &upper,
                &atime,
                &mtime,
                UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
            self
        }

        /// `docker diff`'s lines.
        fn diff(&self, lowers: usize) -> Vec<String> {
            let lowers: Vec<PathBuf> = (0..lowers)
                .map(|i| self.dir.join(format!("lower{i}")))
                .collect();
            changes(&self.dir.join("upper"), &lowers)
                .unwrap()
                .iter()
                .map(Change::to_string)
                .collect()
        }
    }

    impl Drop for Overlay {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_new_file_is_added_and_its_directory_changed() {
        let overlay = Overlay::new("added");
        overlay
            .file("lower0", "etc/passwd")
            .file("upper", "etc/motd");
        assert_eq!(overlay.diff(1), ["C /etc", "A /etc/motd"]);
    }

    #[test]
    fn a_copied_up_file_is_changed_but_its_untouched_directory_is_not() {
        let overlay = Overlay::new("copied-up");
        overlay
            .file("lower0", "etc/passwd")
            .file("upper", "etc/passwd");
        overlay.copied_up("etc");
        assert_eq!(overlay.diff(1), ["C /etc/passwd"]);
        // Its mode changed: now the directory is a change of its own.
        std::fs::set_permissions(
            overlay.at("upper", "etc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        assert_eq!(overlay.diff(1), ["C /etc", "C /etc/passwd"]);
    }

    #[test]
    fn new_directories_are_added_with_everything_in_them() {
        let overlay = Overlay::new("new-dirs");
        overlay.file("upper", "srv/app/config");
        assert_eq!(
            overlay.diff(1),
            ["A /srv", "A /srv/app", "A /srv/app/config"]
        );
    }

    #[test]
    fn a_whiteout_is_a_deletion_and_a_deleted_directory_one_line() {
        let overlay = Overlay::new("whiteouts");
        overlay
            .file("lower0", "etc/motd")
            .file("lower0", "var/cache/apk/a")
            .file("lower0", "var/cache/apk/b")
            .whiteout("upper", "etc/motd")
            .whiteout("upper", "var/cache");
        overlay.copied_up("etc").copied_up("var");
        assert_eq!(
            overlay.diff(1),
            ["C /etc", "D /etc/motd", "C /var", "D /var/cache"]
        );
    }

    #[test]
    fn an_opaque_directory_is_changed_and_hides_the_lower_entries() {
        let overlay = Overlay::new("opaque");
        overlay
            .file("lower0", "srv/old")
            .file("lower0", "srv/kept")
            .file("lower0", "srv/deep/file")
            .file("upper", "srv/kept")
            .file("upper", "srv/new")
            .opaque("upper", "srv");
        assert_eq!(
            overlay.diff(1),
            [
                "C /srv",
                "D /srv/deep",
                "C /srv/kept",
                "A /srv/new",
                "D /srv/old"
            ]
        );
    }

    #[test]
    fn lower_layers_merge_as_overlayfs_merges_them() {
        let overlay = Overlay::new("merged");
        // lower1 (the base) has both; lower0 deleted one and replaced /opt wholesale.
        overlay
            .file("lower1", "etc/motd")
            .file("lower1", "etc/issue")
            .file("lower1", "opt/tool/bin")
            .whiteout("lower0", "etc/motd")
            .dir("lower0", "etc")
            .dir("lower0", "opt")
            .opaque("lower0", "opt")
            .file("upper", "etc/motd")
            .file("upper", "etc/issue")
            .file("upper", "opt/tool/bin");
        // The image has no /etc/motd (lower0 deleted it) nor /opt/tool (hidden).
        let diff = overlay.diff(2);
        assert!(diff.contains(&"A /etc/motd".to_string()), "{diff:?}");
        assert!(diff.contains(&"C /etc/issue".to_string()), "{diff:?}");
        assert!(diff.contains(&"A /opt/tool".to_string()), "{diff:?}");
        assert!(diff.contains(&"A /opt/tool/bin".to_string()), "{diff:?}");
        // The base layer alone has them all.
        let base = Overlay::new("merged-base");
        base.file("lower0", "etc/motd").file("upper", "etc/motd");
        base.copied_up("etc");
        assert_eq!(base.diff(1), ["C /etc/motd"]);
    }

    #[test]
    fn symlinks_are_entries_never_followed() {
        let overlay = Overlay::new("symlinks");
        let outside = overlay.dir.join("outside");
        std::fs::create_dir_all(outside.join("secret")).unwrap();
        // The image's /data is a symlink out of the layer; the container made a
        // directory there. Following the link would find `secret` and say C.
        symlink(&outside, overlay.at("lower0", "data")).unwrap();
        overlay.file("upper", "data/secret");
        // A symlink in the upper directory is one entry, not a directory to walk.
        symlink(&outside, overlay.at("upper", "link")).unwrap();
        assert_eq!(overlay.diff(1), ["C /data", "A /data/secret", "A /link"]);
    }

    #[test]
    fn changes_are_sorted_as_docker_prints_them() {
        let overlay = Overlay::new("sorted");
        overlay
            .file("upper", "etc-old")
            .file("upper", "etc/b")
            .file("upper", "etc/a")
            .file("upper", "bin");
        assert_eq!(
            overlay.diff(1),
            ["A /bin", "A /etc", "A /etc/a", "A /etc/b", "A /etc-old"]
        );
        assert!(overlay.diff(0).iter().all(|line| line.starts_with("A ")));
    }

    #[test]
    fn a_change_prints_as_a_letter_and_a_path() {
        let line = |kind| {
            Change {
                kind,
                path: "/etc/passwd".into(),
            }
            .to_string()
        };
        assert_eq!(line(ChangeKind::Added), "A /etc/passwd");
        assert_eq!(line(ChangeKind::Changed), "C /etc/passwd");
        assert_eq!(line(ChangeKind::Deleted), "D /etc/passwd");
    }
}
