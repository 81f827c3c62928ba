//! Chapter 8 — containers as objects: create/start/run -d, the supervisor, logs,
//! stop/kill/restart/wait/rm, ps and inspect, names, restart policies, diff, top,
//! and what is left (nothing) after rm. See chapters/08-containers.md.
//!
//! Every container a test starts detached is removed by the test (`rm -f`); if a
//! test fails first, the test host kills the supervisors its records name.

mod support;

use std::time::{Duration, Instant};

use support::{token, TestHost};

/// `ENGINE run -d --rootfs ROOTFS --cgroup-parent P [args]`: the new container's id.
fn detached(host: &TestHost, args: &[&str]) -> String {
    let rootfs = host.rootfs.to_str().unwrap();
    let mut all = vec![
        "run",
        "-d",
        "--rootfs",
        rootfs,
        "--cgroup-parent",
        &host.cgroup_parent,
    ];
    all.extend_from_slice(args);
    let out = host.engine(&all).output();
    out.assert_success();
    let id = out.stdout.trim().to_string();
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "run -d prints the container's full id (64 hex digits)\n{out}"
    );
    id
}

/// `ENGINE inspect NAME`, the container's object.
fn inspect(host: &TestHost, name: &str) -> serde_json::Value {
    let out = host.engine(&["inspect", name]).output();
    out.assert_success();
    let all: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("inspect prints a JSON array ({e})\n{out}"));
    all[0].clone()
}

/// Waits until `check` holds (10 s at most), saying `what` when it does not.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(host: &TestHost, name: &str) -> String {
    inspect(host, name)["State"]["Status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn rm_f(host: &TestHost, names: &[&str]) {
    let mut all = vec!["rm", "-f"];
    all.extend_from_slice(names);
    host.engine(&all).output().assert_success();
}

#[test]
fn a_detached_containers_logs_keep_stdout_and_stderr_apart() {
    let host = TestHost::new();
    let (out_token, err_token) = (token(), token());
    let script = format!("echo out-{out_token}; echo err-{err_token} >&2; exec sleep 60");
    let id = detached(&host, &["--name", "talker", "sh", "-c", &script]);
    wait_until("both lines are in the log", || {
        let out = host.engine(&["logs", "talker"]).output();
        out.stdout.contains(&out_token) && out.stderr.contains(&err_token)
    });
    let out = host.engine(&["logs", &id[..12]]).output();
    out.assert_success();
    assert!(
        !out.stdout.contains(&err_token) && !out.stderr.contains(&out_token),
        "stdout and stderr are kept apart in the log\n{out}"
    );
    let out = host
        .engine(&["logs", "-t", "--tail", "1", "talker"])
        .output();
    let line = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .next()
        .unwrap_or_default()
        .to_string();
    let time = line.split(' ').next().unwrap_or_default();
    assert!(
        time.len() >= 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
        "logs -t starts each line with the RFC 3339 time it was written: {line:?}\n{out}"
    );
    rm_f(&host, &["talker"]);
}

#[test]
fn stop_kills_a_shell_that_ignores_sigterm_after_the_grace_period() {
    let host = TestHost::new();
    let marker = token();
    // As PID 1 of its namespace, a shell without a TERM trap ignores SIGTERM.
    let script = format!("trap '' TERM; while :; do sleep 1; done; : {marker}");
    detached(&host, &["--name", "stubborn", "sh", "-c", &script]);
    wait_until("it runs", || status(&host, "stubborn") == "running");
    let started = Instant::now();
    host.engine(&["stop", "-t", "1", "stubborn"])
        .output()
        .assert_success()
        .assert_stdout_contains("stubborn");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "stop -t 1 waits one second, then kills: it took {took:?}"
    );
    let state = &inspect(&host, "stubborn")["State"];
    assert_eq!(state["Status"], "exited", "{state}");
    assert_eq!(state["ExitCode"], 137, "SIGKILL is exit 137: {state}");
    let out = host.engine(&["ps", "-a"]).output();
    out.assert_stdout_contains("Exited (137)");
    host.engine(&["rm", "stubborn"]).output().assert_success();
}

