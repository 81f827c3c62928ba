//! `exec`: a new process in a running container, as `runc exec` makes one.
//!
//! The container's namespaces already exist: the new process joins them with
//! setns(2) on a pidfd of the container's first process (one call for all of
//! them, Linux 5.8) instead of creating them, enters its cgroups, and is then
//! restricted exactly as the first process was (`privileges::restrict_process`);
//! its mounts — masked paths, read-only /sys, sealed devices — are the mount
//! namespace's, so it has them already.
//!
//! ```text
//! ferry exec (runtime)          helper (host's PID namespace)     the command
//! ────────────────────          ─────────────────────────────     ───────────
//! pidfd of PID 1, checked
//! fork ──────────────────────►  forgets the caller; waits
//! cgroups: the helper joins
//! Release ───────────────────►  setns(pidfd, mnt|uts|ipc|net|cgroup|pid)
//!                               fork ───────────────────────────► (in the container's
//!                               waits, forwarding signals          PID namespace)
//!                                                                 session, cwd, restrict
//!          ◄──────────────────────────────── Exec, end-of-file ── execve(2)
//! waits for the helper: the command's exit code
//! ```
//!
//! Two forks, because setns(2) of a PID namespace changes only where the caller's
//! *children* are born. The helper stays outside the container's PID namespace, so
//! no process in the container can see it; the command's own pre-exec self is
//! non-dumpable (`caller::forget_the_caller`), so /proc/PID/exe cannot lead a
//! container process to ferry's binary (CVE-2019-5736).

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid};

use super::plan::Plan;
use super::spec::{Process, Spec};
use super::state::{State, Status};
use super::sync::{self, ChildEnds, ChildFailure, Event, FromChild, ToChild};
use super::{caller, Exit, RuntimeError};
use crate::errors::{self, EXIT_ENGINE_FAILED};
use crate::privileges::PrivilegeError;
use crate::safe_path::{Kind, Root};
use crate::{cgroups, env, process, signals, sys, terminal};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use std::os::fd::OwnedFd;

/// What `exec` runs: the process (its args, env, cwd, user, capabilities,
/// no_new_privs, as the spec's `process`), and whether to wait for it.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The command's settings; `process.terminal` gives it a pty of the
    /// container's (its master comes back in [`Exec::console`]).
    pub process: Process,
    /// Return once the command runs, without waiting for it (`exec -d`).
    pub detach: bool,
    /// Detached, the command is left to whoever reaps the caller's orphans — a
    /// subreaper such as podman's conmon, which waits for it (`ferry runtime exec
    /// --detach`, chapter 12) — instead of to a helper of ferry's.
    pub leave_to_caller: bool,
    /// `--preserve-fds N`: the command inherits descriptors 3 to 3+N-1 of the
    /// caller's (chapter 12).
    pub preserve_fds: u32,
}

/// How an exec went: the command's exit, or (detached) that it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecOutcome {
    Exited(Exit),
    Detached,
}

/// A command started in a container: `wait` for it; with a terminal, its pty's
/// master is `console` (the caller relays it to a person).
pub struct Exec {
    helper: Pid,
    detach: bool,
    /// The command's host pid, once it runs.
    pub command: Option<Pid>,
    blocked: signals::BlockedSignals,
    pub console: Option<OwnedFd>,
}

/// Runs `request` in the running container whose directory (bundle and state) is
/// `dir`, and waits for it.
pub fn exec(dir: &Path, request: &ExecRequest) -> Result<ExecOutcome, RuntimeError> {
    start(dir, request)?.wait()
}

