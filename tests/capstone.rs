//! The capstone labs — the lab day's three exercises, end to end on the whole
//! engine (chapters 0 to 11): a hello server built from a Dockerfile and curled
//! on its published port; the same image pushed to a class registry and run from
//! a classmate's laptop; redis and a program that uses it in one container under
//! an init. See chapters/capstone.md. Not a chapter: no ladder, no grade.
//!
//! Each laptop is a test host (its own state root, mount and network namespace).
//! The class registry is the harness's `docker-registry` on the machine's
//! loopback; a laptop reaches it at the same address, `127.0.0.1:PORT`, through a
//! [`Relay`] the test runs, which plays the room's network. Lab 3 copies the host's
//! `redis-server` (Debian's package) and the libraries `ldd` lists into its image.

mod support;

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::registry::Registry;
use support::{token, TestHost};

/// The hello server's one page, a CGI script of busybox's `httpd`, with the
/// student's mark on its greeting (`WHO`), as the lab asks.
fn hello_cgi(who: &str) -> String {
    format!(
        "#!/bin/sh\n\
         echo 'Content-Type: text/plain'\n\
         echo\n\
         echo \"Hello from {who} ${{QUERY_STRING:-world}}!\"\n"
    )
}

/// The hello server's Dockerfile, as chapters/capstone.md shows it.
const HELLO_DOCKERFILE: &str = r#"FROM busybox
RUN echo 'web:x:1000:1000::/www:/bin/sh' >> /etc/passwd
COPY --chmod=0755 hello.cgi /www/cgi-bin/hello
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www", "-u", "web"]
"#;

/// Imports the test host's busybox rootfs as the image `busybox`, the base every
/// lab builds on (a student imports the demo's rootfs the same way).
fn busybox_image(host: &TestHost) {
    let tarball = host.dir.join("busybox.tar");
    std::fs::write(&tarball, support::images::tar_of_dir(&host.rootfs)).unwrap();
    host.engine(&["import", tarball.to_str().unwrap(), "busybox"])
        .output()
        .assert_success();
}

/// A build context under the test's temp dir: `files` (path, contents, mode).
fn context(host: &TestHost, name: &str, files: &[(&str, &str, u32)]) -> PathBuf {
    let dir = host.dir.join(name);
    for (path, contents, mode) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    dir
}

/// `build --progress plain --cgroup-parent P -t NAME DIR`, which must succeed.
fn build(host: &TestHost, dir: &Path, name: &str) -> support::Output {
    let out = host
        .build(dir, &["-t", name])
        .timeout(Duration::from_secs(60))
        .output();
    out.assert_success();
    out
}

/// Builds the hello server with `who`'s greeting as `name`.
fn build_hello(host: &TestHost, who: &str, name: &str) {
    let cgi = hello_cgi(who);
    let dir = context(
        host,
        "hello-docker",
        &[
            ("Dockerfile", HELLO_DOCKERFILE, 0o644),
            ("hello.cgi", &cgi, 0o644),
        ],
    );
    build(host, &dir, name);
}

/// `run -d --cgroup-parent P ARGS...`: the new container's id.
fn detached(host: &TestHost, args: &[&str]) -> String {
    let mut all = vec!["run", "-d", "--cgroup-parent", &host.cgroup_parent];
    all.extend_from_slice(args);
    let out = host.engine(&all).output();
    out.assert_success();
    out.stdout.trim().to_string()
}

