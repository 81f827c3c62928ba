//! What a hardened container must refuse, tried one call at a time. Each is harmless when the
//! protection is missing: it only affects the probe itself, or a child it forks.
//!
//! * `int80`: a 32-bit system call from a 64-bit process, which a seccomp filter that does not
//!   check the architecture lets through. A filter that does may kill the probe with SIGSYS.
//! * `keyctl`: the kernel keyring, which Docker's seccomp profile denies (EPERM).
//! * `unshare-user`: a new user namespace, denied by seccomp or by a chroot (EPERM).
//! * `tiocsti`: typing into the terminal, the classic escape through a shared tty.
//! * `setuid-check`: the ids of a setuid copy of the probe; under no_new_privs the effective uid
//!   stays the caller's.
//! * `personality PERSONA`: an execution domain for the probe itself (`ADDR_NO_RANDOMIZE`, say),
//!   which Docker's profile allows only for a few personas.
//! * `socket FAMILY TYPE`: a socket, opened and closed at once (`AF_VSOCK`, `AF_ALG`: families
//!   Docker's profile refuses), with the family as a full 64-bit register.
//! * `pidfd-getfd`: a copy of the probe's own stdout through pidfd_getfd(2), which Docker's
//!   profile allows only with CAP_SYS_PTRACE.
//! * `chown PATH UID GID` and `sethostname NAME`: what capabilities allow. `sethostname` changes
//!   the UTS namespace's name: callers run it only inside a UTS namespace of its own.

use std::io::{self, IsTerminal};

use crate::json::{result_fields, Json};
use crate::sys::{self, Exit};

/// `{"arch", "result", "error"}`: on x86_64, `result` is what the i386 `getpid` answered through
/// `int 0x80` (the pid, or a negative errno) and `error` is null; elsewhere `result` is null and
/// `error` is "not x86_64".
pub fn int80() -> Json {
    let arch = std::env::consts::ARCH;
    #[cfg(target_arch = "x86_64")]
    let (result, error) = (Json::from(sys::int80_getpid()), Json::Null);
    #[cfg(not(target_arch = "x86_64"))]
    let (result, error) = (Json::Null, Json::from("not x86_64"));
    Json::object([
        ("arch", Json::from(arch)),
        ("result", result),
        ("error", error),
    ])
}

/// `{"ok", "errno", "error"}` of keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL).
pub fn keyctl() -> Json {
    Json::object(result_fields(&sys::join_session_keyring()))
}

/// `{"ok", "errno", "error"}` of unshare(CLONE_NEWUSER) in a forked child. A child killed by a
/// signal (a seccomp filter's SIGSYS) is not ok, has no errno, and `error` names the signal.
pub fn unshare_user() -> Json {
    let result = sys::unshare_user_in_child().and_then(|exit| match exit {
        Exit::Code(0) => Ok(()),
        Exit::Code(errno) => Err(io::Error::from_raw_os_error(errno)),
        Exit::Signal(signal) => Err(io::Error::other(format!(
            "the child was killed by signal {signal}"
        ))),
    });
    Json::object(result_fields(&result))
}

/// `{"ok", "errno", "error", "isatty"}` of ioctl(0, TIOCSTI, "#"): one `#` pushed into the input
/// of the terminal on stdin, where a shell would read it as the start of a comment.
///
/// Without a terminal on stdin it fails with ENOTTY; on a terminal that is not the caller's
/// controlling terminal it needs CAP_SYS_ADMIN (EPERM), and since Linux 6.2 it needs it anyway
/// when the `dev.tty.legacy_tiocsti` sysctl is 0 (EIO).
pub fn tiocsti() -> Json {
    let isatty = io::stdin().is_terminal();
    let mut fields = Vec::from(result_fields(&sys::inject_input(0, b'#')));
    fields.push(("isatty", isatty.into()));
    Json::object(fields)
}

/// `{"uid", "euid", "gid", "egid"}`.
pub fn setuid_check() -> Json {
    let ids = sys::ids();
    Json::object([
        ("uid", Json::from(ids.uid)),
        ("euid", ids.euid.into()),
        ("gid", ids.gid.into()),
        ("egid", ids.egid.into()),
    ])
}

/// `{"ok", "errno", "error"}` of chown(PATH, UID, GID) (which follows symlinks).
pub fn chown(path: &str, uid: u32, gid: u32) -> Json {
    Json::object(result_fields(&std::os::unix::fs::chown(
        path,
        Some(uid),
        Some(gid),
    )))
}

/// `{"ok", "errno", "error"}` of sethostname(NAME).
pub fn sethostname(name: &str) -> Json {
    Json::object(result_fields(&sys::set_hostname(name.as_bytes())))
}

/// `{"ok", "errno", "error", "previous", "current"}` of personality(PERSONA), then of
/// personality(0xffffffff), which reports the persona in force (`current`).
pub fn personality(persona: u64) -> Json {
    let set = sys::personality(persona);
    let current = sys::personality(0xffff_ffff).map_or(Json::Null, Json::from);
    let previous = set.as_ref().ok().map_or(Json::Null, |p| Json::from(*p));
    let mut fields = Vec::from(result_fields(&set));
    fields.extend([("previous", previous), ("current", current)]);
    Json::object(fields)
}

/// `{"ok", "errno", "error"}` of socket(FAMILY, TYPE, 0).
pub fn socket(family: u64, kind: i32) -> Json {
    Json::object(result_fields(&sys::open_socket(family, kind)))
}

/// `{"ok", "errno", "error", "step"}`: whether the probe could copy its own stdout through a
/// pidfd, and if not, which call failed (`pidfd_open` or `pidfd_getfd`).
pub fn pidfd_getfd() -> Json {
    let result = sys::own_fd_through_pidfd();
    let step = match &result {
        Ok(()) => Json::Null,
        Err((sys::PidfdStep::Open, _)) => Json::from("pidfd_open"),
        Err((sys::PidfdStep::GetFd, _)) => Json::from("pidfd_getfd"),
    };
    let mut fields = Vec::from(result_fields(&result.map_err(|(_, e)| e)));
    fields.push(("step", step));
    Json::object(fields)
}
