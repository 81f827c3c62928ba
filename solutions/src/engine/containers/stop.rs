//! Stopping a container: its stop signal to its first process, a grace period,
//! then SIGKILL — waiting on a pidfd (pidfd_open(2)), which polls readable when
//! the process ends, rather than checking every few milliseconds whether it has.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::{is_alive, ProcessRef};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("failed to {step} (pid {pid})")]
    Sys {
        step: &'static str,
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("the container's process (pid {pid}) did not end within {seconds} s of SIGKILL")]
    Unkillable { pid: i32, seconds: u64 },
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was already gone.
    AlreadyGone,
    /// It ended within the grace period.
    Ended,
    /// It had to be killed with SIGKILL.
    Killed,
}

/// Stops `process`: `signal`, then SIGKILL if it has not ended after `grace`.
/// Returns once it has ended.
///
/// Open a pidfd for it first and check it is still the recorded process (a pid
/// can be reused; the pidfd cannot), then send through the pidfd and wait on it.
pub fn stop(process: &ProcessRef, signal: Signal, grace: Duration) -> Result<Stopped, StopError> {
    // BEGIN SOLUTION ch08 "the stop signal, a grace period on a pidfd, then SIGKILL"
    let sys_error = |step| {
        move |source| StopError::Sys {
            step,
            pid: process.pid,
            source,
        }
    };
    let Some(pidfd) =
        open_checked(process).map_err(sys_error("open a pidfd for the container's process"))?
    else {
        return Ok(Stopped::AlreadyGone);
    };
    match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => return Err(sys_error("send the stop signal")(error)),
    }
    if wait_for_exit(pidfd.as_fd(), grace).map_err(sys_error("wait for the container's process"))? {
        return Ok(Stopped::Ended);
    }
    match sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(error) => return Err(sys_error("send SIGKILL")(error)),
    }
    let limit = Duration::from_secs(10);
    if wait_for_exit(pidfd.as_fd(), limit).map_err(sys_error("wait for the container's process"))? {
        Ok(Stopped::Killed)
    } else {
        Err(StopError::Unkillable {
            pid: process.pid,
            seconds: limit.as_secs(),
        })
    }
    // END SOLUTION
}

/// Sends `signal` to `process` and nothing more (`kill -s`): through a pidfd,
/// after checking that the pid is still the recorded process. False when it was
/// already gone.
pub fn signal(process: &ProcessRef, signal: Signal) -> Result<bool, StopError> {
    let sys_error = |step| {
        move |source| StopError::Sys {
            step,
            pid: process.pid,
            source,
        }
    };
    let Some(pidfd) =
        open_checked(process).map_err(sys_error("open a pidfd for the container's process"))?
    else {
        return Ok(false);
    };
    match sys::pidfd_send_signal(pidfd.as_fd(), signal) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(error) => Err(sys_error("send the signal")(error)),
    }
}

/// Waits until the process `pidfd` refers to has ended, at most `limit`: true
/// when it has.
pub fn wait_for_exit(pidfd: BorrowedFd<'_>, limit: Duration) -> nix::Result<bool> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) => continue, // a wait longer than poll's 65 s
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Waits until `process` (any process, not only a child) has ended, at most
/// `limit`: true when it has or was already gone.
pub fn wait_for(process: &ProcessRef, limit: Duration) -> nix::Result<bool> {
    match open_checked(process)? {
        Some(pidfd) => wait_for_exit(pidfd.as_fd(), limit),
        None => Ok(true),
    }
}

/// A pidfd of `process`, checked after opening to be the recorded process (a pid
/// can be reused; the pidfd cannot): `None` when it is gone.
pub fn open_checked(process: &ProcessRef) -> nix::Result<Option<OwnedFd>> {
    match sys::pidfd_open(Pid::from_raw(process.pid)) {
        Ok(pidfd) if is_alive(process) => Ok(Some(pidfd)),
        Ok(_) | Err(nix::errno::Errno::ESRCH) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A signal by name or number, as `kill -s` and STOPSIGNAL write it: `TERM`,
/// `SIGTERM`, `15`.
pub fn parse_signal(text: &str) -> Option<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}
