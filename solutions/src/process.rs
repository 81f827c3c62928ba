//! The container's command as a process: find it, start it in a session of its
//! own, and turn how it ended into an exit code.
//!
//! Chapter 0 (chapters/00-process.md). execve(2) replaces ferry's code in the child
//! with the command's; what it inherits (fds 0-2, the signal mask) and what it does
//! not (the environment, which ferry passes explicitly) is the chapter's lesson.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::wait::WaitStatus;

use crate::errors::{EXIT_ENGINE_FAILED, EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("executable file not found: {program:?} is in none of the container's PATH directories ({path_var})")]
    NotInPath { program: String, path_var: String },
    #[error("executable file not found: {path} does not exist in the container")]
    NoSuchFile { path: PathBuf },
    #[error("{path} is not executable: it is not a regular file with an x permission bit")]
    NotExecutable { path: PathBuf },
    #[error("failed to execute {path}")]
    Exec {
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("failed to start a new session (setsid(2))")]
    Session(#[source] Errno),
    #[error("an argument or variable holds a NUL byte: {text:?}")]
    Nul { text: String },
}

impl ExecError {
    /// docker's exit codes: 127 not found, 126 found but not executable.
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::NotInPath { .. } | ExecError::NoSuchFile { .. } => EXIT_NOT_FOUND,
            ExecError::Exec {
                source: Errno::ENOENT,
                ..
            } => EXIT_NOT_FOUND,
            ExecError::NotExecutable { .. } => EXIT_NOT_EXECUTABLE,
            ExecError::Exec {
                source: Errno::EACCES | Errno::ENOEXEC | Errno::EPERM,
                ..
            } => EXIT_NOT_EXECUTABLE,
            _ => EXIT_ENGINE_FAILED,
        }
    }
}

/// Finds the file to execute for `program`, as the shell would.
///
/// `root` is where the container's `/` is in this process's view: `/` once chapter 1
/// has moved the process into its rootfs, the rootfs directory before that. A
/// program with a `/` is taken as a path (absolute ones under `root`, relative ones
/// left as they are: the child has already changed into the working directory, and
/// the kernel resolves them from there); a bare name is looked up in each directory
/// of `path_var` in turn. The first regular file with an x bit wins. If only
/// non-executable files were found, that is `NotExecutable` (126); nothing at all is
/// `NotInPath` / `NoSuchFile` (127). The returned path is one this process can exec.
pub fn resolve_program(root: &Path, program: &str, path_var: &str) -> Result<PathBuf, ExecError> {
    // BEGIN SOLUTION ch00 "find the program in the container (PATH lookup; 126 vs 127)"
    let in_root = |path: &Path| root.join(path.strip_prefix("/").unwrap_or(path));
    if program.contains('/') {
        let path = match program.strip_prefix('/') {
            Some(_) => in_root(Path::new(program)),
            None => PathBuf::from(program),
        };
        return match is_executable(&path) {
            Some(true) => Ok(path),
            Some(false) => Err(ExecError::NotExecutable { path }),
            None => Err(ExecError::NoSuchFile {
                path: PathBuf::from(program),
            }),
        };
    }
    let mut not_executable = None;
    for dir in path_var.split(':').filter(|dir| dir.starts_with('/')) {
        let candidate = in_root(&Path::new(dir).join(program));
        match is_executable(&candidate) {
            Some(true) => return Ok(candidate),
            Some(false) => {
                not_executable.get_or_insert(candidate);
            }
            None => {}
        }
    }
    match not_executable {
        Some(path) => Err(ExecError::NotExecutable { path }),
        None => Err(ExecError::NotInPath {
            program: program.to_string(),
            path_var: path_var.to_string(),
        }),
    }
    // END SOLUTION
}

