//! What every container gets unless asked otherwise: the chapters' tables (kernel
//! filesystems, masked and read-only paths, Docker's capabilities and seccomp
//! profile) in the runtime spec's words. The tables themselves stay in the modules
//! that teach them; this is where the engine picks them up.

use nix::sched::CloneFlags;

use super::etc_files::{EtcFiles, HOSTS_FILE, RESOLV_CONF_FILE};

use crate::namespaces::{self, HOSTNAME_FILE, MQUEUE};
use crate::privileges::paths::{MASKED_PATHS, READONLY_PATHS};
use crate::rootfs::{self, options, KernelMount, KERNEL_MOUNTS};
use crate::runtime::plan::namespace_type;
use crate::runtime::spec;

/// The namespaces a container gets, as far as the chapters are done: the mount
/// namespace (chapter 1); uts, pid, ipc, net and cgroup (chapter 2).
pub fn namespace_flags() -> CloneFlags {
    rootfs::mount_namespace() | namespaces::isolation_namespaces()
}

/// The spec's namespace list for `flags`, in clone(2)'s order.
pub fn namespaces(flags: CloneFlags) -> Vec<spec::Namespace> {
    flags
        .iter()
        .filter_map(namespace_type)
        .map(|kind| spec::Namespace {
            kind: kind.to_string(),
            path: None,
        })
        .collect()
}

fn kernel_mount(mount: &KernelMount) -> spec::Mount {
    spec::Mount {
        destination: mount.target.to_string(),
        kind: Some(mount.fstype.to_string()),
        source: Some(mount.fstype.to_string()),
        options: options::to_words(mount.flags, mount.data),
    }
}

/// The mounts of a container with the namespaces `flags`: the kernel filesystems,
/// /dev/mqueue with an IPC namespace, the container's own cgroups with a cgroup
/// namespace, and the engine's files over the image's: /etc/hostname with a UTS
/// namespace, /etc/hosts and /etc/resolv.conf always (chapter 8).
pub fn mounts(flags: CloneFlags, etc_files: Option<&EtcFiles>) -> Vec<spec::Mount> {
    let mut mounts: Vec<spec::Mount> = KERNEL_MOUNTS.iter().map(kernel_mount).collect();
    if flags.contains(CloneFlags::CLONE_NEWIPC) {
        mounts.push(kernel_mount(&MQUEUE));
    }
    if flags.contains(CloneFlags::CLONE_NEWCGROUP) {
        mounts.push(spec::Mount {
            destination: "/sys/fs/cgroup".to_string(),
            kind: Some("cgroup".to_string()),
            source: Some("cgroup".to_string()),
            options: ["ro", "nosuid", "nodev", "noexec"]
                .map(String::from)
                .to_vec(),
        });
    }
    let Some(files) = etc_files else {
        return mounts;
    };
    let mut bind = |destination: &str, file: &std::path::Path| {
        mounts.push(spec::Mount {
            destination: destination.to_string(),
            kind: Some("bind".to_string()),
            source: Some(file.display().to_string()),
            options: vec!["bind".to_string()],
        })
    };
    if flags.contains(CloneFlags::CLONE_NEWUTS) {
        bind(HOSTNAME_FILE, &files.hostname);
    }
    bind(HOSTS_FILE, &files.hosts);
    bind(RESOLV_CONF_FILE, &files.resolv_conf);
    mounts
}

/// The paths masked and made read-only (none with `--privileged`).
pub fn protected_paths(privileged: bool) -> (Vec<String>, Vec<String>) {
    if privileged {
        return (Vec::new(), Vec::new());
    }
    let owned = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect();
    (owned(MASKED_PATHS), owned(READONLY_PATHS))
}
