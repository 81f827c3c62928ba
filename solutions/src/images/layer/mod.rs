//! Applying an image layer: its tar stream unpacked into a directory, securely, in
//! one pass.
//!
//! Chapter 6 (chapters/06-images.md). An image is a stack of layers; each layer is a
//! tar archive of the files it adds or changes since the layers below it, and of
//! *whiteouts* for those it deletes (OCI image-spec, `layer.md`). ferry unpacks each
//! layer into a directory of its own and chapter 5's overlay stacks them, so a
//! whiteout is written as overlayfs understands it: `.wh.NAME` becomes a character
//! device 0:0 named NAME, and `.wh..wh..opq` the xattr `trusted.overlay.opaque=y` on
//! its directory ("this directory hides the lower layers' one").
//!
//! A layer comes from a registry: it is the attacker (chapter 1). Its names may climb
//! out (`../../etc/cron.d/x`), its symlinks may point at the host and then be written
//! through by a later entry (`etc -> /etc`, then `etc/passwd`), its hard links may
//! reach a host file, and a few kilobytes of it may expand into terabytes. So:
//!
//! * **One streaming pass**: blob → sha256 (the blob digest) → gunzip or unzstd →
//!   sha256 (the diff id) → the tar parser → each entry. The `tar` crate only
//!   parses; its `unpack` joins names as strings. Both digests cover every byte —
//!   what follows the end-of-archive marker too, read to the end — and are checked
//!   once the stream ends; the caller deletes the directory of a layer that fails.
//! * **Names**: a leading `/` is dropped (as docker and containerd do: a layer's
//!   names are relative to its root); any `..` component is refused. No tar writer
//!   produces one; containerd refuses those that climb out, ferry all of them, so a
//!   name means one path whatever the symlinks say.
//! * **Every entry goes through [`crate::safe_path`]**: its parent directory resolved
//!   in the layer without following any symlink (one there is refused, not
//!   followed), the entry created with `*at` calls on that descriptor. What an
//!   earlier entry left at the name is removed first (unlinked, never written
//!   through) and files are created `O_EXCL | O_NOFOLLOW`.
//! * **Limits** ([`Limits`]) on the unpacked bytes, the entries, a name's length, and
//!   the extension headers (PAX, GNU long names) the parser holds in memory.
//!
//! What each kind of entry becomes, and the cases decided one way:
//!
//! | entry | becomes |
//! |---|---|
//! | file, directory, symlink, FIFO, device | itself: mode (setuid too), owner when ferry is root, mtime (directories' at the end), the xattrs [`XATTRS`] keeps |
//! | a name already there | replaces it (removed first; two directories merge) |
//! | hard link | a link to a file of this layer, reached without symlinks; else refused |
//! | symlink | created as it is: its target may point anywhere, it is never followed |
//! | `./` | a directory updates the layer's root; any other kind is refused |
//! | `.wh.NAME` | a whiteout of NAME, unless this layer has NAME (a whiteout deletes from lower layers only) |
//! | `.wh.`, `.wh..`, `.wh...` | refused: a whiteout of no name |
//! | `.wh.` in a directory's name, `.wh..wh.` other than `.wh..wh..opq` | refused (aufs's bookkeeping, never in an OCI layer) |
//! | GNU sparse file | refused: no image builder writes one, and its holes unpack to more than the stream holds |
//! | PAX global header | skipped |
//!
//! Gzip may hold several members (RFC 1952) and zstd several frames (RFC 8878): all are
//! decoded, and bytes after the last that do not start another are an error. Bytes
//! after the tar's end-of-archive marker are read and hashed (writers pad the archive
//! with zeros) but not parsed.
//!
//! The pass is in two files: `stream.rs`, the bytes from the blob to the tar parser
//! (hashed, decompressed, counted), and `entries.rs`, what each entry becomes in the
//! layer directory. This file holds the types callers see and [`apply`], which joins
//! the two. `snapshot.rs` goes the other way (chapter 11): an overlay's upper
//! directory written out as a layer.

mod entries;
pub mod snapshot;
mod stream;

/// The tar parser's extension headers, capped: the archive reader needs them too.
pub use stream::{Budgeted, HeaderBudget};

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;

use crate::safe_path::{Root, SafePathError};

use entries::Unpacker;
use stream::{blame, check_digest, verify, Decompressor, Metered};

