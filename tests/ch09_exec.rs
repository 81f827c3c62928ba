//! Chapter 9 — exec and terminals: a new process in a running container (its
//! namespaces, cgroups, capabilities, seccomp filter and user), the runtime
//! binary out of the container's reach, and the seeds' lab under --init.
//! See chapters/09-exec.md.

mod support;

use std::time::{Duration, Instant};

use support::{token, TestHost};

/// `ENGINE run -d --name NAME --rootfs ROOTFS --cgroup-parent P [args]`.
fn detached(host: &TestHost, name: &str, args: &[&str]) {
    let rootfs = host.rootfs.to_str().unwrap();
    let mut all = vec![
        "run",
        "-d",
        "--name",
        name,
        "--rootfs",
        rootfs,
        "--cgroup-parent",
        &host.cgroup_parent,
    ];
    all.extend_from_slice(args);
    host.engine(&all).output().assert_success();
    wait_until(&format!("{name} runs"), || pid_of(host, name) > 0);
}

/// The host pid of the container's first process (0 when it does not run).
fn pid_of(host: &TestHost, name: &str) -> i64 {
    let out = host
        .engine(&["inspect", "-f", "{{.State.Pid}}", name])
        .output();
    out.stdout.trim().parse().unwrap_or(0)
}

fn exec<'h>(host: &'h TestHost, args: &[&str]) -> support::Invocation<'h> {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    host.engine(&all)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A line of /proc/PID/status: `CapEff`, `Seccomp`, `NoNewPrivs`.
fn status_line(pid: i64, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn rm_f(host: &TestHost, name: &str) {
    host.engine(&["rm", "-f", name]).output().assert_success();
}

#[test]
fn exec_joins_every_namespace_of_the_container() {
    let host = TestHost::new();
    detached(&host, "box", &["--hostname", "boxed", "sleep", "60"]);
    let pid = pid_of(&host, "box");
    let report = exec(&host, &["box", "/probe", "report"]).output().json();
    for ns in ["mnt", "uts", "ipc", "pid", "net", "cgroup"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(
            report["ns"][ns].as_str().unwrap(),
            theirs.to_str().unwrap(),
            "exec joins the container's {ns} namespace: {report}"
        );
    }
    assert_eq!(report["hostname"], "boxed", "{report}");
    let out = exec(
        &host,
        &["box", "sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"],
    )
    .output();
    out.assert_success();
    let own_pid: u32 = out.stdout.lines().next().unwrap().parse().unwrap();
    assert!(
        own_pid < 10,
        "the exec'd shell has a pid of the container's namespace: {out}"
    );
    rm_f(&host, "box");
}

#[test]
fn exec_runs_under_the_containers_capabilities_seccomp_and_no_new_privs() {
    let host = TestHost::new();
    detached(&host, "tight", &["--cap-drop", "NET_RAW", "sleep", "60"]);
    let pid = pid_of(&host, "tight");
    let report = exec(&host, &["tight", "/probe", "report"]).output().json();
    for key in ["CapEff", "CapBnd", "Seccomp", "NoNewPrivs"] {
        assert_eq!(
            report["status"][key].as_str().unwrap_or_default(),
            status_line(pid, key),
            "the exec'd process's {key} is the container's: {report}"
        );
    }
    assert_eq!(
        report["status"]["Seccomp"], "2",
        "a seccomp filter: {report}"
    );
    let privileged = exec(&host, &["--privileged", "tight", "/probe", "report"])
        .output()
        .json();
    assert_ne!(
        privileged["status"]["CapEff"], report["status"]["CapEff"],
        "--privileged gives the command more capabilities: {privileged}"
    );
    rm_f(&host, "tight");
}

#[test]
fn exec_enters_the_containers_cgroups_and_shows_in_top() {
    let host = TestHost::new();
    let marker = token();
    detached(&host, "cg", &["sleep", "60"]);
    let pid = pid_of(&host, "cg");
    exec(
        &host,
        &["-d", "cg", "sh", "-c", &format!("sleep 61; : {marker}")],
    )
    .output()
    .assert_success();
    wait_until("the exec'd shell is in top", || {
        exec(&host, &["cg", "true"]).output();
        host.engine(&["top", "cg"])
            .output()
            .stdout
            .contains(&marker)
    });
    let top = host.engine(&["top", "cg"]).output();
    let row = top
        .stdout
        .lines()
        .find(|l| l.contains(&marker))
        .unwrap()
        .to_string();
    let exec_pid: i64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{exec_pid}/cgroup")).unwrap(),
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        "the exec'd process is in the container's cgroups"
    );
    rm_f(&host, "cg");
    wait_until("the exec'd process went with the container", || {
        !std::path::Path::new(&format!("/proc/{exec_pid}")).exists()
    });
}