/// Starts `request` in the running container whose directory is `dir`: returns
/// once the command runs (or why it does not).
pub fn start(dir: &Path, request: &ExecRequest) -> Result<Exec, RuntimeError> {
    let sys_error = |step| move |source| RuntimeError::Sys { step, source };
    let state = State::load(dir)?;
    let (Status::Running, Some(pid)) = (state.status, state.pid) else {
        return Err(RuntimeError::WrongStatus {
            status: state.status,
            action: "exec'd into (it does not run)",
        });
    };
    let spec = read_spec(dir)?;
    let mut exec_spec = spec.clone();
    exec_spec.process = request.process.clone();
    // The terminal is exec's own business (below), not the plan's.
    exec_spec.process.terminal = false;
    let plan = Plan::from_spec(&exec_spec, dir, &state.id, false)?;

    // The pidfd names the process itself; the start time says it is still the
    // container's (a pid can be reused, the pidfd then refers to the new one).
    let pid = Pid::from_raw(pid);
    let pidfd =
        sys::pidfd_open(pid).map_err(sys_error("open a pidfd for the container's process"))?;
    if state.pid_start_time.is_some()
        && super::state::process_start_time(pid.as_raw()) != state.pid_start_time
    {
        return Err(RuntimeError::WrongStatus {
            status: Status::Stopped,
            action: "exec'd into (its process is gone)",
        });
    }
    sys::ensure_single_threaded()
        .map_err(sys_error("check that the runtime is single-threaded"))?;
    let blocked = signals::block().map_err(sys_error("block signals"))?;
    let mut signal_fd = SignalFd::with_flags(&blocked.waited, SfdFlags::SFD_CLOEXEC)
        .map_err(sys_error("create a signalfd"))?;
    let (mut parent_ends, mut child_ends) =
        sync::channel().map_err(sys_error("create the sync pipes"))?;
    let parent_fds = parent_ends.raw_fds();
    // The console socket: the command sends its pty's master through it.
    let console = if request.process.terminal {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(sys_error("create the console socket"))?;
        Some((ours, theirs))
    } else {
        None
    };
    let child_console = console.as_ref().map(|(_, theirs)| theirs.as_fd());

    let helper = match sys::fork().map_err(sys_error("fork(2) the exec helper"))? {
        ForkResult::Child => {
            let code = helper_main(
                &plan,
                pidfd.as_fd(),
                &preserved_fds(request.preserve_fds),
                HelperEnd::of(request),
                &blocked,
                &parent_fds,
                child_console,
                &mut child_ends,
            );
            std::process::exit(code);
        }
        ForkResult::Parent { child } => child,
    };
    drop(child_ends);
    let ours = console.map(|(ours, _theirs)| ours); // theirs is closed here: the helper has it
    let mut exec = Exec {
        helper,
        command: None,
        detach: request.detach,
        blocked,
        console: None,
    };
    let result = (|| {
        cgroups::join_those_of(pid, helper)?;
        parent_ends
            .send(ToChild::Release)
            .map_err(RuntimeError::Sync)?;
        match parent_ends
            .next_event(&mut signal_fd)
            .map_err(RuntimeError::Sync)?
        {
            Event::Running => exec.command = only_child(helper),
            Event::Failed(failure) => {
                return Err(RuntimeError::Child {
                    exit_code: failure.exit_code,
                    message: failure.message,
                });
            }
            Event::Interrupted(signal) => return Err(RuntimeError::Interrupted { signal }),
            Event::Died | Event::Ready => {
                return Err(RuntimeError::DiedInSetup {
                    how: "the exec helper ended before the command ran".into(),
                    oom_killed: false,
                });
            }
        }
        if let Some(ours) = &ours {
            let master =
                crate::terminal::receive_fd(ours.as_fd()).map_err(|error| RuntimeError::Child {
                    exit_code: EXIT_ENGINE_FAILED,
                    message: errors::chain(&error),
                })?;
            exec.console = Some(master);
        }
        Ok(())
    })();
    if result.is_ok() && request.detach && request.leave_to_caller {
        // The helper may go: its command is reparented to the caller's subreaper.
        let _ = parent_ends.send(ToChild::Start);
        let _ = waitpid(helper, None);
    }
    match result {
        Ok(()) => Ok(exec),
        // The command said why it cannot run and ended: its helper reaps it and
        // ends too (killing the helper first would orphan the command's zombie).
        Err(error @ RuntimeError::Child { .. }) if exec.console.is_none() => {
            let _ = waitpid(helper, None);
            Err(error)
        }
        Err(error) => {
            let _ = nix::sys::signal::kill(helper, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(helper, None);
            Err(error)
        }
    }
}

impl Exec {
    /// A pidfd that polls readable when the command has ended (its helper has),
    /// for a caller that relays its terminal: the pty can outlive the command
    /// when a child of the command keeps it open.
    pub fn ended(&self) -> Result<OwnedFd, RuntimeError> {
        sys::pidfd_open(self.helper).map_err(|source| RuntimeError::Sys {
            step: "open a pidfd for the exec helper",
            source,
        })
    }

    /// Waits for the command (passing on the signals this process gets); a
    /// detached one only for its helper, which leaves at once.
    pub fn wait(self) -> Result<ExecOutcome, RuntimeError> {
        if self.detach {
            return Ok(ExecOutcome::Detached); // the helper waits for it, alone
        }
        let status = signals::wait_forwarding(self.helper, &self.blocked).map_err(|source| {
            RuntimeError::Sys {
                step: "wait for the exec'd command",
                source,
            }
        })?;
        Ok(ExecOutcome::Exited(Exit {
            code: process::exit_code(status),
            oom_kills: 0,
        }))
    }
}

/// The one child of `parent` (/proc/PID/task/PID/children, see proc(5)).
fn only_child(parent: Pid) -> Option<Pid> {
    let text = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    text.split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .map(Pid::from_raw)
}

/// The container's spec, from its bundle.
fn read_spec(dir: &Path) -> Result<Spec, RuntimeError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|source| {
        RuntimeError::State(super::state::StateError::Read {
            path: path.clone(),
            source,
        })
    })?;
    serde_json::from_str(&text)
        .map_err(|source| RuntimeError::State(super::state::StateError::Parse { path, source }))
}

