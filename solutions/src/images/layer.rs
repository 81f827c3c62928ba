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

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::safe_path::{Kind, Resolved, Root, SafePathError};
use crate::sys;

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

/// Refuses an expected digest ferry cannot check: only `sha256:` and 64 hex digits.
fn check_digest(digest: &str) -> Result<(), LayerError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(LayerError::UnsupportedDigest {
            digest: digest.to_string(),
        }),
    }
}

/// Compares what was read with what was promised.
fn verify(applied: &Applied, expect: &Expected) -> Result<(), LayerError> {
    if let Some(expected) = expect.size.filter(|size| *size != applied.size) {
        return Err(LayerError::SizeMismatch {
            expected,
            actual: applied.size,
        });
    }
    if let Some(expected) = expect.digest.as_ref() {
        if !expected.eq_ignore_ascii_case(&applied.digest) {
            return Err(LayerError::DigestMismatch {
                expected: expected.clone(),
                actual: applied.digest.clone(),
            });
        }
    }
    if let Some(expected) = expect.diff_id.as_ref() {
        if !expected.eq_ignore_ascii_case(&applied.diff_id) {
            return Err(LayerError::DiffIdMismatch {
                expected: expected.clone(),
                actual: applied.diff_id.clone(),
            });
        }
    }
    Ok(())
}

/// The stream's own failure behind a parser or unpacking error, if there is one: a
/// limit hit or a read that failed surfaces in the tar parser as a plain I/O error.
/// The lowest layer of the stream is asked first, since its failure causes the others.
fn blame(
    error: LayerError,
    blob: &mut Meter,
    tar: &mut Meter,
    budget: &HeaderBudget,
    compression: Compression,
    limits: &Limits,
) -> LayerError {
    if blob.exceeded {
        return LayerError::BlobTooLarge {
            size: blob.limit.unwrap_or_default(),
        };
    }
    if let Some(source) = blob.failure.take() {
        return LayerError::ReadBlob { source };
    }
    if let Some(size) = blob.limit.filter(|size| blob.ended && blob.count < *size) {
        return LayerError::BlobTruncated {
            size,
            actual: blob.count,
        };
    }
    if tar.exceeded {
        return LayerError::TooLarge {
            limit: limits.max_bytes,
        };
    }
    if budget.exceeded.get() {
        return LayerError::HeaderTooLarge {
            limit: limits.max_header,
        };
    }
    if let Some(source) = tar.failure.take() {
        return LayerError::Decompress {
            compression,
            source,
        };
    }
    error
}

/// What a [`Metered`] reader saw.
struct Meter {
    hasher: Sha256,
    count: u64,
    limit: Option<u64>,
    exceeded: bool,
    ended: bool,
    failure: Option<io::Error>,
}

impl Meter {
    /// `sha256:<hex>` of everything read.
    fn digest(&self) -> String {
        format!("sha256:{:x}", self.hasher.clone().finalize())
    }
}

/// A reader that hashes (sha256) and counts what passes through it, and fails once
/// more than `limit` bytes come. It keeps its inner reader's error, and hands the
/// reader above one of the same kind, so that [`blame`] can say which layer failed.
struct Metered<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> Metered<R> {
    fn new(inner: R, limit: Option<u64>) -> Metered<R> {
        let meter = Meter {
            hasher: Sha256::new(),
            count: 0,
            limit,
            exceeded: false,
            ended: false,
            failure: None,
        };
        Metered { inner, meter }
    }

    /// Whether nothing is left to read (one more read returns no byte; a byte there
    /// is hashed and counted, so the digests still cover it).
    fn at_end(&mut self) -> bool {
        matches!(self.read(&mut [0u8; 1]), Ok(0))
    }
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let meter = &mut self.meter;
        if meter.exceeded {
            return Err(io::Error::other("the stream is over its limit"));
        }
        // Read at most one byte past the limit: enough to know it is exceeded.
        let room = meter.limit.map_or(u64::MAX, |limit| {
            limit.saturating_sub(meter.count).saturating_add(1)
        });
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => return Err(error),
            Err(error) => {
                let kind = error.kind();
                meter.failure.get_or_insert(error);
                return Err(io::Error::new(kind, "the stream below failed"));
            }
        };
        if meter
            .limit
            .is_some_and(|limit| meter.count + n as u64 > limit)
        {
            meter.exceeded = true;
            return Err(io::Error::other("the stream is over its limit"));
        }
        meter.ended |= n == 0;
        meter.count += n as u64;
        meter.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// How many bytes of extension headers the parser may still read before it hands
