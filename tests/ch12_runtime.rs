//! Chapter 12 — ferry as an OCI runtime: runc's command line over ferry's
//! runtime, driven by podman (through conmon) and by hand; the conformance
//! behaviours runc and crun are held to (hooks, rlimits, sysctl, oomScoreAdj,
//! root.readonly, mount options, the lifecycle's errors); and the refusal of
//! what ferry does not implement. See chapters/12-runtime.md.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{engine_binary, token, Invocation, TestHost};

/// An OCI bundle of the test's: `config.json` from `ENGINE runtime spec`, its
/// root the test host's fixture rootfs, its cgroup under the test's parent.
struct Bundle {
    dir: PathBuf,
    spec: Value,
}

impl Bundle {
    fn new(host: &TestHost, id: &str, args: &[&str]) -> Bundle {
        let dir = host.dir.join(format!("bundle-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        runtime(host, &["spec", "--bundle", dir.to_str().unwrap()])
            .output()
            .assert_success();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        let mut spec: Value = serde_json::from_str(&text).unwrap();
        spec["root"]["path"] = json!(host.rootfs);
        spec["process"]["args"] = json!(args);
        spec["linux"]["cgroupsPath"] = json!(format!("{}/{id}", host.cgroup_parent));
        let bundle = Bundle { dir, spec };
        bundle.save();
        bundle
    }

    fn save(&self) {
        let text = serde_json::to_string_pretty(&self.spec).unwrap();
        std::fs::write(self.dir.join("config.json"), text).unwrap();
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }
}

/// `ENGINE runtime --root ROOT ARGS...` in the test host (ROOT: the test's own).
fn runtime<'h>(host: &'h TestHost, args: &[&str]) -> Invocation<'h> {
    let root = runtime_root(host);
    let mut all = vec!["runtime", "--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    host.command(engine_binary(), &all)
}

fn runtime_root(host: &TestHost) -> PathBuf {
    host.dir.join("runtime-root")
}

/// The containers left under the runtime's root.
fn left_in_root(host: &TestHost) -> Vec<String> {
    match std::fs::read_dir(runtime_root(host)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// On drop (a failed test included), `delete --force` of every container left
/// under the test's runtime root: a created one would wait on its FIFO forever.
struct ForceDelete<'h>(&'h TestHost);

impl Drop for ForceDelete<'_> {
    fn drop(&mut self) {
        for id in left_in_root(self.0) {
            let _ = runtime(self.0, &["delete", "--force", &id]).output();
        }
    }
}

/// `runtime run --bundle B ID`: create, start, wait; the program's output.
fn run_bundle<'h>(host: &'h TestHost, bundle: &Bundle, id: &str) -> Invocation<'h> {
    runtime(host, &["run", "--bundle", bundle.path(), id])
}

