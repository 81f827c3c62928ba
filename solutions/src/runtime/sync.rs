//! Two pipes between the runtime and the container's first process, as runc has
//! them, and the messages they carry.
//!
//! * to the child (parent → child): [`ToChild::Release`] once the parent has done its
//!   part (cgroups in chapter 3, network in chapter 10), then [`ToChild::Start`] to
//!   run the command;
//! * from the child (child → parent): [`FromChild::Ready`] once its setup is done
//!   and it waits, blocked before the user's program (that is `create`);
//!   [`FromChild::Exec`] just before execve(2). The pipe is close-on-exec, so after
//!   `Exec` the parent reads end-of-file when the command runs — or a
//!   [`FromChild::Failed`] when execve failed. A setup step that fails sends
//!   `Failed` alone; end-of-file with nothing said means the child died (killed,
//!   OOM-killed).
//!
//! While it waits, the parent also watches the signals it forwards (a signalfd): one
//! that arrives before the command runs aborts the setup.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

/// Why the child could not start the command, as it reports it to the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildFailure {
    pub exit_code: i32,
    pub message: String,
}

/// What the parent tells the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToChild {
    /// Set yourself up: the parent's part is done.
    Release,
    /// Run the command.
    Start,
}

/// What the child tells the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromChild {
    /// Set up and waiting for [`ToChild::Start`].
    Ready,
    /// execve(2) comes next.
    Exec,
    /// The command cannot run; why. Always the last message.
    Failed(ChildFailure),
}

impl ToChild {
    fn byte(self) -> u8 {
        match self {
            ToChild::Release => b'r',
            ToChild::Start => b's',
        }
    }
}

impl FromChild {
    /// The message as bytes on the pipe: a line, and for a failure the message
    /// after it, up to end-of-file.
    fn encode(&self) -> Vec<u8> {
        match self {
            FromChild::Ready => b"ready\n".to_vec(),
            FromChild::Exec => b"exec\n".to_vec(),
            FromChild::Failed(failure) => {
                format!("failed {}\n{}", failure.exit_code, failure.message).into_bytes()
            }
        }
    }
}

/// What the parent saw while it waited for the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The child is set up and blocked before the command.
    Ready,
    /// The command runs (`Exec`, then end-of-file).
    Running,
    /// The child could not go on; it said why.
    Failed(ChildFailure),
    /// The child died without a word (SIGKILL, the OOM killer).
    Died,
    /// A signal for the container arrived before the command ran.
    Interrupted(Signal),
}

/// The parent's ends: write to the child, read from it.
#[derive(Debug)]
pub struct ParentEnds {
    to_child: std::fs::File,
    from_child: std::fs::File,
    /// Bytes read but not yet taken as a message.
    pending: Vec<u8>,
}

/// The child's ends: read from the parent, write to it.
#[derive(Debug)]
pub struct ChildEnds {
    from_parent: std::fs::File,
    /// `None` in `--init`'s PID 1, which must not hold the pipe open.
    to_parent: Option<std::fs::File>,
}

