//! The skeleton of `ferry run`: the order of steps from the command line to the
//! user's program, fixed from chapter 0. Chapters fill steps in; they never reorder.
//!
//! ```text
//! parent (ferry)                              child (the container's first process)
//! ──────────────                              ─────────────────────────────────────
//! state dir, block signals, sync pipes
//! clone(2) with the namespace flags  ───────► waits on the release pipe
//! [ch03 cgroup, ch10 network]
//! release  ─────────────────────────────────► new session [ch02 cgroupns, hostname]
//!                                             rootfs: private, pivot, /proc /dev /sys
//!                                             [ch04 masks, user, caps, seccomp, fds]
//! reads the report pipe  ◄── EOF on exec ──── execve(2) the command
//! waits, forwarding signals; exit code
//! ```
//!
//! The child's half is in [`child`]; the pipes in [`sync`].

pub mod caller;
pub mod child;
pub mod sync;

use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::{self, CgroupError, ContainerCgroup};
use crate::config::ContainerConfig;
use crate::env::EnvError;
use crate::errors::EXIT_ENGINE_FAILED;
use crate::privileges::PrivilegeError;
use crate::rootfs::FileBind;
use crate::seccomp::SeccompError;
use crate::state::{StateDir, StateError};
use crate::{namespaces, process, rootfs, signals, sys};
use sync::SetupOutcome;

/// Everything `ferry run` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("rootfs {path} cannot be used")]
    RootfsMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rootfs {path} is not a directory")]
    RootfsNotDirectory { path: PathBuf },
    #[error("invalid hostname {name:?}: use 1 to 64 letters, digits, dots and dashes")]
    InvalidHostname { name: String },
    #[error("invalid {flag} {value:?}: {why}")]
    InvalidLimit {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("invalid security option {option:?}: use no-new-privileges[=true|false], seccomp=unconfined or seccomp=PROFILE.json")]
    SecurityOption { option: String },
    #[error("working directory {dir} must be an absolute path")]
    RelativeWorkdir { dir: PathBuf },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("failed to generate a container id")]
    Id {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("failed to {step}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("failed to talk to the container's process")]
    Sync(#[source] std::io::Error),
    /// The child could not start the command; it said why.
    #[error("{message}")]
    Child { exit_code: i32, message: String },
    #[error(
        "interrupted by {signal} before the command started: the container was stopped and removed"
    )]
    Interrupted { signal: Signal },
    #[error(
        "the container's process died during ferry's setup, before the command started ({how})"
    )]
    DiedInSetup { how: String, oom_killed: bool },
}

impl RunError {
    /// docker's exit code for this failure: 126/127 for a command that cannot be
    /// run, 125 for everything that is ferry's own failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Child { exit_code, .. } => *exit_code,
            _ => EXIT_ENGINE_FAILED,
        }
    }

    /// The likely cause and the chapter that explains it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RunError::RootfsMissing { .. } | RunError::RootfsNotDirectory { .. } => Some(
                "--rootfs needs a directory holding the container's files, such as an unpacked busybox (see chapters/00-process.md)".into(),
            ),
            RunError::State(_) => Some(
                "the state root needs root to write: run as root, or give --root a directory you own".into(),
            ),
            RunError::Cgroup(_) => Some(
                "cgroups need root and a mounted cgroup filesystem: `cargo xtask doctor` shows the layout (see chapters/03-cgroups.md)".into(),
            ),
            RunError::Sys { source: nix::Error::EPERM, .. } => Some(
                "creating namespaces needs root: run with sudo (see chapters/setup.md)".into(),
            ),
            RunError::DiedInSetup { oom_killed: true, .. } => Some(
                "the kernel's OOM killer struck during the setup, not in your command: the --memory limit is too small for ferry's own setup (see chapters/03-cgroups.md)".into(),
            ),
            _ => None,
        }
    }
}