/// out the next entry (`None`: not counting, an entry's body is being read).
#[derive(Debug, Default)]
struct HeaderBudget {
    remaining: Cell<Option<u64>>,
    exceeded: Cell<bool>,
}

/// The reader under the tar parser, which fails when the [`HeaderBudget`] runs out.
/// The `tar` crate reads a PAX header or a GNU long name into memory whole, however
/// large its header says it is; this stops it before it has read too much.
struct Budgeted<R> {
    inner: R,
    budget: Rc<HeaderBudget>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(remaining) = self.budget.remaining.get() else {
            return self.inner.read(buf);
        };
        let want = buf
            .len()
            .min(usize::try_from(remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > remaining {
            self.budget.exceeded.set(true);
            return Err(io::Error::other(
                "the extension headers are over their limit",
            ));
        }
        self.budget.remaining.set(Some(remaining - n as u64));
        Ok(n)
    }
}

/// The decompressed stream of a blob.
enum Decompressor<R: Read> {
    None(R),
    Gzip(flate2::read::MultiGzDecoder<R>),
    // Boxed: its frame decoder is large, and the enum is as large as its largest variant.
    Zstd(Box<ZstdFrames<R>>),
}

impl<R: Read> Decompressor<R> {
    fn new(compression: Compression, blob: R) -> Decompressor<R> {
        match compression {
            Compression::None => Decompressor::None(blob),
            // Several members are one gzip file (RFC 1952, 2.2; `gzip -d` and pigz
            // agree); bytes after a member that do not start another are an error.
            Compression::Gzip => Decompressor::Gzip(flate2::read::MultiGzDecoder::new(blob)),
            Compression::Zstd => Decompressor::Zstd(Box::new(ZstdFrames::new(blob))),
        }
    }

    /// The blob's reader. Once the decompressed stream has ended, the decompressor
    /// has read the blob to its end: no buffered byte is lost.
    fn into_inner(self) -> R {
        match self {
            Decompressor::None(blob) => blob,
            Decompressor::Gzip(decoder) => decoder.into_inner(),
            Decompressor::Zstd(frames) => frames.source.into_inner(),
        }
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decompressor::None(blob) => blob.read(buf),
            Decompressor::Gzip(decoder) => decoder.read(buf),
            Decompressor::Zstd(frames) => frames.read(buf),
        }
    }
}

/// Zstandard frames one after the other until the blob ends (RFC 8878, 3.1: a stream
/// may hold several, and skippable frames, which are skipped). ruzstd's
/// `StreamingDecoder` decodes a single frame, so its loop is here, over the lower
/// level `FrameDecoder`, and each frame's checksum is checked when it has one.
struct ZstdFrames<R: Read> {
    source: BufReader<R>,
    frame: ruzstd::FrameDecoder,
    in_frame: bool,
}

impl<R: Read> ZstdFrames<R> {
    fn new(blob: R) -> ZstdFrames<R> {
        ZstdFrames {
            source: BufReader::new(blob),
            frame: ruzstd::FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Starts the next frame; `false` at the end of the blob.
    fn next_frame(&mut self) -> io::Result<bool> {
        use ruzstd::frame::ReadFrameHeaderError;
        use ruzstd::frame_decoder::FrameDecoderError;
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.frame.reset(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.source).take(length.into()), &mut io::sink())?;
                    if skipped < u64::from(length) {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                }
                Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
            }
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use ruzstd::BlockDecodingStrategy::UptoBytes;
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.frame.can_collect() < buf.len() && !self.frame.is_finished() {
                let wanted = buf.len() - self.frame.can_collect();
                self.frame
                    .decode_blocks(&mut self.source, UptoBytes(wanted))
                    .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            // The frame is decoded and collected: check it, then on to the next one.
            let (Some(read), Some(computed)) = (
                self.frame.get_checksum_from_data(),
                self.frame.get_calculated_checksum(),
            ) else {
                self.in_frame = false;
                continue;
            };
            if read != computed {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "zstd frame checksum mismatch",
                ));
            }
            self.in_frame = false;
        }
    }
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
fn keeps_xattr(name: &str) -> bool {
    XATTRS
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .is_some_and(|(_, keep)| *keep)
}

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
struct Unpacker<'a> {
    layer: &'a Root,
    limits: &'a Limits,
    /// Whether files get their owners (only root may give files away).
    owners: bool,
    entries: u64,
    dropped_xattrs: u64,
    /// Directories and their mtimes, set at the end: every entry created in a
    /// directory changes its mtime.
    directories: Vec<(PathBuf, TimeSpec)>,
}

