//! Terminals (chapter 9): the pseudo-terminal ioctls nix has no safe wrapper for —
//! unlocking a master and opening its peer without a path (TIOCSPTLCK,
//! TIOCGPTPEER), making a controlling terminal (TIOCSCTTY) and the window size
//! (TIOCGWINSZ, TIOCSWINSZ). See ioctl_tty(2) and pty(7).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A terminal's size in characters (and pixels, which nobody sets).
pub type WindowSize = libc::winsize;

/// Unlocks the pseudo-terminal master `master` and opens its peer (the terminal
/// the program will use) through the master itself: TIOCGPTPEER, so no path in
/// a devpts the container could have changed is looked up (Linux 4.13).
pub fn open_peer(master: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which is valid for
    // the call; the fd is borrowed, so it stays open.
    let result = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    nix::errno::Errno::result(result)?;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new descriptor.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    let peer = nix::errno::Errno::result(peer)?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(peer) })
}

/// Makes `terminal` the calling process's controlling terminal (it must lead a
/// session without one).
pub fn set_controlling_terminal(terminal: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal it).
    let result = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSCTTY, 0) };
    nix::errno::Errno::result(result).map(drop)
}

/// The window size of `terminal`.
pub fn window_size(terminal: BorrowedFd<'_>) -> nix::Result<WindowSize> {
    let mut size = WindowSize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, which points to
    // `size`, valid and large enough for the call.
    let result = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
    nix::errno::Errno::result(result).map(|_| size)
}

/// Sets the window size of `terminal` (on a master: its peer's; the peer's
/// foreground process group gets SIGWINCH).
pub fn set_window_size(terminal: BorrowedFd<'_>, size: &WindowSize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize through the pointer, valid for the call.
    let result = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::TIOCSWINSZ, size) };
    nix::errno::Errno::result(result).map(drop)
}

/// Receives a descriptor another process sent over the unix socket `socket`
/// with SCM_RIGHTS (close-on-exec here); `None` when the message carried none.
pub fn receive_fd(socket: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let message = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control {
            if let Some(&fd) = fds.first() {
                // SAFETY: SCM_RIGHTS installed `fd` in this process just now;
                // nothing else refers to it, so the OwnedFd is its only owner.
                return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
    }
    Ok(None)
}
