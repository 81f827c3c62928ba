//! The test host: one test's world (temp dir, fixture rootfs, state root) and the
//! mount namespace the engine runs in, whose `/` is shared as on a systemd laptop.
//! On drop it checks that no mount, cgroup or container state was left behind.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::invocation::Invocation;
use super::{cgroups, fixture, token};

/// One test's world: temp dir, fixture rootfs, state root, and a mount namespace.
pub struct TestHost {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub state: PathBuf,
    /// `--cgroup-parent` of every container the test runs: `/ferry-test-TOKEN`.
    pub cgroup_parent: String,
    holder: Child,
    /// The holder's mount namespace, which every invocation enters with setns(2).
    pub(super) mount_ns: File,
    /// The holder's network namespace (the test host's own, with only `lo` up),
    /// entered too; none for a test that needs the machine's loopback (a registry).
    pub(super) net_ns: Option<File>,
    mounts_before: Vec<String>,
}

impl TestHost {
    /// Sets up a fresh test host; fails at once (with what to do) without root or busybox.
    pub fn new() -> TestHost {
        TestHost::make(true)
    }

    /// A test host on the machine's own network namespace: for tests whose
    /// engine must reach a server of the test's on 127.0.0.1 (a registry).
    /// Containers there get `--network none` from the helpers that run them.
    pub fn on_machine_network() -> TestHost {
        TestHost::make(false)
    }

