//! The container's processes as the host sees them: finding one by a token in its
//! command line, killing it from outside, waiting for the file it writes when ready.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{engine_binary, token, Output, TestHost};

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

/// Waits until the container has written `name` in its root directory: in the
/// rootfs itself until chapter 5, in the container's own upper layer from then on
/// (the rootfs is never written). Up to 10 seconds.
pub fn wait_for_container_file(host: &TestHost, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let uppers = std::fs::read_dir(host.state.join("containers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|dir| dir.path().join("upper").join(name));
        if host.rootfs.join(name).exists() || uppers.into_iter().any(|p| p.exists()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the container did not write /{name} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// When process `pid` started (field 22 of /proc/PID/stat), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}
