//! A container's directory under the state root: `ROOT/containers/ID`, the OCI
//! bundle the runtime runs (`config.json`), the runtime's `state.json`, and the
//! engine's own files for the container (its /etc/hostname, /etc/hosts and
//! /etc/resolv.conf: `etc_files`).
//!
//! Chapter 8 turns these into lasting objects (ps, logs, rm); until then a
//! container's directory lives exactly as long as its `run`.

use std::io;
use std::path::{Path, PathBuf};

use crate::runtime::spec::Spec;
use crate::runtime::state::write_atomically;

/// The file name of the runtime spec in a bundle, as the OCI runtime spec has it.
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
#[error("failed to write the container's directory {path}")]
pub struct BundleError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// A container's directory; removed by [`Bundle::remove`] — and, should a path
/// forget it (a stub's panic unwinding), when dropped.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    removed: bool,
}

impl Bundle {
    /// Creates `STATE_ROOT/containers/ID`. `containers/` is the engine's alone
    /// (mode 0700): a container's upper layer holds whatever the container made —
    /// setuid files, device nodes — and its config.json the `-e` secrets, and no
    /// other user of the host may reach them.
    pub fn create(state_root: &Path, id: &str) -> Result<Bundle, BundleError> {
        let containers = state_root.join("containers");
        private_dir(&containers).map_err(|source| BundleError {
            path: containers.clone(),
            source,
        })?;
        let dir = containers.join(id);
        std::fs::create_dir(&dir).map_err(|source| BundleError {
            path: dir.clone(),
            source,
        })?;
        Ok(Bundle {
            dir,
            removed: false,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes one of the engine's files for the container; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf, BundleError> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).map_err(|source| BundleError {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Creates the directory `name` in the bundle; returns its path.
    pub fn make_dir(&self, name: &str) -> Result<PathBuf, BundleError> {
        let path = self.dir.join(name);
        std::fs::create_dir(&path).map_err(|source| BundleError {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Writes `config.json`: what the engine hands the runtime.
    pub fn write_config(&self, spec: &Spec) -> Result<(), BundleError> {
        let path = self.dir.join(CONFIG_FILE);
        write_atomically(&path, spec.to_json().as_bytes())
            .map_err(|source| BundleError { path, source })
    }

    /// Keeps the directory for good (a container kept as an object, chapter 8):
    /// dropping the bundle no longer removes it.
    pub fn keep(mut self) -> PathBuf {
        self.removed = true;
        self.dir.clone()
    }

    /// Removes the directory and everything in it.
    pub fn remove(mut self) -> Result<(), BundleError> {
        self.removed = true;
        std::fs::remove_dir_all(&self.dir).map_err(|source| BundleError {
            path: self.dir.clone(),
            source,
        })
    }
}

/// The containers under `state_root` whose spec matches `wanted`: the short id of
/// the first one (for "in use by container …" errors).
pub fn container_whose_spec(state_root: &Path, wanted: impl Fn(&Spec) -> bool) -> Option<String> {
    let entries = std::fs::read_dir(state_root.join("containers")).ok()?;
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join(CONFIG_FILE)) else {
            continue;
        };
        match serde_json::from_str::<Spec>(&text) {
            Ok(spec) if wanted(&spec) => {
                return Some(
                    entry
                        .file_name()
                        .to_string_lossy()
                        .chars()
                        .take(12)
                        .collect(),
                )
            }
            _ => {}
        }
    }
    None
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Creates `dir` (and its parents) readable by root only (mode 0700), and makes it
/// so if it was there already: the engine's own directories under the state root.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}
