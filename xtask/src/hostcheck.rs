//! The whole-host leak check that ends `test` and `ladder`: the mount table, ferry's
//! cgroups, network links and the tests' temp dirs must be as they were at the start.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

/// What the engine and its tests could leave behind on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    links: BTreeSet<String>,
    temp_dirs: BTreeSet<String>,
}

impl HostState {
    pub fn capture() -> HostState {
        HostState {
            mounts: mounts(),
            cgroups: engine_cgroups(),
            links: names_in("/sys/class/net"),
            temp_dirs: names_in("/tmp")
                .into_iter()
                .filter(|n| n.starts_with("ferry-test-"))
                .collect(),
        }
    }

    /// Fails, listing what appeared, when the host differs from `before`.
    pub fn ensure_unchanged_since(before: &HostState) -> Result<()> {
        let after = HostState::capture();
        let mut problems = Vec::new();
        let mut compare = |what: &str, before: &BTreeSet<String>, after: &BTreeSet<String>| {
            let added: Vec<&String> = after.difference(before).collect();
            if !added.is_empty() {
                problems.push(format!("{what} left behind: {added:?}"));
            }
        };
        compare("mounts", &before.mounts, &after.mounts);
        compare("cgroups", &before.cgroups, &after.cgroups);
        compare("network links", &before.links, &after.links);
        compare("test temp dirs", &before.temp_dirs, &after.temp_dirs);
        if !problems.is_empty() {
            bail!(
                "the host is not as it was before the run:\n  {}",
                problems.join("\n  ")
            );
        }
        println!("host check: mounts, cgroups, links and temp dirs are as they were");
        Ok(())
    }
}

/// "mount point fstype" for every mount of this process's namespace.
fn mounts() -> BTreeSet<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    crate::doctor::cgroups::parse_mountinfo(&text)
        .into_iter()
        .map(|mount| format!("{} {}", mount.mount_point, mount.fstype))
        .collect()
}

/// Cgroup directories whose name mentions ferry, one level deep in every hierarchy.
fn engine_cgroups() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    for hierarchy in names_in("/sys/fs/cgroup") {
        dirs.push(std::path::Path::new("/sys/fs/cgroup").join(hierarchy));
    }
    for dir in dirs {
        for name in names_in(&dir.to_string_lossy()) {
            if name.contains("ferry") {
                found.insert(dir.join(name).display().to_string());
            }
        }
    }
    found
}

fn names_in(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
