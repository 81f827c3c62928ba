//! The cgroup operations: create, add a process, read OOM kills, remove, and the
//! read-only view mounted inside the container.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::layout::{Layout, Version};
use super::{CgroupDir, CgroupError, ContainerCgroup, CONTROLLERS};

/// Writes `value` to a cgroup file.
pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl ContainerCgroup {
    /// Creates `PARENT/ID` in every hierarchy that holds one of [`CONTROLLERS`] and
    /// in the v2 hierarchy (see cgroups(7)).
    ///
    /// Create each missing level with mkdir. Two kernel quirks: a new v1 cpuset
    /// cgroup starts with empty `cpuset.cpus` and `cpuset.mems` (copy them from the
    /// level above before anything joins it); in v2, a level's children only get the
    /// controllers written as `+name` into that level's `cgroup.subtree_control`.
    pub fn create(layout: &Layout, parent: &str, id: &str) -> Result<ContainerCgroup, CgroupError> {
        // BEGIN SOLUTION ch03 "create the container's cgroup in every hierarchy (cpuset and subtree_control quirks)"
        let relative = Path::new(parent.trim_start_matches('/')).join(id);
        let joined = layout.hierarchies.iter().filter(|h| match h.version {
            Version::V2 => true,
            Version::V1 => h
                .controllers
                .iter()
                .any(|c| CONTROLLERS.contains(&c.as_str())),
        });
        let mut cgroup = ContainerCgroup {
            dirs: Vec::new(),
            v2_controllers: Vec::new(),
            removed: false,
        };
        for hierarchy in joined {
            let is_cpuset = hierarchy.controllers.iter().any(|c| c == "cpuset");
            let mut level = hierarchy.mount.clone();
            if hierarchy.version == Version::V2 {
                cgroup.v2_controllers = read(&level.join("cgroup.controllers"))
                    .split_whitespace()
                    .map(String::from)
                    .collect();
            }
            for component in relative.components() {
                if hierarchy.version == Version::V2 {
                    for controller in CONTROLLERS
                        .iter()
                        .filter(|c| cgroup.v2_controllers.iter().any(|v| v == *c))
                    {
                        // A controller some level cannot pass on is reported when a limit needs it.
                        let _ = write(
                            &level.join("cgroup.subtree_control"),
                            &format!("+{controller}"),
                        );
                    }
                }
                let above = level.clone();
                level.push(component);
                match std::fs::create_dir(&level) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(CgroupError::Create {
                            path: level,
                            source,
                        })
                    }
                }
                if is_cpuset {
                    // Also a level that exists: another container may have made it
                    // a moment ago and not filled it yet (concurrent `run -d`s).
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        if read(&level.join(file)).trim().is_empty() {
                            write(&level.join(file), read(&above.join(file)).trim())?;
                        }
                    }
                }
            }
            cgroup.dirs.push(CgroupDir {
                hierarchy: hierarchy.clone(),
                path: level,
            });
        }
        if cgroup.dirs.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(cgroup)
        // END SOLUTION
    }

    /// Moves `pid` into the container's cgroup: write it to `cgroup.procs` in every
    /// directory of the cgroup. Its children will be born there.
    pub fn add_process(&self, pid: Pid) -> Result<(), CgroupError> {
        // BEGIN SOLUTION ch03 "move the container's process into its cgroup (cgroup.procs)"
        for dir in &self.dirs {
            write(&dir.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
        // END SOLUTION
    }

    /// How many processes the kernel's OOM killer killed in this cgroup: the
    /// `oom_kill N` line of `memory.oom_control` (v1) or `memory.events` (v2).
    pub fn oom_kills(&self) -> u64 {
        // BEGIN SOLUTION ch03 "read the OOM kill counter (memory.oom_control or memory.events)"
        let Ok(dir) = self.dir_for("memory") else {
            return 0;
        };
        let file = match dir.hierarchy.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        read(&dir.path.join(file))
            .lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
        // END SOLUTION
    }

    /// Kills what is left in the cgroup and removes its directories.
    ///
    /// A cgroup can only be removed (rmdir) once it holds no process. v2 has
    /// `cgroup.kill` (write `1`); v1 has not: SIGKILL every pid in `cgroup.procs`.
    /// The processes take a moment to go: retry rmdir for up to two seconds.
    pub fn remove(&self) -> Result<(), CgroupError> {
        // BEGIN SOLUTION ch03 "kill what is left in the cgroup and remove its directories"
        for dir in &self.dirs {
            let kill_file = dir.path.join("cgroup.kill");
            if kill_file.exists() {
                let _ = write(&kill_file, "1");
            }
            for pid in read(&dir.path.join("cgroup.procs")).split_whitespace() {
                if let Ok(pid) = pid.parse() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in &self.dirs {
            loop {
                match std::fs::remove_dir(&dir.path) {
                    Ok(()) => break,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(source) => {
                        return Err(CgroupError::Remove {
                            path: dir.path.clone(),
                            source,
                        })
                    }
                }
            }
        }
        Ok(())
        // END SOLUTION
    }

    /// The mounts that give the container a read-only view of its own cgroup.
    pub fn mounts_inside(&self) -> Vec<InsideMount> {
        let only_v2 = self
            .dirs
            .iter()
            .all(|dir| dir.hierarchy.version == Version::V2);
        self.dirs
            .iter()
            .map(|dir| {
                let name = dir
                    .hierarchy
                    .mount
                    .file_name()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                match dir.hierarchy.version {
                    Version::V2 if only_v2 => InsideMount::v2(PathBuf::from("/sys/fs/cgroup")),
                    Version::V2 => InsideMount::v2(Path::new("/sys/fs/cgroup").join(name)),
                    Version::V1 => InsideMount {
                        target: Path::new("/sys/fs/cgroup").join(name),
                        fstype: "cgroup",
                        data: Some(dir.hierarchy.controllers.join(",")),
                    },
                }
            })
            .collect()
    }
}

/// One cgroup filesystem to mount in the container, read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsideMount {
    pub target: PathBuf,
    pub fstype: &'static str,
    /// v1: the controllers of the hierarchy (the mount's options).
    pub data: Option<String>,
}

impl InsideMount {
    fn v2(target: PathBuf) -> InsideMount {
        InsideMount {
            target,
            fstype: "cgroup2",
            data: None,
        }
    }
}

/// Mounts the container's own cgroups, read-only, under /sys/fs/cgroup.
///
/// Runs in the child after it entered its cgroup namespace, so each hierarchy's
/// root is the container's cgroup. v2 alone: mount cgroup2 on /sys/fs/cgroup. v1 or
/// hybrid: a tmpfs on /sys/fs/cgroup first (sysfs is read-only: no directories can
/// be made in it), one directory and mount per hierarchy, then the tmpfs remounted
/// read-only. Every mount is `MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC`.
pub fn mount_inside(mounts: &[InsideMount]) -> Result<(), CgroupError> {
    // BEGIN SOLUTION ch03 "mount the container's own cgroups read-only at /sys/fs/cgroup"
    let base = Path::new("/sys/fs/cgroup");
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mount_error = |target: &Path| {
        let target = target.to_path_buf();
        move |source| CgroupError::Mount { target, source }
    };
    let needs_tmpfs = mounts.iter().any(|m| m.target != base);
    if needs_tmpfs {
        let tmpfs_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some("tmpfs"),
            base,
            Some("tmpfs"),
            tmpfs_flags,
            Some("mode=755"),
        )
        .map_err(mount_error(base))?;
    }
    for inside in mounts {
        std::fs::create_dir_all(&inside.target).map_err(|source| CgroupError::Create {
            path: inside.target.clone(),
            source,
        })?;
        mount(
            Some(inside.fstype),
            &inside.target,
            Some(inside.fstype),
            flags,
            inside.data.as_deref(),
        )
        .map_err(mount_error(&inside.target))?;
    }
    if needs_tmpfs {
        mount(
            None::<&str>,
            base,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(mount_error(base))?;
    }
    Ok(())
    // END SOLUTION
}
