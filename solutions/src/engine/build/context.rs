//! The build context: the directory COPY and ADD read (`ferry build DIR`, or a
//! tar on stdin unpacked into one), less what `.dockerignore` excludes.
//!
//! It is walked the way every tree from outside is walked here: through
//! `safe_path`, one name at a time, never following a symlink (a symlink in the
//! context is copied as a symlink). The same walk hashes a COPY's sources for the
//! cache — paths, kinds, modes, link targets and contents, never mtimes, so
//! touching a file does not invalidate the cache and changing one byte does.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::{fstat, FileStat, SFlag};
use sha2::{Digest as _, Sha256};

use super::BuildError;
use crate::dockerfile::ignore::Ignore;
use crate::images::layer::{self, Compression, Expected, Limits};
use crate::images::Digest;
use crate::safe_path::{Kind, Resolved, Root};

/// The most bytes of `.dockerignore` read.
const IGNORE_CAP: u64 = 1 << 20;

/// A build context, opened.
pub struct Context {
    pub dir: PathBuf,
    pub root: Root,
    pub ignore: Ignore,
}

impl Context {
    /// Opens the directory `dir` as the context and reads its `.dockerignore`.
    pub fn open(dir: &Path, _dockerfile: &str) -> Result<Context, BuildError> {
        let failed = |why: String| BuildError::Context {
            path: dir.to_path_buf(),
            why,
        };
        let meta = std::fs::metadata(dir).map_err(|e| failed(e.to_string()))?;
        if !meta.is_dir() {
            return Err(failed("it is not a directory".into()));
        }
        let root = Root::open(dir).map_err(|e| failed(crate::errors::chain(&e)))?;
        let ignore = match root.read_file(Path::new("/.dockerignore"), IGNORE_CAP) {
            Ok(Some(bytes)) => Ignore::parse(&String::from_utf8_lossy(&bytes))
                .map_err(|e| failed(format!(".dockerignore: {e}")))?,
            Ok(None) => Ignore::empty(),
            Err(error) => return Err(failed(crate::errors::chain(&error))),
        };
        Ok(Context {
            dir: dir.to_path_buf(),
            root,
            ignore,
        })
    }