/// How the exec helper ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelperEnd {
    /// It waits for the command, and so does the runtime (`exec`).
    Wait,
    /// It waits for the command alone, after the runtime returned (`exec -d`).
    OutliveTheRuntime,
    /// It leaves once the command runs, to the caller's subreaper (chapter 12).
    Leave,
}

impl HelperEnd {
    fn of(request: &ExecRequest) -> HelperEnd {
        match (request.detach, request.leave_to_caller) {
            (false, _) => HelperEnd::Wait,
            (true, false) => HelperEnd::OutliveTheRuntime,
            (true, true) => HelperEnd::Leave,
        }
    }
}

/// The helper: joins the container's namespaces, forks the command into its PID
/// namespace and waits for it (or, detached, leaves it). Returns its exit code.
#[allow(clippy::too_many_arguments)]
fn helper_main(
    plan: &Plan,
    pidfd: BorrowedFd<'_>,
    preserved: &[std::os::fd::RawFd],
    end: HelperEnd,
    blocked: &signals::BlockedSignals,
    parent_fds: &[std::os::fd::RawFd],
    console: Option<BorrowedFd<'_>>,
    ends: &mut ChildEnds,
) -> i32 {
    ChildEnds::close_parent_copies(parent_fds);
    let mut keep = ends.raw_fds();
    keep.push(pidfd.as_raw_fd());
    keep.extend(console.map(|fd| fd.as_raw_fd()));
    keep.extend(preserved);
    if sys::close_fds_except(&keep).is_err() {
        return EXIT_ENGINE_FAILED;
    }
    let fail = |ends: &mut ChildEnds, message: String| {
        ends.report(&ChildFailure {
            exit_code: EXIT_ENGINE_FAILED,
            message,
        });
        EXIT_ENGINE_FAILED
    };
    if let Err(error) = caller::forget_the_caller(false) {
        return fail(ends, format!("failed to forget the caller: {error}"));
    }
    match ends.wait_for(ToChild::Release) {
        Ok(true) => {}
        Ok(false) | Err(_) => return EXIT_ENGINE_FAILED,
    }
    // Every namespace the container is in: those made for it and those it joined
    // by path (the network namespace the engine made, chapter 10).
    let flags = plan
        .joined
        .iter()
        .fold(plan.namespaces, |all, (flag, _)| all | *flag);
    let joined = std::panic::catch_unwind(|| join_namespaces(pidfd, flags));
    match joined {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            return fail(
                ends,
                format!("failed to join the container's namespaces (setns(2) on a pidfd): {error}"),
            )
        }
        Err(panic) => return fail(ends, errors::describe_panic(panic.as_ref())),
    }
    let command = match sys::fork() {
        Ok(ForkResult::Child) => {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_command(plan, console, preserved, ends)
            }));
            let failure = match outcome {
                Ok(Err(failure)) => failure,
                Ok(Ok(never)) => match never {},
                Err(panic) => ChildFailure {
                    exit_code: EXIT_ENGINE_FAILED,
                    message: errors::describe_panic(panic.as_ref()),
                },
            };
            ends.report(&failure);
            std::process::exit(failure.exit_code);
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(error) => {
            return fail(
                ends,
                format!("failed to fork(2) into the container's PID namespace: {error}"),
            )
        }
    };
    // Only the command may hold the pipe to the runtime now: its end-of-file
    // after `Exec` says the command runs.
    ends.close_report();
    if end == HelperEnd::Leave {
        // Until the runtime has read the command's pid (our only child), then go.
        let _ = ends.wait_for(ToChild::Start);
        return 0;
    }
    if end == HelperEnd::OutliveTheRuntime {
        // Detached, the helper outlives ferry to reap the command: a process left
        // to whatever reaps orphans on the host would linger as a zombie inside
        // the container's PID namespace.
        let _ = nix::sys::prctl::set_pdeathsig(None);
    }
    match signals::wait_forwarding(command, blocked) {
        Ok(status) => process::exit_code(status),
        Err(_) => EXIT_ENGINE_FAILED,
    }
}

