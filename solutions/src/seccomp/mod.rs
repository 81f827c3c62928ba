//! Seccomp: a filter on the syscalls the container may make at all.
//!
//! Chapter 4, part B (chapters/04b-hardening.md). Capabilities decide what a syscall may do;
//! seccomp decides whether it may be made. A profile (see `profile`) is compiled into
//! classic BPF that the kernel runs on every syscall; ferry uses the `seccompiler`
//! crate for the BPF and keeps the profile's tables as data. The compiled filter
//! also checks the architecture: a 32-bit `int 0x80` call on x86_64 kills the process.

pub mod profile;
pub mod syscalls;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

pub use profile::{default_profile, Action, Arg, Op, Profile, Rule};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("failed to read the seccomp profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the seccomp profile {path} is not a valid Docker seccomp profile")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("failed to compile the seccomp filter")]
    Compile(#[source] seccompiler::BackendError),
    #[error("failed to load the seccomp filter (seccomp(2))")]
    Load(#[source] nix::Error),
}

/// The rules of one filter: syscall number → conditions (empty: always).
type SyscallRules = BTreeMap<i64, Vec<SeccompRule>>;

/// Whether a profile's architecture name (`amd64`, `SCMP_ARCH_X86_64`, `arm64`,
/// ...: Docker's profiles use both spellings) names this machine's architecture.
pub fn is_this_arch(name: &str) -> bool {
    let names: &[&str] = match std::env::consts::ARCH {
        "x86_64" => &["amd64", "x86_64", "SCMP_ARCH_X86_64"],
        "aarch64" => &["arm64", "aarch64", "SCMP_ARCH_AARCH64"],
        "riscv64" => &["riscv64", "SCMP_ARCH_RISCV64"],
        _ => &[],
    };
    names.contains(&name)
}

/// This machine's architecture as libseccomp names it (`SCMP_ARCH_X86_64`).
pub fn this_arch_name() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "SCMP_ARCH_NATIVE",
    }
}

/// Reads a profile in Docker's JSON format.
pub fn read_profile(path: &Path) -> Result<Profile, SeccompError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| SeccompError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The kernel's action for a profile action (errno rules carry their errno).
fn kernel_action(action: Action, errno: Option<u32>) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno => SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32)),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
    }
}

/// Arguments the kernel reads as a 32-bit `int` from a 64-bit register, as
/// (syscall, argument index). A filter compares only their low half: the kernel
/// throws the high half away, so a filter that compared all 64 bits could be
/// fooled. `socket(0x1_0000_0028, ...)` is greater than 40 as a 64-bit number, and
/// the kernel opens family 40, AF_VSOCK. Other arguments are compared whole.
const INT_ARGUMENTS: &[(&str, u8)] = &[
    ("personality", 0), // unsigned int persona
    ("socket", 0),      // int domain (the family)
    ("socket", 1),      // int type
    ("socket", 2),      // int protocol
];

/// The argument conditions of a rule, for syscall `name`, as seccompiler expresses
/// them (all must hold).
fn conditions(name: &str, args: &[Arg]) -> Result<Vec<SeccompCondition>, SeccompError> {
    args.iter()
        .map(|arg| condition(name, arg))
        .collect::<Result<_, _>>()
        .map_err(SeccompError::Compile)
}

