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

pub mod child;
pub mod sync;

use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::config::ContainerConfig;
use crate::env::EnvError;
use crate::errors::EXIT_ENGINE_FAILED;
use crate::state::{StateDir, StateError};
use crate::{process, rootfs, signals, sys};

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
            RunError::Sys { source: nix::Error::EPERM, .. } => Some(
                "creating namespaces needs root: run with sudo (see chapters/setup.md)".into(),
            ),
            _ => None,
        }
    }
}

/// Runs the container described by `config` to its end; returns its exit code.
pub fn run(config: &ContainerConfig) -> Result<i32, RunError> {
    let sys_error = |step| move |source| RunError::Sys { step, source };

    let state = StateDir::create(config)?;
    let blocked = signals::block().map_err(sys_error("block signals"))?;
    let (mut parent_ends, mut child_ends) =
        sync::channel().map_err(sys_error("create the sync pipes"))?;

    let namespaces = namespace_flags();
    log::debug!("creating the container's process with {namespaces:?}");
    let parent_fds = parent_ends.raw_fds();
    let mut child_main = || child::main(config, namespaces, &blocked, &mut child_ends, parent_fds);
    let pid = sys::clone_child(namespaces, &mut child_main)
        .map_err(sys_error("clone(2) the container's process"))?;
    drop(child_ends); // the child has its own copies; ours would hide its end-of-file
    let child = ChildGuard(Some(pid));
    state.write(config, Some(pid.as_raw()))?;

    // Parent-side setup goes here: cgroups (chapter 3), network (chapter 10).

    parent_ends.release().map_err(RunError::Sync)?;
    if let Some(failure) = parent_ends.wait_for_exec().map_err(RunError::Sync)? {
        child.reap();
        return Err(RunError::Child {
            exit_code: failure.exit_code,
            message: failure.message,
        });
    }
    log::debug!("the container's command is running as pid {pid}");
    let status =
        signals::wait_forwarding(pid, &blocked).map_err(sys_error("wait for the container"))?;
    child.disarm();
    Ok(process::exit_code(status))
}

/// The namespaces the container's process is created in. Each chapter adds its
/// own: the mount namespace (chapter 1); uts, pid, ipc, net (chapter 2).
fn namespace_flags() -> CloneFlags {
    rootfs::mount_namespace()
}

/// Kills and reaps the child unless it was waited for: no process outlives a
/// failed `run`.
struct ChildGuard(Option<Pid>);

impl ChildGuard {
    fn reap(mut self) {
        if let Some(pid) = self.0.take() {
            let _ = waitpid(pid, None);
        }
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
