//! Chapter 2 — namespaces: uts, pid (and `--init`), ipc, net and cgroup.
//! See chapters/02-namespaces.md.
//!
//! Each test looks from inside the container and, where it matters, from the host.
//! They are harmless when a namespace is missing: nothing here renames the host,
//! and every process they start ends on its own within seconds.

mod support;

use nix::sys::signal::Signal;
use serde_json::Value;
use support::{probe_report, token, wait_for_container_file, TestHost};

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn host_namespace(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn hostname_defaults_to_the_short_id_and_the_host_keeps_its_own() {
    let host = TestHost::new();
    let before = host_hostname();
    let out = host
        .run(&["sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME"])
        .output();
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(
        lines[0].len(),
        12,
        "the default hostname is the short id\n{out}"
    );
    assert!(
        lines.iter().all(|l| *l == lines[0]),
        "hostname, /etc/hostname and $HOSTNAME must agree\n{out}"
    );
    assert_eq!(
        host_hostname(),
        before,
        "the host's hostname must not change"
    );
}

#[test]
fn hostname_flag_names_the_container() {
    let host = TestHost::new();
    let name = format!("web-{}", token());
    let out = host
        .run(&["--hostname", &name, "sh", "-c", "hostname; echo $HOSTNAME"])
        .output();
    out.assert_success();
    assert_eq!(out.stdout, format!("{name}\n{name}\n"), "{out}");
    let out = host.run(&["--hostname", "not a name!", "true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("invalid hostname");
}

#[test]
fn command_is_pid_1_and_sees_only_its_own_processes() {
    let host = TestHost::new();
    let marker = token();
    let script = format!("cat /proc/1/cmdline; echo; ls -d /proc/[0-9]* | wc -l; : {marker}");
    let out = host.run(&["sh", "-c", &script]).output();
    out.assert_success();
    let mut lines = out.stdout.lines();
    let pid1 = lines.next().unwrap_or("");
    assert!(
        pid1.contains(&marker),
        "PID 1 must be the container's command, not the host's init\n{out}"
    );
    let count: usize = lines
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .unwrap_or(usize::MAX);
    assert!(
        count <= 3,
        "only the container's processes may appear in /proc, saw {count}\n{out}"
    );
}

#[test]
fn host_files_are_not_reachable_through_proc_1_root() {
    let host = TestHost::new();
    let secret = token();
    let canary = host.canary("canary", &secret);
    let path = format!("/proc/1/root{}", canary.display());
    let read = probe_report(&host, &[], &["read", &path]);
    assert_eq!(
        read["ok"], false,
        "/proc/1/root led back to the host's files: {read}"
    );
}

#[test]
fn ipc_objects_of_the_host_are_invisible() {
    let host = TestHost::new();
    let key = (u32::from_str_radix(&token()[..7], 16).unwrap() | 1).to_string();
    let probe = support::probe_binary();
    let created = std::process::Command::new(probe)
        .args(["ipc-create", &key])
        .output()
        .unwrap();
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    let cleanup = IpcCleanup(created.clone());
    assert!(
        created["msg_id"].is_number() && created["shm_id"].is_number(),
        "could not create host IPC objects: {created}"
    );
    let found = probe_report(&host, &[], &["ipc-find", &key]);
    assert_eq!(
        found["msg_found"], false,
        "a host message queue is visible inside: {found}"
    );
    assert_eq!(
        found["shm_found"], false,
        "a host shared memory segment is visible inside: {found}"
    );
    drop(cleanup);
    let out = host
        .run(&["sh", "-c", "grep ' /dev/mqueue ' /proc/self/mountinfo"])
        .output();
    out.assert_success().assert_stdout_contains("mqueue");
}

/// Removes the host IPC objects a test created, even when it fails.
struct IpcCleanup(Value);

impl Drop for IpcCleanup {
    fn drop(&mut self) {
        let id = |key: &str| self.0[key].as_i64().unwrap_or(-1).to_string();
        let _ = std::process::Command::new(support::probe_binary())
            .args(["ipc-remove", &id("msg_id"), &id("shm_id")])
            .output();
    }
}

#[test]
fn network_has_only_a_loopback_and_it_is_up() {
    let host = TestHost::new();
    // --network none: chapter 2's namespace, before chapter 10 wires it to a bridge.
    let result = probe_report(&host, &["--network", "none"], &["loopback"]);
    assert_eq!(
        result["interfaces"],
        serde_json::json!(["lo"]),
        "only lo may exist: {result}"
    );
    assert_eq!(
        result["ok"], true,
        "a TCP connection over 127.0.0.1 must work: {result}"
    );
}

#[test]
fn every_namespace_differs_from_the_hosts() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    for name in ["uts", "pid", "ipc", "net", "cgroup", "mnt"] {
        let inside = report["ns"][name].as_str().unwrap_or("");
        assert_ne!(
            inside,
            host_namespace(name),
            "the {name} namespace is the host's: {}",
            report["ns"]
        );
    }
}

#[test]
fn sigterm_stops_an_init_container_at_once() {
    let host = TestHost::new();
    let ready = format!("ready-{}", token());
    // No trap: under --init the shell is PID 2, and SIGTERM's default action applies.
    let running = host
        .run(&["--init", "sh", "-c", &format!("echo > {ready}; sleep 10")])
        .spawn();
    wait_for_container_file(&host, &ready);
    running.signal(Signal::SIGTERM);
    let out = running.wait();
    // Without forwarding the sleep runs out and the shell exits 0.
    assert_eq!(
        out.code, 143,
        "SIGTERM must stop the command at once: PID 1 forwards it (128 + 15)\n{out}"
    );
}

#[test]
fn init_reaps_orphans() {
    let host = TestHost::new();
    // The subshell exits at once, orphaning its `sleep`, which the init must reap.
    let script = "(sleep 0.2 &); sleep 1; ps -o stat,comm";
    let out = host.run(&["--init", "sh", "-c", script]).output();
    out.assert_success();
    assert!(
        !out.stdout.lines().any(|l| l.trim_start().starts_with('Z')),
        "a zombie was left unreaped\n{out}"
    );
    let out = host.run(&["--init", "sh", "-c", "exit 7"]).output();
    out.assert_code(7);
}

// The image is the attacker: /etc/hostname belongs to the image, and PID 1 under
// --init must not hand the container anything of ferry's caller.

#[test]
fn etc_hostname_is_the_engines_file_bound_over_the_images() {
    let host = TestHost::new();
    let image_file = host.rootfs.join("etc/hostname");
    let before = std::fs::read(&image_file).unwrap();
    let name = format!("h-{}", token());
    let out = host
        .run(&["--hostname", &name, "sh", "-c", "cat /etc/hostname"])
        .output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), name, "{out}");
    assert_eq!(
        std::fs::read(&image_file).unwrap(),
        before,
        "the engine wrote the image's /etc/hostname: bind a file of its own over it"
    );
}

