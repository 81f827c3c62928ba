//! Where the cgroup hierarchies are mounted, read from /proc/self/mountinfo.
//!
//! Three layouts exist in the wild: cgroup v2 only (`cgroup2` on /sys/fs/cgroup,
//! today's laptops), v1 (one `cgroup` mount per controller or group of controllers)
//! and hybrid (v1 controllers plus a `cgroup2` mount, often at
//! /sys/fs/cgroup/unified, holding no or few controllers). As runc does, ferry uses
//! v1 for every controller bound to a v1 hierarchy, and v2 for the rest; in hybrid
//! mode the container also joins the v2 hierarchy, whose cgroup.events and
//! cgroup.kill work whatever the controllers.

use std::path::PathBuf;

use crate::mountinfo::unescape;

/// The cgroup version of one hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: Version,
    /// Where it is mounted on the host (e.g. /sys/fs/cgroup/memory).
    pub mount: PathBuf,
    /// v1: the controllers bound to it (`memory`, or `cpu` and `cpuacct`), and
    /// `name=...` for named hierarchies; v2: empty (see cgroup.controllers).
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// Reads the layout of the calling process's mount namespace.
    pub fn detect() -> std::io::Result<Layout> {
        Ok(Layout::parse(&std::fs::read_to_string(
            "/proc/self/mountinfo",
        )?))
    }

    /// The v1 hierarchy that holds `controller`, if any.
    pub fn v1(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| h.version == Version::V1 && h.controllers.iter().any(|c| c == controller))
    }

    /// The cgroup2 hierarchy, if one is mounted.
    pub fn unified(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.version == Version::V2)
    }

    /// Parses mountinfo (see proc(5)): every line whose filesystem type (the field
    /// after the ` - ` separator) is `cgroup` or `cgroup2` is a hierarchy; its mount
    /// point is the 5th field; for v1 the controllers are the super options (the last
    /// field, comma-separated) other than `rw`/`ro`. Only the first mount of each
    /// hierarchy counts (bind mounts of it may follow).
    pub fn parse(mountinfo: &str) -> Layout {
        // BEGIN SOLUTION ch03 "find the cgroup hierarchies (v1, v2) in /proc/self/mountinfo"
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(mount), Some(fstype), Some(options)) =
                (fields.get(4), fields.get(dash + 1), fields.get(dash + 3))
            else {
                continue;
            };
            let version = match *fstype {
                "cgroup" => Version::V1,
                "cgroup2" => Version::V2,
                _ => continue,
            };
            let controllers: Vec<String> = match version {
                Version::V2 => Vec::new(),
                Version::V1 => options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro"))
                    .map(String::from)
                    .collect(),
            };
            let duplicate = hierarchies
                .iter()
                .any(|h| h.version == version && h.controllers == controllers);
            if !duplicate {
                hierarchies.push(Hierarchy {
                    version,
                    mount: PathBuf::from(unescape(mount)),
                    controllers,
                });
            }
        }
        Layout { hierarchies }
        // END SOLUTION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout_has_v1_controllers_and_a_unified_mount() {
        let layout = Layout::parse(HYBRID);
        assert_eq!(layout.hierarchies.len(), 5);
        assert_eq!(
            layout.v1("memory").unwrap().mount,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert_eq!(layout.v1("cpuacct").unwrap().controllers, ["cpuacct"]);
        assert_eq!(
            layout.unified().unwrap().mount,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert!(layout.v1("pids").is_none());
    }

    #[test]
    fn v2_only_layout_and_co_mounted_controllers() {
        let v2 = Layout::parse("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n");
        assert_eq!(v2.unified().unwrap().mount, PathBuf::from("/sys/fs/cgroup"));
        assert!(v2.v1("memory").is_none());
        let v1 = Layout::parse(
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(v1.v1("cpu").unwrap(), v1.v1("cpuacct").unwrap());
    }
}
