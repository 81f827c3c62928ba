//! From a runtime spec to the steps the chapters' modules take.
//!
//! The spec is data in the OCI runtime spec's shape (`spec`); the kernel-concept
//! modules take typed inputs (clone flags, mount entries, limits, a `Security`).
//! This is the one place that maps one to the other, and the one place that says
//! no: a field ferry does not implement, which would change what runs, is refused
//! with the field's name — never silently ignored.

use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::spec::{self, Spec};
use crate::cgroups::{CgroupConfig, Limits, CPU_PERIOD_US};
use crate::privileges::{capabilities, Security, User};
use crate::rootfs::{options, Bind, MountEntry, Overlay};

/// A spec the runtime cannot run as written.
#[derive(Debug, thiserror::Error)]
#[error("the runtime spec's {field} {why}")]
pub struct SpecError {
    pub field: String,
    pub why: String,
}

fn refuse(field: impl Into<String>, why: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        why: why.into(),
    }
}

/// What the runtime does for one container, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The rootfs on the host (absolute).
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub hostname: Option<String>,
    /// The namespaces to create.
    pub namespaces: CloneFlags,
    /// The namespaces to join, by path (setns(2)).
    pub joined: Vec<(CloneFlags, PathBuf)>,
    /// The container's root as an overlay mounted on `rootfs` (chapter 5): the
    /// spec's mount whose destination is `/`.
    pub overlay: Option<Overlay>,
    /// Mounts made inside the rootfs before the root is switched.
    pub mounts: Vec<MountEntry>,
    /// Whether the container's own cgroups appear at /sys/fs/cgroup.
    pub cgroup_mount: bool,
    /// ferry's init as PID 1 in front of the command.
    pub init: bool,
    /// `process.terminal`: the command gets a pty of the container's (chapter 9).
    pub terminal: bool,
    /// chroot with MS_MOVE instead of pivot_root (a runtime option, as runc's).
    pub no_pivot: bool,
    pub security: Security,
    pub cgroup: CgroupConfig,
    /// The last component of the cgroup path: the container's own cgroup.
    pub cgroup_name: String,
}

