//! The judgement: one line of the report per fact (ok, warn, FAIL or skip), with the
//! command that fixes a problem, in the order a student fixes things.

use std::path::PathBuf;

use super::cgroups::{root_propagation, CgroupLayout, Layout, Mount, CONTROLLERS};
use super::environment::Environment;
use super::facts::{Host, Overlay, Sudo, BUSYBOX, REGISTRY};
use super::{Check, Status};

/// The report's lines, in the order a student fixes things.
pub(super) fn checks(host: &Host) -> Vec<Check> {
    vec![
        root_check(host),
        kernel_check(host),
        seccomp_check(host),
        cgroups_check(host.cgroups.as_ref()),
        overlay_check(host.overlay),
        userns_check(host),
        busybox_check(&host.busybox),
        tool_check(
            "registry",
            host.registry.then(|| PathBuf::from(REGISTRY)),
            7,
            "docker-registry",
        ),
        firewall_check(host),
        tool_check("iproute2", host.ip.clone(), 10, "iproute2"),
        environment_check(&host.environment),
        propagation_check(host.mounts.as_deref()),
    ]
}

fn root_check(host: &Host) -> Check {
    let name = "root";
    match host.sudo {
        Sudo::NotNeeded => Check::ok(name, "running as root: tests run directly"),
        Sudo::Passwordless => Check::ok(name, "sudo works without a password"),
        // The usual laptop set-up: fine, the student just types their password.
        Sudo::AsksPassword => Check::ok(
            name,
            "sudo asks for a password: tests will ask for it (`sudo -v` caches it)",
        ),
        Sudo::Missing => {
            let user = std::env::var("USER").unwrap_or_else(|_| "YOU".into());
            Check::fail(name, "not root and no sudo: the tests cannot become root").with_fix(
                format!("su -c 'apt-get install sudo && adduser {user} sudo', then log in again"),
            )
        }
    }
}

fn kernel_check(host: &Host) -> Check {
    let mut finding = format!("Linux {} on {}", host.kernel, host.arch);
    if let Some(distro) = &host.distro {
        finding = format!("{finding}, {distro}");
    }
    Check::ok("kernel", finding)
}

fn seccomp_check(host: &Host) -> Check {
    if host.seccomp {
        Check::ok("seccomp", "supported (Seccomp: in /proc/self/status)")
    } else {
        Check::fail(
            "seccomp",
            "kernel built without seccomp (needed from chapter 4)",
        )
    }
}

fn cgroups_check(cgroups: Option<&CgroupLayout>) -> Check {
    let name = "cgroups";
    let Some(cgroups) = cgroups else {
        return Check::skip(name, "cannot read /proc/self/mountinfo");
    };
    let v2 = cgroups.v2_mount.as_deref().unwrap_or("");
    let layout = match cgroups.layout() {
        Layout::None => {
            return Check::fail(name, "no cgroup filesystem mounted")
                .with_fix("sudo mount -t cgroup2 none /sys/fs/cgroup")
        }
        Layout::V2 => format!("cgroup v2 (unified) at {v2}"),
        Layout::V1 => "cgroup v1".to_string(),
        Layout::Hybrid => format!("hybrid: cgroup v1 controllers, plus cgroup2 at {v2}"),
    };
    let mut missing = Vec::new();
    let controllers: Vec<String> = CONTROLLERS
        .iter()
        .map(|&c| match cgroups.controller_version(c) {
            Some(version) => format!("{c} ({version})"),
            None => {
                missing.push(c);
                format!("{c} (missing)")
            }
        })
        .collect();
    let status = if missing.is_empty() {
        Status::Ok
    } else {
        Status::Warn
    };
    Check::new(
        name,
        status,
        format!("{layout}\n{}", controllers.join(", ")),
    )
}

