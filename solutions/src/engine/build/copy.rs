//! COPY, ADD and WORKDIR: files put into the stage's image through an overlay.
//!
//! The stage's layers are mounted as an overlay with a fresh upper directory —
//! chapter 5's projector with a clean sheet — and the files are written into the
//! merged view, so a destination path resolves as the image sees it (its
//! `/usr/local -> /opt` symlink followed, never out of its root). What lands on
//! the sheet is the step's layer. The overlay lives in a mount namespace of one
//! thread, private from its first moment: when the thread ends the namespace and
//! its mounts are gone, whatever happened, and the host never saw them.
//!
//! What docker does, and so ferry: files from the context are owned by root
//! unless `--chown`; from another stage or image (`--from`) they keep their
//! owner; modes are kept unless `--chmod`; a source directory's *contents* are
//! copied; the destination is a directory when it ends in `/`, when there are
//! several sources, or when it already is one. ADD also unpacks a local tar
//! archive (plain or gzip, recognised by its content) into the destination.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};

use super::context::{self, Filter};
use super::plan::{self, Base};
use super::stage::StageState;
use super::steps;
use super::{cache_key, layers, BuildError, Builder, StepInfo};
use crate::dockerfile::{Copy, Instruction};
use crate::images::oci::Descriptor;
use crate::images::{Digest, Image};
use crate::rootfs::overlay::{self, Overlay};
use crate::safe_path::{Kind, Resolved, Root};

/// A COPY or ADD step.
pub fn copy_step(
    builder: &mut Builder,
    state: &mut StageState,
    instruction: &Instruction,
    copy: &Copy,
    add: bool,
    step: &StepInfo,
) -> Result<bool, BuildError> {
    let fail = |why: String| builder.error_at(instruction.location, why);
    let what = if add { "ADD" } else { "COPY" };
    let expand = |raw: &String| state.expand(raw).map_err(fail);
    let dest_raw = expand(&copy.dest)?;
    if dest_raw.is_empty() {
        return Err(fail(format!("{what} needs a destination")));
    }
    let dest = destination(state, &dest_raw);
    let chown = copy.chown.as_ref().map(expand).transpose()?;
    let chmod = match copy.chmod.as_ref().map(expand).transpose()? {
        Some(text) => Some(
            u32::from_str_radix(&text, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    fail(format!(
                        "invalid --chmod={text}: an octal mode such as 0755"
                    ))
                })?,
        ),
        None => None,
    };
    let from = plan::copy_from(
        builder.file,
        state.index,
        instruction,
        &builder.plan.global_args,
    )
    .map_err(fail)?;
    let from_image: Option<Image> = match &from {
        None => None,
        Some(Base::Stage(index)) => Some(builder.built[index].clone()),
        Some(Base::Image(name)) => Some(builder.bases.image(name, false)?),
        Some(Base::Scratch) => return Err(fail("--from=scratch has no files to copy".into())),
    };
    // The sources: heredocs, paths of the context, or paths of the --from image.
    let mut items = Vec::new();
    let mut hashed = Vec::new();
    for raw in &copy.sources {
        if let Some(heredoc) = copy.heredocs.iter().find(|h| is_marker(raw, &h.name)) {
            let content = if heredoc.expand {
                crate::dockerfile::words::expand_heredoc(&heredoc.content, state.escape, &|n| {
                    state.lookup(n)
                })
                .map_err(|e| fail(e.to_string()))?
            } else {
                heredoc.content.clone()
            };
            hashed.push(format!(
                "heredoc {} {}",
                heredoc.name,
                Digest::of(content.as_bytes())
            ));
            items.push(Item::Heredoc {
                name: heredoc.name.clone(),
                content,
            });
            continue;
        }
        let source = expand(raw)?;
        if add && is_remote(&source) {
            return Err(fail(format!(
                "ADD {source}: ferry does not download in ADD (the build stays reproducible and offline): fetch it in a RUN step (wget, curl) or put it in the build context first"
            )));
        }
        match &from_image {
            None => {
                let found = builder.context.sources(&source).map_err(fail)?;
                items.extend(found.into_iter().map(Item::Path));
            }
            Some(_) => items.push(Item::Path(context::relative(&source))),
        }
    }
    if items.is_empty() {
        return Err(fail(format!(
            "{what} needs at least one source and a destination"
        )));
    }
    match &from_image {
        None => {
            let paths: Vec<String> = items
                .iter()
                .filter_map(|i| match i {
                    Item::Path(p) => Some(p.clone()),
                    Item::Heredoc { .. } => None,
                })
                .collect();
            let filter = builder.context.filter();
            let digest =
                context::hash_tree(&builder.context.root, &paths, &filter).map_err(fail)?;
            hashed.push(format!("context {digest}"));
        }
        Some(image) => {
            hashed.push(format!("image {}", image.manifest_digest));
            hashed.extend(items.iter().filter_map(|i| match i {
                Item::Path(p) => Some(format!("path {p}")),
                Item::Heredoc { .. } => None,
            }));
        }
    }
    let line = format!("{what} {} {dest}", copy.sources.join(" "));
    let mut parts = vec![
        what.to_string(),
        dest.clone(),
        format!("{chown:?} {chmod:?}"),
    ];
    parts.extend(hashed);
    let key = cache_key(
        &state.key,
        &parts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    if steps::start(builder, state, &key, step)? {
        return Ok(true);
    }
    let started = Instant::now();
    let request = CopyRequest {
        items: &items,
        dest: &dest,
        chown: chown.as_deref(),
        chmod,
        add,
        keep_owner: from_image.is_some(),
    };
    let source_lowers = match &from_image {
        Some(image) => Some(builder.store.lowers(image)?),
        None => None,
    };
    let context_root = builder.context.dir.clone();
    let ignore_filter = builder.context.filter();
    let filter: &(dyn Fn(&str) -> Filter + Sync) = if from_image.is_some() {
        &|_: &str| Filter::Take
    } else {
        &ignore_filter
    };
    let made = with_overlay(builder, state, source_lowers.as_deref(), |merged, from| {
        let source_root = match from {
            Some(root) => root,
            None => Root::open(&context_root).map_err(|e| e.to_string())?,
        };
        copy_into(merged, &source_root, &request, filter)
    });
    let made = made.map_err(|error| match error {
        BuildError::Step(why) => fail(why),
        other => other,
    });
    steps::finish(builder, state, made, line, key, step, started)
}