    /// The context paths a COPY source names (relative, `/`-separated, `.` for the
    /// whole context): itself, or for a glob every path it matches. An excluded
    /// or missing source is an error, as in docker.
    pub fn sources(&self, source: &str) -> Result<Vec<String>, String> {
        let wanted = relative(source);
        if wanted == "." {
            return Ok(vec![wanted]);
        }
        if !has_glob(&wanted) {
            return self.checked(&wanted, source).map(|path| vec![path]);
        }
        let mut found = Vec::new();
        let top = self
            .root
            .require(Path::new("/"), Kind::Directory)
            .map_err(|e| e.to_string())?;
        walk(&self.root, &top, "", &|_| Filter::Take, &mut |entry| {
            if glob_match(&wanted, &entry.path) && !self.ignore.excluded(&entry.path) {
                found.push(entry.path.clone());
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        if found.is_empty() {
            return Err(format!("no file in the build context matches {source:?}"));
        }
        found
            .iter()
            .map(|path| self.checked(path, source))
            .collect()
    }

    /// A source path, checked: it exists, and neither it nor what it leads to
    /// through symlinks is excluded (docker never sends excluded files, so a link
    /// to one dangles). A directory reached through a link is named by its real
    /// path, so that `.dockerignore` filters its contents as it filters the
    /// target's.
    fn checked(&self, wanted: &str, source: &str) -> Result<String, String> {
        let missing =
            || format!("{source:?} is not in the build context (or .dockerignore excludes it)");
        if self.ignore.excluded(wanted) {
            return Err(missing());
        }
        let followed = self
            .root
            .resolve_in_root(Path::new(wanted), Kind::DirectoryOrFile);
        let Ok(Some(found)) = followed else {
            // A dangling or climbing link is copied as the link it is.
            return if self.exists_no_follow(wanted) {
                Ok(wanted.to_string())
            } else {
                Err(missing())
            };
        };
        let Some(real) = self.real_path(&found) else {
            return Ok(wanted.to_string());
        };
        if real != wanted && (real.is_empty() || self.ignore.excluded(&real)) {
            return Err(format!(
                "{source:?} leads through a symlink to {:?}, which .dockerignore excludes (or is the context itself)",
                if real.is_empty() { "." } else { real.as_str() }
            ));
        }
        let is_dir = fstat(found.fd().as_raw_fd())
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        Ok(if is_dir { real } else { wanted.to_string() })
    }

    /// Where a resolved file really is in the context (relative, `/`-separated):
    /// its descriptor's link, less the context's own.
    fn real_path(&self, found: &Resolved) -> Option<String> {
        let top = self.root.require(Path::new("/"), Kind::Directory).ok()?;
        let root = std::fs::read_link(top.fd_path()).ok()?;
        let file = std::fs::read_link(found.fd_path()).ok()?;
        let inside = file.strip_prefix(&root).ok()?;
        Some(inside.to_string_lossy().into_owned())
    }

    fn exists_no_follow(&self, path: &str) -> bool {
        matches!(open_no_follow(&self.root, path), Ok(Some(_)))
    }

    /// What `ignore` leaves of the tree under `path`, as a walk filter.
    pub fn filter(&self) -> impl Fn(&str) -> Filter + '_ {
        move |path: &str| {
            if !self.ignore.excluded(path) {
                Filter::Take
            } else if self.ignore.may_include_below(path) {
                Filter::Descend
            } else {
                Filter::Skip
            }
        }
    }
}

/// Unpacks a context sent as a tar (plain or gzip) on stdin into `dir` (empty),
/// with the same checks as an image layer (names, links, sizes).
pub fn unpack_tar(reader: impl Read, dir: &Path) -> Result<(), BuildError> {
    let mut reader = std::io::BufReader::new(reader);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(|e| BuildError::Context {
        path: "-".into(),
        why: format!("failed to read the tar on stdin: {e}"),
    })?;
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else {
        Compression::None
    };
    layer::apply(
        reader,
        compression,
        dir,
        &Expected::default(),
        &Limits::default(),
    )?;
    Ok(())
}

/// What a walk does with a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Visit it (and what is under it).
    Take,
    /// Do not visit it, but look under it (an exception may re-include a file).
    Descend,
    /// Neither.
    Skip,
}

/// One entry met by [`walk`].
pub struct Entry {
    /// Relative to where the walk started, `/`-separated.
    pub path: String,
    pub stat: FileStat,
    /// The entry itself (a symlink opened, not followed).
    pub file: Resolved,
}

impl Entry {
    pub fn kind(&self) -> SFlag {
        SFlag::from_bits_truncate(self.stat.st_mode & libc::S_IFMT)
    }
}

/// The most entries one walk visits: a context of millions of files is a mistake.
const MAX_ENTRIES: usize = 1_000_000;

/// Visits everything under the directory `dir` of `root` (not `dir` itself), in
/// name order, a directory before its contents. `prefix` is `dir`'s own relative
/// path; `filter` decides per path.
pub fn walk(
    root: &Root,
    dir: &Resolved,
    prefix: &str,
    filter: &dyn Fn(&str) -> Filter,
    visit: &mut dyn FnMut(&Entry) -> Result<(), String>,
) -> Result<(), String> {
    let mut count = 0;
    walk_inner(root, dir, prefix, filter, visit, &mut count)
}

fn walk_inner(
    root: &Root,
    dir: &Resolved,
    prefix: &str,
    filter: &dyn Fn(&str) -> Filter,
    visit: &mut dyn FnMut(&Entry) -> Result<(), String>,
    count: &mut usize,
) -> Result<(), String> {
    let listing = std::fs::read_dir(dir.fd_path())
        .map_err(|e| format!("failed to list {}: {e}", dir.path.display()))?;
    let mut names: Vec<std::ffi::OsString> = listing
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("failed to list {}: {e}", dir.path.display()))?;
    names.sort();
    for name in names {
        *count += 1;
        if *count > MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} files: refusing to walk on"
            ));
        }
        let text = name.to_string_lossy();
        let path = if prefix.is_empty() || prefix == "." {
            text.to_string()
        } else {
            format!("{prefix}/{text}")
        };
        let decision = filter(&path);
        if decision == Filter::Skip {
            continue;
        }
        let Some(file) = root.open_in(dir, &name).map_err(|e| e.to_string())? else {
            continue; // gone meanwhile
        };
        let stat =
            fstat(file.fd().as_raw_fd()).map_err(|e| format!("failed to stat {path}: {e}"))?;
        let entry = Entry { path, stat, file };
        if decision == Filter::Take {
            visit(&entry)?;
        }
        if entry.kind() == SFlag::S_IFDIR {
            walk_inner(root, &entry.file, &entry.path, filter, visit, count)?;
        }
    }
    Ok(())
}

