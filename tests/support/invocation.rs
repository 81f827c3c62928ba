//! Running the engine under test inside a test host: an [`Invocation`] is built up
//! (args, env, stdin, inherited fds, timeout), spawned as a [`Running`] engine the
//! test can talk to and signal, and collected into an [`Output`] at the end.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::{engine_binary, Output, TestHost, TIMEOUT};

/// A command to run inside the test host.
pub struct Invocation<'h> {
    host: &'h TestHost,
    /// Another program than the engine (podman, say), run in the test host too.
    program: Option<OsString>,
    /// stdout and stderr to this file instead of pipes: for a command that leaves
    /// a process holding them (`runtime create`), whose end-of-file never comes.
    output_file: Option<std::path::PathBuf>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    /// A file (a terminal, say) to use as the engine's stdin instead of a pipe.
    stdin_file: Option<File>,
    /// Files the engine inherits at these fd numbers, without close-on-exec.
    inherited: Vec<(File, i32)>,
    timeout: Duration,
}

impl<'h> Invocation<'h> {
    /// `ENGINE ARGS...` in `host`, with the defaults: no env, no stdin, [`TIMEOUT`].
    pub(super) fn new(host: &'h TestHost, args: Vec<OsString>) -> Self {
        Invocation {
            host,
            program: None,
            output_file: None,
            args,
            env: Vec::new(),
            stdin: None,
            stdin_file: None,
            inherited: Vec::new(),
            timeout: TIMEOUT,
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Uses `file` as the engine's stdin (e.g. the slave side of a pty).
    pub fn stdin_file(mut self, file: File) -> Self {
        self.stdin_file = Some(file);
        self
    }

    /// Lets the engine inherit `file` as fd `fd` without close-on-exec, as a careless
    /// caller would.
    pub fn inherit_fd(mut self, file: File, fd: i32) -> Self {
        self.inherited.push((file, fd));
        self
    }

    /// Runs `program` instead of the engine.
    pub(super) fn program(mut self, program: &str) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Sends stdout and stderr to `path`; the output is read from it at the end.
    pub fn output_to(mut self, path: &std::path::Path) -> Self {
        self.output_file = Some(path.to_path_buf());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn describe(&self) -> String {
        let program = self
            .program
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let mut text = program.unwrap_or_else(|| engine_binary().to_string());
        for arg in &self.args {
            text.push(' ');
            text.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        text
    }

    /// Starts the engine with its stdin a pipe the test holds open.
    pub fn spawn(mut self) -> Running {
        let mut command = Command::new(
            self.program
                .clone()
                .unwrap_or_else(|| engine_binary().into()),
        );
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        match &self.output_file {
            Some(path) => {
                let file = File::create(path).unwrap();
                command
                    .stdout(Stdio::from(file.try_clone().unwrap()))
                    .stderr(Stdio::from(file));
            }
            None => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
        }
        let has_stdin_file = self.stdin_file.is_some();
        match self.stdin_file.take() {
            Some(file) => command.stdin(Stdio::from(file)),
            None => command.stdin(Stdio::piped()),
        };
        let ns = self.host.mount_ns.as_raw_fd();
        let net = self.host.net_ns.as_ref().map_or(-1, |f| f.as_raw_fd());
        let inherited: Vec<(i32, i32)> = self
            .inherited
            .iter()
            .map(|(f, fd)| (f.as_raw_fd(), *fd))
            .collect();
        // SAFETY: between fork and exec only async-signal-safe work happens here:
        // setns(2) and dup2(2) on fds the parent keeps open; `inherited` was
        // allocated before the fork and is only read.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(ns, libc::CLONE_NEWNS) != 0
                    || (net >= 0 && libc::setns(net, libc::CLONE_NEWNET) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                for (from, to) in &inherited {
                    if libc::dup2(*from, *to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .expect("failed to start the engine under test");
        let mut stdin = child.stdin.take();
        if has_stdin_file {
            stdin = None;
        }
        if let Some(bytes) = &self.stdin {
            let mut pipe = stdin.take().unwrap();
            // An engine that does not read its stdin (exec without -i) may have
            // closed it already: that is not the test's failure.
            if let Err(error) = pipe.write_all(bytes) {
                assert_eq!(
                    error.kind(),
                    std::io::ErrorKind::BrokenPipe,
                    "writing the engine's stdin: {error}"
                );
            }
        }
        Running {
            child,
            stdin,
            output_file: self.output_file.clone(),
            description: self.describe(),
            deadline: Instant::now() + self.timeout,
        }
    }

    /// Runs to the end (stdin: the given bytes, or nothing) and collects the output.
    pub fn output(self) -> Output {
        let has_stdin = self.stdin.is_some();
        let mut running = self.spawn();
        if !has_stdin {
            running.close_stdin();
        }
        running.wait()
    }
}

/// An engine process the test is still talking to.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    output_file: Option<std::path::PathBuf>,
    description: String,
    deadline: Instant,
}

impl Running {
    /// The engine's own pid (on the host).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn write_stdin(&mut self, bytes: &[u8]) {
        self.stdin
            .as_mut()
            .expect("stdin still open")
            .write_all(bytes)
            .unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends `signal` to the engine itself.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the engine to end (killing it at the deadline) and collects its output.
    pub fn wait(mut self) -> Output {
        self.close_stdin();
        let stdout = self.child.stdout.take();
        let stderr = self.child.stderr.take();
        let out_reader = std::thread::spawn(move || stdout.map(|mut s| read_all(&mut s)));
        let err_reader = std::thread::spawn(move || stderr.map(|mut s| read_all(&mut s)));
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > self.deadline {
                timed_out = true;
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let from_file = self
            .output_file
            .as_ref()
            .map(|path| std::fs::read(path).unwrap_or_default());
        Output::new(
            self.description.clone(),
            status,
            out_reader.join().unwrap().or(from_file).unwrap_or_default(),
            err_reader.join().unwrap().unwrap_or_default(),
            timed_out,
        )
    }
}

fn read_all(reader: &mut impl std::io::Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = reader.read_to_end(&mut bytes);
    bytes
}

fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The engine running on a pseudo-terminal the test holds (its stdin, stdout and
/// stderr, and its controlling terminal), as a person's shell would run it.
pub struct OnTerminal {
    child: Child,
    master: File,
    /// Everything read from the terminal so far.
    pub seen: String,
    /// Where in `seen` the next `expect` looks from (just after the last match).
    cursor: usize,
    description: String,
}

impl<'h> Invocation<'h> {
    /// Starts the engine on a new pty of `rows` × `cols`, in its own session with
    /// the pty as its controlling terminal.
    pub fn spawn_on_terminal(self, rows: u16, cols: u16) -> OnTerminal {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = File::from(pty.slave);
        let mut command = Command::new(
            self.program
                .clone()
                .unwrap_or_else(|| engine_binary().into()),
        );
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        let ns = self.host.mount_ns.as_raw_fd();
        let net = self.host.net_ns.as_ref().map_or(-1, |f| f.as_raw_fd());
        // SAFETY: only async-signal-safe calls between fork and exec: setns(2),
        // setsid(2) and the TIOCSCTTY ioctl on fd 0, which the parent set up.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(ns, libc::CLONE_NEWNS) != 0
                    || (net >= 0 && libc::setns(net, libc::CLONE_NEWNET) != 0)
                    || libc::setsid() < 0
                    || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .expect("failed to start the engine under test");
        OnTerminal {
            child,
            master: File::from(pty.master),
            seen: String::new(),
            cursor: 0,
            description: self.describe(),
        }
    }
}

impl OnTerminal {
    /// Types `bytes` on the terminal.
    pub fn type_keys(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Reads the terminal until `needle` appears after the previous match (10 s
    /// at most); everything read is in `seen`.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(at) = self.seen[self.cursor..].find(needle) {
                self.cursor += at + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear on the terminal of `{}`; it showed:\n{}",
                self.description,
                self.seen
            );
            self.read_some(Duration::from_millis(100));
        }
    }

    /// Like `expect`, but gives up after `wait` and says whether `needle` came.
    pub fn saw(&mut self, needle: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(at) = self.seen[self.cursor..].find(needle) {
                self.cursor += at + needle.len();
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.read_some(Duration::from_millis(50));
        }
    }

    fn read_some(&mut self, wait: Duration) {
        use std::io::Read;
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&self.master),
            nix::poll::PollFlags::POLLIN,
        )];
        let millis = wait.as_millis() as u16;
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(millis)).unwrap_or(0) > 0 {
            let mut buffer = [0u8; 4096];
            if let Ok(n) = self.master.read(&mut buffer) {
                self.seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    }

    /// Changes the terminal's size, as a person resizing the window does (the
    /// kernel sends SIGWINCH to the foreground process group: the engine).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize through a pointer valid for the call.
        let result = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(result, 0, "TIOCSWINSZ on the test's pty");
    }

    /// Whether the terminal is back in its normal (cooked) mode: echo and line
    /// editing on.
    pub fn is_cooked(&self) -> bool {
        let settings = nix::sys::termios::tcgetattr(&self.master).unwrap();
        use nix::sys::termios::LocalFlags;
        settings
            .local_flags
            .contains(LocalFlags::ECHO | LocalFlags::ICANON)
    }

    /// Sends `signal` to the engine.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal);
    }

    /// Waits for the engine to end (10 s at most, then kills it); its exit code.
    #[track_caller]
    pub fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.read_some(Duration::from_millis(20));
            if let Some(status) = self.child.try_wait().unwrap() {
                self.read_some(Duration::from_millis(50));
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "`{}` did not end within 10 s; its terminal showed:\n{}",
                    self.description, self.seen
                );
            }
        }
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