#[test]
fn a_symlinked_etc_hostname_is_refused() {
    let host = TestHost::new();
    // kernel.domainname is per UTS namespace: harmless if the engine wrote through
    // the link.
    let hostname = host.rootfs.join("etc/hostname");
    std::fs::remove_file(&hostname).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel/domainname", &hostname).unwrap();
    let out = host.run(&["true"]).output();
    out.assert_code(125).assert_stderr_contains(
        "/etc/hostname in the container's root is a symlink to /proc/sys/kernel/domainname",
    );
}

#[test]
fn a_fifo_at_etc_hostname_does_not_hang_the_engine() {
    let host = TestHost::new();
    let hostname = host.rootfs.join("etc/hostname");
    std::fs::remove_file(&hostname).unwrap();
    nix::unistd::mkfifo(&hostname, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = host
        .run(&["true"])
        .timeout(std::time::Duration::from_secs(10))
        .output();
    out.assert_code(125)
        .assert_stderr_contains("/etc/hostname in the container's root is a FIFO");
}

#[test]
fn init_hides_the_callers_environment_and_command_line() {
    let host = TestHost::new();
    let secret = format!("secret-{}", token());
    let script = "cat /proc/1/environ; echo; cat /proc/1/cmdline; echo; echo done";
    let out = host
        .run(&["--init", "sh", "-c", script])
        .env("FERRY_TEST_SECRET", &secret)
        .output();
    out.assert_success().assert_stdout_contains("done");
    assert!(
        !out.stdout.contains(&secret),
        "PID 1 showed the caller's environment to the container\n{out}"
    );
    let host_dir = host.dir.to_str().unwrap();
    assert!(
        !out.stdout.contains(host_dir),
        "PID 1's command line showed the host's paths to the container\n{out}"
    );
}
