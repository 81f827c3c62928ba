//! Control groups: limits on what a container may use — memory, processes, CPU.
//!
//! Chapter 3 (chapters/03-cgroups.md). A cgroup is a directory in a special
//! filesystem: create it, write limits into its files, write a pid into its
//! `cgroup.procs`, and the kernel accounts and limits that process and its
//! children. The hierarchies' layout (v1, v2, hybrid) is read from mountinfo; the
//! code takes the mount points from there, so tests can hand it a temp directory.

mod layout;
mod limits;
mod ops;

use std::path::PathBuf;

use nix::unistd::Pid;

pub use layout::{Hierarchy, Layout, Version};
pub use limits::{
    limit_file, limit_writes, LimitFile, LimitWrite, Limits, CPU_PERIOD_US, LIMIT_FILES, MIN_MEMORY,
};
pub use ops::{mount_inside, InsideMount};

/// The controllers a container's cgroup joins (v1 hierarchies bound to them).
/// `freezer` is for pause and resume (chapter 12), on v1; v2 has it in every cgroup.
pub const CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"];

/// What `run` asks of cgroups.
#[derive(Debug, Clone, Default)]
pub struct CgroupConfig {
    /// The cgroup under which containers are created (`--cgroup-parent`), like `/ferry`.
    pub parent: String,
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("failed to read the cgroup layout from /proc/self/mountinfo")]
    Detect(#[source] std::io::Error),
    #[error("no cgroup hierarchy is mounted (neither cgroup nor cgroup2 in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("the {controller} controller is not available here (no v1 hierarchy, not in the v2 cgroup.controllers)")]
    NoController { controller: &'static str },
    #[error("failed to create the cgroup {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to remove the cgroup {path} (processes still in it?)")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to mount the cgroup filesystem on {target} in the container")]
    Mount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
}

/// One directory of the container's cgroup: its place in one hierarchy.
#[derive(Debug, Clone)]
pub struct CgroupDir {
    pub hierarchy: Hierarchy,
    pub path: PathBuf,
}

/// The container's cgroup, in every hierarchy it joined. Removed on drop (its
/// processes killed first), so no exit path leaves it behind.
#[derive(Debug)]
pub struct ContainerCgroup {
    pub dirs: Vec<CgroupDir>,
    /// Controllers available in the v2 hierarchy (from its cgroup.controllers).
    pub v2_controllers: Vec<String>,
    removed: bool,
}

/// Creates the container's cgroup and applies its limits, before the container's
/// process exists; the parent adds the process once it is cloned.
pub fn setup(config: &CgroupConfig, id: &str) -> Result<Option<ContainerCgroup>, CgroupError> {
    // BEGIN SOLUTION ch03 "create the container's cgroup and apply its limits (the chapter's entry point)"
    let layout = Layout::detect().map_err(CgroupError::Detect)?;
    let cgroup = ContainerCgroup::create_retrying(&layout, &config.parent, id)?;
    cgroup.apply(&config.limits)?;
    Ok(Some(cgroup))
    // BEGIN STUB
    // crate::note::chapter_not_done(3, "cgroups", "running without limits");
    // Ok(None)
    // END SOLUTION
}

impl ContainerCgroup {
    /// [`ContainerCgroup::create`], tried again when a parent level vanished under
    /// it: another container's cleanup may remove an empty parent at that moment.
    pub fn create_retrying(
        layout: &Layout,
        parent: &str,
        id: &str,
    ) -> Result<ContainerCgroup, CgroupError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match ContainerCgroup::create(layout, parent, id) {
                Err(CgroupError::Create { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && attempts < 3 => {}
                result => return result,
            }
        }
    }

    /// The directory to write `controller`'s files in: its v1 hierarchy, or v2.
    pub fn dir_for(&self, controller: &'static str) -> Result<&CgroupDir, CgroupError> {
        let v1 = self.dirs.iter().find(|dir| {
            dir.hierarchy.version == Version::V1
                && dir.hierarchy.controllers.iter().any(|c| c == controller)
        });
        let v2 = || {
            let available = self.v2_controllers.iter().any(|c| c == controller);
            self.dirs
                .iter()
                .find(|dir| available && dir.hierarchy.version == Version::V2)
        };
        v1.or_else(v2)
            .ok_or(CgroupError::NoController { controller })
    }

    /// Writes every limit into its file.
    pub fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        for controller in limits.controllers() {
            self.dir_for(controller)?;
        }
        for write in self.limit_writes(limits) {
            let dir = self.dir_for(write.controller)?;
            let path = dir.path.join(write.file);
            // Without swap accounting (a kernel option) there is no memsw (v1) or
            // swap.max (v2) file: with no swap to limit, there is nothing to write.
            let swap_file = matches!(
                write.file,
                "memory.memsw.limit_in_bytes" | "memory.swap.max"
            );
            if swap_file && !path.exists() {
                log::debug!(
                    "no {}: swap is not accounted on this machine",
                    path.display()
                );
                continue;
            }
            log::debug!("{} = {}", path.display(), write.value);
            ops::write(&path, &write.value)?;
        }
        Ok(())
    }

    /// The writes for `limits`, each in the version of the hierarchy that holds
    /// its controller (a hybrid machine may have memory on v1 and hugetlb on v2).
    fn limit_writes(&self, limits: &Limits) -> Vec<LimitWrite> {
        let mut writes = Vec::new();
        for version in [Version::V1, Version::V2] {
            for write in limit_writes(limits, version) {
                let holder = self
                    .dir_for(write.controller)
                    .map(|dir| dir.hierarchy.version);
                if holder.ok() == Some(version) {
                    writes.push(write);
                }
            }
        }
        writes
    }
}