/// A WORKDIR step: the config's WorkingDir, and the directory made if missing.
pub fn workdir_step(
    builder: &mut Builder,
    state: &mut StageState,
    instruction: &Instruction,
    raw: &str,
    step: &StepInfo,
) -> Result<bool, BuildError> {
    let fail = |why: String| builder.error_at(instruction.location, why);
    let line = state
        .apply_metadata(&instruction.kind)
        .map_err(fail)?
        .unwrap_or_else(|| format!("WORKDIR {raw}"));
    let dir = state.working_dir();
    let key = cache_key(&state.key, &[&line]);
    if steps::start(builder, state, &key, step)? {
        return Ok(true);
    }
    let started = Instant::now();
    let made = with_overlay(builder, state, None, |merged, _| {
        make_dirs(merged, &dir, None).map(drop)
    });
    steps::finish(builder, state, made, line, key, step, started)
}

/// The destination as an absolute path: relative ones are under the WORKDIR; a
/// trailing `/` (a directory) is kept.
fn destination(state: &StageState, dest: &str) -> String {
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", state.working_dir())
    };
    let mut clean = super::stage::clean(&joined);
    if (dest.ends_with('/') || dest.ends_with("/.") || dest == ".") && clean != "/" {
        clean.push('/');
    }
    clean
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"` for heredoc `name`.
fn is_marker(raw: &str, name: &str) -> bool {
    let Some(rest) = raw.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    rest.trim_matches(|c| c == '"' || c == '\'') == name
}

/// A URL or a git remote: what ADD could fetch.
fn is_remote(source: &str) -> bool {
    ["http://", "https://", "git@", "git://"]
        .iter()
        .any(|p| source.starts_with(p))
}

/// One thing to copy.
enum Item {
    /// A path in the source root (`.` for all of it).
    Path(String),
    /// A file made from a heredoc, named after its delimiter.
    Heredoc { name: String, content: String },
}

struct CopyRequest<'a> {
    items: &'a [Item],
    dest: &'a str,
    chown: Option<&'a str>,
    chmod: Option<u32>,
    add: bool,
    /// Files from an image keep their owner (without --chown).
    keep_owner: bool,
}

