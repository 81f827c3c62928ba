//! Seccomp profiles in Docker's JSON format, and ferry's default profile as data.
//!
//! A profile says what happens to each syscall: a default action, then rules that
//! name syscalls (optionally with conditions on their arguments, or only when the
//! container holds a capability) and give them another action.

use std::collections::HashSet;

use serde::Deserialize;

/// What the kernel does with a syscall (Docker's `SCMP_ACT_*` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Condition {
    #[serde(default)]
    pub caps: Vec<String>,
    #[serde(default)]
    pub arches: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub names: Vec<String>,
    pub action: Action,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<Arg>,
    #[serde(default)]
    pub includes: Condition,
    #[serde(default)]
    pub excludes: Condition,
}

/// A whole profile, as `--security-opt seccomp=PROFILE.json` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
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

/// Syscalls every container may make: in the spirit of Docker's default profile,
/// what ordinary programs need, and nothing that reconfigures the kernel, reaches
/// other processes' memory, or creates namespaces.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk", "capget",
    "capset", "chdir", "chmod", "chown", "clock_adjtime", "clock_getres", "clock_gettime",
    "clock_nanosleep", "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2",
    "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2",
    "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex",
    "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "geteuid", "getgid", "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid",
    "getppid", "getpriority", "getrandom", "getresgid", "getresuid", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
    "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents", "ioprio_get",
    "ioprio_set", "io_setup", "io_submit", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr",
    "llistxattr", "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "membarrier",
    "memfd_create", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
    "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "open",
    "openat", "openat2", "pause", "personality", "pidfd_getfd", "pidfd_open", "pidfd_send_signal",
    "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom",
    "recvmmsg", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2",
    "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
    "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority",
    "setregid", "setresgid", "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "socket", "socketpair", "splice", "stat",
    "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill",
    "truncate", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "write", "writev",
];

/// Syscalls allowed only to a container that holds a capability (Docker's
/// `includes.caps` rules): with the capability, the kernel's own check decides.
#[rustfmt::skip]
pub const ALLOWED_WITH_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_SYS_ADMIN", &["mount", "umount2", "unshare", "setns", "pivot_root", "sethostname",
        "setdomainname", "quotactl", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
        "open_tree", "clone3"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_PTRACE", &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
    ("CAP_SYS_MODULE", &["init_module", "finit_module", "delete_module"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
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
    let rule =
        |names: &[&str], action, errno_ret, args: Vec<Arg>, caps: &[&str], without: &[&str]| Rule {
            names: names.iter().map(|n| n.to_string()).collect(),
            action,
            errno_ret,
            args,
            includes: Condition {
                caps: caps.iter().map(|c| c.to_string()).collect(),
                arches: Vec::new(),
            },
            excludes: Condition {
                caps: without.iter().map(|c| c.to_string()).collect(),
                arches: Vec::new(),
            },
        };
    let mut syscalls = vec![rule(ALLOWED, Action::Allow, None, Vec::new(), &[], &[])];
    for (cap, names) in ALLOWED_WITH_CAPABILITY {
        syscalls.push(rule(names, Action::Allow, None, Vec::new(), &[cap], &[]));
    }
    // clone(2) into no new namespace; with CAP_SYS_ADMIN, any clone.
    let no_namespaces = Arg {
        index: 0,
        value: CLONE_NAMESPACE_FLAGS,
        value_two: 0,
        op: Op::MaskedEq,
    };
    syscalls.push(rule(
        &["clone"],
        Action::Allow,
        None,
        vec![no_namespaces],
        &[],
        &["CAP_SYS_ADMIN"],
    ));
    syscalls.push(rule(
        &["clone"],
        Action::Allow,
        None,
        Vec::new(),
        &["CAP_SYS_ADMIN"],
        &[],
    ));
    // clone3's flags live in memory a filter cannot read: answer ENOSYS so that libc
    // falls back to clone(2), whose flags the rule above checks.
    syscalls.push(rule(
        &["clone3"],
        Action::Errno,
        Some(libc::ENOSYS as u32),
        Vec::new(),
        &[],
        &["CAP_SYS_ADMIN"],
    ));
    Profile {
        default_action: Action::Errno,
        default_errno_ret: Some(libc::EPERM as u32),
        syscalls,
    }
}