impl ContainerCgroup {
    /// Removes the parent levels (`--cgroup-parent`) that are left empty, so that
    /// ferry leaves no trace in the cgroup tree. A level another container still
    /// uses is not empty: rmdir fails and that is where it stops.
    fn remove_empty_parents(&self) {
        for dir in &self.dirs {
            let mut level = dir.path.parent();
            while let Some(path) =
                level.filter(|p| *p != dir.hierarchy.mount && p.starts_with(&dir.hierarchy.mount))
            {
                if std::fs::remove_dir(path).is_err() {
                    break;
                }
                level = path.parent();
            }
        }
    }
}

impl ContainerCgroup {
    /// Kills what is left in the cgroup and removes it and the parent levels it
    /// leaves empty: the explicit end of a container's cgroup (`Drop` is only the
    /// safety net for a path that forgot).
    pub fn destroy(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.remove()?;
        self.remove_empty_parents();
        Ok(())
    }
}

impl ContainerCgroup {
    /// Leaves the cgroup in place for a later command to remove (`ferry runtime
    /// create` returns while the container lives on).
    pub fn keep(mut self) {
        self.removed = true;
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A stub's todo!() is unwinding: calling another stub here would abort
            // the process. Remove what is empty and say what may be left.
            for dir in &self.dirs {
                if std::fs::remove_dir(&dir.path).is_err() {
                    log::warn!(
                        "left the cgroup {} behind (chapter 3 unfinished)",
                        dir.path.display()
                    );
                }
            }
            self.remove_empty_parents();
            return;
        }
        if !self.removed {
            self.removed = true;
            match self.remove() {
                Ok(()) => self.remove_empty_parents(),
                Err(error) => log::warn!("{}", crate::errors::chain(&error)),
            }
        }
    }
}

/// Moves `joiner` into every cgroup `member` is in (chapter 9's `exec`: the new
/// process is counted and limited with the container's). `member`'s cgroups are
/// read from /proc/MEMBER/cgroup — as the host sees them, since ferry runs in the
/// host's cgroup namespace — and found under this host's hierarchies.
pub fn join_those_of(member: Pid, joiner: Pid) -> Result<(), CgroupError> {
    let layout = Layout::detect().map_err(CgroupError::Detect)?;
    let path = format!("/proc/{member}/cgroup");
    let text = std::fs::read_to_string(&path).map_err(CgroupError::Detect)?;
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(dir)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let hierarchy = if controllers.is_empty() {
            layout.unified()
        } else {
            let wanted: Vec<&str> = controllers.split(',').collect();
            layout.hierarchies.iter().find(|h| {
                h.version == Version::V1
                    && h.controllers.len() == wanted.len()
                    && h.controllers.iter().all(|c| wanted.contains(&c.as_str()))
            })
        };
        let relative = std::path::Path::new(dir.trim_start_matches('/'));
        if relative.as_os_str().is_empty()
            || relative
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            continue; // the root cgroup (nothing to join), or not a path ferry makes
        }
        if let Some(hierarchy) = hierarchy {
            ops::write(
                &hierarchy.mount.join(relative).join("cgroup.procs"),
                &joiner.to_string(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory that looks like a cgroup v2 mount: the files the code reads.
    fn fake_v2_hierarchy() -> PathBuf {
        let root = std::env::temp_dir().join(format!("ferry-fake-cgroup2-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        root
    }

    #[test]
    fn v2_limits_land_in_the_files_of_a_cgroupfs_like_directory() {
        let root = fake_v2_hierarchy();
        let layout = Layout {
            hierarchies: vec![Hierarchy {
                version: Version::V2,
                mount: root.clone(),
                controllers: Vec::new(),
            }],
        };
        let mut cgroup = ContainerCgroup::create(&layout, "/ferry", "abc").unwrap();
        let dir = root.join("ferry/abc");
        assert_eq!(cgroup.dirs[0].path, dir);
        // A real cgroupfs would have created these files with the directory.
        for file in ["memory.swap.max", "cgroup.procs"] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        let limits = Limits {
            memory: Some(64 << 20),
            memory_swap: Some(96 << 20),
            pids: Some(20),
            cpus: Some(1.5),
            cpu_shares: Some(1024),
            cpuset_cpus: Some("0-1".into()),
        };
        cgroup.apply(&limits).unwrap();
        cgroup
            .add_process(nix::unistd::Pid::from_raw(4242))
            .unwrap();
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert_eq!(read("memory.swap.max"), "33554432");
        assert_eq!(read("pids.max"), "20");
        assert_eq!(read("cpu.max"), "150000 100000");
        assert_eq!(read("cpu.weight"), "39");
        assert_eq!(read("cpuset.cpus"), "0-1");
        assert_eq!(read("cgroup.procs"), "4242");
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(cgroup.oom_kills(), 2, "the oom_kill line of memory.events");
        // Each level passes its controllers on to the next one.
        let enabled = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();
        assert!(
            enabled.starts_with('+'),
            "subtree_control was written: {enabled:?}"
        );
        cgroup.removed = true; // a plain directory cannot be rmdir'ed with files in it
        std::fs::remove_dir_all(root).unwrap();
    }
}
