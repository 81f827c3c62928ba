//! Attaching to a container's terminal (chapter 9): the supervisor holds the
//! pty's master and serves `ROOT/containers/ID/attach.sock`; `run -it`, `start
//! -ai` and `attach` connect to it. What the container's terminal prints goes to
//! every client and to the log; a client's keys and window size go to the
//! terminal. A client that leaves (docker's ctrl-p ctrl-q) leaves the container
//! running; another can attach later.
//!
//! Messages from a client: one byte of kind, two bytes of length (big-endian),
//! the payload — `i` keys, `w` a window size (rows, columns: two bytes each).
//! From the supervisor: the terminal's bytes as they come; end-of-file when the
//! container has ended.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::SystemTime;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::logs::{LogWriter, Stream};
use crate::sys::WindowSize;

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

/// A message kind: keys for the terminal.
const KEYS: u8 = b'i';
/// A message kind: the client's window size.
const WINDOW: u8 = b'w';

/// The socket's path through a descriptor of the container's directory: a
/// unix socket path has at most 108 bytes, and a state root plus a 64-digit id
/// can be longer; `/proc/self/fd/N/attach.sock` never is.
fn short_path(dir: &File) -> std::path::PathBuf {
    Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(SOCKET)
}

/// Binds the attach socket in the container's directory `dir` (an old one is
/// replaced).
pub fn listen(dir: &Path) -> std::io::Result<UnixListener> {
    let handle = File::open(dir)?;
    let path = short_path(&handle);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Connects to the attach socket of the container whose directory is `dir`.
pub fn connect(dir: &Path) -> std::io::Result<UnixStream> {
    let handle = File::open(dir)?;
    UnixStream::connect(short_path(&handle))
}

/// Sends keys the user typed.
pub fn send_keys(socket: &mut UnixStream, keys: &[u8]) -> std::io::Result<()> {
    for chunk in keys.chunks(u16::MAX as usize) {
        let mut message = vec![KEYS];
        message.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        message.extend_from_slice(chunk);
        socket.write_all(&message)?;
    }
    Ok(())
}

/// Sends the client's window size.
pub fn send_window_size(socket: &mut UnixStream, size: &WindowSize) -> std::io::Result<()> {
    let mut message = vec![WINDOW, 0, 4];
    message.extend_from_slice(&size.ws_row.to_be_bytes());
    message.extend_from_slice(&size.ws_col.to_be_bytes());
    socket.write_all(&message)
}

/// At most this much of what the terminal printed before anyone attached is kept.
const BACKLOG: usize = 64 * 1024;

/// One attached client and the bytes of its unfinished message.
struct Client {
    stream: UnixStream,
    pending: Vec<u8>,
}

/// The supervisor's side: relays between the pty's `master` and the clients of
/// `listener`, copying the terminal's output into `log`, until the container's
/// terminal ends (every process holding it has exited).
pub fn serve(master: OwnedFd, listener: UnixListener, mut log: LogWriter) {
    let mut clients: Vec<Client> = Vec::new();
    let mut buffer = vec![0u8; 32 * 1024];
    // What the terminal printed before the first client came (the shell's
    // prompt, for `run -it`, which connects just after the start): that client
    // gets it first. Later clients see only what comes after they attach.
    let mut backlog: Option<Vec<u8>> = Some(Vec::new());
    let mut backlog_full = false;
    loop {
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(
            clients
                .iter()
                .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
        );
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[0] {
            match nix::unistd::read(master.as_raw_fd(), &mut buffer) {
                // EIO: the last process holding the terminal has exited.
                Ok(0) | Err(nix::errno::Errno::EIO) => break,
                Ok(n) => {
                    let _ = log.write(Stream::Stdout, &buffer[..n], SystemTime::now());
                    // Once full, it stops: a replay with holes would be worse than
                    // a short one.
                    if let Some(early) = backlog.as_mut().filter(|_| !backlog_full) {
                        if early.len() + n <= BACKLOG {
                            early.extend_from_slice(&buffer[..n]);
                        } else {
                            backlog_full = true;
                        }
                    }
                    // A client that cannot keep up is dropped, not waited for.
                    clients.retain_mut(|c| c.stream.write_all(&buffer[..n]).is_ok());
                }
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
                Err(_) => break,
            }
        }
        if ready[1] {
            while let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_write_timeout(Some(std::time::Duration::from_secs(1)));
                if let Some(early) = backlog.take() {
                    let _ = stream.write_all(&early);
                }
                clients.push(Client {
                    stream,
                    pending: Vec::new(),
                });
            }
        }
        let mut gone = Vec::new();
        for (index, client) in clients.iter_mut().enumerate() {
            if !ready.get(2 + index).copied().unwrap_or(false) {
                continue;
            }
            match client.stream.read(&mut buffer) {
                Ok(0) | Err(_) => gone.push(index),
                Ok(n) => {
                    client.pending.extend_from_slice(&buffer[..n]);
                    apply_messages(&mut client.pending, &master);
                }
            }
        }
        for index in gone.into_iter().rev() {
            clients.remove(index);
        }
    }
    let _ = log.flush(SystemTime::now());
    // Dropping the clients closes their sockets: they read end-of-file.
}

/// Applies every complete message in `pending` to the terminal.
fn apply_messages(pending: &mut Vec<u8>, master: &OwnedFd) {
    while pending.len() >= 3 {
        let length = u16::from_be_bytes([pending[1], pending[2]]) as usize;
        if pending.len() < 3 + length {
            return;
        }
        let message: Vec<u8> = pending.drain(..3 + length).collect();
        let payload = &message[3..];
        match message[0] {
            KEYS => {
                let _ = crate::terminal::write_all(master.as_fd(), payload);
            }
            WINDOW if payload.len() == 4 => {
                let size = WindowSize {
                    ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                    ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                let _ = crate::sys::set_window_size(master.as_fd(), &size);
            }
            _ => {} // unknown: ignored
        }
    }
}
