//! What a user asks the engine for: plain data, no command-line types.
//!
//! The CLI fills these from its flags (and later an API from JSON); the engine
//! checks them ([`RunOptions::check`]) before anything is created, and each error
//! names the field, not a flag: the CLI says which flag that was.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroups::{Limits, CPU_PERIOD_US, MIN_MEMORY};
use crate::env::EnvEntry;
use crate::network::{Mode, PortRequest};
use crate::seccomp::Profile;

/// Which seccomp filter the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompChoice {
    /// ferry's default profile (Docker's).
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile the caller read (`seccomp=FILE.json`).
    Profile(Profile),
}

/// Everything `run` can be asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    /// The container's root filesystem, a directory on the host (`--rootfs`) …
    pub rootfs: Option<PathBuf>,
    /// … or an image of the store (chapter 6).
    pub image: Option<String>,
    /// The command and its arguments (with an image: replaces its CMD).
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT (empty: none).
    pub entrypoint: Option<Vec<String>>,
    /// `-e` and `--env-file` entries, in order.
    pub env: Vec<EnvEntry>,
    /// The caller's values for the entries that inherit (`-e KEY`): the caller
    /// reads its own environment, the engine does not.
    pub inherited_env: BTreeMap<String, String>,
    pub workdir: Option<PathBuf>,
    pub hostname: Option<String>,
    /// ferry's init as PID 1.
    pub init: bool,
    /// `-t`: the command gets a pty of the container's (chapter 9).
    #[serde(default)]
    pub tty: bool,
    /// Bytes.
    pub memory: Option<u64>,
    /// Memory plus swap in bytes; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    /// -1 (or none) for no limit.
    pub pids_limit: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    /// The cgroup containers are created under, such as `/ferry`.
    pub cgroup_parent: Option<String>,
    /// `USER[:GROUP]`, names or numbers, looked up in the image.
    pub user: Option<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    /// no_new_privs (default true; docker's is false).
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
    /// chroot after moving the root mount, instead of pivot_root.
    pub no_pivot: bool,
    /// Volumes, bind mounts and tmpfs mounts (`-v`, `--mount`, `--tmpfs`), in order.
    pub mounts: Vec<MountRequest>,
    /// Host devices to show in the container (`--device`).
    pub devices: Vec<DeviceRequest>,
    /// How it is networked (`--network`, chapter 10); the default network when none.
    #[serde(default)]
    pub network: Option<Mode>,
    /// Ports published on the host (`-p`).
    #[serde(default)]
    pub publish: Vec<PortRequest>,
    /// Publish every port the image exposes on a free host port (`-P`).
    #[serde(default)]
    pub publish_all: bool,
    /// More names on a user-defined network (`--network-alias`).
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// Nameservers for /etc/resolv.conf instead of the host's (`--dns`).
    #[serde(default)]
    pub dns: Vec<std::net::IpAddr>,
    /// More /etc/hosts lines (`--add-host NAME:IP`).
    #[serde(default)]
    pub extra_hosts: Vec<(String, std::net::Ipv4Addr)>,
}

/// One mount the user asked for (docker's `--mount type=...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum MountRequest {
    /// A host directory (or file).
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    /// A volume of the engine's: named, or anonymous (`None`: removed with the
    /// container).
    Volume {
        source: Option<String>,
        target: PathBuf,
        read_only: bool,
    },
    /// A new tmpfs.
    Tmpfs {
        target: PathBuf,
        size: Option<u64>,
        mode: Option<u32>,
    },
}

impl MountRequest {
    /// Where it appears in the container.
    pub fn target(&self) -> &std::path::Path {
        match self {
            MountRequest::Bind { target, .. }
            | MountRequest::Volume { target, .. }
            | MountRequest::Tmpfs { target, .. } => target,
        }
    }
}

/// A host device node shown in the container (`--device HOST[:CONTAINER][:rwm]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub host: PathBuf,
    pub container: PathBuf,
    /// docker's `rwm` letters.
    pub permissions: String,
}

/// A field of [`RunOptions`], for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Rootfs,
    Command,
    Workdir,
    Hostname,
    Memory,
    MemorySwap,
    PidsLimit,
    Cpus,
    CpuShares,
    CpusetCpus,
    CgroupParent,
    User,
    Capabilities,
    Mounts,
    Devices,
    Network,
}

impl Field {
    /// The field's name in [`RunOptions`].
    pub fn name(self) -> &'static str {
        match self {
            Field::Rootfs => "rootfs",
            Field::Command => "command",
            Field::Workdir => "workdir",
            Field::Hostname => "hostname",
            Field::Memory => "memory",
            Field::MemorySwap => "memory_swap",
            Field::PidsLimit => "pids_limit",
            Field::Cpus => "cpus",
            Field::CpuShares => "cpu_shares",
            Field::CpusetCpus => "cpuset_cpus",
            Field::CgroupParent => "cgroup_parent",
            Field::User => "user",
            Field::Capabilities => "capabilities",
            Field::Mounts => "mounts",
            Field::Devices => "devices",
            Field::Network => "network",
        }
    }
}

