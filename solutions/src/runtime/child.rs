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
use super::plan::{Plan, Rlimit};
use super::sync::{ChildEnds, ChildFailure, FromChild, ToChild};
use crate::cgroups::{self, CgroupError, InsideMount};
use crate::errors::{self, EXIT_ENGINE_FAILED};
use crate::namespaces::{self, NamespaceError};
use crate::privileges::{self, PrivilegeError};
use crate::process::{self, ExecError};
use crate::rootfs::{self, RootView, RootfsError};
use crate::safe_path::{Kind, Root, SafePathError};
use crate::signals::{self, BlockedSignals};
use crate::{env, init, sys, terminal};
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
    #[error("failed to join the namespace {path} (setns(2))")]
    JoinNamespace {
        path: std::path::PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("failed to wait for the runtime's start")]
    Sync(#[source] std::io::Error),
    #[error(transparent)]
    Terminal(#[from] crate::terminal::TerminalError),
    #[error(
        "failed to set {resource} (setrlimit(2)): raising a hard limit needs CAP_SYS_RESOURCE"
    )]
    Rlimit {
        resource: String,
        #[source]
        source: nix::Error,
    },
    #[error("failed to pass descriptor {fd} on to the program (--preserve-fds): is it open?")]
    PreserveFd {
        fd: RawFd,
        #[source]
        source: nix::Error,
    },
    #[error("failed to set the sysctl {key} in the container (/proc/sys)")]
    Sysctl {
        key: String,
        #[source]
        source: nix::Error,
    },
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

/// What the parent hands the child, besides the plan.
pub struct ChildArgs<'a> {
    /// The container's own cgroups to mount at /sys/fs/cgroup (chapter 3).
    pub cgroup_mounts: &'a [InsideMount],
    pub blocked: &'a BlockedSignals,
    /// The parent's ends of the sync pipes, which the child closes.
    pub parent_fds: Vec<RawFd>,
    /// With a terminal: the socket the pty's master goes out on.
    pub console: Option<std::os::fd::BorrowedFd<'a>>,
    /// `ferry runtime create` (chapter 12): the exec FIFO, open read-write, on
    /// which the process waits for `start` instead of the pipe — the runtime that
    /// created it is gone by then.
    pub exec_fifo: Option<RawFd>,
    /// `--preserve-fds N`: descriptors 3 to 3+N-1, which the program inherits.
    pub preserved_fds: Vec<RawFd>,
}

/// The child's entry point; returns the exit code only when it could not exec.
pub fn main(plan: &Plan, args: &ChildArgs, ends: &mut ChildEnds) -> isize {
    ChildEnds::close_parent_copies(&args.parent_fds);
    // Nothing the caller left open may reach the container (CVE-2024-21626).
    let mut keep = ends.raw_fds();
    keep.extend(args.console.map(|fd| std::os::fd::AsRawFd::as_raw_fd(&fd)));
    keep.extend(args.exec_fifo);
    keep.extend(&args.preserved_fds);
    if sys::close_fds_except(&keep).is_err() {
        return EXIT_ENGINE_FAILED as isize;
    }
    // Nor its environment, command line or memory; and no child outlives ferry
    // (but the one `ferry runtime create` leaves to its caller).
    if let Err(error) = caller::forget_the_caller(args.exec_fifo.is_some()) {
        ends.report(&ChildFailure {
            exit_code: EXIT_ENGINE_FAILED,
            message: errors::chain(&ChildError::Caller(error)),
        });
        return EXIT_ENGINE_FAILED as isize;
    }
    match ends.wait_for(ToChild::Release) {
        Ok(true) => {}
        // The parent is gone (or failed before releasing us): nobody to run for.
        Ok(false) | Err(_) => return EXIT_ENGINE_FAILED as isize,
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| setup_and_exec(plan, args, ends)));
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
/// namespace was created for the container: on the host it would change the
/// machine itself.
fn setup_and_exec(
    plan: &Plan,
    args: &ChildArgs,
    ends: &mut ChildEnds,
) -> Result<Infallible, ChildError> {
    for (flag, path) in &plan.joined {
        join_namespace(*flag, path)?;
    }
    let namespaces = plan.namespaces;
    process::new_session()?;
    if namespaces.contains(CloneFlags::CLONE_NEWCGROUP) {
        namespaces::enter_cgroup_namespace()?;
    }
    if let (true, Some(hostname)) = (
        namespaces.contains(CloneFlags::CLONE_NEWUTS),
        &plan.hostname,
    ) {
        namespaces::set_hostname(hostname)?;
    }
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        namespaces::bring_up_loopback()?;
    }
    // Limits while the process may still raise them (CAP_SYS_RESOURCE).
    if !plan.rlimits.is_empty() {
        set_rlimits(&plan.rlimits)?;
    }
    let entered = rootfs::enter(
        &plan.rootfs,
        plan.overlay.as_ref(),
        plan.no_pivot,
        namespaces,
        &plan.mounts,
        plan.root_owned,
    )?;
    let root = entered.view.clone();
    if root == RootView::Isolated
        && namespaces.contains(CloneFlags::CLONE_NEWCGROUP)
        && !args.cgroup_mounts.is_empty()
    {
        cgroups::mount_inside(args.cgroup_mounts)?;
    }
    // The container's /proc is mounted and still writable (harden makes
    // /proc/sys read-only below). Without a mount namespace of its own, the host's
    // /proc/sys shows the namespaces of the process that opens it: these.
    write_sysctls(&plan.sysctl)?;
    if let (true, Some(socket)) = (plan.terminal, args.console) {
        // The container's own devpts is mounted: the pty comes from it.
        let (master, peer) = terminal::open_console()?;
        terminal::become_terminal(peer)?;
        terminal::send_fd(socket, std::os::fd::AsFd::as_fd(&master))?;
    }
    enter_workdir(root.path(), &plan.cwd, entered.writable)?;
    if root == RootView::Isolated && !cwd_is_inside() {
        return Err(ChildError::WorkdirOutside {
            dir: plan.cwd.clone(),
        });
    }
    // Hardening mounts over /proc, /sys and /: only in a root of the container's own.
    if root == RootView::Isolated {
        privileges::harden(&plan.security)?;
    }
    if plan.init {
        start_init(args.blocked, ends)?;
    }
    let path_var = env::lookup(&plan.env, "PATH").unwrap_or(env::DEFAULT_PATH);
    let program = process::resolve_program(root.path(), &plan.args[0], path_var)?;
    // Created: everything is ready but the user's program (`ferry create` ends here).
    ends.send(&FromChild::Ready);
    let started = match args.exec_fifo {
        Some(fifo) => {
            // Nobody reads the pipe any more: its runtime returned after Ready.
            ends.close_report();
            wait_on_exec_fifo(fifo)?
        }
        None => ends.wait_for(ToChild::Start).map_err(ChildError::Sync)?,
    };
    if !started {
        // The runtime went away (or deleted the container) instead of starting it.
        std::process::exit(EXIT_ENGINE_FAILED);
    }
    if let Some(mask) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    pass_on(&args.preserved_fds)?;
    log::debug!("executing {}", program.display());
    // The command starts with no signal blocked or ignored, whatever ferry (Rust
    // ignores SIGPIPE) or its caller (nohup ignores SIGHUP) had.
    signals::reset_for_exec().map_err(ChildError::SignalMask)?;
    ends.send(&FromChild::Exec);
    Err(process::exec(&program, &plan.args, &plan.env).into())
}