/// A step's scratch directories under the state root, removed when it ends.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(state_root: &Path) -> Result<Scratch, BuildError> {
        let id = crate::id::ContainerId::generate()
            .map_err(|e| BuildError::Step(format!("failed to make a step's id: {e}")))?;
        // Named by this process's pid, so that what a killed build left can be
        // told apart from what a running one uses (see `super::sweep_stale`).
        let dir = state_root.join("builds").join(format!(
            "{}-{}",
            std::process::id(),
            &id.as_str()[..16]
        ));
        for sub in ["upper", "work", "merged", "from", "empty", "empty2"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| {
                BuildError::Step(format!("failed to create {}: {e}", dir.join(sub).display()))
            })?;
        }
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            log::warn!("failed to remove {}: {error}", self.dir.display());
        }
    }
}

/// Runs `task` with the stage's image mounted as an overlay (a fresh upper) and,
/// with `source`, those layers mounted read-only too, in a thread's own mount
/// namespace; then snapshots the upper directory as the step's layer.
fn with_overlay(
    builder: &Builder,
    state: &StageState,
    source: Option<&[PathBuf]>,
    task: impl FnOnce(&Root, Option<Root>) -> Result<(), String> + Send,
) -> Result<Option<(Descriptor, Digest)>, BuildError> {
    let scratch = Scratch::new(&builder.state_root)?;
    let dir = &scratch.dir;
    let mut lowers = match &state.manifest {
        Some(manifest) => builder
            .store
            .lowers(&builder.store.image_of_manifest(manifest)?)?,
        None => Vec::new(),
    };
    if lowers.is_empty() {
        lowers.push(dir.join("empty"));
    }
    let overlay = Overlay {
        lowers,
        upper: dir.join("upper"),
        work: dir.join("work"),
    };
    let merged = dir.join("merged");
    let from = dir.join("from");
    let mut source_lowers: Option<Vec<PathBuf>> = source.map(<[PathBuf]>::to_vec);
    if let Some(lowers) = &mut source_lowers {
        // overlayfs wants two lower directories when there is no upper one.
        lowers.push(dir.join("empty"));
        if lowers.len() < 2 {
            lowers.push(dir.join("empty2"));
        }
    }
    let ran = in_mount_namespace(|| {
        overlay::mount_overlay(&overlay, &merged).map_err(|e| crate::errors::chain(&e))?;
        let source_root = match &source_lowers {
            Some(lowers) => {
                mount_read_only(lowers, &from)?;
                Some(Root::open(&from).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let merged_root = Root::open(&merged).map_err(|e| e.to_string())?;
        task(&merged_root, source_root)
    });
    ran.map_err(BuildError::Step)?;
    layers::store_layer(
        &builder.store,
        &overlay.upper,
        &[],
        state.epoch,
        &state.config.rootfs.diff_ids,
    )
}

/// Runs `task` on a thread of its own in a new mount namespace whose mounts are
/// all private (mount_namespaces(7)): nothing mounted there reaches the host, and
/// it all goes when the thread ends.
fn in_mount_namespace<T: Send>(
    task: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
                    format!("failed to make a mount namespace for the step (unshare(2)): {e}")
                })?;
                crate::rootfs::make_mounts_private().map_err(|e| crate::errors::chain(&e))?;
                task()
            })
            .join()
            .unwrap_or_else(|_| Err("the step's thread panicked".to_string()))
    })
}

/// Mounts `lowers` as a read-only overlay on `target`: another stage's files.
fn mount_read_only(lowers: &[PathBuf], target: &Path) -> Result<(), String> {
    let names: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
    if names.iter().any(|n| n.contains([':', ',', '\\'])) {
        return Err("a layer path holds ':', ',' or '\\': overlayfs cannot take it".into());
    }
    let data = format!("lowerdir={}", names.join(":"));
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(data.as_str()),
    )
    .map_err(|e| format!("failed to mount the --from image's layers (mount(2) overlay): {e}"))
}