#[test]
fn stop_sends_sigterm_first_and_a_container_that_handles_it_ends_in_time() {
    let host = TestHost::new();
    let script = "trap 'echo bye; exit 7' TERM; while :; do sleep 0.1; done";
    detached(&host, &["--name", "polite", "sh", "-c", script]);
    wait_until("it runs", || status(&host, "polite") == "running");
    let started = Instant::now();
    host.engine(&["stop", "-t", "30", "polite"])
        .output()
        .assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a container that ends on SIGTERM does not wait for the grace period"
    );
    assert_eq!(inspect(&host, "polite")["State"]["ExitCode"], 7);
    host.engine(&["logs", "polite"])
        .output()
        .assert_stdout_contains("bye");
    host.engine(&["rm", "polite"]).output().assert_success();
    // A `--rm` container is removed as it stops: for `stop` that is success.
    detached(&host, &["--rm", "--name", "gone", "sh", "-c", script]);
    wait_until("it runs", || status(&host, "gone") == "running");
    host.engine(&["stop", "-t", "30", "gone"])
        .output()
        .assert_success();
    let ps = host.engine(&["ps", "-a", "-q"]).output();
    assert_eq!(ps.stdout.trim(), "", "the --rm container is removed");
}

#[test]
fn exit_codes_and_oom_kills_show_in_ps_and_inspect() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    let cgroup = host.cgroup_parent.as_str();
    let base = ["run", "--rootfs", rootfs, "--cgroup-parent", cgroup];
    let run = |extra: &[&str]| {
        let mut all = base.to_vec();
        all.extend_from_slice(extra);
        host.engine(&all).output()
    };
    run(&["--name", "three", "sh", "-c", "exit 3"]).assert_code(3);
    run(&["--name", "hog", "--memory", "32m", "/probe", "hog", "256"]).assert_code(137);
    let three = inspect(&host, "three");
    let hog = inspect(&host, "hog");
    assert_eq!(
        (
            three["State"]["ExitCode"].clone(),
            three["State"]["OOMKilled"].clone()
        ),
        (serde_json::json!(3), serde_json::json!(false))
    );
    assert_eq!(hog["State"]["OOMKilled"], true, "{}", hog["State"]);
    let out = host
        .engine(&["ps", "-a", "--format", "{{.Names}}\t{{.Status}}"])
        .output();
    out.assert_success();
    let settings = support::snapshot_settings(&host, &[]);
    let mut settings = settings;
    settings.add_filter(r"\d+ seconds?|Less than a second", "[AGO]");
    settings.bind(|| {
        insta::assert_snapshot!("ch08_ps_exit_codes", out.stdout);
        insta::assert_snapshot!(
            "ch08_inspect_state",
            serde_json::to_string_pretty(&three["State"]).unwrap()
        );
    });
    host.engine(&["rm", "three", "hog"])
        .output()
        .assert_success();
}

#[test]
fn twenty_containers_started_concurrently_all_run_with_unique_ids_and_names() {
    let host = TestHost::new();
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| detached(&host, &["sleep", "60"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let out = host
        .engine(&[
            "ps",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Names}} {{.State}}",
        ])
        .output();
    out.assert_success();
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 20, "ps lists the 20 running containers\n{out}");
    let mut names: Vec<&str> = rows.iter().map(|r| r[1]).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 20, "every name is unique\n{out}");
    for id in &ids {
        assert!(
            rows.iter().any(|r| r[0] == id && r[2] == "running"),
            "{id} is listed as running\n{out}"
        );
    }
    let all: Vec<&str> = ids.iter().map(String::as_str).collect();
    rm_f(&host, &all);
    assert!(host.container_dirs().is_empty());
}