/// One argument condition, compared as wide as the kernel reads the argument.
fn condition(name: &str, arg: &Arg) -> Result<SeccompCondition, seccompiler::BackendError> {
    let width = if INT_ARGUMENTS.contains(&(name, arg.index)) {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    };
    let (op, value) = match arg.op {
        Op::Eq => (SeccompCmpOp::Eq, arg.value),
        Op::Ne => (SeccompCmpOp::Ne, arg.value),
        Op::Lt => (SeccompCmpOp::Lt, arg.value),
        Op::Le => (SeccompCmpOp::Le, arg.value),
        Op::Gt => (SeccompCmpOp::Gt, arg.value),
        Op::Ge => (SeccompCmpOp::Ge, arg.value),
        Op::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    SeccompCondition::new(arg.index, width, op, value)
}

/// Compiles `profile` for a container holding `caps` into the filters to load, in
/// order. A seccompiler filter has a single action for matching syscalls, so:
/// one filter for the rules that allow (mismatch: the profile's default action),
/// then one per other action (mismatch: allow). When several filters are loaded the
/// kernel applies the most restrictive answer, so the stack means what the profile
/// says. Names this architecture does not have are skipped, as runc does.
pub fn compile(profile: &Profile, caps: &HashSet<String>) -> Result<Vec<BpfProgram>, SeccompError> {
    // BEGIN SOLUTION ch04 "compile a seccomp profile into BPF filters (one per action)"
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(SeccompError::Compile)?;
    let mut by_action: BTreeMap<(u8, u32), (SeccompAction, SyscallRules)> = BTreeMap::new();
    for rule in profile.syscalls.iter().filter(|rule| rule.applies(caps)) {
        let action = kernel_action(rule.action, rule.errno_ret);
        // Group by what the kernel will answer: an errno rule without errnoRet
        // returns EPERM, the same as one that names EPERM.
        let errno = match action {
            SeccompAction::Errno(errno) => errno,
            _ => 0,
        };
        let key = (rule.action as u8, errno);
        for name in &rule.names {
            let Some(number) = syscalls::number(name) else {
                log::debug!("seccomp: no syscall {name} on this architecture");
                continue;
            };
            let conditions = conditions(name, &rule.args)?;
            let rules = &mut by_action
                .entry(key)
                .or_insert_with(|| (action.clone(), BTreeMap::new()))
                .1;
            // seccompiler reads an empty chain as "match unconditionally".
            match rules.get_mut(&number) {
                None if conditions.is_empty() => drop(rules.insert(number, Vec::new())),
                None => drop(rules.insert(
                    number,
                    vec![SeccompRule::new(conditions).map_err(SeccompError::Compile)?],
                )),
                Some(chain) if chain.is_empty() => {}
                Some(chain) if conditions.is_empty() => chain.clear(),
                Some(chain) => {
                    chain.push(SeccompRule::new(conditions).map_err(SeccompError::Compile)?)
                }
            }
        }
    }
    let default = kernel_action(profile.default_action, profile.default_errno_ret);
    let mut programs = Vec::new();
    let allow_key = (Action::Allow as u8, 0);
    let allowed = by_action
        .remove(&allow_key)
        .map(|(_, rules)| rules)
        .unwrap_or_default();
    if default != SeccompAction::Allow {
        programs.push(build(allowed, default, SeccompAction::Allow, arch)?);
    }
    for (_, (action, rules)) in by_action {
        programs.push(build(rules, SeccompAction::Allow, action, arch)?);
    }
    Ok(programs)
    // BEGIN STUB
    // crate::note::chapter_not_done(4, "privileges, part B", "no seccomp filter: every syscall is allowed");
    // Ok(Vec::new())
    // END SOLUTION
}

/// One filter: `matched` for the syscalls in `rules`, `mismatch` for the rest.
fn build(
    rules: SyscallRules,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram, SeccompError> {
    let filter =
        SeccompFilter::new(rules, mismatch, matched, arch).map_err(SeccompError::Compile)?;
    filter.try_into().map_err(SeccompError::Compile)
}

/// On x86_64, the x32 ABI reaches the same kernel with syscall numbers that have
/// bit 30 set; seccompiler's filters match exact numbers only, so one more small
/// filter answers EPERM to any such call (libseccomp, runc's, does the same).
fn x32_guard() -> Option<BpfProgram> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let statement = |code: u32, k: u32| seccompiler::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let load_nr = statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0);
    let is_x32 = seccompiler::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: 0x4000_0000,
    };
    let deny = statement(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
    );
    let allow = statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    Some(vec![load_nr, is_x32, deny, allow])
}

/// Loads the filters into the calling process (see seccomp(2)); they stay for it
/// and every process it execs or forks. Needs no_new_privs or CAP_SYS_ADMIN.
pub fn load(programs: &[BpfProgram]) -> Result<(), SeccompError> {
    if programs.is_empty() {
        return Ok(());
    }
    let guard = x32_guard();
    for program in guard.iter().chain(programs) {
        crate::sys::load_seccomp_filter(program).map_err(SeccompError::Load)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_architecture_names_are_understood() {
        if cfg!(target_arch = "x86_64") {
            assert!(is_this_arch("amd64") && is_this_arch("SCMP_ARCH_X86_64"));
            assert!(!is_this_arch("arm64") && !is_this_arch("x32"));
        }
    }

    #[test]
    fn the_default_profile_compiles_to_an_allow_filter_and_an_enosys_filter() {
        let none = HashSet::new();
        assert_eq!(compile(&default_profile(), &none).unwrap().len(), 2);
        let admin: HashSet<String> = ["CAP_SYS_ADMIN".to_string()].into();
        // With CAP_SYS_ADMIN clone3 is allowed: only the allow filter remains.
        assert_eq!(compile(&default_profile(), &admin).unwrap().len(), 1);
    }

    #[test]
    fn rules_that_answer_the_same_errno_share_a_filter() {
        let profile: Profile = serde_json::from_str(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mount"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["umount2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5},
                {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
        )
        .unwrap();
        // One EPERM filter and one ENOSYS filter; the allow rule needs none.
        assert_eq!(compile(&profile, &HashSet::new()).unwrap().len(), 2);
    }
}
