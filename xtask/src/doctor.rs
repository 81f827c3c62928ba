//! `cargo xtask doctor`: what this machine can run.
//!
//! A container engine is a client of kernel features (namespaces, cgroups, overlayfs,
//! seccomp, netfilter) and of a few programs. Whether a machine has them is written in
//! /proc and /sys, so the doctor only reads: it runs as the invoking user (the cargo
//! runner does not escalate xtask), changes nothing, and never guesses where a filesystem
//! is mounted, because /proc/self/mountinfo says (see proc_pid_mountinfo(5)).
//!
//! It works in three steps: `Host::probe` gathers the facts, `checks` judges them (one
//! line each: ok, warn, FAIL or skip, with the command that fixes a problem), and the
//! chapter table says which chapters of chapters.toml can run here.

use std::fs;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;

use crate::manifest::{Chapter, Manifest};

/// How a check came out; the order is from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok,
    Skip,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }

    /// The ANSI colour of the label: green, dim, yellow, bold red.
    fn colour(self) -> &'static str {
        match self {
            Status::Ok => "32",
            Status::Skip => "2",
            Status::Warn => "33",
            Status::Fail => "1;31",
        }
    }
}

/// One line of the report.
struct Check {
    name: &'static str,
    status: Status,
    /// What was found; further lines are printed under the first.
    finding: String,
    /// The command that fixes a problem, when there is one.
    fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, status: Status, finding: impl Into<String>) -> Self {
        let finding = finding.into();
        Check {
            name,
            status,
            finding,
            fix: None,
        }
    }

    fn ok(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Ok, finding)
    }

    fn skip(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Skip, finding)
    }

    fn warn(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Warn, finding)
    }

    fn fail(name: &'static str, finding: impl Into<String>) -> Self {
        Check::new(name, Status::Fail, finding)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs the checks and prints the report; fails when a check failed.
pub fn run() -> Result<()> {
    let host = Host::probe();
    let checks = checks(&host);
    let chapters = Manifest::load()?.chapters;
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();

    println!("ferry doctor: what this machine can run (it only reads; nothing is changed)\n");
    for check in &checks {
        print_check(check, colour);
    }
    println!("\nchapters (each builds on the ones before it)");
    let width = chapters
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(0);
    for chapter in &chapters {
        print_chapter(chapter, &host, width, colour);
    }

    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} check(s) failed: run the fix commands above"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The facts

/// Whether the invoking user can become root for the tests (the cargo runner uses sudo).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sudo {
    /// Already root: tests run directly.
    NotNeeded,
    Missing,
    Passwordless,
    AsksPassword,
}

/// Where overlayfs comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overlay {
    /// Listed in /proc/filesystems: built in, or its module is loaded.
    Listed,
    /// Not loaded yet, but the module exists: the kernel loads it on the first mount.
    Module,
    Missing,
}

/// Where the machine runs, as far as it lets us see.
struct Environment {
    container: Option<String>,
    wsl: Option<u8>,
    vm: Option<String>,
}

/// Everything the doctor found, before any judgement.
struct Host {
    sudo: Sudo,
    kernel: String,
    arch: String,
    /// PRETTY_NAME from os-release(5), e.g. "Debian GNU/Linux 12 (bookworm)".
    distro: Option<String>,
    seccomp: bool,
    /// `None` when /proc/self/mountinfo cannot be read.
    mounts: Option<Vec<Mount>>,
    cgroups: Option<CgroupLayout>,
    overlay: Overlay,
    max_user_namespaces: Option<u64>,
    unprivileged_userns_clone: Option<u64>,
    apparmor_restrict_userns: Option<u64>,
    /// `Ok` when /bin/busybox is static, else what is wrong with it.
    busybox: Result<(), String>,
    registry: bool,
    iptables: Option<PathBuf>,
    nft: Option<PathBuf>,
    ip: Option<PathBuf>,
    environment: Environment,
}

/// The registry server the chapter 7 tests start (Debian/Ubuntu package docker-registry).
const REGISTRY: &str = "/usr/bin/docker-registry";

/// The busybox the test rootfs is made from (package busybox-static).
const BUSYBOX: &str = "/bin/busybox";

