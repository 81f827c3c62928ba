//! Relaying a terminal (chapter 9): the caller's terminal on one side, a pty's
//! master on the other — keys in, output out, the window size kept in step.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::terminal::{self, DetachKeys};

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The other side ended (the command exited: the master reads EIO).
    Ended,
    /// The detach keys were typed.
    Detached,
    /// This process got signal N (SIGTERM, SIGHUP, ...): the relay stopped so the
    /// terminal can be restored; the container runs on.
    Signalled(i32),
}

/// Copies stdin to `master` (when `interactive`) and `master` to stdout until
/// the master ends, `ended` (a pidfd of the command) polls readable, or `detach`
/// sees its keys. SIGWINCH copies the window size of stdin's terminal to the
/// master.
pub fn relay(
    master: BorrowedFd<'_>,
    ended: Option<BorrowedFd<'_>>,
    interactive: bool,
    mut detach: Option<DetachKeys>,
) -> std::io::Result<RelayEnd> {
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&winch), None)?;
    let resized = SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC)?;
    let _ = terminal::copy_window_size(stdin, master);
    let mut reading_stdin = interactive;
    let mut buffer = vec![0u8; 32 * 1024];
    let mut out = std::io::stdout().lock();
    loop {
        let mut fds = vec![
            PollFd::new(master, PollFlags::POLLIN),
            PollFd::new(resized.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(ended) = ended {
            fds.push(PollFd::new(ended, PollFlags::POLLIN));
        }
        if reading_stdin {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(error.into()),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (master_ready, resize_ready) = (ready(&fds[0]), ready(&fds[1]));
        let command_ended = ended.is_some() && ready(&fds[2]);
        let stdin_ready = reading_stdin && ready(&fds[fds.len() - 1]);
        if master_ready {
            match nix::unistd::read(master.as_raw_fd(), &mut buffer) {
                // EIO: every peer is closed — the command and its children ended.
                Ok(0) | Err(nix::errno::Errno::EIO) => return Ok(RelayEnd::Ended),
                Ok(n) => {
                    out.write_all(&buffer[..n])?;
                    out.flush()?;
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(error) => return Err(error.into()),
            }
        }
        if command_ended && !master_ready {
            return Ok(RelayEnd::Ended); // what it printed last has been read
        }
        if resize_ready {
            let _ = resized.read_signal();
            let _ = terminal::copy_window_size(stdin, master);
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buffer) {
                Ok(0) | Err(nix::errno::Errno::EIO) => reading_stdin = false,
                Ok(n) => {
                    let typed = match &mut detach {
                        Some(keys) => keys.feed(&buffer[..n]),
                        None => terminal::Typed {
                            forward: buffer[..n].to_vec(),
                            detach: false,
                        },
                    };
                    terminal::write_all(master, &typed.forward)?;
                    if typed.detach {
                        return Ok(RelayEnd::Detached);
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// Relays this terminal to a container's through its supervisor's attach
/// socket: keys (after the detach keys' filter) and window sizes in, the
/// terminal's output out, until the supervisor closes the socket (the container
/// ended) or the detach keys are typed.
pub fn relay_attached(
    mut socket: std::os::unix::net::UnixStream,
    mut detach: DetachKeys,
    interactive: bool,
) -> std::io::Result<RelayEnd> {
    use crate::engine::containers::attach;
    use std::io::Read;
    let stdin = std::io::stdin();
    let stdin = stdin.as_fd();
    // SIGWINCH, and the signals that would end this client without restoring the
    // terminal: they end the relay instead (the container runs on, as after the
    // detach keys).
    let mut watched = SigSet::empty();
    for signal in [
        Signal::SIGWINCH,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        watched.add(signal);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), None)?;
    let resized = SignalFd::with_flags(&watched, SfdFlags::SFD_CLOEXEC)?;
    let send_size = |socket: &mut std::os::unix::net::UnixStream| {
        if let Ok(size) = crate::sys::window_size(stdin) {
            let _ = attach::send_window_size(socket, &size);
        }
    };
    send_size(&mut socket);
    // Keys go to the container only when asked for (-i; attach always).
    let mut reading_stdin = interactive;
    let mut buffer = vec![0u8; 32 * 1024];
    let mut out = std::io::stdout().lock();
    loop {
        let mut fds = vec![
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(resized.as_fd(), PollFlags::POLLIN),
        ];
        if reading_stdin {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(error) => return Err(error.into()),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            match socket.read(&mut buffer) {
                Ok(0) => return Ok(RelayEnd::Ended),
                Ok(n) => {
                    out.write_all(&buffer[..n])?;
                    out.flush()?;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(RelayEnd::Ended),
            }
        }
        if ready[1] {
            match resized.read_signal() {
                Ok(Some(info)) if info.ssi_signo == Signal::SIGWINCH as u32 => {
                    send_size(&mut socket)
                }
                Ok(Some(info)) => return Ok(RelayEnd::Signalled(info.ssi_signo as i32)),
                _ => {}
            }
        }
        if reading_stdin && ready[2] {
            match nix::unistd::read(stdin.as_raw_fd(), &mut buffer) {
                Ok(0) | Err(nix::errno::Errno::EIO) => reading_stdin = false,
                Ok(n) => {
                    let typed = detach.feed(&buffer[..n]);
                    attach::send_keys(&mut socket, &typed.forward)?;
                    if typed.detach {
                        return Ok(RelayEnd::Detached);
                    }
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
}