#[test]
fn after_rm_nothing_of_the_container_is_left() {
    let host = TestHost::new();
    let id = detached(&host, &["--name", "gone", "-v", "/data", "sleep", "60"]);
    wait_until("it runs", || status(&host, "gone") == "running");
    let record = inspect(&host, "gone");
    let pid = record["State"]["Pid"].as_i64().unwrap();
    let supervisor = record["Ferry"]["Supervisor"]["Pid"].as_i64().unwrap();
    let out = host.engine(&["rm", "gone"]).output();
    out.assert_code(1)
        .assert_stderr_contains("Stop the container");
    host.engine(&["rm", "-f", "-v", "gone"])
        .output()
        .assert_success()
        .assert_stdout_contains("gone");
    for (what, pid) in [("container's process", pid), ("supervisor", supervisor)] {
        wait_until(&format!("the {what} is gone"), || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z"))
        });
    }
    assert!(host.container_dirs().is_empty(), "its directory is removed");
    let out = host.engine(&["volume", "ls", "-q"]).output();
    assert_eq!(
        out.stdout.trim(),
        "",
        "rm -v removes its anonymous volume\n{out}"
    );
    let out = host.engine(&["inspect", &id]).output();
    out.assert_code(1)
        .assert_stderr_contains("No such container");
    // Cgroups and mounts: the test host checks both when it is dropped.
}

#[test]
fn a_killed_supervisor_leaves_a_dead_container_that_the_next_command_cleans() {
    let host = TestHost::new();
    detached(&host, &["--name", "orphan", "sleep", "60"]);
    wait_until("it runs", || status(&host, "orphan") == "running");
    let record = inspect(&host, "orphan");
    let pid = record["State"]["Pid"].as_i64().unwrap() as i32;
    let supervisor = record["Ferry"]["Supervisor"]["Pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the supervisor is gone", || {
        !std::path::Path::new(&format!("/proc/{supervisor}")).exists()
    });
    let out = host.engine(&["ps", "-a"]).output();
    out.assert_success().assert_stdout_contains("Dead");
    assert!(
        !out.stdout.contains("Up "),
        "a container without its supervisor is never reported running\n{out}"
    );
    wait_until("the container's process is gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    let dir = host
        .state
        .join("containers")
        .join(record["Id"].as_str().unwrap());
    assert!(
        !dir.join("state.json").exists(),
        "the runtime's state is cleaned"
    );
    let state = &inspect(&host, "orphan")["State"];
    assert_eq!(state["Running"], false, "{state}");
    assert!(
        state["Error"].as_str().unwrap().contains("supervisor"),
        "{state}"
    );
    host.engine(&["rm", "orphan"]).output().assert_success();
}

#[test]
fn restart_on_failure_2_restarts_twice() {
    let host = TestHost::new();
    detached(
        &host,
        &[
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "sh",
            "-c",
            "echo try; exit 1",
        ],
    );
    wait_until("it has given up", || {
        let record = inspect(&host, "flaky");
        record["State"]["Status"] == "exited" && record["RestartCount"] == 2
    });
    let out = host.engine(&["logs", "flaky"]).output();
    assert_eq!(
        out.stdout.matches("try").count(),
        3,
        "one run and two restarts\n{out}"
    );
    host.engine(&["rm", "flaky"]).output().assert_success();
    let out = host
        .engine(&[
            "run",
            "--rm",
            "--restart",
            "always",
            "--rootfs",
            host.rootfs.to_str().unwrap(),
            "true",
        ])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("--restart and --rm");
}

#[test]
fn create_then_start_attached_and_start_again_keeps_the_upper_layer() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    let script = "echo line >> /count; wc -l < /count";
    let out = host
        .engine(&[
            "create",
            "--name",
            "counter",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
            "sh",
            "-c",
            script,
        ])
        .output();
    out.assert_success();
    assert_eq!(out.stdout.trim().len(), 64, "create prints the id\n{out}");
    assert_eq!(status(&host, "counter"), "created");
    host.engine(&["ps", "-a"])
        .output()
        .assert_stdout_contains("Created");
    let out = host.engine(&["start", "-a", "counter"]).output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "1", "{out}");
    let out = host.engine(&["start", "-a", "counter"]).output();
    assert_eq!(
        out.stdout.trim(),
        "2",
        "a second start runs on the same upper layer\n{out}"
    );
    let out = host.engine(&["wait", "counter"]).output();
    assert_eq!(out.stdout.trim(), "0", "{out}");
    assert!(
        std::fs::read_to_string(host.rootfs.join("count")).is_err(),
        "the rootfs is never written"
    );
    host.engine(&["rm", "counter"]).output().assert_success();
}