/// Sets each of `process.rlimits` with setrlimit(2): the program and its
/// children inherit them (a fork bomb meets RLIMIT_NPROC, a leak RLIMIT_NOFILE).
pub(super) fn set_rlimits(limits: &[Rlimit]) -> Result<(), ChildError> {
    // BEGIN SOLUTION ch12 "set process.rlimits with setrlimit(2), soft and hard, before the capabilities go"
    for limit in limits {
        nix::sys::resource::setrlimit(limit.resource, limit.soft, limit.hard).map_err(
            |source| ChildError::Rlimit {
                resource: format!("{:?}", limit.resource),
                source,
            },
        )?;
    }
    Ok(())
    // END SOLUTION
}

/// Blocks until `ferry runtime start` writes a byte into the exec FIFO (`fifo`,
/// opened read-write by the runtime so that this read waits for data instead of
/// seeing end-of-file). `false` if it was closed instead.
fn wait_on_exec_fifo(fifo: RawFd) -> Result<bool, ChildError> {
    // BEGIN SOLUTION ch12 "wait before the program: read one byte from the exec FIFO that start writes"
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(fifo, &mut byte) {
            Ok(n) => return Ok(n == 1),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(source) => return Err(ChildError::Sync(source.into())),
        }
    }
    // END SOLUTION
}

/// Writes each of `linux.sysctl` under /proc/sys (the plan admits only those of
/// the container's own namespaces): `net.ipv4.ip_forward` is
/// /proc/sys/net/ipv4/ip_forward.
fn write_sysctls(entries: &[(String, String)]) -> Result<(), ChildError> {
    for (key, value) in entries {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let file = crate::sys::openat2(
            None,
            &path,
            nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS
                | nix::fcntl::ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
        let written = file.and_then(|fd| nix::unistd::write(&fd, value.as_bytes()).map(drop));
        written.map_err(|source| ChildError::Sysctl {
            key: key.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Joins the namespace at `path` (see setns(2)): a network namespace the engine
/// prepared (chapter 10), say.
fn join_namespace(flag: CloneFlags, path: &Path) -> Result<(), ChildError> {
    let error = |source| ChildError::JoinNamespace {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path)
        .map_err(|e| error(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
    nix::sched::setns(file, flag).map_err(error)
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
/// it). A missing one is created when the root is writable — an overlay, whose
/// writes land in the container's own layer, as docker does — and is an error
/// otherwise: creating it would write into the image.
fn enter_workdir(root: &Path, workdir: &Path, writable: bool) -> Result<(), ChildError> {
    let root = Root::open(root)?;
    let dir = match root.resolve_in_root(workdir, Kind::Directory)? {
        Some(dir) => dir,
        None if writable => root.create_dirs(workdir)?,
        None => {
            return Err(SafePathError::Missing {
                path: workdir.to_path_buf(),
            }
            .into())
        }
    };
    nix::unistd::fchdir(dir.fd().as_raw_fd()).map_err(|source| {
        ChildError::Rootfs(RootfsError::Chdir {
            path: workdir.to_path_buf(),
            source,
        })
    })
}

/// The preserved descriptors (`--preserve-fds`) are the program's: they survive
/// its execve(2) (chapter 4 marked every descriptor above 2 close-on-exec).
pub(crate) fn pass_on(fds: &[RawFd]) -> Result<(), ChildError> {
    for &fd in fds {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .map_err(|source| ChildError::PreserveFd { fd, source })?;
    }
    Ok(())
}
