//! Chapter 1 — a filesystem of its own: a mount namespace with private propagation,
//! pivot_root (chroot with --no-pivot), /proc, a minimal /dev, a read-only /sys.
//! See chapters/01-filesystem.md.
//!
//! Every test runs the engine in a test host whose `/` is shared (as on a systemd
//! laptop), and the harness fails any test after which a mount leaked into it.

mod support;

use serde_json::Value;
use support::{probe_report, token, TestHost};

/// The mounts the probe saw, as (target, fstype, options, super options).
fn mounts(report: &Value) -> Vec<(String, String, String, String)> {
    let field = |m: &Value, key: &str| m[key].as_str().unwrap_or("").to_string();
    report["mounts"]
        .as_array()
        .expect("the probe lists mounts")
        .iter()
        .map(|m| {
            (
                field(m, "target"),
                field(m, "fstype"),
                field(m, "options"),
                field(m, "super_options"),
            )
        })
        .collect()
}

fn mount_at<'a>(
    mounts: &'a [(String, String, String, String)],
    target: &str,
) -> Option<&'a (String, String, String, String)> {
    mounts.iter().rev().find(|m| m.0 == target)
}

#[test]
fn container_sees_its_rootfs_not_the_hosts_files() {
    let host = TestHost::new();
    let marker = format!("marker-{}", token());
    std::fs::write(host.rootfs.join(&marker), "").unwrap();
    let secret = token();
    let canary = host.canary("canary", &secret);
    let report = probe_report(&host, &[], &["report"]);
    let entries: Vec<&str> = report["root_entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        entries.contains(&marker.as_str()),
        "`/` must be the rootfs: {entries:?}"
    );
    let read = probe_report(&host, &[], &["read", canary.to_str().unwrap()]);
    assert_eq!(
        read["ok"], false,
        "a host file outside the rootfs was readable: {read}"
    );
}

#[test]
fn proc_is_mounted_inside() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    let mounts = mounts(&report);
    let proc_mount =
        mount_at(&mounts, "/proc").unwrap_or_else(|| panic!("no /proc mount: {mounts:?}"));
    assert_eq!(proc_mount.1, "proc");
    let out = host
        .run(&["sh", "-c", "cat /proc/self/status | grep ^Pid:"])
        .output();
    out.assert_success().assert_stdout_contains("Pid:");
}

#[test]
fn dev_is_a_minimal_tmpfs_with_the_default_devices() {
    let host = TestHost::new();
    let out = host
        .run(&["sh", "-c", "ls -1 /dev; find /dev -type b | wc -l"])
        .output();
    out.assert_success();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    let block_devices = lines.pop().unwrap().trim().to_string();
    // Later chapters add /dev/mqueue (chapter 2, the IPC namespace's message queues).
    lines.retain(|name| *name != "mqueue");
    let expected = [
        "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty",
        "urandom", "zero",
    ];
    assert_eq!(
        lines, expected,
        "/dev must hold exactly the default devices and links\n{out}"
    );
    assert_eq!(
        block_devices, "0",
        "no block device (the host's disks) in /dev\n{out}"
    );
    let report = probe_report(&host, &[], &["report"]);
    let mounts = mounts(&report);
    assert_eq!(
        mount_at(&mounts, "/dev").map(|m| m.1.as_str()),
        Some("tmpfs"),
        "{mounts:?}"
    );
    assert_eq!(
        mount_at(&mounts, "/dev/shm").map(|m| m.1.as_str()),
        Some("tmpfs"),
        "{mounts:?}"
    );
}

#[test]
fn devices_work_and_have_open_permissions() {
    let host = TestHost::new();
    let script = "echo discarded > /dev/null && head -c 16 /dev/urandom | wc -c && head -c 4 /dev/zero | od -An -tx1 \
                  && stat -c '%a %t:%T' /dev/null /dev/tty && ls -l /dev/stdout";
    let out = host.run(&["sh", "-c", script]).output();
    out.assert_success();
    out.assert_stdout_contains("16")
        .assert_stdout_contains("00 00 00 00");
    out.assert_stdout_contains("666 1:3")
        .assert_stdout_contains("666 5:0");
    out.assert_stdout_contains("/proc/self/fd/1");
}

