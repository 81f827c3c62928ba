//! Terminals (chapter 9): a pseudo-terminal for a container's command, the
//! caller's terminal in raw mode, the window size, and docker's detach keys.
//!
//! A pty is a pair: the *peer* (`/dev/pts/N`) is the program's terminal — its
//! stdin, stdout and stderr, where line editing, ctrl-c and echo happen — and the
//! *master* is the other end, held by whoever shows the program to a person.
//!
//! ```text
//! your terminal (raw) ⇄ ferry ⇄ master ┃ peer = the command's 0, 1, 2
//!                                      ┃ (the container's own devpts)
//! ```
//!
//! The pty is made *inside* the container, from its own devpts instance, so the
//! command's terminal is one of the container's (`/dev/pts/0` there, nothing of
//! the host's); the master comes out to ferry over a unix socket (SCM_RIGHTS),
//! which is what runc's `--console-socket` does. Your own terminal goes raw while
//! ferry relays, so every key — ctrl-c included — reaches the container's
//! terminal, which does the line editing and echo itself.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::{OFlag, ResolveFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};

use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("failed to {step}")]
    Sys {
        step: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("/dev/pts/ptmx in the container is not a pseudo-terminal multiplexer (a character device 5:2)")]
    NotPtmx,
    #[error("no terminal descriptor arrived on the console socket")]
    NoDescriptor,
}

fn sys_error(step: &'static str) -> impl FnOnce(nix::Error) -> TerminalError {
    move |source| TerminalError::Sys { step, source }
}

/// A new pty from the devpts mounted at /dev/pts of the calling process's root
/// (the container's, after it joined or entered the container's mounts): the
/// master, and the peer opened through it. The master is checked to be a
/// pseudo-terminal multiplexer's, since the container's files are not to be
/// trusted.
pub fn open_console() -> Result<(OwnedFd, OwnedFd), TerminalError> {
    // BEGIN SOLUTION ch09 "a pty of the container's own devpts: open /dev/pts/ptmx (no symlinks), check it is 5:2, then its peer through the master"
    let master = sys::openat2(
        None,
        Path::new("/dev/pts/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(sys_error("open the container's /dev/pts/ptmx"))?;
    let meta =
        nix::sys::stat::fstat(master.as_raw_fd()).map_err(sys_error("stat /dev/pts/ptmx"))?;
    let is_char = meta.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_char || libc::major(meta.st_rdev) != 5 || libc::minor(meta.st_rdev) != 2 {
        return Err(TerminalError::NotPtmx);
    }
    // Blocking again: whoever holds the master waits on it with poll.
    nix::fcntl::fcntl(
        master.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()),
    )
    .map_err(sys_error("make the master blocking"))?;
    let peer =
        sys::open_peer(master.as_fd()).map_err(sys_error("open the pty's peer (TIOCGPTPEER)"))?;
    Ok((master, peer))
    // END SOLUTION
}

/// Makes `peer` the calling process's controlling terminal and its stdin,
/// stdout and stderr. The caller leads a new session already (setsid).
pub fn become_terminal(peer: OwnedFd) -> Result<(), TerminalError> {
    sys::set_controlling_terminal(peer.as_fd()).map_err(sys_error(
        "make the pty the controlling terminal (TIOCSCTTY)",
    ))?;
    for fd in 0..=2 {
        nix::unistd::dup2(peer.as_raw_fd(), fd)
            .map_err(sys_error("make the pty stdin, stdout and stderr"))?;
    }
    Ok(())
}

/// Sends `fd` over the unix socket `socket` (SCM_RIGHTS): the receiver gets its
/// own descriptor of the same open file.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<(), TerminalError> {
    let fds: [RawFd; 1] = [fd.as_raw_fd()];
    let message = [ControlMessage::ScmRights(&fds)];
    let byte = [IoSlice::new(b"t")];
    sendmsg::<()>(socket.as_raw_fd(), &byte, &message, MsgFlags::empty(), None)
        .map_err(sys_error("send the terminal over the console socket"))?;
    Ok(())
}

