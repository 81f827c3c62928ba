//! Small helpers shared by the xtask commands: running commands visibly, root, apt.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::manifest::project_root;

/// The cargo that runs xtask (so the same toolchain builds everything).
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(project_root());
    command
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // The effective uid is the third field of "Uid:" in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// `program args...` as root: directly when root, through sudo otherwise.
pub fn as_root(program: &str) -> Command {
    if is_root() {
        Command::new(program)
    } else {
        let mut command = Command::new("sudo");
        command.arg(program);
        command
    }
}

/// Prints the command, runs it, fails if it fails.
pub fn run(command: &mut Command) -> Result<()> {
    let status = status(command)?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Prints the command and runs it, returning its exit status.
pub fn status(command: &mut Command) -> Result<ExitStatus> {
    println!("$ {}", describe(command));
    command
        .status()
        .with_context(|| format!("failed to start `{}`", describe(command)))
}

/// Runs a command with its output captured, killed if it outlives `limit` (a headless
/// browser can hang on a page that never settles). Pipes are drained while it runs, so a
/// large output cannot block it.
pub fn output_within(command: &mut Command, limit: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start `{}`", describe(command)))?;
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{}` took longer than {limit:?}", describe(command));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Copies a file or a directory tree, leaving out build output (`target/`).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        std::fs::create_dir_all(to.parent().expect("has a parent"))?;
        std::fs::copy(from, to).with_context(|| format!("failed to copy {}", from.display()))?;
    }
    Ok(())
}

pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// System packages the workshop needs, by the file that shows they are installed.
pub const BUSYBOX: (&str, &str) = ("/bin/busybox", "busybox-static");
/// For chapter 6's interoperability tests: OCI tools that read what ferry saves.
pub const SKOPEO: (&str, &str) = ("/usr/bin/skopeo", "skopeo");
pub const UMOCI: (&str, &str) = ("/usr/bin/umoci", "umoci");
pub const PODMAN: (&str, &str) = ("/usr/bin/podman", "podman");
/// For chapter 11's podman test: crun (podman's default here) refuses the
/// cgroup v1 hybrid layout, runc runs on it.
pub const RUNC: (&str, &str) = ("/usr/sbin/runc", "runc");
/// For chapter 7: the CNCF distribution registry, started by the tests and the demo.
pub const REGISTRY: (&str, &str) = ("/usr/bin/docker-registry", "docker-registry");
/// For chapter 10: nft loads ferry's NAT and port rules; ip (iproute2) and
/// nsenter (util-linux) let the tests look at the test host's network.
pub const NFTABLES: (&str, &str) = ("/usr/sbin/nft", "nftables");
pub const IPROUTE: (&str, &str) = ("/usr/bin/ip", "iproute2");
/// For the capstone labs (tests/capstone.rs): the database copied, with the
/// libraries `ldd` lists, onto a busybox image.
pub const REDIS: (&str, &str) = ("/usr/bin/redis-server", "redis-server");
/// The capstone labs curl their servers from the test host.
pub const CURL: (&str, &str) = ("/usr/bin/curl", "curl");
/// Chapter 12: containerd (and its `ctr`) drives ferry through its runc shim; conmon
/// comes with podman.
pub const CONTAINERD: (&str, &str) = ("/usr/bin/containerd", "containerd");
pub const CONMON: (&str, &str) = ("/usr/bin/conmon", "conmon");
/// For `cargo xtask book --check-links`, `slides --pdf/--check` and `screenshots`:
/// the browser that opens the built book, prints and measures the decks, and
/// takes the pictures.
pub const CHROMIUM: (&str, &str) = ("/usr/bin/chromium", "chromium");
/// Everything the chapter tests (and the capstone labs) need.
pub const PACKAGES: &[(&str, &str)] = &[
    BUSYBOX, SKOPEO, UMOCI, PODMAN, RUNC, REGISTRY, NFTABLES, IPROUTE, REDIS, CURL, CONTAINERD,
    CONMON,
];

/// Installs the missing packages with apt-get (update first; waits for the apt lock).
pub fn ensure_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(file, _)| !Path::new(file).exists())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing {} (needed by the workshop)", missing.join(", "));
    if !is_root() && Command::new("sudo").arg("--version").output().is_err() {
        bail!(
            "{} must be installed, as root: apt-get install {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let updated = status(as_root("apt-get").args(["update", "-q"]))?.success();
        let installed = updated
            && status(
                as_root("env")
                    .args([
                        "DEBIAN_FRONTEND=noninteractive",
                        "apt-get",
                        "install",
                        "-y",
                        "-q",
                    ])
                    .args(&missing),
            )?
            .success();
        if installed {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "apt-get could not install {} (is another package manager holding the lock?)",
                missing.join(" ")
            );
        }
        println!("apt-get failed (perhaps another process holds the apt lock); retrying in 10 s");
        std::thread::sleep(Duration::from_secs(10));
    }
}

/// rustfmt and clippy, which the suite (and the workshop generator) use: a minimal
/// rustup profile lacks them, so add them when `cargo fmt`/`cargo clippy` are missing.
pub fn ensure_rust_components() -> Result<()> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(subcommand, _)| {
            !cargo()
                .args([*subcommand, "--version"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing the rustup components {}", missing.join(", "));
    run(Command::new("rustup")
        .args(["component", "add"])
        .args(&missing))
}