#[test]
fn exec_exit_codes_user_workdir_env_and_stdin() {
    let host = TestHost::new();
    detached(&host, "shell", &["sleep", "60"]);
    exec(&host, &["shell", "sh", "-c", "exit 7"])
        .output()
        .assert_code(7);
    exec(&host, &["shell", "no-such-program"])
        .output()
        .assert_code(127)
        .assert_stderr_contains("executable file not found");
    let out = exec(
        &host,
        &[
            "-u",
            "ferry",
            "-w",
            "/tmp",
            "-e",
            "GREETING=ahoy",
            "shell",
            "sh",
            "-c",
            "id -u; pwd; echo $GREETING $HOME",
        ],
    )
    .output();
    out.assert_success();
    assert_eq!(out.stdout, "1000\n/tmp\nahoy /home/ferry\n", "{out}");
    let line = token();
    let out = exec(&host, &["-i", "shell", "sh", "-c", "read x; echo got:$x"])
        .stdin(format!("{line}\n").as_bytes())
        .output();
    out.assert_success()
        .assert_stdout_contains(&format!("got:{line}"));
    let out = exec(&host, &["shell", "sh", "-c", "read x; echo got:$x"])
        .stdin(format!("{line}\n").as_bytes())
        .output();
    assert_eq!(
        out.stdout.trim(),
        "got:",
        "without -i the command reads /dev/null\n{out}"
    );
    rm_f(&host, "shell");
    let out = exec(&host, &["shell", "true"]).output();
    out.assert_code(1)
        .assert_stderr_contains("No such container");
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    host.engine(&[
        "run",
        "--name",
        "done",
        "--rootfs",
        rootfs,
        "--cgroup-parent",
        &host.cgroup_parent,
        "true",
    ])
    .output()
    .assert_success();
    let out = exec(&host, &["done", "true"]).output();
    out.assert_code(1).assert_stderr_contains("is not running");
    host.engine(&["rm", "done"]).output().assert_success();
}

#[test]
fn nothing_in_the_container_can_reach_ferrys_binary() {
    let host = TestHost::new();
    // With --init, PID 1 is ferry itself: the target CVE-2019-5736 went for.
    detached(
        &host,
        "guarded",
        &["--init", "--cap-add", "SYS_ADMIN", "sleep", "60"],
    );
    let report = exec(
        &host,
        &["guarded", "/probe", "write", "/proc/1/exe", "overwritten"],
    )
    .output()
    .json();
    assert_eq!(
        report["ok"], false,
        "ferry's binary was opened for writing: {report}"
    );
    // EACCES or EPERM: refused by the permission check (ETXTBSY would mean the
    // open got past it, stopped only because the binary runs).
    assert!(
        report["errno"] == 13 || report["errno"] == 1,
        "ferry's binary must not even be opened: {report}"
    );
    let out = exec(
        &host,
        &[
            "guarded",
            "sh",
            "-c",
            "readlink /proc/1/exe; for p in /proc/[0-9]*; do readlink $p/exe; done; true",
        ],
    )
    .output();
    let engine = std::fs::canonicalize(support::engine_binary()).unwrap();
    assert!(
        !out.stdout.contains(engine.to_str().unwrap()) && !out.stdout.contains("ferry"),
        "no process in the container shows ferry's binary through /proc/PID/exe\n{out}"
    );
    rm_f(&host, "guarded");
}

#[test]
fn the_lab_a_server_and_its_client_under_init() {
    let host = TestHost::new();
    let greeting = token();
    // The seeds' lab in busybox: a small server (httpd) and a client that uses
    // it, one container, under --init, detached.
    let script = format!(
        "mkdir -p /www && echo {greeting} > /www/index.html && httpd -p 8080 -h /www && \
         while :; do wget -qO- http://127.0.0.1:8080/ || echo client-failed; sleep 0.2; done"
    );
    detached(&host, "lab", &["--init", "sh", "-c", &script]);
    wait_until("the client has read the page", || {
        host.engine(&["logs", "lab"])
            .output()
            .stdout
            .contains(&greeting)
    });
    let out = exec(&host, &["lab", "wget", "-qO-", "http://127.0.0.1:8080/"]).output();
    out.assert_success().assert_stdout_contains(&greeting);
    let started = Instant::now();
    host.engine(&["stop", "lab"]).output().assert_success();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "under --init, SIGTERM reaches the shell and the container ends without waiting for the grace period"
    );
    let out = host
        .engine(&["inspect", "-f", "{{.State.ExitCode}}", "lab"])
        .output();
    assert_eq!(
        out.stdout.trim(),
        "143",
        "ended by SIGTERM: 128 + 15\n{out}"
    );
    host.engine(&["rm", "lab"]).output().assert_success();
}