#[test]
fn names_are_unique_and_containers_can_be_renamed() {
    let host = TestHost::new();
    detached(&host, &["--name", "web", "sleep", "60"]);
    let rootfs = host.rootfs.to_str().unwrap();
    let out = host
        .engine(&[
            "run",
            "-d",
            "--name",
            "web",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
            "sleep",
            "60",
        ])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("is already in use");
    let out = host
        .engine(&["run", "--name", "no/slash", "--rootfs", rootfs, "true"])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("Invalid container name");
    host.engine(&["rename", "web", "site"])
        .output()
        .assert_success();
    let out = host.engine(&["ps", "--filter", "name=site", "-q"]).output();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let out = host.engine(&["stop", "web"]).output();
    out.assert_code(1)
        .assert_stderr_contains("No such container: web");
    rm_f(&host, &["site"]);
}

#[test]
fn the_supervisor_has_its_own_session_and_nothing_of_its_caller() {
    let host = TestHost::new();
    let canary = host.canary("fd-canary", &token());
    let secret = token();
    let rootfs = host.rootfs.to_str().unwrap();
    let out = host
        .engine(&[
            "run",
            "-d",
            "--name",
            "alone",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
            "sleep",
            "60",
        ])
        .env("FERRY_TEST_SECRET", &secret)
        .inherit_fd(std::fs::File::open(&canary).unwrap(), 7)
        .output();
    out.assert_success();
    let record = inspect(&host, "alone");
    let supervisor = record["Ferry"]["Supervisor"]["Pid"].as_i64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{supervisor}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(
        fields[6 - 3],
        supervisor.to_string(),
        "the supervisor leads its own session: {stat}"
    );
    assert_eq!(
        fields[7 - 3],
        "0",
        "the supervisor has no controlling terminal: {stat}"
    );
    let environ = std::fs::read(format!("/proc/{supervisor}/environ")).unwrap();
    assert!(
        !String::from_utf8_lossy(&environ).contains(&secret),
        "the caller's environment does not reach the supervisor"
    );
    for entry in std::fs::read_dir(format!("/proc/{supervisor}/fd"))
        .unwrap()
        .flatten()
    {
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        assert_ne!(target, canary, "the caller's fd 7 reached the supervisor");
    }
    rm_f(&host, &["alone"]);
}

#[test]
fn diff_shows_what_the_container_added_changed_and_deleted() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    host.engine(&[
        "run",
        "--name",
        "changer",
        "--rootfs",
        rootfs,
        "--cgroup-parent",
        &host.cgroup_parent,
        "sh",
        "-c",
        "echo new > /added; echo more >> /etc/passwd; rm /etc/group",
    ])
    .output()
    .assert_success();
    let out = host.engine(&["diff", "changer"]).output();
    out.assert_success();
    for line in ["A /added", "C /etc/passwd", "D /etc/group"] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "diff shows {line:?}\n{out}"
        );
    }
    host.engine(&["rm", "changer"]).output().assert_success();
}

#[test]
fn top_lists_the_containers_processes() {
    let host = TestHost::new();
    let marker = token();
    let script = format!("sleep 60 & sleep 61; : {marker}");
    detached(&host, &["--name", "busy", "sh", "-c", &script]);
    wait_until("both sleeps run", || {
        host.engine(&["top", "busy"])
            .output()
            .stdout
            .contains("sleep 61")
    });
    let out = host.engine(&["top", "busy"]).output();
    assert!(out.stdout.starts_with("UID "), "{out}");
    for command in ["sleep 60", "sleep 61", &marker] {
        out.assert_stdout_contains(command);
    }
    rm_f(&host, &["busy"]);
}

