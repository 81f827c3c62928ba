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
    /// `process.rlimits`: set with setrlimit(2) before the program runs.
    pub rlimits: Vec<Rlimit>,
    /// `process.oomScoreAdj`: written by the runtime into /proc/PID/oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// `process.user.umask`.
    pub umask: Option<u32>,
    /// `linux.sysctl`: each written under the container's /proc/sys.
    pub sysctl: Vec<(String, String)>,
    /// `process.consoleSize`: rows and columns of the pty.
    pub console_size: Option<(u16, u16)>,
    /// The root is the caller's own for this container (an OCI bundle's): missing
    /// mount targets are created in it, as runc does. Set by the runtime.
    pub root_owned: bool,
}

/// One resource limit, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: nix::sys::resource::Resource,
    pub soft: u64,
    pub hard: u64,
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

/// The options of a bind mount ferry applies or that change nothing here: every
/// mount is private already; atime flags follow the source; `z`/`Z` relabel for
/// SELinux, which these machines do not run.
const BIND_OPTIONS: &[&str] = &[
    "bind",
    "rbind",
    "ro",
    "rw",
    "nosuid",
    "nodev",
    "noexec",
    "exec",
    "private",
    "rprivate",
    "relatime",
    "norelatime",
    "strictatime",
    "noatime",
    "nodiratime",
    "z",
    "Z",
];

/// Propagation a new mount could ask for that ferry's private mounts cannot give.
const REFUSED_PROPAGATION: &[&str] = &[
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

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
        let namespaces_all = joined.iter().fold(namespaces, |all, (flag, _)| all | *flag);
        refuse_what_ferry_does_not_do(spec)?;

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
            rlimits: rlimits(&process.rlimits)?,
            oom_score_adj: process.oom_score_adj,
            umask: process.user.umask,
            sysctl: sysctl(&spec.linux.sysctl, namespaces_all)?,
            console_size: process.console_size.map(|size| (size.height, size.width)),
            root_owned: false,
        })
    }
}

