//! A minimal /dev: a handful of device nodes and links, on a fresh tmpfs.
//!
//! Chapter 1. The container must not see the host's /dev — its disks above all — so
//! ferry mounts an empty tmpfs there and creates only what programs expect. (Chapter
//! 4 also makes sure the container cannot create more with mknod.)

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::{create_dirs, RootfsError};

/// A character device node to create in the container's /dev (see mknod(2)).
#[derive(Debug, Clone, Copy)]
pub struct DeviceNode {
    pub path: &'static str,
    pub major: u64,
    pub minor: u64,
    /// The permission bits, set after mknod so the umask cannot narrow them.
    pub mode: u32,
}

/// The devices every OCI container has (runtime-spec, "Default Devices").
#[rustfmt::skip]
pub const DEVICES: &[DeviceNode] = &[
    DeviceNode { path: "/dev/null", major: 1, minor: 3, mode: 0o666 },
    DeviceNode { path: "/dev/zero", major: 1, minor: 5, mode: 0o666 },
    DeviceNode { path: "/dev/full", major: 1, minor: 7, mode: 0o666 },
    DeviceNode { path: "/dev/random", major: 1, minor: 8, mode: 0o666 },
    DeviceNode { path: "/dev/urandom", major: 1, minor: 9, mode: 0o666 },
    DeviceNode { path: "/dev/tty", major: 5, minor: 0, mode: 0o666 },
];

/// A symbolic link to create in the container's /dev.
#[derive(Debug, Clone, Copy)]
pub struct DevLink {
    pub path: &'static str,
    pub target: &'static str,
}

/// The links programs expect: the fd aliases (through /proc) and ptmx into the
/// container's own devpts instance.
#[rustfmt::skip]
pub const DEV_LINKS: &[DevLink] = &[
    DevLink { path: "/dev/fd", target: "/proc/self/fd" },
    DevLink { path: "/dev/stdin", target: "/proc/self/fd/0" },
    DevLink { path: "/dev/stdout", target: "/proc/self/fd/1" },
    DevLink { path: "/dev/stderr", target: "/proc/self/fd/2" },
    DevLink { path: "/dev/ptmx", target: "pts/ptmx" },
];

/// Creates the nodes of [`DEVICES`] and the links of [`DEV_LINKS`].
pub fn populate() -> Result<(), RootfsError> {
    create_dirs(Path::new("/dev"))?;
    for device in DEVICES {
        create_device_node(device)?;
    }
    for link in DEV_LINKS {
        create_dev_link(link)?;
    }
    Ok(())
}

/// Creates one character device node with mknod(2), then sets its mode with
/// chmod(2): mknod applies the process's umask, chmod does not.
pub fn create_device_node(device: &DeviceNode) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "create a device node with mknod(2) and fix its mode"
    let path = Path::new(device.path);
    let error = |source| RootfsError::Device {
        path: path.to_path_buf(),
        source,
    };
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(device.mode),
        makedev(device.major, device.minor),
    )
    .map_err(error)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(device.mode)).map_err(|source| {
        RootfsError::Create {
            path: path.to_path_buf(),
            source,
        }
    })
    // END SOLUTION
}

/// Creates one symbolic link in /dev (see symlink(2)).
pub fn create_dev_link(link: &DevLink) -> Result<(), RootfsError> {
    // BEGIN SOLUTION ch01 "create a /dev symlink (fd, stdin, stdout, stderr, ptmx)"
    std::os::unix::fs::symlink(link.target, link.path).map_err(|source| RootfsError::Create {
        path: link.path.into(),
        source,
    })
    // END SOLUTION
}
