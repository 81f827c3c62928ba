//! Seccomp profiles in Docker's JSON format, and ferry's default profile as data.
//!
//! A profile says what happens to each syscall: a default action, then rules that
//! name syscalls (optionally with conditions on their arguments, or only when the
//! container holds a capability) and give them another action.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// What the kernel does with a syscall (Docker's `SCMP_ACT_*` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Action {
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_KILL", alias = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
}

/// A comparison on one syscall argument (`SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_EQ")]
    Eq,
    #[serde(rename = "SCMP_CMP_NE")]
    Ne,
    #[serde(rename = "SCMP_CMP_LT")]
    Lt,
    #[serde(rename = "SCMP_CMP_LE")]
    Le,
    #[serde(rename = "SCMP_CMP_GT")]
    Gt,
    #[serde(rename = "SCMP_CMP_GE")]
    Ge,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEq,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: u8,
    pub value: u64,
    /// For `MaskedEq`: `value` is the mask, `value_two` what the masked argument must equal.
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// When a rule applies: capabilities the container must hold (includes) or must not (excludes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Condition {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Condition::is_empty")]
    pub includes: Condition,
    #[serde(default, skip_serializing_if = "Condition::is_empty")]
    pub excludes: Condition,
}

/// A whole profile, as `--security-opt seccomp=PROFILE.json` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// The architectures the filter admits (the OCI spec's field; Docker profiles
    /// have `archMap` instead, which ferry reads as "this machine's").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

impl Condition {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty()
    }
}

impl Profile {
    /// The profile as it applies to one container: only the rules that apply to
    /// `caps` on this architecture, without their conditions — what an engine puts
    /// in the runtime spec (`linux.seccomp`), so the runtime evaluates nothing.
    pub fn resolved_for(&self, caps: &HashSet<String>) -> Profile {
        let syscalls = self
            .syscalls
            .iter()
            .filter(|rule| rule.applies(caps))
            .map(|rule| Rule {
                includes: Condition::default(),
                excludes: Condition::default(),
                ..rule.clone()
            })
            .collect();
        Profile {
            syscalls,
            architectures: vec![crate::seccomp::this_arch_name().to_string()],
            ..self.clone()
        }
    }
}

impl Rule {
    /// Whether the rule applies to a container holding `caps` (names like `CAP_CHOWN`)
    /// on this machine's architecture.
    pub fn applies(&self, caps: &HashSet<String>) -> bool {
        let arch_ok = |arches: &[String]| arches.iter().any(|a| crate::seccomp::is_this_arch(a));
        self.includes.caps.iter().all(|cap| caps.contains(cap))
            && (self.includes.arches.is_empty() || arch_ok(&self.includes.arches))
            && !self.excludes.caps.iter().any(|cap| caps.contains(cap))
            && !(arch_ok(&self.excludes.arches))
    }
}

/// Syscalls every container may make: Docker's default allow list, as far as
/// x86_64 and aarch64 have the calls (its 32-bit names, such as `chown32`, `mmap2`
/// and the `*_time64` calls, exist on neither). What ordinary programs need, and
/// nothing that reconfigures the kernel, reaches other processes, or creates
/// namespaces. `personality`, `socket` and `clone` are allowed below, for some
/// values of their arguments only.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
    "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs",
    "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
    "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "ioprio_get", "ioprio_set", "io_setup", "io_submit", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat",
    "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedsend", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
    "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2",
    "prlimit64", "process_mrelease", "pselect6", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
    "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setxattr", "setxattrat", "shmat",
    "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "socketpair",
    "splice", "stat", "statfs", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timerfd_create", "timerfd_gettime", "timerfd_settime", "timer_getoverrun", "timer_gettime",
    "timer_settime", "times", "tkill", "truncate", "umask", "uname", "unlink", "unlinkat",
    "uretprobe", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write",
    "writev",
];