/// The resources `process.rlimits` may name (setrlimit(2)), by their spec names.
const RLIMITS: &[(&str, nix::sys::resource::Resource)] = {
    use nix::sys::resource::Resource::*;
    &[
        ("RLIMIT_AS", RLIMIT_AS),
        ("RLIMIT_CORE", RLIMIT_CORE),
        ("RLIMIT_CPU", RLIMIT_CPU),
        ("RLIMIT_DATA", RLIMIT_DATA),
        ("RLIMIT_FSIZE", RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", RLIMIT_NICE),
        ("RLIMIT_NOFILE", RLIMIT_NOFILE),
        ("RLIMIT_NPROC", RLIMIT_NPROC),
        ("RLIMIT_RSS", RLIMIT_RSS),
        ("RLIMIT_RTPRIO", RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", RLIMIT_STACK),
    ]
};

fn rlimits(list: &[spec::Rlimit]) -> Result<Vec<Rlimit>, SpecError> {
    let mut seen = Vec::new();
    list.iter()
        .map(|limit| {
            let field = || format!("process.rlimits entry {}", limit.kind);
            let resource = RLIMITS
                .iter()
                .find(|(name, _)| *name == limit.kind)
                .map(|(_, resource)| *resource)
                .ok_or_else(|| refuse(field(), "is not a limit of setrlimit(2)"))?;
            if seen.contains(&resource) {
                return Err(refuse(field(), "is given twice"));
            }
            seen.push(resource);
            if limit.soft > limit.hard {
                return Err(refuse(field(), "has a soft limit above its hard limit"));
            }
            Ok(Rlimit {
                resource,
                soft: limit.soft,
                hard: limit.hard,
            })
        })
        .collect()
}

/// The sysctls a container may set: those of the namespaces it has of its own
/// (runc's list). Anything else would change the host, for every container.
fn sysctl(
    entries: &std::collections::BTreeMap<String, String>,
    namespaces: CloneFlags,
) -> Result<Vec<(String, String)>, SpecError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    entries
        .iter()
        .map(|(key, value)| {
            let field = || format!("linux.sysctl entry {key}");
            let bad_name = key.is_empty()
                || key.split(['.', '/']).any(|part| part.is_empty() || part == "..");
            if bad_name {
                return Err(refuse(field(), "is not a sysctl name such as net.ipv4.ip_forward"));
            }
            let (flag, namespace) = if IPC.contains(&key.as_str()) || key.starts_with("fs.mqueue.")
            {
                (CloneFlags::CLONE_NEWIPC, "ipc")
            } else if key.starts_with("net.") {
                (CloneFlags::CLONE_NEWNET, "network")
            } else if key == "kernel.hostname" || key == "kernel.domainname" {
                (CloneFlags::CLONE_NEWUTS, "uts")
            } else {
                return Err(refuse(
                    field(),
                    "is not namespaced: it would change the host (only ipc, network and uts sysctls are)",
                ));
            };
            if !namespaces.contains(flag) {
                return Err(refuse(
                    field(),
                    format!("needs a {namespace} namespace of the container's own"),
                ));
            }
            Ok((key.clone(), value.clone()))
        })
        .collect()
}

/// The fields ferry reads but does not do: refused when they would change what
/// runs (a `createContainer` hook, a device the rules would open up).
fn refuse_what_ferry_does_not_do(spec: &Spec) -> Result<(), SpecError> {
    if !spec.hooks.create_container.is_empty() || !spec.hooks.start_container.is_empty() {
        return Err(refuse(
            "hooks.createContainer and hooks.startContainer",
            format!("run inside the container's namespaces, which {} does not do (prestart, createRuntime, poststart and poststop it runs)", crate::ENGINE),
        ));
    }
    for hook in spec.hooks.all() {
        if !hook.path.starts_with('/') {
            return Err(refuse(
                format!("hooks entry {}", hook.path),
                "must have an absolute path",
            ));
        }
    }
    let rules = spec
        .linux
        .resources
        .as_ref()
        .map(|r| r.devices.as_slice())
        .unwrap_or_default();
    for rule in rules {
        match device_rule(rule) {
            DeviceRule::Sealed => {}
            DeviceRule::NoNode(what) => log::warn!(
                "linux.resources.devices allows {what}, which {} does not give: it seals devices (chapter 4), so a node the container makes for it cannot be opened",
                crate::ENGINE
            ),
            DeviceRule::Refused(what) => {
                return Err(refuse(
                    "linux.resources.devices",
                    format!(
                        "allow {what}: {} seals devices (chapter 4) and gives only the default ones",
                        crate::ENGINE
                    ),
                ))
            }
        }
    }
    if let Some(profile) = &spec.process.apparmor_profile {
        if apparmor_enabled() && profile != "unconfined" {
            return Err(refuse(
                "process.apparmorProfile",
                format!("names {profile:?}, and AppArmor is on here: {} applies no AppArmor profile (podman: --security-opt apparmor=unconfined)", crate::ENGINE),
            ));
        }
    }
    Ok(())
}

/// What a device cgroup rule means under ferry's sealed devices.
enum DeviceRule {
    /// Nothing beyond what sealing gives: a deny, or an allow of a default device.
    Sealed,
    /// An allow of one character device the container has no node for (containerd
    /// allows 10:200, tun, by default): it stays unusable; said, not refused.
    NoNode(String),
    /// An allow of block devices, or of every device: refused.
    Refused(String),
}

fn device_rule(rule: &spec::DeviceRule) -> DeviceRule {
    if !rule.allow {
        return DeviceRule::Sealed;
    }
    let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
    let what = format!(
        "{} {}:{} {}",
        rule.kind.as_deref().unwrap_or("a"),
        number(rule.major),
        number(rule.minor),
        rule.access.as_deref().unwrap_or("rwm")
    );
    let (Some("c"), Some(major)) = (rule.kind.as_deref(), rule.major) else {
        return DeviceRule::Refused(what);
    };
    let default = crate::rootfs::DEVICES
        .iter()
        .any(|node| node.major as i64 == major && Some(node.minor as i64) == rule.minor);
    // /dev/pts/* (136:*), /dev/ptmx (5:2) and /dev/console (5:1) come with the
    // container's own devpts.
    let pty = major == 136 || (major == 5 && matches!(rule.minor, Some(1) | Some(2)));
    if default || pty {
        DeviceRule::Sealed
    } else {
        DeviceRule::NoNode(what)
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|text| text.trim() == "Y")
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
            if let Some(option) = mount
                .options
                .iter()
                .find(|option| !BIND_OPTIONS.contains(&option.as_str()))
            {
                return Err(refuse(
                    field(),
                    format!("has the bind option {option:?}, which {} does not apply (binds are always nosuid and nodev; ro and noexec it applies)", crate::ENGINE),
                ));
            }
            let has = |word: &str| mount.options.iter().any(|option| option == word);
            entries.push(MountEntry::Bind(Bind {
                source: PathBuf::from(source),
                target: mount.destination.clone(),
                directory: metadata.is_dir(),
                read_only: has("ro"),
                no_exec: has("noexec"),
            }));
        } else if kind == "cgroup" || kind == "cgroup2" {
            if mount.destination != "/sys/fs/cgroup" {
                return Err(refuse(field(), "must be at /sys/fs/cgroup"));
            }
            cgroup_mount = true;
        } else if KERNEL_FILESYSTEMS.contains(&kind) {
            if let Some(option) = mount
                .options
                .iter()
                .find(|option| REFUSED_PROPAGATION.contains(&option.as_str()))
            {
                return Err(refuse(
                    field(),
                    format!(
                        "asks for {option} propagation: every mount of a {} container is private",
                        crate::ENGINE
                    ),
                ));
            }
            if mount.options.iter().any(|option| option == "tmpcopyup") {
                return Err(refuse(
                    field(),
                    format!("asks for tmpcopyup (copying the image's files into the new tmpfs), which {} does not do (podman: --read-only-tmpfs=false)", crate::ENGINE),
                ));
            }
            let words: Vec<String> = mount
                .options
                .iter()
                .filter(|option| !matches!(option.as_str(), "private" | "rprivate"))
                .cloned()
                .collect();
            let (flags, data) = options::from_words(&words);
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

/// The container's cgroup — its parent and limits, and its own name — from the
/// spec alone (the later commands of chapter 12 find it again so).
pub fn cgroup(linux: &spec::Linux, id: &str) -> Result<(CgroupConfig, String), SpecError> {
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
    if !sets.inheritable.is_empty() {
        return Err(refuse(
            "process.capabilities.inheritable",
            format!("are not supported by {}: the inheritable set is always empty (it only matters with file capabilities)", crate::ENGINE),
        ));
    }
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