#[test]
fn inspect_has_dockers_shape() {
    let host = TestHost::new();
    detached(
        &host,
        &[
            "--name",
            "shape",
            "--hostname",
            "box",
            "-e",
            "GREETING=hi",
            "sleep",
            "60",
        ],
    );
    wait_until("it runs", || status(&host, "shape") == "running");
    let record = inspect(&host, "shape");
    let out = host
        .engine(&[
            "inspect",
            "-f",
            "{{.Name}} {{.State.Status}} {{.Config.Hostname}} {{.GraphDriver.Name}}",
            "shape",
        ])
        .output();
    assert_eq!(out.stdout.trim(), "/shape running box overlay", "{out}");
    for key in [
        "Id",
        "Name",
        "Created",
        "State",
        "Config",
        "HostConfig",
        "Mounts",
        "GraphDriver",
    ] {
        assert!(record.get(key).is_some(), "inspect has {key}: {record}");
    }
    for key in [
        "Status",
        "Running",
        "Pid",
        "ExitCode",
        "OOMKilled",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(
            record["State"].get(key).is_some(),
            "State has {key}: {record}"
        );
    }
    assert!(record["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "GREETING=hi"));
    rm_f(&host, &["shape"]);
}

#[test]
fn kill_sends_the_signal_asked_for_and_only_that() {
    let host = TestHost::new();
    let script = "trap 'echo got-hup' HUP; while :; do sleep 0.1; done";
    detached(&host, &["--name", "listener", "sh", "-c", script]);
    wait_until("it runs", || status(&host, "listener") == "running");
    host.engine(&["kill", "-s", "HUP", "listener"])
        .output()
        .assert_success();
    wait_until("the trap ran", || {
        host.engine(&["logs", "listener"])
            .output()
            .stdout
            .contains("got-hup")
    });
    assert_eq!(
        status(&host, "listener"),
        "running",
        "SIGHUP is sent, not SIGKILL after it"
    );
    host.engine(&["kill", "listener"]).output().assert_success();
    wait_until("it has exited", || status(&host, "listener") == "exited");
    assert_eq!(inspect(&host, "listener")["State"]["ExitCode"], 137);
    let out = host.engine(&["kill", "listener"]).output();
    out.assert_code(1).assert_stderr_contains("is not running");
    host.engine(&["rm", "listener"]).output().assert_success();
}
// Harmless when the engine gets it wrong: every file a test plants or watches is
// in the test's temp dir, and a container mounts only in its own namespace.

// /etc/hosts and /etc/resolv.conf: the engine's files, bound over the image's.

/// The host's resolver configuration as the engine reads it: systemd-resolved's
/// upstream file when /etc/resolv.conf names only its stub.
fn host_resolv_conf() -> String {
    let main = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<&str> = main
        .lines()
        .filter_map(|line| line.strip_prefix("nameserver"))
        .map(str::trim)
        .collect();
    if servers == ["127.0.0.53"] {
        if let Ok(upstream) = std::fs::read_to_string("/run/systemd/resolve/resolv.conf") {
            return upstream;
        }
    }
    main
}

/// Whether a resolv.conf line names a nameserver on the loopback.
fn loopback_nameserver(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("nameserver")
        && words
            .next()
            .and_then(|address| address.parse::<std::net::IpAddr>().ok())
            .is_some_and(|address| address.is_loopback())
}

/// What the container reads at `path`, with `options` before the command.
fn read_in_container(host: &TestHost, options: &[&str], path: &str) -> String {
    let mut args = options.to_vec();
    args.extend(["cat", path]);
    let out = host.run(&args).output();
    out.assert_success();
    out.stdout.clone()
}

#[test]
fn etc_hosts_names_localhost_and_the_containers_hostname() {
    let host = TestHost::new();
    let name = format!("h-{}", token());
    let hosts = read_in_container(&host, &["--hostname", &name], "/etc/hosts");
    let lines: Vec<Vec<&str>> = hosts
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let names_of = |address: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|words| words.first() == Some(&address))
            .flat_map(|words| words[1..].iter().copied())
            .collect()
    };
    assert!(
        names_of("127.0.0.1").contains(&"localhost"),
        "127.0.0.1 must be localhost\n{hosts}"
    );
    assert!(
        names_of("::1").contains(&"localhost"),
        "::1 must be localhost\n{hosts}"
    );
    assert!(
        lines
            .iter()
            .any(|words| words.iter().skip(1).any(|n| *n == name)),
        "the container's hostname {name} must be in /etc/hosts\n{hosts}"
    );
}

