//! Network namespaces as files, as `ip netns add` makes them: a namespace lives
//! while a process is in it *or* a file is bind-mounted on it. The engine makes
//! the container's namespace before the container exists, wires it, and hands
//! the file to the runtime (`linux.namespaces[].path` in the spec).

use std::fs::File;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::NetworkError;

/// Makes a new network namespace and pins it on `path` (an empty file is made
/// there). Only a thread moves into the new namespace, and only while the bind
/// mount is made; the process stays where it was.
pub fn create(path: &Path) -> Result<(), NetworkError> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(NetworkError::io(format!(
            "failed to make the network namespace file {}",
            path.display()
        )))?;
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join()
    .unwrap_or(Err(nix::errno::Errno::EIO));
    if let Err(errno) = made {
        let _ = std::fs::remove_file(path);
        return Err(NetworkError::Io {
            what: format!(
                "failed to make a network namespace on {} (unshare(2) CLONE_NEWNET, then a bind mount)",
                path.display()
            ),
            source: errno.into(),
        });
    }
    Ok(())
}

/// Pins the network namespace `from` (another container's /proc/PID/ns/net) on
/// `path` too, for `--network container:NAME`.
pub fn share(from: &Path, path: &Path) -> Result<(), NetworkError> {
    File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(NetworkError::io(format!(
            "failed to make the network namespace file {}",
            path.display()
        )))?;
    if let Err(errno) = mount(
        Some(from),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        let _ = std::fs::remove_file(path);
        return Err(NetworkError::Io {
            what: format!("failed to bind {} on {}", from.display(), path.display()),
            source: errno.into(),
        });
    }
    Ok(())
}

/// Unpins the namespace on `path` and removes the file: the namespace goes when
/// its last process has too, and with it the container's end of the veth pair.
/// Missing is fine (another command cleaned it).
pub fn remove(path: &Path) {
    // Detach: a process that still has it open keeps what it has.
    let _ = umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}
