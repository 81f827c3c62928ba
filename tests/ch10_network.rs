//! Chapter 10 — networking: the default bridge, veth pairs, addresses, NAT,
//! published ports, user-defined networks and names. See chapters/10-network.md.
//!
//! Each test host has a network namespace of its own acting as the host (only
//! `lo` up), where ferry makes its bridges and rules; "the outside" is a second
//! namespace linked to it (192.0.2.1 ↔ 192.0.2.2). No packet leaves them. On
//! drop the test host checks that no veth, DNAT rule or namespace file is left.

mod support;

use std::time::{Duration, Instant};

use support::network::{Outside, HOST_ADDRESS, OUTSIDE_ADDRESS};
use support::{token, TestHost};

/// `ENGINE run -d --rootfs ROOTFS --cgroup-parent P [args]`: the container's id.
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
    out.stdout.trim().to_string()
}

/// A directory with an index.html that says `text`, for busybox httpd.
fn site(host: &TestHost, text: &str) -> String {
    let dir = host.dir.join(format!("www-{}", token()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), format!("{text}\n")).unwrap();
    format!("{}:/www:ro", dir.display())
}

/// `httpd` in the foreground on port 80 serving /www.
const HTTPD: &[&str] = &["httpd", "-f", "-p", "80", "-h", "/www"];