fn status_of(host: &TestHost, id: &str) -> String {
    let out = runtime(host, &["state", id]).output();
    json_of(&out)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The whole stdout as JSON (the runtime prints it pretty).
#[track_caller]
fn json_of(out: &support::Output) -> Value {
    out.assert_success();
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e})\n{out}"))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn create_leaves_the_process_waiting_and_start_runs_it() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let word = token();
    let out_file = host.dir.join("c1.out");
    let bundle = Bundle::new(
        &host,
        "c1",
        &["sh", "-c", &format!("echo started {word}; exec sleep 60")],
    );
    let pid_file = host.dir.join("c1.pid");
    runtime(
        &host,
        &[
            "create",
            "--bundle",
            bundle.path(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            "c1",
        ],
    )
    .output_to(&out_file)
    .output()
    .assert_success();
    // Created: the process exists, in its cgroup, but the program has not run.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let state = json_of(&runtime(&host, &["state", "c1"]).output());
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["pid"], pid, "{state}");
    assert_eq!(state["id"], "c1");
    assert_eq!(state["bundle"].as_str(), bundle.dir.to_str());
    // `list`, as a person reads it (the pid column is 8 wide).
    let list = runtime(&host, &["list"]).output();
    list.assert_success();
    let list = list
        .stdout
        .replace(&format!("{pid:<8}"), &format!("{:<8}", "[PID]"));
    snapshot!(host, &[], "runtime_list_created", list);
    assert!(
        runtime_root(&host).join("c1/exec.fifo").exists(),
        "no exec.fifo while created"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !std::fs::read_to_string(&out_file).unwrap().contains(&word),
        "the program ran before start"
    );
    // Start: the program runs with the same pid, and stdio went straight through.
    runtime(&host, &["start", "c1"]).output().assert_success();
    wait_until("the program prints", || {
        std::fs::read_to_string(&out_file)
            .unwrap()
            .contains(&format!("started {word}"))
    });
    assert_eq!(status_of(&host, "c1"), "running");
    assert!(
        !runtime_root(&host).join("c1/exec.fifo").exists(),
        "the FIFO outlived start"
    );
    let ps = runtime(&host, &["ps", "--format", "json", "c1"]).output();
    ps.assert_success();
    assert_eq!(
        json_of(&ps),
        json!([pid]),
        "ps --format json lists the container's pids"
    );

    // Lifecycle errors, each with a clear message and nothing changed.
    runtime(&host, &["start", "c1"])
        .output()
        .assert_code(1)
        .assert_stderr_contains("running: it cannot be started");
    runtime(&host, &["delete", "c1"])
        .output()
        .assert_code(1)
        .assert_stderr_contains("--force");
    assert_eq!(status_of(&host, "c1"), "running");
    runtime(&host, &["create", "--bundle", bundle.path(), "c1"])
        .output_to(&host.dir.join("again.out"))
        .output()
        .assert_code(1)
        .assert_stdout_contains("already exists");

    // Pause and resume through the freezer; update a limit on the fly.
    runtime(&host, &["pause", "c1"]).output().assert_success();
    assert_eq!(status_of(&host, "c1"), "paused");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    assert!(
        !after_name.starts_with('R'),
        "a paused process does not run: {after_name}"
    );
    runtime(&host, &["resume", "c1"]).output().assert_success();
    assert_eq!(status_of(&host, "c1"), "running");
    let limit = 100 + (u32::from_str_radix(&word[..4], 16).unwrap() % 900);
    runtime(&host, &["update", "--resources", "-", "c1"])
        .stdin(json!({"pids": {"limit": limit}}).to_string().as_bytes())
        .output()
        .assert_success();
    let pids_max = support::cgroups::parent_dirs(&format!("{}/c1", host.cgroup_parent))
        .into_iter()
        .map(|dir| dir.join("pids.max"))
        .find(|file| file.exists())
        .map(|file| std::fs::read_to_string(file).unwrap());
    if let Some(value) = pids_max {
        assert_eq!(value.trim(), limit.to_string(), "update wrote pids.max");
    }

    // kill by name, then a stopped container cannot be signalled.
    runtime(&host, &["kill", "c1", "KILL"])
        .output()
        .assert_success();
    wait_until("the container is stopped", || {
        status_of(&host, "c1") == "stopped"
    });
    runtime(&host, &["kill", "c1", "TERM"])
        .output()
        .assert_code(1)
        .assert_stderr_contains("stopped");
    runtime(&host, &["delete", "c1"]).output().assert_success();
    runtime(&host, &["state", "c1"])
        .output()
        .assert_code(1)
        .assert_stderr_contains("does not exist");
    assert!(left_in_root(&host).is_empty(), "{:?}", left_in_root(&host));
}