/// ptrace(2) and the process_vm_* calls, which Docker allows from Linux 4.8 on.
/// Before 4.8 a tracer could change a syscall after the filter had checked it, so
/// ptrace was a way around seccomp. The kernel's own check still applies (the
/// same user, and no capability the tracer lacks), and the pid namespace shows
/// only the container's processes. ferry needs Linux 5.11 anyway (for close_range(2)'s
/// CLOSE_RANGE_CLOEXEC), so it reads no kernel versions: the condition always holds.
pub const ALLOWED_SINCE_LINUX_4_8: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Syscalls allowed on one architecture only (Docker's `includes.arches` rules).
/// Docker's rules for 32-bit ARM, s390 and ppc64le name calls that x86_64 and
/// aarch64 do not have.
pub const ALLOWED_ON_ARCHITECTURE: &[(&str, &[&str])] = &[
    // x86's thread pointer (every x86_64 libc sets up its TLS with arch_prctl) and
    // the local descriptor table (16-bit code: Wine, DOSEMU).
    ("amd64", &["arch_prctl", "modify_ldt"]),
];

/// Syscalls allowed only to a container that holds a capability (Docker's
/// `includes.caps` rules): with the capability, the kernel's own check decides.
/// A call may come under two capabilities (`bpf`: CAP_SYS_ADMIN or CAP_BPF).
#[rustfmt::skip]
pub const ALLOWED_WITH_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    // Mounts, namespaces, names, quotas, kernel tracing. pivot_root is not here:
    // Docker does not allow it even with CAP_SYS_ADMIN.
    ("CAP_SYS_ADMIN", &["bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
        "fsopen", "fspick", "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules",
        "lsm_set_self_attr", "mount", "mount_setattr", "move_mount", "open_tree",
        "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
        "syslog", "umount2", "unshare"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    // Reaching into another process: its memory, its descriptors (pidfd_getfd), its
    // paging (process_madvise), comparing its kernel objects (kcmp).
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
        "process_vm_writev", "ptrace"]),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    // NUMA memory placement, which reaches memory nodes the host's other work uses.
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// The personas personality(2) may set (argument 0), Docker's list. The others
/// switch off protections of the process's own memory: `ADDR_NO_RANDOMIZE`
/// (0x0040000) turns off address randomisation, `READ_IMPLIES_EXEC` makes readable
/// memory executable, `MMAP_PAGE_ZERO` maps page 0; kernel exploits have used them
/// to get a predictable address or a page at NULL.
pub const PERSONAS: &[u64] = &[
    0x0000_0000, // PER_LINUX: the usual persona
    0x0000_0008, // PER_LINUX32: `uname -m` says i686 (linux32(1), 32-bit builds)
    0x0002_0000, // UNAME26: the kernel calls itself 2.6, for old programs
    0x0002_0008, // PER_LINUX32 | UNAME26
    0xffff_ffff, // sets nothing: asks for the current persona
];

/// Socket families no container may open (socket(2), argument 0), Docker's two.
/// Sorted: the rules that allow socket(2) cover the gaps between them.
pub const REFUSED_SOCKET_FAMILIES: &[u64] = &[
    // AF_ALG (38): the kernel's crypto API as sockets. Few programs use it, and its
    // code has given local root more than once.
    libc::AF_ALG as u64,
    // AF_VSOCK (40): sockets between a virtual machine and its host. They ignore
    // network namespaces: on a VM, a container would talk to the hypervisor.
    libc::AF_VSOCK as u64,
];

/// The namespace flags of clone(2): a container without CAP_SYS_ADMIN may clone,
/// but not into new namespaces (argument 0 masked with these must be 0).
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// ferry's default profile, built from the tables above.
pub fn default_profile() -> Profile {
    let mut syscalls = vec![allow(ALLOWED), allow(ALLOWED_SINCE_LINUX_4_8)];
    for (arch, names) in ALLOWED_ON_ARCHITECTURE {
        let includes = Condition {
            arches: vec![arch.to_string()],
            ..Condition::default()
        };
        syscalls.push(Rule {
            includes,
            ..allow(names)
        });
    }
    for (cap, names) in ALLOWED_WITH_CAPABILITY {
        syscalls.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    // Rules that name the same call are alternatives: any one of them allows it.
    for persona in PERSONAS {
        let args = vec![arg(0, Op::Eq, *persona)];
        syscalls.push(Rule {
            args,
            ..allow(&["personality"])
        });
    }
    for args in all_but(0, REFUSED_SOCKET_FAMILIES) {
        syscalls.push(Rule {
            args,
            ..allow(&["socket"])
        });
    }
    // clone(2) into no new namespace; with CAP_SYS_ADMIN any clone (in its list).
    let no_namespaces = Arg {
        index: 0,
        value: CLONE_NAMESPACE_FLAGS,
        value_two: 0,
        op: Op::MaskedEq,
    };
    syscalls.push(Rule {
        args: vec![no_namespaces],
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone"])
    });
    // clone3's flags live in memory a filter cannot read: answer ENOSYS so that libc
    // falls back to clone(2), whose flags the rule above checks.
    syscalls.push(Rule {
        action: Action::Errno,
        errno_ret: Some(libc::ENOSYS as u32),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone3"])
    });
    Profile {
        default_action: Action::Errno,
        default_errno_ret: Some(libc::EPERM as u32),
        architectures: Vec::new(),
        syscalls,
    }
}

/// A rule that allows `names` unconditionally.
fn allow(names: &[&str]) -> Rule {
    Rule {
        names: names.iter().map(|n| n.to_string()).collect(),
        action: Action::Allow,
        errno_ret: None,
        args: Vec::new(),
        includes: Condition::default(),
        excludes: Condition::default(),
    }
}

/// A condition on capabilities only.
fn caps(names: &[&str]) -> Condition {
    Condition {
        caps: names.iter().map(|c| c.to_string()).collect(),
        ..Condition::default()
    }
}

fn arg(index: u8, op: Op, value: u64) -> Arg {
    Arg {
        index,
        value,
        value_two: 0,
        op,
    }
}

/// The conditions of the rules that allow every value of argument `index` except
/// the `refused` ones (sorted): one rule below the first, one for each gap between
/// two, one above the last. All the conditions of a rule must hold.
fn all_but(index: u8, refused: &[u64]) -> Vec<Vec<Arg>> {
    let Some((&first, _)) = refused.split_first() else {
        return vec![Vec::new()];
    };
    let mut ranges = vec![vec![arg(index, Op::Lt, first)]];
    for pair in refused.windows(2) {
        let (low, high) = (pair[0], pair[1]);
        if high > low + 1 {
            ranges.push(vec![arg(index, Op::Gt, low), arg(index, Op::Lt, high)]);
        }
    }
    let last = refused[refused.len() - 1];
    ranges.push(vec![arg(index, Op::Gt, last)]);
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules of the default profile that name `syscall` and apply with `caps`.
    fn rules_for(syscall: &str, caps: &[&str]) -> Vec<Rule> {
        let caps: HashSet<String> = caps.iter().map(|c| c.to_string()).collect();
        default_profile()
            .syscalls
            .into_iter()
            .filter(|rule| rule.names.iter().any(|n| n == syscall) && rule.applies(&caps))
            .collect()
    }

    #[test]
    fn refused_socket_families_fall_between_the_allowed_ranges() {
        assert_eq!(
            all_but(0, &[38, 40]),
            [
                vec![arg(0, Op::Lt, 38)],
                vec![arg(0, Op::Gt, 38), arg(0, Op::Lt, 40)],
                vec![arg(0, Op::Gt, 40)],
            ]
        );
        assert_eq!(
            all_but(1, &[3, 4]),
            [vec![arg(1, Op::Lt, 3)], vec![arg(1, Op::Gt, 4)]]
        );
        assert_eq!(all_but(0, &[]), [Vec::<Arg>::new()]);
        assert!(REFUSED_SOCKET_FAMILIES.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn calls_with_conditions_are_never_allowed_outright() {
        for syscall in ["personality", "socket", "clone"] {
            let rules = rules_for(syscall, &[]);
            assert!(!rules.is_empty(), "{syscall} has no rule");
            assert!(
                rules.iter().all(|rule| !rule.args.is_empty()),
                "{syscall} is allowed without conditions: {rules:?}"
            );
        }
    }

    #[test]
    fn reaching_into_other_processes_needs_cap_sys_ptrace() {
        for syscall in ["pidfd_getfd", "kcmp", "process_madvise"] {
            assert!(
                rules_for(syscall, &[]).is_empty(),
                "{syscall} is allowed to all"
            );
            assert!(
                !rules_for(syscall, &["CAP_SYS_PTRACE"]).is_empty(),
                "{syscall}"
            );
        }
        assert!(rules_for("pivot_root", &["CAP_SYS_ADMIN"]).is_empty());
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn every_name_in_the_tables_is_a_syscall_of_x86_64() {
        let lists = [ALLOWED, ALLOWED_SINCE_LINUX_4_8]
            .into_iter()
            .chain(ALLOWED_ON_ARCHITECTURE.iter().map(|(_, names)| *names))
            .chain(ALLOWED_WITH_CAPABILITY.iter().map(|(_, names)| *names));
        for name in lists.flatten() {
            assert!(
                crate::seccomp::syscalls::number(name).is_some(),
                "{name} is not a syscall (a typo, or missing from seccomp::syscalls)"
            );
        }
    }
}