#[test]
fn etc_resolv_conf_has_no_loopback_nameserver_and_keeps_the_hosts_search() {
    let host = TestHost::new();
    let resolv = read_in_container(&host, &[], "/etc/resolv.conf");
    assert!(
        !resolv.lines().any(loopback_nameserver),
        "the host's loopback is not reachable from the container's network namespace\n{resolv}"
    );
    assert!(
        resolv.lines().any(|l| l.starts_with("nameserver")),
        "a nameserver must be left (docker's defaults when the host has none)\n{resolv}"
    );
    // The host's search domains and options come along, whatever they are here.
    for line in host_resolv_conf().lines() {
        if line.starts_with("search") || line.starts_with("options") {
            assert!(
                resolv.lines().any(|l| l == line),
                "the host's {line:?} must be kept\n{resolv}"
            );
        }
    }
}

#[test]
fn a_rootfs_without_etc_files_gets_the_engines() {
    for no_etc in [false, true] {
        for (read_only_mount, options) in [
            (false, &[][..]),
            (false, &["--read-only"][..]),
            (true, &[][..]),
        ] {
            let mut host = TestHost::new();
            if no_etc {
                std::fs::remove_dir_all(host.rootfs.join("etc")).unwrap();
            } else {
                std::fs::remove_file(host.rootfs.join("etc/hostname")).unwrap();
            }
            if read_only_mount {
                host.make_rootfs_read_only();
            }
            let before = support::fixture::tree_listing(&host.rootfs);
            let name = format!("n-{}", token());
            let mut args = options.to_vec();
            args.extend([
                "--hostname",
                &name,
                "sh",
                "-c",
                "cat /etc/hostname /etc/hosts /etc/resolv.conf",
            ]);
            let out = host.run(&args).output();
            let case = format!(
                "no /etc: {no_etc}, read-only mount: {read_only_mount}, options {options:?}"
            );
            out.assert_success();
            assert_eq!(
                out.stdout.lines().next(),
                Some(name.as_str()),
                "{case}\n{out}"
            );
            assert!(out.stdout.contains("localhost"), "{case}\n{out}");
            assert!(out.stdout.contains("nameserver"), "{case}\n{out}");
            assert_eq!(
                support::fixture::tree_listing(&host.rootfs),
                before,
                "{case}: the missing files must be made in the container's layer, not in the rootfs"
            );
        }
    }
}

#[test]
fn the_images_own_etc_files_are_never_written() {
    let host = TestHost::new();
    let planted = format!("# the image's own {}\n", token());
    for file in ["hosts", "resolv.conf"] {
        std::fs::write(host.rootfs.join("etc").join(file), &planted).unwrap();
    }
    let before = support::fixture::tree_listing(&host.rootfs);
    // A container may write its /etc/hosts (docker's are read-write): the write
    // lands in the engine's file, not the image's.
    let script = "echo '10.9.8.7 added' >> /etc/hosts && echo '# added' >> /etc/resolv.conf \
                  && cat /etc/hosts /etc/resolv.conf";
    let out = host.run(&["sh", "-c", script]).output();
    out.assert_success()
        .assert_stdout_contains("localhost")
        .assert_stdout_contains("10.9.8.7 added");
    assert!(
        !out.stdout.contains(planted.trim()),
        "the container must see the engine's files, not the image's\n{out}"
    );
    assert_eq!(
        support::fixture::tree_listing(&host.rootfs),
        before,
        "the engine (or the container through it) wrote the image's /etc files"
    );
}