impl<'a> Unpacker<'a> {
    fn new(layer: &'a Root, limits: &'a Limits) -> Unpacker<'a> {
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
    fn unpack<R: Read>(
        &mut self,
        archive: &mut tar::Archive<R>,
        budget: &HeaderBudget,
    ) -> Result<(), LayerError> {
        let tar_error = |source| LayerError::Tar { source };
        budget.remaining.set(Some(self.limits.max_header));
        for tar_entry in archive.entries().map_err(tar_error)? {
            let mut tar_entry = tar_entry.map_err(tar_error)?;
            budget.remaining.set(None);
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
            budget.remaining.set(Some(self.limits.max_header));
        }
        budget.remaining.set(None);
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
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    /// A tarball written entry by entry, names put into the header bytes as they are:
    /// the tar crate's `set_path` refuses `..` and absolute names, the very entries
    /// these tests need. Names longer than 100 bytes get a GNU long-name entry.
    struct Tarball {
        bytes: Vec<u8>,
    }

    impl Tarball {
        fn new() -> Tarball {
            Tarball { bytes: Vec::new() }
        }

        fn entry(
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

        fn raw(
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

        fn file(self, name: &str, body: &[u8]) -> Tarball {
            self.entry(EntryType::Regular, name, "", 0o644, body)
        }

        fn dir(self, name: &str) -> Tarball {
            self.entry(EntryType::Directory, name, "", 0o755, b"")
        }

        fn symlink(self, name: &str, target: &str) -> Tarball {
            self.entry(EntryType::Symlink, name, target, 0o777, b"")
        }

        fn hard_link(self, name: &str, target: &str) -> Tarball {
            self.entry(EntryType::Link, name, target, 0o644, b"")
        }

        /// A PAX extended header for the next entry.
        fn pax(self, records: &[(&str, &[u8])]) -> Tarball {
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
        fn finish(mut self) -> Vec<u8> {
            self.bytes.extend_from_slice(&[0; 1024]);
            self.bytes
        }
    }

    /// A test's directory: the layer's `root`, and canaries outside it that no layer
    /// may change: the file `canary` and the empty directory `outside`.
    struct Case {
        dir: PathBuf,
        root: PathBuf,
    }

    const CANARY: &[u8] = b"canary\n";

    fn case(name: &str) -> Case {
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
        fn canary(&self) -> String {
            self.dir.join("canary").display().to_string()
        }

        fn outside(&self) -> String {
            self.dir.join("outside").display().to_string()
        }

        fn apply(&self, tar: &[u8]) -> Result<Applied, LayerError> {
            apply(
                tar,
                Compression::None,
                &self.root,
                &Expected::default(),
                &Limits::default(),
            )
        }

        fn apply_with(
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
        fn assert_canaries(&self) {
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

        fn at(&self, path: &str) -> PathBuf {
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

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let file = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)
            .unwrap();
        sys::get_xattr(file.as_fd(), name).unwrap()
    }

    use std::os::unix::fs::OpenOptionsExt;

    fn sha256(bytes: &[u8]) -> String {
        format!("sha256:{:x}", Sha256::digest(bytes))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    /// A Zstandard frame of raw (stored) blocks: ruzstd 0.7 decodes but does not
    /// encode, and stored blocks are enough to test the framing.
    fn zstd_frame(data: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD]; // magic number 0xFD2FB528
        frame.push(0x00); // descriptor: no content size, checksum or dictionary
        frame.push(7 << 3); // window: 2^(10 + 7) = 128 KiB
        let blocks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(128 << 10).collect()
        };
        for (i, block) in blocks.iter().enumerate() {
            let last = u32::from(i + 1 == blocks.len());
            let header = (block.len() as u32) << 3 | last; // block type 0: raw
            frame.extend_from_slice(&header.to_le_bytes()[..3]);
            frame.extend_from_slice(block);
        }
        frame
    }

    fn zstd_skippable(data: &[u8]) -> Vec<u8> {
        let mut frame = 0x184D_2A50u32.to_le_bytes().to_vec();
        frame.extend_from_slice(&(data.len() as u32).to_le_bytes());
        frame.extend_from_slice(data);
        frame
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

    #[test]
    fn a_blob_digest_mismatch_is_reported() {
        let case = case("digest");
        let tar = gzip(&Tarball::new().file("f", b"f").finish());
        let wrong = sha256(b"something else");
        let expect = Expected {
            digest: Some(wrong.clone()),
            ..Expected::default()
        };
        let error = case.apply_with(&tar, Compression::Gzip, &expect, &Limits::default());
        assert_refused!(error, LayerError::DigestMismatch { .. });
        let expect = Expected {
            digest: Some(sha256(&tar)),
            size: Some(tar.len() as u64),
            ..Expected::default()
        };
        let applied = case
            .apply_with(&tar, Compression::Gzip, &expect, &Limits::default())
            .unwrap();
        assert_eq!(applied.digest, sha256(&tar));
    }

    #[test]
    fn a_diff_id_mismatch_is_reported() {
        let case = case("diff-id");
        let tar = Tarball::new().file("f", b"f").finish();
        let blob = gzip(&tar);
        let expect = Expected {
            digest: Some(sha256(&blob)),
            diff_id: Some(sha256(b"another tar")),
            ..Expected::default()
        };
        assert_refused!(
            case.apply_with(&blob, Compression::Gzip, &expect, &Limits::default()),
            LayerError::DiffIdMismatch { .. }
        );
        let expect = Expected {
            diff_id: Some(sha256(&tar)),
            ..expect
        };
        let applied = case
            .apply_with(&blob, Compression::Gzip, &expect, &Limits::default())
            .unwrap();
        assert_eq!(
            (applied.diff_id, applied.tar_size),
            (sha256(&tar), tar.len() as u64)
        );
    }

    #[test]
    fn a_blob_larger_than_its_descriptor_size_is_refused() {
        let case = case("size-smaller");
        let blob = gzip(&Tarball::new().file("f", &[7; 4096]).finish());
        let expect = Expected {
            size: Some(blob.len() as u64 / 2),
            ..Expected::default()
        };
        assert_refused!(
            case.apply_with(&blob, Compression::Gzip, &expect, &Limits::default()),
            LayerError::BlobTooLarge { .. }
        );
    }

    #[test]
    fn a_blob_shorter_than_its_descriptor_size_is_refused() {
        let case = case("size-larger");
        let blob = gzip(&Tarball::new().file("f", &[7; 4096]).finish());
        let truncated = &blob[..blob.len() / 2];
        let expect = Expected {
            size: Some(blob.len() as u64),
            digest: Some(sha256(&blob)),
            ..Expected::default()
        };
        assert_refused!(
            case.apply_with(truncated, Compression::Gzip, &expect, &Limits::default()),
            LayerError::BlobTruncated { .. }
        );
        // Cut at a block boundary, an uncompressed tar parses: its digest still fails.
        let tar = Tarball::new()
            .file("a", &[1; 512])
            .file("b", &[2; 512])
            .finish();
        let expect = Expected {
            digest: Some(sha256(&tar)),
            ..Expected::default()
        };
        assert_refused!(
            case.apply_with(&tar[..1024], Compression::None, &expect, &Limits::default()),
            LayerError::DigestMismatch { .. }
        );
    }

    #[test]
    fn gzip_with_trailing_garbage_is_refused() {
        let case = case("gzip-garbage");
        let tar = Tarball::new().file("f", b"f").finish();
        for garbage in [&b"garbage"[..], &[0u8; 16], &[0x1f, 0x8b]] {
            let mut blob = gzip(&tar);
            blob.extend_from_slice(garbage);
            assert_refused!(
                case.apply_with(
                    &blob,
                    Compression::Gzip,
                    &Expected::default(),
                    &Limits::default()
                ),
                LayerError::Decompress {
                    compression: Compression::Gzip,
                    ..
                }
            );
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let case = case("gzip-members");
        let tar = Tarball::new().file("a", b"a").file("b", b"b").finish();
        let (first, second) = tar.split_at(700);
        let blob = [gzip(first), gzip(second)].concat();
        let expect = Expected {
            digest: Some(sha256(&blob)),
            diff_id: Some(sha256(&tar)),
            ..Expected::default()
        };
        let applied = case
            .apply_with(&blob, Compression::Gzip, &expect, &Limits::default())
            .unwrap();
        assert_eq!(applied.entries, 2);
        assert_eq!(std::fs::read(case.at("b")).unwrap(), b"b");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let case = case("entry-cap");
        let mut tar = Tarball::new();
        for i in 0..20 {
            tar = tar.file(&format!("f{i}"), b"");
        }
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        assert_refused!(
            case.apply_with(
                &gzip(&tar.finish()),
                Compression::Gzip,
                &Expected::default(),
                &limits
            ),
            LayerError::TooManyEntries { limit: 10 }
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_byte_cap() {
        let case = case("bomb");
        let tar = Tarball::new().file("zeros", &vec![0; 16 << 20]).finish();
        let blob = gzip(&tar);
        assert!(blob.len() < 100 << 10, "{} bytes", blob.len());
        let limits = Limits {
            max_bytes: 1 << 20,
            ..Limits::default()
        };
        assert_refused!(
            case.apply_with(&blob, Compression::Gzip, &Expected::default(), &limits),
            LayerError::TooLarge { limit: 1_048_576 }
        );
        assert!(std::fs::metadata(case.at("zeros")).unwrap().len() <= 1 << 20);
    }

    #[test]
    fn an_oversized_extension_header_is_refused_before_it_is_read() {
        let case = case("header-cap");
        let comment = vec![b'x'; 2 << 20];
        let tar = Tarball::new()
            .pax(&[("comment", &comment)])
            .file("f", b"f")
            .finish();
        assert_refused!(
            case.apply_with(
                &gzip(&tar),
                Compression::Gzip,
                &Expected::default(),
                &Limits::default()
            ),
            LayerError::HeaderTooLarge { limit: 1_048_576 }
        );
        let name = "n".repeat(100_000);
        let tar = Tarball::new().file(&name, b"").finish();
        let limits = Limits {
            max_header: 64 << 10,
            ..Limits::default()
        };
        assert_refused!(
            case.apply_with(&tar, Compression::None, &Expected::default(), &limits),
            LayerError::HeaderTooLarge { .. }
        );
    }

    #[test]
    fn zstd_layers_work_frame_after_frame() {
        let case = case("zstd");
        let tar = Tarball::new()
            .file("a", &[1; 200_000])
            .file("b", b"b")
            .finish();
        let (first, second) = tar.split_at(150_000);
        let blob = [
            zstd_frame(first),
            zstd_skippable(b"skip me"),
            zstd_frame(second),
        ]
        .concat();
        let expect = Expected {
            digest: Some(sha256(&blob)),
            diff_id: Some(sha256(&tar)),
            size: Some(blob.len() as u64),
        };
        let applied = case
            .apply_with(&blob, Compression::Zstd, &expect, &Limits::default())
            .unwrap();
        assert_eq!(applied.entries, 2);
        assert_eq!(std::fs::read(case.at("a")).unwrap(), vec![1; 200_000]);
        let mut garbage = zstd_frame(&tar);
        garbage.extend_from_slice(b"garbage");
        assert_refused!(
            case.apply_with(
                &garbage,
                Compression::Zstd,
                &Expected::default(),
                &Limits::default()
            ),
            LayerError::Decompress {
                compression: Compression::Zstd,
                ..
            }
        );
    }

    #[test]
    fn uncompressed_layers_are_hashed_to_their_last_byte() {
        let case = case("uncompressed");
        let mut tar = Tarball::new().file("f", b"f").finish();
        // Writers pad to a 10 KiB record; the padding is part of the diff id.
        tar.resize(10240, 0);
        let expect = Expected {
            digest: Some(sha256(&tar)),
            diff_id: Some(sha256(&tar)),
            size: Some(10240),
        };
        let applied = case
            .apply_with(&tar, Compression::None, &expect, &Limits::default())
            .unwrap();
        assert_eq!(
            applied,
            Applied {
                digest: sha256(&tar),
                size: 10240,
                diff_id: sha256(&tar),
                tar_size: 10240,
                entries: 1,
                dropped_xattrs: 0,
            }
        );
        // Bytes smuggled after the end-of-archive marker change the digest.
        let mut smuggled = tar.clone();
        smuggled.extend_from_slice(b"hidden after the end");
        assert_refused!(
            case.apply_with(
                &smuggled,
                Compression::None,
                &Expected {
                    size: None,
                    ..expect
                },
                &Limits::default()
            ),
            LayerError::DigestMismatch { .. }
        );
    }

    #[test]
    fn expected_digests_must_be_sha256() {
        let case = case("digest-syntax");
        for digest in ["sha512:abcd", "sha256:xyz", "md5:0"] {
            let expect = Expected {
                digest: Some(digest.to_string()),
                ..Expected::default()
            };
            assert_refused!(
                case.apply_with(b"", Compression::None, &expect, &Limits::default()),
                LayerError::UnsupportedDigest { .. }
            );
        }
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
