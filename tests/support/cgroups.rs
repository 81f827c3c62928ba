//! The test's cgroups: every container a test runs is created under its own
//! `--cgroup-parent`, found here in every hierarchy the host mounts.

use std::path::PathBuf;

/// Mount points of every cgroup hierarchy (v1 and v2), from /proc/self/mountinfo.
pub fn hierarchies() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    super::mountinfo::parse(&text)
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| PathBuf::from(m.mount_point))
        .collect()
}

/// The directories of `parent` (e.g. /ferry-test-x) that exist, in every hierarchy.
pub fn parent_dirs(parent: &str) -> Vec<PathBuf> {
    hierarchies()
        .into_iter()
        .map(|mount| mount.join(parent.trim_start_matches('/')))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// Removes what podman's conmon leaves with `--cgroup-manager cgroupfs`: its
/// `conmon` cgroup under `parent`, or under podman's own `/libpod_parent` (used
/// whatever `--cgroup-parent` says), and `/libpod_parent` itself once empty.
pub fn remove_podman_leftovers(parent: &str) {
    for dir in parent_dirs(parent) {
        let _ = std::fs::remove_dir(dir.join("conmon"));
    }
    for dir in parent_dirs("/libpod_parent") {
        let _ = std::fs::remove_dir(dir.join("conmon"));
        let _ = std::fs::remove_dir(dir);
    }
}

/// [`remove_podman_leftovers`] on drop: after a failed assertion too.
pub struct PodmanLeftovers<'a>(pub &'a str);

impl Drop for PodmanLeftovers<'_> {
    fn drop(&mut self) {
        remove_podman_leftovers(self.0);
    }
}

/// The container cgroups (subdirectories) still under `parent`.
pub fn children(parent: &str) -> Vec<PathBuf> {
    parent_dirs(parent)
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()))
        .filter(|path| path.is_dir())
        .collect()
}

/// Removes the test's parent cgroups; returns the container cgroups left in them.
pub fn remove_parent(parent: &str) -> Vec<PathBuf> {
    let left = children(parent);
    for dir in &left {
        let _ = std::fs::remove_dir(dir);
    }
    for dir in parent_dirs(parent) {
        let _ = std::fs::remove_dir(dir);
    }
    left
}