/// The descriptors `--preserve-fds N` passes on: 3 to 3+N-1.
pub fn preserved_fds(count: u32) -> Vec<std::os::fd::RawFd> {
    (0..count as std::os::fd::RawFd).map(|n| 3 + n).collect()
}

/// Joins the container's namespaces `flags` through the pidfd of its first
/// process: setns(2) with several CLONE_NEW* flags joins them all at once. The
/// PID namespace applies to the caller's children, not to the caller.
pub fn join_namespaces(pidfd: BorrowedFd<'_>, flags: CloneFlags) -> nix::Result<()> {
    // BEGIN SOLUTION ch09 "join every namespace of the container at once: setns(2) on the pidfd of its first process"
    let joinable = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWCGROUP;
    nix::sched::setns(pidfd, flags & joinable)
    // END SOLUTION
}

/// In the container's namespaces (and, forked, its PID namespace): a session,
/// the working directory, the restrictions, the program; then execve(2).
fn run_command(
    plan: &Plan,
    console: Option<BorrowedFd<'_>>,
    preserved: &[std::os::fd::RawFd],
    ends: &mut ChildEnds,
) -> Result<Infallible, ChildFailure> {
    let failure = |message: String| ChildFailure {
        exit_code: EXIT_ENGINE_FAILED,
        message,
    };
    process::new_session().map_err(|error| failure(errors::chain(&error)))?;
    if let Some(socket) = console {
        // A terminal of the container's own devpts (the mount namespace joined
        // above), its master sent out, its peer our stdin, stdout and stderr.
        let (master, peer) =
            terminal::open_console().map_err(|error| failure(errors::chain(&error)))?;
        terminal::become_terminal(peer).map_err(|error| failure(errors::chain(&error)))?;
        terminal::send_fd(socket, master.as_fd())
            .map_err(|error| failure(errors::chain(&error)))?;
    }
    // setns(2) of the mount namespace put this process at the container's root.
    let root = Root::open(Path::new("/")).map_err(|error| failure(errors::chain(&error)))?;
    let cwd = root
        .resolve_in_root(&plan.cwd, Kind::Directory)
        .map_err(|error| failure(errors::chain(&error)))?
        .ok_or_else(|| {
            failure(format!(
                "the working directory {} does not exist in the container",
                plan.cwd.display()
            ))
        })?;
    nix::unistd::fchdir(cwd.fd().as_raw_fd()).map_err(|error| {
        failure(format!(
            "failed to change into {}: {error}",
            plan.cwd.display()
        ))
    })?;
    if !plan.rlimits.is_empty() {
        super::child::set_rlimits(&plan.rlimits).map_err(|error| failure(errors::chain(&error)))?;
    }
    if let Some(mask) = plan.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    crate::privileges::restrict_process(&plan.security)
        .map_err(|error: PrivilegeError| failure(errors::chain(&error)))?;
    super::child::pass_on(preserved).map_err(|error| failure(errors::chain(&error)))?;
    let path_var = env::lookup(&plan.env, "PATH").unwrap_or(env::DEFAULT_PATH);
    let program =
        process::resolve_program(Path::new("/"), &plan.args[0], path_var).map_err(|error| {
            ChildFailure {
                exit_code: error.exit_code(),
                message: errors::chain(&error),
            }
        })?;
    signals::reset_for_exec()
        .map_err(|error| failure(format!("failed to reset the signals: {error}")))?;
    ends.send(&FromChild::Exec);
    let error = process::exec(&program, &plan.args, &plan.env);
    Err(ChildFailure {
        exit_code: error.exit_code(),
        message: errors::chain(&error),
    })
}