/// Receives a descriptor sent with [`send_fd`].
pub fn receive_fd(socket: BorrowedFd<'_>) -> Result<OwnedFd, TerminalError> {
    sys::receive_fd(socket)
        .map_err(sys_error("receive the terminal from the console socket"))?
        .ok_or(TerminalError::NoDescriptor)
}

/// The caller's terminal in raw mode until dropped: no line editing, no echo,
/// no signals from keys — every byte goes to the container's terminal as typed.
/// Dropping it (on every path out, a panic's unwinding included) puts the
/// terminal back as it was.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Puts this process's stdin, a terminal, in raw mode (cfmakeraw(3)),
    /// remembering how it was.
    pub fn enable() -> Result<RawMode, TerminalError> {
        // BEGIN SOLUTION ch09 "raw mode: save the terminal's settings, then cfmakeraw and tcsetattr"
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)
            .map_err(sys_error("read the terminal's settings (tcgetattr)"))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(sys_error("put the terminal in raw mode"))?;
        Ok(RawMode { saved })
        // END SOLUTION
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of `from` (the caller's terminal) to `to` (a master,
/// so the container's terminal has it, and its programs get SIGWINCH).
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), TerminalError> {
    // BEGIN SOLUTION ch09 "the window size: TIOCGWINSZ on your terminal, TIOCSWINSZ on the master"
    let size = sys::window_size(from).map_err(sys_error("read the window size (TIOCGWINSZ)"))?;
    sys::set_window_size(to, &size).map_err(sys_error("set the window size (TIOCSWINSZ)"))
    // END SOLUTION
}

/// Writes all of `bytes` to `fd` (a pty master: a write may take only part).
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

/// docker's detach keys: ctrl-p then ctrl-q leave the container running.
pub const DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// Watches typed bytes for the detach sequence. Bytes that start the sequence
/// are held back until it is clear whether the sequence follows (ctrl-p then
/// something else: both go to the container).
#[derive(Debug, Clone)]
pub struct DetachKeys {
    sequence: Vec<u8>,
    matched: usize,
}

/// What to do with typed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    /// Bytes for the container.
    pub forward: Vec<u8>,
    /// The sequence was typed: detach (after forwarding `forward`).
    pub detach: bool,
}

impl DetachKeys {
    pub fn new(sequence: &[u8]) -> DetachKeys {
        DetachKeys {
            sequence: sequence.to_vec(),
            matched: 0,
        }
    }

    /// Takes bytes as they were typed.
    pub fn feed(&mut self, bytes: &[u8]) -> Typed {
        // BEGIN SOLUTION ch09 "detach keys: hold back a partial ctrl-p ctrl-q, forward what turns out not to be one"
        let mut forward = Vec::new();
        for &byte in bytes {
            if byte == self.sequence[self.matched] {
                self.matched += 1;
                if self.matched == self.sequence.len() {
                    self.matched = 0;
                    return Typed {
                        forward,
                        detach: true,
                    };
                }
                continue;
            }
            // Not the sequence after all: what was held back goes on.
            forward.extend_from_slice(&self.sequence[..self.matched]);
            self.matched = 0;
            if byte == self.sequence[0] {
                self.matched = 1;
            } else {
                forward.push(byte);
            }
        }
        Typed {
            forward,
            detach: false,
        }
        // END SOLUTION
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_held_back_and_released() {
        let mut keys = DetachKeys::new(DETACH_KEYS);
        assert_eq!(keys.feed(b"ls\r").forward, b"ls\r");
        assert_eq!(
            keys.feed(&[0x10]),
            Typed {
                forward: vec![],
                detach: false
            }
        );
        assert_eq!(keys.feed(b"x").forward, vec![0x10, b'x']);
        assert_eq!(keys.feed(&[0x10, 0x10]).forward, vec![0x10]);
        assert!(keys.feed(&[0x11]).detach);
        let typed = DetachKeys::new(DETACH_KEYS).feed(&[b'a', 0x10, 0x11, b'b']);
        assert_eq!(
            typed,
            Typed {
                forward: vec![b'a'],
                detach: true
            }
        );
    }
}
