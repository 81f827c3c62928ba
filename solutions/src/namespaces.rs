//! Namespaces: what each one hides from the container, and the steps that only
//! make sense inside one (a hostname, a loopback interface).
//!
//! Chapter 2 (chapters/02-namespaces.md). A namespace wraps one kind of global
//! resource so that the processes inside get their own copy. clone(2) creates them
//! all at once, except the cgroup namespace: the child unshares it after the parent
//! has moved it into its cgroup (chapter 3), so that its cgroup becomes its `/`.
//! User namespaces come with rootless containers, beyond chapter 11.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

use nix::mount::MsFlags;

use crate::rootfs::KernelMount;
use crate::sys;

/// One namespace the container gets, and why.
#[derive(Debug, Clone, Copy)]
pub struct Namespace {
    pub flag: CloneFlags,
    /// Its name in /proc/PID/ns/.
    pub name: &'static str,
    /// What it hides, in one line.
    pub hides: &'static str,
}

/// The namespaces of chapter 2, in the order runc creates them. (The mount
/// namespace is chapter 1's; see `rootfs::mount_namespace`.)
pub const NAMESPACES: &[Namespace] = &[
    Namespace {
        flag: CloneFlags::CLONE_NEWUTS,
        name: "uts",
        hides: "the host's hostname and domain name",
    },
    Namespace {
        flag: CloneFlags::CLONE_NEWPID,
        name: "pid",
        hides: "the host's processes: the command is PID 1 and sees only its own",
    },
    Namespace {
        flag: CloneFlags::CLONE_NEWIPC,
        name: "ipc",
        hides: "the host's System V IPC objects and POSIX message queues",
    },
    Namespace {
        flag: CloneFlags::CLONE_NEWNET,
        name: "net",
        hides: "the host's interfaces, routes, ports and firewall: only a loopback is left",
    },
    Namespace {
        flag: CloneFlags::CLONE_NEWCGROUP,
        name: "cgroup",
        hides: "where the container's cgroup sits in the host's tree: it sees it as `/`",
    },
];

/// POSIX message queues of the container's own IPC namespace (see mq_overview(7)),
/// mounted after the rootfs when the container has an IPC namespace.
pub const MQUEUE: KernelMount<'static> = KernelMount {
    target: "/dev/mqueue",
    fstype: "mqueue",
    flags: MsFlags::MS_NOSUID
        .union(MsFlags::MS_NODEV)
        .union(MsFlags::MS_NOEXEC),
    data: None,
};

/// Namespaces the child unshares itself, after the parent's part is done.
pub const UNSHARED_BY_THE_CHILD: CloneFlags = CloneFlags::CLONE_NEWCGROUP;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("failed to set the hostname to {name:?} (sethostname(2))")]
    Hostname {
        name: String,
        #[source]
        source: Errno,
    },
    #[error("failed to bring up the loopback interface")]
    Loopback(#[source] Errno),
    #[error("failed to unshare the cgroup namespace (unshare(2) with CLONE_NEWCGROUP)")]
    CgroupNamespace(#[source] Errno),
}

/// The namespace flags of every entry in [`NAMESPACES`], or-ed together.
pub fn isolation_namespaces() -> CloneFlags {
    // BEGIN SOLUTION ch02 "collect the flags of the namespaces in the NAMESPACES table"
    NAMESPACES
        .iter()
        .fold(CloneFlags::empty(), |flags, namespace| {
            flags | namespace.flag
        })
    // BEGIN STUB
    // crate::note::chapter_not_done(
    //     2,
    //     "namespaces",
    //     "the container shares the host's hostname, processes, IPC and network",
    // );
    // CloneFlags::empty()
    // END SOLUTION
}

/// Sets the hostname of the container's UTS namespace (see sethostname(2)).
/// Called only in a new UTS namespace: on the host it would rename the machine.
pub fn set_hostname(name: &str) -> Result<(), NamespaceError> {
    // BEGIN SOLUTION ch02 "set the container's hostname (sethostname(2))"
    nix::unistd::sethostname(name).map_err(|source| NamespaceError::Hostname {
        name: name.to_string(),
        source,
    })
    // END SOLUTION
}

/// Brings up `lo`, the only interface of a new network namespace, which starts
/// down (see netdevice(7)): read its flags with SIOCGIFFLAGS on any socket, add
/// `IFF_UP`, write them back with SIOCSIFFLAGS.
pub fn bring_up_loopback() -> Result<(), NamespaceError> {
    // BEGIN SOLUTION ch02 "bring the loopback interface up (SIOCGIFFLAGS/SIOCSIFFLAGS)"
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(NamespaceError::Loopback)?;
    let flags = sys::interface_flags(socket.as_raw_fd(), "lo").map_err(NamespaceError::Loopback)?;
    sys::set_interface_flags(socket.as_raw_fd(), "lo", flags | libc::IFF_UP as i16)
        .map_err(NamespaceError::Loopback)
    // END SOLUTION
}

/// Moves the calling process into a new cgroup namespace (see cgroup_namespaces(7)):
/// from now on its own cgroup is the root of every cgroup path it sees.
pub fn enter_cgroup_namespace() -> Result<(), NamespaceError> {
    // BEGIN SOLUTION ch02 "unshare the cgroup namespace (unshare(2))"
    nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::CgroupNamespace)
    // END SOLUTION
}

/// Where the container's hostname file appears. The engine writes the file in the
/// container's state directory and bind-mounts it over the image's (as Docker and
/// runc do): writing the image's own `/etc/hostname` would change somebody else's
/// files — through a symlink, even the host's.
pub const HOSTNAME_FILE: &str = "/etc/hostname";
