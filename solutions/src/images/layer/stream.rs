//! The byte stream of a layer, from the blob to the tar parser: each stage a reader
//! over the one below. The blob is hashed and counted ([`Metered`]: the blob digest,
//! and its size against the descriptor's), decompressed ([`Decompressor`]: gzip
//! members or zstd frames, all of them), hashed and counted again (the diff id, and
//! the cap on unpacked bytes), and handed to the parser through [`Budgeted`], which
//! caps the extension headers it reads into memory. A stage that fails keeps its
//! error, so that [`blame`] can name the stage that failed rather than the parser's
//! plain I/O error; [`verify`] checks the digests once the stream has ended.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use super::{Applied, Compression, Expected, LayerError, Limits};

/// Refuses an expected digest ferry cannot check: only `sha256:` and 64 hex digits.
pub(super) fn check_digest(digest: &str) -> Result<(), LayerError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(()),
        _ => Err(LayerError::UnsupportedDigest {
            digest: digest.to_string(),
        }),
    }
}

/// Compares what was read with what was promised.
pub(super) fn verify(applied: &Applied, expect: &Expected) -> Result<(), LayerError> {
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
pub(super) fn blame(
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
pub(super) struct Meter {
    hasher: Sha256,
    pub(super) count: u64,
    limit: Option<u64>,
    exceeded: bool,
    ended: bool,
    failure: Option<io::Error>,
}

impl Meter {
    /// `sha256:<hex>` of everything read.
    pub(super) fn digest(&self) -> String {
        format!("sha256:{:x}", self.hasher.clone().finalize())
    }
}

/// A reader that hashes (sha256) and counts what passes through it, and fails once
/// more than `limit` bytes come. It keeps its inner reader's error, and hands the
/// reader above one of the same kind, so that [`blame`] can say which layer failed.
pub(super) struct Metered<R> {
    pub(super) inner: R,
    pub(super) meter: Meter,
}

impl<R: Read> Metered<R> {
    pub(super) fn new(inner: R, limit: Option<u64>) -> Metered<R> {
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
    pub(super) fn at_end(&mut self) -> bool {
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
pub struct HeaderBudget {
    remaining: Cell<Option<u64>>,
    exceeded: Cell<bool>,
}

impl HeaderBudget {
    /// Counts the extension headers from here on, up to `limit` bytes: the parser
    /// is about to read the headers of the next entry.
    pub fn start(&self, limit: u64) {
        self.remaining.set(Some(limit));
    }

    /// Stops counting: the parser has handed out an entry, whose body is read next.
    pub fn stop(&self) {
        self.remaining.set(None);
    }
}

/// The reader under the tar parser, which fails when the [`HeaderBudget`] runs out.
/// The `tar` crate reads a PAX header or a GNU long name into memory whole, however
/// large its header says it is; this stops it before it has read too much.
pub struct Budgeted<R> {
    pub inner: R,
    pub budget: Rc<HeaderBudget>,
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
pub(super) enum Decompressor<R: Read> {
    None(R),
    Gzip(flate2::read::MultiGzDecoder<R>),
    // Boxed: its frame decoder is large, and the enum is as large as its largest variant.
    Zstd(Box<ZstdFrames<R>>),
}

impl<R: Read> Decompressor<R> {
    pub(super) fn new(compression: Compression, blob: R) -> Decompressor<R> {
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
    pub(super) fn into_inner(self) -> R {
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
pub(super) struct ZstdFrames<R: Read> {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_refused, case, Tarball};
    use super::*;
    use std::io::Write;

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
}