/// `curl URL` from the test host (its own network namespace: "the host" of the
/// lab), retried for a few seconds while the server starts; the body.
fn curl(host: &TestHost, url: &str) -> String {
    assert!(
        Path::new("/usr/bin/curl").exists(),
        "the labs curl their servers from the host, and curl is not installed.\n\
         install it with: sudo apt-get install curl"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = host.on_host("curl", &["-sS", "--max-time", "3", url]);
        if out.code == 0 {
            return out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "the server never answered {url} from the host\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Asserts that the state root holds no container any more (`ps -a -q`).
fn assert_no_containers(host: &TestHost) {
    let out = host.engine(&["ps", "-a", "-q"]).output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "", "containers are left\n{out}");
}

#[test]
fn lab1_the_hello_server_built_from_a_dockerfile_answers_curl_on_its_published_port() {
    let host = TestHost::new();
    busybox_image(&host);
    let me = format!("me-{}", token());
    let image = format!("{me}/hello-docker:v0.1.0");
    build_hello(&host, &me, &image);
    // "See the OCI-compliant image config": what the Dockerfile put there.
    let out = host.engine(&["image", "inspect", &image]).output();
    out.assert_success();
    let config = &serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()[0]["Config"];
    assert!(
        config["ExposedPorts"].get("8080/tcp").is_some(),
        "EXPOSE 8080 is in the image's config\n{out}"
    );
    detached(&host, &["--name", "hello", "-p", "8080:8080", &image]);
    let asked = token();
    let body = curl(
        &host,
        &format!("http://127.0.0.1:8080/cgi-bin/hello?{asked}"),
    );
    assert_eq!(
        body,
        format!("Hello from {me} {asked}!\n"),
        "curl on the host's port 8080 reaches the container's server through -p"
    );
    host.engine(&["rm", "-f", "hello"])
        .output()
        .assert_success();
    assert_no_containers(&host);
}

/// "The room's network" for one laptop: a listener on `127.0.0.1:PORT` inside
/// the laptop's network namespace (the registry's own address, free there), whose
/// connections the test carries to the registry on the machine's loopback. It
/// stops accepting on drop; open connections end with their sockets.
struct Relay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(laptop: &TestHost, registry: &Registry) -> Relay {
        let laptop_net = File::open(laptop.net_ns_path().expect("a laptop has a network")).unwrap();
        let address = registry.host.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, listening) = mpsc::channel::<Result<(), String>>();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // The socket is made in the laptop's namespace and stays there; the
                // thread goes back to the machine's, where it connects to the registry.
                let bound = (|| {
                    let machine_net = File::open("/proc/thread-self/ns/net")?;
                    nix::sched::setns(&laptop_net, nix::sched::CloneFlags::CLONE_NEWNET)?;
                    let listener = TcpListener::bind(&address);
                    nix::sched::setns(&machine_net, nix::sched::CloneFlags::CLONE_NEWNET)?;
                    let listener = listener?;
                    listener.set_nonblocking(true)?;
                    Ok::<_, std::io::Error>(listener)
                })();
                let listener = match bound {
                    Ok(listener) => listener,
                    Err(error) => {
                        let _ = ready.send(Err(error.to_string()));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            if let Ok(upstream) = TcpStream::connect(&address) {
                                let _ = client.set_nonblocking(false);
                                carry(client, upstream);
                            }
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        let outcome = listening.recv().expect("the relay's thread ended early");
        outcome.unwrap_or_else(|e| panic!("failed to listen in the laptop's namespace: {e}"));
        Relay {
            stop,
            thread: Some(thread),
        }
    }
}

/// Copies bytes both ways between two connections, each direction in a thread.
fn carry(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `digest: sha256:…` a push printed, or the `Digest: sha256:…` of a pull.
fn digest_in(out: &support::Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| {
            l.split_once("igest: ")
                .map(|(_, rest)| rest.split(' ').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("no digest in the output\n{out}"))
}

#[test]
fn lab2_a_pushed_image_runs_on_a_classmates_laptop_pulled_from_the_class_registry() {
    let registry = Registry::plain();
    let mine = TestHost::new();
    let theirs = TestHost::new();
    let _my_wifi = Relay::start(&mine, &registry);
    let _their_wifi = Relay::start(&theirs, &registry);
    // My laptop: build, tag for the class registry, push.
    busybox_image(&mine);
    let me = format!("me-{}", token());
    let local = format!("{me}/hello-docker:v0.1.0");
    build_hello(&mine, &me, &local);
    let shared = format!("{}/{local}", registry.host);
    mine.engine(&["tag", &local, &shared])
        .output()
        .assert_success();
    let pushed = mine.engine(&["push", &shared]).output();
    pushed.assert_success();
    // The classmate's laptop: a store of its own that has never seen the image.
    let listed = theirs.engine(&["images", "-q"]).output();
    listed.assert_success();
    assert_eq!(
        listed.stdout.trim(),
        "",
        "the classmate's store starts empty"
    );
    let pulled = theirs.engine(&["pull", &shared]).output();
    pulled.assert_success();
    assert_eq!(
        digest_in(&pulled),
        digest_in(&pushed),
        "the classmate pulled the very manifest that was pushed"
    );
    detached(
        &theirs,
        &["--name", "classmates", "-p", "8080:8080", &shared],
    );
    let asked = token();
    let body = curl(
        &theirs,
        &format!("http://127.0.0.1:8080/cgi-bin/hello?{asked}"),
    );
    assert_eq!(
        body,
        format!("Hello from {me} {asked}!\n"),
        "the classmate's laptop serves my greeting"
    );
    theirs
        .engine(&["rm", "-f", "classmates"])
        .output()
        .assert_success();
    assert_no_containers(&theirs);
    assert_no_containers(&mine);
}

/// Where Debian's redis-server package puts the server (a link to the one
/// binary that is also redis-check-rdb: it looks at its own name).
const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Started by the init as PID 2: the database and the program in the background;
/// on SIGTERM (which the init forwards) it stops the program, then the database.
const START_SH: &str = r#"#!/bin/sh
redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no &
db=$!
visitor &
app=$!
trap 'echo "start: got SIGTERM"; kill $app; kill $db; wait $db; echo "start: database stopped"; exit 0' TERM
wait
"#;

/// The program: talks to redis in its inline protocol with busybox's nc, one
/// command per connection (QUIT makes redis close it; its +OK is dropped).
const VISITOR_SH: &str = r#"#!/bin/sh
ask() { printf '%s\r\nQUIT\r\n' "$*" | nc 127.0.0.1 6379 | tr -d '\r' | sed '$d'; }
until [ "$(ask PING 2>/dev/null)" = +PONG ]; do sleep 0.1; done
echo "visitor: SET greeting $GREETING -> $(ask SET greeting "$GREETING")"
echo "visitor: GET greeting -> $(ask GET greeting | tail -n 1)"
while :; do
  echo "visitor: INCR visits -> $(ask INCR visits)"
  sleep 1
done
"#;

const REDIS_DOCKERFILE: &str = r#"FROM busybox
COPY redis/ /
RUN redis-server --version
COPY --chmod=0755 start.sh /usr/local/bin/start
COPY --chmod=0755 visitor.sh /usr/local/bin/visitor
CMD ["start"]
"#;

/// `redis-server` and every library `ldd` lists for it, each copied (links
/// followed) to its own path under `into`, as a student's `cp -L` loop does.
fn copy_redis_with_its_libraries(into: &Path) {
    assert!(
        Path::new(REDIS_SERVER).exists(),
        "lab 3 copies the host's redis-server into its image, and it is not installed.\n\
         install it with: sudo apt-get install redis-server\n\
         (`cargo xtask test` and `cargo xtask check N` install it for you)"
    );
    let ldd = std::process::Command::new("ldd")
        .arg(REDIS_SERVER)
        .output()
        .expect("failed to run ldd(1)");
    assert!(ldd.status.success(), "ldd {REDIS_SERVER} failed");
    let listing = String::from_utf8(ldd.stdout).unwrap();
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", "/lib64/ld-linux-x86-64.so.2 (0x…)";
    // the vDSO has no file.
    let libraries = listing
        .split_whitespace()
        .filter(|word| word.starts_with('/'));
    for file in std::iter::once(REDIS_SERVER).chain(libraries) {
        let target = into.join(file.trim_start_matches('/'));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(file, &target).unwrap_or_else(|e| panic!("failed to copy {file}: {e}"));
    }
}

/// Waits until `logs NAME` shows `needle` (10 s at most); the logs.
fn logs_until(host: &TestHost, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = host.engine(&["logs", name]).output();
        out.assert_success();
        let both = format!("{}{}", out.stdout, out.stderr);
        if both.contains(needle) {
            return both;
        }
        assert!(
            Instant::now() < deadline,
            "the logs never showed {needle:?}\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn lab3_redis_and_a_program_share_one_container_under_an_init_that_stops_promptly() {
    let host = TestHost::new();
    busybox_image(&host);
    let dir = context(
        &host,
        "lab3",
        &[
            ("Dockerfile", REDIS_DOCKERFILE, 0o644),
            ("start.sh", START_SH, 0o644),
            ("visitor.sh", VISITOR_SH, 0o644),
        ],
    );
    copy_redis_with_its_libraries(&dir.join("redis"));
    let built = build(&host, &dir, "lab3:1");
    assert!(
        built.stderr.contains("Redis server v=") || built.stdout.contains("Redis server v="),
        "RUN redis-server --version runs the copied server in the build\n{built}"
    );
    let greeting = token();
    let env = format!("GREETING={greeting}");
    detached(&host, &["--init", "--name", "lab3", "-e", &env, "lab3:1"]);
    // Proof 1, through `logs`: the program wrote the token and read it back.
    logs_until(&host, "lab3", &format!("GET greeting -> {greeting}"));
    // Proof 2, through `exec`: the database itself holds what the program wrote.
    let asked = host
        .engine(&[
            "exec",
            "lab3",
            "sh",
            "-c",
            "printf 'GET greeting\\r\\nQUIT\\r\\n' | nc 127.0.0.1 6379",
        ])
        .output();
    asked.assert_success().assert_stdout_contains(&greeting);
    // One container, the init as PID 1, the start script, redis and the program under it.
    let ps = host.engine(&["exec", "lab3", "ps"]).output();
    ps.assert_success();
    let pid_one = ps
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_default();
    assert!(
        !pid_one.contains("start") && !pid_one.contains("redis"),
        "with --init, PID 1 is the init, not the command\n{ps}"
    );
    for process in ["start", "redis-server", "visitor"] {
        assert!(ps.stdout.contains(process), "{process} runs\n{ps}");
    }
    let running = host.engine(&["ps", "-q"]).output();
    assert_eq!(
        running.stdout.lines().count(),
        1,
        "one container\n{running}"
    );
    // `stop` sends SIGTERM to PID 1; the init forwards it to the start script,
    // which ends both: done long before stop's 10 s are up.
    let began = Instant::now();
    host.engine(&["stop", "lab3"]).output().assert_success();
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}: the SIGTERM did not reach the start script"
    );
    let logs = logs_until(&host, "lab3", "start: database stopped");
    assert!(
        logs.contains("start: got SIGTERM"),
        "the start script saw the init's SIGTERM\n{logs}"
    );
    let out = host
        .engine(&["inspect", "-f", "{{.State.ExitCode}}", "lab3"])
        .output();
    out.assert_success();
    assert_eq!(out.stdout.trim(), "0", "the start script exits 0\n{out}");
    host.engine(&["rm", "lab3"]).output().assert_success();
    assert_no_containers(&host);
}