#[test]
fn hooks_run_at_their_stages_with_the_state_on_stdin() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let record = |stage: &str| {
        let file = host.dir.join(format!("{stage}.json"));
        json!({
            "path": "/bin/busybox",
            "args": ["sh", "-c", format!("cat > {}; echo \"$HOOK_WORD\" >> {}", file.display(), file.display())],
            "env": [format!("HOOK_WORD={stage}-env")],
        })
    };
    let word = token();
    let id = format!("hooks-{word}");
    let mut bundle = Bundle::new(&host, &id, &["true"]);
    bundle.spec["hooks"] = json!({
        "prestart": [record("prestart")],
        "createRuntime": [record("createRuntime")],
        "poststart": [record("poststart")],
        "poststop": [record("poststop")],
    });
    bundle.save();
    run_bundle(&host, &bundle, &id).output().assert_success();
    for stage in ["prestart", "createRuntime", "poststart", "poststop"] {
        let text = std::fs::read_to_string(host.dir.join(format!("{stage}.json")))
            .unwrap_or_else(|_| panic!("the {stage} hook did not run"));
        let (json_text, env_line) = text
            .rsplit_once('}')
            .map(|(j, e)| (format!("{j}}}"), e))
            .unwrap();
        let state: Value = serde_json::from_str(&json_text).unwrap();
        assert_eq!(state["id"], id.as_str(), "{stage}: {state}");
        assert_eq!(
            state["ociVersion"].as_str().map(|v| v.starts_with("1.")),
            Some(true)
        );
        assert_eq!(state["bundle"].as_str(), bundle.dir.to_str(), "{stage}");
        assert!(
            env_line.contains(&format!("{stage}-env")),
            "{stage} got its env: {env_line:?}"
        );
        if stage != "poststop" {
            assert!(
                state["pid"].as_i64().unwrap_or(0) > 0,
                "{stage} sees the pid: {state}"
            );
        }
    }

    // A failing prestart hook stops the container: an error naming it, nothing left.
    let id = format!("failing-{word}");
    let mut bundle = Bundle::new(
        &host,
        &id,
        &[
            "sh",
            "-c",
            &format!("echo ran > {}/ran", host.dir.display()),
        ],
    );
    bundle.spec["hooks"] = json!({"prestart": [{"path": "/bin/busybox", "args": ["sh", "-c", "echo nope-hook >&2; exit 3"]}]});
    bundle.save();
    run_bundle(&host, &bundle, &id)
        .output()
        .assert_code(1)
        .assert_stderr_contains("prestart hook /bin/busybox failed")
        .assert_stderr_contains("nope-hook");
    assert!(
        !host.dir.join("ran").exists(),
        "the program ran after a failed prestart hook"
    );

    // A hook past its timeout is killed, and counts as failed.
    let id = format!("slow-{word}");
    let mut bundle = Bundle::new(&host, &id, &["true"]);
    bundle.spec["hooks"] =
        json!({"createRuntime": [{"path": "/bin/busybox", "args": ["sleep", "30"], "timeout": 1}]});
    bundle.save();
    let started = Instant::now();
    run_bundle(&host, &bundle, &id)
        .output()
        .assert_code(1)
        .assert_stderr_contains("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the slow hook was not killed"
    );
    assert!(left_in_root(&host).is_empty(), "{:?}", left_in_root(&host));
}

#[test]
fn the_program_gets_its_rlimits_umask_oom_score_and_sysctls() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let word = token();
    let n = u32::from_str_radix(&word[..6], 16).unwrap();
    let (soft, hard) = (200 + n % 300, 600 + n % 300);
    let oom = 1 + (n % 900) as i32;
    let msgmax = 4096 + n % 4096;
    let host_msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    let mut bundle = Bundle::new(
        &host,
        "limits",
        &["sh", "-c", "ulimit -Sn; ulimit -Hn; umask; cat /proc/self/oom_score_adj; cat /proc/sys/kernel/msgmax"],
    );
    bundle.spec["process"]["rlimits"] =
        json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]);
    bundle.spec["process"]["oomScoreAdj"] = json!(oom);
    bundle.spec["process"]["user"]["umask"] = json!(0o027);
    bundle.spec["linux"]["sysctl"] = json!({"kernel.msgmax": msgmax.to_string()});
    bundle.save();
    let out = run_bundle(&host, &bundle, "limits").output();
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            soft.to_string(),
            hard.to_string(),
            "0027".into(),
            oom.to_string(),
            msgmax.to_string()
        ],
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap(),
        host_msgmax,
        "the container's sysctl changed the host's"
    );

    // A sysctl of no namespace would change the host: refused before anything runs.
    bundle.spec["linux"]["sysctl"] = json!({"kernel.panic": "1"});
    bundle.save();
    run_bundle(&host, &bundle, "limits")
        .output()
        .assert_code(1)
        .assert_stderr_contains("linux.sysctl entry kernel.panic is not namespaced");
    assert!(left_in_root(&host).is_empty(), "{:?}", left_in_root(&host));
}