/// `Some(true)`: a regular file someone may execute; `Some(false)`: something
/// that is not; `None`: nothing there (symlinks are followed).
fn is_executable(path: &Path) -> Option<bool> {
    let metadata = std::fs::metadata(path).ok()?;
    Some(metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Starts a new session with the child as its leader (see setsid(2)).
///
/// The container loses the caller's controlling terminal, so it cannot send it
/// job-control signals; chapter 4 completes the guard against TIOCSTI.
pub fn new_session() -> Result<(), ExecError> {
    // BEGIN SOLUTION ch00 "start a new session (setsid(2))"
    nix::unistd::setsid().map(drop).map_err(ExecError::Session)
    // END SOLUTION
}

/// Replaces this process with `program` (see execve(2)). Returns only on failure.
///
/// `argv[0]` is the name the user typed, as a shell passes it (busybox relies on
/// it to pick the applet); `env` is the complete environment — nothing else is
/// inherited.
pub fn exec(program: &Path, argv: &[String], env: &[String]) -> ExecError {
    // BEGIN SOLUTION ch00 "replace the child with the command (execve(2)) with a clean environment"
    let c_string = |text: &str| {
        CString::new(text).map_err(|_| ExecError::Nul {
            text: text.to_string(),
        })
    };
    let strings = |list: &[String]| {
        list.iter()
            .map(|s| c_string(s))
            .collect::<Result<Vec<_>, _>>()
    };
    let (path, argv, env) = match (
        c_string(&program.to_string_lossy()),
        strings(argv),
        strings(env),
    ) {
        (Ok(path), Ok(argv), Ok(env)) => (path, argv, env),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => return error,
    };
    let Err(source) = nix::unistd::execve(&path, &argv, &env);
    ExecError::Exec {
        path: program.to_path_buf(),
        source,
    }
    // END SOLUTION
}

/// The exit code `ferry run` reports for how the command ended: its own exit code,
/// or 128 + the signal's number when a signal killed it (137 for SIGKILL), as a
/// shell and docker report it.
pub fn exit_code(status: WaitStatus) -> i32 {
    // BEGIN SOLUTION ch00 "turn a wait status into an exit code (128+n for signal n)"
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
        other => {
            log::warn!("unexpected wait status {other:?}");
            EXIT_ENGINE_FAILED
        }
    }
    // END SOLUTION
}

/// Whether process `pid` has ended and waits to be reaped (state `Z` in
/// /proc/PID/stat, see proc(5)).
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = &stat[stat.rfind(')')? + 1..];
            after_name
                .split_whitespace()
                .next()
                .map(|state| state == "Z")
        })
        .unwrap_or(false)
}

/// When process `pid` started (field 22 of /proc/PID/stat, see proc(5)).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // The first field after the name is field 3.
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// A process named so that a reused pid is not taken for it: pid and start time
/// (field 22 of /proc/PID/stat). Containers' supervisors and first processes
/// (chapter 8) and the holders of network leases (chapter 10) are named so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessRef {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessRef {
    /// The calling process.
    pub fn me() -> ProcessRef {
        let pid = std::process::id() as i32;
        ProcessRef {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// Process `pid`, if it exists now.
    pub fn of(pid: i32) -> Option<ProcessRef> {
        Some(ProcessRef {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// Whether it still runs: the same process (not a reused pid) and not a
    /// zombie (its parent may be slow to reap it).
    pub fn runs(&self) -> bool {
        start_time(self.pid) == Some(self.start_time) && !is_zombie(self.pid)
    }
}

/// A process as `top` lists it (`ps -ef`'s columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub user: String,
    pub pid: i32,
    pub ppid: i32,
    /// When it started, HH:MM.
    pub started: String,
    /// CPU time used, HH:MM:SS.
    pub time: String,
    pub command: String,
}

/// The processes in the PID namespace of process `pid` (the host's view: pids as
/// the host numbers them), ordered by pid: a container's processes, its `exec`s
/// included.
pub fn in_pid_namespace_of(pid: i32) -> Vec<ProcessInfo> {
    let namespace = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(wanted) = namespace(&pid.to_string()) else {
        return Vec::new();
    };
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            stat.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|t| t.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let mut found: Vec<ProcessInfo> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid: i32 = name.parse().ok()?;
            (namespace(&name)? == wanted).then_some(())?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
            let number = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
            let cpu = (number(14)? + number(15)?) / ticks;
            let started = boot + number(22)? / ticks;
            let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1)?.parse::<u32>().ok())?;
            let user = nix::unistd::User::from_uid(uid.into())
                .ok()
                .flatten()
                .map_or(uid.to_string(), |u| u.name);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let command = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let clock = crate::clock::rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(started),
            );
            Some(ProcessInfo {
                user,
                pid,
                ppid: number(4)? as i32,
                started: clock.get(11..16).unwrap_or("?").to_string(),
                time: format!("{:02}:{:02}:{:02}", cpu / 3600, cpu / 60 % 60, cpu % 60),
                command,
            })
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}
