//! The facts: what /proc, /sys and PATH say about this machine, gathered before any
//! judgement. It only reads; the one program it runs is `sudo -n true`, which changes nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::cgroups::{parse_mountinfo, CgroupLayout, Mount};
use super::elf::is_static_elf;
use super::environment::{probe_environment, Environment};

/// Whether the invoking user can become root for the tests (the cargo runner uses sudo).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sudo {
    /// Already root: tests run directly.
    NotNeeded,
    Missing,
    Passwordless,
    AsksPassword,
}

/// Where overlayfs comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Overlay {
    /// Listed in /proc/filesystems: built in, or its module is loaded.
    Listed,
    /// Not loaded yet, but the module exists: the kernel loads it on the first mount.
    Module,
    Missing,
}

/// Everything the doctor found, before any judgement.
pub(super) struct Host {
    pub(super) sudo: Sudo,
    pub(super) kernel: String,
    pub(super) arch: String,
    /// PRETTY_NAME from os-release(5), e.g. "Debian GNU/Linux 12 (bookworm)".
    pub(super) distro: Option<String>,
    pub(super) seccomp: bool,
    /// `None` when /proc/self/mountinfo cannot be read.
    pub(super) mounts: Option<Vec<Mount>>,
    pub(super) cgroups: Option<CgroupLayout>,
    pub(super) overlay: Overlay,
    pub(super) max_user_namespaces: Option<u64>,
    pub(super) unprivileged_userns_clone: Option<u64>,
    pub(super) apparmor_restrict_userns: Option<u64>,
    /// `Ok` when /bin/busybox is static, else what is wrong with it.
    pub(super) busybox: Result<(), String>,
    pub(super) registry: bool,
    pub(super) iptables: Option<PathBuf>,
    pub(super) nft: Option<PathBuf>,
    pub(super) ip: Option<PathBuf>,
    pub(super) environment: Environment,
}

/// The registry server the chapter 7 tests start (Debian/Ubuntu package docker-registry).
pub(super) const REGISTRY: &str = "/usr/bin/docker-registry";

/// The busybox the test rootfs is made from (package busybox-static).
pub(super) const BUSYBOX: &str = "/bin/busybox";

impl Host {
    pub(super) fn probe() -> Self {
        let status = read("/proc/self/status").unwrap_or_default();
        let uid = effective_uid(&status);
        let kernel = read("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mounts = read("/proc/self/mountinfo").map(|text| parse_mountinfo(&text));
        let cgroups = mounts.as_deref().map(CgroupLayout::probe);
        Host {
            sudo: probe_sudo(uid),
            arch: read("/proc/sys/kernel/arch").unwrap_or_else(|| std::env::consts::ARCH.into()),
            distro: read("/etc/os-release").and_then(|text| pretty_name(&text)),
            seccomp: status.lines().any(|line| line.starts_with("Seccomp:")),
            overlay: probe_overlay(&kernel),
            kernel,
            mounts,
            cgroups,
            max_user_namespaces: read_number("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: read_number("/proc/sys/kernel/unprivileged_userns_clone"),
            apparmor_restrict_userns: read_number(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            ),
            busybox: probe_busybox(),
            registry: is_executable(Path::new(REGISTRY)),
            iptables: find_program("iptables"),
            nft: find_program("nft"),
            ip: find_program("ip"),
            environment: probe_environment(),
        }
    }
}

/// Reads a small text file (from /proc or /sys), trimmed; `None` when it cannot be read.
pub(super) fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
}

fn read_number(path: &str) -> Option<u64> {
    read(path)?.parse().ok()
}

/// The effective uid, from the `Uid:` line of /proc/self/status (real, effective, saved, fs).
fn effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The distribution's name: `PRETTY_NAME="..."` in /etc/os-release (see os-release(5)).
fn pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))?;
    Some(value.trim_matches(|c| c == '"' || c == '\'').to_string())
}

/// Finds a program in PATH, then in the sbin directories (Debian leaves them out of a
/// user's PATH, and iptables and ip live there).
fn find_program(name: &str) -> Option<PathBuf> {
    const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Asks sudo whether it would run a command without a password: `-n` makes it fail
/// instead of prompting, and `true` does nothing.
fn probe_sudo(uid: Option<u32>) -> Sudo {
    if uid == Some(0) {
        return Sudo::NotNeeded;
    }
    let Some(sudo) = find_program("sudo") else {
        return Sudo::Missing;
    };
    let child = Command::new(sudo)
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Sudo::AsksPassword;
    };
    // sudo answers at once; give up after five seconds rather than hang the report.
    for _ in 0..50 {
        match child.try_wait() {
            Ok(Some(exit)) if exit.success() => return Sudo::Passwordless,
            Ok(Some(_)) | Err(_) => return Sudo::AsksPassword,
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Sudo::AsksPassword
}

fn probe_overlay(kernel: &str) -> Overlay {
    let filesystems = read("/proc/filesystems").unwrap_or_default();
    if filesystems
        .lines()
        .any(|line| line.split_whitespace().last() == Some("overlay"))
    {
        Overlay::Listed
    } else if Path::new(&format!("/lib/modules/{kernel}/kernel/fs/overlayfs")).is_dir() {
        Overlay::Module
    } else {
        Overlay::Missing
    }
}

fn probe_busybox() -> Result<(), String> {
    match fs::read(BUSYBOX) {
        Ok(elf) => match is_static_elf(&elf) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "{BUSYBOX} is dynamic: the tests' rootfs has no libc for it"
            )),
            Err(problem) => Err(format!("{BUSYBOX} {problem}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no {BUSYBOX}: every chapter's test rootfs is made from it"
        )),
        Err(e) => Err(format!("cannot read {BUSYBOX}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_is_the_effective_one() {
        let status = "Name:\tcat\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Name:\tcat\n"), None);
    }

    #[test]
    fn distribution_name_comes_from_os_release() {
        let os_release =
            "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(
            pretty_name(os_release).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(pretty_name("NAME=Arch\n"), None);
    }
}
