//! The lifecycle's hooks: programs of the caller's that the runtime runs at fixed
//! points, with the container's state (the JSON `state` prints) on their stdin.
//! podman's and CRI-O's hooks directories, NVIDIA's GPU hook and the old network
//! plugins are such programs: a `prestart` hook sees the container's pid, so it can
//! reach into its network namespace before the program runs.
//!
//! A hook runs on the host, with exactly the spec's `args` and `env` (nothing of
//! the runtime's), and is killed when its `timeout` passes. A failing `prestart` or
//! `createRuntime` hook stops the container; a failing `poststart` or `poststop`
//! one is a warning (runtime spec, "Lifecycle").

use std::io::{Read, Seek, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::spec::Hook;
use super::state::State;

/// A hook that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("the {stage} hook {path} {what}")]
pub struct HookError {
    pub stage: &'static str,
    pub path: String,
    pub what: String,
}

/// Runs every hook of `stage` in order, each with `state` on its stdin; stops at
/// the first that fails.
pub fn run_all(stage: &'static str, hooks: &[Hook], state: &State) -> Result<(), HookError> {
    let json = serde_json::to_vec(state).expect("state serializes");
    for hook in hooks {
        log::debug!("running the {stage} hook {}", hook.path);
        run(hook, &json).map_err(|what| HookError {
            stage,
            path: hook.path.clone(),
            what,
        })?;
    }
    Ok(())
}

/// A `poststart` or `poststop` failure: said, and the lifecycle goes on.
pub fn warn_on_failure(outcome: Result<(), HookError>) {
    if let Err(error) = outcome {
        log::warn!("{error}");
    }
}

/// Runs one hook; why it failed, in words.
fn run(hook: &Hook, state_json: &[u8]) -> Result<(), String> {
    // BEGIN SOLUTION ch12 "run one hook: its args and env only, the state on stdin, killed after its timeout"
    // stderr goes to an anonymous file: a pipe could fill up while we wait.
    let stderr = nix::sys::memfd::memfd_create(
        c"hook-stderr",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|error| format!("could not get a file for its stderr: {error}"))?;
    let mut stderr = std::fs::File::from(stderr);
    let mut command = Command::new(&hook.path);
    if let Some((first, rest)) = hook.args.split_first() {
        command.arg0(first).args(rest);
    }
    command
        .env_clear()
        .envs(hook.env.iter().filter_map(|pair| pair.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?);
    let mut child = command
        .spawn()
        .map_err(|error| format!("could not be started: {error}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may have ended already.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout
        .map(|seconds| Instant::now() + Duration::from_secs(u64::from(seconds)));
    let status = loop {
        match child.try_wait().map_err(|error| error.to_string())? {
            Some(status) => break status,
            None if deadline.is_some_and(|d| Instant::now() >= d) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "was killed after its timeout of {} s",
                    hook.timeout.unwrap_or_default()
                ));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    let _ = stderr.rewind();
    let _ = (&mut stderr).take(4096).read_to_string(&mut said);
    let said = said.trim();
    Err(match said.is_empty() {
        true => format!("failed ({status})"),
        false => format!("failed ({status}): {said}"),
    })
    // END SOLUTION
}