#[test]
fn a_read_only_root_and_bind_options_are_applied() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let word = token();
    let shared = host.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::copy("/bin/busybox", shared.join("busybox")).unwrap();
    let mut bundle = Bundle::new(
        &host,
        "ro",
        &[
            "sh",
            "-c",
            "touch /rootfile 2>/dev/null && echo root-writable; \
             touch /ro/x 2>/dev/null && echo ro-writable; \
             /noexec/busybox true 2>/dev/null && echo noexec-ran; \
             echo done",
        ],
    );
    bundle.spec["root"]["readonly"] = json!(true);
    let mounts = bundle.spec["mounts"].as_array_mut().unwrap();
    mounts.push(
        json!({"destination": "/ro", "type": "bind", "source": shared, "options": ["rbind", "ro"]}),
    );
    mounts.push(json!({"destination": "/noexec", "type": "bind", "source": shared, "options": ["bind", "noexec", "rprivate"]}));
    // The fixture has no /ro or /noexec: the runtime makes its mount points, as
    // runc does, in a root that is the caller's own (before it turns read-only).
    let rootfs_before = support::fixture::tree_listing(&host.rootfs);
    bundle.save();
    let out = run_bundle(&host, &bundle, "ro").output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "done", "{out}");
    assert!(!shared.join("x").exists());
    let paths = |listing: Vec<String>| -> Vec<String> {
        listing
            .iter()
            .filter_map(|entry| entry.split(' ').next().map(String::from))
            .collect()
    };
    let before = paths(rootfs_before);
    let created: Vec<String> = paths(support::fixture::tree_listing(&host.rootfs))
        .into_iter()
        .filter(|path| !before.contains(path))
        .collect();
    assert_eq!(
        created,
        ["/noexec", "/ro"],
        "only the mount points were made in the root"
    );
    let _ = word;

    // A hostile root: its mount point is a symlink out of it; the bind must land
    // inside the root, never on the host's canary.
    let canary = host.canary("canary", "untouched");
    let _ = std::fs::remove_dir(host.rootfs.join("ro"));
    let _ = std::fs::remove_file(host.rootfs.join("ro"));
    std::os::unix::fs::symlink(&canary, host.rootfs.join("ro")).unwrap();
    bundle.spec["root"]["readonly"] = json!(false);
    let mounts = bundle.spec["mounts"].as_array_mut().unwrap();
    mounts.retain(|m| m["destination"] != "/noexec");
    for m in mounts.iter_mut().filter(|m| m["destination"] == "/ro") {
        *m = json!({"destination": "/ro", "type": "bind", "source": shared.join("busybox"), "options": ["bind", "ro"]});
    }
    bundle.spec["process"]["args"] = json!(["true"]);
    bundle.save();
    let _ = run_bundle(&host, &bundle, "ro").output();
    assert_eq!(std::fs::read_to_string(&canary).unwrap(), "untouched");
    assert!(
        host.leaked_mounts().is_empty(),
        "{:?}",
        host.leaked_mounts()
    );
    assert!(left_in_root(&host).is_empty(), "{:?}", left_in_root(&host));
}