/// A hash of what the sources are, for the cache key: each entry's path, kind,
/// mode, owner, link target and contents — not its times.
pub fn hash_tree(
    root: &Root,
    sources: &[String],
    filter: &dyn Fn(&str) -> Filter,
) -> Result<Digest, String> {
    let mut hasher = Sha256::new();
    for source in sources {
        let path = Path::new("/").join(source);
        let start = root
            .resolve_in_root(&path, Kind::DirectoryOrFile)
            .map_err(|e| e.to_string())?;
        hasher.update(format!("source {source}\n"));
        match start {
            Some(start) if start.is_dir() => {
                walk(root, &start, source, filter, &mut |entry| {
                    hash_entry(&mut hasher, entry)
                })?;
            }
            Some(start) => {
                let stat = fstat(start.fd().as_raw_fd()).map_err(|e| e.to_string())?;
                hash_entry(
                    &mut hasher,
                    &Entry {
                        path: source.clone(),
                        stat,
                        file: start,
                    },
                )?;
            }
            // A dangling symlink: itself (its target) is what there is to hash.
            None => {
                if let Some(file) = open_no_follow(root, source)? {
                    let stat = fstat(file.fd().as_raw_fd()).map_err(|e| e.to_string())?;
                    let entry = Entry {
                        path: source.clone(),
                        stat,
                        file,
                    };
                    hash_entry(&mut hasher, &entry)?;
                }
            }
        }
    }
    Ok(Digest::from_hasher(hasher))
}

/// The entry at `path` (relative) itself, a symlink not followed; its
/// directories resolved without following any.
pub fn open_no_follow(root: &Root, path: &str) -> Result<Option<Resolved>, String> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (parent, name),
        None => ("", path),
    };
    let dir = root
        .resolve_no_symlinks(&Path::new("/").join(parent), Kind::Directory)
        .map_err(|e| e.to_string())?;
    match dir {
        Some(dir) => root.open_in(&dir, name.as_ref()).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

fn hash_entry(hasher: &mut Sha256, entry: &Entry) -> Result<(), String> {
    let stat = &entry.stat;
    hasher.update(format!(
        "{} {:o} {}:{}\n",
        entry.path, stat.st_mode, stat.st_uid, stat.st_gid
    ));
    match entry.kind() {
        SFlag::S_IFREG => {
            let mut file = std::fs::File::open(entry.file.fd_path())
                .map_err(|e| format!("failed to read {}: {e}", entry.path))?;
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = file
                    .read(&mut buffer)
                    .map_err(|e| format!("failed to read {}: {e}", entry.path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
        }
        SFlag::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&entry.file.fd())), "")
                    .map_err(|e| format!("failed to read the link {}: {e}", entry.path))?;
            hasher.update(format!("-> {}\n", target.to_string_lossy()));
        }
        _ => {}
    }
    Ok(())
}