/// Copies the request's items from `source` into `dest` (the merged view).
fn copy_into(
    dest: &Root,
    source: &Root,
    request: &CopyRequest,
    filter: &(dyn Fn(&str) -> Filter + Sync),
) -> Result<(), String> {
    let owner = match request.chown {
        Some(spec) => {
            // The root's descriptor stays open while the lookup reads through
            // its /proc/self/fd link.
            let top = dest
                .require(Path::new("/"), Kind::Directory)
                .map_err(|e| e.to_string())?;
            let user = crate::privileges::user::resolve(spec, &top.fd_path())
                .map_err(|e| format!("--chown={spec}: {}", crate::errors::chain(&e)))?;
            Some((user.uid, user.gid))
        }
        None if request.keep_owner => None,
        None => Some((0, 0)),
    };
    let copier = Copier {
        dest,
        source,
        owner,
        chmod: request.chmod,
        filter,
    };
    let existing_dir = matches!(
        dest.resolve_in_root(Path::new(request.dest), Kind::Directory),
        Ok(Some(_))
    );
    let into_dir = request.dest.ends_with('/') || request.items.len() > 1 || existing_dir;
    for item in request.items {
        match item {
            Item::Heredoc { name, content } => {
                let (parent, file) = copier.target(request.dest, into_dir, name)?;
                copier.write_file(
                    &parent,
                    &file,
                    content.as_bytes(),
                    request.chmod.unwrap_or(0o644),
                )?;
            }
            Item::Path(path) => copier.copy_path(path, request.dest, into_dir, request.add)?,
        }
    }
    Ok(())
}

/// Copies entries from one root into another.
struct Copier<'a> {
    dest: &'a Root,
    source: &'a Root,
    /// uid and gid for everything copied, or keep the source's.
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
    filter: &'a (dyn Fn(&str) -> Filter + Sync),
}