#[test]
fn devpts_is_a_new_instance() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    let mounts = mounts(&report);
    let pts =
        mount_at(&mounts, "/dev/pts").unwrap_or_else(|| panic!("no /dev/pts mount: {mounts:?}"));
    assert_eq!(pts.1, "devpts");
    // The host's instance has ptmxmode=000; a new instance mounted as the chapter says has 666.
    assert!(
        pts.3.contains("ptmxmode=666"),
        "devpts must be a new instance with ptmxmode=0666: {pts:?}"
    );
}

#[test]
fn sys_is_read_only() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    let mounts = mounts(&report);
    let sys = mount_at(&mounts, "/sys").unwrap_or_else(|| panic!("no /sys mount: {mounts:?}"));
    assert_eq!(sys.1, "sysfs");
    assert!(
        sys.2.split(',').any(|o| o == "ro"),
        "/sys must be mounted read-only: {sys:?}"
    );
    let out = host
        .run(&[
            "sh",
            "-c",
            &format!("mkdir /sys/ferry-{} 2>&1; true", token()),
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("Read-only file system");
}

#[test]
fn old_root_is_detached_and_removed() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    // The container's own kernel filesystems (and what later chapters mount under
    // them) and the engine's files bound over the image's (chapter 2's
    // /etc/hostname, chapter 8's /etc/hosts and /etc/resolv.conf) are fine;
    // anything else came from the host.
    let own = |target: &str| {
        target == "/"
            || ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].contains(&target)
            || ["/proc", "/dev", "/sys"]
                .iter()
                .any(|p| target == *p || target.starts_with(&format!("{p}/")))
    };
    let strays: Vec<String> = mounts(&report)
        .into_iter()
        .map(|m| m.0)
        .filter(|target| !own(target))
        .collect();
    assert!(
        strays.is_empty(),
        "the host's mounts are still reachable in the container: {strays:?}"
    );
    let entries = report["root_entries"].to_string();
    assert!(
        !entries.contains("old"),
        "the old root's directory must be removed: {entries}"
    );
}

#[test]
fn mounts_do_not_leak_to_a_host_whose_root_is_shared() {
    let host = TestHost::new();
    // --privileged keeps the right to mount once chapter 4 takes it away.
    host.run(&[
        "--privileged",
        "sh",
        "-c",
        "mkdir -p /mnt/x && mount -t tmpfs leak-test /mnt/x && true",
    ])
    .output()
    .assert_success();
    let leaked = host.leaked_mounts();
    assert!(
        leaked.is_empty(),
        "mounts appeared in the test host: {leaked:?} (make / private first)"
    );
}

#[test]
fn double_chroot_breakout_fails() {
    let host = TestHost::new();
    let secret = token();
    let canary = host.canary("canary", &secret);
    let result = probe_report(&host, &[], &["escape-chroot", canary.to_str().unwrap()]);
    assert_eq!(
        result["escaped"], false,
        "the probe climbed out of the container's root: {result}"
    );
    assert!(!result.to_string().contains(&secret), "{result}");
}

#[test]
fn no_pivot_still_runs_in_the_rootfs() {
    let host = TestHost::new();
    let marker = format!("marker-{}", token());
    std::fs::write(host.rootfs.join(&marker), "").unwrap();
    let canary = host.canary("canary", &token());
    let report = probe_report(&host, &["--no-pivot"], &["report"]);
    assert!(
        report["root_entries"].to_string().contains(&marker),
        "{report}"
    );
    let read = probe_report(&host, &["--no-pivot"], &["read", canary.to_str().unwrap()]);
    assert_eq!(
        read["ok"], false,
        "chroot must hide the host's files from plain path lookups: {read}"
    );
}

