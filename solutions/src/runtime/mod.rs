//! The runtime: one container, from a runtime spec to its end, as runc or crun do
//! it — `create`, `start`, `wait`, `kill`, `delete`. It knows nothing of images,
//! names, networks or the command line: its only input is a spec (`spec`, the OCI
//! runtime spec's shape) and the container's directory (the bundle).
//!
//! The order of steps is fixed from chapter 0 (runc's); chapters fill steps in,
//! they never reorder:
//!
//! ```text
//! parent (the runtime)                        child (the container's first process)
//! ────────────────────                        ─────────────────────────────────────
//! create: state, block signals, sync pipes
//! clone(2) with the namespace flags  ───────► forgets the caller; waits
//! [ch03 cgroup, ch10 network]
//! Release ──────────────────────────────────► new session [ch02 cgroupns, hostname]
//!                                             rootfs: mounts, pivot, /dev
//!                                             [ch04 masks, user, caps, seccomp, fds]
//!          ◄──────────────────────── Ready ── resolves the command; waits
//! start: Start ─────────────────────────────► resets signals
//!          ◄── Exec, then end-of-file ─────── execve(2) the command
//! wait: forwards signals; exit status, OOM kills
//! delete: cgroup and state removed
//! ```
//!
//! The child's half is in [`child`]; the pipes and messages in [`sync`]; the spec
//! in [`spec`], mapped to the chapters' inputs in [`plan`]; `state.json` in [`state`].

pub mod caller;
pub mod child;
pub mod exec;
pub mod hooks;
pub mod oci;
pub mod plan;
pub mod spec;
pub mod state;
pub mod sync;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::{self, CgroupError, ContainerCgroup};
use crate::privileges::PrivilegeError;
use crate::seccomp::SeccompError;
use crate::signals::{self, BlockedSignals};
use crate::{namespaces, process, sys};
use plan::{Plan, SpecError};
use spec::Spec;
use state::{State, StateError, Status};
use sync::{Event, ParentEnds, ToChild};

/// Everything the runtime can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Privilege(#[from] PrivilegeError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
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
    #[error("the container's process died during the setup, before the command started ({how})")]
    DiedInSetup { how: String, oom_killed: bool },
    #[error("the container is {status}: it cannot be {action}")]
    WrongStatus {
        status: Status,
        action: &'static str,
    },
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
    #[error("failed to {step} {path}")]
    File {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Options of the runtime itself, not of the container (runc's global and
/// `create` flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--no-pivot`: chroot after moving the root mount, instead of pivot_root.
    pub no_pivot: bool,
    /// `ferry runtime create --bundle DIR` (chapter 12): the bundle, which the
    /// state names; its root is the caller's own for this container.
    pub bundle: Option<PathBuf>,
    /// The exec FIFO to create: the container's process outlives this runtime and
    /// waits on the FIFO for `start`, which may come from another process.
    pub exec_fifo: Option<PathBuf>,
    /// `--preserve-fds N`: the program inherits descriptors 3 to 3+N-1.
    pub preserve_fds: u32,
}

/// How the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// docker's exit code: the command's own, or 128+n when signal n killed it.
    pub code: i32,
    /// How many of its processes the kernel's OOM killer killed.
    pub oom_kills: u64,
}

/// A container the runtime created: its first process exists, in its namespaces
/// and cgroup, until `delete`.
pub struct Container {
    dir: PathBuf,
    state: State,
    pid: Pid,
    /// The process's wait status, once reaped.
    reaped: Option<WaitStatus>,
    parent_ends: ParentEnds,
    signal_fd: SignalFd,
    cgroup: Option<ContainerCgroup>,
    /// Restores the caller's signal mask when the container is gone.
    blocked: BlockedSignals,
    /// With `process.terminal`: the master of the command's pty (chapter 9).
    console: Option<std::os::fd::OwnedFd>,
    /// The spec's hooks still to run: poststart at `start`, poststop at `delete`.
    hooks: spec::Hooks,
    /// Left to outlive this runtime (`leave_running`): dropping it kills nothing.
    left: bool,
}

