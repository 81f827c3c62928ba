//! Where the machine runs: a container, WSL or a VM, as far as it lets us see (marker
//! files, /proc/1/environ, the DMI names in /sys/class/dmi/id, /proc/cpuinfo, /proc/version).

use std::fs;
use std::path::Path;

use super::facts::read;

/// Where the machine runs, as far as it lets us see.
pub(super) struct Environment {
    pub(super) container: Option<String>,
    pub(super) wsl: Option<u8>,
    pub(super) vm: Option<String>,
}

pub(super) fn probe_environment() -> Environment {
    // /proc/1/environ is often unreadable (another user's process): then it says nothing.
    let init_env = fs::read("/proc/1/environ").unwrap_or_default();
    let container = if Path::new("/.dockerenv").exists() {
        Some("/.dockerenv".to_string())
    } else if Path::new("/run/.containerenv").exists() {
        Some("/run/.containerenv".to_string())
    } else {
        init_env
            .split(|&b| b == 0)
            .find(|var| var.starts_with(b"container="))
            .map(|var| String::from_utf8_lossy(var).into_owned())
    };
    let dmi = ["sys_vendor", "product_name"]
        .map(|file| read(format!("/sys/class/dmi/id/{file}")).unwrap_or_default())
        .join(" ");
    let vm = vm_vendor(&dmi).map(str::to_string).or_else(|| {
        let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
        has_hypervisor_flag(&cpuinfo).then(|| "hypervisor flag in /proc/cpuinfo".to_string())
    });
    let wsl = wsl_version(&read("/proc/version").unwrap_or_default());
    Environment { container, wsl, vm }
}

/// The hypervisor that DMI's vendor and product names ("VENDOR PRODUCT") mention.
fn vm_vendor(dmi: &str) -> Option<&'static str> {
    // (what DMI says, the hypervisor). Microsoft also makes laptops (Surface): only its
    // "Virtual Machine" product is Hyper-V.
    const HYPERVISORS: [(&str, &str); 8] = [
        ("QEMU", "QEMU"),
        ("KVM", "KVM"),
        ("VirtualBox", "VirtualBox"),
        ("innotek", "VirtualBox"),
        ("VMware", "VMware"),
        ("Microsoft Corporation Virtual Machine", "Hyper-V"),
        ("Xen", "Xen"),
        ("Firecracker", "Firecracker"),
    ];
    let found = HYPERVISORS
        .into_iter()
        .find(|(marker, _)| dmi.contains(marker));
    found.map(|(_, hypervisor)| hypervisor)
}

/// CPUs that run under a hypervisor show the `hypervisor` flag.
fn has_hypervisor_flag(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|line| line.starts_with("flags"))
        .any(|line| line.split_whitespace().any(|flag| flag == "hypervisor"))
}

/// WSL's kernels say so in /proc/version: WSL 2's "...-microsoft-standard-WSL2", WSL 1's
/// "...-Microsoft" (WSL 1 translates system calls and has no namespaces or cgroups).
fn wsl_version(proc_version: &str) -> Option<u8> {
    let lower = proc_version.to_lowercase();
    if lower.contains("wsl2") || lower.contains("microsoft-standard") {
        Some(2)
    } else if lower.contains("microsoft") || lower.contains("wsl") {
        Some(1)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_markers() {
        assert_eq!(
            wsl_version("Linux version 5.15.153.1-microsoft-standard-WSL2"),
            Some(2)
        );
        assert_eq!(
            wsl_version("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com)"),
            Some(1)
        );
        assert_eq!(
            wsl_version("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)"),
            None
        );
        assert_eq!(
            vm_vendor("QEMU Standard PC (Q35 + ICH9, 2009)"),
            Some("QEMU")
        );
        assert_eq!(vm_vendor("LENOVO 20XW0026GE"), None);
        assert_eq!(vm_vendor("Microsoft Corporation Surface Laptop 4"), None);
        assert_eq!(
            vm_vendor("Microsoft Corporation Virtual Machine"),
            Some("Hyper-V")
        );
        assert!(has_hypervisor_flag(
            "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"
        ));
        assert!(!has_hypervisor_flag("flags\t\t: fpu vme lahf_lm\n"));
    }
}
