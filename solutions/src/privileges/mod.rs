//! Privileges: what root inside a container may still do, cut down to what a
//! program needs.
//!
//! Chapter 4 (chapters/04-privileges.md). Namespaces hide the host; this chapter
//! takes away the means to reach it anyway: capabilities, no_new_privs, a seccomp
//! filter, masked and read-only paths, sealed devices, a non-root user, and no file
//! descriptor or terminal of the caller's left behind. The tables are data (here,
//! in `capabilities`, `paths` and `seccomp::profile`); `harden` runs the steps in
//! the one order that works.

pub mod capabilities;
pub mod paths;
pub mod user;

use std::path::PathBuf;

use caps::CapsHashSet;

use crate::seccomp::{self, Profile, SeccompError};
pub use user::User;

/// The privilege settings of a container.
#[derive(Debug, Clone)]
pub struct Security {
    /// Bounding, permitted and effective capabilities (for root).
    pub capabilities: CapsHashSet,
    /// `--security-opt no-new-privileges` (default true).
    pub no_new_privileges: bool,
    /// `None`: `seccomp=unconfined` (or `--privileged`). Resolved for this
    /// container: no rule has conditions left on capabilities or architectures.
    pub seccomp: Option<Profile>,
    /// Paths to mask (`paths::MASKED_PATHS` by default; none with `--privileged`).
    pub masked_paths: Vec<String>,
    /// Paths to make read-only (`paths::READONLY_PATHS`; none with `--privileged`).
    pub readonly_paths: Vec<String>,
    /// `--read-only`: the root filesystem cannot be written.
    pub read_only: bool,
    /// Who the command runs as (the engine resolved `--user` in the image's
    /// /etc/passwd and /etc/group); `None` stays root.
    pub user: Option<User>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("unknown capability {name:?} (names such as CHOWN or CAP_CHOWN, or ALL; see capabilities(7))")]
    UnknownCapability { name: String },
    #[error("no user matches --user {spec:?} in the container's /etc/passwd and /etc/group")]
    UnknownUser { spec: String },
    #[error("failed to change capabilities")]
    Capabilities(#[source] caps::errors::CapsError),
    #[error("failed to switch user ({step})")]
    SwitchUser {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("failed to set no_new_privs (prctl(2) PR_SET_NO_NEW_PRIVS)")]
    NoNewPrivs(#[source] nix::Error),
    #[error("failed to mount over {target}")]
    Mount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("failed to mark stray file descriptors close-on-exec (close_range(2))")]
    CloseFds(#[source] nix::Error),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Unsafe(#[from] crate::safe_path::SafePathError),
    #[error("{path} in the container is not {expected}: refusing to mask or protect paths on it")]
    NotKernelFs {
        path: PathBuf,
        expected: &'static str,
    },
}

/// Takes the container's process from root with every power to what `security`
/// allows. Returns the user it now runs as (for HOME), if `--user` was given.
///
/// Order (runc's): paths and devices while mounts are still allowed; no_new_privs;
/// the seccomp filter early only if no_new_privs is off (loading one then needs
/// CAP_SYS_ADMIN); the bounding set while CAP_SETPCAP is held; the user; the other
/// capability sets; the seccomp filter late (with no_new_privs, as late as
/// possible, so it need not allow ferry's own setup); finally every fd above
/// stderr is marked close-on-exec.
pub fn harden(security: &Security) -> Result<Option<User>, PrivilegeError> {
    // BEGIN SOLUTION ch04 "harden the container's process, each step in its place (the chapter's entry point)"
    paths::mask_paths(&security.masked_paths)?;
    paths::make_readonly(&security.readonly_paths)?;
    paths::seal_devices(security.read_only)?;
    restrict_process(security)
    // BEGIN STUB
    // crate::note::chapter_not_done(4, "privileges", "the container runs with all of root's powers");
    // Ok(None)
    // END SOLUTION
}

/// The half of `harden` that belongs to the process rather than to its mount
/// namespace: no_new_privs and seccomp, the bounding set, the user, the
/// capabilities, and no descriptor of ferry's left to the command. Chapter 9's
/// `exec` calls it for a process that joins a running container, whose mount half
/// is there already.
pub fn restrict_process(security: &Security) -> Result<Option<User>, PrivilegeError> {
    // BEGIN SOLUTION ch04 "drop the process's privileges in their order: seccomp compiled first, no_new_privs, bounding set, user, capabilities, then the filters"
    let user = security.user.clone();
    let filters = match &security.seccomp {
        Some(profile) => seccomp::compile(profile, &capabilities::names(&security.capabilities))?,
        None => Vec::new(),
    };
    if security.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(PrivilegeError::NoNewPrivs)?;
    } else {
        seccomp::load(&filters)?;
    }
    capabilities::limit_bounding_set(&security.capabilities)?;
    if let Some(user) = &user {
        user::switch_user(user)?;
    }
    let root = user.as_ref().is_none_or(|u| u.uid == 0);
    capabilities::set_capabilities(&security.capabilities, root)?;
    if security.no_new_privileges {
        seccomp::load(&filters)?;
    }
    crate::sys::close_range_cloexec(3).map_err(PrivilegeError::CloseFds)?;
    Ok(user)
    // END SOLUTION
}