#[test]
fn command_missing_from_the_rootfs_exits_127_even_if_the_host_has_it() {
    let host = TestHost::new();
    std::fs::remove_file(host.rootfs.join("bin/ls")).unwrap();
    let out = host.run(&["ls"]).output();
    out.assert_code(127).assert_stderr_contains("\"ls\"");
    let out = host.run(&["/usr/bin/env"]).output();
    out.assert_code(127).assert_stderr_contains("/usr/bin/env");
}

// The image is the attacker: a rootfs is somebody else's directory, and the engine
// must neither follow it out of itself nor write into it.

#[test]
fn symlinked_mount_targets_are_refused() {
    // Each link aims at a directory in the test's own temp dir (or inside the
    // rootfs): harmless if the engine followed it, since it would mount only in the
    // container's mount namespace.
    let cases: &[(&str, &str)] = &[("proc", "ABSOLUTE"), ("sys", "tmp"), ("dev", "etc/../tmp")];
    for (name, target) in cases {
        let host = TestHost::new();
        let outside = host.dir.join(format!("outside-{}", token()));
        std::fs::create_dir(&outside).unwrap();
        let target = match *target {
            "ABSOLUTE" => outside.to_str().unwrap().to_string(),
            relative => relative.to_string(),
        };
        let link = host.rootfs.join(name);
        std::fs::remove_dir(&link).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let out = host.run(&["true"]).output();
        out.assert_code(125).assert_stderr_contains(&format!(
            "/{name} in the container's root is a symlink to {target}"
        ));
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "the engine wrote where /{name} pointed\n{out}"
        );
    }
}

#[test]
fn a_mount_target_that_is_not_a_directory_is_refused() {
    let host = TestHost::new();
    std::fs::remove_dir(host.rootfs.join("sys")).unwrap();
    std::fs::write(host.rootfs.join("sys"), "not a directory").unwrap();
    let out = host.run(&["true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("/sys in the container's root is a regular file, not a directory");
}

#[test]
fn the_rootfs_is_not_changed_by_any_run() {
    let host = TestHost::new();
    let before = support::fixture::tree_listing(&host.rootfs);
    let workdir = format!("/missing-{}", token());
    for options in [
        &[][..],
        &["--read-only"][..],
        &["--no-pivot"][..],
        &["--init"][..],
        &["--hostname", "changed"][..],
        &["-w", &workdir][..],
    ] {
        let mut args = options.to_vec();
        args.extend(["sh", "-c", "cat /etc/hostname /etc/passwd > /dev/null"]);
        let out = host.run(&args).output();
        let after = support::fixture::tree_listing(&host.rootfs);
        let changed: Vec<&String> = after.iter().filter(|line| !before.contains(line)).collect();
        let gone: Vec<&String> = before.iter().filter(|line| !after.contains(line)).collect();
        assert!(
            changed.is_empty() && gone.is_empty(),
            "a run with {options:?} changed the rootfs: new or changed {changed:#?}, gone {gone:#?}\n{out}"
        );
    }
}

#[test]
fn a_read_only_rootfs_runs() {
    let mut host = TestHost::new();
    host.make_rootfs_read_only();
    let out = host
        .run(&["sh", "-c", "cat /etc/passwd > /dev/null && echo ran"])
        .output();
    out.assert_success().assert_stdout_contains("ran");
    let out = host.run(&["--no-pivot", "true"]).output();
    out.assert_success();
}

#[test]
fn no_pivot_double_chroot_breakout_fails() {
    let host = TestHost::new();
    let secret = token();
    let canary = host.canary("canary", &secret);
    let result = probe_report(
        &host,
        &["--no-pivot"],
        &["escape-chroot", canary.to_str().unwrap()],
    );
    assert_eq!(
        result["escaped"], false,
        "the probe climbed out of a --no-pivot root: {result}"
    );
    assert!(!result.to_string().contains(&secret), "{result}");
}
