//! The runtime across processes, as runc is used (chapter 12): `create` returns
//! while the container's process waits, and `start`, `state`, `kill`, `pause`,
//! `delete` are later commands — other processes, which know the container only
//! by its state directory (`ROOT/ID`: `state.json`, the runtime's copy of
//! `config.json`, and while it is created, the exec FIFO).
//!
//! ```text
//! podman ─► conmon (subreaper) ─► ferry runtime create ──► exits after Ready
//!                                   └─ clone ─► container process: set up, then
//!                                               blocks reading ROOT/ID/exec.fifo
//!           ferry runtime start ──── writes one byte into exec.fifo ─┘ ► execve
//! ```
//!
//! The handshake is runc's: the process cannot wait on a pipe to its runtime,
//! since that runtime has exited; a FIFO has a name that a later `start` can open.
//! The process holds it open for reading and writing, so its read blocks until a
//! byte comes (rather than seeing end-of-file); `start` opens it for writing
//! without blocking — ENXIO then means nobody waits on it any more.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use super::plan;
use super::spec::{Resources, Spec};
use super::state::{self, State, StateError, Status};
use super::{hooks, RuntimeError};
use crate::cgroups::{self, ContainerCgroup, Layout, Version};
use crate::sys;

/// The exec FIFO's name in the container's state directory.
pub const EXEC_FIFO: &str = "exec.fifo";
/// The runtime's own copy of the bundle's `config.json`, as `create` read it.
pub const CONFIG_FILE: &str = "config.json";

/// Creates the exec FIFO at `path` (mode 0600: only root may start the
/// container) and opens it for reading and writing, close-on-exec: the
/// container's process inherits this descriptor and waits on it.
pub fn make_exec_fifo(path: &Path) -> Result<OwnedFd, RuntimeError> {
    let error = |step| {
        move |source: nix::Error| RuntimeError::File {
            step,
            path: path.to_path_buf(),
            source: source.into(),
        }
    };
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).map_err(error("create the FIFO"))?;
    // Opening a FIFO for reading and writing does not wait for a peer (fifo(7)).
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| RuntimeError::File {
            step: "open the FIFO",
            path: path.to_path_buf(),
            source,
        })
}

/// A container as a later command finds it: its state directory, its state and
/// the spec it was created with.
#[derive(Debug)]
pub struct Handle {
    pub dir: PathBuf,
    pub state: State,
    pub spec: Spec,
}

