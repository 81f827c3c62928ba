//! The whole-host leak check that ends `test` and `ladder`: the mount table, ferry's
//! cgroups (and podman's), network links, ferry's nft table, the tests' temp dirs and
//! the processes of ferry, its tests' containers, conmon and containerd must be as
//! they were at the start.

use std::collections::BTreeSet;

use anyhow::{bail, Result};

/// What the engine and its tests could leave behind on the host.
#[derive(Debug, PartialEq, Eq)]
pub struct HostState {
    mounts: BTreeSet<String>,
    cgroups: BTreeSet<String>,
    links: BTreeSet<String>,
    tables: BTreeSet<String>,
    temp_dirs: BTreeSet<String>,
    processes: BTreeSet<String>,
}

impl HostState {
    pub fn capture() -> HostState {
        HostState {
            mounts: mounts(),
            cgroups: engine_cgroups(),
            links: names_in("/sys/class/net"),
            tables: nft_tables(),
            temp_dirs: names_in("/tmp")
                .into_iter()
                .filter(|n| n.starts_with("ferry-test-"))
                .collect(),
            processes: engine_processes(),
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
        compare("nft tables", &before.tables, &after.tables);
        compare("test temp dirs", &before.temp_dirs, &after.temp_dirs);
        compare("processes", &before.processes, &after.processes);
        if !problems.is_empty() {
            bail!(
                "the host is not as it was before the run:\n  {}",
                problems.join("\n  ")
            );
        }
        println!(
            "host check: mounts, cgroups, links, nft tables, temp dirs and processes are as they were"
        );
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

/// Cgroup directories whose name mentions ferry (or is podman's `libpod_parent`, which
/// chapter 12's tests make), one level deep in every hierarchy.
fn engine_cgroups() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    for hierarchy in names_in("/sys/fs/cgroup") {
        dirs.push(std::path::Path::new("/sys/fs/cgroup").join(hierarchy));
    }
    for dir in dirs {
        for name in names_in(&dir.to_string_lossy()) {
            if name.contains("ferry") || name == "libpod_parent" {
                found.insert(dir.join(name).display().to_string());
            }
        }
    }
    found
}

/// The host's nftables tables, "family name" (ferry's is `ip ferry`); none when nft
/// is missing or cannot list them.
fn nft_tables() -> BTreeSet<String> {
    let Ok(output) = std::process::Command::new("nft")
        .args(["list", "tables"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return BTreeSet::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("table "))
        .map(str::to_string)
        .collect()
}

/// The programs a test could leave running: the engine (its supervisors are
/// re-executions of it), its init, and the peers chapter 12 drives.
const ENGINE_PROGRAMS: &[&str] = &[
    "ferry",
    "myferry",
    "ferry-init",
    "conmon",
    "containerd",
    "containerd-shim-runc-v2",
];

/// "PID program" for each process running one of [`ENGINE_PROGRAMS`], or in a cgroup of
/// a test host (`/ferry-test-…`): a container's process.
fn engine_processes() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for pid in names_in("/proc")
        .into_iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
    {
        let proc = std::path::Path::new("/proc").join(&pid);
        let program = std::fs::read_link(proc.join("exe"))
            .ok()
            .and_then(|exe| Some(exe.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let program = program.trim_end_matches(" (deleted)");
        let in_test_host = std::fs::read_to_string(proc.join("cgroup"))
            .is_ok_and(|cgroups| cgroups.contains("/ferry-test-"));
        if ENGINE_PROGRAMS.contains(&program) || in_test_host {
            found.insert(format!("{pid} {program}"));
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