/// Creates the container `id` described by `spec` in `dir` (its bundle and state
/// directory): its first process is set up — namespaces, cgroup, root, privileges —
/// and waits before the user's program until [`Container::start`].
pub fn create(
    id: &str,
    dir: &Path,
    spec: &Spec,
    options: &CreateOptions,
) -> Result<Container, RuntimeError> {
    let sys_error = |step| move |source| RuntimeError::Sys { step, source };
    let bundle = options.bundle.as_deref().unwrap_or(dir);
    let mut plan = Plan::from_spec(spec, bundle, id, options.no_pivot)?;
    plan.root_owned = options.bundle.is_some();
    let state = State::new(id, bundle, spec.annotations.clone());
    state.save(dir)?;
    let exec_fifo = options
        .exec_fifo
        .as_deref()
        .map(oci::make_exec_fifo)
        .transpose()?;
    let preserved_fds = exec::preserved_fds(options.preserve_fds);

    // clone(2) copies only the calling thread: a lock another thread held would
    // stay locked in the child forever (see the SAFETY comment of clone_child).
    sys::ensure_single_threaded()
        .map_err(sys_error("check that the runtime is single-threaded"))?;
    let blocked = signals::block().map_err(sys_error("block signals"))?;
    // The signals to forward, readable as a file: the waits for the child's
    // messages poll it together with the pipe.
    let signal_fd = SignalFd::with_flags(&blocked.waited, SfdFlags::SFD_CLOEXEC)
        .map_err(sys_error("create a signalfd"))?;
    let (parent_ends, mut child_ends) =
        sync::channel().map_err(sys_error("create the sync pipes"))?;
    // With a terminal, the pty's master comes out of the container on this
    // socket (runc's console socket, here the runtime's own).
    let console_socket = if plan.terminal {
        Some(
            nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .map_err(sys_error("create the console socket"))?,
        )
    } else {
        None
    };

    let cgroup = cgroups::setup(&plan.cgroup, &plan.cgroup_name)?;
    let cgroup_mounts = match (&cgroup, plan.cgroup_mount) {
        (Some(cgroup), true) => cgroup.mounts_inside(),
        _ => Vec::new(),
    };
    let cloned = plan.namespaces - namespaces::UNSHARED_BY_THE_CHILD;
    log::debug!("creating the container's process with {cloned:?}");
    let child_args = child::ChildArgs {
        cgroup_mounts: &cgroup_mounts,
        blocked: &blocked,
        parent_fds: parent_ends.raw_fds(),
        console: console_socket
            .as_ref()
            .map(|(_, theirs)| std::os::fd::AsFd::as_fd(theirs)),
        exec_fifo: exec_fifo.as_ref().map(AsRawFd::as_raw_fd),
        preserved_fds,
    };
    let mut child_main = || child::main(&plan, &child_args, &mut child_ends);
    let pid = sys::clone_child(cloned, &mut child_main)
        .map_err(sys_error("clone(2) the container's process"))?;
    drop(child_ends); // the child has its own copies; ours would hide its end-of-file
    drop(exec_fifo); // the child's copy is the FIFO's only reader now
    let console_socket = console_socket.map(|(ours, _theirs)| ours);
    let mut container = Container {
        dir: dir.to_path_buf(),
        state,
        pid,
        reaped: None,
        parent_ends,
        signal_fd,
        cgroup,
        blocked,
        console: None,
        hooks: spec.hooks.clone(),
        left: false,
    };
    container.state.pid = Some(pid.as_raw());
    container.state.pid_start_time = state::process_start_time(pid.as_raw());
    container.state.save(dir)?;
    if let Some(cgroup) = &container.cgroup {
        cgroup.add_process(pid)?;
    }
    // Parent-side setup for the network (chapter 10) goes here.
    if let Some(score) = plan.oom_score_adj {
        let path = PathBuf::from(format!("/proc/{pid}/oom_score_adj"));
        std::fs::write(&path, score.to_string()).map_err(|source| RuntimeError::File {
            step: "write the OOM score adjustment to",
            path,
            source,
        })?;
    }
    // The namespaces and cgroup exist, the root is not set up yet: the hooks of
    // that moment (a prestart hook may configure the network namespace).
    hooks::run_all("prestart", &spec.hooks.prestart, &container.state)?;
    hooks::run_all(
        "createRuntime",
        &spec.hooks.create_runtime,
        &container.state,
    )?;

    if let Err(error) = container.parent_ends.send(ToChild::Release) {
        // The child is gone before it was released (killed from outside, say).
        return Err(match container.reap() {
            Some(status) => RuntimeError::Child {
                exit_code: process::exit_code(status),
                message: format!(
                    "the container's process ended before it was started ({})",
                    describe_status(status)
                ),
            },
            None => RuntimeError::Sync(error),
        });
    }
    match container.next_event()? {
        Event::Ready => {}
        other => return Err(container.setup_failed(other)),
    }
    if let Some(socket) = &console_socket {
        // Sent before Ready, so it is waiting in the socket.
        let master =
            crate::terminal::receive_fd(std::os::fd::AsFd::as_fd(socket)).map_err(|error| {
                RuntimeError::Child {
                    exit_code: crate::errors::EXIT_ENGINE_FAILED,
                    message: crate::errors::chain(&error),
                }
            })?;
        container.console = Some(master);
    }
    container.set_status(Status::Created)?;
    Ok(container)
}

