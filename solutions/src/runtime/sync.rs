//! Two pipes between ferry and the container's first process, as runc has them.
//!
//! * release (parent → child): the child waits on it until the parent has done its
//!   part (cgroups in chapter 3, network in chapter 10), then sets itself up.
//! * report (child → parent): empty when the exec succeeds — the pipe is
//!   close-on-exec, so the parent simply reads end-of-file — or one failure
//!   (exit code and message) when the child could not start the command.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;

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
    pub fn raw_fds(&self) -> [RawFd; 2] {
        [self.release.as_raw_fd(), self.report.as_raw_fd()]
    }

    /// Lets the child go on with its setup.
    pub fn release(&mut self) -> std::io::Result<()> {
        self.release.write_all(b"go")
    }

    /// Waits until the child has exec'd (`None`) or failed (`Some`).
    pub fn wait_for_exec(&mut self) -> std::io::Result<Option<ChildFailure>> {
        let mut text = String::new();
        self.report.read_to_string(&mut text)?;
        if text.is_empty() {
            return Ok(None);
        }
        let (code, message) = text.split_once('\n').unwrap_or(("125", &text));
        Ok(Some(ChildFailure {
            exit_code: code
                .trim()
                .parse()
                .unwrap_or(crate::errors::EXIT_ENGINE_FAILED),
            message: message.to_string(),
        }))
    }
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
    pub fn close_parent_copies(fds: [RawFd; 2]) {
        for fd in fds {
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

    /// Closes this process's copy of the report pipe: `--init`'s PID 1 does, so
    /// that ferry sees end-of-file when the command (PID 2) execs.
    pub fn close_report(&mut self) {
        self.report = None;
    }
}