#[test]
fn what_ferry_does_not_implement_is_refused_by_name() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let cases: &[(&str, Value)] = &[
        (
            "linux.uidMappings",
            json!({"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}}),
        ),
        (
            "hooks.createContainer",
            json!({"hooks": {"createContainer": [{"path": "/bin/true"}]}}),
        ),
        (
            "linux.resources.devices",
            json!({"linux": {"resources": {"devices": [{"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}]}}}),
        ),
        (
            "linux.intelRdt",
            json!({"linux": {"intelRdt": {"closID": "x"}}}),
        ),
    ];
    for (field, extra) in cases {
        let id = format!("refused-{}", token());
        let mut bundle = Bundle::new(&host, &id, &["true"]);
        merge(&mut bundle.spec, extra.clone());
        bundle.save();
        let out = run_bundle(&host, &bundle, &id).output();
        out.assert_code(1).assert_stderr_contains(field);
        if *field == "linux.uidMappings" {
            snapshot!(host, &[], "runtime_refuses_an_unknown_field", out.stderr);
        }
    }
    // A shared mount would let the container's mounts reach the host.
    let id = format!("shared-{}", token());
    let mut bundle = Bundle::new(&host, &id, &["true"]);
    bundle.spec["mounts"].as_array_mut().unwrap().push(
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]}),
    );
    bundle.save();
    run_bundle(&host, &bundle, &id)
        .output()
        .assert_code(1)
        .assert_stderr_contains("rshared propagation");
    // A FIFO in place of config.json is refused, not waited on.
    let id = format!("fifo-{}", token());
    let bundle = Bundle::new(&host, &id, &["true"]);
    std::fs::remove_file(bundle.dir.join("config.json")).unwrap();
    nix::unistd::mkfifo(
        &bundle.dir.join("config.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    run_bundle(&host, &bundle, &id)
        .output()
        .assert_code(1)
        .assert_stderr_contains("not a regular file");
    // Ids that would name a path outside the root.
    for id in ["../escape", "a/b", "..", ""] {
        runtime(&host, &["state", id])
            .output()
            .assert_code(1)
            .assert_stderr_contains("is not a container id");
    }
    assert!(!host.dir.join("escape").exists());
    assert!(left_in_root(&host).is_empty(), "{:?}", left_in_root(&host));
}

#[test]
fn only_the_preserved_descriptors_reach_the_program() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let word = token();
    let given = host.canary("given", &format!("preserved {word}"));
    let stray = host.canary("stray", "stray");
    let bundle = Bundle::new(
        &host,
        "fds",
        &[
            "sh",
            "-c",
            "cat <&3; ls /proc/self/fd/4 2>/dev/null && echo fd4-leaked; true",
        ],
    );
    let out = runtime(
        &host,
        &[
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            bundle.path(),
            "fds",
        ],
    )
    .inherit_fd(std::fs::File::open(&given).unwrap(), 3)
    .inherit_fd(std::fs::File::open(&stray).unwrap(), 4)
    .output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), format!("preserved {word}"), "{out}");

    // The same for a command exec'd into a running container.
    let running = Bundle::new(&host, "fds-exec", &["sleep", "60"]);
    runtime(
        &host,
        &["run", "--detach", "--bundle", running.path(), "fds-exec"],
    )
    .output_to(&host.dir.join("fds-exec.out"))
    .output()
    .assert_success();
    let script = "cat <&3; ls /proc/self/fd/4 2>/dev/null && echo fd4-leaked; true";
    let out = runtime(
        &host,
        &[
            "exec",
            "--preserve-fds",
            "1",
            "fds-exec",
            "sh",
            "-c",
            script,
        ],
    )
    .inherit_fd(std::fs::File::open(&given).unwrap(), 3)
    .inherit_fd(std::fs::File::open(&stray).unwrap(), 4)
    .output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), format!("preserved {word}"), "{out}");
    // Asked for a descriptor the caller does not have: refused, not filled with
    // one of the runtime's own.
    runtime(&host, &["exec", "--preserve-fds", "2", "fds-exec", "true"])
        .inherit_fd(std::fs::File::open(&given).unwrap(), 3)
        .output()
        .assert_code(1)
        .assert_stderr_contains("descriptor 4 is not open");
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into.entry(key).or_insert(Value::Null), value);
            }
        }
        (into, from) => *into = from,
    }
}