/// How a layer blob is compressed, as the end of its media type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// The tar stream itself.
    None,
    /// One or more gzip members (RFC 1952), decompressed one after the other.
    Gzip,
    /// One or more Zstandard frames (RFC 8878), skippable ones skipped.
    Zstd,
}

/// The layer media types (OCI image-spec and docker's), and their compression.
const MEDIA_TYPES: &[(&str, Compression)] = &[
    ("application/vnd.oci.image.layer.v1.tar", Compression::None),
    (
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        Compression::None,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        Compression::Gzip,
    ),
];

impl Compression {
    /// The compression of a layer with this media type; `None` for a media type that
    /// is not a layer's.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        MEDIA_TYPES
            .iter()
            .find(|(name, _)| *name == media_type)
            .map(|(_, compression)| *compression)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// What the manifest and the image config promise about a layer. What is `None` is
/// computed but not checked.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The blob's digest (the manifest's layer descriptor), `sha256:<hex>`.
    pub digest: Option<String>,
    /// The blob's size in bytes (the same descriptor).
    pub size: Option<u64>,
    /// The digest of the uncompressed tar stream (the config's `rootfs.diff_ids`).
    pub diff_id: Option<String>,
}

/// How much a layer may unpack to: a small blob can expand without end (a
/// decompression bomb), and the parser reads names and extension headers into memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the uncompressed tar stream.
    pub max_bytes: u64,
    /// Entries in it.
    pub max_entries: u64,
    /// Bytes of an entry's name or link target (the kernel's PATH_MAX).
    pub max_name: usize,
    /// Bytes of the extension headers before an entry (PAX records, GNU long names):
    /// the parser reads them into memory whole, so they are capped before it does.
    pub max_header: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 32 << 30,
            max_entries: 1_000_000,
            max_name: 4096,
            max_header: 1 << 20,
        }
    }
}

/// A layer applied: what was read and what it hashes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The blob's digest, `sha256:<hex>`.
    pub digest: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// The uncompressed tar stream's digest, `sha256:<hex>`.
    pub diff_id: String,
    /// The uncompressed tar stream's size in bytes.
    pub tar_size: u64,
    /// The tar entries applied (extension headers not counted).
    pub entries: u64,
    /// The xattrs dropped by [`XATTRS`].
    pub dropped_xattrs: u64,
}

