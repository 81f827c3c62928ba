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

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn describe(&self) -> String {
        let mut text = String::from(engine_binary());
        for arg in &self.args {
            text.push(' ');
            text.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        text
    }

    /// Starts the engine with its stdin a pipe the test holds open.
    pub fn spawn(mut self) -> Running {
        let mut command = Command::new(engine_binary());
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let has_stdin_file = self.stdin_file.is_some();
        match self.stdin_file.take() {
            Some(file) => command.stdin(Stdio::from(file)),
            None => command.stdin(Stdio::piped()),
        };
        let ns = self.host.mount_ns.as_raw_fd();
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
                if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
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
            pipe.write_all(bytes).unwrap();
        }
        Running {
            child,
            stdin,
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
        let mut stdout = self.child.stdout.take().unwrap();
        let mut stderr = self.child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || read_all(&mut stdout));
        let err_reader = std::thread::spawn(move || read_all(&mut stderr));
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
        Output::new(
            self.description.clone(),
            status,
            out_reader.join().unwrap(),
            err_reader.join().unwrap(),
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