/// The namespace types of the spec and their clone(2) flags.
const NAMESPACE_TYPES: &[(&str, CloneFlags)] = &[
    ("mount", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("network", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

/// The spec's name of a namespace flag (`CLONE_NEWNS` → `mount`).
pub fn namespace_type(flag: CloneFlags) -> Option<&'static str> {
    NAMESPACE_TYPES
        .iter()
        .find(|(_, f)| *f == flag)
        .map(|(name, _)| *name)
}

/// The filesystem types ferry mounts as new instances.
const KERNEL_FILESYSTEMS: &[&str] = &["proc", "tmpfs", "devpts", "sysfs", "mqueue"];

impl Plan {
    /// Checks `spec` and turns it into a plan; `bundle` is where relative paths
    /// start, `id` names the cgroup when the spec has no `cgroupsPath`.
    pub fn from_spec(
        spec: &Spec,
        bundle: &Path,
        id: &str,
        no_pivot: bool,
    ) -> Result<Plan, SpecError> {
        if !spec.oci_version.starts_with("1.") {
            return Err(refuse(
                "ociVersion",
                format!("{:?} is not a 1.x version", spec.oci_version),
            ));
        }
        let process = &spec.process;
        if !process.rlimits.is_empty() {
            return Err(refuse("process.rlimits", "are not supported by ferry"));
        }
        if process.args.is_empty() {
            return Err(refuse("process.args", "are empty: nothing to run"));
        }
        if !process.cwd.starts_with('/') {
            return Err(refuse("process.cwd", "must be an absolute path"));
        }
        let (namespaces, joined) = namespaces(&spec.linux.namespaces)?;
        let (overlay, mounts, cgroup_mount) = mounts(&spec.mounts)?;
        let root = PathBuf::from(&spec.root.path);
        let rootfs = if root.is_absolute() {
            root
        } else {
            bundle.join(root)
        };
        let (cgroup, cgroup_name) = cgroup(&spec.linux, id)?;
        Ok(Plan {
            rootfs,
            args: process.args.clone(),
            env: process.env.clone(),
            cwd: PathBuf::from(&process.cwd),
            hostname: spec.hostname.clone(),
            namespaces,
            joined,
            overlay,
            mounts,
            cgroup_mount,
            init: spec.annotation(spec::ANNOTATION_INIT) == Some("true"),
            terminal: process.terminal,
            no_pivot,
            security: security(spec)?,
            cgroup,
            cgroup_name,
        })
    }
}

fn namespaces(
    list: &[spec::Namespace],
) -> Result<(CloneFlags, Vec<(CloneFlags, PathBuf)>), SpecError> {
    let mut created = CloneFlags::empty();
    let mut joined = Vec::new();
    for namespace in list {
        let flag = NAMESPACE_TYPES
            .iter()
            .find(|(name, _)| *name == namespace.kind)
            .map(|(_, flag)| *flag)
            .ok_or_else(|| {
                refuse(
                    "linux.namespaces",
                    format!(
                        "name {:?}, which {} does not create (user namespaces come with rootless containers)",
                        namespace.kind,
                        crate::ENGINE
                    ),
                )
            })?;
        match &namespace.path {
            Some(_) if flag == CloneFlags::CLONE_NEWNS || flag == CloneFlags::CLONE_NEWPID => {
                return Err(refuse(
                    "linux.namespaces",
                    format!(
                        "join the {} namespace by path, which ferry does not do",
                        namespace.kind
                    ),
                ))
            }
            Some(path) => joined.push((flag, PathBuf::from(path))),
            None => created |= flag,
        }
    }
    Ok((created, joined))
}

type Mounts = (Option<Overlay>, Vec<MountEntry>, bool);

fn mounts(list: &[spec::Mount]) -> Result<Mounts, SpecError> {
    let mut entries = Vec::new();
    let mut cgroup_mount = false;
    let mut overlay = None;
    for mount in list {
        let field = || format!("mounts entry {}", mount.destination);
        let kind = mount.kind.as_deref().unwrap_or("");
        if mount.destination == "/" {
            if kind != "overlay" {
                return Err(refuse(
                    field(),
                    "mounts on / something other than an overlay",
                ));
            }
            overlay = Some(overlay_of(&mount.options).ok_or_else(|| {
                refuse(field(), "needs lowerdir=, upperdir= and workdir= options")
            })?);
            continue;
        }
        if !mount.destination.starts_with('/') {
            return Err(refuse(field(), "must have an absolute destination"));
        }
        let is_bind = kind == "bind"
            || mount
                .options
                .iter()
                .any(|option| option == "bind" || option == "rbind");
        if is_bind {
            let source = mount
                .source
                .as_deref()
                .ok_or_else(|| refuse(field(), "is a bind mount without a source"))?;
            let metadata = std::fs::metadata(source).map_err(|error| {
                refuse(
                    field(),
                    format!("binds {source}, which cannot be used: {error}"),
                )
            })?;
            let read_only = mount.options.iter().any(|option| option == "ro");
            entries.push(MountEntry::Bind(Bind {
                source: PathBuf::from(source),
                target: mount.destination.clone(),
                directory: metadata.is_dir(),
                read_only,
            }));
        } else if kind == "cgroup" || kind == "cgroup2" {
            if mount.destination != "/sys/fs/cgroup" {
                return Err(refuse(field(), "must be at /sys/fs/cgroup"));
            }
            cgroup_mount = true;
        } else if KERNEL_FILESYSTEMS.contains(&kind) {
            let (flags, data) = options::from_words(&mount.options);
            entries.push(MountEntry::Kernel {
                target: mount.destination.clone(),
                fstype: kind.to_string(),
                flags,
                data,
            });
        } else {
            return Err(refuse(
                field(),
                format!("has type {kind:?}, which {} does not mount", crate::ENGINE),
            ));
        }
    }
    Ok((overlay, entries, cgroup_mount))
}

/// An overlay from the OCI-style options `lowerdir=A:B`, `upperdir=U`, `workdir=W`.
fn overlay_of(options: &[String]) -> Option<Overlay> {
    let value = |key: &str| {
        options
            .iter()
            .find_map(|option| option.strip_prefix(key)?.strip_prefix('='))
    };
    Some(Overlay {
        lowers: value("lowerdir")?.split(':').map(PathBuf::from).collect(),
        upper: PathBuf::from(value("upperdir")?),
        work: PathBuf::from(value("workdir")?),
    })
}

fn cgroup(linux: &spec::Linux, id: &str) -> Result<(CgroupConfig, String), SpecError> {
    let path = linux
        .cgroups_path
        .clone()
        .unwrap_or_else(|| format!("/{}/{id}", crate::ENGINE));
    let (parent, name) = path
        .rsplit_once('/')
        .filter(|(_, name)| !name.is_empty())
        .ok_or_else(|| refuse("linux.cgroupsPath", "must be a path such as /ferry/ID"))?;
    let parent = if parent.is_empty() { "/" } else { parent };
    let resources = linux.resources.clone().unwrap_or_default();
    let memory = resources.memory.unwrap_or_default();
    let cpu = resources.cpu.unwrap_or_default();
    let cpus = match (cpu.quota, cpu.period) {
        (Some(quota), period) if quota > 0 => {
            Some(quota as f64 / period.unwrap_or(CPU_PERIOD_US) as f64)
        }
        _ => None,
    };
    let limits = Limits {
        memory: memory.limit.filter(|l| *l > 0).map(|l| l as u64),
        memory_swap: memory.swap,
        pids: resources
            .pids
            .map(|p| p.limit)
            .filter(|l| *l > 0)
            .map(|l| l as u64),
        cpus,
        cpu_shares: cpu.shares,
        cpuset_cpus: cpu.cpus,
    };
    Ok((
        CgroupConfig {
            parent: parent.to_string(),
            limits,
        },
        name.to_string(),
    ))
}

fn security(spec: &Spec) -> Result<Security, SpecError> {
    let process = &spec.process;
    let sets = process.capabilities.clone().unwrap_or_default();
    if !sets.ambient.is_empty() {
        return Err(refuse(
            "process.capabilities.ambient",
            "are not supported by ferry",
        ));
    }
    let parse = |names: &[String]| {
        names
            .iter()
            .map(|name| capabilities::parse(name))
            .collect::<Result<caps::CapsHashSet, _>>()
            .map_err(|error| refuse("process.capabilities", error.to_string()))
    };
    let bounding = parse(&sets.bounding)?;
    if parse(&sets.effective)? != bounding || parse(&sets.permitted)? != bounding {
        return Err(refuse(
            "process.capabilities",
            format!(
                "must have the same effective, permitted and bounding sets: {} keeps one set",
                crate::ENGINE
            ),
        ));
    }
    let user = &process.user;
    let user = (user.uid != 0 || user.gid != 0 || !user.additional_gids.is_empty()).then(|| {
        let mut groups = vec![user.gid];
        groups.extend(user.additional_gids.iter().filter(|g| **g != user.gid));
        User {
            uid: user.uid,
            gid: user.gid,
            groups,
            home: None,
        }
    });
    Ok(Security {
        capabilities: bounding,
        no_new_privileges: process.no_new_privileges,
        seccomp: spec.linux.seccomp.clone(),
        masked_paths: spec.linux.masked_paths.clone(),
        readonly_paths: spec.linux.readonly_paths.clone(),
        read_only: spec.root.readonly,
        user,
    })
}