impl Copier<'_> {
    /// Where a file named `name` goes: into `dest` when it is a directory, else
    /// `dest` itself. The parent directory (made when missing) and the name.
    fn target(&self, dest: &str, into_dir: bool, name: &str) -> Result<(Resolved, String), String> {
        if into_dir {
            return Ok((make_dirs(self.dest, dest, self.owner)?, name.to_string()));
        }
        let (parent, file) = dest
            .trim_end_matches('/')
            .rsplit_once('/')
            .unwrap_or(("", dest));
        let parent = if parent.is_empty() { "/" } else { parent };
        Ok((make_dirs(self.dest, parent, None)?, file.to_string()))
    }

    /// Copies source path `path` to `dest`.
    fn copy_path(&self, path: &str, dest: &str, into_dir: bool, add: bool) -> Result<(), String> {
        let wanted = Path::new("/").join(path);
        // The source path itself is followed (inside its root), as docker does.
        let found = match self.source.resolve_in_root(&wanted, Kind::DirectoryOrFile) {
            Ok(Some(found)) => found,
            Ok(None) | Err(_) => context::open_no_follow(self.source, path)?
                .ok_or_else(|| format!("{path} does not exist in the source"))?,
        };
        let stat = nix::sys::stat::fstat(found.fd().as_raw_fd())
            .map_err(|e| format!("failed to stat {path}: {e}"))?;
        if kind_of(&stat) == SFlag::S_IFDIR {
            let target = make_dirs(self.dest, dest, self.owner)?;
            return self.copy_tree(&found, path, &target);
        }
        if add && kind_of(&stat) == SFlag::S_IFREG {
            if let Some(compression) = archive_kind(&found)? {
                let target = make_dirs(self.dest, dest, self.owner)?;
                let file = std::fs::File::open(found.fd_path())
                    .map_err(|e| format!("failed to read {path}: {e}"))?;
                crate::images::layer::apply(
                    file,
                    compression,
                    &target.fd_path(),
                    &Default::default(),
                    &Default::default(),
                )
                .map_err(|e| format!("ADD {path}: {}", crate::errors::chain(&e)))?;
                return Ok(());
            }
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let (parent, name) = self.target(dest, into_dir, name)?;
        self.copy_entry(&found, &stat, &parent, &name).map(drop)
    }

    /// Copies what is in the source directory `dir` (at `prefix`) into `target`.
    fn copy_tree(&self, dir: &Resolved, prefix: &str, target: &Resolved) -> Result<(), String> {
        let listing = std::fs::read_dir(dir.fd_path())
            .map_err(|e| format!("failed to list {prefix}: {e}"))?;
        let mut names: Vec<std::ffi::OsString> = listing
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            let text = name.to_string_lossy().into_owned();
            let path = if prefix == "." {
                text.clone()
            } else {
                format!("{prefix}/{text}")
            };
            let decision = (self.filter)(&path);
            if decision == Filter::Skip {
                continue;
            }
            let Some(entry) = self.source.open_in(dir, &name).map_err(|e| e.to_string())? else {
                continue;
            };
            let stat = nix::sys::stat::fstat(entry.fd().as_raw_fd())
                .map_err(|e| format!("failed to stat {path}: {e}"))?;
            let is_dir = kind_of(&stat) == SFlag::S_IFDIR;
            if decision == Filter::Descend && !is_dir {
                continue;
            }
            if let Some(made) = self.copy_entry(&entry, &stat, target, &text)? {
                self.copy_tree(&entry, &path, &made)?;
            }
        }
        Ok(())
    }

    /// Copies one entry into `parent` as `name`; a directory made (or already
    /// there) is returned to copy into.
    fn copy_entry(
        &self,
        entry: &Resolved,
        stat: &FileStat,
        parent: &Resolved,
        name: &str,
    ) -> Result<Option<Resolved>, String> {
        let kind = kind_of(stat);
        let mode = self.chmod.unwrap_or(stat.st_mode & 0o7777);
        let (uid, gid) = self.owner.unwrap_or((stat.st_uid, stat.st_gid));
        let at = parent.fd().as_raw_fd();
        if let Some(existing) = self
            .dest
            .open_in(parent, name.as_ref())
            .map_err(|e| e.to_string())?
        {
            if existing.is_dir() && kind == SFlag::S_IFDIR {
                return Ok(Some(
                    self.dest
                        .require(&existing.path, Kind::Directory)
                        .unwrap_or(existing),
                ));
            }
            self.dest
                .remove_in(parent, name.as_ref())
                .map_err(|e| e.to_string())?;
        }
        let chown = |flags| {
            nix::unistd::fchownat(
                Some(at),
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                flags,
            )
            .map_err(|e| format!("failed to chown {name}: {e}"))
        };
        match kind {
            SFlag::S_IFDIR => {
                nix::sys::stat::mkdirat(Some(at), name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| format!("failed to create the directory {name}: {e}"))?;
                chown(nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
                let made = self
                    .dest
                    .open_in(parent, name.as_ref())
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("the directory {name} went away"))?;
                set_mode(&made, mode)?;
                Ok(Some(made))
            }
            SFlag::S_IFREG => {
                let mut from = std::fs::File::open(entry.fd_path())
                    .map_err(|e| format!("failed to read {name}: {e}"))?;
                let mut to = self
                    .dest
                    .create_file_in(parent, name.as_ref(), 0o600)
                    .map_err(|e| e.to_string())?;
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| format!("failed to copy {name}: {e}"))?;
                finish_file(&to, uid, gid, mode, Some(stat))?;
                Ok(None)
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(entry.fd().as_raw_fd()), "")
                    .map_err(|e| format!("failed to read the link {name}: {e}"))?;
                nix::unistd::symlinkat(target.as_os_str(), Some(at), name)
                    .map_err(|e| format!("failed to create the link {name}: {e}"))?;
                chown(nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
                Ok(None)
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                nix::sys::stat::mknodat(
                    Some(at),
                    name,
                    kind,
                    Mode::from_bits_truncate(mode),
                    stat.st_rdev,
                )
                .map_err(|e| format!("failed to create {name}: {e}"))?;
                chown(nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
                Ok(None)
            }
            _ => Ok(None), // a socket: nothing to copy
        }
    }

    /// Writes a new regular file `name` in `parent` with `content`.
    fn write_file(
        &self,
        parent: &Resolved,
        name: &str,
        content: &[u8],
        mode: u32,
    ) -> Result<(), String> {
        if self
            .dest
            .open_in(parent, name.as_ref())
            .map_err(|e| e.to_string())?
            .is_some()
        {
            self.dest
                .remove_in(parent, name.as_ref())
                .map_err(|e| e.to_string())?;
        }
        let mut file = self
            .dest
            .create_file_in(parent, name.as_ref(), 0o600)
            .map_err(|e| e.to_string())?;
        file.write_all(content)
            .map_err(|e| format!("failed to write {name}: {e}"))?;
        let (uid, gid) = self.owner.unwrap_or((0, 0));
        finish_file(&file, uid, gid, mode, None)
    }
}

/// Owner, then mode (chown clears setuid bits), then the source's mtime.
fn finish_file(
    file: &std::fs::File,
    uid: u32,
    gid: u32,
    mode: u32,
    stat: Option<&FileStat>,
) -> Result<(), String> {
    let fd = file.as_raw_fd();
    nix::unistd::fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))
        .map_err(|e| format!("failed to chown a copied file: {e}"))?;
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode))
        .map_err(|e| format!("failed to chmod a copied file: {e}"))?;
    if let Some(stat) = stat {
        let mtime = nix::sys::time::TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec);
        let _ = nix::sys::stat::futimens(fd, &mtime, &mtime);
    }
    Ok(())
}