/// Creates both pipes, close-on-exec (see pipe2(2)).
pub fn channel() -> nix::Result<(ParentEnds, ChildEnds)> {
    let (down_read, down_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (up_read, up_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let file = |fd: OwnedFd| std::fs::File::from(fd);
    Ok((
        ParentEnds {
            to_child: file(down_write),
            from_child: file(up_read),
            pending: Vec::new(),
        },
        ChildEnds {
            from_parent: file(down_read),
            to_parent: Some(file(up_write)),
        },
    ))
}

impl ParentEnds {
    /// The raw fds, for the child to close its copies of them.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        vec![self.to_child.as_raw_fd(), self.from_child.as_raw_fd()]
    }

    /// Sends `message` to the child.
    pub fn send(&mut self, message: ToChild) -> std::io::Result<()> {
        self.to_child.write_all(&[message.byte()])
    }

    /// Waits for the child's next message — or for one of the signals `signals`
    /// (a signalfd of the blocked set) reads, other than SIGCHLD, which is left
    /// pending for the wait that follows.
    pub fn next_event(&mut self, signals: &mut SignalFd) -> std::io::Result<Event> {
        let mut saw_child_signal = false;
        let event = loop {
            if let Some(event) = self.take_message() {
                break event;
            }
            let mut fds = [
                PollFd::new(self.from_child.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(error) => return Err(error.into()),
            }
            if fds[0].any().unwrap_or(false) {
                let mut chunk = [0u8; 4096];
                match self.from_child.read(&mut chunk)? {
                    0 => break self.at_end_of_file(),
                    n => self.pending.extend_from_slice(&chunk[..n]),
                }
                continue;
            }
            if fds[1].any().unwrap_or(false) {
                let Some(info) = signals.read_signal()? else {
                    continue;
                };
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => saw_child_signal = true,
                    Ok(signal) => break Event::Interrupted(signal),
                    Err(_) => {}
                }
            }
        };
        if saw_child_signal {
            // Put it back: the wait for the container's end sigwaits for it.
            nix::sys::signal::raise(Signal::SIGCHLD)?;
        }
        Ok(event)
    }

    /// A complete `ready` line, if one is waiting. `exec` and `failed` are
    /// complete only at end-of-file (see the module's doc).
    fn take_message(&mut self) -> Option<Event> {
        let ready = FromChild::Ready.encode();
        if self.pending.starts_with(&ready) {
            self.pending.drain(..ready.len());
            return Some(Event::Ready);
        }
        None
    }

    /// What end-of-file means after what was read.
    fn at_end_of_file(&mut self) -> Event {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        parse_final(&text)
    }
}

/// Reads what the child wrote last: `exec` alone (the command runs), a failure
/// (after `exec` or not), or nothing (the child died).
fn parse_final(text: &str) -> Event {
    let (execed, rest) = match text.strip_prefix("exec\n") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let Some(failure) = rest.strip_prefix("failed ") else {
        return if execed && rest.is_empty() {
            Event::Running
        } else {
            Event::Died
        };
    };
    let (code, message) = failure.split_once('\n').unwrap_or((failure, ""));
    Event::Failed(ChildFailure {
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
        let mut fds = vec![self.from_parent.as_raw_fd()];
        fds.extend(self.to_parent.as_ref().map(|pipe| pipe.as_raw_fd()));
        fds
    }

    /// Closes the child's copies of the parent's ends: otherwise the child itself
    /// would keep the pipe to it open and never see the parent die.
    pub fn close_parent_copies(fds: &[RawFd]) {
        for &fd in fds {
            let _ = nix::unistd::close(fd);
        }
    }

    /// Blocks until the parent sends `expected`. `false` if the parent went away
    /// (or said something else).
    pub fn wait_for(&mut self, expected: ToChild) -> std::io::Result<bool> {
        let mut byte = [0u8; 1];
        match self.from_parent.read_exact(&mut byte) {
            Ok(()) => Ok(byte[0] == expected.byte()),
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Tells the parent `message`. Nothing more can be done if the parent is gone.
    pub fn send(&mut self, message: &FromChild) {
        if let Some(pipe) = self.to_parent.as_mut() {
            let _ = pipe.write_all(&message.encode());
        }
    }

    /// Tells the parent why the command could not start — or, when nobody reads
    /// the pipe any more (after `ferry runtime create` returned), the container's
    /// stderr, which is what the caller (conmon) shows.
    pub fn report(&mut self, failure: &ChildFailure) {
        if self.to_parent.is_none() {
            eprintln!("{}: error: {}", crate::ENGINE, failure.message);
            return;
        }
        self.send(&FromChild::Failed(failure.clone()));
    }

    /// Closes this process's copy of the pipe to the parent: `--init`'s PID 1 does,
    /// so that the parent sees end-of-file when the command (PID 2) execs.
    pub fn close_report(&mut self) {
        self.to_parent = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_words_tell_exec_failure_and_death_apart() {
        assert_eq!(parse_final("exec\n"), Event::Running);
        assert_eq!(parse_final(""), Event::Died);
        let failed = |code, message: &str| {
            Event::Failed(ChildFailure {
                exit_code: code,
                message: message.to_string(),
            })
        };
        let message = FromChild::Failed(ChildFailure {
            exit_code: 126,
            message: "not executable\nhint".into(),
        });
        let text = String::from_utf8(message.encode()).unwrap();
        assert_eq!(
            parse_final(&format!("exec\n{text}")),
            failed(126, "not executable\nhint")
        );
        assert_eq!(parse_final("failed 125\nno /proc"), failed(125, "no /proc"));
    }
}
