//! The container's first process, between clone(2) and execve(2).
//!
//! Everything here runs in the child, in its new namespaces. Any failure — an
//! error or a `todo!()` still waiting for the student — is reported to the parent
//! through the report pipe with its exit code; the child never falls through to
//! ferry's own code.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use nix::sched::CloneFlags;

use super::caller;
use super::sync::{ChildEnds, ChildFailure};
use crate::cgroups::{self, CgroupError, InsideMount};
use crate::config::ContainerConfig;
use crate::errors::{self, EXIT_ENGINE_FAILED};
use crate::namespaces::{self, NamespaceError, MQUEUE};
use crate::privileges::{self, PrivilegeError};
use crate::process::{self, ExecError};
use crate::rootfs::{self, FileBind, RootView, RootfsError};
use crate::safe_path::{Kind, Root, SafePathError};
use crate::signals::{self, BlockedSignals};
use crate::{env, init, sys};
use nix::unistd::ForkResult;

/// A step of the child's setup that failed.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error("failed to reset the signal mask and dispositions for the command")]
    SignalMask(#[source] nix::Error),
    #[error("failed to hide the caller from the container (prctl(2))")]
    Caller(#[source] nix::Error),
    #[error(transparent)]
    Unsafe(#[from] crate::safe_path::SafePathError),
    #[error("the working directory {dir} leads outside the container's root")]
    WorkdirOutside { dir: std::path::PathBuf },
    #[error("failed to fork the command under --init")]
    Fork(#[source] nix::Error),
}

impl ChildError {
    fn exit_code(&self) -> i32 {
        match self {
            ChildError::Exec(error) => error.exit_code(),
            _ => EXIT_ENGINE_FAILED,
        }
    }

    fn message(&self) -> String {
        let mut message = errors::chain(self);
        let hint = match self {
            ChildError::Rootfs(error) => error.hint(),
            ChildError::Unsafe(error) => error.hint(),
            ChildError::Privilege(PrivilegeError::Unsafe(error)) => error.hint(),
            _ => None,
        };
        if let Some(hint) = hint {
            message.push_str(&format!("\n{}: hint: {hint}", crate::ENGINE));
        }
        message
    }
}

/// What the parent hands the child, besides the config.
pub struct ChildArgs<'a> {
    pub namespaces: CloneFlags,
    pub cgroup_mounts: &'a [InsideMount],
    /// The engine's files bound over the image's (`/etc/hostname`).
    pub binds: &'a [FileBind],
    pub blocked: &'a BlockedSignals,
    /// The parent's ends of the sync pipes, which the child closes.
    pub parent_fds: Vec<RawFd>,
}

/// The child's entry point; returns the exit code only when it could not exec.
pub fn main(config: &ContainerConfig, args: &ChildArgs, ends: &mut ChildEnds) -> isize {
    ChildEnds::close_parent_copies(&args.parent_fds);
    // Nothing the caller left open may reach the container (CVE-2024-21626).
    if sys::close_fds_except(&ends.raw_fds()).is_err() {
        return EXIT_ENGINE_FAILED as isize;
    }
    // Nor its environment, command line or memory; and no child outlives ferry.
    if let Err(error) = caller::forget_the_caller() {
        ends.report(&ChildFailure {
            exit_code: EXIT_ENGINE_FAILED,
            message: errors::chain(&ChildError::Caller(error)),
        });
        return EXIT_ENGINE_FAILED as isize;
    }
    match ends.wait_for_release() {
        Ok(true) => {}
        // The parent is gone (or failed before releasing us): nobody to run for.
        Ok(false) | Err(_) => return EXIT_ENGINE_FAILED as isize,
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| setup_and_exec(config, args, ends)));
    let failure = match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(error)) => ChildFailure {
            exit_code: error.exit_code(),
            message: error.message(),
        },
        Err(panic) => ChildFailure {
            exit_code: EXIT_ENGINE_FAILED,
            message: errors::describe_panic(panic.as_ref()),
        },
    };
    ends.report(&failure);
    failure.exit_code as isize
}