impl Container {
    /// The first process's pid on the host.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The state as `state.json` has it.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The master of the command's pty, for whoever shows it to a person (once).
    pub fn take_console(&mut self) -> Option<std::os::fd::OwnedFd> {
        self.console.take()
    }

    /// Runs the user's program: returns once it has been exec'd.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        if self.state.status != Status::Created {
            return Err(RuntimeError::WrongStatus {
                status: self.state.status,
                action: "started",
            });
        }
        self.parent_ends
            .send(ToChild::Start)
            .map_err(RuntimeError::Sync)?;
        match self.next_event()? {
            Event::Running => {}
            other => return Err(self.setup_failed(other)),
        }
        log::debug!("the container's command is running as pid {}", self.pid);
        self.set_status(Status::Running)?;
        hooks::warn_on_failure(hooks::run_all(
            "poststart",
            &self.hooks.poststart,
            &self.state,
        ));
        Ok(())
    }

    /// Leaves the created container to outlive this process (`ferry runtime
    /// create`): its process is reparented to the caller (a subreaper such as
    /// conmon) when this runtime exits; its cgroup and state stay for the later
    /// commands, which find it by its state.
    pub fn leave_running(mut self) -> State {
        self.left = true;
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.keep();
        }
        self.state.clone()
    }

    /// Waits until the container's first process ends, passing on to it the signals
    /// this process receives (SIGINT, SIGTERM, ...). Prints nothing.
    pub fn wait(&mut self) -> Result<Exit, RuntimeError> {
        let status = match self.reaped {
            Some(status) => status,
            None => {
                let status =
                    signals::wait_forwarding(self.pid, &self.blocked).map_err(|source| {
                        RuntimeError::Sys {
                            step: "wait for the container",
                            source,
                        }
                    })?;
                self.reaped = Some(status);
                status
            }
        };
        self.set_status(Status::Stopped)?;
        let oom_kills = self.cgroup.as_ref().map_or(0, |c| c.oom_kills());
        Ok(Exit {
            code: process::exit_code(status),
            oom_kills,
        })
    }

    /// Sends `signal` to the container's first process (see kill(2)).
    pub fn kill(&self, signal: Signal) -> Result<(), RuntimeError> {
        if self.reaped.is_some() {
            return Ok(());
        }
        match kill(self.pid, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(source) => Err(RuntimeError::Sys {
                step: "send the signal to the container",
                source,
            }),
        }
    }

    /// Removes the container: kills and reaps its process if it still runs, then
    /// removes its cgroup and its state file. Every step is tried; the first
    /// failure is returned.
    pub fn delete(mut self) -> Result<(), RuntimeError> {
        self.kill_and_reap();
        let cgroup = self.cgroup.take().map(ContainerCgroup::destroy);
        self.state.status = Status::Stopped;
        hooks::warn_on_failure(hooks::run_all(
            "poststop",
            &self.hooks.poststop,
            &self.state,
        ));
        let state = std::fs::remove_file(self.dir.join(state::STATE_FILE));
        cgroup.transpose()?;
        state.map_err(|source| {
            RuntimeError::State(StateError::Write {
                path: self.dir.join(state::STATE_FILE),
                source,
            })
        })
    }

    fn set_status(&mut self, status: Status) -> Result<(), RuntimeError> {
        self.state.status = status;
        Ok(self.state.save(&self.dir)?)
    }

    fn next_event(&mut self) -> Result<Event, RuntimeError> {
        self.parent_ends
            .next_event(&mut self.signal_fd)
            .map_err(RuntimeError::Sync)
    }

    /// The error for a setup that did not reach the expected message; the child
    /// is killed and reaped.
    fn setup_failed(&mut self, event: Event) -> RuntimeError {
        match event {
            Event::Failed(failure) => {
                self.reap();
                RuntimeError::Child {
                    exit_code: failure.exit_code,
                    message: failure.message,
                }
            }
            Event::Interrupted(signal) => {
                self.kill_and_reap();
                RuntimeError::Interrupted { signal }
            }
            Event::Died | Event::Ready | Event::Running => {
                let how = self
                    .reap()
                    .map(describe_status)
                    .unwrap_or_else(|| "its status is unknown".to_string());
                let oom_killed = self.cgroup.as_ref().is_some_and(|c| c.oom_kills() > 0);
                RuntimeError::DiedInSetup { how, oom_killed }
            }
        }
    }

    /// Waits for the first process to end; its wait status.
    fn reap(&mut self) -> Option<WaitStatus> {
        if self.reaped.is_none() {
            self.reaped = waitpid(self.pid, None).ok();
        }
        self.reaped
    }

    fn kill_and_reap(&mut self) {
        if self.reaped.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            self.reap();
        }
    }
}

