//! Chapter 0 — a process: `run --rootfs DIR CMD` runs the rootfs's program with
//! stdio, exit codes, signals and a clean environment. See chapters/00-process.md.
//!
//! These tests stay true in later chapters: they never depend on what the command
//! sees of the filesystem, and signals come from the host or through a shell trap.

mod support;

use nix::sys::signal::Signal;
use support::{
    find_process, probe_report, sigkill_from_host, token, wait_for_container_file, TestHost,
};

#[test]
fn output_and_exit_code_pass_through() {
    let host = TestHost::new();
    let (out_token, err_token) = (token(), token());
    let code = 1 + (u8::from_str_radix(&token()[..2], 16).unwrap() % 100) as i32;
    let script = format!("echo {out_token}; echo {err_token} >&2; exit {code}");
    let out = host.run(&["sh", "-c", &script]).output();
    out.assert_code(code);
    assert_eq!(
        out.stdout,
        format!("{out_token}\n"),
        "stdout must be the command's, untouched\n{out}"
    );
    out.assert_stderr_contains(&err_token);
}

#[test]
fn stdin_reaches_the_command() {
    let host = TestHost::new();
    let line = token();
    let out = host
        .run(&["sh", "-c", "read line; echo got:$line"])
        .stdin(format!("{line}\n").as_bytes())
        .output();
    out.assert_success()
        .assert_stdout_contains(&format!("got:{line}"));
}

#[test]
fn killed_by_sigkill_from_the_host_exits_137() {
    let host = TestHost::new();
    // The shell waits on its open stdin pipe, without children, until killed.
    sigkill_from_host(&host, &[]).assert_code(137);
}

#[test]
fn sigterm_sent_to_the_engine_reaches_the_command() {
    let host = TestHost::new();
    let marker = token();
    let ready = format!("ready-{marker}");
    // Bounded (10 s) so that an engine that does not forward leaves nothing running.
    let script = format!(
        "trap 'echo trapped-{marker}; exit 42' TERM; echo > {ready}; \
         i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 3"
    );
    let running = host.run(&["sh", "-c", &script]).spawn();
    // The shell writes the file in its working directory, the rootfs's `/`.
    wait_for_container_file(&host, &ready);
    running.signal(Signal::SIGTERM);
    let out = running.wait();
    out.assert_code(42)
        .assert_stdout_contains(&format!("trapped-{marker}"));
}