#[test]
fn exec_t_gives_a_terminal_of_the_containers_that_echoes_resizes_and_is_restored() {
    let host = TestHost::new();
    detached(&host, "term", &["sleep", "60"]);
    let mut session = exec(&host, &["-it", "term", "sh"]).spawn_on_terminal(33, 101);
    session.expect("# ");
    let answer = token();
    session.type_keys(format!("tty; stty size; echo {answer}-ok\r").as_bytes());
    // The typed line comes back: the container's terminal echoes it.
    session.expect(&format!("echo {answer}-ok"));
    session.expect("/dev/pts/0");
    session.expect("33 101");
    session.expect(&format!("{answer}-ok\r\n"));
    session.resize(40, 120);
    // SIGWINCH reaches ferry asynchronously: ask until the new size shows.
    let resized = (0..50).any(|_| {
        session.type_keys(b"stty size\r");
        session.saw("40 120", Duration::from_millis(200))
    });
    assert!(
        resized,
        "the new window size reaches the container's terminal\n{}",
        session.seen
    );
    session.type_keys(b"exit 3\r");
    assert_eq!(
        session.wait(),
        3,
        "exec -t exits with the command's code\n{}",
        session.seen
    );
    assert!(
        session.is_cooked(),
        "the caller's terminal is back to echo and line editing"
    );
    // Killed from outside, the command ends and the terminal is restored too.
    let mut session = exec(&host, &["-it", "term", "sh"]).spawn_on_terminal(24, 80);
    session.expect("# ");
    session.type_keys(b"echo pid:$$:\r");
    session.expect("pid:");
    session.expect("pid:");
    session.expect(":");
    let shown = session
        .seen
        .rsplit("pid:")
        .next()
        .unwrap_or_default()
        .to_string();
    let pid = shown
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    session.type_keys(b"sleep 30\r");
    std::thread::sleep(Duration::from_millis(300));
    exec(&host, &["term", "kill", "-KILL", &pid])
        .output()
        .assert_success();
    let code = session.wait();
    assert_eq!(code, 137, "a SIGKILLed shell: 128 + 9\n{}", session.seen);
    assert!(
        session.is_cooked(),
        "the terminal is restored after the command was killed"
    );
    rm_f(&host, "term");
}

#[test]
fn run_it_detaches_with_ctrl_p_ctrl_q_and_attach_reconnects() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap();
    let cgroup = host.cgroup_parent.as_str();
    let mut session = host
        .engine(&[
            "run",
            "-it",
            "--name",
            "console",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            cgroup,
            "sh",
        ])
        .spawn_on_terminal(30, 90);
    session.expect("# ");
    session.type_keys(b"stty size; tty\r");
    session.expect("30 90");
    session.expect("/dev/pts/0");
    // ctrl-p then ctrl-q: ferry leaves, the container stays.
    session.type_keys(&[0x10, 0x11]);
    assert_eq!(
        session.wait(),
        0,
        "detaching is not a failure\n{}",
        session.seen
    );
    assert!(
        session.is_cooked(),
        "the terminal is restored after detaching"
    );
    let out = host
        .engine(&["inspect", "-f", "{{.State.Status}}", "console"])
        .output();
    assert_eq!(
        out.stdout.trim(),
        "running",
        "the container runs on after the detach keys\n{out}"
    );
    // A client killed with SIGTERM puts the terminal back; the container runs on.
    let mut killed = host
        .engine(&["attach", "console"])
        .spawn_on_terminal(24, 80);
    std::thread::sleep(Duration::from_millis(300));
    killed.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(killed.wait(), 143, "{}", killed.seen);
    assert!(
        killed.is_cooked(),
        "the terminal is restored when the client is killed"
    );
    let out = host
        .engine(&["inspect", "-f", "{{.State.Status}}", "console"])
        .output();
    assert_eq!(out.stdout.trim(), "running", "{out}");
    let mut again = host
        .engine(&["attach", "console"])
        .spawn_on_terminal(24, 80);
    std::thread::sleep(Duration::from_millis(300));
    let sized = (0..50).any(|_| {
        again.type_keys(b"stty size\r");
        again.saw("24 80", Duration::from_millis(200))
    });
    assert!(sized, "attach sends its window size\n{}", again.seen);
    again.type_keys(b"exit 5\r");
    assert_eq!(
        again.wait(),
        5,
        "attach ends with the container, with its exit code\n{}",
        again.seen
    );
    assert!(again.is_cooked());
    host.engine(&["logs", "console"])
        .output()
        .assert_stdout_contains("30 90");
    host.engine(&["rm", "console"]).output().assert_success();
}

#[test]
fn a_fake_ptmx_in_the_container_is_refused() {
    let host = TestHost::new();
    let canary = host.canary("pty-canary", &token());
    detached(&host, "faker", &["--cap-add", "SYS_ADMIN", "sleep", "60"]);
    // The container (it has CAP_SYS_ADMIN) replaces its devpts with a tmpfs whose
    // ptmx is a symlink, then a regular file.
    exec(
        &host,
        &[
            "faker",
            "sh",
            "-c",
            "mount -t tmpfs fake /dev/pts && ln -s /proc/1/root/etc/passwd /dev/pts/ptmx",
        ],
    )
    .output()
    .assert_success();
    let out = exec(&host, &["-t", "faker", "true"]).output();
    out.assert_code(125).assert_stderr_contains("/dev/pts/ptmx");
    exec(
        &host,
        &[
            "faker",
            "sh",
            "-c",
            "rm /dev/pts/ptmx && echo not-a-pty > /dev/pts/ptmx",
        ],
    )
    .output()
    .assert_success();
    let out = exec(&host, &["-t", "faker", "true"]).output();
    out.assert_code(125)
        .assert_stderr_contains("not a pseudo-terminal multiplexer");
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap().len(),
        12,
        "the canary is untouched"
    );
    rm_f(&host, "faker");
}
