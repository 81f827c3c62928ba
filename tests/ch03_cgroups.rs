//! Chapter 3 — cgroups: memory, pids and CPU limits, OOM detection, cleanup, and
//! the container's read-only view of its own cgroup. See chapters/03-cgroups.md.
//!
//! Harmless without limits: the memory hog stops at 256 MiB, the fork bomb at 200
//! sleeping children, the spinner after one second.

mod support;

use support::cgroups::{children, hierarchies, parent_dirs};
use support::{sigkill_from_host, token, wait_for_container_file, TestHost};

/// Reads a cgroup file inside the container, wherever its hierarchy is mounted
/// (v1: /sys/fs/cgroup/CONTROLLER/FILE, v2: /sys/fs/cgroup/FILE).
fn read_inside(controller: &str, file: &str) -> String {
    format!("cat /sys/fs/cgroup/{controller}/{file} 2>/dev/null || cat /sys/fs/cgroup/{file}")
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let host = TestHost::new();
    let out = host
        .run(&["--memory", "32m", "/probe", "hog", "256"])
        .output();
    out.assert_code(137)
        .assert_stderr_contains("memory limit")
        .assert_stderr_contains("OOM");
}

#[test]
fn sigkill_from_outside_is_not_reported_as_oom() {
    let host = TestHost::new();
    let out = sigkill_from_host(&host, &["--memory", "64m"]);
    out.assert_code(137);
    assert!(
        !out.stderr.contains("OOM"),
        "a SIGKILL from outside is not an OOM kill\n{out}"
    );
}

#[test]
fn pids_limit_holds_a_fork_bomb() {
    let host = TestHost::new();
    let report = host
        .run(&["--pids-limit", "20", "/probe", "forks", "200", "2"])
        .output()
        .json();
    let forked = report["forked"].as_u64().unwrap();
    assert!(
        forked < 20,
        "--pids-limit 20 let {forked} processes start: {report}"
    );
    assert_eq!(
        report["errno"], 11,
        "fork must fail with EAGAIN at the limit: {report}"
    );
}

#[test]
fn cpus_limit_throttles_a_spinner() {
    let host = TestHost::new();
    let script = format!(
        "/probe spin 1 >/dev/null; {}",
        read_inside("cpu", "cpu.stat")
    );
    let out = host.run(&["--cpus", "0.2", "sh", "-c", &script]).output();
    out.assert_success();
    let throttled: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        throttled > 0,
        "a spinner under --cpus 0.2 must be throttled\n{out}"
    );
}

#[test]
fn limits_are_written_in_the_containers_own_cgroup() {
    let host = TestHost::new();
    let script = [
        format!(
            "{} || {}",
            read_inside("memory", "memory.limit_in_bytes"),
            read_inside("memory", "memory.max")
        ),
        read_inside("pids", "pids.max"),
        format!(
            "{} || {}",
            read_inside("cpu", "cpu.cfs_quota_us"),
            read_inside("cpu", "cpu.max")
        ),
        read_inside("cpuset", "cpuset.cpus"),
    ]
    .join("; ");
    let args = [
        "--memory",
        "48m",
        "--pids-limit",
        "33",
        "--cpus",
        "0.5",
        "--cpuset-cpus",
        "0",
        "sh",
        "-c",
        &script,
    ];
    let out = host.run(&args).output();
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("50331648"),
        "memory limit\n{out}"
    );
    assert_eq!(lines.get(1).copied(), Some("33"), "pids limit\n{out}");
    let quota = lines.get(2).copied().unwrap_or("");
    assert!(
        quota == "50000" || quota == "50000 100000",
        "cpu quota\n{out}"
    );
    assert_eq!(lines.get(3).copied(), Some("0"), "cpuset\n{out}");
}

#[test]
fn cgroupfs_inside_is_read_only_and_rooted_at_the_container() {
    let host = TestHost::new();
    let script = "cat /proc/self/cgroup; mkdir /sys/fs/cgroup/x 2>&1; grep -c ' /sys/fs/cgroup' /proc/self/mountinfo";
    let out = host.run(&["--memory", "64m", "sh", "-c", script]).output();
    out.assert_success()
        .assert_stdout_contains("Read-only file system");
    let memory_line = out
        .stdout
        .lines()
        .find(|l| l.contains(":memory:") || l.starts_with("0::"));
    assert!(
        memory_line.is_some_and(|l| l.ends_with(":/")),
        "the container must see its cgroup as /\n{out}"
    );
    assert!(
        !out.stdout.contains(&host.cgroup_parent),
        "the host's cgroup path leaked in\n{out}"
    );
}

#[test]
fn cgroup_exists_while_running_and_is_removed_on_every_path() {
    let host = TestHost::new();
    let ready = format!("ready-{}", token());
    let running = host
        .run(&[
            "--pids-limit",
            "50",
            "sh",
            "-c",
            &format!("echo > {ready}; read x; true"),
        ])
        .spawn();
    wait_for_container_file(&host, &ready);
    let live = children(&host.cgroup_parent);
    assert!(
        !live.is_empty(),
        "the running container has no cgroup under {}",
        host.cgroup_parent
    );
    // Real cgroup v2 mechanics where a cgroup2 hierarchy is mounted (hybrid or v2).
    if let Some(v2) = live.iter().find(|dir| dir.join("cgroup.events").exists()) {
        let events = std::fs::read_to_string(v2.join("cgroup.events")).unwrap();
        assert!(
            events.contains("populated 1"),
            "cgroup.events of {}: {events}",
            v2.display()
        );
    }
    running.wait().assert_success();
    assert!(
        children(&host.cgroup_parent).is_empty(),
        "cgroup left after a normal exit"
    );

    sigkill_from_host(&host, &["--pids-limit", "50"]).assert_code(137);
    assert!(
        children(&host.cgroup_parent).is_empty(),
        "cgroup left after a SIGKILL"
    );

    host.run(&["--pids-limit", "50", "no-such-command"])
        .output()
        .assert_code(127);
    assert!(
        children(&host.cgroup_parent).is_empty(),
        "cgroup left after a failed exec"
    );
    let parents = parent_dirs(&host.cgroup_parent);
    assert!(
        parents.is_empty(),
        "the emptied --cgroup-parent must be removed too: {parents:?}"
    );
}

#[test]
fn bad_limits_are_refused_before_anything_is_created() {
    let host = TestHost::new();
    let out = host.run(&["--memory", "10x", "true"]).output();
    out.assert_code(125);
    snapshot!(host, &[], "ch03_bad_memory", out.stderr);
    for (flag, value, says) in [
        ("--memory", "10x", "--memory"),
        ("--memory", "1k", "minimum"),
        ("--cpus", "-1", "--cpus"),
        ("--pids-limit", "0", "--pids-limit"),
        ("--cpuset-cpus", "zero", "--cpuset-cpus"),
    ] {
        let out = host.run(&[flag, value, "true"]).output();
        out.assert_code(125).assert_stderr_contains(says);
    }
    let created: Vec<_> = hierarchies()
        .into_iter()
        .map(|mount| mount.join(host.cgroup_parent.trim_start_matches('/')))
        .filter(|dir| dir.exists())
        .collect();
    assert!(
        created.is_empty(),
        "a refused run created cgroups: {created:?}"
    );
}