/// A layer that could not be applied. Whatever it had written stays in the
/// directory: the caller deletes it.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("the expected digest {digest} is not a sha256 digest (sha256:<64 hex digits>)")]
    UnsupportedDigest { digest: String },
    #[error("failed to open the layer directory {root}")]
    OpenRoot {
        root: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("failed to read the layer blob")]
    ReadBlob {
        #[source]
        source: io::Error,
    },
    #[error("the layer blob is larger than the {size} bytes its descriptor says: refusing it")]
    BlobTooLarge { size: u64 },
    #[error("the layer blob ends after {actual} bytes, but its descriptor says {size}")]
    BlobTruncated { size: u64, actual: u64 },
    #[error("failed to decompress the layer ({compression})")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("the layer blob goes on after its {compression} stream ends: refusing it")]
    TrailingData { compression: Compression },
    #[error("the layer unpacks to more than {limit} bytes (a decompression bomb?): refusing it")]
    TooLarge { limit: u64 },
    #[error("the layer has more than {limit} entries: refusing it")]
    TooManyEntries { limit: u64 },
    #[error("an entry's extension headers (PAX, GNU long names) take more than {limit} bytes: refusing them")]
    HeaderTooLarge { limit: u64 },
    #[error("failed to parse the layer's tar stream")]
    Tar {
        #[source]
        source: io::Error,
    },
    #[error("failed to read the header of layer entry {entry}")]
    Header {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "layer entry {entry} has a name or link target longer than {limit} bytes: refusing it"
    )]
    NameTooLong { entry: PathBuf, limit: usize },
    #[error("layer entry {entry} leaves the layer (a `..` in its name): refusing it")]
    Escapes { entry: PathBuf },
    #[error("layer entry {entry} goes through the symlink {link} (to {target}): refusing it")]
    ThroughSymlink {
        entry: PathBuf,
        link: PathBuf,
        target: String,
    },
    #[error("failed to resolve the directory of layer entry {entry}")]
    Parent {
        entry: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("layer entry {entry} is a {kind} for the layer's root directory: refusing it")]
    RootNotDirectory { entry: PathBuf, kind: &'static str },
    #[error("layer entry {entry} is a whiteout of no name (\"\", \".\" or \"..\"): refusing it")]
    BadWhiteout { entry: PathBuf },
    #[error("layer entry {entry} uses the reserved whiteout prefix .wh. where it means nothing: refusing it")]
    ReservedName { entry: PathBuf },
    #[error("layer entry {entry} is a {kind}, which ferry does not unpack: refusing it")]
    UnsupportedType { entry: PathBuf, kind: &'static str },
    #[error("layer entry {entry} is a hard link to {target}, which leaves the layer: refusing it")]
    LinkEscapes { entry: PathBuf, target: PathBuf },
    #[error("layer entry {entry} is a hard link to {target}, which goes through the symlink {link}: refusing it")]
    LinkThroughSymlink {
        entry: PathBuf,
        target: PathBuf,
        link: PathBuf,
    },
    #[error("layer entry {entry} is a hard link to {target}, which is not a file of this layer: refusing it")]
    LinkMissing { entry: PathBuf, target: PathBuf },
    #[error("failed to remove what layer entry {entry} replaces")]
    Replace {
        entry: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("failed to create layer entry {entry} ({kind})")]
    Create {
        entry: PathBuf,
        kind: &'static str,
        #[source]
        source: Errno,
    },
    #[error("failed to create layer entry {entry}")]
    CreateFile {
        entry: PathBuf,
        #[source]
        source: SafePathError,
    },
    #[error("failed to write the contents of layer entry {entry}")]
    Write {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to set the {what} of layer entry {entry}")]
    Metadata {
        entry: PathBuf,
        what: String,
        #[source]
        source: Errno,
    },
    #[error("the layer blob's digest is {actual}, not the expected {expected}")]
    DigestMismatch { expected: String, actual: String },
    #[error("the layer blob has {actual} bytes, not the expected {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("the layer's diff id (the digest of its tar stream) is {actual}, not the expected {expected}")]
    DiffIdMismatch { expected: String, actual: String },
}

impl LayerError {
    /// What usually causes this failure, for the hint line.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LayerError::DigestMismatch { .. }
            | LayerError::SizeMismatch { .. }
            | LayerError::BlobTooLarge { .. }
            | LayerError::BlobTruncated { .. }
            | LayerError::DiffIdMismatch { .. } => Some(
                "the blob is not the one the manifest names: corrupted or tampered with on the way; pull it again (chapter 6)",
            ),
            LayerError::Escapes { .. }
            | LayerError::ThroughSymlink { .. }
            | LayerError::LinkEscapes { .. }
            | LayerError::LinkThroughSymlink { .. }
            | LayerError::RootNotDirectory { .. } => Some(
                "the layer is crafted to write outside its directory: ferry refuses it (chapter 1, \"the image is the attacker\")",
            ),
            _ => None,
        }
    }
}

/// Applies the layer `blob`, compressed as `compression`, to the directory `root`
/// (the layer's own, which must exist), checking what `expect` promises and within
/// `limits`. One pass: the blob is hashed, decompressed, hashed again and unpacked
/// as it is read.
pub fn apply(
    blob: impl Read,
    compression: Compression,
    root: &Path,
    expect: &Expected,
    limits: &Limits,
) -> Result<Applied, LayerError> {
    for digest in [&expect.digest, &expect.diff_id].into_iter().flatten() {
        check_digest(digest)?;
    }
    let layer = Root::open(root).map_err(|source| LayerError::OpenRoot {
        root: root.to_path_buf(),
        source,
    })?;
    log::debug!("applying a {compression} layer to {}", root.display());
    let budget = Rc::new(HeaderBudget::default());
    let blob = Metered::new(blob, expect.size);
    let tar = Metered::new(Decompressor::new(compression, blob), Some(limits.max_bytes));
    let mut archive = tar::Archive::new(Budgeted {
        inner: tar,
        budget: Rc::clone(&budget),
    });
    let mut unpacker = Unpacker::new(&layer, limits);
    let result = unpacker.unpack(&mut archive, &budget);
    // The end-of-archive marker is not the end of the stream: the rest is hashed too.
    let mut stream = archive.into_inner();
    let result = result.and_then(|()| {
        io::copy(&mut stream, &mut io::sink())
            .map(drop)
            .map_err(|source| LayerError::Tar { source })
    });
    let Metered {
        inner: decompressor,
        meter: mut tar,
    } = stream.inner;
    let mut blob = decompressor.into_inner();
    if let Err(error) = result {
        return Err(blame(
            error,
            &mut blob.meter,
            &mut tar,
            &budget,
            compression,
            limits,
        ));
    }
    if !blob.at_end() {
        return Err(LayerError::TrailingData { compression });
    }
    let applied = Applied {
        digest: blob.meter.digest(),
        size: blob.meter.count,
        diff_id: tar.digest(),
        tar_size: tar.count,
        entries: unpacker.entries,
        dropped_xattrs: unpacker.dropped_xattrs,
    };
    verify(&applied, expect)?;
    log::debug!(
        "applied layer {} (diff id {}): {} entries",
        applied.digest,
        applied.diff_id,
        applied.entries
    );
    Ok(applied)
}