// ---------------------------------------------------------------------------
// podman drives ferry.

/// podman with its own storage in the test's dir, ferry as its runtime (through
/// a script that adds the test's --root: podman 4.3 does not hand --runtime-flag
/// to the cleanup process it starts), and these machines' needs.
struct Podman<'h> {
    host: &'h TestHost,
    global: Vec<String>,
}

impl<'h> Podman<'h> {
    fn new(host: &'h TestHost) -> Podman<'h> {
        let base = host.dir.join("podman");
        for sub in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        let script = host.dir.join(format!("{}-runtime", support_engine_name()));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec {} runtime --root {} \"$@\"\n",
                engine_binary(),
                runtime_root(host).display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = |sub: &str| base.join(sub).display().to_string();
        let global = vec![
            format!("--root={}", path("root")),
            format!("--runroot={}", path("runroot")),
            format!("--tmpdir={}", path("tmp")),
            "--storage-driver=overlay".into(),
            format!("--runtime={}", script.display()),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=file".into(),
        ];
        let podman = Podman { host, global };
        // The fixture rootfs as an image.
        let tar = host.dir.join("rootfs.tar");
        std::fs::write(&tar, support::images::tar_of_dir(&host.rootfs)).unwrap();
        podman
            .run(&["import", tar.to_str().unwrap(), "localhost/fixture:latest"])
            .output()
            .assert_success();
        podman
    }

    fn run(&self, args: &[&str]) -> Invocation<'h> {
        let mut all: Vec<&str> = self.global.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        self.host.command("podman", &all)
    }

    /// `podman run` with these machines' flags and the test's cgroup parent.
    fn run_container(&self, args: &[&str]) -> Invocation<'h> {
        let parent = format!("--cgroup-parent={}", self.host.cgroup_parent);
        let mut all = vec![
            "run",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            "--network=none",
            parent.as_str(),
        ];
        all.extend_from_slice(args);
        self.run(&all)
    }

    fn status(&self, name: &str) -> String {
        let out = self
            .run(&["inspect", "--format", "{{.State.Status}}", name])
            .output();
        out.stdout.trim().to_string()
    }
}

impl Drop for Podman<'_> {
    /// Removes podman's containers and storage mounts and its conmon cgroups, so
    /// the test host's leak checks see only what ferry left.
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]).output();
        let _ = self.run(&["system", "reset", "-f"]).output();
        let storage = self.host.dir.join("podman");
        for _ in 0..3 {
            let mounts: Vec<String> = self
                .host
                .mounts()
                .into_iter()
                .filter_map(|m| m.split(' ').next().map(String::from))
                .filter(|m| Path::new(m).starts_with(&storage))
                .collect();
            if mounts.is_empty() {
                break;
            }
            for mount in mounts.iter().rev() {
                let _ = self.host.command("umount", &["-l", mount]).output();
            }
        }
        support::cgroups::remove_podman_leftovers(&self.host.cgroup_parent);
    }
}

fn support_engine_name() -> &'static str {
    Path::new(engine_binary())
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("ferry")
}

