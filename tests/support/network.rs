//! The test host's network (chapter 10): each test host has a network namespace
//! of its own, with only `lo` up, where ferry makes its bridges, veths and
//! rules; an "outside" is a second namespace joined to it by a veth pair. All
//! traffic stays in these namespaces.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use super::output::Output;
use super::TestHost;

/// The test host's end of the link to the outside, and the two addresses.
pub const OUTSIDE_LINK: &str = "outside0";
pub const HOST_ADDRESS: &str = "192.0.2.1";
pub const OUTSIDE_ADDRESS: &str = "192.0.2.2";

/// Runs `program args` in the network namespace `netns` (a path); its output.
pub fn run_in(netns: &str, program: &str, args: &[&str]) -> Output {
    let output = Command::new("nsenter")
        .arg(format!("--net={netns}"))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("failed to run nsenter(1)");
    Output::new(
        format!("nsenter --net={netns} {program} {}", args.join(" ")),
        output.status,
        output.stdout,
        output.stderr,
        false,
    )
}

/// Brings `lo` up in the namespace `netns`.
pub fn bring_lo_up(netns: &str) {
    run_in(netns, "ip", &["link", "set", "lo", "up"]).assert_success();
}

impl TestHost {
    /// Runs `program args` in the test host's network namespace.
    pub fn on_host(&self, program: &str, args: &[&str]) -> Output {
        let netns = self
            .net_ns_path()
            .expect("this test host is on the machine's network");
        run_in(&netns, program, args)
    }

    /// A process of the test host's network namespace, running in the background.
    pub fn spawn_on_host(&self, program: &str, args: &[&str]) -> Background {
        let netns = self
            .net_ns_path()
            .expect("this test host has no network of its own");
        spawn_in(&netns, program, args)
    }
}

/// A process in the background, killed and reaped on drop.
pub struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program args` in the namespace `netns`, in the background, killed with the test.
fn spawn_in(netns: &str, program: &str, args: &[&str]) -> Background {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net={netns}"))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only prctl(2) between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    Background(
        command
            .spawn()
            .expect("failed to start a process with nsenter(1)"),
    )
}

/// A second network namespace, "the outside", linked to the test host: the
/// host is 192.0.2.1 on `outside0`, the outside 192.0.2.2 on its `eth0`.
pub struct Outside {
    holder: Child,
    netns: String,
}

impl Outside {
    pub fn new(host: &TestHost) -> Outside {
        let mut command = Command::new("sleep");
        command
            .arg("3600")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // SAFETY: only unshare(2) and prctl(2) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let holder = command
            .spawn()
            .expect("failed to make the outside namespace");
        let netns = format!("/proc/{}/ns/net", holder.id());
        // The unshare happens after the fork: wait until the holder is in its own.
        let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..100 {
            if std::fs::read_link(&netns).ok().is_some_and(|n| n != mine) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let pid = holder.id().to_string();
        host.on_host(
            "ip",
            &[
                "link",
                "add",
                OUTSIDE_LINK,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &pid,
            ],
        )
        .assert_success();
        host.on_host(
            "ip",
            &[
                "addr",
                "add",
                &format!("{HOST_ADDRESS}/24"),
                "dev",
                OUTSIDE_LINK,
            ],
        )
        .assert_success();
        host.on_host("ip", &["link", "set", OUTSIDE_LINK, "up"])
            .assert_success();
        run_in(
            &netns,
            "ip",
            &[
                "addr",
                "add",
                &format!("{OUTSIDE_ADDRESS}/24"),
                "dev",
                "eth0",
            ],
        )
        .assert_success();
        run_in(&netns, "ip", &["link", "set", "eth0", "up"]).assert_success();
        bring_lo_up(&netns);
        Outside { holder, netns }
    }

    /// Runs `program args` on the outside.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        run_in(&self.netns, program, args)
    }

    /// A process on the outside, in the background.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Background {
        spawn_in(&self.netns, program, args)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// What the containers left in the test host's network after they ended: veth
/// pairs (other than the link to the outside), DNAT rules in ferry's table, and
/// namespace files under the state root.
pub fn leaks(host: &TestHost) -> Vec<String> {
    let mut leaks: Vec<String> = std::fs::read_dir(host.state.join("netns"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| format!("namespace file {}", e.path().display()))
                .collect()
        })
        .unwrap_or_default();
    let Some(netns) = host.net_ns_path() else {
        return leaks;
    };
    let links = run_in(&netns, "ip", &["-o", "link", "show", "type", "veth"]);
    for line in links.stdout.lines() {
        let name = line.split(':').nth(1).unwrap_or("").trim();
        let name = name.split('@').next().unwrap_or(name);
        if !name.is_empty() && name != OUTSIDE_LINK {
            leaks.push(format!("veth {name}"));
        }
    }
    let rules = run_in(&netns, "nft", &["list", "ruleset"]);
    for line in rules.stdout.lines().filter(|l| l.contains("dnat to")) {
        leaks.push(format!("rule {}", line.trim()));
    }
    leaks
}

impl TestHost {
    /// Sends `payload` by UDP to `address:port` from the test host's network
    /// namespace (a thread of the test joins it) and returns the answer, if one
    /// comes within 3 s.
    pub fn udp_ask(&self, address: &str, port: u16, payload: &str) -> Option<String> {
        let netns = std::fs::File::open(self.net_ns_path()?).ok()?;
        let target = format!("{address}:{port}");
        let payload = payload.to_string();
        std::thread::spawn(move || {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
            let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            socket
                .set_read_timeout(Some(std::time::Duration::from_millis(300)))
                .ok()?;
            let mut buffer = [0u8; 512];
            // The server may not be bound yet: ask again for up to 3 s.
            for _ in 0..10 {
                socket.send_to(payload.as_bytes(), &target).ok()?;
                if let Ok(length) = socket.recv(&mut buffer) {
                    return Some(String::from_utf8_lossy(&buffer[..length]).into_owned());
                }
            }
            None
        })
        .join()
        .ok()
        .flatten()
    }
}
