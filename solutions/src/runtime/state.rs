//! A container's runtime state: `state.json` in its directory, with the OCI runtime
//! spec's state fields (what `runc state ID` prints), written atomically so that a
//! reader never sees half a file, and loadable by a later command.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::OCI_VERSION;

/// Where a container is in its life (the OCI runtime spec's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// `create` is setting it up.
    Creating,
    /// Set up; its first process waits before the user's program.
    Created,
    /// The user's program runs.
    Running,
    /// Its processes are frozen (`ferry runtime pause`; runc's addition to the
    /// spec's four).
    Paused,
    /// It has ended.
    Stopped,
}

impl std::fmt::Display for Status {
    /// As `state.json` writes it: `created`, `running`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.pad(name)
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    /// The first process's pid on the host, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// When that process started, in clock ticks after boot (field 22 of
    /// /proc/PID/stat): with the pid, it tells the container's process from a later
    /// process that got the same pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// The bundle: the directory with `config.json`.
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("failed to write the container's state {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read the container's state {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the container's state {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The file name of the state in a container's directory.
pub const STATE_FILE: &str = "state.json";

impl State {
    /// A new container's state, before its process exists.
    pub fn new(id: &str, bundle: &Path, annotations: BTreeMap<String, String>) -> State {
        State {
            oci_version: OCI_VERSION.to_string(),
            id: id.to_string(),
            status: Status::Creating,
            pid: None,
            pid_start_time: None,
            bundle: bundle.to_path_buf(),
            annotations,
        }
    }

    /// Writes `DIR/state.json` atomically: a temporary file renamed over it.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = dir.join(STATE_FILE);
        let json = serde_json::to_vec_pretty(self).expect("state serializes");
        write_atomically(&path, &json).map_err(|source| StateError::Write { path, source })
    }

    /// Reads `DIR/state.json`.
    pub fn load(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| StateError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| StateError::Parse { path, source })
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never
/// a part: write a temporary file next to it, then rename(2) it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

pub use crate::process::start_time as process_start_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_saved_atomically_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("ferry-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut state = State::new("abc", &dir, BTreeMap::new());
        state.status = Status::Running;
        state.pid = Some(std::process::id() as i32);
        state.pid_start_time = process_start_time(std::process::id() as i32);
        state.save(&dir).unwrap();
        assert_eq!(State::load(&dir).unwrap(), state);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(STATE_FILE)).unwrap()).unwrap();
        assert_eq!(json["status"], "running");
        assert_eq!(json["ociVersion"], OCI_VERSION);
        assert!(state.pid_start_time.is_some());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