    fn make(own_network: bool) -> TestHost {
        require_root();
        let name = format!("ferry-test-{}", token());
        let dir = PathBuf::from(format!("/tmp/{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let rootfs = dir.join("rootfs");
        fixture::build_rootfs(&rootfs);
        let state = dir.join("state");
        let holder = spawn_namespace_holder(own_network);
        let mount_ns = File::open(format!("/proc/{}/ns/mnt", holder.id())).unwrap();
        let net_ns = own_network.then(|| {
            let path = format!("/proc/{}/ns/net", holder.id());
            super::network::bring_lo_up(&path);
            File::open(path).unwrap()
        });
        let mut host = TestHost {
            dir,
            rootfs,
            state,
            cgroup_parent: format!("/{name}"),
            holder,
            mount_ns,
            net_ns,
            mounts_before: Vec::new(),
        };
        host.mounts_before = host.mounts();
        host
    }

    /// The mounts of the test host's namespace, as "mount point fstype" lines.
    pub fn mounts(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", self.holder.id())).unwrap();
        let mut mounts: Vec<String> = super::mountinfo::parse(&text)
            .into_iter()
            .map(|m| format!("{} {}", m.mount_point, m.fstype))
            .collect();
        mounts.sort();
        mounts
    }

    /// The test host's network namespace as a path (`/proc/PID/ns/net` of its
    /// holder), for nsenter(1); none on the machine's network.
    pub fn net_ns_path(&self) -> Option<String> {
        self.net_ns
            .as_ref()
            .map(|_| format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// Mounts that appeared in the test host since it was set up.
    pub fn leaked_mounts(&self) -> Vec<String> {
        self.mounts()
            .into_iter()
            .filter(|m| !self.mounts_before.contains(m))
            .collect()
    }

    /// `ENGINE --root STATE ARGS...`, ready to run inside the test host.
    pub fn engine(&self, args: &[&str]) -> Invocation<'_> {
        let mut all: Vec<OsString> = vec!["--root".into(), self.state.clone().into()];
        all.extend(args.iter().map(OsString::from));
        Invocation::new(self, all)
    }

    /// `ENGINE build --progress plain --cgroup-parent PARENT ARGS... DIR`: a build
    /// whose RUN containers are under the test's cgroup parent (chapter 11, the
    /// capstone labs).
    pub fn build(&self, dir: &std::path::Path, args: &[&str]) -> Invocation<'_> {
        let mut all = vec![
            "build",
            "--progress",
            "plain",
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        all.extend_from_slice(args);
        all.push(dir.to_str().unwrap());
        self.engine(&all)
    }

    /// `PROGRAM ARGS...` (podman, say), run inside the test host as the engine is.
    pub fn command(&self, program: &str, args: &[&str]) -> Invocation<'_> {
        Invocation::new(self, args.iter().map(OsString::from).collect()).program(program)
    }

    /// `ENGINE run --rm --rootfs ROOTFS --cgroup-parent PARENT [options and command]`:
    /// from chapter 8 a container stays in the store after it ends unless `--rm`
    /// (as docker's); before, it is always removed and `--rm` changes nothing.
    pub fn run(&self, args: &[&str]) -> Invocation<'_> {
        let rootfs = self.rootfs.to_str().unwrap();
        let mut all = vec![
            "run",
            "--rm",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &self.cgroup_parent,
        ];
        all.extend_from_slice(args);
        self.engine(&all)
    }

    /// Writes a file with `contents` in the test's temp dir, outside the rootfs.
    pub fn canary(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Makes the rootfs a read-only bind mount in the test host, as a rootfs on a
    /// read-only medium (or shared between users) is.
    pub fn make_rootfs_read_only(&mut self) {
        let rootfs = self.rootfs.to_str().unwrap().to_string();
        self.mount(&["--bind", &rootfs, &rootfs]);
        self.mount(&["-o", "remount,bind,ro", &rootfs]);
    }

    /// Runs mount(8) with `args` in the test host (never on the real host); the
    /// new mount is not counted as a leak.
    pub fn mount(&mut self, args: &[&str]) {
        {
            let ns = self.mount_ns.as_raw_fd();
            let mut command = Command::new("mount");
            command.args(args);
            // SAFETY: only setns(2) between fork and exec, on an fd the parent keeps open.
            unsafe {
                command.pre_exec(move || {
                    if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let status = command.status().expect("failed to run mount(8)");
            assert!(status.success(), "mount {args:?} failed in the test host");
        }
        self.mounts_before = self.mounts();
    }

    /// Containers whose state directory exists under the state root.
    pub fn container_dirs(&self) -> Vec<String> {
        match std::fs::read_dir(self.state.join("containers")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let leftover = self.container_dirs();
        // A failed chapter 8 test can leave supervisors running: kill them (and so
        // their containers, which die with them) before anything is checked.
        self.kill_supervisors();
        let leaked = self.leaked_mounts();
        let network_leaks = super::network::leaks(self);
        let cgroups = cgroups::remove_parent(&self.cgroup_parent);
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if std::thread::panicking() {
            return;
        }
        assert!(
            leaked.is_empty(),
            "mounts leaked out of the container into the test host (a laptop's host, where / is shared): {leaked:#?}\n\
             make every mount private (MS_REC | MS_PRIVATE on /) before mounting anything (chapter 1)"
        );
        assert!(
            cgroups.is_empty(),
            "cgroups were left behind after the containers ended: {cgroups:#?}\n\
             remove the container's cgroup on every path (chapter 3)"
        );
        assert!(
            network_leaks.is_empty(),
            "the network still holds what the containers had, after they ended: {network_leaks:#?}\n\
             remove each container's veth, namespace file and published-port rules on every path (chapter 10)"
        );
        assert!(
            leftover.is_empty(),
            "the state root still holds {leftover:?} after the container ended: remove the container's directory on every path"
        );
    }
}

impl TestHost {
    /// Kills the processes the records under the state root name (supervisors
    /// and containers' first processes), checked by their start time — and those
    /// of any other state root a test made in the test's directory (a second root
    /// beside the first, chapter 10).
    fn kill_supervisors(&self) {
        let records: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|root| root.path().join("containers"))
            .flat_map(|containers| {
                std::fs::read_dir(containers)
                    .into_iter()
                    .flatten()
                    .flatten()
            })
            .map(|container| container.path().join("container.json"))
            .collect();
        for path in records {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            for key in ["Supervisor", "Process"] {
                let process = &record["Ferry"][key];
                let (Some(pid), Some(start)) =
                    (process["Pid"].as_i64(), process["StartTime"].as_u64())
                else {
                    continue;
                };
                if super::processes::start_time(pid as i32) == Some(start) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        // They die with their supervisor; their cgroups can go once they have.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline && !self.cgroup_processes_gone() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether no process is left in the test's cgroups (any hierarchy).
    fn cgroup_processes_gone(&self) -> bool {
        let parent = self.cgroup_parent.trim_start_matches('/');
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
            return true;
        };
        hierarchies.flatten().all(|h| {
            let mut stack = vec![h.path().join(parent)];
            while let Some(dir) = stack.pop() {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                if !procs.trim().is_empty() {
                    return false;
                }
                if let Ok(children) = std::fs::read_dir(&dir) {
                    stack.extend(
                        children
                            .flatten()
                            .filter(|c| c.path().is_dir())
                            .map(|c| c.path()),
                    );
                }
            }
            true
        })
    }
}

/// The tests need root: fail at once, saying how to get it, never skip silently.
fn require_root() {
    if nix::unistd::geteuid().is_root() {
        return;
    }
    panic!(
        "these tests run containers and need root, and this process is not root.\n\
         run them through cargo as yourself: its runner (scripts/cargo-runner) escalates with sudo:\n    \
         cargo test -p myferry --test ch00_process    (or: cargo xtask check 0)\n\
         without sudo, install it (apt-get install sudo, as root) or work as root in a VM.\n\
         avoid `sudo cargo test`: it leaves root-owned files in target/ (see chapters/setup.md)"
    );
}

/// A `sleep` in a new mount namespace whose `/` is private to it (cut off from the
/// real host) and then shared again, as a systemd laptop's `/` is.
fn spawn_namespace_holder(own_network: bool) -> Child {
    let flags = if own_network {
        libc::CLONE_NEWNS | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNS
    };
    let mut command = Command::new("sleep");
    command
        .arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    // SAFETY: only system calls between fork and exec (unshare, mount), no allocation:
    // the path and flags are prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            let root = c"/".as_ptr();
            // The holder dies with the test's thread, even if the test panics.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::unshare(flags) != 0
                || libc::mount(
                    std::ptr::null(),
                    root,
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    std::ptr::null(),
                    root,
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_SHARED,
                    std::ptr::null(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .expect("failed to create the test host's mount namespace")
}
