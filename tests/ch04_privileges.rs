//! Chapter 4 — privileges: capabilities, no_new_privs, seccomp, masked and
//! read-only paths, sealed devices, `--user`, `--read-only`, no fd or terminal
//! leaks. See chapters/04-privileges.md.
//!
//! Harmless when a protection is missing: the sysctl test writes back the current
//! value, the device test only reads 512 bytes, the keyring and user-namespace
//! calls change nothing outside the container's process, a persona is the probe's
//! own, sockets are closed unused, and pidfd_getfd copies the probe's own stdout.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use support::{probe_report, token, TestHost};

/// Docker's default capability set as /proc/PID/status shows it.
const DEFAULT_CAPS: &str = "00000000a80425fb";

/// The lines of /proc/self/status inside the container, as (name, value).
fn status(host: &TestHost, options: &[&str]) -> Vec<(String, String)> {
    let report = probe_report(host, options, &["report"]);
    report["status"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect()
}

fn field<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn root_in_the_container_holds_dockers_default_capabilities_only() {
    let host = TestHost::new();
    let status = status(&host, &[]);
    assert_eq!(field(&status, "CapBnd"), DEFAULT_CAPS, "{status:?}");
    assert_eq!(field(&status, "CapPrm"), DEFAULT_CAPS, "{status:?}");
    assert_eq!(field(&status, "CapEff"), DEFAULT_CAPS, "{status:?}");
    assert_eq!(field(&status, "CapInh"), "0000000000000000", "{status:?}");
    assert_eq!(field(&status, "CapAmb"), "0000000000000000", "{status:?}");
    // Without CAP_SYS_ADMIN, even the container's own hostname is out of reach.
    let out = host.run(&["hostname", &format!("x{}", token())]).output();
    assert_ne!(
        out.code, 0,
        "hostname must fail without CAP_SYS_ADMIN\n{out}"
    );
}

#[test]
fn a_non_root_user_gets_no_capabilities() {
    let host = TestHost::new();
    let status = status(&host, &["--user", "1000"]);
    assert_eq!(field(&status, "CapEff"), "0000000000000000", "{status:?}");
    assert_eq!(field(&status, "CapPrm"), "0000000000000000", "{status:?}");
    assert_eq!(field(&status, "CapBnd"), DEFAULT_CAPS, "{status:?}");
}

#[test]
fn cap_add_and_cap_drop_change_the_set() {
    let host = TestHost::new();
    let out = host
        .run(&[
            "--cap-drop",
            "chown",
            "sh",
            "-c",
            "touch /tmp/f && chown 1000 /tmp/f",
        ])
        .output();
    assert_ne!(out.code, 0, "chown must fail without CAP_CHOWN\n{out}");
    let name = format!("x{}", token());
    let out = host
        .run(&[
            "--cap-add",
            "SYS_ADMIN",
            "sh",
            "-c",
            &format!("hostname {name} && hostname"),
        ])
        .output();
    out.assert_success().assert_stdout_contains(&name);
    let status = status(&host, &["--cap-drop", "ALL", "--cap-add", "CAP_CHOWN"]);
    assert_eq!(
        field(&status, "CapEff"),
        "0000000000000001",
        "only CHOWN (bit 0) must remain: {status:?}"
    );
    let out = host.run(&["--cap-add", "NOT_A_CAP", "true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("unknown capability");
    snapshot!(host, &[], "ch04_unknown_capability", out.stderr);
}

#[test]
fn privileged_has_every_capability_and_no_filter() {
    let host = TestHost::new();
    let host_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .unwrap();
    let status = status(&host, &["--privileged"]);
    assert_eq!(field(&status, "CapEff"), host_bounding, "{status:?}");
    assert_eq!(field(&status, "Seccomp"), "0", "{status:?}");
}

#[test]
fn no_new_privs_stops_a_setuid_binary() {
    let host = TestHost::new();
    let suid = host.rootfs.join("probe-suid");
    std::fs::copy(host.rootfs.join("probe"), &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let guarded = probe_report(&host, &["--user", "1000"], &["setuid-check"]);
    assert_eq!(
        guarded["euid"], 1000,
        "a setuid binary must not raise privileges under no_new_privs: {guarded}"
    );
    let suid_run = |options: &[&str]| {
        let mut args = options.to_vec();
        args.extend(["/probe-suid", "setuid-check"]);
        host.run(&args).output().json()
    };
    let guarded = suid_run(&["--user", "1000"]);
    assert_eq!(
        guarded["euid"], 1000,
        "no_new_privs is on by default: {guarded}"
    );
    let open = suid_run(&[
        "--user",
        "1000",
        "--security-opt",
        "no-new-privileges=false",
    ]);
    assert_eq!(
        open["euid"], 0,
        "no-new-privileges=false lets setuid work again: {open}"
    );
}

#[test]
fn seccomp_filter_blocks_what_capabilities_do_not() {
    let host = TestHost::new();
    let status = status(&host, &[]);
    assert_eq!(
        field(&status, "Seccomp"),
        "2",
        "a seccomp filter must be loaded: {status:?}"
    );
    assert_eq!(field(&status, "NoNewPrivs"), "1", "{status:?}");
    let keyctl = probe_report(&host, &[], &["keyctl"]);
    assert_eq!(
        keyctl["errno"], 1,
        "keyctl must be refused with EPERM: {keyctl}"
    );
    let userns = probe_report(&host, &["--user", "1000"], &["unshare-user"]);
    assert_eq!(
        userns["ok"], false,
        "a user without capabilities must not create a user namespace: {userns}"
    );
    if cfg!(target_arch = "x86_64") {
        let out = host.run(&["/probe", "int80"]).output();
        assert!(
            out.code == 128 + libc::SIGSYS || out.stdout.contains("\"result\":-"),
            "a 32-bit syscall must be refused (killed by SIGSYS or an error)\n{out}"
        );
    }
}

/// Personas Docker's profile refuses: each turns off a protection of the process's
/// own memory layout, and only for the probe.
const REFUSED_PERSONAS: &[u64] = &[
    0x0040000, // ADDR_NO_RANDOMIZE
    0x0200000, // ADDR_COMPAT_LAYOUT
    0x0400000, // READ_IMPLIES_EXEC
];

#[test]
fn personality_is_limited_to_dockers_personas() {
    let host = TestHost::new();
    let pick = usize::from_str_radix(&token()[..2], 16).unwrap() % REFUSED_PERSONAS.len();
    let refused = REFUSED_PERSONAS[pick];
    let persona = format!("{refused:#x}");
    let set = probe_report(&host, &[], &["personality", &persona]);
    assert_eq!(
        set["errno"], 1,
        "personality({persona}) must be refused with EPERM: {set}"
    );
    assert_ne!(set["current"], refused, "{set}");
    for allowed in ["0xffffffff", "0x8"] {
        let set = probe_report(&host, &[], &["personality", allowed]);
        assert_eq!(set["ok"], true, "personality({allowed}) is allowed: {set}");
    }
    // Without the filter the kernel takes it: the EPERM above was seccomp's.
    let open = probe_report(
        &host,
        &["--security-opt", "seccomp=unconfined"],
        &["personality", &persona],
    );
    assert_eq!(open["current"], refused, "unconfined: {open}");
}

#[test]
fn vsock_and_crypto_sockets_are_refused() {
    let host = TestHost::new();
    let socket = |options: &[&str], family: String, kind: i32| {
        probe_report(&host, options, &["socket", &family, &kind.to_string()])
    };
    let vsock = libc::AF_VSOCK.to_string();
    // The kernel reads the family as a 32-bit int: high bits must not get it past.
    let vsock_high = format!("{:#x}", (1u64 << 32) | libc::AF_VSOCK as u64);
    let alg = libc::AF_ALG.to_string();
    let refused = [
        (&vsock, libc::SOCK_STREAM),
        (&vsock_high, libc::SOCK_STREAM),
        (&alg, libc::SOCK_SEQPACKET),
    ];
    for (family, kind) in refused {
        let result = socket(&[], family.clone(), kind);
        assert_eq!(
            result["errno"], 1,
            "socket({family}) must be refused with EPERM: {result}"
        );
        // Without the filter the kernel answers for itself: a socket, or (where the
        // family is missing) EAFNOSUPPORT — never EPERM.
        let open = socket(
            &["--security-opt", "seccomp=unconfined"],
            family.clone(),
            kind,
        );
        assert_ne!(open["errno"], 1, "unconfined socket({family}): {open}");
    }
    let unix = socket(&[], libc::AF_UNIX.to_string(), libc::SOCK_STREAM);
    assert_eq!(unix["ok"], true, "AF_UNIX sockets must work: {unix}");
    // The families next to the refused ones reach the kernel (which may not have them).
    for family in [libc::AF_ALG + 1, libc::AF_VSOCK + 1] {
        let result = socket(&[], family.to_string(), libc::SOCK_SEQPACKET);
        assert_ne!(
            result["errno"], 1,
            "socket({family}) is not refused: {result}"
        );
    }
}

#[test]
fn pidfd_getfd_needs_cap_sys_ptrace() {
    let host = TestHost::new();
    let refused = probe_report(&host, &[], &["pidfd-getfd"]);
    assert_eq!(
        (&refused["step"], &refused["errno"]),
        (&"pidfd_getfd".into(), &1.into()),
        "pidfd_getfd must be refused with EPERM: {refused}"
    );
    let allowed = probe_report(&host, &["--cap-add", "SYS_PTRACE"], &["pidfd-getfd"]);
    assert_eq!(allowed["ok"], true, "with CAP_SYS_PTRACE: {allowed}");
    // The probe copies its own descriptor, which the kernel allows anyone: without the
    // filter it works, so the EPERM above was seccomp's.
    let open = probe_report(
        &host,
        &["--security-opt", "seccomp=unconfined"],
        &["pidfd-getfd"],
    );
    assert_eq!(open["ok"], true, "unconfined: {open}");
}

#[test]
fn seccomp_can_be_turned_off_or_given_a_profile() {
    let host = TestHost::new();
    let status = status(&host, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(field(&status, "Seccomp"), "0", "{status:?}");
    let profile = host.canary(
        "profile.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let option = format!("seccomp={}", profile.display());
    let out = host
        .run(&[
            "--security-opt",
            &option,
            "sh",
            "-c",
            "mkdir /tmp/d 2>&1; echo done",
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("Operation not permitted");
    let broken = host.canary("broken.json", "{\"defaultAction\": 42}");
    let out = host
        .run(&[
            "--security-opt",
            &format!("seccomp={}", broken.display()),
            "true",
        ])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("not a valid Docker seccomp profile");
    let out = host.run(&["--security-opt", "apparmor=x", "true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("invalid security option");
}

#[test]
fn masked_paths_read_as_empty() {
    let host = TestHost::new();
    let candidates = [
        "/proc/timer_list",
        "/proc/keys",
        "/proc/sched_debug",
        "/proc/interrupts",
    ];
    let present: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|p| std::path::Path::new(p).exists())
        .collect();
    assert!(
        !present.is_empty(),
        "none of {candidates:?} exists on this host"
    );
    let script: String = present.iter().map(|p| format!("wc -c < {p}; ")).collect();
    let out = host.run(&["sh", "-c", &script]).output();
    out.assert_success();
    assert!(
        out.stdout.lines().all(|l| l.trim() == "0"),
        "masked files must read as empty\n{out}"
    );
    let out = host.run(&["--privileged", "sh", "-c", &script]).output();
    assert!(
        out.stdout.lines().any(|l| l.trim() != "0"),
        "--privileged leaves them readable\n{out}"
    );
}

#[test]
fn kernel_settings_are_read_only() {
    let host = TestHost::new();
    // Writes back the current value: harmless even where the protection is missing.
    let script = "v=$(cat /proc/sys/vm/swappiness); (echo $v > /proc/sys/vm/swappiness) 2>&1; \
                  grep ' /proc/sys ' /proc/self/mountinfo";
    let out = host.run(&["sh", "-c", script]).output();
    out.assert_stdout_contains("Read-only file system");
    assert!(
        out.stdout.contains(" ro,") || out.stdout.contains(" ro "),
        "/proc/sys must be a read-only mount\n{out}"
    );
}

#[test]
fn read_only_root_cannot_be_written() {
    let host = TestHost::new();
    let out = host
        .run(&[
            "--read-only",
            "sh",
            "-c",
            "touch /x 2>&1; echo ok > /dev/shm/y && cat /dev/shm/y",
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("Read-only file system")
        .assert_stdout_contains("ok");
    assert!(!host.rootfs.join("x").exists());
}

#[test]
fn a_device_node_made_with_mknod_cannot_be_opened() {
    let host = TestHost::new();
    // The host's root disk: the device of the `/` mount (major:minor in mountinfo).
    let device = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (
        libc::major(device).to_string(),
        libc::minor(device).to_string(),
    );
    for path in ["/tmp/disk", "/dev/disk"] {
        let result = probe_report(&host, &[], &["mknod-read", path, &major, &minor]);
        assert_eq!(
            result["open_ok"], false,
            "the host's disk was opened through {path}: {result}"
        );
    }
    // The chapter's mechanism: what the container can write is mounted nodev (a
    // host's own devices cgroup may refuse the open too, so check the mounts).
    let report = probe_report(&host, &[], &["report"]);
    for target in ["/", "/dev"] {
        let mount = report["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["target"] == target)
            .cloned()
            .unwrap_or_default();
        let options = mount["options"].as_str().unwrap_or("");
        assert!(
            options.split(',').any(|o| o == "nodev"),
            "{target} must be mounted nodev: {mount}"
        );
    }
    host.run(&[
        "sh",
        "-c",
        "echo fine > /dev/null && head -c 1 /dev/zero | wc -c",
    ])
    .output()
    .assert_success();
}

#[test]
fn no_file_descriptor_of_the_caller_reaches_the_command() {
    let host = TestHost::new();
    let canary = host.canary("fd-canary", &token());
    let file = std::fs::File::open(&canary).unwrap();
    let report = host
        .run(&["/probe", "fds"])
        .inherit_fd(file, 7)
        .output()
        .json();
    let fds: Vec<u64> = report["fds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["fd"].as_u64())
        .collect();
    assert_eq!(
        fds,
        [0, 1, 2],
        "only stdin, stdout and stderr may reach the command: {report}"
    );
}

#[test]
fn the_command_cannot_type_into_the_callers_terminal() {
    let host = TestHost::new();
    let pty = nix::pty::openpty(None, None).unwrap();
    let terminal = std::fs::File::from(pty.slave);
    let report = host
        .run(&["/probe", "tiocsti"])
        .stdin_file(terminal)
        .output()
        .json();
    assert_eq!(report["isatty"], true, "{report}");
    assert_eq!(
        report["ok"], false,
        "TIOCSTI injected input into the caller's terminal: {report}"
    );
}

#[test]
fn user_is_resolved_in_the_containers_passwd_and_group() {
    let host = TestHost::new();
    let out = host
        .run(&["--user", "ferry", "sh", "-c", "id; echo $HOME"])
        .output();
    out.assert_success();
    assert_eq!(
        out.stdout, "uid=1000(ferry) gid=1000(ferry) groups=29(audio),1000(ferry)\n/home/ferry\n",
        "{out}"
    );
    let out = host.run(&["--user", "1000:29", "id", "-g"]).output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "29", "{out}");
    let name = format!("nobody-{}", token());
    let out = host.run(&["--user", &name, "true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("no user matches");
}

#[test]
fn an_inherited_directory_is_no_way_out() {
    // CVE-2024-21626: a directory fd of the caller's, still open in the container,
    // lets `-w /proc/self/fd/N` start the command in the host's filesystem.
    let host = TestHost::new();
    let secret = token();
    host.canary("canary", &secret);
    let dir = std::fs::File::open(&host.dir).unwrap();
    let out = host
        .run(&["-w", "/proc/self/fd/7", "cat", "canary"])
        .inherit_fd(dir, 7)
        .output();
    assert!(
        !out.stdout.contains(&secret),
        "the command read a host file through an inherited fd\n{out}"
    );
    assert_ne!(
        out.code, 0,
        "the run must fail: the working directory cannot be reached\n{out}"
    );
}

// The image is the attacker: the files ferry reads from it, and PID 1's memory.

#[test]
fn passwd_and_group_that_are_not_regular_files_are_refused() {
    for (file, kind) in [("passwd", "character device"), ("group", "FIFO")] {
        let host = TestHost::new();
        let path = host.rootfs.join("etc").join(file);
        std::fs::remove_file(&path).unwrap();
        if kind == "FIFO" {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        } else {
            // An image may carry device nodes: reading this one would never end.
            nix::sys::stat::mknod(
                &host.rootfs.join("dev/zero"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, 5),
            )
            .unwrap();
            std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        }
        let out = host
            .run(&["--user", "ferry", "true"])
            .timeout(std::time::Duration::from_secs(10))
            .output();
        out.assert_code(125).assert_stderr_contains(&format!(
            "/etc/{file} in the container's root is a {kind}, not a regular file"
        ));
    }
}

#[test]
fn the_container_cannot_open_init_memory_for_writing() {
    let host = TestHost::new();
    // Opening is the test (append mode, nothing written); a write at offset 0 of
    // another process's memory would fail anyway (nothing is mapped there).
    let script = "if (exec 3>>/proc/1/mem) 2>/dev/null; then echo writable; else echo refused; fi";
    let out = host.run(&["--init", "sh", "-c", script]).output();
    out.assert_success();
    assert_eq!(
        out.stdout.trim(),
        "refused",
        "PID 1 is a copy of ferry: its memory must not be writable from the container\n{out}"
    );
}