/// An option that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} {value:?}: {why}", field.name())]
pub struct ConfigError {
    pub field: Field,
    /// The value as the engine got it.
    pub value: String,
    pub why: String,
}

fn invalid(field: Field, value: impl ToString, why: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        value: value.to_string(),
        why: why.into(),
    }
}

impl RunOptions {
    /// Checks every value that does not need the host; the first problem found.
    pub fn check(&self) -> Result<(), ConfigError> {
        match (&self.rootfs, &self.image) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(invalid(
                    Field::Rootfs,
                    "",
                    "give an image or --rootfs DIR, not both",
                ))
            }
        }
        if self.image.is_none() && self.command.is_empty() {
            return Err(invalid(Field::Command, "", "give the command to run"));
        }
        if let Some(dir) = &self.workdir {
            if !dir.is_absolute() {
                return Err(invalid(
                    Field::Workdir,
                    dir.display(),
                    "it must be an absolute path",
                ));
            }
        }
        if let Some(name) = &self.hostname {
            check_hostname(name)?;
        }
        self.limits()?;
        self.cgroup_parent()?;
        self.check_mounts()?;
        self.check_network()?;
        if let Some(spec) = &self.user {
            if spec.is_empty() || spec.contains(['/', '\0']) {
                return Err(invalid(
                    Field::User,
                    spec,
                    "use USER[:GROUP], names or numbers",
                ));
            }
        }
        Ok(())
    }

    /// The network mode a container gets: the one asked for, or the default.
    pub fn network_mode(&self) -> Mode {
        self.network
            .clone()
            .unwrap_or_else(crate::network::default_mode)
    }

    /// Ports and aliases need a bridge network; aliases a user-defined one.
    fn check_network(&self) -> Result<(), ConfigError> {
        let mode = self.network_mode();
        let bridge = matches!(mode, Mode::Bridge(_));
        if (!self.publish.is_empty() || self.publish_all) && !bridge {
            let why = if self.network.is_none() {
                "published ports need a bridge network, and containers join none by default until chapter 10's default_mode is done (or say --network bridge)"
            } else {
                "published ports need a bridge network: the container has no address of its own to forward them to (drop --network, or -p)"
            };
            return Err(invalid(Field::Network, mode.name(), why));
        }
        if !self.network_aliases.is_empty()
            && !matches!(&mode, Mode::Bridge(name) if name != crate::network::DEFAULT_NETWORK)
        {
            return Err(invalid(
                Field::Network,
                mode.name(),
                "network-scoped aliases are supported only for containers in user-defined networks (network create)",
            ));
        }
        // Each name becomes a word of other containers' /etc/hosts: hostname rules.
        for name in self
            .extra_hosts
            .iter()
            .map(|(name, _)| name)
            .chain(&self.network_aliases)
        {
            check_hostname(name)?;
        }
        Ok(())
    }

    /// Mounts and devices: absolute targets, each at most once, not `/`; plain
    /// volume names; devices readable and writable (ferry guards devices with mount
    /// flags, not the devices cgroup: it cannot make one read-only).
    fn check_mounts(&self) -> Result<(), ConfigError> {
        let mut targets: Vec<&std::path::Path> = Vec::new();
        let all = self
            .mounts
            .iter()
            .map(|m| (m.target(), Field::Mounts))
            .chain(
                self.devices
                    .iter()
                    .map(|d| (d.container.as_path(), Field::Devices)),
            );
        for (target, field) in all {
            if !target.is_absolute() || target == std::path::Path::new("/") {
                return Err(invalid(
                    field,
                    target.display(),
                    "the destination must be an absolute path other than /",
                ));
            }
            // The kernel's filesystems are the runtime's: a mount over /proc or /sys
            // would hide what chapter 4 masks (runc refuses them since CVE-2019-19921).
            let runtimes = ["/proc", "/sys"].iter().any(|p| target.starts_with(p));
            if runtimes || target == std::path::Path::new("/dev") {
                return Err(invalid(
                    field,
                    target.display(),
                    "/proc, /sys and /dev itself are the runtime's: mount elsewhere",
                ));
            }
            if target
                .components()
                .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(invalid(
                    field,
                    target.display(),
                    "the destination must not hold '..'",
                ));
            }
            if targets.contains(&target) {
                return Err(invalid(
                    field,
                    target.display(),
                    "two mounts have this destination",
                ));
            }
            targets.push(target);
        }
        for mount in &self.mounts {
            match mount {
                MountRequest::Bind { source, .. } if !source.is_absolute() => return Err(invalid(
                    Field::Mounts,
                    source.display(),
                    "a bind mount's source must be an absolute host path (or give a volume name)",
                )),
                MountRequest::Volume {
                    source: Some(name), ..
                } => check_volume_name(name)?,
                MountRequest::Tmpfs {
                    mode: Some(mode), ..
                } if *mode > 0o7777 => {
                    return Err(invalid(
                        Field::Mounts,
                        format!("{mode:o}"),
                        "a tmpfs mode is octal, at most 7777",
                    ))
                }
                _ => {}
            }
        }
        for device in &self.devices {
            let default = crate::rootfs::DEVICES
                .iter()
                .any(|d| std::path::Path::new(d.path) == device.container);
            if default {
                return Err(invalid(
                    Field::Devices,
                    device.container.display(),
                    "every container has this device already: give another name in the container",
                ));
            }
            let letters = &device.permissions;
            if letters.is_empty() || !letters.chars().all(|c| "rwm".contains(c)) {
                return Err(invalid(
                    Field::Devices,
                    letters,
                    "permissions are letters of rwm",
                ));
            }
            if !(letters.contains('r') && letters.contains('w')) {
                return Err(invalid(
                    Field::Devices,
                    letters,
                    "ferry guards devices with mount flags, not the devices cgroup: a device is readable and writable or absent (chapter 4)",
                ));
            }
        }
        Ok(())
    }

    /// The cgroup limits, checked.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        if let Some(bytes) = self.memory {
            if bytes < MIN_MEMORY {
                return Err(invalid(Field::Memory, bytes, "the minimum is 6m"));
            }
        }
        let memory_swap = match (self.memory_swap, self.memory) {
            (None, _) => None,
            (Some(-1), _) => Some(-1),
            (Some(swap), _) if swap < 0 => {
                return Err(invalid(
                    Field::MemorySwap,
                    swap,
                    "use a size such as 128m, or -1",
                ))
            }
            (Some(swap), None) => {
                return Err(invalid(Field::MemorySwap, swap, "it needs --memory too"))
            }
            (Some(swap), Some(memory)) if (swap as u64) < memory => {
                return Err(invalid(
                    Field::MemorySwap,
                    swap,
                    "it is memory plus swap: at least --memory",
                ))
            }
            (Some(swap), Some(_)) => Some(swap),
        };
        let pids = match self.pids_limit {
            None | Some(-1) => None,
            Some(n) if n > 0 => Some(n as u64),
            Some(n) => {
                return Err(invalid(
                    Field::PidsLimit,
                    n,
                    "use a positive number, or -1 for no limit",
                ))
            }
        };
        if let Some(cpus) = self.cpus {
            let available = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as f64;
            if !(cpus > 0.0 && cpus <= available && cpus * CPU_PERIOD_US as f64 >= 1000.0) {
                return Err(invalid(
                    Field::Cpus,
                    cpus,
                    "use a number above 0.01, at most the machine's CPU count",
                ));
            }
        }
        if let Some(shares) = self.cpu_shares {
            if !(2..=262_144).contains(&shares) {
                return Err(invalid(Field::CpuShares, shares, "use 2 to 262144"));
            }
        }
        if let Some(list) = &self.cpuset_cpus {
            let valid = !list.is_empty()
                && list
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-');
            if !valid {
                return Err(invalid(Field::CpusetCpus, list, "use a list such as 0-1,3"));
            }
        }
        Ok(Limits {
            memory: self.memory,
            memory_swap,
            pids,
            cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
        })
    }

    /// The cgroup parent: an absolute-looking path of plain names [default: /ENGINE].
    pub fn cgroup_parent(&self) -> Result<String, ConfigError> {
        let parent = self
            .cgroup_parent
            .clone()
            .unwrap_or_else(|| format!("/{}", crate::ENGINE));
        let valid = parent
            .trim_start_matches('/')
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\0'));
        if valid {
            Ok(format!("/{}", parent.trim_start_matches('/')))
        } else {
            Err(invalid(
                Field::CgroupParent,
                parent,
                "use a path of plain names such as /ferry or /lab/team1",
            ))
        }
    }
}

/// A volume name, as docker allows it: a letter or digit, then letters, digits,
/// `_`, `.` and `-`.
pub fn check_volume_name(name: &str) -> Result<(), ConfigError> {
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            Field::Mounts,
            name,
            "a volume name is a letter or digit, then letters, digits, '_', '.' or '-'",
        ))
    }
}

/// A hostname is 1 to 64 letters, digits, dots and dashes (see hostname(7)).
pub fn check_hostname(name: &str) -> Result<(), ConfigError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with(['-', '.']);
    if valid {
        Ok(())
    } else {
        Err(invalid(
            Field::Hostname,
            name,
            "use 1 to 64 letters, digits, dots and dashes",
        ))
    }
}