impl Host {
    fn probe() -> Self {
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
fn read(path: impl AsRef<Path>) -> Option<String> {
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

fn probe_environment() -> Environment {
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

// ---------------------------------------------------------------------------------------
// Pure parsing: mountinfo, cgroups, ELF, the environment

/// One line of /proc/self/mountinfo, the fields the doctor uses.
#[derive(Debug)]
struct Mount {
    mount_point: String,
    /// Propagation: `shared:N`, `master:N`, `unbindable`; none means private.
    optional: Vec<String>,
    fstype: String,
    /// The filesystem's own options; for cgroup v1, its controllers.
    super_options: String,
}

/// Parses /proc/self/mountinfo: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...]
/// - FSTYPE SOURCE SUPER_OPTIONS` (see proc_pid_mountinfo(5)). Bad lines are skipped.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_mount).collect()
}

fn parse_mount(line: &str) -> Option<Mount> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // The optional fields end with a lone "-" (searched after the six fixed fields).
    let dash = 6 + fields.get(6..)?.iter().position(|&f| f == "-")?;
    Some(Mount {
        mount_point: unescape(fields.get(4)?),
        optional: fields[6..dash].iter().map(|f| f.to_string()).collect(),
        fstype: fields.get(dash + 1)?.to_string(),
        super_options: fields.get(dash + 3).unwrap_or(&"").to_string(),
    })
}

/// Undoes mountinfo's escapes: a space, tab, newline or backslash in a path is `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match octal {
            Some(byte) if bytes[i] == b'\\' => {
                out.push(byte);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount propagation of `/`: the last mount on `/` is the one everyone sees.
fn root_propagation(mounts: &[Mount]) -> Option<&'static str> {
    let root = mounts.iter().rev().find(|m| m.mount_point == "/")?;
    let has = |prefix: &str| root.optional.iter().any(|f| f.starts_with(prefix));
    Some(if has("shared:") {
        "shared"
    } else if has("master:") {
        "slave"
    } else if has("unbindable") {
        "unbindable"
    } else {
        "private"
    })
}

/// How the cgroup hierarchies are laid out.
#[derive(Debug, PartialEq, Eq)]
enum Layout {
    None,
    /// Only cgroup2: what systemd sets up on current distributions.
    V2,
    /// Only v1 hierarchies, one per controller (or group of controllers).
    V1,
    /// v1 hierarchies with the controllers, plus a cgroup2 mount (systemd's "hybrid").
    Hybrid,
}

/// The controllers the chapters use.
const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuset", "devices"];

/// The cgroup filesystems, found in mountinfo.
struct CgroupLayout {
    /// The super options of each cgroup (v1) mount, which name its controllers.
    v1: Vec<String>,
    v2_mount: Option<String>,
    /// cgroup.controllers at the cgroup2 mount: the controllers v2 has.
    v2_controllers: String,
}

impl CgroupLayout {
    fn from_mounts(mounts: &[Mount]) -> Self {
        let v1 = mounts.iter().filter(|m| m.fstype == "cgroup");
        let v2 = mounts.iter().find(|m| m.fstype == "cgroup2");
        CgroupLayout {
            v1: v1.map(|m| m.super_options.clone()).collect(),
            v2_mount: v2.map(|m| m.mount_point.clone()),
            v2_controllers: String::new(),
        }
    }

    /// `from_mounts`, plus the controllers listed at the cgroup2 mount.
    fn probe(mounts: &[Mount]) -> Self {
        let mut layout = Self::from_mounts(mounts);
        if let Some(mount) = &layout.v2_mount {
            layout.v2_controllers = read(format!("{mount}/cgroup.controllers")).unwrap_or_default();
        }
        layout
    }

    fn layout(&self) -> Layout {
        match (self.v1.is_empty(), self.v2_mount.is_some()) {
            (true, false) => Layout::None,
            (true, true) => Layout::V2,
            (false, false) => Layout::V1,
            (false, true) => Layout::Hybrid,
        }
    }

    /// Which hierarchy has a controller: "v1", "v2", or none. A controller is bound to
    /// one hierarchy at a time, and cgroup.controllers leaves out those bound to v1.
    fn controller_version(&self, name: &str) -> Option<&'static str> {
        if self
            .v1
            .iter()
            .any(|options| options.split(',').any(|o| o == name))
        {
            return Some("v1");
        }
        self.v2_mount.as_ref()?;
        // v2 has no "devices" controller: an eBPF program attached to the cgroup does it.
        let in_v2 = self.v2_controllers.split_whitespace().any(|c| c == name);
        (in_v2 || name == "devices").then_some("v2")
    }
}

/// Whether an ELF binary is static: it has no PT_INTERP program header naming a
/// dynamic loader (see elf(5)). If the headers are unreadable, looks for a loader's path.
fn is_static_elf(elf: &[u8]) -> Result<bool, &'static str> {
    if !elf.starts_with(b"\x7fELF") {
        return Err("is not an ELF binary");
    }
    let has_interp = elf_has_interp(elf).unwrap_or_else(|| {
        let loaders: [&[u8]; 2] = [b"/lib64/ld-linux", b"/lib/ld-linux"];
        loaders
            .iter()
            .any(|loader| elf.windows(loader.len()).any(|w| w == *loader))
    });
    Ok(!has_interp)
}