/// Fetches `url` with busybox wget from the test host, retrying for a few
/// seconds while the server starts; the body, or the last error.
fn fetch_on_host(host: &TestHost, url: &str) -> Result<String, String> {
    retry(|| {
        let out = host.on_host(
            "busybox",
            &["timeout", "3", "busybox", "wget", "-q", "-O", "-", url],
        );
        if out.code == 0 {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    })
}

fn retry(mut attempt: impl FnMut() -> Result<String, String>) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match attempt() {
            Ok(body) => return Ok(body),
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn inspect(host: &TestHost, name: &str) -> serde_json::Value {
    let out = host.engine(&["inspect", name]).output();
    out.assert_success();
    serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()[0].clone()
}

fn remove(host: &TestHost, names: &[&str]) {
    let mut all = vec!["rm", "-f"];
    all.extend_from_slice(names);
    host.engine(&all).output().assert_success();
}

#[test]
fn a_container_gets_eth0_an_address_and_a_default_route() {
    let host = TestHost::new();
    let out = host
        .run(&[
            "sh",
            "-c",
            "ip -o -4 addr show eth0; ip route; cat /sys/class/net/eth0/mtu",
        ])
        .output();
    out.assert_success();
    assert!(
        out.stdout.contains("inet 10.87."),
        "eth0 has an address of the default network 10.87.0.0/16\n{out}"
    );
    assert!(
        out.stdout.contains("default via 10.87.0.1"),
        "the default route goes via the bridge's address\n{out}"
    );
    let bridge = host.on_host("ip", &["-o", "-4", "addr", "show", "ferry0"]);
    assert!(
        bridge.stdout.contains("10.87.0.1/16"),
        "the host has the bridge ferry0 with the gateway address\n{bridge}"
    );
}

#[test]
fn what_leaves_for_the_outside_carries_the_hosts_address() {
    let host = TestHost::new();
    let outside = Outside::new(&host);
    // The outside serves a CGI script that answers with the address it sees.
    let www = host.dir.join("outside-www");
    std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
    let script = www.join("cgi-bin/who");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'Content-Type: text/plain'\necho\necho \"seen:$REMOTE_ADDR\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let _server = outside.spawn(
        "busybox",
        &["httpd", "-f", "-p", "8000", "-h", www.to_str().unwrap()],
    );
    let url = format!("http://{OUTSIDE_ADDRESS}:8000/cgi-bin/who");
    let out = host
        .run(&["sh", "-c", &format!("for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -q -O - {url} && exit 0; sleep 0.3; done; exit 1")])
        .output();
    out.assert_success();
    assert!(
        out.stdout.contains(HOST_ADDRESS) && !out.stdout.contains("10.87."),
        "the outside must see the host's address (masquerade), not the container's 10.87.x.x\n{out}"
    );
}

#[test]
fn a_published_port_answers_the_outside_and_the_hosts_loopback() {
    let host = TestHost::new();
    let outside = Outside::new(&host);
    let page = token();
    let name = format!("web-{}", token());
    let mut args = vec!["--name", &name, "-p", "8080:80", "-v"];
    let volume = site(&host, &page);
    args.push(&volume);
    args.extend_from_slice(HTTPD);
    detached(&host, &args);
    let from_outside = retry(|| {
        let out = outside.run(
            "busybox",
            &[
                "timeout",
                "3",
                "busybox",
                "wget",
                "-q",
                "-O",
                "-",
                &format!("http://{HOST_ADDRESS}:8080/"),
            ],
        );
        if out.code == 0 {
            Ok(out.stdout)
        } else {
            Err(out.to_string())
        }
    });
    assert_eq!(
        from_outside.as_deref().map(str::trim),
        Ok(page.as_str()),
        "the outside reaches the container through the host's port 8080 (DNAT)"
    );
    let from_loopback = fetch_on_host(&host, "http://127.0.0.1:8080/");
    assert_eq!(
        from_loopback.as_deref().map(str::trim),
        Ok(page.as_str()),
        "the host's own loopback reaches it too (DNAT in output, route_localnet)"
    );
    // A neighbour that routes the containers' subnet through this host reaches
    // only what is published, not the container's own port 80.
    let address = inspect(&host, &name)["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    outside
        .run("ip", &["route", "add", "10.87.0.0/16", "via", HOST_ADDRESS])
        .assert_success();
    let direct = outside.run(
        "busybox",
        &[
            "timeout",
            "3",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://{address}/"),
        ],
    );
    assert_ne!(
        direct.code, 0,
        "an unpublished port of the container must not be reachable from outside\n{direct}"
    );
    let port = host.engine(&["port", &name]).output();
    assert_eq!(
        port.stdout.trim(),
        "80/tcp -> 0.0.0.0:8080",
        "`port` lists it as docker does\n{port}"
    );
    let ps = host.engine(&["ps"]).output();
    assert!(
        ps.stdout.contains("0.0.0.0:8080->80/tcp"),
        "ps shows it in PORTS\n{ps}"
    );
    remove(&host, &[&name]);
    let after = host.on_host(
        "busybox",
        &[
            "timeout",
            "2",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/",
        ],
    );
    assert_ne!(
        after.code, 0,
        "after rm nothing answers on the port\n{after}"
    );
}

#[test]
fn a_udp_port_is_published_and_a_free_port_is_picked_for_p_without_one() {
    let host = TestHost::new();
    let name = format!("udp-{}", token());
    detached(
        &host,
        &[
            "--name",
            &name,
            "-p",
            "5353:53/udp",
            "-p",
            "127.0.0.1::53/udp",
            "/probe",
            "udp-echo",
            "53",
            "10",
        ],
    );
    let said = token();
    let answer = host.udp_ask("127.0.0.1", 5353, &said);
    assert_eq!(answer, Some(format!("echo:{said}")), "a datagram to the host's 5353/udp reaches the container's 53/udp and its answer comes back");
    let free = host.engine(&["port", &name, "53/udp"]).output();
    free.assert_success();
    let picked: Vec<&str> = free
        .stdout
        .lines()
        .filter(|l| l.starts_with("127.0.0.1:"))
        .collect();
    assert_eq!(
        picked.len(),
        1,
        "-p 127.0.0.1::53/udp gets a free host port, shown by `port`\n{free}"
    );
    let picked_port: u16 = picked[0].trim_start_matches("127.0.0.1:").parse().unwrap();
    assert!(picked_port > 1024);
    let answer = host.udp_ask("127.0.0.1", picked_port, &said);
    assert_eq!(
        answer,
        Some(format!("echo:{said}")),
        "the picked port works too"
    );
    remove(&host, &[&name]);
}

#[test]
fn a_port_already_taken_is_refused_before_the_container_starts() {
    let host = TestHost::new();
    let first = format!("first-{}", token());
    let second = format!("second-{}", token());
    detached(&host, &["--name", &first, "-p", "8080:80", "sleep", "60"]);
    let rootfs = host.rootfs.to_str().unwrap();
    let out = host
        .engine(&[
            "run",
            "-d",
            "--name",
            &second,
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
            "-p",
            "8080:80",
            "sleep",
            "60",
        ])
        .output();
    assert_eq!(
        out.code, 125,
        "a taken port is the engine's error (125)\n{out}"
    );
    assert!(
        out.stderr.contains("port is already allocated"),
        "it says so, as docker does\n{out}"
    );
    let state = inspect(&host, &second);
    assert_eq!(
        state["State"]["Running"], false,
        "the second container never ran\n{state}"
    );
    let links = host.on_host("ip", &["-o", "link", "show", "type", "veth"]);
    assert_eq!(
        links.stdout.lines().count(),
        1,
        "only the first container has a veth\n{links}"
    );
    remove(&host, &[&first, &second]);
}

#[test]
fn containers_on_a_user_network_find_each_other_by_name_but_not_across_networks() {
    let host = TestHost::new();
    let (front, back) = (format!("front-{}", token()), format!("back-{}", token()));
    host.engine(&["network", "create", &front])
        .output()
        .assert_success();
    host.engine(&["network", "create", "--subnet", "10.91.0.0/24", &back])
        .output()
        .assert_success();
    let page = token();
    let web = format!("web-{}", token());
    let volume = site(&host, &page);
    let mut args = vec![
        "--name",
        &web,
        "--network",
        &front,
        "--network-alias",
        "www",
        "-v",
        &volume,
    ];
    args.extend_from_slice(HTTPD);
    detached(&host, &args);
    let address = inspect(&host, &web)["NetworkSettings"]["Networks"][&front]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        address.starts_with("10.86."),
        "a user network's subnet comes from 10.86.0.0/16: {address}"
    );
    // --dns 127.0.0.1: busybox (no nsswitch.conf) asks DNS before /etc/hosts; a
    // nameserver that refuses at once keeps the lookups quick and on loopback.
    let fetch = |url: &str| {
        format!("for i in 1 2 3 4 5 6 7 8 9 10; do timeout 3 wget -q -O - {url} && exit 0; sleep 0.3; done; exit 1")
    };
    for url in [format!("http://{web}/"), "http://www/".to_string()] {
        let out = host
            .run(&[
                "--network",
                &front,
                "--dns",
                "127.0.0.1",
                "sh",
                "-c",
                &fetch(&url),
            ])
            .output();
        out.assert_success();
        assert_eq!(
            out.stdout.trim(),
            page,
            "{url} names the container on the same network\n{out}"
        );
    }
    // A rename reaches the others' /etc/hosts.
    let renamed = format!("site-{}", token());
    host.engine(&["rename", &web, &renamed])
        .output()
        .assert_success();
    let out = host
        .run(&[
            "--network",
            &front,
            "--dns",
            "127.0.0.1",
            "sh",
            "-c",
            &fetch(&format!("http://{renamed}/")),
        ])
        .output();
    out.assert_success();
    let web = renamed;
    let across = host
        .run(&[
            "--network",
            &back,
            // Under sh (not exec'd: `; exit`): a PID 1 ignores the SIGTERM of timeout.
            "sh",
            "-c",
            &format!("timeout 3 wget -q -O - http://{address}/; exit $?"),
        ])
        .output();
    assert_ne!(
        across.code, 0,
        "a container of another network cannot reach it\n{across}"
    );
    let busy = host.engine(&["network", "rm", &front]).output();
    assert_ne!(
        busy.code, 0,
        "a network with a container on it is not removed\n{busy}"
    );
    assert!(busy.stderr.contains("active endpoints"), "{busy}");
    remove(&host, &[&web]);
    let pruned = host.engine(&["network", "prune", "-f"]).output();
    pruned.assert_success();
    assert!(
        pruned.stdout.contains(&front) && pruned.stdout.contains(&back),
        "prune removes both networks\n{pruned}"
    );
    let bridges = host.on_host("ip", &["-o", "link", "show", "type", "bridge"]);
    assert!(
        !bridges.stdout.contains("ferry-"),
        "their bridges are gone\n{bridges}"
    );
}

#[test]
fn network_none_has_only_lo_and_network_host_is_the_hosts() {
    let host = TestHost::new();
    let _outside = Outside::new(&host);
    let none = host
        .run(&["--network", "none", "ls", "/sys/class/net"])
        .output();
    none.assert_success();
    assert_eq!(
        none.stdout.split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "--network none: only lo\n{none}"
    );
    let shared = host
        .run(&["--network", "host", "ls", "/sys/class/net"])
        .output();
    shared.assert_success();
    assert!(
        shared.stdout.contains("outside0"),
        "--network host sees the test host's own links\n{shared}"
    );
    let taken = host
        .run(&["--network", "host", "-p", "80:80", "true"])
        .output();
    assert_eq!(
        taken.code, 125,
        "ports cannot be published without a bridge network\n{taken}"
    );
}

#[test]
fn twenty_containers_at_once_get_twenty_addresses() {
    let host = TestHost::new();
    let rootfs = host.rootfs.to_str().unwrap().to_string();
    let parent = host.cgroup_parent.clone();
    let running: Vec<_> = (0..20)
        .map(|_| {
            host.engine(&[
                "run",
                "-d",
                "--rootfs",
                &rootfs,
                "--cgroup-parent",
                &parent,
                "sleep",
                "60",
            ])
            .spawn()
        })
        .collect();
    let ids: Vec<String> = running
        .into_iter()
        .map(|r| {
            let out = r.wait();
            out.assert_success();
            out.stdout.trim().to_string()
        })
        .collect();
    let mut addresses: Vec<String> = ids
        .iter()
        .map(|id| {
            inspect(&host, id)["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 20, "20 distinct addresses: {addresses:?}");
    let names: Vec<&str> = ids.iter().map(String::as_str).collect();
    remove(&host, &names);
}

#[test]
fn a_killed_supervisor_leaves_nothing_once_the_next_command_ran() {
    let host = TestHost::new();
    let name = format!("killed-{}", token());
    detached(&host, &["--name", &name, "-p", "8081:80", "sleep", "60"]);
    let supervisor = inspect(&host, &name)["Ferry"]["Supervisor"]["Pid"]
        .as_i64()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && inspect(&host, &name)["State"]["Status"] != "dead" {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(inspect(&host, &name)["State"]["Status"], "dead");
    // The test host's drop checks veths, DNAT rules and namespace files; the port is free again.
    let again = format!("again-{}", token());
    detached(&host, &["--name", &again, "-p", "8081:80", "sleep", "60"]);
    remove(&host, &[&name, &again]);
}

#[test]
fn dns_add_host_and_hostname_reach_the_containers_files() {
    let host = TestHost::new();
    let out = host
        .run(&[
            "--dns",
            "192.0.2.53",
            "--add-host",
            "db:192.0.2.7",
            "--hostname",
            "app",
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts",
        ])
        .output();
    out.assert_success();
    assert!(
        out.stdout.contains("nameserver 192.0.2.53"),
        "--dns replaces the nameservers\n{out}"
    );
    assert!(
        out.stdout.contains("192.0.2.7\tdb"),
        "--add-host adds a line to /etc/hosts\n{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("10.87.") && l.ends_with("\tapp")),
        "the hostname names the container's own address\n{out}"
    );
}

#[test]
fn network_ls_port_and_ps_read_as_dockers() {
    let host = TestHost::new();
    host.engine(&["network", "create", "--subnet", "10.92.0.0/24", "backend"])
        .output()
        .assert_success();
    let name = format!("web-{}", token());
    detached(
        &host,
        &[
            "--name",
            &name,
            "--network",
            "backend",
            "-p",
            "127.0.0.1:8082:80",
            "sleep",
            "60",
        ],
    );
    let ls = host.engine(&["network", "ls"]).output();
    ls.assert_success();
    let ps = host
        .engine(&["ps", "--format", "table {{.Names}}\t{{.Ports}}"])
        .output();
    ps.assert_success();
    let missing = host.engine(&["port", &name, "81"]).output();
    assert_eq!(missing.code, 1, "{missing}");
    let settings = support::snapshot_settings(&host, &[&name]);
    settings.bind(|| {
        insta::assert_snapshot!("ch10_network_ls", ls.stdout);
        insta::assert_snapshot!("ch10_ps_ports", ps.stdout);
        insta::assert_snapshot!("ch10_port_missing", missing.stderr);
    });
    remove(&host, &[&name]);
    host.engine(&["network", "rm", "backend"])
        .output()
        .assert_success();
}

#[test]
fn publish_all_publishes_the_images_exposed_ports_and_container_mode_shares_a_namespace() {
    use support::images::{self, Entry};
    let host = TestHost::new();
    let page = token();
    let site = images::layer(&[Entry::File(
        "www/index.html".into(),
        format!("{page}\n").into_bytes(),
        0o644,
    )]);
    let layers = vec![images::tar_of_dir(&host.rootfs), site];
    let run = serde_json::json!({
        "Cmd": ["httpd", "-f", "-p", "80", "-h", "/www"],
        "ExposedPorts": {"80/tcp": {}},
    });
    let archive = host.dir.join("site.tar");
    let image = format!("test/site-{}:1", token());
    images::oci_archive(
        &archive,
        &layers,
        &images::config(&layers, run),
        Some(&format!("docker.io/{image}")),
    );
    host.engine(&["load", "-i", archive.to_str().unwrap()])
        .output()
        .assert_success();
    let name = format!("site-{}", token());
    let out = host
        .engine(&[
            "run",
            "-d",
            "--name",
            &name,
            "-P",
            "--cgroup-parent",
            &host.cgroup_parent,
            &image,
        ])
        .output();
    out.assert_success();
    let port = host.engine(&["port", &name, "80"]).output();
    port.assert_success();
    let published = port.stdout.trim().to_string();
    assert!(
        published.starts_with("0.0.0.0:"),
        "-P publishes the image's 80/tcp on a free host port\n{port}"
    );
    let url = format!(
        "http://127.0.0.1:{}/",
        published.trim_start_matches("0.0.0.0:")
    );
    assert_eq!(
        fetch_on_host(&host, &url).as_deref().map(str::trim),
        Ok(page.as_str())
    );
    // container:NAME: the same network namespace, so the same eth0 and its server on 127.0.0.1.
    let mac = |args: &[&str]| {
        let out = host.run(args).output();
        out.assert_success();
        out.stdout.trim().to_string()
    };
    let shared = host
        .run(&[
            "--network",
            &format!("container:{name}"),
            "sh",
            "-c",
            "cat /sys/class/net/eth0/address; timeout 3 wget -q -O - http://127.0.0.1/",
        ])
        .output();
    shared.assert_success();
    let own = mac(&["cat", "/sys/class/net/eth0/address"]);
    assert!(
        shared.stdout.contains(&page),
        "container:NAME reaches the other's server on its loopback\n{shared}"
    );
    assert_ne!(
        shared.stdout.lines().next().unwrap_or(""),
        own,
        "a container of its own has another eth0"
    );
    remove(&host, &[&name]);
}

/// `ENGINE --root ROOT ARGS...` in the test host: a second state root beside the
/// test host's own (as a student's myferry beside the reference ferry).
fn in_root(host: &TestHost, root: &std::path::Path, args: &[&str]) -> support::Output {
    let mut all = vec!["--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    host.command(support::engine_binary(), &all).output()
}

/// Kills the supervisor of container `name` of state root `root` with SIGKILL.
fn kill_supervisor(host: &TestHost, root: &std::path::Path, name: &str) {
    let out = in_root(host, root, &["inspect", name]);
    out.assert_success();
    let record: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let pid = record[0]["Ferry"]["Supervisor"]["Pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the supervisor outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_state_root_does_not_take_over_the_network_of_the_first() {
    // Both share the test host's ferry0 and table ip ferry, as the reference
    // ferry and a student's myferry share a laptop's.
    let host = TestHost::new();
    let first = format!("first-{}", token());
    detached(&host, &["--name", &first, "-p", "8082:80", "sleep", "60"]);
    let other = host.dir.join("other-state");
    let rootfs = host.rootfs.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec![
            "run",
            "--rootfs",
            rootfs,
            "--cgroup-parent",
            &host.cgroup_parent,
        ];
        all.extend_from_slice(args);
        in_root(&host, &other, &all)
    };
    let table = || {
        host.on_host("nft", &["list", "table", "ip", "ferry"])
            .stdout
    };
    assert!(
        table().contains("dport 8082 dnat to"),
        "the first root's port is published"
    );
    let refused = run(&["--rm", "true"]);
    refused
        .assert_code(125)
        .assert_stderr_contains("in use by another state root")
        .assert_stderr_contains(&first)
        .assert_stderr_contains("--network none");
    snapshot!(host, &[&first], "ch10_second_root_refused", refused.stderr);
    // Commands of the second root that reconcile leave the first's rules alone.
    in_root(&host, &other, &["ps", "-a"]).assert_success();
    run(&["--rm", "--network", "none", "true"]).assert_success();
    assert!(
        table().contains("dport 8082 dnat to"),
        "the first root's rules survive the second"
    );
    // Once the first root's containers are gone, the second may use the network.
    remove(&host, &[&first]);
    run(&["-d", "--name", "second", "sleep", "60"]).assert_success();
    assert!(table().contains(&format!("state root {}", other.display())));
    // A root whose containers were all killed with their supervisors holds
    // nothing: the first takes the network over, and the table it leaves (killed
    // too) is replaced, not taken for the second's, when the second comes back.
    kill_supervisor(&host, &other, "second");
    let again = format!("again-{}", token());
    detached(&host, &["--name", &again, "-p", "8083:80", "sleep", "60"]);
    assert!(table().contains("dport 8083 dnat to"), "{}", table());
    kill_supervisor(&host, &host.state, &again);
    run(&["-d", "--name", "third", "sleep", "60"]).assert_success();
    let now = table();
    assert!(
        now.contains(&format!("state root {}", other.display())),
        "{now}"
    );
    assert!(
        !now.contains("dport 8083"),
        "the killed root's rules are gone: {now}"
    );
    in_root(&host, &other, &["rm", "-f", "second", "third"]).assert_success();
    remove(&host, &[&again]);
}