impl Handle {
    /// Loads the container whose state directory is `dir`.
    pub fn load(dir: &Path) -> Result<Handle, RuntimeError> {
        let state = State::load(dir)?;
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| StateError::Read {
            path: path.clone(),
            source,
        })?;
        let spec =
            serde_json::from_str(&text).map_err(|source| StateError::Parse { path, source })?;
        Ok(Handle {
            dir: dir.to_path_buf(),
            state,
            spec,
        })
    }

    /// The status now, and the state with it (what `ferry runtime state` prints).
    pub fn current_state(&self) -> State {
        let mut state = self.state.clone();
        state.status = current_status(&self.state, self.frozen());
        if state.status == Status::Stopped {
            state.pid = None;
        }
        state
    }

    /// Runs the user's program of a created container: the byte on the exec FIFO.
    pub fn start(&mut self) -> Result<(), RuntimeError> {
        let status = self.current_state().status;
        if status != Status::Created {
            return Err(RuntimeError::WrongStatus {
                status,
                action: "started (only a created container can be)",
            });
        }
        release_through_fifo(&self.dir.join(EXEC_FIFO))?;
        self.state.status = Status::Running;
        self.state.save(&self.dir)?;
        hooks::warn_on_failure(hooks::run_all(
            "poststart",
            &self.spec.hooks.poststart,
            &self.state,
        ));
        Ok(())
    }

    /// Sends `signal` to the container's first process, or with `all` to every
    /// process in its cgroup. A stopped container cannot be signalled.
    pub fn kill(&self, signal: Signal, all: bool) -> Result<(), RuntimeError> {
        let status = self.current_state().status;
        if status == Status::Stopped {
            return Err(RuntimeError::WrongStatus {
                status,
                action: "signalled",
            });
        }
        if all {
            return signal_all(&self.pids()?, signal);
        }
        let pid = Pid::from_raw(self.state.pid.unwrap_or_default());
        let pidfd = sys::pidfd_open(pid).map_err(|source| RuntimeError::Sys {
            step: "open a pidfd for the container's process",
            source,
        })?;
        // Checked after the pidfd is open: the pidfd then names this process even if
        // it ends now and its pid is reused.
        if state::process_start_time(pid.as_raw()) != self.state.pid_start_time {
            return Err(RuntimeError::WrongStatus {
                status: Status::Stopped,
                action: "signalled",
            });
        }
        sys::pidfd_send_signal(pidfd.as_fd(), signal).map_err(|source| RuntimeError::Sys {
            step: "send the signal (pidfd_send_signal(2))",
            source,
        })
    }

    /// The host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, RuntimeError> {
        let cgroup = self.cgroup()?;
        let mut pids: Vec<i32> = cgroup
            .dirs
            .iter()
            .flat_map(|dir| {
                std::fs::read_to_string(dir.path.join("cgroup.procs"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|pid| pid.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        cgroup.keep();
        Ok(pids)
    }

    /// Freezes (`pause`) or thaws (`resume`) every process of the container.
    pub fn set_frozen(&mut self, frozen: bool) -> Result<(), RuntimeError> {
        let status = self.current_state().status;
        let wanted = if frozen {
            Status::Running
        } else {
            Status::Paused
        };
        if status != wanted {
            return Err(RuntimeError::WrongStatus {
                status,
                action: if frozen {
                    "paused (it does not run)"
                } else {
                    "resumed (it is not paused)"
                },
            });
        }
        let cgroup = self.cgroup()?;
        let result = freeze(&cgroup, frozen);
        cgroup.keep();
        result?;
        self.state.status = if frozen {
            Status::Paused
        } else {
            Status::Running
        };
        Ok(self.state.save(&self.dir)?)
    }

    /// Applies new limits to the running container (`update --resources`) and
    /// keeps them in its spec.
    pub fn update(&mut self, resources: Resources) -> Result<(), RuntimeError> {
        let mut spec = self.spec.clone();
        let mut merged = spec.linux.resources.clone().unwrap_or_default();
        if resources.memory.is_some() {
            merged.memory = resources.memory;
        }
        if resources.pids.is_some() {
            merged.pids = resources.pids;
        }
        if resources.cpu.is_some() {
            merged.cpu = resources.cpu;
        }
        if !resources.devices.is_empty() {
            merged.devices = resources.devices;
        }
        spec.linux.resources = Some(merged);
        let (config, _) = plan::cgroup(&spec.linux, &self.state.id)?;
        let cgroup = self.cgroup()?;
        let applied = cgroup.apply(&config.limits);
        cgroup.keep();
        applied?;
        let path = self.dir.join(CONFIG_FILE);
        state::write_atomically(&path, spec.to_json().as_bytes())
            .map_err(|source| StateError::Write { path, source })?;
        self.spec = spec;
        Ok(())
    }

    /// Removes the container: with `force` it is killed first (a running or paused
    /// one); a created one is removed without. Its processes, cgroup and state
    /// directory go; the poststop hooks run.
    pub fn delete(self, force: bool) -> Result<(), RuntimeError> {
        let status = self.current_state().status;
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(RuntimeError::WrongStatus {
                status,
                action: "deleted without --force (stop it first)",
            });
        }
        let cgroup = self.cgroup()?;
        if status == Status::Paused {
            // A frozen process does not die of SIGKILL until it is thawed.
            let _ = freeze(&cgroup, false);
        }
        if status != Status::Stopped {
            let _ = self.kill(Signal::SIGKILL, false);
            self.wait_until_stopped(Duration::from_secs(5));
        }
        let removed = cgroup.destroy();
        let mut state = self.state.clone();
        state.status = Status::Stopped;
        hooks::warn_on_failure(hooks::run_all(
            "poststop",
            &self.spec.hooks.poststop,
            &state,
        ));
        std::fs::remove_dir_all(&self.dir).map_err(|source| StateError::Write {
            path: self.dir.clone(),
            source,
        })?;
        Ok(removed?)
    }

    /// Waits (polling) until the first process has ended, for at most `limit`.
    fn wait_until_stopped(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while current_status(&self.state, false) != Status::Stopped && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The container's cgroup, found again from its spec. The caller keeps it
    /// (`ContainerCgroup::keep`) or destroys it.
    fn cgroup(&self) -> Result<ContainerCgroup, RuntimeError> {
        let (config, name) = plan::cgroup(&self.spec.linux, &self.state.id)?;
        let layout = Layout::detect().map_err(cgroups::CgroupError::Detect)?;
        Ok(ContainerCgroup::create_retrying(
            &layout,
            &config.parent,
            &name,
        )?)
    }

    /// Whether the container's cgroup is frozen, read without creating anything.
    fn frozen(&self) -> bool {
        let Ok((config, name)) = plan::cgroup(&self.spec.linux, &self.state.id) else {
            return false;
        };
        let Ok(layout) = Layout::detect() else {
            return false;
        };
        let relative = Path::new(config.parent.trim_start_matches('/')).join(&name);
        layout.hierarchies.iter().any(|h| {
            let dir = h.mount.join(&relative);
            match h.version {
                Version::V1 => std::fs::read_to_string(dir.join("freezer.state"))
                    .is_ok_and(|s| s.trim() == "FROZEN"),
                Version::V2 => std::fs::read_to_string(dir.join("cgroup.freeze"))
                    .is_ok_and(|s| s.trim() == "1"),
            }
        })
    }
}

/// The status a later command sees: the recorded one, unless the process is gone
/// (its pid no longer names the process that started then, or it is a zombie:
/// it has ended, its parent has not reaped it yet) — then `stopped`; a running
/// one whose cgroup is `frozen` is `paused`.
pub fn current_status(state: &State, frozen: bool) -> Status {
    // BEGIN SOLUTION ch12 "the status a later command sees: stopped when the recorded process is gone or a zombie, paused when frozen"
    let Some(pid) = state.pid else {
        return state.status;
    };
    let same_process = state::process_start_time(pid) == state.pid_start_time;
    if !same_process || crate::process::is_zombie(pid) {
        return Status::Stopped;
    }
    match state.status {
        Status::Running | Status::Paused if frozen => Status::Paused,
        Status::Paused => Status::Running,
        other => other,
    }
    // END SOLUTION
}

/// Starts a created container's program: opens the exec FIFO for writing
/// without blocking (ENXIO: no process waits on it) and writes one byte, which
/// the waiting process reads before it execs; then removes the FIFO.
pub fn release_through_fifo(fifo: &Path) -> Result<(), RuntimeError> {
    // BEGIN SOLUTION ch12 "start: open the exec FIFO for writing without blocking, write one byte, remove the FIFO"
    let error = |source: std::io::Error| RuntimeError::File {
        step: "write the start byte into",
        path: fifo.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(error)?;
    file.write_all(b"0").map_err(error)?;
    std::fs::remove_file(fifo).map_err(error)
    // END SOLUTION
}

/// Sends `signal` to every pid of `pids` (a cgroup's: none of them can be an
/// unrelated process while the cgroup holds it).
fn signal_all(pids: &[i32], signal: Signal) -> Result<(), RuntimeError> {
    for &pid in pids {
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => {
                return Err(RuntimeError::Sys {
                    step: "send the signal to a process of the container",
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Whether the kernel says the freeze (or thaw) written to `file` is done: v1's
/// `freezer.state` reads back FROZEN (FREEZING while tasks are still on their
/// way), v2's `cgroup.events` says `frozen 1`.
fn freezer_took(file: &Path, frozen: bool) -> bool {
    if file.ends_with("freezer.state") {
        let now = std::fs::read_to_string(file).unwrap_or_default();
        now.trim() == if frozen { "FROZEN" } else { "THAWED" }
    } else {
        let events = std::fs::read_to_string(file.with_file_name("cgroup.events"));
        let wanted = if frozen { "frozen 1" } else { "frozen 0" };
        events
            .unwrap_or_default()
            .lines()
            .any(|line| line == wanted)
    }
}

/// Freezes or thaws the cgroup: `freezer.state` (v1: FROZEN or THAWED) or
/// `cgroup.freeze` (v2: 1 or 0), then waits until the kernel says it is done —
/// freezing takes a moment, while each task reaches a point where it can stop.
pub fn freeze(cgroup: &ContainerCgroup, frozen: bool) -> Result<(), RuntimeError> {
    // BEGIN SOLUTION ch12 "pause and resume: write freezer.state (v1) or cgroup.freeze (v2), and wait until it took"
    let v1 = cgroup.dirs.iter().find(|dir| {
        dir.hierarchy.version == Version::V1
            && dir.hierarchy.controllers.iter().any(|c| c == "freezer")
    });
    let v2 = cgroup
        .dirs
        .iter()
        .find(|dir| dir.hierarchy.version == Version::V2);
    let (file, value) = match (v1, v2) {
        (Some(dir), _) => (
            dir.path.join("freezer.state"),
            if frozen { "FROZEN" } else { "THAWED" },
        ),
        (None, Some(dir)) => (
            dir.path.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        ),
        (None, None) => {
            return Err(cgroups::CgroupError::NoController {
                controller: "freezer",
            }
            .into())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        std::fs::write(&file, value).map_err(|source| RuntimeError::File {
            step: "write to",
            path: file.clone(),
            source,
        })?;
        if freezer_took(&file, frozen) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(RuntimeError::File {
                step: "wait for the freezer in",
                path: file,
                source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // END SOLUTION
}