/// Which of an entry's xattrs (PAX `SCHILY.xattr.NAME` records) are set: the first
/// prefix that matches decides, and what matches none is dropped.
pub const XATTRS: &[(&str, bool)] = &[
    // overlayfs's own metadata (opaque, redirect, origin, metacopy): set by a layer it
    // would steer the merged view, a redirect to a path of the layer's choosing.
    // ferry sets trusted.overlay.opaque itself, from `.wh..wh..opq`.
    ("trusted.overlay.", false),
    // Only CAP_SYS_ADMIN on the host reads or writes trusted xattrs; no image needs one.
    ("trusted.", false),
    // File capabilities (ping's cap_net_raw): docker and containerd keep them, and a
    // process gains them only within the container's bounding set (chapter 4).
    ("security.capability", true),
    // SELinux, Smack and IMA labels are the host's policy, not the image's.
    ("security.", false),
    ("system.posix_acl_access", true),
    ("system.posix_acl_default", true),
    ("user.", true),
];

/// Whether [`XATTRS`] keeps the xattr `name`.
pub(super) fn keeps_xattr(name: &str) -> bool {
    XATTRS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .is_some_and(|(_, keep)| *keep)
}

#[cfg(test)]
mod tests {
    //! The fixtures every test of the layer uses (a tarball writer, a test directory
    //! with canaries), and the tests of the public types.

    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use tar::EntryType;

    /// A tarball written entry by entry, names put into the header bytes as they are:
    /// the tar crate's `set_path` refuses `..` and absolute names, the very entries
    /// these tests need. Names longer than 100 bytes get a GNU long-name entry.
    pub(super) struct Tarball {
        pub(super) bytes: Vec<u8>,
    }

    impl Tarball {
        pub(super) fn new() -> Tarball {
            Tarball { bytes: Vec::new() }
        }

        pub(super) fn entry(
            mut self,
            kind: EntryType,
            name: &str,
            link: &str,
            mode: u32,
            body: &[u8],
        ) -> Tarball {
            if name.len() > 100 {
                self = self.raw(
                    EntryType::GNULongName,
                    "././@LongLink",
                    "",
                    0,
                    &[name.as_bytes(), b"\0"].concat(),
                );
            }
            if link.len() > 100 {
                self = self.raw(
                    EntryType::GNULongLink,
                    "././@LongLink",
                    "",
                    0,
                    &[link.as_bytes(), b"\0"].concat(),
                );
            }
            self.raw(kind, name, link, mode, body)
        }

        pub(super) fn raw(
            mut self,
            kind: EntryType,
            name: &str,
            link: &str,
            mode: u32,
            body: &[u8],
        ) -> Tarball {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(body.len() as u64);
            header.set_mtime(1_000_000);
            header.set_uid(0);
            header.set_gid(0);
            let old = header.as_old_mut();
            let name = &name.as_bytes()[..name.len().min(100)];
            old.name[..name.len()].copy_from_slice(name);
            let link = &link.as_bytes()[..link.len().min(100)];
            old.linkname[..link.len()].copy_from_slice(link);
            header.set_cksum();
            self.bytes.extend_from_slice(header.as_bytes());
            self.bytes.extend_from_slice(body);
            self.bytes.resize(self.bytes.len().div_ceil(512) * 512, 0);
            self
        }

        pub(super) fn file(self, name: &str, body: &[u8]) -> Tarball {
            self.entry(EntryType::Regular, name, "", 0o644, body)
        }

        pub(super) fn dir(self, name: &str) -> Tarball {
            self.entry(EntryType::Directory, name, "", 0o755, b"")
        }

