//! Cleaning up after a ferry that could not: a `run` killed with SIGKILL leaves its
//! container's directory, its cgroups and its anonymous volumes behind (its
//! processes die with it: PR_SET_PDEATHSIG). Every `run` and `prune` first sweeps
//! such leftovers: a container whose `state.json` names a process that is gone — or
//! a different process with the same pid, told apart by its start time.
//!
//! Chapter 8's supervisor makes containers outlive a `run`; until then a container
//! lives exactly as long as the ferry that ran it.

use std::path::{Path, PathBuf};

use super::bundle::CONFIG_FILE;
use super::volumes::VolumeStore;
use crate::runtime::spec::Spec;
use crate::runtime::state::{process_start_time, State, Status};

/// Whether the process a container's state names still runs.
fn alive(state: &State) -> bool {
    let Some(pid) = state.pid else {
        // No process yet: another ferry may be creating it right now.
        return true;
    };
    match (process_start_time(pid), state.pid_start_time) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// Removes the containers under `state_root` whose ferry is gone; their ids.
pub fn sweep(state_root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(state_root.join("containers")) else {
        return Vec::new();
    };
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.join(super::containers::RECORD_FILE).exists() {
            continue; // a container kept as an object: `Containers::settle` judges it
        }
        let Ok(state) = State::load(&dir) else {
            continue; // being created, or not a container's: not ours to judge
        };
        if state.status == Status::Creating && state.pid.is_none() || alive(&state) {
            continue;
        }
        log::debug!(
            "sweeping the container {} left by a ferry that is gone",
            state.id
        );
        let spec: Option<Spec> = std::fs::read_to_string(dir.join(CONFIG_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        if let Some(spec) = &spec {
            remove_cgroups(spec);
            remove_anonymous_volumes(state_root, spec);
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            swept.push(state.id);
        }
    }
    swept
}

/// Removes the container's cgroup in every hierarchy, then the parent levels left
/// empty (its processes are gone, so the directories are empty).
pub(super) fn remove_cgroups(spec: &Spec) {
    let Some(path) = &spec.linux.cgroups_path else {
        return;
    };
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return; // not a path ferry writes: leave it alone
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for mount in crate::mountinfo::parse(&text) {
        if mount.fstype != "cgroup" && mount.fstype != "cgroup2" {
            continue;
        }
        let base = PathBuf::from(&mount.mount_point);
        let mut dir = base.join(relative);
        while dir != base && dir.starts_with(&base) && std::fs::remove_dir(&dir).is_ok() {
            let Some(parent) = dir.parent() else { break };
            dir = parent.to_path_buf();
        }
    }
}

/// Removes the anonymous volumes the container's spec mounts.
fn remove_anonymous_volumes(state_root: &Path, spec: &Spec) {
    let store = VolumeStore::new(state_root);
    let Ok(volumes) = store.list() else {
        return;
    };
    for volume in volumes.iter().filter(|v| v.anonymous) {
        let source = volume.mountpoint.display().to_string();
        if spec
            .mounts
            .iter()
            .any(|m| m.source.as_deref() == Some(source.as_str()))
        {
            let _ = store.remove(&volume.name, true);
        }
    }
}