/// A source path as the context names it: relative, cleaned, `.` for the root.
pub fn relative(source: &str) -> String {
    let cleaned = super::stage::clean(source);
    let relative = cleaned.trim_start_matches('/');
    if relative.is_empty() {
        ".".to_string()
    } else {
        relative.to_string()
    }
}

/// Whether a source has glob characters (Go's filepath.Match: `*`, `?`, `[`).
fn has_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// Go's filepath.Match over `/`-separated paths: each segment matched alone, `*`
/// and `?` never crossing a `/`.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let patterns: Vec<&str> = pattern.split('/').collect();
    let names: Vec<&str> = path.split('/').collect();
    patterns.len() == names.len()
        && patterns
            .iter()
            .zip(&names)
            .all(|(p, n)| segment_match(p.as_bytes(), n.as_bytes()))
}

/// One segment: `*`, `?`, `[a-z]`, `[!x]`, `\` escapes. Each (pattern, name)
/// position is tried once (`failed` remembers the dead ends), so a hostile
/// `*a*a*a*a*b` costs at most pattern × name steps, never an exponential search.
fn segment_match(pattern: &[u8], name: &[u8]) -> bool {
    if pattern.len() > 4096 || name.len() > 4096 {
        return false;
    }
    let mut failed = vec![false; (pattern.len() + 1) * (name.len() + 1)];
    segment_from(pattern, name, 0, 0, &mut failed)
}

fn segment_from(p: &[u8], n: &[u8], pi: usize, ni: usize, failed: &mut [bool]) -> bool {
    let slot = pi * (n.len() + 1) + ni;
    if failed[slot] {
        return false;
    }
    let ok = match (p.get(pi), n.get(ni)) {
        (None, None) => true,
        (Some(b'*'), _) => {
            segment_from(p, n, pi + 1, ni, failed)
                || (ni < n.len() && segment_from(p, n, pi, ni + 1, failed))
        }
        (Some(b'?'), Some(_)) => segment_from(p, n, pi + 1, ni + 1, failed),
        (Some(b'['), Some(&c)) => match class_end(&p[pi..]) {
            Some(end) => {
                in_class(&p[pi + 1..pi + end], c)
                    && segment_from(p, n, pi + end + 1, ni + 1, failed)
            }
            None => false,
        },
        (Some(b'\\'), Some(&c)) if pi + 1 < p.len() => {
            p[pi + 1] == c && segment_from(p, n, pi + 2, ni + 1, failed)
        }
        (Some(&a), Some(&c)) => a == c && segment_from(p, n, pi + 1, ni + 1, failed),
        _ => false,
    };
    if !ok {
        failed[slot] = true;
    }
    ok
}

fn class_end(pattern: &[u8]) -> Option<usize> {
    pattern
        .iter()
        .skip(2)
        .position(|&b| b == b']')
        .map(|i| i + 2)
}

fn in_class(class: &[u8], c: u8) -> bool {
    let (negated, class) = match class.first() {
        Some(b'^' | b'!') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut found = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            found |= class[i] <= c && c <= class[i + 2];
            i += 3;
        } else {
            found |= class[i] == c;
            i += 1;
        }
    }
    found != negated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_one_segment_at_a_time() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "dir/a.txt"));
        assert!(glob_match("dir/*.txt", "dir/a.txt"));
        assert!(glob_match("file?", "file1"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[!a-c]x", "bx"));
    }

    #[test]
    fn sources_are_relative_and_clean() {
        assert_eq!(relative("./a/../b"), "b");
        assert_eq!(relative("."), ".");
        assert_eq!(relative("/"), ".");
        assert_eq!(relative("../../etc"), "etc");
    }
}
