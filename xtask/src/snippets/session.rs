//! The shell a page's commands run in, as a reader's terminal would run them: one
//! bash for the whole page, so later blocks see the variables, aliases, files and
//! servers of earlier ones.
//!
//! It runs as root in namespaces of its own (unshare(1)): a PID namespace, so that
//! ending the session ends every process it started, servers and containers
//! included; a network namespace with only its own loopback, so that a page's
//! `127.0.0.1:5000` is free and nothing reaches the internet; a mount namespace
//! where the scratch directory's `tmp/` is `/tmp`, and `/etc` and `/var/lib` are
//! read-only (a command that would change the machine fails instead). `sudo` is a
//! function that runs its command (the session is root already), and the
//! environment is only PATH (the engine's wrappers first), HOME, USER, LANG, TERM.
//!
//! Commands go in on bash's stdin, each as `{ COMMAND } </dev/null` (so no command
//! eats the ones after it), followed by a line that prints a token and `$?`: the
//! output up to the token is the command's, stdout and stderr interleaved as on a
//! terminal.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::scratch::{quote, Scratch};
use crate::util;

pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    chunks: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    token: String,
}

/// What a command did.
#[derive(Debug)]
pub struct Outcome {
    pub exit: i32,
    pub output: String,
}

/// Why a command has no outcome.
#[derive(Debug)]
pub enum Failure {
    /// bash would not parse it (`bash -n`): an unclosed quote would swallow the page.
    Syntax(String),
    /// It ran past its time limit; the session is ended.
    Timeout(Duration, String),
    /// The shell ended under it (`exit`, or a crash).
    Ended(String),
}

impl Session {
    pub fn start(scratch: &Scratch) -> Result<Session> {
        let path = format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            scratch.path("bin").display()
        );
        let env = [
            ("PATH", path.as_str()),
            ("HOME", &scratch.path("home").to_string_lossy()),
            ("USER", "root"),
            ("LOGNAME", "root"),
            ("LANG", "C.UTF-8"),
            ("TERM", "dumb"),
        ]
        .map(|(k, v)| format!("{k}={v}"));
        let mut command = util::as_root("env");
        command
            .arg("-i")
            .args(&env)
            .args(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"])
            .args(["--mount", "--propagation", "private", "--net", "--"])
            .args(["bash", "--noprofile", "--norc"]);
        let (reader, writer) = std::io::pipe()?;
        command
            .stdin(std::process::Stdio::piped())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let mut child = command
            .spawn()
            .context("failed to start the page's shell (unshare and bash)")?;
        // The parent's copies of the pipe's write end go with the command.
        drop(command);
        let stdin = child.stdin.take();
        let (sender, chunks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = reader;
            let mut buffer = [0u8; 8192];
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                if sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut session = Session {
            child,
            stdin,
            chunks,
            pending: Vec::new(),
            token: format!("__snippet_done_{}_{}__", std::process::id(), nonce()),
        };
        let init = format!(
            r#"set -e
mount --bind {tmp} /tmp
for dir in /etc /var/lib; do mount --bind "$dir" "$dir"; mount -o remount,bind,ro "$dir"; done
ip link set lo up
cd {work}
set +e
shopt -s expand_aliases
sudo() {{
  while [ $# -gt 0 ]; do
    case $1 in
      -E|-H|-n|--preserve-env|--preserve-env=*) shift ;;
      --) shift; break ;;
      -*) echo "sudo $1: not an option the snippet runner knows" >&2; return 1 ;;
      *) break ;;
    esac
  done
  env "$@"
}}
"#,
            tmp = quote(&scratch.path("tmp").to_string_lossy()),
            work = quote(&scratch.path("work").to_string_lossy()),
        );
        match session.send(&init, Duration::from_secs(20)) {
            Ok(outcome) if outcome.exit == 0 => Ok(session),
            Ok(Outcome { output, .. })
            | Err(Failure::Ended(output) | Failure::Timeout(_, output)) => {
                session.finish();
                bail!("the page's shell did not start:\n{output}")
            }
            Err(Failure::Syntax(error)) => bail!("the runner's own script does not parse: {error}"),
        }
    }

    /// Runs one command of the page, killed with the session after `limit`.
    pub fn run(&mut self, command: &str, limit: Duration) -> Result<Outcome, Failure> {
        // `:` first: a group needs a command, and a line may be only a comment.
        let group = format!("{{ :\n{command}\n}} </dev/null");
        let check = Command::new("bash").args(["-n", "-c", &group]).output();
        if let Ok(check) = check {
            if !check.status.success() {
                return Err(Failure::Syntax(
                    String::from_utf8_lossy(&check.stderr).trim().to_string(),
                ));
            }
        }
        self.send(&group, limit)
    }

    fn send(&mut self, script: &str, limit: Duration) -> Result<Outcome, Failure> {
        let text = format!("{script}\nprintf '\\n%s %d\\n' {} \"$?\"\n", self.token);
        let written = self.stdin.as_mut().map(|stdin| {
            stdin
                .write_all(text.as_bytes())
                .and_then(|()| stdin.flush())
        });
        if !matches!(written, Some(Ok(()))) {
            return Err(Failure::Ended(self.take_pending()));
        }
        let deadline = Instant::now() + limit;
        let marker = format!("\n{} ", self.token);
        loop {
            if let Some(at) = find(&self.pending, marker.as_bytes()) {
                let after = at + marker.len();
                if let Some(end) = self.pending[after..].iter().position(|b| *b == b'\n') {
                    let exit = String::from_utf8_lossy(&self.pending[after..after + end])
                        .trim()
                        .parse()
                        .unwrap_or(-1);
                    let output = String::from_utf8_lossy(&self.pending[..at]).into_owned();
                    self.pending.drain(..after + end + 1);
                    return Ok(Outcome { exit, output });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.pending.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => {
                    let output = self.take_pending();
                    self.kill();
                    return Err(Failure::Timeout(limit, output));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Ended(self.take_pending()))
                }
            }
        }
    }

    fn take_pending(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned()
    }

    /// Ends the shell: end of input, and if it does not exit, a kill. Either way its
    /// PID namespace ends, and every process in it with it.
    pub fn finish(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// SIGKILL to unshare, which takes its child, the namespace's PID 1, with it
    /// (`--kill-child`). Through sudo, unshare is sudo's descendant.
    fn kill(&mut self) {
        if util::is_root() {
            let _ = self.child.kill();
        } else {
            for pid in descendants(self.child.id()) {
                let _ = util::as_root("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.finish();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Random bits for the token: a std hasher's keys are (no RNG crate in xtask).
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// The processes below `pid`, children first (from /proc/*/stat's parent field).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let parent = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((child, parent))
        })
        .collect();
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for (child, _) in parents.iter().filter(|(_, p)| *p == parent) {
            found.push(*child);
            queue.push(*child);
        }
    }
    found
}
