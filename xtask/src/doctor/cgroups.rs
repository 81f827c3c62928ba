//! The mounts: /proc/self/mountinfo parsed (see proc_pid_mountinfo(5)), the propagation
//! of `/`, and the cgroup hierarchies found there: v1, v2 or systemd's hybrid of both.

use super::facts::read;

/// One line of /proc/self/mountinfo, read by the project's one parser.
pub(crate) use crate::mountinfo::MountInfo as Mount;

/// Parses /proc/self/mountinfo (see `solutions/src/mountinfo.rs`).
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    crate::mountinfo::parse(text)
}

/// The mount propagation of `/`: the last mount on `/` is the one everyone sees.
pub(super) fn root_propagation(mounts: &[Mount]) -> Option<&'static str> {
    let root = mounts.iter().rev().find(|m| m.mount_point == "/")?;
    let has = |prefix: &str| root.optional.iter().any(|f| f.starts_with(prefix));
    Some(if has("shared:") {
        "shared"
    } else if has("master:") {
        "slave"
    } else if has("unbindable") {
        "unbindable"
    } else {
        "private"
    })
}

/// How the cgroup hierarchies are laid out.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Layout {
    None,
    /// Only cgroup2: what systemd sets up on current distributions.
    V2,
    /// Only v1 hierarchies, one per controller (or group of controllers).
    V1,
    /// v1 hierarchies with the controllers, plus a cgroup2 mount (systemd's "hybrid").
    Hybrid,
}

/// The controllers the chapters use.
pub(super) const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuset", "devices"];

/// The cgroup filesystems, found in mountinfo.
pub(super) struct CgroupLayout {
    /// The super options of each cgroup (v1) mount, which name its controllers.
    v1: Vec<String>,
    pub(super) v2_mount: Option<String>,
    /// cgroup.controllers at the cgroup2 mount: the controllers v2 has.
    v2_controllers: String,
}

impl CgroupLayout {
    fn from_mounts(mounts: &[Mount]) -> Self {
        let v1 = mounts.iter().filter(|m| m.fstype == "cgroup");
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2");
        CgroupLayout {
            v1: v1.map(|m| m.super_options.clone()).collect(),
            v2_mount: v2.map(|m| m.mount_point.clone()),
            v2_controllers: String::new(),
        }
    }

    /// `from_mounts`, plus the controllers listed at the cgroup2 mount.
    pub(super) fn probe(mounts: &[Mount]) -> Self {
        let mut layout = Self::from_mounts(mounts);
        if let Some(mount) = &layout.v2_mount {
            layout.v2_controllers = read(format!("{mount}/cgroup.controllers")).unwrap_or_default();
        }
        layout
    }

    pub(super) fn layout(&self) -> Layout {
        match (self.v1.is_empty(), self.v2_mount.is_some()) {
            (true, false) => Layout::None,
            (true, true) => Layout::V2,
            (false, false) => Layout::V1,
            (false, true) => Layout::Hybrid,
        }
    }

    /// Which hierarchy has a controller: "v1", "v2", or none. A controller is bound to
    /// one hierarchy at a time, and cgroup.controllers leaves out those bound to v1.
    pub(super) fn controller_version(&self, name: &str) -> Option<&'static str> {
        if self
            .v1
            .iter()
            .any(|options| options.split(',').any(|o| o == name))
        {
            return Some("v1");
        }
        self.v2_mount.as_ref()?;
        // v2 has no "devices" controller: an eBPF program attached to the cgroup does it.
        let in_v2 = self.v2_controllers.split_whitespace().any(|c| c == name);
        (in_v2 || name == "devices").then_some("v2")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: Debian 12 without systemd, cgroup v1 plus an almost empty v2.
    const HYBRID: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd laptop: cgroup v2 only, `/` shared.
    const UNIFIED: &str = "\
26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn mountinfo_fields_are_parsed() {
        let mounts = parse_mountinfo(UNIFIED);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].mount_point, "/sys/fs/cgroup");
        assert_eq!(mounts[1].optional, ["shared:9"]);
        assert_eq!(mounts[1].fstype, "cgroup2");
        assert_eq!(
            mounts[1].super_options,
            "rw,nsdelegate,memory_recursiveprot"
        );
    }

    #[test]
    fn mount_points_are_unescaped_and_bad_lines_skipped() {
        let text = "50 27 0:40 / /mnt/my\\040disk rw - tmpfs tmpfs rw\nnot a mount line\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, "/mnt/my disk");
    }

    #[test]
    fn hybrid_layout_has_controllers_on_v1() {
        let cgroups = CgroupLayout::from_mounts(&parse_mountinfo(HYBRID));
        assert_eq!(cgroups.layout(), Layout::Hybrid);
        assert_eq!(cgroups.v2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(cgroups.controller_version("memory"), Some("v1"));
        assert_eq!(cgroups.controller_version("devices"), Some("v1"));
        // cpuset is in no v1 mount here, and the v2 mount lists no controllers.
        assert_eq!(cgroups.controller_version("cpuset"), None);
        // "name=systemd" is a named hierarchy, not a controller called "systemd".
        assert_eq!(cgroups.controller_version("systemd"), None);
    }

    #[test]
    fn unified_layout_takes_controllers_from_cgroup_controllers() {
        let mut cgroups = CgroupLayout::from_mounts(&parse_mountinfo(UNIFIED));
        cgroups.v2_controllers = "cpuset cpu io memory hugetlb pids rdma misc".into();
        assert_eq!(cgroups.layout(), Layout::V2);
        assert_eq!(cgroups.controller_version("memory"), Some("v2"));
        assert_eq!(cgroups.controller_version("devices"), Some("v2"));
        assert_eq!(cgroups.controller_version("freezer"), None);
    }

    #[test]
    fn layouts_without_v2_or_any_cgroup() {
        let v1_only = parse_mountinfo(&HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"));
        assert_eq!(CgroupLayout::from_mounts(&v1_only).layout(), Layout::V1);
        let none = parse_mountinfo(HYBRID.lines().next().unwrap());
        assert_eq!(CgroupLayout::from_mounts(&none).layout(), Layout::None);
    }

    #[test]
    fn root_propagation_reads_the_optional_fields() {
        assert_eq!(root_propagation(&parse_mountinfo(HYBRID)), Some("private"));
        assert_eq!(root_propagation(&parse_mountinfo(UNIFIED)), Some("shared"));
    }
}