/// The child's steps, in runc's order. Each namespace's step runs only when that
/// namespace was asked for: on the host it would change the machine itself.
fn setup_and_exec(
    config: &ContainerConfig,
    args: &ChildArgs,
    ends: &mut ChildEnds,
) -> Result<Infallible, ChildError> {
    let namespaces = args.namespaces;
    process::new_session()?;
    if namespaces.contains(CloneFlags::CLONE_NEWCGROUP) {
        namespaces::enter_cgroup_namespace()?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWUTS) {
        namespaces::set_hostname(&config.hostname)?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        namespaces::bring_up_loopback()?;
    }
    let root = rootfs::enter(&config.rootfs, config.no_pivot, namespaces, args.binds)?;
    if root == RootView::Isolated {
        if namespaces.contains(CloneFlags::CLONE_NEWIPC) {
            rootfs::mount_in_root(&Root::open(Path::new("/"))?, &MQUEUE)?;
        }
        if namespaces.contains(CloneFlags::CLONE_NEWCGROUP) && !args.cgroup_mounts.is_empty() {
            cgroups::mount_inside(args.cgroup_mounts)?;
        }
    }
    enter_workdir(root.path(), &config.workdir)?;
    if root == RootView::Isolated && !cwd_is_inside() {
        return Err(ChildError::WorkdirOutside {
            dir: config.workdir.clone(),
        });
    }
    let mut env = config.env.clone();
    // Hardening mounts over /proc, /sys and /: only in a root of the container's own.
    if root == RootView::Isolated {
        let user = privileges::harden(&config.security)?;
        if let Some(home) = user
            .and_then(|user| user.home)
            .filter(|_| !config.home_given)
        {
            env.retain(|pair| !pair.starts_with("HOME="));
            env.push(format!("HOME={home}"));
        }
    }
    if config.init {
        start_init(args.blocked, ends)?;
    }
    let path_var = env::lookup(&env, "PATH").unwrap_or(env::DEFAULT_PATH);
    let program = process::resolve_program(root.path(), &config.argv[0], path_var)?;
    log::debug!("executing {}", program.display());
    // The command starts with no signal blocked or ignored, whatever ferry (Rust
    // ignores SIGPIPE) or its caller (nohup ignores SIGHUP) had.
    signals::reset_for_exec().map_err(ChildError::SignalMask)?;
    ends.about_to_exec();
    Err(process::exec(&program, &config.argv, &env).into())
}

/// `--init`: forks; the child returns to exec the command, the parent stays as
/// PID 1 (see `init`) and exits with the command's status without returning.
fn start_init(blocked: &BlockedSignals, ends: &mut ChildEnds) -> Result<(), ChildError> {
    match sys::fork().map_err(ChildError::Fork)? {
        ForkResult::Child => Ok(()),
        ForkResult::Parent { child } => {
            ends.close_report();
            // The report pipe is closed now: a stub's panic is told on stderr.
            let supervised = catch_unwind(AssertUnwindSafe(|| init::supervise(child, blocked)));
            let code = supervised.unwrap_or_else(|panic| {
                eprintln!(
                    "{}: error: {}",
                    crate::ENGINE,
                    errors::describe_panic(panic.as_ref())
                );
                EXIT_ENGINE_FAILED
            });
            std::process::exit(code)
        }
    }
}

/// Whether the current directory is under the process's root: getcwd(3) says
/// "(unreachable)" (or fails) for a directory outside it.
fn cwd_is_inside() -> bool {
    std::env::current_dir().is_ok_and(|dir| dir.is_absolute() && !dir.starts_with("(unreachable)"))
}

/// Changes into the working directory, resolved inside the root (symlinks stay in
/// it). A missing one is an error: creating it would write into the image (from
/// chapter 5 it is created in the container's own layer, as docker does).
fn enter_workdir(root: &Path, workdir: &Path) -> Result<(), ChildError> {
    let dir = Root::open(root)?
        .resolve_in_root(workdir, Kind::Directory)?
        .ok_or_else(|| SafePathError::Missing {
            path: workdir.to_path_buf(),
        })?;
    nix::unistd::fchdir(dir.fd().as_raw_fd()).map_err(|source| {
        ChildError::Rootfs(RootfsError::Chdir {
            path: workdir.to_path_buf(),
            source,
        })
    })
}