#[test]
fn a_symlinked_resolv_conf_never_leads_out_of_the_root() {
    let host = TestHost::new();
    let outside = host.dir.join(format!("outside-{}", token()));
    std::fs::create_dir(&outside).unwrap();
    let canary = outside.join("resolv.conf");
    std::fs::write(&canary, "untouched\n").unwrap();
    let etc = host.rootfs.join("etc");
    // An absolute link to a file that exists outside, and a climbing one to a
    // file that does not: both must resolve inside the root.
    std::os::unix::fs::symlink(&canary, etc.join("resolv.conf")).unwrap();
    let climbing = format!("../../../../../../{}/hosts", outside.display());
    std::os::unix::fs::symlink(&climbing, etc.join("hosts")).unwrap();
    let before = support::fixture::tree_listing(&host.rootfs);
    let out = host
        .run(&[
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts; echo pwned > /etc/resolv.conf; echo pwned > /etc/hosts",
        ])
        .output();
    out.assert_success()
        .assert_stdout_contains("nameserver")
        .assert_stdout_contains("localhost");
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched\n");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        1,
        "the engine made a file where the link pointed, outside the root"
    );
    assert_eq!(
        support::fixture::tree_listing(&host.rootfs),
        before,
        "the rootfs (its links included) must be unchanged"
    );
    assert!(
        host.leaked_mounts().is_empty(),
        "mounts leaked: {:?}",
        host.leaked_mounts()
    );
}

#[test]
fn restart_prune_follow_and_a_command_that_cannot_start() {
    let host = TestHost::new();
    let script = "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done";
    detached(&host, &["--name", "again", "sh", "-c", script]);
    wait_until("it runs", || status(&host, "again") == "running");
    let first = inspect(&host, "again")["State"]["StartedAt"].clone();
    host.engine(&["restart", "-t", "5", "again"])
        .output()
        .assert_success()
        .assert_stdout_contains("again");
    wait_until("it runs again", || status(&host, "again") == "running");
    let record = inspect(&host, "again");
    assert_ne!(
        record["State"]["StartedAt"], first,
        "restart starts it anew: {record}"
    );
    wait_until("both runs are in the log", || {
        host.engine(&["logs", "again"])
            .output()
            .stdout
            .matches("started")
            .count()
            == 2
    });
    let later = "2999-01-01T00:00:00Z";
    let out = host.engine(&["logs", "--since", later, "again"]).output();
    assert_eq!(
        out.stdout, "",
        "--since a time after every line shows none\n{out}"
    );
    // logs -f follows until the container ends.
    let follower = host.engine(&["logs", "-f", "again"]).spawn();
    std::thread::sleep(Duration::from_millis(300));
    host.engine(&["stop", "again"]).output().assert_success();
    let out = follower.wait();
    out.assert_success().assert_stdout_contains("started");
    // A command that does not exist: run -d fails as run does, and the container
    // stays created with the error, as docker's.
    let rootfs = host.rootfs.to_str().unwrap();
    let out = host
        .engine(&[
            "run",
            "-d",
            "--name",
            "broken",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
            "no-such-program",
        ])
        .output();
    out.assert_code(127)
        .assert_stderr_contains("executable file not found");
    let state = &inspect(&host, "broken")["State"];
    assert_eq!(
        (state["Status"].as_str(), state["ExitCode"].as_i64()),
        (Some("created"), Some(127)),
        "{state}"
    );
    assert!(
        state["Error"].as_str().unwrap().contains("no-such-program"),
        "{state}"
    );
    // prune removes every stopped container and only those.
    detached(&host, &["--name", "keeper", "sleep", "60"]);
    let out = host.engine(&["container", "prune", "-f"]).output();
    out.assert_success()
        .assert_stdout_contains("Deleted Containers:")
        .assert_stdout_contains("Total reclaimed space:");
    let out = host
        .engine(&["ps", "-a", "--format", "{{.Names}}"])
        .output();
    assert_eq!(
        out.stdout.trim(),
        "keeper",
        "prune leaves the running one\n{out}"
    );
    rm_f(&host, &["keeper"]);
}