#[test]
fn environment_is_clean_with_docker_defaults() {
    let host = TestHost::new();
    let secret = token();
    let report = host
        .run(&["/probe", "report"])
        .env("FERRY_TEST_SECRET", &secret)
        .output();
    let env = report.json()["env"].clone();
    let keys: Vec<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["HOME", "HOSTNAME", "PATH"],
        "only the defaults may be set\n{report}"
    );
    assert!(
        !report.stdout.contains(&secret),
        "the engine's environment leaked in\n{report}"
    );
    assert_eq!(
        env["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(env["HOME"], "/root");
}

#[test]
fn env_flags_set_pass_through_and_read_files() {
    let host = TestHost::new();
    let (set, passed, from_file) = (token(), token(), token());
    let env_file = host.canary(
        "env.list",
        &format!("# a comment\n\nFROM_FILE={from_file}\nOVERRIDDEN=file\nPATH=/bin\n"),
    );
    let report = host
        .run(&[
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            &format!("SET={set}"),
            "-e",
            "PASSED",
            "-e",
            "NOT_SET_ANYWHERE",
            "-e",
            "OVERRIDDEN=flag",
            "/probe",
            "report",
        ])
        .env("PASSED", &passed)
        .output();
    let env = report.json()["env"].clone();
    assert_eq!(env["SET"], set.as_str(), "{report}");
    assert_eq!(
        env["PASSED"],
        passed.as_str(),
        "-e KEY passes KEY through\n{report}"
    );
    assert_eq!(env["FROM_FILE"], from_file.as_str(), "{report}");
    assert_eq!(
        env["OVERRIDDEN"], "flag",
        "-e comes after --env-file\n{report}"
    );
    assert_eq!(
        env["PATH"], "/bin",
        "a user's PATH replaces the default\n{report}"
    );
    assert!(
        env.get("NOT_SET_ANYWHERE").is_none(),
        "an unset -e KEY is left out\n{report}"
    );
}

#[test]
fn workdir_is_entered() {
    let host = TestHost::new();
    let dir = format!("/work-{}", token());
    std::fs::create_dir(host.rootfs.join(&dir[1..])).unwrap();
    let out = host.run(&["-w", &dir, "sh", "-c", "pwd"]).output();
    out.assert_success();
    assert!(
        out.stdout.trim_end().ends_with(&dir),
        "pwd must end with {dir}\n{out}"
    );
}

#[test]
fn a_missing_workdir_is_not_created_in_the_rootfs() {
    let host = TestHost::new();
    let dir = format!("/work-{}", token());
    let out = host.run(&["-w", &dir, "sh", "-c", "pwd"]).output();
    // Until chapter 5 gives the container a layer of its own, a missing workdir is
    // an error; from then on it is created there. Never in the rootfs itself.
    if out.code != 0 {
        out.assert_code(125).assert_stderr_contains(&dir);
    }
    assert!(
        !host.rootfs.join(&dir[1..]).exists(),
        "the engine wrote the workdir into the rootfs\n{out}"
    );
}

#[test]
fn command_leads_a_new_session() {
    let host = TestHost::new();
    let report = probe_report(&host, &[], &["report"]);
    assert_eq!(
        report["session_id"], report["pid"],
        "the command must call setsid(2): {report}"
    );
}

#[test]
fn hostname_is_the_short_id_of_a_container_that_exists_while_it_runs() {
    let host = TestHost::new();
    let marker = token();
    let mut running = host
        .run(&["sh", "-c", &format!("read x; echo $HOSTNAME; : {marker}")])
        .spawn();
    find_process(&marker, running.pid());
    let ids = host.container_dirs();
    assert_eq!(
        ids.len(),
        1,
        "one directory per running container under the state root: {ids:?}"
    );
    running.write_stdin(b"go\n");
    let out = running.wait();
    out.assert_success();
    let hostname = out.stdout.trim();
    assert_eq!(
        hostname.len(),
        12,
        "HOSTNAME is the short id (12 hex digits)\n{out}"
    );
    assert_eq!(
        ids[0].len(),
        64,
        "a container id has 64 hex digits: {}",
        ids[0]
    );
    assert!(
        ids[0].starts_with(hostname),
        "HOSTNAME must be the start of the id {}\n{out}",
        ids[0]
    );
    assert!(
        host.container_dirs().is_empty(),
        "the state directory is removed when the container ends"
    );
}

#[test]
fn ids_differ_between_containers() {
    let host = TestHost::new();
    let first = host.run(&["sh", "-c", "echo $HOSTNAME"]).output();
    let second = host.run(&["sh", "-c", "echo $HOSTNAME"]).output();
    assert_ne!(
        first.assert_success().stdout,
        second.assert_success().stdout
    );
}

#[test]
fn missing_command_exits_127_and_says_so() {
    let host = TestHost::new();
    let name = format!("no-such-command-{}", token());
    let out = host.run(&[&name]).output();
    out.assert_code(127)
        .assert_stderr_contains(&name)
        .assert_stderr_contains("not found");
    snapshot!(host, &[&name], "ch00_missing_command", out.stderr);
}

#[test]
fn non_executable_command_exits_126() {
    let host = TestHost::new();
    let name = format!("not-executable-{}", token());
    std::fs::write(host.rootfs.join("bin").join(&name), "#!/bin/sh\necho hi\n").unwrap();
    let out = host.run(&[&name]).output();
    out.assert_code(126)
        .assert_stderr_contains(&name)
        .assert_stderr_contains("not executable");
}

#[test]
fn missing_rootfs_exits_125_and_touches_nothing() {
    let host = TestHost::new();
    let missing = host.dir.join(format!("missing-{}", token()));
    let out = host
        .engine(&["run", "--rootfs", missing.to_str().unwrap(), "sh"])
        .output();
    out.assert_code(125)
        .assert_stderr_contains(missing.to_str().unwrap());
    assert!(
        !missing.exists(),
        "the engine must not create the missing rootfs"
    );
    snapshot!(host, &[], "ch00_missing_rootfs", out.stderr);
}

#[test]
fn rootfs_that_is_a_file_exits_125() {
    let host = TestHost::new();
    let file = host.canary("not-a-dir", "x");
    let out = host
        .engine(&["run", "--rootfs", file.to_str().unwrap(), "sh"])
        .output();
    out.assert_code(125)
        .assert_stderr_contains("not a directory");
}

#[test]
fn bad_flag_exits_125() {
    let host = TestHost::new();
    let out = host.run(&["--no-such-flag", "sh"]).output();
    out.assert_code(125)
        .assert_stderr_contains("--no-such-flag");
    let out = host.run(&["-e", "=value", "sh"]).output();
    out.assert_code(125).assert_stderr_contains("=value");
}

#[test]
fn run_help_lists_dockers_flags() {
    let host = TestHost::new();
    let out = host.engine(&["run", "--help"]).output();
    out.assert_success();
    snapshot!(host, &[], "ch00_run_help", out.stdout);
}

#[test]
fn the_command_starts_with_no_signal_ignored_or_blocked() {
    let host = TestHost::new();
    // ferry is a Rust program, which ignores SIGPIPE; the command must not inherit it.
    let out = host
        .run(&[
            "sh",
            "-c",
            "grep -E '^Sig(Ign|Blk):' /proc/self/status; yes | head -c 1",
        ])
        .output();
    out.assert_success();
    assert!(
        out.stdout.contains("SigIgn:\t0000000000000000")
            && out.stdout.contains("SigBlk:\t0000000000000000"),
        "the command must start with every signal at its default and none blocked\n{out}"
    );
    assert!(
        !out.stderr.contains("Broken pipe"),
        "SIGPIPE was ignored: `yes` saw EPIPE instead of dying of SIGPIPE\n{out}"
    );
}

#[test]
fn a_killed_engine_takes_its_container_with_it() {
    let host = TestHost::new();
    let marker = token();
    let script = format!("read x; : {marker}");
    let running = host.run(&["sh", "-c", &script]).spawn();
    let pid = support::find_process(&marker, running.pid());
    running.signal(nix::sys::signal::Signal::SIGKILL);
    let out = running.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container's process {pid} outlived the killed engine\n{out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A SIGKILLed engine cannot clean up after itself: the next run sweeps what
    // it left (its directory and cgroups), once its process is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        host.run(&["true"]).output().assert_success();
        if host.container_dirs().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the next run did not sweep the killed engine's container: {:?}",
            host.container_dirs()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_running_container_has_its_spec_and_state_on_disk() {
    let host = TestHost::new();
    let marker = token();
    let script = format!("read x; : {marker}");
    let mut running = host.run(&["sh", "-c", &script]).spawn();
    let pid = support::find_process(&marker, running.pid());
    let containers = host.state.join("containers");
    let dir = std::fs::read_dir(&containers)
        .unwrap()
        .next()
        .expect("a running container has a directory in the state root")
        .unwrap()
        .path();
    let read_json = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{name} in {}: {e}", dir.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    };
    // What the engine handed its runtime, in the OCI runtime spec's names.
    let config = read_json("config.json");
    assert_eq!(config["process"]["args"][2], script.as_str(), "{config}");
    // The root is the rootfs itself, or (from chapter 5) an overlay over it.
    let rootfs = std::fs::canonicalize(&host.rootfs).unwrap();
    let lower = format!("lowerdir={}", rootfs.display());
    let overlaid = config["mounts"].as_array().is_some_and(|mounts| {
        mounts
            .iter()
            .any(|m| m["destination"] == "/" && m["options"].to_string().contains(&lower))
    });
    assert!(
        config["root"]["path"] == rootfs.to_str().unwrap() || overlaid,
        "config.json's root is neither the rootfs nor an overlay over it: {config}"
    );
    assert!(config["ociVersion"]
        .as_str()
        .unwrap_or("")
        .starts_with("1."));
    assert!(config["linux"]["namespaces"].is_array(), "{config}");
    assert!(config["mounts"].is_array(), "{config}");
    // The runtime's state, as `runc state` shows it. The command may already run
    // while the engine is still writing "running" (start, then the state): wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut state = read_json("state.json");
    while state["status"] == "created" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        state = read_json("state.json");
    }
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["id"], dir.file_name().unwrap().to_str().unwrap());
    let first = state["pid"].as_i64().expect("state.json has the pid") as i32;
    assert!(
        first == pid
            || std::fs::read_to_string(format!("/proc/{pid}/status"))
                .is_ok_and(|s| s.contains(&format!("PPid:\t{first}"))),
        "state.json's pid {first} is neither the command {pid} nor its parent (--init)"
    );
    running.close_stdin();
    running.wait().assert_success();
}