#[test]
fn podman_runs_containers_with_ferry_as_its_runtime() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    let podman = Podman::new(&host);
    let word = token();

    // run --rm: the output comes back through conmon, and nothing is left.
    let out = podman
        .run_container(&[
            "--rm",
            "localhost/fixture",
            "sh",
            "-c",
            &format!("echo hello {word}; exit 3"),
        ])
        .output();
    out.assert_code(3);
    assert!(out.stdout.contains(&format!("hello {word}")), "{out}");
    assert!(
        left_in_root(&host).is_empty(),
        "run --rm left {:?}",
        left_in_root(&host)
    );

    // run -d, then exec, logs, pause/unpause, kill -s, stop.
    let script = format!(
        "trap 'echo got-usr1 {word}' USR1; trap 'echo bye; exit 0' TERM; echo up {word}; \
         while true; do sleep 0.1; done"
    );
    podman
        .run_container(&[
            "-d",
            "--name",
            "web",
            "localhost/fixture",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .assert_success();
    wait_until("the container logs", || {
        podman
            .run(&["logs", "web"])
            .output()
            .stdout
            .contains(&format!("up {word}"))
    });
    assert_eq!(podman.status("web"), "running");
    let ids = left_in_root(&host);
    assert_eq!(ids.len(), 1, "one container in ferry's root: {ids:?}");
    assert_eq!(status_of(&host, &ids[0]), "running");

    let out = podman
        .run(&[
            "exec",
            "web",
            "sh",
            "-c",
            &format!("echo exec {word}; cat /proc/1/cmdline"),
        ])
        .output();
    out.assert_success();
    assert!(out.stdout.contains(&format!("exec {word}")), "{out}");
    assert!(
        out.stdout.contains("while true"),
        "exec runs beside the container's PID 1: {out}"
    );
    podman
        .run(&["exec", "web", "sh", "-c", "exit 7"])
        .output()
        .assert_code(7);

    let mut terminal = podman
        .run(&["exec", "-it", "web", "sh"])
        .spawn_on_terminal(24, 80);
    terminal.type_keys(format!("tty; echo tty-{word}\r").as_bytes());
    terminal.expect(&format!("tty-{word}"));
    terminal.type_keys(b"exit\r");
    assert_eq!(terminal.wait(), 0);

    podman.run(&["pause", "web"]).output().assert_success();
    assert_eq!(podman.status("web"), "paused");
    assert_eq!(status_of(&host, &ids[0]), "paused");
    podman.run(&["unpause", "web"]).output().assert_success();
    assert_eq!(podman.status("web"), "running");

    podman
        .run(&["kill", "-s", "USR1", "web"])
        .output()
        .assert_success();
    wait_until("the trap answers SIGUSR1", || {
        podman
            .run(&["logs", "web"])
            .output()
            .stdout
            .contains(&format!("got-usr1 {word}"))
    });
    podman
        .run(&["stop", "-t", "10", "web"])
        .output()
        .assert_success();
    assert_eq!(podman.status("web"), "exited");
    assert!(podman.run(&["logs", "web"]).output().stdout.contains("bye"));
    podman.run(&["rm", "web"]).output().assert_success();

    // rm -f of a running container.
    podman
        .run_container(&["-d", "--name", "busy", "localhost/fixture", "sleep", "600"])
        .output()
        .assert_success();
    podman
        .run(&["rm", "-f", "-t", "0", "busy"])
        .output()
        .assert_success();
    assert!(
        left_in_root(&host).is_empty(),
        "rm -f left {:?}",
        left_in_root(&host)
    );
}

// ---------------------------------------------------------------------------
// containerd drives ferry (its runc shim, `ctr run --runc-binary`).

/// The test's containerd: stopped (SIGTERM, then SIGKILL at its deadline) on
/// every way out of the test, a failed assertion included.
/// The shim's runc root of the test's namespace goes with it.
/// The test's containerd, stopped on drop, with the shim's runc root; and when no
/// containerd of the machine had /run/containerd before the test, what containerd
/// and ctr make there whatever their configuration says (`fifo`, `s`, `runc`).
struct Daemon(Option<support::Running>, PathBuf, bool);

/// Where containerd's shims and ctr put their sockets and FIFOs.
const CONTAINERD_RUN: &str = "/run/containerd";

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(daemon) = self.0.take() {
            daemon.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = daemon.wait();
        }
        let _ = std::fs::remove_dir_all(&self.1);
        if self.2 {
            // Only empty directories go: rmdir(2), never a recursive removal.
            for sub in ["fifo", "s", "runc"] {
                let _ = std::fs::remove_dir(Path::new(CONTAINERD_RUN).join(sub));
            }
            let _ = std::fs::remove_dir(CONTAINERD_RUN);
        }
    }
}

