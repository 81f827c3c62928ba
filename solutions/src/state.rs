//! The engine's state root (`--root`, default /var/lib/ferry): one directory per
//! running container, named by its id, removed when the container ends.
//!
//! Chapter 8 turns these into lasting objects (ps, logs, rm); until then a
//! container's directory lives exactly as long as its `run`.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::ContainerConfig;

/// What `state.json` records about a running container.
#[derive(Debug, Serialize)]
struct StateFile<'a> {
    id: &'a str,
    rootfs: &'a Path,
    command: &'a [String],
    pid: Option<i32>,
}

/// A container's directory under the state root; removed on drop, on every path.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to write the container's state in {path}")]
pub struct StateError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl StateDir {
    /// Creates `ROOT/containers/ID/state.json`.
    pub fn create(config: &ContainerConfig) -> Result<StateDir, StateError> {
        let dir = config
            .state_root
            .join("containers")
            .join(config.id.as_str());
        std::fs::create_dir_all(&dir).map_err(|source| StateError {
            path: dir.clone(),
            source,
        })?;
        let state = StateDir { dir };
        state.write(config, None)?;
        Ok(state)
    }

    /// Records the container's pid once it exists.
    pub fn write(&self, config: &ContainerConfig, pid: Option<i32>) -> Result<(), StateError> {
        let file = StateFile {
            id: config.id.as_str(),
            rootfs: &config.rootfs,
            command: &config.argv,
            pid,
        };
        let path = self.dir.join("state.json");
        let json = serde_json::to_vec_pretty(&file).expect("state serializes");
        std::fs::write(&path, json).map_err(|source| StateError { path, source })
    }
}

impl StateDir {
    /// Writes one of the engine's files for the container (its /etc/hostname, say)
    /// into the state directory; returns its path.
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf, StateError> {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).map_err(|source| StateError {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            log::warn!("failed to remove {}: {error}", self.dir.display());
        }
    }
}