fn overlay_check(overlay: Overlay) -> Check {
    match overlay {
        Overlay::Listed => Check::ok("overlayfs", "overlay is in /proc/filesystems"),
        Overlay::Module => Check::ok("overlayfs", "module present: the first mount loads it"),
        Overlay::Missing => Check::fail(
            "overlayfs",
            "no overlay in /proc/filesystems nor a module (needed from chapter 5)",
        )
        .with_fix("sudo modprobe overlay"),
    }
}

/// User namespaces matter only for rootless containers, beyond chapter 11: the chapters
/// run as root, which may create them whatever these knobs say.
fn userns_check(host: &Host) -> Check {
    let name = "user ns";
    let Some(max) = host.max_user_namespaces else {
        return Check::warn(name, "no /proc/sys/user (kernel without user namespaces)");
    };
    let (finding, fix) = if max == 0 {
        (
            "max_user_namespaces is 0",
            "sudo sysctl -w user.max_user_namespaces=15000",
        )
    } else if host.unprivileged_userns_clone == Some(0) {
        (
            "unprivileged_userns_clone is 0",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1",
        )
    } else if host.apparmor_restrict_userns == Some(1) {
        (
            "AppArmor restricts unprivileged user namespaces",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        )
    } else {
        return Check::ok(name, format!("available (max_user_namespaces {max})"));
    };
    let finding = format!("{finding}: rootless containers (beyond chapter 11) will not work");
    Check::warn(name, finding).with_fix(fix)
}

fn busybox_check(busybox: &Result<(), String>) -> Check {
    match busybox {
        Ok(()) => Check::ok("busybox", format!("{BUSYBOX} is static")),
        Err(problem) => {
            Check::fail("busybox", problem.as_str()).with_fix("sudo apt-get install busybox-static")
        }
    }
}

/// A program a later chapter needs: a warning only, as the early chapters run without it.
fn tool_check(name: &'static str, found: Option<PathBuf>, chapter: u32, package: &str) -> Check {
    match found {
        Some(path) => Check::ok(name, path.display().to_string()),
        None => Check::warn(name, format!("not found (needed from chapter {chapter})"))
            .with_fix(format!("sudo apt-get install {package}")),
    }
}

fn firewall_check(host: &Host) -> Check {
    let found: Vec<String> = [&host.iptables, &host.nft]
        .into_iter()
        .flatten()
        .map(|path| path.display().to_string())
        .collect();
    if host.nft.is_none() {
        Check::warn(
            "firewall",
            "no nft: chapter 10 loads its NAT and port rules with it",
        )
        .with_fix("sudo apt-get install nftables")
    } else {
        Check::ok("firewall", found.join(", "))
    }
}

fn environment_check(env: &Environment) -> Check {
    let name = "environment";
    if env.wsl == Some(1) {
        return Check::fail(name, "WSL 1: no Linux kernel, so no namespaces")
            .with_fix("wsl --set-version <distro> 2   (in Windows)");
    }
    let mut found = Vec::new();
    if let Some(marker) = &env.container {
        found.push(format!("a container ({marker}): ferry needs it privileged"));
    }
    if env.wsl == Some(2) {
        found.push("WSL 2".to_string());
    }
    if let Some(vm) = &env.vm {
        found.push(format!("a VM ({vm})"));
    }
    match found.is_empty() {
        true => Check::ok(name, "no container or VM detected"),
        false if env.container.is_some() => Check::warn(name, found.join("\n")),
        false => Check::ok(name, found.join("\n")),
    }
}

/// Informational: tests make `/` shared in their own namespace either way (DESIGN.md).
fn propagation_check(mounts: Option<&[Mount]>) -> Check {
    let name = "propagation";
    match mounts.and_then(root_propagation) {
        Some("shared") => Check::ok(name, "/ is shared, as on any systemd host"),
        Some(kind) => Check::ok(
            name,
            format!("/ is {kind} (a systemd laptop's is shared; tests make it shared)"),
        ),
        None => Check::skip(name, "no mount on / in /proc/self/mountinfo"),
    }
}
