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
        let mut after = HostState::capture();
        // A supervisor or a shim may take a moment to go after the last test.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !after.processes.is_subset(&before.processes) && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(200));
            after.processes = engine_processes();
        }
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

/// The engine's programs (its supervisors are re-executions of it, and its init):
/// any of them still running after the tests is a leak.
const ENGINE_PROGRAMS: &[&str] = &["ferry", "myferry", "ferry-init"];

/// The peers chapter 12 drives: a leak only when a test host started them (their
/// command line names its directory, `/tmp/ferry-test-…`), not the machine's own.
const PEER_PROGRAMS: &[&str] = &["conmon", "containerd", "containerd-shim-runc-v2"];

/// "PID STARTTIME program" for each process of [`ENGINE_PROGRAMS`], of
/// [`PEER_PROGRAMS`] started for a test host, or in a test host's cgroup (a
/// container's process). The start time (clock ticks after boot) tells a reused
/// pid from the process that had it.
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
        let of_a_test_host = || {
            std::fs::read(proc.join("cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains("/ferry-test-"))
        };
        let in_test_host = std::fs::read_to_string(proc.join("cgroup"))
            .is_ok_and(|cgroups| cgroups.contains("/ferry-test-"));
        let leak = ENGINE_PROGRAMS.contains(&program)
            || (PEER_PROGRAMS.contains(&program) && of_a_test_host())
            || in_test_host;
        if leak {
            // Field 22 of stat, counted after the command's closing parenthesis.
            let started = std::fs::read_to_string(proc.join("stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(19).map(str::to_string)
                })
                .unwrap_or_default();
            found.insert(format!("{pid} {started} {program}"));
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