/// Walks the program headers; `None` when the ELF header is truncated or unknown.
fn elf_has_interp(elf: &[u8]) -> Option<bool> {
    const PT_INTERP: u64 = 3;
    let wide = match elf.get(4)? {
        1 => false, // ELFCLASS32
        2 => true,  // ELFCLASS64
        _ => return None,
    };
    let little = match elf.get(5)? {
        1 => true,  // ELFDATA2LSB
        2 => false, // ELFDATA2MSB
        _ => return None,
    };
    let field = |offset: u64, size: usize| read_uint(elf, offset, size, little);
    // e_phoff, e_phentsize and e_phnum sit at different offsets in the two classes.
    let (phoff, phentsize, phnum) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    for index in 0..phnum {
        let header = phoff.checked_add(index.checked_mul(phentsize)?)?;
        if field(header, 4)? == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

/// Reads an unsigned integer of `size` bytes at `offset`, in the file's byte order.
fn read_uint(bytes: &[u8], offset: u64, size: usize, little: bool) -> Option<u64> {
    let start = usize::try_from(offset).ok()?;
    let slice = bytes.get(start..start.checked_add(size)?)?;
    let push = |value: u64, byte: &u8| (value << 8) | u64::from(*byte);
    Some(if little {
        slice.iter().rev().fold(0, push)
    } else {
        slice.iter().fold(0, push)
    })
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

// ---------------------------------------------------------------------------------------
// The judgement

/// The report's lines, in the order a student fixes things.
fn checks(host: &Host) -> Vec<Check> {
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
    if found.is_empty() {
        Check::warn("firewall", "no iptables nor nft (needed from chapter 10)")
            .with_fix("sudo apt-get install iptables")
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

// ---------------------------------------------------------------------------------------
// The chapters

/// What a chapter's tests need from the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Root,
    Busybox,
    Cgroups(&'static [&'static str]),
    Seccomp,
    Overlay,
    Registry,
    Firewall,
    Iproute,
}

/// What each chapter's tests add. A chapter also needs what the chapters before it
/// need: a student who has done chapter N passes the tests of 0..=N (the ladder).
const CHAPTER_NEEDS: &[(u32, &[Need])] = &[
    (0, &[Need::Root, Need::Busybox]),
    (1, &[Need::Root]),
    (2, &[Need::Root]),
    (3, &[Need::Root, Need::Cgroups(&["memory", "pids", "cpu"])]),
    (4, &[Need::Root, Need::Seccomp]),
    (5, &[Need::Overlay]),
    (6, &[Need::Root]),
    (7, &[Need::Registry]),
    (8, &[Need::Root]),
    (9, &[Need::Root]),
    (10, &[Need::Firewall, Need::Iproute]),
    (11, &[Need::Overlay]),
];

impl Need {
    fn label(self) -> String {
        match self {
            Need::Root => "root".into(),
            Need::Busybox => "static busybox".into(),
            Need::Cgroups(controllers) => format!("cgroups ({})", controllers.join(", ")),
            Need::Seccomp => "seccomp".into(),
            Need::Overlay => "overlayfs".into(),
            Need::Registry => "docker-registry".into(),
            Need::Firewall => "iptables or nft".into(),
            Need::Iproute => "ip".into(),
        }
    }

    fn met(self, host: &Host) -> bool {
        match self {
            Need::Root => host.sudo != Sudo::Missing,
            Need::Busybox => host.busybox.is_ok(),
            Need::Cgroups(wanted) => host.cgroups.as_ref().is_some_and(|cgroups| {
                wanted
                    .iter()
                    .all(|c| cgroups.controller_version(c).is_some())
            }),
            Need::Seccomp => host.seccomp,
            Need::Overlay => host.overlay != Overlay::Missing,
            Need::Registry => host.registry,
            Need::Firewall => host.iptables.is_some() || host.nft.is_some(),
            Need::Iproute => host.ip.is_some(),
        }
    }
}

/// The needs of chapters 0..=`chapter` that `met` says are missing, with their chapter.
fn missing_needs(chapter: u32, met: impl Fn(Need) -> bool) -> Vec<(u32, Need)> {
    let mut missing: Vec<(u32, Need)> = Vec::new();
    for &(number, needs) in CHAPTER_NEEDS
        .iter()
        .filter(|(number, _)| *number <= chapter)
    {
        for &need in needs {
            // Each need once, at the first chapter that has it.
            if !met(need) && !missing.iter().any(|&(_, seen)| seen == need) {
                missing.push((number, need));
            }
        }
    }
    missing
}

// ---------------------------------------------------------------------------------------
// Printing

/// Width of the status column and of the check names.
const MARK: usize = 6;
const NAME: usize = 13;

/// The status label, padded to its column (padding outside the colour codes).
fn mark(status: Status, colour: bool) -> String {
    let label = status.label();
    let pad = " ".repeat(MARK - label.len());
    match colour {
        true => format!("\x1b[{}m{label}\x1b[0m{pad}", status.colour()),
        false => format!("{label}{pad}"),
    }
}

fn print_check(check: &Check, colour: bool) {
    let indent = " ".repeat(2 + MARK + NAME);
    let mut lines = check.finding.lines();
    let first = lines.next().unwrap_or("");
    println!(
        "  {}{:<NAME$}{first}",
        mark(check.status, colour),
        check.name
    );
    for line in lines {
        println!("{indent}{line}");
    }
    if let Some(fix) = &check.fix {
        println!("{indent}fix: {fix}");
    }
}

/// One chapter's row: ok when this machine has everything it (and those before it) needs.
fn print_chapter(chapter: &Chapter, host: &Host, width: usize, colour: bool) {
    let number = chapter.number;
    let Some((_, needs)) = CHAPTER_NEEDS.iter().find(|(n, _)| *n == number) else {
        let mark = mark(Status::Skip, colour);
        println!(
            "  {mark}{number:02}  {:<width$}  needs unknown: add it to CHAPTER_NEEDS",
            chapter.title
        );
        return;
    };
    let missing = missing_needs(number, |need| need.met(host));
    let status = if missing.is_empty() {
        Status::Ok
    } else {
        Status::Fail
    };
    let mut text = needs
        .iter()
        .map(|n| n.label())
        .collect::<Vec<_>>()
        .join(", ");
    if !missing.is_empty() {
        let labels: Vec<String> = missing
            .iter()
            .map(|&(n, need)| match n == number {
                true => need.label(),
                false => format!("{} (chapter {n})", need.label()),
            })
            .collect();
        text = format!("{text} — missing: {}", labels.join(", "));
    }
    println!(
        "  {}{number:02}  {:<width$}  {text}",
        mark(status, colour),
        chapter.title
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine's layout: Debian 12 without systemd, cgroup v1 plus an almost empty v2.
    const HYBRID: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// A systemd laptop: cgroup v2 only, `/` shared.
    const UNIFIED: &str = "\
26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

    #[test]
    fn mountinfo_fields_are_parsed() {
        let mounts = parse_mountinfo(UNIFIED);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].mount_point, "/sys/fs/cgroup");
        assert_eq!(mounts[1].optional, ["shared:9"]);
        assert_eq!(mounts[1].fstype, "cgroup2");
        assert_eq!(
            mounts[1].super_options,
            "rw,nsdelegate,memory_recursiveprot"
        );
    }

    #[test]
    fn mount_points_are_unescaped_and_bad_lines_skipped() {
        let text = "50 27 0:40 / /mnt/my\\040disk rw - tmpfs tmpfs rw\nnot a mount line\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].mount_point, "/mnt/my disk");
    }

    #[test]
    fn hybrid_layout_has_controllers_on_v1() {
        let cgroups = CgroupLayout::from_mounts(&parse_mountinfo(HYBRID));
        assert_eq!(cgroups.layout(), Layout::Hybrid);
        assert_eq!(cgroups.v2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
        assert_eq!(cgroups.controller_version("memory"), Some("v1"));
        assert_eq!(cgroups.controller_version("devices"), Some("v1"));
        // cpuset is in no v1 mount here, and the v2 mount lists no controllers.
        assert_eq!(cgroups.controller_version("cpuset"), None);
        // "name=systemd" is a named hierarchy, not a controller called "systemd".
        assert_eq!(cgroups.controller_version("systemd"), None);
    }

    #[test]
    fn unified_layout_takes_controllers_from_cgroup_controllers() {
        let mut cgroups = CgroupLayout::from_mounts(&parse_mountinfo(UNIFIED));
        cgroups.v2_controllers = "cpuset cpu io memory hugetlb pids rdma misc".into();
        assert_eq!(cgroups.layout(), Layout::V2);
        assert_eq!(cgroups.controller_version("memory"), Some("v2"));
        assert_eq!(cgroups.controller_version("devices"), Some("v2"));
        assert_eq!(cgroups.controller_version("freezer"), None);
    }

    #[test]
    fn layouts_without_v2_or_any_cgroup() {
        let v1_only = parse_mountinfo(&HYBRID.replace("cgroup2 cgroup2", "tmpfs tmpfs"));
        assert_eq!(CgroupLayout::from_mounts(&v1_only).layout(), Layout::V1);
        let none = parse_mountinfo(HYBRID.lines().next().unwrap());
        assert_eq!(CgroupLayout::from_mounts(&none).layout(), Layout::None);
    }

    #[test]
    fn root_propagation_reads_the_optional_fields() {
        assert_eq!(root_propagation(&parse_mountinfo(HYBRID)), Some("private"));
        assert_eq!(root_propagation(&parse_mountinfo(UNIFIED)), Some("shared"));
    }

    /// A minimal ELF header and program headers of the given types.
    fn elf(wide: bool, little: bool, types: &[u32]) -> Vec<u8> {
        let (header, entry) = if wide { (64, 56) } else { (52, 32) };
        let mut elf = vec![0u8; header + entry * types.len()];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = if wide { 2 } else { 1 };
        elf[5] = if little { 1 } else { 2 };
        let mut put = |offset: usize, size: usize, value: u64| {
            let bytes = value.to_be_bytes();
            let mut field = bytes[8 - size..].to_vec();
            if little {
                field.reverse();
            }
            elf[offset..offset + size].copy_from_slice(&field);
        };
        let (phoff, phentsize, phnum) = if wide {
            (0x20, 0x36, 0x38)
        } else {
            (0x1c, 0x2a, 0x2c)
        };
        put(phoff, if wide { 8 } else { 4 }, header as u64);
        put(phentsize, 2, entry as u64);
        put(phnum, 2, types.len() as u64);
        for (index, &kind) in types.iter().enumerate() {
            put(header + index * entry, 4, u64::from(kind));
        }
        elf
    }

    const PT_LOAD: u32 = 1;
    const PT_INTERP: u32 = 3;

    #[test]
    fn elf_without_interp_is_static() {
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD, PT_LOAD])),
            Ok(true)
        );
        assert_eq!(is_static_elf(&elf(false, false, &[PT_LOAD])), Ok(true));
    }

    #[test]
    fn elf_with_interp_is_dynamic() {
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD, PT_INTERP])),
            Ok(false)
        );
        assert_eq!(
            is_static_elf(&elf(false, false, &[PT_INTERP, PT_LOAD])),
            Ok(false)
        );
    }

    #[test]
    fn truncated_elf_falls_back_to_the_loader_path() {
        let mut dynamic = elf(true, true, &[PT_INTERP]);
        dynamic.extend_from_slice(b"/lib64/ld-linux-x86-64.so.2\0");
        dynamic[0x20] = 0xff; // e_phoff now points past the end
        assert_eq!(is_static_elf(&dynamic), Ok(false));
        assert_eq!(
            is_static_elf(&elf(true, true, &[PT_LOAD])[..0x30]),
            Ok(true)
        );
        assert_eq!(is_static_elf(b"#!/bin/sh\n"), Err("is not an ELF binary"));
    }

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

    #[test]
    fn a_chapter_needs_what_the_chapters_before_it_need() {
        let no_overlay = |need: Need| need != Need::Overlay;
        assert_eq!(missing_needs(4, no_overlay), []);
        assert_eq!(missing_needs(6, no_overlay), [(5, Need::Overlay)]);
        // Reported once, at the first chapter that needs it.
        assert_eq!(missing_needs(11, no_overlay), [(5, Need::Overlay)]);
        let no_root = |need: Need| need != Need::Root;
        assert_eq!(missing_needs(2, no_root), [(0, Need::Root)]);
    }

    #[test]
    fn every_chapter_in_the_manifest_has_its_needs() {
        for chapter in Manifest::load().unwrap().chapters {
            let known = CHAPTER_NEEDS
                .iter()
                .any(|(number, _)| *number == chapter.number);
            assert!(
                known,
                "chapter {} is missing from CHAPTER_NEEDS",
                chapter.number
            );
        }
    }
}