#[test]
fn containerd_runs_a_container_through_ferry() {
    let host = TestHost::new();
    let _cleanup = ForceDelete(&host);
    for program in ["/usr/bin/containerd", "/usr/bin/ctr"] {
        assert!(
            Path::new(program).exists(),
            "{program} is missing: apt-get install containerd (cargo xtask doctor installs it)"
        );
    }
    let word = token();
    let base = host.dir.join("containerd");
    std::fs::create_dir_all(&base).unwrap();
    let socket = base.join("containerd.sock");
    let config = base.join("config.toml");
    std::fs::write(
        &config,
        format!(
            // No CRI plugin (Kubernetes' API): it would make /run/netns a mount.
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{1}\"\n",
            base.display(),
            socket.display()
        ),
    )
    .unwrap();
    // The shim runs `--root /run/containerd/runc/NAMESPACE`: a namespace of the test's.
    let namespace = format!("ferry-test-{word}");
    let runc_root = PathBuf::from(format!("{CONTAINERD_RUN}/runc/{namespace}"));
    let made_run_dir = !Path::new(CONTAINERD_RUN).exists();
    let daemon = Daemon(
        Some(
            host.command("containerd", &["--config", config.to_str().unwrap()])
                .output_to(&base.join("daemon.log"))
                .timeout(Duration::from_secs(20))
                .spawn(),
        ),
        runc_root.clone(),
        made_run_dir,
    );
    wait_until("containerd serves", || socket.exists());
    let ctr = |args: &[&str]| {
        let mut all = vec!["-a", socket.to_str().unwrap(), "-n", namespace.as_str()];
        all.extend_from_slice(args);
        let all: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        host.command("ctr", &all).output()
    };
    // The fixture as an OCI archive (saved by the engine under test).
    let tar = host.dir.join("rootfs.tar");
    std::fs::write(&tar, support::images::tar_of_dir(&host.rootfs)).unwrap();
    host.engine(&["import", tar.to_str().unwrap(), "localhost/fixture:1"])
        .output()
        .assert_success();
    let archive = host.dir.join("fixture-oci.tar");
    host.engine(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        "localhost/fixture:1",
    ])
    .output()
    .assert_success();
    host.engine(&["rmi", "localhost/fixture:1"])
        .output()
        .assert_success();
    ctr(&["image", "import", archive.to_str().unwrap()]).assert_success();

    // Called through a symlink named ENGINE-runtime, the binary speaks runc's dialect.
    let symlink = host.dir.join(format!("{}-runtime", support_engine_name()));
    std::os::unix::fs::symlink(engine_binary(), &symlink).unwrap();
    let cgroup = format!("{}/ctr-{word}", host.cgroup_parent);
    let out = ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        symlink.to_str().unwrap(),
        "--cgroup",
        &cgroup,
        "localhost/fixture:1",
        &format!("c-{word}"),
        "sh",
        "-c",
        &format!("echo from containerd {word}; exit 5"),
    ]);
    out.assert_code(5);
    assert!(
        out.stdout.contains(&format!("from containerd {word}")),
        "{out}"
    );

    let left: Vec<_> = std::fs::read_dir(&runc_root)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    drop(daemon);
    assert!(
        left.is_empty(),
        "containers left in {}: {left:?}",
        runc_root.display()
    );
    // containerd's snapshot mounts are its own business, not ferry's.
    for mount in host.leaked_mounts().iter().rev() {
        if let Some(point) = mount
            .split(' ')
            .next()
            .filter(|p| p.starts_with(base.to_str().unwrap()))
        {
            let _ = host.command("umount", &["-l", point]).output();
        }
    }
}
