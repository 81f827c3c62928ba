//! The chapter tests' harness: a throwaway "test host" per test, the fixture rootfs,
//! the binary under test and readable failures. See ARCHITECTURE.md, "The test harness".
//!
//! Every test gets its own temp dir (rootfs, state root, canaries) and runs the engine
//! inside its own mount namespace whose `/` is shared, as on a systemd laptop; on drop
//! it checks that no mount leaked into that namespace and no state was left behind.
#![allow(dead_code, unused_imports)]

pub mod cgroups;
mod fixture;
mod output;
mod probe;

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub use output::Output;
pub use probe::{binary as probe_binary, probe_report};

/// The engine under test: `ferry` (the reference) or `myferry` (the student's).
pub fn engine_binary() -> &'static str {
    option_env!("CARGO_BIN_EXE_ferry")
        .or(option_env!("CARGO_BIN_EXE_myferry"))
        .expect("the tests are targets of the ferry or myferry package")
}

/// A random token (12 hex digits) for assertions a hard-coded answer could pass.
pub fn token() -> String {
    let mut bytes = [0u8; 6];
    std::io::Read::read_exact(&mut File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// insta settings with the project's shared filters: the test's temp dir is `[ROOT]`,
/// the engine's name `[BIN]`, container ids `[ID]`, the given tokens `[TOKEN]`.
pub fn snapshot_settings(host: &TestHost, tokens: &[&str]) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/snapshots"));
    settings.add_filter(&regex_escape(host.dir.to_str().unwrap()), "[ROOT]");
    for token in tokens {
        settings.add_filter(&regex_escape(token), "[TOKEN]");
    }
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[ID]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[ID]");
    settings.add_filter(r"\bmyferry\b", "[BIN]");
    settings.add_filter(r"\bferry\b", "[BIN]");
    settings
}

/// Snapshot `value` under `name` with [`snapshot_settings`].
#[macro_export]
macro_rules! snapshot {
    ($host:expr, $tokens:expr, $name:expr, $value:expr) => {
        support::snapshot_settings(&$host, $tokens).bind(|| insta::assert_snapshot!($name, $value))
    };
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// How long a command may take before the harness kills it.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One test's world: temp dir, fixture rootfs, state root, and a mount namespace.
pub struct TestHost {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub state: PathBuf,
    /// `--cgroup-parent` of every container the test runs: `/ferry-test-TOKEN`.
    pub cgroup_parent: String,
    holder: Child,
    mount_ns: File,
    mounts_before: Vec<String>,
}

impl TestHost {
    /// Sets up a fresh test host; fails at once (with what to do) without root or busybox.
    pub fn new() -> TestHost {
        require_root();
        let name = format!("ferry-test-{}", token());
        let dir = PathBuf::from(format!("/tmp/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let rootfs = dir.join("rootfs");
        fixture::build_rootfs(&rootfs);
        let state = dir.join("state");
        let holder = spawn_namespace_holder();
        let mount_ns = File::open(format!("/proc/{}/ns/mnt", holder.id())).unwrap();
        let mut host = TestHost {
            dir,
            rootfs,
            state,
            cgroup_parent: format!("/{name}"),
            holder,
            mount_ns,
            mounts_before: Vec::new(),
        };
        host.mounts_before = host.mounts();
        host
    }

    /// The mounts of the test host's namespace, as "mount point fstype" lines.
    pub fn mounts(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", self.holder.id())).unwrap();
        let mut mounts: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let dash = fields.iter().position(|f| *f == "-")?;
                Some(format!("{} {}", fields.get(4)?, fields.get(dash + 1)?))
            })
            .collect();
        mounts.sort();
        mounts
    }

    /// Mounts that appeared in the test host since it was set up.
    pub fn leaked_mounts(&self) -> Vec<String> {
        self.mounts()
            .into_iter()
            .filter(|m| !self.mounts_before.contains(m))
            .collect()
    }

    /// `ENGINE --root STATE ARGS...`, ready to run inside the test host.
    pub fn engine(&self, args: &[&str]) -> Invocation<'_> {
        let mut all: Vec<OsString> = vec!["--root".into(), self.state.clone().into()];
        all.extend(args.iter().map(OsString::from));
        Invocation {
            host: self,
            args: all,
            env: Vec::new(),
            stdin: None,
            stdin_file: None,
            inherited: Vec::new(),
            timeout: TIMEOUT,
        }
    }

    /// `ENGINE run --rootfs ROOTFS --cgroup-parent PARENT [options and command]`.
    pub fn run(&self, args: &[&str]) -> Invocation<'_> {
        let rootfs = self.rootfs.to_str().unwrap();
        let mut all = vec![
            "run",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        all.extend_from_slice(args);
        self.engine(&all)
    }

    /// Writes a file with `contents` in the test's temp dir, outside the rootfs.
    pub fn canary(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Containers whose state directory exists under the state root.
    pub fn container_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.state.join("containers")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let leaked = self.leaked_mounts();
        let leftover = self.container_dirs();
        let cgroups = cgroups::remove_parent(&self.cgroup_parent);
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if std::thread::panicking() {
            return;
        }
        assert!(
            leaked.is_empty(),
            "mounts leaked out of the container into the test host (a laptop's host, where / is shared): {leaked:#?}\n\
             make every mount private (MS_REC | MS_PRIVATE on /) before mounting anything (chapter 1)"
        );
        assert!(
            cgroups.is_empty(),
            "cgroups were left behind after the containers ended: {cgroups:#?}\n\
             remove the container's cgroup on every path (chapter 3)"
        );
        assert!(
            leftover.is_empty(),
            "the state root still holds {leftover:?} after the container ended: remove the container's directory on every path"
        );
    }
}

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

impl Invocation<'_> {
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

/// Finds the container's process on the host: a process whose command line holds
/// `token`, other than the engine itself (`engine_pid`) and other than the
/// engine's child before it has exec'd the command (it still runs the engine's
/// binary, with the engine's command line). Waits up to 10 seconds.
pub fn find_process(token: &str, engine_pid: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    let engine = std::fs::canonicalize(engine_binary()).unwrap();
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == engine_pid || pid == std::process::id() as i32 {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let exe = std::fs::read_link(entry.path().join("exe")).ok();
            if String::from_utf8_lossy(&cmdline).contains(token) && exe.as_ref() != Some(&engine) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no process with {token:?} in its command line appeared within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a container (with `options`) whose shell waits on its stdin, then kills it
/// with SIGKILL from the host, as an OOM killer or an operator would; returns the
/// engine's output. Harmless without isolation: the shell has no children.
pub fn sigkill_from_host(host: &TestHost, options: &[&str]) -> Output {
    let marker = token();
    let script = format!("read x; : {marker}");
    let mut args = options.to_vec();
    args.extend(["sh", "-c", &script]);
    let running = host.run(&args).spawn();
    let pid = find_process(&marker, running.pid());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    running.wait()
}

/// Waits until `path` exists (a container's "I am ready" file), up to 10 seconds.
pub fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The tests need root: fail at once, saying how to get it, never skip silently.
fn require_root() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    panic!(
        "these tests run containers and need root, and this process is not root.\n\
         run them through cargo as yourself: its runner (scripts/cargo-runner) escalates with sudo:\n    \
         cargo test -p myferry --test ch00_process    (or: cargo xtask check 0)\n\
         without sudo, install it (apt-get install sudo, as root) or work as root in a VM.\n\
         avoid `sudo cargo test`: it leaves root-owned files in target/ (see chapters/setup.md)"
    );
}

/// A `sleep` in a new mount namespace whose `/` is private to it (cut off from the
/// real host) and then shared again, as a systemd laptop's `/` is.
fn spawn_namespace_holder() -> Child {
    let mut command = Command::new("sleep");
    command
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: only system calls between fork and exec (unshare, mount), no allocation:
    // the path and flags are prepared before the fork.
    unsafe {
        command.pre_exec(|| {
            let root = c"/".as_ptr();
            // The holder dies with the test's thread, even if the test panics.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    std::ptr::null(),
                    root,
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    std::ptr::null(),
                    root,
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SHARED,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .expect("failed to create the test host's mount namespace")
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