/// Runs the container described by `config` to its end; returns its exit code.
pub fn run(config: &ContainerConfig) -> Result<i32, RunError> {
    let sys_error = |step| move |source| RunError::Sys { step, source };

    let state = StateDir::create(config)?;
    let flags = namespace_flags();
    let binds = engine_files(&state, config, flags)?;
    let blocked = signals::block().map_err(sys_error("block signals"))?;
    // The signals to forward, readable as a file: the wait for the child's exec
    // polls it together with the report pipe.
    let mut signal_fd = SignalFd::with_flags(&blocked.waited, SfdFlags::SFD_CLOEXEC)
        .map_err(sys_error("create a signalfd"))?;
    let (mut parent_ends, mut child_ends) =
        sync::channel().map_err(sys_error("create the sync pipes"))?;

    let cgroup = cgroups::setup(&config.cgroup, config.id.as_str())?;
    let cgroup_mounts = cgroup
        .as_ref()
        .map(|c| c.mounts_inside())
        .unwrap_or_default();
    let cloned = flags - namespaces::UNSHARED_BY_THE_CHILD;
    log::debug!("creating the container's process with {cloned:?}");
    let child_args = child::ChildArgs {
        namespaces: flags,
        cgroup_mounts: &cgroup_mounts,
        binds: &binds,
        blocked: &blocked,
        parent_fds: parent_ends.raw_fds(),
    };
    let mut child_main = || child::main(config, &child_args, &mut child_ends);
    let pid = sys::clone_child(cloned, &mut child_main)
        .map_err(sys_error("clone(2) the container's process"))?;
    drop(child_ends); // the child has its own copies; ours would hide its end-of-file
    let child = ChildGuard(Some(pid));
    state.write(config, Some(pid.as_raw()))?;

    if let Some(cgroup) = &cgroup {
        cgroup.add_process(pid)?;
    }
    // Parent-side setup for the network (chapter 10) goes here.

    if let Err(error) = parent_ends.release() {
        // The child is gone before it was released (killed from outside, say).
        return Err(match child.reap() {
            Some(exit_code) => RunError::Child {
                exit_code,
                message: format!(
                    "the container's process ended before it was started (exit code {exit_code})"
                ),
            },
            None => RunError::Sync(error),
        });
    }
    match parent_ends
        .wait_for_exec(&mut signal_fd)
        .map_err(RunError::Sync)?
    {
        SetupOutcome::Exec => {}
        SetupOutcome::Failed(failure) => {
            child.reap();
            return Err(RunError::Child {
                exit_code: failure.exit_code,
                message: failure.message,
            });
        }
        // The guard kills and reaps the child; the state directory and the
        // cgroup go as `run` returns.
        SetupOutcome::Interrupted(signal) => return Err(RunError::Interrupted { signal }),
        SetupOutcome::Died => {
            let how = child
                .reap_status()
                .map(describe_status)
                .unwrap_or_else(|| "its status is unknown".to_string());
            let oom_killed = cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
            return Err(RunError::DiedInSetup { how, oom_killed });
        }
    }
    log::debug!("the container's command is running as pid {pid}");
    let status =
        signals::wait_forwarding(pid, &blocked).map_err(sys_error("wait for the container"))?;
    child.disarm();
    if let Some(cgroup) = &cgroup {
        report_oom_kills(cgroup, config);
    }
    Ok(process::exit_code(status))
}

/// The engine's own files that the container sees over the image's: its hostname
/// in /etc/hostname when it has a UTS namespace (chapter 2). They live in the
/// container's state directory; the image is never written.
fn engine_files(
    state: &StateDir,
    config: &ContainerConfig,
    flags: CloneFlags,
) -> Result<Vec<FileBind>, RunError> {
    let mut binds = Vec::new();
    if flags.contains(CloneFlags::CLONE_NEWUTS) {
        let source = state.write_file("hostname", &format!("{}\n", config.hostname))?;
        binds.push(FileBind {
            source,
            target: namespaces::HOSTNAME_FILE,
        });
    }
    Ok(binds)
}

/// A wait status in words: "killed by SIGKILL", "exit code 3".
fn describe_status(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        WaitStatus::Exited(_, code) => format!("exit code {code}"),
        other => format!("{other:?}"),
    }
}

/// The namespaces the container gets. Each chapter adds its own: the mount
/// namespace (chapter 1); uts, pid, ipc, net and cgroup (chapter 2).
fn namespace_flags() -> CloneFlags {
    rootfs::mount_namespace() | namespaces::isolation_namespaces()
}

/// Says so when the kernel's OOM killer struck in the container: a bare exit code
/// 137 looks like any SIGKILL.
fn report_oom_kills(cgroup: &ContainerCgroup, config: &ContainerConfig) {
    let kills = cgroup.oom_kills();
    if kills > 0 {
        let limit = config
            .cgroup
            .limits
            .memory
            .map(|m| format!(" of {} MiB", m >> 20))
            .unwrap_or_default();
        eprintln!(
            "{}: the container hit its memory limit{limit}: the kernel's OOM killer killed {kills} of its processes",
            crate::ENGINE
        );
    }
}

/// Kills and reaps the child unless it was waited for: no process outlives a
/// failed `run`.
struct ChildGuard(Option<Pid>);

impl ChildGuard {
    /// Waits for the child to end; its exit code as `run` would report it.
    fn reap(self) -> Option<i32> {
        self.reap_status().map(process::exit_code)
    }

    /// Waits for the child to end; its wait status.
    fn reap_status(mut self) -> Option<WaitStatus> {
        let pid = self.0.take()?;
        waitpid(pid, None).ok()
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}
