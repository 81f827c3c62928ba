//! Two pipes between ferry and the container's first process, as runc has them.
//!
//! * release (parent → child): the child waits on it until the parent has done its
//!   part (cgroups in chapter 3, network in chapter 10), then sets itself up.
//! * report (child → parent): the child writes a marker just before execve(2); the
//!   pipe is close-on-exec, so after a successful exec the parent reads the marker
//!   and end-of-file. A failure (exit code and message) follows the marker when
//!   execve fails, or comes alone when a setup step failed. End-of-file without
//!   the marker means the child died during its setup (killed, or OOM-killed).
//!
//! While it waits, the parent also watches the signals it forwards: one that
//! arrives before the command runs aborts the setup.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

/// What the child writes just before execve(2).
const EXEC_MARKER: &str = "exec\n";

/// How the child's setup ended, as the parent saw it on the report pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    /// The command is running.
    Exec,
    /// The child could not start the command; it said why.
    Failed(ChildFailure),
    /// The child died during its setup without a word (SIGKILL, the OOM killer).
    Died,
    /// A signal for the container arrived before the command ran.
    Interrupted(Signal),
}

/// Why the child could not start the command, as it reports it to the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailure {
    pub exit_code: i32,
    pub message: String,
}

/// The parent's ends: write `release`, read `report`.
#[derive(Debug)]
pub struct ParentEnds {
    release: std::fs::File,
    report: std::fs::File,
}

/// The child's ends: read `release`, write `report`.
#[derive(Debug)]
pub struct ChildEnds {
    release: std::fs::File,
    /// `None` in `--init`'s PID 1, which must not hold the pipe open.
    report: Option<std::fs::File>,
}

/// Creates both pipes, close-on-exec (see pipe2(2)).
pub fn channel() -> nix::Result<(ParentEnds, ChildEnds)> {
    let (release_read, release_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (report_read, report_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let file = |fd: OwnedFd| std::fs::File::from(fd);
    Ok((
        ParentEnds {
            release: file(release_write),
            report: file(report_read),
        },
        ChildEnds {
            release: file(release_read),
            report: Some(file(report_write)),
        },
    ))
}

impl ParentEnds {
    /// The raw fds, for the child to close its copies of them.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        vec![self.release.as_raw_fd(), self.report.as_raw_fd()]
    }

    /// Lets the child go on with its setup.
    pub fn release(&mut self) -> std::io::Result<()> {
        self.release.write_all(b"go")
    }

    /// Waits until the child has exec'd, failed or died — or until one of the
    /// signals `signals` (a signalfd of the blocked set) reads arrives, other than
    /// SIGCHLD, which is left pending for the wait that follows.
    pub fn wait_for_exec(&mut self, signals: &mut SignalFd) -> std::io::Result<SetupOutcome> {
        let mut text = Vec::new();
        let mut saw_child_signal = false;
        let outcome = loop {
            let mut fds = [
                PollFd::new(self.report.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(error) => return Err(error.into()),
            }
            let report_ready = fds[0].any().unwrap_or(false);
            let signal_ready = fds[1].any().unwrap_or(false);
            if report_ready {
                let mut chunk = [0u8; 4096];
                match self.report.read(&mut chunk)? {
                    0 => break parse_report(&text),
                    n => text.extend_from_slice(&chunk[..n]),
                }
                continue;
            }
            if signal_ready {
                let Some(info) = signals.read_signal()? else {
                    continue;
                };
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => saw_child_signal = true,
                    Ok(signal) => break SetupOutcome::Interrupted(signal),
                    Err(_) => {}
                }
            }
        };
        if saw_child_signal {
            // Put it back: the wait for the container's end sigwaits for it.
            nix::sys::signal::raise(Signal::SIGCHLD)?;
        }
        Ok(outcome)
    }
}

/// Reads what the child wrote on the report pipe (see the module's doc).
fn parse_report(bytes: &[u8]) -> SetupOutcome {
    let text = String::from_utf8_lossy(bytes);
    let (execed, rest) = match text.strip_prefix(EXEC_MARKER) {
        Some(rest) => (true, rest),
        None => (false, &*text),
    };
    if rest.is_empty() {
        return if execed {
            SetupOutcome::Exec
        } else {
            SetupOutcome::Died
        };
    }
    let (code, message) = rest.split_once('\n').unwrap_or(("125", rest));
    SetupOutcome::Failed(ChildFailure {
        exit_code: code
            .trim()
            .parse()
            .unwrap_or(crate::errors::EXIT_ENGINE_FAILED),
        message: message.to_string(),
    })
}

impl ChildEnds {
    /// The raw fds of the child's ends, which it keeps open until exec.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        let mut fds = vec![self.release.as_raw_fd()];
        fds.extend(self.report.as_ref().map(|report| report.as_raw_fd()));
        fds
    }

    /// Closes the child's copies of the parent's ends: otherwise the child itself
    /// would keep the release pipe open and never see the parent die.
    pub fn close_parent_copies(fds: &[RawFd]) {
        for &fd in fds {
            let _ = nix::unistd::close(fd);
        }
    }

    /// Blocks until the parent releases the child. `false` if the parent went away.
    pub fn wait_for_release(&mut self) -> std::io::Result<bool> {
        let mut go = [0u8; 2];
        match self.release.read_exact(&mut go) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Tells the parent why the command could not start.
    pub fn report(&mut self, failure: &ChildFailure) {
        let text = format!("{}\n{}", failure.exit_code, failure.message);
        if let Some(report) = self.report.as_mut() {
            // Nothing more can be done if the parent is gone.
            let _ = report.write_all(text.as_bytes());
        }
    }

    /// Tells the parent that execve(2) comes next: end-of-file after this means the
    /// command runs.
    pub fn about_to_exec(&mut self) {
        if let Some(report) = self.report.as_mut() {
            let _ = report.write_all(EXEC_MARKER.as_bytes());
        }
    }

    /// Closes this process's copy of the report pipe: `--init`'s PID 1 does, so
    /// that ferry sees end-of-file when the command (PID 2) execs.
    pub fn close_report(&mut self) {
        self.report = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_tells_exec_failure_and_death_apart() {
        assert_eq!(parse_report(b"exec\n"), SetupOutcome::Exec);
        assert_eq!(parse_report(b""), SetupOutcome::Died);
        let failed = |code, message: &str| {
            SetupOutcome::Failed(ChildFailure {
                exit_code: code,
                message: message.to_string(),
            })
        };
        assert_eq!(
            parse_report(b"exec\n126\nnot executable"),
            failed(126, "not executable")
        );
        assert_eq!(parse_report(b"125\nno /proc"), failed(125, "no /proc"));
    }
}