/// chmod of a directory made here, through its descriptor's `/proc/self/fd` link.
fn set_mode(dir: &Resolved, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.fd_path(), std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("failed to chmod {}: {e}", dir.path.display()))
}

fn kind_of(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & libc::S_IFMT)
}

/// The directory `path` in `root`, made where missing (`mkdir -p`): each
/// component resolved as the image sees it — a symlink on the way is followed,
/// and a directory missing where it points is made there, inside the root,
/// never out of it. Directories made are owned by `owner` (root when none).
pub fn make_dirs(root: &Root, path: &str, owner: Option<(u32, u32)>) -> Result<Resolved, String> {
    let mut wanted = crate::safe_path::lexically_in_root(Path::new(path));
    // A chain of symlinks is followed at most this far (the kernel's own limit).
    'retarget: for _ in 0..40 {
        let mut current = root
            .require(Path::new("/"), Kind::Directory)
            .map_err(|e| e.to_string())?;
        let mut so_far = PathBuf::from("/");
        let components: Vec<String> = wanted
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        for (index, component) in components.iter().enumerate() {
            so_far.push(component);
            match root.resolve_in_root(&so_far, Kind::Directory) {
                Ok(Some(dir)) => {
                    current = dir;
                    continue;
                }
                Ok(None) => {}
                Err(error) => {
                    return Err(format!(
                        "{} cannot be a directory in the image: {}",
                        so_far.display(),
                        crate::errors::chain(&error)
                    ))
                }
            }
            // Missing: a dangling symlink is followed to where it points; else made.
            if let Some(link) = root
                .open_in(&current, component.as_ref())
                .map_err(|e| e.to_string())?
            {
                if link.is_symlink() {
                    let target =
                        nix::fcntl::readlinkat(Some(link.fd().as_raw_fd()), "").map_err(|e| {
                            format!("failed to read the link {}: {e}", so_far.display())
                        })?;
                    let base = so_far.parent().unwrap_or(Path::new("/")).to_path_buf();
                    let mut next = base.join(target);
                    for rest in &components[index + 1..] {
                        next.push(rest);
                    }
                    wanted = crate::safe_path::lexically_in_root(&next);
                    continue 'retarget;
                }
            }
            let at = current.fd().as_raw_fd();
            nix::sys::stat::mkdirat(
                Some(at),
                component.as_str(),
                Mode::from_bits_truncate(0o755),
            )
            .map_err(|e| format!("failed to create {} (mkdirat(2)): {e}", so_far.display()))?;
            let (uid, gid) = owner.unwrap_or((0, 0));
            nix::unistd::fchownat(
                Some(at),
                component.as_str(),
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| format!("failed to chown {}: {e}", so_far.display()))?;
            current = root
                .resolve_in_root(&so_far, Kind::Directory)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} went away", so_far.display()))?;
        }
        return Ok(current);
    }
    Err(format!("{path}: too many levels of symlinks in the image"))
}

/// Whether a file is a tar archive ADD unpacks: gzip, or a tar's `ustar` magic.
fn archive_kind(file: &Resolved) -> Result<Option<crate::images::layer::Compression>, String> {
    use crate::images::layer::Compression;
    let mut head = vec![0u8; 512];
    let mut reader = std::fs::File::open(file.fd_path()).map_err(|e| e.to_string())?;
    let mut read = 0;
    while read < head.len() {
        match reader.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) => return Err(e.to_string()),
        }
    }
    head.truncate(read);
    if head.starts_with(&[0x1f, 0x8b]) {
        // A gzip file is unpacked only when what it holds is a tar.
        let file = std::fs::File::open(file.fd_path()).map_err(|e| e.to_string())?;
        let mut inner = Vec::with_capacity(512);
        let _ = flate2::read::GzDecoder::new(file)
            .take(512)
            .read_to_end(&mut inner);
        let is_tar = inner.len() >= 262 && &inner[257..262] == b"ustar";
        return Ok(is_tar.then_some(Compression::Gzip));
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return Ok(Some(Compression::None));
    }
    Ok(None)
}