        pub(super) fn symlink(self, name: &str, target: &str) -> Tarball {
            self.entry(EntryType::Symlink, name, target, 0o777, b"")
        }

        pub(super) fn hard_link(self, name: &str, target: &str) -> Tarball {
            self.entry(EntryType::Link, name, target, 0o644, b"")
        }

        /// A PAX extended header for the next entry.
        pub(super) fn pax(self, records: &[(&str, &[u8])]) -> Tarball {
            let mut body = Vec::new();
            for (key, value) in records {
                let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                body.extend_from_slice(format!("{len} {key}=").as_bytes());
                body.extend_from_slice(value);
                body.push(b'\n');
            }
            self.raw(EntryType::XHeader, "PaxHeader", "", 0o644, &body)
        }

        /// The archive, with its end-of-archive marker (two zero blocks).
        pub(super) fn finish(mut self) -> Vec<u8> {
            self.bytes.extend_from_slice(&[0; 1024]);
            self.bytes
        }
    }

    /// A test's directory: the layer's `root`, and canaries outside it that no layer
    /// may change: the file `canary` and the empty directory `outside`.
    pub(super) struct Case {
        pub(super) dir: PathBuf,
        pub(super) root: PathBuf,
    }

    const CANARY: &[u8] = b"canary\n";

    pub(super) fn case(name: &str) -> Case {
        let dir = std::env::temp_dir().join(format!("ferry-layer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("root")).unwrap();
        std::fs::create_dir(dir.join("outside")).unwrap();
        std::fs::write(dir.join("canary"), CANARY).unwrap();
        Case {
            root: dir.join("root"),
            dir,
        }
    }

    impl Case {
        pub(super) fn canary(&self) -> String {
            self.dir.join("canary").display().to_string()
        }

        pub(super) fn outside(&self) -> String {
            self.dir.join("outside").display().to_string()
        }

        pub(super) fn apply(&self, tar: &[u8]) -> Result<Applied, LayerError> {
            apply(
                tar,
                Compression::None,
                &self.root,
                &Expected::default(),
                &Limits::default(),
            )
        }

        pub(super) fn apply_with(
            &self,
            blob: &[u8],
            compression: Compression,
            expect: &Expected,
            limits: &Limits,
        ) -> Result<Applied, LayerError> {
            apply(blob, compression, &self.root, expect, limits)
        }

        /// The canaries are byte for byte as they were, and nothing else is outside
        /// the root.
        pub(super) fn assert_canaries(&self) {
            assert_eq!(std::fs::read(self.dir.join("canary")).unwrap(), CANARY);
            let canary = std::fs::symlink_metadata(self.dir.join("canary")).unwrap();
            assert!(canary.is_file());
            assert_eq!(
                canary.nlink(),
                1,
                "the canary was hard-linked into the layer"
            );
            assert_eq!(canary.permissions().mode() & 0o7777, 0o644);
            assert_eq!(
                std::fs::read_dir(self.dir.join("outside")).unwrap().count(),
                0
            );
            let mut names: Vec<_> = std::fs::read_dir(&self.dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            names.sort();
            assert_eq!(names, ["canary", "outside", "root"]);
        }

        pub(super) fn at(&self, path: &str) -> PathBuf {
            self.root.join(path)
        }
    }

    impl Drop for Case {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Asserts the result is the error the pattern matches, and prints it.
    macro_rules! assert_refused {
        ($result:expr, $pattern:pat) => {
            match $result {
                Err(error @ $pattern) => eprintln!("refused as expected: {error}"),
                other => panic!("expected {}, got {other:?}", stringify!($pattern)),
            }
        };
    }

    pub(super) use assert_refused;

    #[test]
    fn refusals_name_the_entry_and_the_reason() {
        let case = case("messages");
        let tar = Tarball::new().file("../x", b"").finish();
        let error = case.apply(&tar).unwrap_err();
        assert_eq!(
            error.to_string(),
            "layer entry ../x leaves the layer (a `..` in its name): refusing it"
        );
        let tar = Tarball::new()
            .symlink("etc", "/etc")
            .file("etc/passwd", b"")
            .finish();
        let error = case.apply(&tar).unwrap_err();
        assert_eq!(
            error.to_string(),
            "layer entry etc/passwd goes through the symlink /etc (to /etc): refusing it"
        );
    }

    #[test]
    fn compression_follows_the_media_type() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.config.v1+json"),
            None
        );
    }
}