impl Drop for Container {
    /// The safety net: a container dropped without `delete` (an error path) still
    /// leaves no process behind; its cgroup goes with `ContainerCgroup`'s own drop.
    fn drop(&mut self) {
        if !self.left {
            self.kill_and_reap();
        }
    }
}

/// A wait status in words: "killed by SIGKILL", "exit code 3".
fn describe_status(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, signal, _) => format!("killed by {signal}"),
        WaitStatus::Exited(_, code) => format!("exit code {code}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;
    use crate::rootfs::{options, KERNEL_MOUNTS};
    use std::os::unix::fs::symlink;

    /// A busybox rootfs in a temp dir and a hand-written spec for it: the runtime's
    /// library API, without the engine or the CLI.
    fn bundle(dir: &Path) -> Spec {
        let rootfs = dir.join("rootfs");
        for sub in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        symlink("busybox", rootfs.join("bin/sh")).unwrap();
        let mounts = KERNEL_MOUNTS
            .iter()
            .map(|m| spec::Mount {
                destination: m.target.into(),
                kind: Some(m.fstype.into()),
                source: Some(m.fstype.into()),
                options: options::to_words(m.flags, m.data),
            })
            .collect();
        let namespace = |kind: &str| spec::Namespace {
            kind: kind.into(),
            path: None,
        };
        let json = serde_json::json!({
            "ociVersion": spec::OCI_VERSION,
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": ["sh", "-c", "test -d /proc/1 && exit 3"],
                "env": ["PATH=/bin"],
                "cwd": "/",
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs"},
            "hostname": "lifecycle",
        });
        let mut spec: Spec = serde_json::from_value(json).unwrap();
        spec.mounts = mounts;
        spec.linux.namespaces = ["mount", "pid", "uts", "ipc"].map(namespace).to_vec();
        spec.linux.cgroups_path = Some(format!("/ferry-unit-{}/lifecycle", std::process::id()));
        spec
    }

    /// create → start → wait → delete, each step checked in the state it leaves.
    fn lifecycle(dir: &Path) -> Result<(), String> {
        let spec = bundle(dir);
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        let mut container = create("lifecycle", dir, &spec, &CreateOptions::default())
            .map_err(|e| format!("create: {}", crate::errors::chain(&e)))?;
        let loaded = State::load(dir).map_err(|e| e.to_string())?;
        check(loaded.status == Status::Created, "state.json says created")?;
        check(
            loaded.pid == Some(container.pid().as_raw()),
            "state.json has the pid",
        )?;
        container.start().map_err(|e| format!("start: {e}"))?;
        check(
            State::load(dir).map_err(|e| e.to_string())?.status == Status::Running,
            "state.json says running",
        )?;
        let exit = container.wait().map_err(|e| format!("wait: {e}"))?;
        check(
            exit.code == 3,
            &format!("the command's exit code 3, got {exit:?}"),
        )?;
        container.delete().map_err(|e| format!("delete: {e}"))?;
        check(
            !dir.join(state::STATE_FILE).exists(),
            "delete removes state.json",
        )
    }

    #[test]
    fn a_container_is_created_started_waited_for_and_deleted_through_the_library() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
            panic!("this test needs root and busybox-static (cargo xtask test sets both up)");
        }
        let dir = std::env::temp_dir().join(format!("ferry-lifecycle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let report = dir.join("report");
        // The runtime refuses to clone(2) from a multi-threaded process, and the
        // test harness runs tests on threads: the lifecycle runs in a forked child.
        // SAFETY: the child only runs the lifecycle below and leaves with _exit(2);
        // glibc's fork resets malloc's locks for the child, and nothing else it uses
        // (no stdio, no logger) can be held by another test thread.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let outcome = std::panic::catch_unwind(|| lifecycle(&dir))
                    .unwrap_or_else(|panic| Err(crate::errors::describe_panic(panic.as_ref())));
                let code = match outcome {
                    Ok(()) => 0,
                    Err(message) => {
                        let _ = std::fs::write(&report, message);
                        1
                    }
                };
                // SAFETY: _exit(2) ends the child without running the parent's
                // atexit handlers or unwinding into the test harness.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = waitpid(child, None).unwrap();
                let message = std::fs::read_to_string(&report).unwrap_or_default();
                let _ = std::fs::remove_dir_all(&dir);
                assert_eq!(status, WaitStatus::Exited(child, 0), "{message}");
            }
        }
    }
}