#[test]
fn stop_signal_and_stop_timeout_are_the_containers_own() {
    let host = TestHost::new();
    // Ignores TERM, ends on QUIT: --stop-signal QUIT stops it at once.
    let script = "trap '' TERM; trap 'exit 9' QUIT; while :; do sleep 0.1; done";
    detached(
        &host,
        &[
            "--name",
            "quitter",
            "--stop-signal",
            "QUIT",
            "sh",
            "-c",
            script,
        ],
    );
    wait_until("it runs", || status(&host, "quitter") == "running");
    let started = Instant::now();
    host.engine(&["stop", "quitter"]).output().assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped with SIGQUIT, not after 10 s"
    );
    assert_eq!(inspect(&host, "quitter")["State"]["ExitCode"], 9);
    // Ignores both: --stop-timeout 1 is the grace period when stop gives none.
    let stubborn = "trap '' TERM; while :; do sleep 0.1; done";
    detached(
        &host,
        &[
            "--name",
            "slow",
            "--stop-timeout",
            "1",
            "sh",
            "-c",
            stubborn,
        ],
    );
    wait_until("it runs", || status(&host, "slow") == "running");
    let started = Instant::now();
    host.engine(&["stop", "slow"]).output().assert_success();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "killed after its own 1 s grace period: {took:?}"
    );
    assert_eq!(inspect(&host, "slow")["State"]["ExitCode"], 137);
    let rootfs = host.rootfs.to_str().unwrap();
    let out = host
        .engine(&["run", "--stop-signal", "NOPE", "--rootfs", rootfs, "true"])
        .output();
    out.assert_code(125).assert_stderr_contains("--stop-signal");
    host.engine(&["rm", "quitter", "slow"])
        .output()
        .assert_success();
}

#[test]
fn rm_f_while_starting_and_stop_while_restarting_leave_nothing_running() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    let cgroup = host.cgroup_parent.as_str();
    let marker = token();
    // rm -f lands at different moments of a start (supervisor spawned, container
    // being made, just started): nothing may run on unseen.
    for delay in [0, 10, 20, 30, 40, 60] {
        let out = host
            .engine(&[
                "create",
                "--rootfs",
                rootfs,
                "--cgroup-parent",
                cgroup,
                "sh",
                "-c",
                &format!("sleep 60; : {marker}"),
            ])
            .output();
        out.assert_success();
        let id = out.stdout.trim().to_string();
        let starting = host.engine(&["start", &id]).spawn();
        std::thread::sleep(Duration::from_millis(delay));
        host.engine(&["rm", "-f", &id]).output().assert_success();
        let _ = starting.wait();
    }
    wait_until("no container process is left", || {
        !std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
    });
    let out = host.engine(&["ps", "-aq"]).output();
    assert_eq!(out.stdout.trim(), "", "every container was removed\n{out}");
    // A stop that lands in a restart's back-off wins over the restart.
    let script = "sleep 0.2; exit 1";
    detached(
        &host,
        &[
            "--name",
            "looping",
            "--restart",
            "always",
            "sh",
            "-c",
            script,
        ],
    );
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    host.engine(&["stop", "looping"]).output().assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop is not lost in the back-off"
    );
    wait_until("it stays stopped", || status(&host, "looping") == "exited");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        status(&host, "looping"),
        "exited",
        "the restart policy does not bring it back"
    );
    host.engine(&["rm", "looping"]).output().assert_success();
}
