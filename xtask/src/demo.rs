//! `cargo xtask demo`: builds the reference engine and shows, command by command,
//! what it isolates so far. Runs the engine as root (through sudo when needed)
//! with its own state root under target/demo; touches nothing else.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::manifest::project_root;
use crate::{fixture, util};

pub fn run() -> Result<()> {
    util::ensure_packages(&[util::BUSYBOX, util::REGISTRY, util::NFTABLES])?;
    println!("building the engine and the probe ...");
    util::run(util::cargo().args(["build", "--quiet", "-p", "ferry"]))?;
    let probe = fixture::build_probe()?;
    let demo = project_root().join("target/demo");
    let rootfs = demo.join("rootfs");
    fixture::busybox_rootfs(&rootfs, Some(&probe))?;
    // Whether ferry's default bridge was there before the demo made containers.
    let bridge_before = Path::new("/sys/class/net/ferry0").exists();
    let demo = Demo {
        engine: project_root().join("target/debug/ferry"),
        state: demo.join("state"),
        rootfs,
    };
    // A demo stopped halfway may have left its detached container running.
    let _ = util::as_root(&demo.engine.to_string_lossy())
        .arg("--root")
        .arg(&demo.state)
        .args(["rm", "-f", "demo-web"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();

    section(
        "Chapter 0 — a container is a process",
        "stdio, exit codes and a clean environment:",
    );
    demo.run(&["sh", "-c", "echo \"hello from $HOSTNAME\"; exit 3"], &[])?;
    demo.run(
        &["-e", "GREETING=ahoy", "env"],
        &[("SECRET_ON_THE_HOST", "not-for-containers")],
    )?;
    demo.run(&["no-such-program"], &[])?;

    section(
        "Chapter 1 — a filesystem of its own",
        "its own root, /proc, a minimal /dev, a read-only /sys:",
    );
    demo.run(
        &[
            "sh",
            "-c",
            "ls /; echo; ls /dev; echo; grep -E ' / | /sys ' /proc/self/mountinfo",
        ],
        &[],
    )?;
    section(
        "",
        "chroot alone can be climbed out of (--no-pivot); pivot_root cannot:",
    );
    demo.run(
        &["--no-pivot", "/probe", "escape-chroot", "/etc/os-release"],
        &[],
    )?;
    demo.run(&["/probe", "escape-chroot", "/etc/os-release"], &[])?;

    section(
        "Chapter 2 — namespaces",
        "its own hostname, processes, IPC and network:",
    );
    demo.run(
        &[
            "--hostname",
            "demo",
            "sh",
            "-c",
            "hostname; echo \"I am PID $$\"; ps; cat /proc/net/dev",
        ],
        &[],
    )?;
    section("", "with --init, PID 1 forwards signals and reaps orphans:");
    demo.run(
        &[
            "--init",
            "sh",
            "-c",
            "(sleep 0.1 &); sleep 0.3; ps -o pid,stat,comm",
        ],
        &[],
    )?;

    section(
        "Chapter 3 — cgroups",
        "a memory hog meets --memory; a fork bomb meets --pids-limit:",
    );
    demo.run(&["--memory", "32m", "/probe", "hog", "256"], &[])?;
    demo.run(&["--pids-limit", "20", "/probe", "forks", "200", "1"], &[])?;

    section(
        "Chapter 4 — privileges",
        "root inside keeps Docker's 14 capabilities, a seccomp filter, no devices:",
    );
    demo.run(
        &[
            "sh",
            "-c",
            "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status; hostname pirate",
        ],
        &[],
    )?;
    demo.run(&["/probe", "keyctl"], &[])?;
    demo.run(&["--user", "nobody", "id"], &[])?;

    section(
        "Chapter 5 — layers and volumes",
        "the container writes on a layer of its own; a volume outlives it:",
    );
    demo.run(
        &["sh", "-c", "echo scribbled > /etc/motd; cat /etc/motd"],
        &[],
    )?;
    println!(
        "(and on the host: {} {})",
        short(&demo.rootfs.join("etc/motd")),
        if demo.rootfs.join("etc/motd").exists() {
            "exists"
        } else {
            "does not exist: the rootfs is untouched"
        }
    );
    demo.run(
        &[
            "-v",
            "demo-data:/data",
            "sh",
            "-c",
            "echo kept > /data/note",
        ],
        &[],
    )?;
    demo.run(&["-v", "demo-data:/data", "cat", "/data/note"], &[])?;
    demo.engine(&["volume", "ls"])?;
    demo.engine(&["volume", "rm", "demo-data"])?;

    section(
        "Chapter 6 — images",
        "a rootfs tarball becomes an image in the store, and runs by its name:",
    );
    let tarball = demo.state.with_file_name("rootfs.tar");
    util::run(
        Command::new("tar")
            .arg("-C")
            .arg(&demo.rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    demo.engine(&["import", &tarball.to_string_lossy(), "demo/busybox:1"])?;
    demo.engine(&["images"])?;
    demo.engine(&[
        "run",
        "--rm",
        "--cgroup-parent",
        CGROUP_PARENT,
        "demo/busybox:1",
        "sh",
        "-c",
        "echo running from an image; cat /etc/hostname",
    ])?;
    demo.engine(&["history", "demo/busybox:1"])?;
    let _ = std::fs::remove_file(&tarball);

    section(
        "Chapter 7 — registries",
        "a local registry (Debian's docker-registry): push the image, forget it, and run pulls it back:",
    );
    let registry = LocalRegistry::start(&demo.state.with_file_name("registry"))?;
    let name = format!("{}/demo/busybox:1", registry.host);
    demo.engine(&["tag", "demo/busybox:1", &name])?;
    demo.engine(&["push", &name])?;
    demo.engine(&["rmi", "demo/busybox:1", &name])?;
    demo.engine(&[
        "run",
        "--rm",
        "--cgroup-parent",
        CGROUP_PARENT,
        &name,
        "sh",
        "-c",
        "echo pulled and running",
    ])?;
    demo.engine(&["pull", &name])?;
    demo.engine(&["rmi", &name])?;
    drop(registry);

    section(
        "Chapter 8 — containers as objects",
        "a server detached under its supervisor (ferry itself, in its own session): listed, logged, stopped, removed:",
    );
    let rootfs = demo.rootfs.to_string_lossy().into_owned();
    demo.engine(&[
        "run",
        "-d",
        "--name",
        "demo-web",
        "--init",
        "--cgroup-parent",
        CGROUP_PARENT,
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "echo serving; i=0; while :; do i=$((i+1)); echo \"tick $i\"; sleep 0.5; done",
    ])?;
    std::thread::sleep(std::time::Duration::from_millis(1600));
    demo.engine(&["ps"])?;
    demo.engine(&["logs", "--tail", "3", "demo-web"])?;

    section(
        "Chapter 9 — exec",
        "a second process in the running container: its namespaces (setns on a pidfd), cgroups and restrictions:",
    );
    demo.engine(&[
        "exec",
        "demo-web",
        "sh",
        "-c",
        "echo \"in $(hostname), pid $$\"; ps; grep -E 'CapEff|Seccomp:' /proc/self/status",
    ])?;
    demo.engine(&["top", "demo-web"])?;
    demo.engine(&["stop", "demo-web"])?;
    demo.engine(&["ps", "-a", "--filter", "name=demo-web"])?;
    demo.engine(&["rm", "demo-web"])?;

    section(
        "Chapter 10 — networking",
        "a web server on the default bridge (ferry0), its port 80 published on the host:",
    );
    let site = demo.state.with_file_name("site");
    std::fs::create_dir_all(&site)?;
    std::fs::write(
        site.join("index.html"),
        "<h1>hello from a ferry container</h1>\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let volume = format!("{}:/www:ro", site.display());
    let publish = format!("127.0.0.1:{port}:80");
    demo.engine(&[
        "run",
        "-d",
        "--name",
        "demo-site",
        "-p",
        &publish,
        "-v",
        &volume,
        "--cgroup-parent",
        CGROUP_PARENT,
        "--rootfs",
        &rootfs,
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ])?;
    demo.engine(&["ps", "--filter", "name=demo-site"])?;
    demo.engine(&["port", "demo-site"])?;
    demo.engine(&[
        "exec",
        "demo-site",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ])?;
    println!("\n$ curl http://127.0.0.1:{port}/");
    match http_get("127.0.0.1", port) {
        Ok(body) => print!("{body}"),
        Err(error) => println!("(no answer: {error})"),
    }
    demo.engine(&["rm", "-f", "demo-site"])?;
    let _ = std::fs::remove_dir_all(&site);

    section(
        "Chapter 11 — building images",
        "the meetup's hello server as a multi-stage Dockerfile: a build stage writes the page, a final stage from scratch carries only busybox and the page:",
    );
    let tarball = demo.state.with_file_name("rootfs.tar");
    util::run(
        Command::new("tar")
            .arg("-C")
            .arg(&demo.rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg("."),
    )?;
    demo.engine(&["import", &tarball.to_string_lossy(), "demo/busybox:1"])?;
    let _ = std::fs::remove_file(&tarball);
    let context = demo.state.with_file_name("hello");
    std::fs::create_dir_all(&context)?;
    let dockerfile = "FROM demo/busybox:1 AS build\n\
RUN mkdir -p /out/www && echo '<h1>hello from an image ferry built</h1>' > /out/www/index.html\n\
\n\
FROM scratch\n\
COPY --from=build /bin/busybox /bin/busybox\n\
COPY --from=build /out/www /www\n\
EXPOSE 80\n\
CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n";
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    println!("\n$ cat hello/Dockerfile\n{dockerfile}");
    let context_arg = context.to_string_lossy().into_owned();
    demo.engine(&[
        "build",
        "--progress",
        "plain",
        "--cgroup-parent",
        CGROUP_PARENT,
        "-t",
        "demo/hello:1",
        &context_arg,
    ])?;
    demo.engine(&["history", "demo/hello:1"])?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    demo.engine(&[
        "run",
        "-d",
        "--name",
        "demo-hello",
        "-p",
        &publish,
        "--cgroup-parent",
        CGROUP_PARENT,
        "demo/hello:1",
    ])?;
    println!("\n$ curl http://127.0.0.1:{port}/");
    match http_get("127.0.0.1", port) {
        Ok(body) => print!("{body}"),
        Err(error) => println!("(no answer: {error})"),
    }
    demo.engine(&["rm", "-f", "demo-hello"])?;
    println!("\nRebuilt, every step comes from the cache:");
    demo.engine(&[
        "build",
        "--progress",
        "plain",
        "--cgroup-parent",
        CGROUP_PARENT,
        "-t",
        "demo/hello:1",
        &context_arg,
    ])?;
    let _ = std::fs::remove_dir_all(&context);
    runtime_section(&demo)?;
    if !bridge_before {
        // A real engine keeps its bridge (as docker keeps docker0); the demo leaves
        // the host as it found it.
        let _ = util::as_root("ip").args(["link", "del", "ferry0"]).status();
        let _ = util::as_root("nft")
            .args(["delete", "table", "ip", "ferry"])
            .status();
    }
    demo.cleanup();
    println!("\nThat is the engine as it stands. Build your own: chapters/introduction.md");
    Ok(())
}

/// Chapter 12: ferry spoken to as runc is, by hand through a bundle's lifecycle,
/// then by podman (when it is installed) with ferry as its runtime.
fn runtime_section(demo: &Demo) -> Result<()> {
    section(
        "Chapter 12 — ferry as an OCI runtime",
        "runc's interface, which podman and containerd speak: a bundle (config.json and a root), then create, list, start, ps, delete:",
    );
    let bundle = demo.state.with_file_name("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    std::fs::create_dir_all(&bundle)?;
    let bundle_arg = bundle.to_string_lossy().into_owned();
    demo.runtime(&["spec", "--bundle", &bundle_arg])?;
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config)?)?;
    spec["root"]["path"] = demo.rootfs.to_string_lossy().into_owned().into();
    spec["process"]["args"] = serde_json::json!([
        "sh",
        "-c",
        "echo \"started: I am PID $$ in $(hostname)\"; sleep 30"
    ]);
    spec["linux"]["cgroupsPath"] = format!("{CGROUP_PARENT}/demo-oci").into();
    std::fs::write(&config, serde_json::to_string_pretty(&spec)?)?;
    println!(
        "(config.json: root.path set to {}, process.args to a greeting)",
        short(&demo.rootfs)
    );
    demo.runtime(&["create", "--bundle", &bundle_arg, "demo-oci"])?;
    println!("created: the process exists, blocked before the program, until start");
    demo.runtime(&["list"])?;
    demo.runtime(&["start", "demo-oci"])?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    demo.runtime(&["ps", "demo-oci"])?;
    demo.runtime(&["delete", "--force", "demo-oci"])?;
    let _ = std::fs::remove_dir_all(&bundle);
    let podman = Path::new("/usr/bin/podman");
    if !podman.exists() {
        println!(
            "
(podman is not installed: `apt-get install podman` to see it drive ferry)"
        );
        return Ok(());
    }
    println!(
        "
podman, with ferry as its runtime (storage of its own under target/demo):"
    );
    let base = demo.state.with_file_name("podman");
    std::fs::create_dir_all(&base)?;
    let link = base.join("ferry-runtime");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&demo.engine, &link)?;
    let arg = |flag: &str, sub: &str| format!("--{flag}={}", base.join(sub).display());
    let mut command = util::as_root("podman");
    command
        .args([
            arg("root", "root"),
            arg("runroot", "run"),
            arg("tmpdir", "tmp"),
        ])
        .args([
            "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
        ])
        .arg(format!("--runtime={}", link.display()))
        .args([
            "run",
            "--rm",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ])
        .args([
            "--network=none",
            &format!("--cgroup-parent={CGROUP_PARENT}"),
        ])
        .arg("--rootfs")
        .arg(&demo.rootfs)
        .args([
            "sh",
            "-c",
            "echo hello from podman, run by ferry, as PID $$",
        ]);
    println!(
        "
$ podman --runtime {} run --rm --network=none --rootfs {} sh -c 'echo hello from podman, run by ferry, as PID $$'",
        short(&link),
        short(&demo.rootfs)
    );
    // podman calls the runtime without --root: its state goes to /run/ferry.
    let runtime_root_before = Path::new("/run/ferry").exists();
    let status = command.status().context("failed to start podman")?;
    println!("(exit code {})", status.code().unwrap_or(-1));
    let _ = util::as_root("rm").arg("-rf").arg(&base).status();
    if !runtime_root_before {
        let _ = util::as_root("rmdir").arg("/run/ferry").status();
    }
    Ok(())
}

/// The body of `GET /` from `host:port` (retried for a few seconds while the
/// server starts).
fn http_get(host: &str, port: u16) -> Result<String> {
    use std::io::{Read, Write};
    let mut last = None;
    for _ in 0..50 {
        match std::net::TcpStream::connect((host, port)) {
            Ok(mut stream) => {
                write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
                return Ok(body.to_string());
            }
            Err(error) => last = Some(error),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no answer"), Into::into))
}

/// A docker-registry on a free loopback port, its storage under `dir`; stopped
/// and removed on drop.
struct LocalRegistry {
    host: String,
    child: std::process::Child,
    dir: PathBuf,
}

impl LocalRegistry {
    fn start(dir: &Path) -> Result<LocalRegistry> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {host}\n",
                dir.join("data").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.join("log"))?)
            .spawn()
            .context("failed to start docker-registry")?;
        let registry = LocalRegistry {
            host,
            child,
            dir: dir.to_path_buf(),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&registry.host).is_ok() {
                println!("\n(a registry listens on {})", registry.host);
                return Ok(registry);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        anyhow::bail!(
            "docker-registry did not start; its log is {}",
            registry.dir.join("log").display()
        )
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The cgroup parent the demo's containers use, removed at the end.
const CGROUP_PARENT: &str = "/ferry-demo";

struct Demo {
    engine: PathBuf,
    state: PathBuf,
    rootfs: PathBuf,
}

impl Demo {
    /// Removes the demo's cgroup parent from every hierarchy (its containers have
    /// removed their own cgroups already).
    fn cleanup(&self) {
        let parent = CGROUP_PARENT.trim_start_matches('/');
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines().filter(|l| l.contains(" - cgroup")) {
            if let Some(mount) = line.split(' ').nth(4) {
                let dir = Path::new(mount).join(parent);
                if dir.is_dir() {
                    // podman's conmon (chapter 12) leaves its own cgroup there.
                    if dir.join("conmon").is_dir() {
                        let _ = util::as_root("rmdir").arg(dir.join("conmon")).status();
                    }
                    let _ = util::as_root("rmdir").arg(&dir).status();
                }
            }
        }
    }

    /// Runs `ferry --root STATE ARGS` as root and shows it.
    fn engine(&self, args: &[&str]) -> Result<()> {
        let mut command = util::as_root(&self.engine.to_string_lossy());
        command.arg("--root").arg(&self.state).args(args);
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        println!("\n$ ferry {}", quoted.join(" "));
        let status = command.status().context("failed to start the engine")?;
        println!("(exit code {})", status.code().unwrap_or(-1));
        Ok(())
    }

    /// Runs `ferry runtime --root RUNTIME_ROOT ARGS` (the runc dialect, its state
    /// beside the demo's) as root and shows it.
    fn runtime(&self, args: &[&str]) -> Result<()> {
        let root = self.state.with_file_name("runtime");
        let mut command = util::as_root(&self.engine.to_string_lossy());
        command.arg("runtime").arg("--root").arg(&root).args(args);
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        println!("\n$ ferry runtime {}", quoted.join(" "));
        let status = command.status().context("failed to start the engine")?;
        println!("(exit code {})", status.code().unwrap_or(-1));
        Ok(())
    }

    /// Runs `ferry --root STATE run --rootfs ROOTFS ARGS` as root and shows it.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
        let mut command = util::as_root(&self.engine.to_string_lossy());
        command
            .arg("--root")
            .arg(&self.state)
            .args(["run", "--rm", "--rootfs"])
            .arg(&self.rootfs)
            .args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        if !util::is_root() {
            // sudo resets the environment; keep what the demo sets to show it is not passed on.
            for (key, _) in env {
                command.arg(format!("--preserve-env={key}"));
            }
        }
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        let shown = format!(
            "ferry run --rm --rootfs {} {}",
            short(&self.rootfs),
            quoted.join(" ")
        );
        println!("\n$ {shown}");
        let status = command.status().context("failed to start the engine")?;
        println!("(exit code {})", status.code().unwrap_or(-1));
        Ok(())
    }
}

/// `arg` as a shell would need it to be typed (single quotes when needed).
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

fn section(title: &str, what: &str) {
    if !title.is_empty() {
        println!("\n━━ {title} ━━");
    }
    println!("{what}");
}

fn short(path: &Path) -> String {
    path.strip_prefix(project_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
